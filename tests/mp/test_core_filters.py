# Portable tests: run by pytest under CPython and by tests/mp/run_tests.py
# under the MicroPython unix port.
import math
from knip.fixed import isqrt
from knip.filters import (Biquad, design_lowpass, design_highpass, design_notch,
                          RmsEnvelope, BaselineTracker, X_MAX)


def _sine_gain(bq, rate, f, n=2000, amp=4000):
    bq.reset(0)
    peak = 0
    for i in range(n):
        y = bq.step(int(amp * math.sin(2 * math.pi * f * i / rate)))
        if i > n // 2 and abs(y) > peak:
            peak = abs(y)
    return peak / amp


def test_isqrt_exact():
    for n in (0, 1, 2, 3, 4, 99, 100, 101, 65535, 65536, 1 << 28, (1 << 30) - 1):
        r = isqrt(n, 5)
        assert r * r <= n < (r + 1) * (r + 1), n


def test_lowpass_unity_dc_and_attenuation():
    lp = design_lowpass(100, 5)
    lp.reset(1000)
    for _ in range(50):
        y = lp.step(1000)
    assert y == 1000
    assert _sine_gain(design_lowpass(100, 5), 100, 1) > 0.95
    assert _sine_gain(design_lowpass(100, 5), 100, 30) < 0.05


def test_highpass_removes_offset_and_passes_band():
    hp = design_highpass(1000, 20)
    hp.reset(2048)
    out = [hp.step(2048) for _ in range(100)]
    assert max(abs(v) for v in out) == 0
    assert _sine_gain(design_highpass(1000, 20), 1000, 100) > 0.95
    assert _sine_gain(design_highpass(1000, 20), 1000, 2) < 0.02


def test_notch_kills_mains_only():
    assert _sine_gain(design_notch(1000, 50), 1000, 50, 4000) < 0.1
    assert _sine_gain(design_notch(1000, 50), 1000, 120, 4000) > 0.9


def test_biquad_clamps_input_domain():
    bq = design_lowpass(100, 5)
    bq.reset(0)
    for _ in range(200):
        y = bq.step(10 * X_MAX)
    assert y == X_MAX


def test_rms_envelope_of_square_wave():
    env = RmsEnvelope(10, 5)
    out = []
    for i in range(1000):
        e = env.step(300 if i % 2 else -300)
        if e >= 0:
            out.append(e)
    assert len(out) == 100           # decimated by 10
    assert out[-1] == 300 * 16       # RMS in 1/16 counts


def test_baseline_follows_down_fast_up_slow():
    b = BaselineTracker(10, up_ms=5000, down_ms=500, noise_ms=1000, noise_floor=1)
    b.reset(1000)
    for _ in range(100):             # one second at 1100
        b.update(1100, 1000)
    up = b.level() - 1000
    b.reset(1000)
    for _ in range(100):             # one second at 900
        b.update(900, 1000)
    down = 1000 - b.level()
    assert 0 < up < 25 and down > 70
