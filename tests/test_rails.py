"""A recording's sensor rails, found in the samples, are saturation to the
detector (knip_host.rails, knip_host.analysis)."""
import math

import numpy as np

from knip_host.analysis import analyze_arrays
from knip_host.rails import Rails, find_rails, quantum


def _emg(seconds=20.0, rate=1000, seed=3):
    # raw EMG in uV: 5 uV of noise at rest, two 1 s bursts of 60 uV
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    amp = np.full(len(t), 5.0)
    for t0 in (4.0, 15.0):
        amp[(t >= t0) & (t < t0 + 1.0)] = 60.0
    return t, rng.normal(0.0, 1.0, len(t)) * amp


def _swing(x, i0, ramp, n, rail):
    # ramp samples from where it is into the rail, n there, ramp back
    x0, x1 = x[i0], x[i0 + ramp + n + ramp]
    x[i0:i0 + ramp] = np.linspace(x0, rail, ramp + 2)[1:-1]
    x[i0 + ramp:i0 + ramp + n] = rail
    x[i0 + ramp + n:i0 + 2 * ramp + n] = np.linspace(rail, x1, ramp + 2)[1:-1]


def test_float_recording_held_at_its_extremes_has_rails():
    t, x = _emg()
    _swing(x, 8000, 30, 300, 10000.0)
    _swing(x, 11000, 20, 100, -10000.0)
    assert find_rails(x, 1000) == Rails(-10000.0, 10000.0)
    x[8030:8330] = 10000.0 + np.arange(300) * 1e-3    # it moves: no rail
    assert find_rails(x, 1000) == Rails(-10000.0, None)


def test_a_short_hold_or_a_single_sample_is_no_rail():
    t, x = _emg()
    x[9000:9020] = x.max() + 500.0                    # 20 ms: shorter than RAIL_MS
    x[3000] = x.min() - 500.0
    assert find_rails(x, 1000) == Rails(None, None)


def test_whole_numbers_at_a_slow_peak_are_no_rail():
    # pressure in whole mmHg at 50 Hz: her strongest squeeze tops out at
    # 41 for 0.2 s, reached one mmHg at a time (a peak, not a rail)
    t = np.arange(1500) / 50.0
    p = np.round(10 + 31 * np.exp(-((t - 15.0) / 2.0) ** 2) + 0.4 * np.sin(2 * math.pi * 0.25 * t))
    assert quantum(p) == 1.0 and (p == p.max()).sum() >= 5
    assert find_rails(p, 50.0) == Rails(None, None)
    p[1000:1030] = 60.0                                # hit by a step of 40: a rail
    assert find_rails(p, 50.0).hi == 60.0


def test_a_floor_she_rests_on_is_no_rail():
    # an EMG envelope whose rest reads 0 (the ADC's floor): most samples
    t, x = _emg()
    env = np.maximum(np.abs(x) - 12.0, 0.0)
    assert (env == 0).mean() > 0.5
    assert find_rails(env, 1000) == Rails(None, None)


def test_nothing_to_find_in_flat_or_missing_data():
    assert find_rails(np.full(100, 3.0), 100) == Rails(None, None)
    assert find_rails(np.full(100, np.nan), 100) == Rails(None, None)
    x = np.r_[np.full(50, np.nan), np.linspace(0, 1, 50)]
    assert find_rails(x, 100) == Rails(None, None)


def test_swings_into_the_rails_are_artefacts_never_squeezes():
    # a tugged lead drives the amplifier to its rails twice between her
    # bursts: two saturation artefacts, her two squeezes, a warning
    t, x = _emg()
    _swing(x, 8000, 30, 300, 10000.0)
    _swing(x, 11000, 20, 120, -10000.0)
    an = analyze_arrays(t, x, rate_hz=1000, signal="emg", unit="uV")
    got = [(e["kind"], e.get("artefact"), e["onset_s"]) for e in an.events]
    assert [g[:2] for g in got] == [("squeeze", None), ("artefact", "saturation"),
                                    ("artefact", "saturation"), ("squeeze", None)], got
    assert abs(got[0][2] - 4.0) < 0.1 and abs(got[3][2] - 15.0) < 0.1, got
    assert 7.95 < got[1][2] <= 8.04 and 10.95 < got[2][2] <= 11.03, got
    rails = [w for w in an.warnings if "rail" in w]
    assert len(rails) == 2 and "300 samples sit at the sensor's top rail (10000 uV)" in rails[1], rails


