"""A dropout on the abdominal channel alone (knip_host.analysis): the abdomen
is held at its last value, and what only it can tell (a push, a cough, the
technique) is not judged over the gap, with a warning. It used to read as
0, an abdomen gone slack, so a push there came out a good lift, silently."""
import math

import numpy as np

from knip_host.analysis import analyze_arrays

RATE = 50.0


def _pushes(seconds=80.0):
    # four 3 s squeezes of 30 cmH2O, each borne down: the abdomen rises 40
    t = np.arange(int(seconds * RATE)) / RATE
    breath = 0.8 * np.sin(2 * math.pi * 0.25 * t)
    pf = 20.0 + breath
    abd = 15.0 + 1.2 * breath
    for t0 in (10.0, 28.0, 46.0, 64.0):
        up = np.clip((t - t0) / 0.4, 0, 1) * np.clip((t0 + 3.4 - t) / 0.4, 0, 1)
        pf = pf + 30.0 * up
        abd = abd + 40.0 * up
    return t, pf, abd


def _run(t, pf, abd):
    return analyze_arrays(t, pf, rate_hz=RATE, signal="pressure", abdominal=abd)


def test_a_push_over_an_abdominal_dropout_is_not_called_a_lift():
    t, pf, abd = _pushes()
    whole = _run(t, pf, abd)
    assert [(e["kind"], e["technique"]) for e in whole.events] == [("bearing_down", "push")] * 4
    assert not any("abdominal" in w for w in whole.warnings)
    abd[(t >= 27.5) & (t < 32.0)] = np.nan          # the second push's abdomen lost
    got = _run(t, pf, abd)
    assert [e["technique"] for e in got.events] == ["push", None, "push", "push"]
    assert got.events[1]["kind"] == "squeeze"       # no push seen there: not judged, not "lift"
    for a, b in zip(whole.events, got.events):      # the pelvic floor's events are as they were
        assert (a["onset_s"], a["offset_s"], a["peak"]) == (b["onset_s"], b["offset_s"], b["peak"])
    (w,) = [w for w in got.warnings if "abdominal" in w]
    assert w.startswith("225 abdominal samples are missing (empty, NA, NaN, infinite, or a lone reading out of range) in 1 stretch(es), first at 27.500 s")
    assert "technique of the 1 event(s) over them is not judged" in w


def test_an_abdominal_channel_that_is_all_nan_is_left_out():
    t, pf, abd = _pushes()
    got = _run(t, pf, np.full(len(t), np.nan))
    assert [(e["kind"], e["technique"]) for e in got.events] == [("squeeze", None)] * 4
    assert got.warnings == ["every abdominal sample is missing (empty, NA, NaN, infinite, or a lone reading "
                            "out of range): analysed as one channel (technique not judged)"]


def test_a_dropout_at_the_start_takes_the_first_value_there_is():
    t, pf, abd = _pushes()
    abd[:100] = np.nan
    got = _run(t, pf, abd)
    assert [(e["kind"], e["technique"]) for e in got.events] == [("bearing_down", "push")] * 4
    assert any("first at 0.000 s" in w and "the 0 event(s)" in w for w in got.warnings)
