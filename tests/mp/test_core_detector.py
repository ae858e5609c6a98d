# Portable detector tests on hand-made shapes with known answers. Run by
# pytest (CPython) and by run_tests.py (MicroPython unix port).
from knip.chain import PressureChain, EmgChain
from knip import replay
from knip import detector as D
from signals import pressure_track, emg_track

C = 20   # counts per cmH2O


def _run(chain, ts, xs, ab=None):
    log = []
    recs = replay.run(chain, ts, xs, ab, log)
    return recs, log


def _kinds(recs):
    return [D.KIND_NAMES[r[D.R_KIND]] for r in recs]


def test_squeezes_found_with_onsets_and_offsets():
    sq = [(5.0, 0.8, 3.0, 0.5, 30, 0), (14.0, 0.6, 5.0, 0.5, 25, 0), (26.0, 0.4, 1.0, 0.4, 35, 0)]
    ts, xs, _ = pressure_track(50, 35, sq)
    recs, log = _run(PressureChain(50), ts, xs)
    assert _kinds(recs) == ["squeeze"] * 3
    for r, s in zip(recs, sq):
        assert abs(r[D.R_ONSET] - s[0] * 1000) <= 120, (r[D.R_ONSET], s[0])
        off = (s[0] + s[1] + s[2] + s[3]) * 1000
        assert abs(r[D.R_OFFSET] - off) <= 250, (r[D.R_OFFSET], off)
        assert abs((r[D.R_PEAK] - r[D.R_BASE]) - s[4] * C) <= 2 * C
        assert r[D.R_RELAXED] == 1
        # decided after the onset, within 250 ms of it
        assert 0 < r[D.R_DETECTED] - s[0] * 1000 <= 250
    # each squeeze: start, peak, end, relaxed, in that order
    flags = [f for _, f, seq in log if seq == recs[0][D.R_SEQ]]
    assert flags[0] == D.EV_START and flags[-1] == D.EV_RELAXED


def test_rest_shorter_than_squeeze_is_flagged():
    # 6 s squeeze then only 2 s rest; then 8 s rest before a 1.5 s squeeze
    sq = [(4.0, 0.5, 5.0, 0.5, 30, 0), (12.0, 0.5, 1.0, 0.5, 30, 0), (22.0, 0.5, 1.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 30, sq)
    recs, _ = _run(PressureChain(50), ts, xs)
    assert len(recs) == 3
    assert recs[0][D.R_REST_OK] == -1
    assert recs[1][D.R_REST_OK] == 0
    assert recs[2][D.R_REST_OK] == 1
    assert abs(recs[1][D.R_REST_BEFORE] - 2000) < 300


def test_incomplete_relaxation_is_not_relaxed():
    sq = [(4.0, 0.6, 4.0, 0.5, 30, 10), (18.0, 0.6, 4.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 26, sq)
    recs, _ = _run(PressureChain(50), ts, xs)
    assert _kinds(recs) == ["squeeze", "squeeze"]
    assert recs[0][D.R_RELAXED] == 0
    assert recs[0][D.R_RESIDUAL] > 7 * C


def test_cough_is_not_a_squeeze():
    sq = [(4.0, 0.15, 0.0, 0.3, 60, 0), (10.0, 0.6, 3.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 18, sq)
    recs, _ = _run(PressureChain(50), ts, xs)
    assert _kinds(recs) == ["cough", "squeeze"]
    assert recs[0][D.R_RELAXED] == -1


def test_two_channel_lift_co_contraction_and_push():
    sq = [(4.0, 0.6, 3.0, 0.5, 30, 0, 3),      # lift: abdomen quiet
          (13.0, 0.6, 3.0, 0.5, 30, 0, 22),    # co-contraction
          (22.0, 1.0, 3.0, 1.0, 30, 0, 34)]    # bearing down: abdomen leads
    ts, xs, ab = pressure_track(50, 32, sq)
    recs, _ = _run(PressureChain(50, two_channel=True), ts, xs, ab)
    assert [D.TECH_NAMES[r[D.R_TECH]] for r in recs] == ["lift", "co_contraction", "push"]
    assert _kinds(recs) == ["squeeze", "squeeze", "bearing_down"]


def test_one_channel_does_not_guess_technique():
    sq = [(4.0, 0.6, 3.0, 0.5, 30, 0, 34)]
    ts, xs, _ = pressure_track(50, 12, sq)
    recs, _ = _run(PressureChain(50), ts, xs)
    assert recs[0][D.R_TECH] == D.TECH_UNKNOWN and recs[0][D.R_ABD_RISE] == -1


def test_constant_signal_gives_nothing():
    ts = [i * 20 for i in range(3000)]
    xs = [200] * 3000
    recs, log = _run(PressureChain(50), ts, xs)
    assert recs == [] and log == []


def test_works_at_one_hertz():
    # a 1.85 Hz manometry-like rate: squeezes of several seconds still found
    sq = [(10.0, 1.0, 6.0, 1.0, 40, 0), (30.0, 1.0, 10.0, 1.0, 40, 0)]
    ts, xs, _ = pressure_track(1.85, 50, sq, ripple=0.2)
    recs, _ = _run(PressureChain(1.85), ts, xs)
    assert _kinds(recs) == ["squeeze", "squeeze"]
    for r, s in zip(recs, sq):
        assert abs(r[D.R_ONSET] - s[0] * 1000) < 700


def test_emg_bursts_on_raw_counts():
    bursts = [(3.0, 0.1, 2.0, 0.1, 60), (8.0, 0.1, 0.5, 0.1, 50), (12.0, 0.15, 4.0, 0.2, 40)]
    ts, xs = emg_track(1000, 18, bursts)
    recs, _ = _run(EmgChain(1000), ts, xs)
    assert _kinds(recs) == ["squeeze"] * 3
    for r, b in zip(recs, bursts):
        assert abs(r[D.R_ONSET] - b[0] * 1000) <= 60, (r[D.R_ONSET], b[0])
        assert r[D.R_DETECTED] - b[0] * 1000 <= 100
        assert r[D.R_RELAXED] == 1


def test_calibration_skips_warm_up():
    sq = [(0.5, 0.5, 2.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 8, sq)
    ch = PressureChain(50)
    ch.det.calibrate(10 * C, 4, 45 * C)
    recs, _ = _run(ch, ts, xs)
    assert _kinds(recs) == ["squeeze"]
    # with an MVC given, the onset threshold includes 5 % of it
    assert ch.det.ref_amp == 35 * C