def test_sample_and_hold_export_has_no_rails_unless_held_long():
    # a 20 Hz sensor exported at 100 Hz: every value 5 times over, so its
    # highest and lowest values are held 50 ms too; a rail holds far longer
    t = np.arange(3000) / 100.0
    p = 10 + 25 * np.exp(-((t - 15.0) / 1.5) ** 2) + np.random.default_rng(4).normal(0, 0.3, 3000)
    p = np.repeat(p[::5], 5)
    assert find_rails(p, 100.0) == Rails(None, None)
    p[2000:2030] = 80.0                                # 0.3 s at the top: a rail
    assert find_rails(p, 100.0).hi == 80.0


def test_a_clipped_file_gets_one_warning_for_its_flat_top_and_rail(tmp_path):
    # The loader sees a flat top at the channel's maximum and analyze sees
    # the rail there: one finding, so one warning per channel, which says
    # both what the loader saw and what the detector does with it.
    from knip_host.analysis import analyze
    from knip_host.recordings import load
    t = np.arange(3000) / 50.0
    rng = np.random.default_rng(5)
    p = 10 + 30 * np.exp(-((t - 20.0) / 2.0) ** 2) + rng.normal(0, 0.3, 3000)
    p[1000:1010] = 25.0 + np.arange(10) * 2.0           # rises ...
    p[1010:1040] = 80.0                                 # ... into the rail for 0.6 s
    a = 2 + rng.normal(0, 0.2, 3000)
    a[2000:2025] = 30.0                                 # the abdominal channel clips too
    f = tmp_path / "clipped.csv"
    f.write_text("time_s,p,abd\n" + "".join(f"{ti:.3f},{pi:.2f},{ai:.2f}\n" for ti, pi, ai in zip(t, p, a)))
    rec = load(f)
    assert set(rec.clipped) == {"p", "abd"}, rec.warnings
    an = analyze(rec, channel="p", abdominal="abd")
    for name, n, value in (("p", 30, "80"), ("abd", 25, "30")):
        said = [w for w in an.warnings if f"channel {name!r}" in w]
        assert len(said) == 1, an.warnings
        assert f"flat top(s) at the maximum {value}" in said[0], said
        assert f"the detector reads the {n} samples at its rail(s) as saturation" in said[0], said
    assert not any("sit at the sensor's" in w for w in an.warnings), an.warnings
    # without the loader's warning (arrays only), the rail gets its own
    alone = analyze_arrays(t, p, rate_hz=50.0)
    assert any("30 samples sit at the sensor's top rail (80 units)" in w for w in alone.warnings), alone.warnings


def test_adc_counts_at_both_limits_get_one_warning(tmp_path):
    # raw 12-bit counts: a lead tugged to both rails (4095 and 0); the
    # loader warns of runs at the ADC's limits, and analyze's two rails
    # are that same finding
    t, x = _emg()
    c = np.clip(np.rint(2048 + x / 2), 1, 4094)
    _swing(c, 8000, 30, 300, 4095.0)
    _swing(c, 11000, 20, 120, 0.0)
    f = tmp_path / "semg.txt"
    f.write_text("# Simple Text Format\n# Sampling Rate (Hz):= 1000.00\n# Resolution:= 12\n"
                 + "".join(f"{int(v)}\n" for v in c))
    from knip_host.analysis import analyze
    from knip_host.recordings import load
    an = analyze(load(f), signal="emg")
    said = [w for w in an.warnings if "rail" in w or "ADC limits" in w]
    assert len(said) == 1, an.warnings
    assert "ADC limits 0/4095" in said[0] and "reads the 420 samples at its rail(s)" in said[0], said
    assert [e["artefact"] for e in an.events if e["kind"] == "artefact"] == ["saturation", "saturation"], an.events
