# Portable detector tests on hand-made shapes with known answers. Run by
# pytest (CPython) and by run_tests.py (MicroPython unix port).
import math

from knip.chain import PressureChain, EmgChain
from knip import replay
from knip import kernels as K
from knip import record as D      # the detector's record layout
from signals import pressure_track, emg_track, collect

C = 20   # counts per cmH2O


def _run(chain, ts, xs, ab=None):
    collect()
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
    # a forceful cough: 120 cmH2O in 0.12 s, faster than any squeeze rises
    sq = [(4.0, 0.12, 0.0, 0.3, 120, 0), (10.0, 0.6, 3.0, 0.5, 30, 0)]
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


def test_constant_signal_is_a_stuck_sensor_never_a_squeeze():
    ts = [i * 20 for i in range(3000)]
    xs = [200] * 3000
    recs, log = _run(PressureChain(50), ts, xs)
    # one artefact (flat) from the start, reported at the end; no squeeze
    assert _kinds(recs) == ["artefact"] and recs[0][D.R_MARKS] & D.M_FLAT
    assert recs[0][D.R_ONSET] <= 20 and [f for _, f, _ in log] == [D.EV_END]


def test_stuck_sensor_mid_session_then_recovery():
    sq = [(4.0, 0.5, 2.0, 0.5, 30, 0), (16.0, 0.5, 2.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 22, sq)
    for i in range(400, 600):            # 8-12 s: the very same reading
        xs[i] = xs[400]
    recs, _ = _run(PressureChain(50), ts, xs)
    assert _kinds(recs) == ["squeeze", "artefact", "squeeze"]
    assert recs[1][D.R_MARKS] & D.M_FLAT and 7900 <= recs[1][D.R_ONSET] <= 8100


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


# ---- issue 11: regressions for what failed on signals the detector never saw

def _squeezes(recs):
    return [r for r in recs if r[D.R_KIND] == D.KIND_SQUEEZE]


def test_quick_emg_flick_on_one_channel_is_a_squeeze_not_a_cough():
    # 0.3-0.9 s voluntary flicks: one channel holds no evidence of a cough
    bursts = [(3.0, 0.05, 0.2, 0.05, 60), (6.0, 0.08, 0.4, 0.1, 50), (9.0, 0.1, 0.7, 0.1, 55)]
    ts, xs = emg_track(1000, 13, bursts)
    recs, _ = _run(EmgChain(1000), ts, xs)
    assert _kinds(recs) == ["squeeze"] * 3
    for r, b in zip(recs, bursts):
        assert r[D.R_MARKS] & D.M_QUICK
        assert abs(r[D.R_ONSET] - b[0] * 1000) <= 40, (r[D.R_ONSET], b[0])


def test_pressure_flick_at_voluntary_speed_is_a_squeeze_a_fast_spike_a_cough():
    # 30 cmH2O in 0.3 s, and a strong woman's 80 cmH2O flick in 0.2 s
    # (~630 cmH2O/s at its steepest), are voluntary; 120 cmH2O in 0.1 s
    # (~1900 cmH2O/s) is faster than any squeeze
    sq = [(4.0, 0.3, 0.1, 0.3, 30, 0), (9.0, 0.2, 0.2, 0.3, 80, 0), (14.0, 0.1, 0.0, 0.25, 120, 0)]
    ts, xs, _ = pressure_track(50, 18, sq)
    recs, _ = _run(PressureChain(50), ts, xs)
    assert _kinds(recs) == ["squeeze", "squeeze", "cough"]
    assert recs[0][D.R_MARKS] & D.M_QUICK and recs[1][D.R_MARKS] & D.M_QUICK


def test_two_channel_cough_needs_the_abdomen():
    # the same brisk rise: with a quiet abdomen a squeeze, with an
    # abdominal spike as big a cough
    sq = [(4.0, 0.12, 0.0, 0.25, 40, 0, 2), (9.0, 0.12, 0.0, 0.25, 40, 0, 50)]
    ts, xs, ab = pressure_track(50, 14, sq)
    recs, _ = _run(PressureChain(50, two_channel=True), ts, xs, ab)
    assert _kinds(recs) == ["squeeze", "cough"]


def test_residual_plateau_belongs_to_its_squeeze():
    # released to a 40 % plateau for 5 s (no new squeezes in it, however the
    # EMG wobbles), then a real new rise from the plateau
    bursts = [(3.0, 0.1, 1.5, 0.15, 50, 20), (10.0, 0.1, 1.5, 0.15, 40)]
    ts, xs = emg_track(1000, 16, bursts)
    recs, _ = _run(EmgChain(1000), ts, xs)
    sq = _squeezes(recs)
    assert len(sq) == 2, [(r[D.R_ONSET], r[D.R_OFFSET]) for r in recs]
    assert sq[0][D.R_RELAXED] == 0 and sq[0][D.R_RESIDUAL] > 0
    assert abs(sq[0][D.R_OFFSET] - 4750) <= 150
    assert sq[1][D.R_MARKS] & D.M_PLATEAU
    assert abs(sq[1][D.R_ONSET] - 10000) <= 60


def test_quick_squeeze_with_residual_does_not_swallow_the_next():
    # a 0.6 s flick released to a 50 % residual, another squeeze 2 s later
    sq = [(3.0, 0.3, 0.2, 0.2, 30, 15), (5.5, 0.5, 3.0, 0.5, 40, 0)]
    ts, xs, _ = pressure_track(50, 14, sq)
    recs, _ = _run(PressureChain(50), ts, xs)
    assert _kinds(recs) == ["squeeze", "squeeze"]
    assert recs[0][D.R_OFFSET] - recs[0][D.R_ONSET] < 1500
    assert recs[0][D.R_RELAXED] == 0
    assert abs(recs[1][D.R_ONSET] - 5500) <= 120


def test_relaxed_verdict_holds_with_deep_breathing():
    # a weak woman (8 cmH2O squeezes) breathing slowly and deeply (2 cmH2O
    # peak to peak, 9 breaths a minute) while the probe warms up (+3 cmH2O,
    # 40 s): relaxed after each squeeze whatever the breath's phase (a
    # resting tone in the breathing troughs read half a breath as residual);
    # a residual of 5 cmH2O held for 6 s is still not relaxed (one within
    # the breathing swing cannot be told in the verdict's 0.5 s)
    sq = [(6.0, 0.6, 3.0, 0.5, 8, 0), (15.0, 0.6, 2.0, 0.5, 8, 0), (23.0, 0.6, 4.0, 0.5, 8, 0),
          (33.0, 0.5, 1.0, 0.5, 8, 0), (41.0, 0.6, 3.0, 0.5, 8, 5)]
    ts, xs, _ = pressure_track(50, 54, sq, ripple=1.0, noise=0.05, breath_hz=0.15, warm=(3.0, 40.0))
    recs, _ = _run(PressureChain(50), ts, xs)
    sq_recs = _squeezes(recs)
    assert len(sq_recs) == 5, [(r[D.R_ONSET], r[D.R_KIND]) for r in recs]
    assert [r[D.R_RELAXED] for r in sq_recs] == [1, 1, 1, 1, 0]


def test_movement_below_rest_is_an_artefact_never_a_squeeze():
    # a movement: the probe's pressure swings 8 cmH2O down then up, or up
    # then down, over 2 s, or swings at 1.5-2 Hz, between two squeezes; one
    # pressure channel, no abdominal evidence: below her rest, it is no muscle
    sq = [(4.0, 0.6, 2.0, 0.5, 25, 0), (20.0, 0.6, 2.0, 0.5, 25, 0)]
    for move in ((11.0, 2.0, 8.0), (11.0, 2.0, -8.0), (11.0, 2.0, -10.0, 1.5), (11.0, 3.0, 10.0, 2.0)):
        ts, xs, _ = pressure_track(50, 26, sq, moves=[move])
        recs, _ = _run(PressureChain(50), ts, xs)
        sq_recs = _squeezes(recs)
        assert len(sq_recs) == 2, [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs]
        for r, s in zip(sq_recs, sq):
            assert abs(r[D.R_ONSET] - s[0] * 1000) <= 150
        moved = [r for r in recs if r[D.R_KIND] == D.KIND_ARTEFACT]
        assert moved and all(r[D.R_MARKS] & D.M_MOTION for r in moved)
        assert all(10500 <= r[D.R_ONSET] <= 13500 for r in moved)


def test_movement_in_the_first_seconds_from_a_flat_start_is_no_squeeze():
    # she shifts as she settles in, 2.5-5 s after the start, the probe
    # itself steady: before her tone's fall is first read (4 s) a dip was
    # taken for a settling probe whatever its depth, so each swing up was a
    # squeeze; a probe that has not fallen explains none of it
    sq = [(8.0, 0.6, 1.5, 0.5, 25, 0), (12.0, 0.6, 1.5, 0.5, 25, 0)]
    for move in ((2.5, 2.5, 10.0, 1.5), (2.5, 2.0, 8.0, 2.0), (3.0, 2.0, -10.0, 1.5)):
        for rate in (50, 100):
            ts, xs, _ = pressure_track(rate, 15, sq, moves=[move])
            recs, _ = _run(PressureChain(rate), ts, xs)
            got = [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs]
            sq_recs = _squeezes(recs)
            assert len(sq_recs) == 2, (move, rate, got)
            for r, s in zip(sq_recs, sq):
                assert abs(r[D.R_ONSET] - s[0] * 1000) <= 150, (move, rate, got)
            moved = [r for r in recs if r[D.R_KIND] == D.KIND_ARTEFACT]
            assert moved and all(r[D.R_MARKS] & D.M_MOTION for r in moved), (move, rate, got)
            assert all(move[0] * 1000 - 300 <= r[D.R_ONSET] <= (move[0] + move[1]) * 1000 for r in moved), got
    # and right after a squeeze in those first seconds (its undershoot
    # adds to what the start explains, not to "anything")
    for rate in (50, 100):
        sq = [(2.0, 0.6, 1.0, 0.5, 8, 0)]
        ts, xs, _ = pressure_track(rate, 12, sq, moves=[(4.1, 2.5, 10.0, 1.5)])
        recs, _ = _run(PressureChain(rate), ts, xs)
        assert _kinds(recs)[0] == "squeeze" and len(_squeezes(recs)) == 1, (rate, _kinds(recs))
        assert all(r[D.R_MARKS] & D.M_MOTION for r in recs[1:]), (rate, _kinds(recs))


def test_squeeze_after_a_movement_in_deep_breathing_is_its_own():
    # a 1 Hz swing of 6 or 10 cmH2O while she breathes 2 cmH2O peak to peak:
    # it is a movement, and the squeeze 8 s later is found on its own (a
    # level dragged down to the swing's trough made it one endless squeeze)
    sq = [(4.0, 0.6, 2.0, 0.5, 25, 0), (20.0, 0.6, 2.0, 0.5, 25, 0)]
    for amp in (6.0, 10.0):
        ts, xs, _ = pressure_track(50, 30, sq, moves=[(11.0, 1.5, amp, 1.0)], ripple=1.0, noise=0.3,
                                   breath_hz=0.28)
        recs, _ = _run(PressureChain(50), ts, xs)
        sq_recs = _squeezes(recs)
        assert len(sq_recs) == 2, [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs]
        for r, s in zip(sq_recs, sq):
            assert abs(r[D.R_ONSET] - s[0] * 1000) <= 250


def test_onset_of_a_slow_s_shaped_pressure_rise():
    # a weak squeeze built up slowly (10 cmH2O over 2-2.5 s, S-shaped) while
    # she breathes 1.6 cmH2O peak to peak: its first part rises slower than
    # a noise unit (breathing counts in it) per 100 ms, yet it is part of
    # the rise; the onset is found within 250 ms
    sq = [(5.0, 2.0, 4.0, 0.8, 10, 0), (16.0, 2.5, 4.0, 0.8, 10, 0)]
    ts, xs, _ = pressure_track(50, 26, sq, noise=0.05, ripple=0.8, gentle=True)
    recs, _ = _run(PressureChain(50), ts, xs)
    sq_recs = _squeezes(recs)
    assert len(sq_recs) == 2
    for r, s in zip(sq_recs, sq):
        assert abs(r[D.R_ONSET] - s[0] * 1000) <= 250, (r[D.R_ONSET], s[0])


def test_two_channel_push_of_a_strong_woman_is_flagged():
    # a strong woman (50 cmH2O squeezes) bears down with 22 cmH2O on the
    # abdomen while her pelvic floor stays quiet: a push, on the abdominal
    # channel alone (it was measured against half her best squeeze); and a
    # co-contraction before it does not leave the abdominal level high
    sq = [(4.0, 0.5, 2.0, 0.5, 50, 0, 3), (10.0, 0.4, 0.3, 0.4, 40, 0, 30),
          (14.0, 0.6, 1.5, 0.6, 0, 0, 22)]
    ts, xs, ab = pressure_track(50, 22, sq)
    recs, _ = _run(PressureChain(50, two_channel=True), ts, xs, ab)
    abd = [r for r in recs if r[D.R_CHANNEL] == 1]
    assert len(abd) == 1 and abd[0][D.R_KIND] == D.KIND_BEARING_DOWN, \
        [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]], r[D.R_CHANNEL]) for r in recs]
    assert abs(abd[0][D.R_ONSET] - 14000) <= 300


def test_offset_and_rise_time_on_a_smooth_release():
    # a 1 s rise (90 % at 0.71 s for a quarter sine) and a 1 s smooth release
    sq = [(4.0, 1.0, 4.0, 1.0, 35, 0)]
    ts, xs, _ = pressure_track(50, 14, sq)
    recs, _ = _run(PressureChain(50), ts, xs)
    r = recs[0]
    assert abs(r[D.R_OFFSET] - 10000) <= 150, r[D.R_OFFSET]
    assert abs(r[D.R_RISE_MS] - 710) <= 120, r[D.R_RISE_MS]


def test_quick_emg_squeeze_to_a_residual_plateau_then_a_squeeze_are_two():
    # issue 11 item 2 for EMG flicks (0.2 s rise, 0.6 s hold): released to a
    # plateau of 30 % of the rise, the next squeeze rising from it 1-2 s
    # later back to the same level, at about 20 and 10 dB. At 40 % some
    # second onsets come 0.4-0.6 s early, and at 55-60 % the two merge into
    # one relaxed squeeze (docs/DETECTOR.md, limits we know of).
    for rest in (4.0, 12.6):
        for gap in (1.0, 2.0):
            for seed in (1, 2):
                a2 = 4.0 + gap
                b = [(3.0, 0.2, 0.6, 0.2, 40, 12), (a2, 0.2, 0.6, 0.3, 28, -12)]
                ts, xs = emg_track(1000, 9, b, rest_uv=rest, seed=seed)
                recs, _ = _run(EmgChain(1000), ts, xs)
                got = (rest, gap, seed, [(D.KIND_NAMES[r[D.R_KIND]], r[D.R_ONSET], r[D.R_OFFSET]) for r in recs])
                assert _kinds(recs) == ["squeeze", "squeeze"], got
                assert recs[0][D.R_RELAXED] == 0 and recs[0][D.R_RESIDUAL] > 0, got
                assert abs(recs[0][D.R_ONSET] - 3000) <= 60 and abs(recs[1][D.R_ONSET] - a2 * 1000) <= 100, got


def test_low_snr_emg_onsets():
    # bursts 2x the background RMS (about 5 dB)
    bursts = [(4.0, 0.1, 2.0, 0.1, 10), (10.0, 0.1, 2.0, 0.1, 10), (16.0, 0.1, 2.0, 0.1, 10)]
    ts, xs = emg_track(1000, 21, bursts, rest_uv=6.0, seed=9)
    recs, _ = _run(EmgChain(1000), ts, xs)
    sq = _squeezes(recs)
    assert len(sq) == 3, [(r[D.R_ONSET], r[D.R_OFFSET]) for r in recs]
    for r, b in zip(sq, bursts):
        # 5 dB: within 75 ms (a steep start like this one reads up to a
        # filter delay early, a gentle S-shaped one that much late)
        assert abs(r[D.R_ONSET] - b[0] * 1000) <= 75, (r[D.R_ONSET], b[0])


def _squeeze_spans(recs):
    return [(r[D.R_ONSET], r[D.R_OFFSET]) for r in _squeezes(recs)]


def test_a_lone_glitch_does_not_hide_the_weak_emg_squeezes_after_it():
    # one bad sample (a loose contact, a static discharge) was remembered
    # as a spike as tall as itself, and its 5/4 lifted the onset threshold
    # over her weak squeezes for the 10-20 s it took to forget
    bursts = [(4.0, 0.1, 1.0, 0.1, 60), (10.0, 0.1, 0.5, 0.1, 12), (13.0, 0.1, 0.5, 0.1, 12),
              (16.0, 0.1, 0.5, 0.1, 12)]
    ts, xs = emg_track(1000, 19, bursts, seed=11)
    clean = _squeeze_spans(_run(EmgChain(1000), ts, xs)[0])
    assert len(clean) == 4, clean
    for size in (300, 1000):
        xs[8000] += size
        recs, _ = _run(EmgChain(1000), ts, xs)
        xs[8000] -= size
        assert _squeeze_spans(recs) == clean, (size, _squeeze_spans(recs))


def test_heartbeats_in_the_emg_raise_its_threshold_and_are_no_squeezes():
    # the QRS comes back every beat: the first is remembered no higher than
    # the onset margin (a lone spike), the next ones whole (without that
    # memory, beats become squeezes here)
    bursts = [(5.0, 0.1, 1.0, 0.1, 40), (15.0, 0.1, 1.0, 0.1, 40)]
    ts, xs = emg_track(1000, 20, bursts, seed=12)
    for k in range(20):             # 70 beats a minute, 60 ms biphasic, 80 uV
        b = 2600 + k * 857
        for i in range(60):
            if b + i < len(xs):
                xs[b + i] += int(80 * math.sin(2 * math.pi * i / 60))
    recs, _ = _run(EmgChain(1000), ts, xs)
    sq = _squeeze_spans(recs)
    assert len(sq) == 2 and abs(sq[0][0] - 5000) <= 60 and abs(sq[1][0] - 15000) <= 60, \
        [(D.KIND_NAMES[r[D.R_KIND]], r[D.R_ONSET], r[D.R_OFFSET]) for r in recs]


def test_slow_s_shaped_emg_rise_onset_refitted_at_its_start():
    # holds built up over 0.8-1.5 s along an S: its first fifth shows in
    # nothing, so the decision comes 200-500 ms after the onset; the onset
    # refitted once the rise is over is within 100 ms (the decision's own
    # estimate was up to ~300 ms late on these) for 21 of 24 rises (8
    # noise seeds), none off by more than 200 ms. The detectors of stops
    # 25 and 26 both put 22 of 24 within 100 ms (worst 151 ms); which ones
    # moves with the smallest change of state before a rise (stop 26's
    # release rule moved seed 5's third onset from +29 to -151 ms, and the
    # test then asserted every onset on seeds 5 and 11), so a count over
    # 24 rises, with one of slack, is what this test can hold to
    bursts = [(4.0, 1.2, 4.0, 0.2, 20), (13.0, 0.8, 3.0, 0.2, 25), (21.0, 1.5, 4.0, 0.2, 15)]
    errs = []
    for seed in range(1, 9):
        ts, xs = emg_track(1000, 28, bursts, rest_uv=4.0, seed=seed, gentle=True)
        recs, log = _run(EmgChain(1000), ts, xs)
        assert _kinds(recs) == ["squeeze"] * 3
        for r, b in zip(recs, bursts):
            errs.append(r[D.R_ONSET] - int(b[0] * 1000))
            assert r[D.R_DETECTED] - b[0] * 1000 >= 150     # decided well after it
    assert sum(1 for e in errs if abs(e) <= 100) >= 21, errs
    assert max(abs(e) for e in errs) <= 200, errs


def test_emg_hold_that_dips_for_a_while_stays_one_squeeze():
    # A long EMG hold wanders (recruitment, fatigue): here it sags to a
    # third of its level for ~0.35 s after 4 s. That is no release: one
    # squeeze, ended where she really let go. Two flicks with a gap that
    # long are still two squeezes (a short hold is judged as before).
    bursts = [(4.0, 0.3, 9.0, 0.2, 25), (8.0, 0.15, 0.25, 0.15, -17)]
    for seed in (5, 7):
        ts, xs = emg_track(1000, 20, bursts, rest_uv=4.0, seed=seed)
        recs, _ = _run(EmgChain(1000), ts, xs)
        sq = _squeezes(recs)
        assert len(sq) == 1, (seed, [(r[D.R_ONSET], r[D.R_OFFSET]) for r in recs])
        assert abs(sq[0][D.R_ONSET] - 4000) <= 100, sq[0][D.R_ONSET]
        assert abs(sq[0][D.R_OFFSET] - 13500) <= 200, sq[0][D.R_OFFSET]
    short = [(4.0, 0.1, 0.6, 0.1, 25), (5.15, 0.1, 0.6, 0.1, 25)]
    ts, xs = emg_track(1000, 12, short, rest_uv=4.0, seed=5)
    recs, _ = _run(EmgChain(1000), ts, xs)
    assert len(_squeezes(recs)) == 2, [(r[D.R_ONSET], r[D.R_OFFSET]) for r in recs]


def test_low_snr_emg_hold_touching_rest_for_a_moment_stays_one_squeeze():
    # At low SNR a long hold's envelope touches her rest for a moment (here
    # the hold sags to rest for ~0.1 s twice): the level over the last
    # drop_ms is still well above rest, so it is no release (issue 11: on
    # development seeds of the second generator, 5 dB holds came out as a
    # squeeze and a chain of "not relaxed" pieces). One relaxed squeeze and
    # nothing else. Two holds with a real rest of 0.25 s between stay two.
    for rest in (4.0, 8.0):
        for seed in (1, 2):
            b = [(4.0, 0.3, 10.0, 0.3, 12), (7.0, 0.03, 0.08, 0.03, -12), (10.0, 0.03, 0.08, 0.03, -12)]
            ts, xs = emg_track(1000, 22, b, rest_uv=rest, seed=seed)
            recs, _ = _run(EmgChain(1000), ts, xs)
            sq = _squeezes(recs)
            got = [(r[D.R_ONSET], r[D.R_OFFSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs]
            assert len(recs) == 1 and len(sq) == 1 and sq[0][D.R_RELAXED] == 1, (rest, seed, got)
            assert abs(sq[0][D.R_ONSET] - 4000) <= 150, (rest, seed, got)
            assert abs(sq[0][D.R_OFFSET] - 14450) <= 300, (rest, seed, got)
            b = [(4.0, 0.3, 5.0, 0.2, 20), (9.75, 0.3, 4.0, 0.2, 20)]
            ts, xs = emg_track(1000, 20, b, rest_uv=rest, seed=seed)
            recs, _ = _run(EmgChain(1000), ts, xs)
            assert len(_squeezes(recs)) == 2, (rest, seed, [(r[D.R_ONSET], r[D.R_OFFSET]) for r in recs])


def _with_and_without_the_bound(rate, ts, xs):
    # (records as (kind, onset, offset, marks), the detector) with relearn_x 2, then 0
    got = []
    for x in (2, 0):
        ch = PressureChain(rate)
        ch.det.cfg.relearn_x = x
        recs = _run(ch, ts, xs)[0]
        got.append(([(r[D.R_KIND], r[D.R_ONSET], r[D.R_OFFSET], r[D.R_MARKS]) for r in recs], ch.det))
    return got


def test_squeezes_after_a_flat_stretch_are_found_though_one_began_while_it_relearnt():
    # The sensor reads flat for 3.5 s, so the detector learns her rest afresh
    # (1.5 s); she squeezes 0.9 s after the stretch, while it learns. The
    # warm-up took that rise as noise (8-13x the sensor's), and its margin
    # hid every squeeze after (issue 11: the second generator's
    # p1_artefacts 1007, 5 of 6 squeezes missed in the minute after a
    # flat stretch). The re-learnt noise is now at most relearn_x times
    # what it was before.
    sq = [(4.0, 0.5, 3.0, 0.5, 25, 0), (13.4, 1.0, 3.0, 0.6, 22, 0),
          (22.0, 0.5, 3.0, 0.5, 25, 0), (30.0, 0.5, 3.0, 0.5, 20, 0)]
    for rate in (50, 100):
        ts, xs, _ = pressure_track(rate, 38, sq)
        for i in range(9 * rate, 25 * rate // 2):        # 9-12.5 s: the very same reading
            xs[i] = xs[9 * rate]
        (new, _), (old, _) = _with_and_without_the_bound(rate, ts, xs)
        assert new[0][0] == D.KIND_SQUEEZE and abs(new[0][1] - 4000) <= 150, (rate, new)
        assert new[1][0] == D.KIND_ARTEFACT and new[1][3] & D.M_FLAT and abs(new[1][1] - 9000) <= 50, (rate, new)
        after = [r[1] for r in new if r[0] == D.KIND_SQUEEZE and r[1] > 15000]
        assert len(after) == 2 and abs(after[0] - 22000) <= 150 and abs(after[1] - 30000) <= 150, (rate, new)
        assert not [r for r in old if r[0] == D.KIND_SQUEEZE and r[1] > 15000], (rate, old)   # before: all hidden


def test_the_relearnt_noise_is_not_bounded_when_no_squeeze_moved_her_level():
    # No squeeze in the warm-up, so the bound must change nothing (the same
    # records with relearn_x 0). A warm-up cut short by a second gap keeps
    # the noise from before the first as its bound, not the half-learnt one
    # (5 counts here against 20), and a sensor that is 5x noisier after a
    # gap is learnt as it is: its level does not move (bounded all the same,
    # it made false squeezes from 14.5 s on at 100 Hz).
    sq = [(4.0, 0.5, 3.0, 0.5, 25, 0), (30.0, 0.5, 3.0, 0.5, 25, 0), (45.0, 0.5, 3.0, 0.5, 25, 0)]
    ts, xs, _ = pressure_track(50, 60, sq, noise=3.0)
    xs = list(xs)
    for a, b in ((450, 550), (570, 675)):     # gaps at 9-11 s and 11.4-13.5 s
        for i in range(a, b):
            xs[i] = None
    (bound, det), (free, _) = _with_and_without_the_bound(50, ts, xs)
    assert bound == free and len([r for r in bound if r[0] == D.KIND_SQUEEZE]) == 3, bound
    before = PressureChain(50)
    _run(before, ts[:450], xs[:450])
    assert det.was_n == before.det.lvl.noise() > 10, (det.was_n, before.det.lvl.noise())
    for rate in (50, 100):
        ts, xs, _ = pressure_track(rate, 60, sq, noise=1.0)
        _, noisier, _ = pressure_track(rate, 60, sq, noise=5.0, seed=7)
        xs = list(xs)
        for i in range(11 * rate, len(xs)):
            xs[i] = noisier[i]
        for i in range(9 * rate, 11 * rate):
            xs[i] = None
        (bound, _), (free, _) = _with_and_without_the_bound(rate, ts, xs)
        assert bound == free, (rate, bound, free)


def test_saturation_is_an_artefact_and_detection_recovers():
    from knip.filters import X_MAX
    sq = [(4.0, 0.5, 2.0, 0.5, 30, 0), (14.0, 0.5, 2.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 20, sq)
    for i in range(400, 450):            # 8-9 s: the sensor sits at its rail
        xs[i] = X_MAX
    recs, _ = _run(PressureChain(50), ts, xs)
    assert _kinds(recs) == ["squeeze", "artefact", "squeeze"]
    art = recs[1]
    assert art[D.R_MARKS] & D.M_SATURATED
    assert 7900 <= art[D.R_ONSET] <= 8100 and 8900 <= art[D.R_OFFSET] <= 9100


def test_gap_mid_squeeze_cuts_it_and_is_reported():
    sq = [(4.0, 0.5, 4.0, 0.5, 30, 0), (16.0, 0.5, 2.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 22, sq)
    xs = list(xs)
    for i in range(300, 400):            # 6-8 s missing (NaN in a file)
        xs[i] = None
    recs, _ = _run(PressureChain(50), ts, xs)
    assert _kinds(recs) == ["squeeze", "artefact", "squeeze"]
    assert recs[0][D.R_MARKS] & D.M_CUT
    assert recs[1][D.R_MARKS] & D.M_GAP
    assert abs(recs[2][D.R_ONSET] - 16000) <= 120


def test_a_level_that_never_comes_down_is_a_shift_not_a_squeeze():
    # the probe moved: +25 cmH2O from 10 s on, for good; then a real squeeze
    sq = [(10.0, 0.5, 200.0, 0.5, 25, 0), (130.0, 0.5, 3.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 140, sq)
    recs, _ = _run(PressureChain(50), ts, xs)
    assert _kinds(recs) == ["artefact", "squeeze"]
    assert recs[0][D.R_MARKS] & D.M_CUT and abs(recs[1][D.R_ONSET] - 130000) <= 150


def test_electrode_pop_is_never_a_squeeze():
    bursts = [(3.0, 0.1, 1.0, 0.1, 50), (12.0, 0.1, 1.0, 0.1, 50)]
    ts, xs = emg_track(1000, 16, bursts)
    for i in range(7000, 8500):          # a pop: a 6 mV step, then a slow decay
        xs[i] += int(6000 * (0.995 ** (i - 7000)))
    recs, _ = _run(EmgChain(1000), ts, xs)
    assert _kinds(recs) == ["squeeze", "artefact", "squeeze"]
    assert recs[1][D.R_ONSET] == 7000


def test_squeeze_in_the_last_ones_undershoot_is_a_squeeze():
    # real manometry settles 21-35 % of the rise below rest after a squeeze
    # and recovers over seconds; she squeezes again 0.5-2.5 s after the
    # release, from that undershoot (at 0.5 s straight from its trough): each
    # is a squeeze, not a movement (its dip before the rise, or a release
    # that swung into the next, is the last one's recovery)
    for rate, u, rest in ((100, 0.21, 0.5), (100, 0.35, 0.5), (100, 0.35, 1.5), (100, 0.35, 2.5),
                          (50, 0.25, 2.5), (50, 0.35, 0.5)):
        step = 2.1 + rest
        sq = [(8.0 + k * step, 0.6, 1.0, 0.5, 30, 0) for k in range(3)]
        ts, xs, _ = pressure_track(rate, 8.0 + 3 * step + 8.0, sq, noise=0.1, ripple=0.5, under=(u, 2.0))
        recs, _ = _run(PressureChain(rate), ts, xs)
        assert _kinds(recs) == ["squeeze"] * 3, (rate, u, rest, [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]])
                                                               for r in recs])


def test_slow_rise_under_deep_breathing_is_a_squeeze():
    # breathing swings the probe by 3-4 cmH2O peak to peak; a squeeze of 10
    # cmH2O built up over 1.5-2 s lifted the level and noise its threshold
    # is made of as fast as it climbed (issue 11: held-out sessions missed
    # whole 10 s holds so). Both are found, their onsets within 0.8 s.
    for ripple, rise in ((1.5, 1.5), (1.5, 2.0), (2.0, 1.5), (2.0, 2.0)):
        sq = [(10.0, rise, 4.0, 0.4, 10, 0), (16.0 + rise, rise, 4.0, 0.4, 10, 0)]
        ts, xs, _ = pressure_track(50, 35, sq, noise=0.3, ripple=ripple)
        recs, _ = _run(PressureChain(50), ts, xs)
        got = [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs]
        assert _kinds(recs) == ["squeeze"] * 2, (ripple, rise, got)
        for r, s in zip(recs, sq):
            assert 0 <= r[D.R_ONSET] - s[0] * 1000 < 800, (ripple, rise, got)


def test_relaxed_through_a_slow_breath_with_two_channels():
    # a slow breath (8 s) moves the probe 2 cmH2O peak to peak and the
    # abdomen twice that: a relaxed squeeze's verdict window falls on a
    # crest or a trough of it. With the abdominal channel the breath's share
    # (learnt at rest: the probe follows half the abdomen's changes) is
    # taken off the residual, so every one reads relaxed (half of them did
    # not before).
    sq = [(12.0 + k * 4.3, 0.3, 0.5, 0.3, 7, 0) for k in range(10)]
    ts, xs, ab = pressure_track(50, 60, sq, noise=0.1, ripple=1.0, breath_hz=0.12)
    ch = PressureChain(50, two_channel=True)
    recs, _ = _run(ch, ts, xs, ab)
    assert _kinds(recs) == ["squeeze"] * 10
    assert [r[D.R_RELAXED] for r in recs] == [1] * 10, [(r[D.R_ONSET], r[D.R_RESIDUAL]) for r in recs]
    assert 100 < ch.det.tx_q < 156          # about half (/256)
    # one channel: the same squeezes, no abdomen to learn from
    assert PressureChain(50).det.abd_tone is None


def test_quick_squeeze_to_a_high_plateau_then_a_squeeze_are_two():
    # a quick squeeze released in 0.4-0.6 s to a residual plateau of 50-60 %
    # of its rise (above the release level, and the hold level followed the
    # fall), then a new squeeze from the plateau 2.3 s later: two squeezes,
    # the first not relaxed (issue 11: they merged into one of 5 s)
    for rate in (50, 100):
        for res, rel in ((11.4, 0.4), (11.4, 0.6), (12.0, 0.5)):
            sq = [(10.0, 0.3, 1.0, rel, 20, res), (13.7, 0.3, 1.5, 0.4, 9, 0)]
            ts, xs, _ = pressure_track(rate, 25, sq, noise=0.1, ripple=0.5)
            recs, _ = _run(PressureChain(rate), ts, xs)
            got = [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]], r[D.R_RELAXED]) for r in recs]
            assert _kinds(recs) == ["squeeze"] * 2, (rate, res, rel, got)
            assert recs[0][D.R_RELAXED] == 0 and abs(recs[1][D.R_ONSET] - 13700) <= 100, (rate, res, rel, got)


def test_squeeze_around_a_cough_is_a_squeeze():
    # "the knack": she squeezes just after a cough (the conditioning filter
    # rings a few % of the cough below rest): a cough, then a squeeze
    for rate, cough, amp, after in ((100, 150, 15, 0.25), (100, 200, 20, 0.5), (50, 100, 15, 0.55),
                                    (50, 100, 15, 1.25)):
        sq = [(8.0 + after, 0.6, 2.0, 0.5, amp, 0)]
        ts, xs, _ = pressure_track(rate, 16, sq, noise=0.1, ripple=0.5, coughs=[(8.0, cough)])
        recs, _ = _run(PressureChain(rate), ts, xs)
        assert _kinds(recs) == ["cough", "squeeze"], (rate, cough, after, _kinds(recs))


def test_squeeze_while_the_probe_settles_is_a_squeeze():
    # the probe settles 10-15 cmH2O over the first seconds (time constant 3
    # s): her resting tone lags it, and a squeeze then rises from below it;
    # a falling tone is no movement
    for drop, at in ((10, 2.0), (10, 3.0), (15, 2.0), (15, 3.0), (15, 5.0)):
        sq = [(at, 0.6, 2.0, 0.5, 15, 0)]
        ts, xs, _ = pressure_track(100, 15, sq, base=25.0, noise=0.1, ripple=0.5, warm=(-drop, 3.0))
        recs, _ = _run(PressureChain(100), ts, xs)
        assert _kinds(recs) == ["squeeze"], (drop, at, _kinds(recs))
    # a slower settle (time constant 5 s): by the end of her release the
    # probe has fallen further than her tone had by her rise (the tone is
    # held while she squeezes)
    for rate, drop, at in ((50, 15, 2.0), (100, 20, 2.4), (50, 25, 1.8)):
        sq = [(at, 0.6, 2.0, 0.5, 10, 0)]
        ts, xs, _ = pressure_track(rate, 15, sq, base=25.0, noise=0.1, ripple=0.5, warm=(-drop, 5.0))
        recs, _ = _run(PressureChain(rate), ts, xs)
        assert _kinds(recs) == ["squeeze"], (rate, drop, at, _kinds(recs))


def test_her_first_breaths_are_no_squeezes():
    # breathing swings the probe by 3 cmH2O peak to peak here; the first
    # 1.5 s see part of one breath, so the noise learnt then is far below
    # its swing, and the next breaths crossed the 2 cmH2O floor, each taken
    # for a squeeze and each keeping the noise from learning (issue 11: the
    # second generator's development seeds, up to 6 in the first 20 s of a
    # session). Until she has been seen at rest for 10 s, a rise must also
    # pass 4 cmH2O over the lowest point seen; a squeeze in that time, and
    # the one after it, are still found (onsets within 250 ms, decided
    # within 400 ms of it), and nothing else is reported.
    for rate, hz in ((50, 0.15), (50, 0.25)):       # (100 Hz: the two cases below)
        for phase in (0.0, 1.57, 3.14, 4.71):
            for first in ((), ((4.0, 0.6, 2.0, 0.5, 6, 0),), ((6.0, 0.6, 2.0, 0.5, 6, 0),)):
                sq = list(first) + [(24.0, 0.6, 3.0, 0.5, 8, 0)]
                ts, xs, _ = pressure_track(rate, 32, sq, noise=0.05, ripple=1.5, breath_hz=hz, phase=phase)
                recs, _ = _run(PressureChain(rate), ts, xs)
                got = [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs]
                assert _kinds(recs) == ["squeeze"] * len(sq), (rate, hz, phase, got)
                for r, s in zip(recs, sq):
                    assert abs(r[D.R_ONSET] - s[0] * 1000) < 250, (rate, hz, phase, got)
                    assert r[D.R_DETECTED] - s[0] * 1000 < 400, (rate, hz, phase, got)
    # 3.5 cmH2O breaths whose crest is still over the ordinary threshold
    # when her 10 s are up: the rule ends at the next sample under it
    for rate, phase in ((50, 2.62), (100, 3.0)):
        ts, xs, _ = pressure_track(rate, 32, [(24.0, 0.6, 3.0, 0.5, 8, 0)], noise=0.05, ripple=1.75,
                                   breath_hz=0.25, phase=phase)
        recs, _ = _run(PressureChain(rate), ts, xs)
        got = [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs]
        assert len(recs) == 1 and abs(recs[0][D.R_ONSET] - 24000) < 250, (rate, phase, got)


def test_a_weak_squeeze_taken_for_a_breath_leaves_the_next_ones_found():
    # the other side of the rule above: with quiet breathing, 3 cmH2O
    # squeezes every 6 s from 5 s. Those in her first 10 s of rest are under
    # the 4 cmH2O and taken for breaths (the first is missed; the second is
    # found 1.7 s late, when a wobble of its hold passes the 4 cmH2O); they
    # are not learnt as her rest either, or the noise and level they left hid
    # every squeeze after them (an independent review found 0 of 15 then).
    # All from 17 s are found.
    sq = [(5.0 + 6 * k, 0.6, 2.0, 0.5, 3, 0) for k in range(15)]
    ts, xs, _ = pressure_track(50, 96, sq, ripple=0.4)
    recs, _ = _run(PressureChain(50), ts, xs)
    on = [r[D.R_ONSET] for r in recs if r[D.R_KIND] == D.KIND_SQUEEZE]
    for s in sq[2:]:
        assert any(abs(o - s[0] * 1000) < 250 for o in on) or s[0] < 17, (s[0], on)
    assert len(on) <= len(sq), on


def test_a_probe_that_moved_up_in_her_first_rest_is_her_rest():
    # her rest steps up 2.5-3.5 cmH2O at 5 s and stays (the probe moved):
    # over the ordinary threshold, under the 4 cmH2O of her first rest, so
    # not learnt. After 20 s of rest so it is her rest, not a squeeze (the
    # detector before the rule took it for one that swallowed the squeeze
    # at 30 s), and the squeezes after it are found.
    for rate, step in ((50, 2.5), (100, 3.0), (50, 3.5)):
        sq = [(30.0, 0.6, 3.0, 0.5, 8, 0), (40.0, 0.6, 3.0, 0.5, 8, 0)]
        ts, xs, _ = pressure_track(rate, 48, sq, ripple=0.1, noise=0.05)
        for i in range(len(xs)):
            if ts[i] >= 5000:
                xs[i] += int(step * C)
        recs, _ = _run(PressureChain(rate), ts, xs)
        got = [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs]
        assert _kinds(recs) == ["squeeze"] * 2, (rate, step, got)
        for r, s in zip(recs, sq):
            assert abs(r[D.R_ONSET] - s[0] * 1000) < 250, (rate, step, got)


def test_a_raised_rest_becomes_her_rest():
    # her rest steps up 3 cmH2O during the first release (a probe shift, a
    # tone that stays raised) and stays there; she then does relaxed 20
    # cmH2O squeezes every 10 s: not relaxed at first, but the tone held on
    # that "plateau" must not stay held for the rest of the session
    sq = [(8.0 + 10 * k, 0.6, 3.0, 0.5, 20, 0) for k in range(8)]
    for rate in (100, 50):
        ts, xs, _ = pressure_track(rate, 95, sq, noise=0.1, ripple=0.5)
        for i in range(len(ts)):
            if ts[i] >= 11600:
                u = (ts[i] - 11600) / 500.0
                u = 1.0 if u > 1.0 else u
                xs[i] += int(3 * C * u * u * (3 - 2 * u) + 0.5)
        recs, _ = _run(PressureChain(rate), ts, xs)
        sq_recs = _squeezes(recs)
        assert len(sq_recs) == 8, (rate, _kinds(recs))
        assert sq_recs[0][D.R_RELAXED] == 0
        assert [r[D.R_RELAXED] for r in sq_recs[3:]] == [1] * 5, (rate, [r[D.R_RELAXED] for r in sq_recs])


def test_a_slow_deep_dip_does_not_swallow_the_next_squeeze():
    # her pressure dips 10-15 cmH2O over 2-3 s (a movement, a slow one) and
    # comes back: the climb back to her rest is no squeeze, and the squeeze
    # 10-20 s later is found on its own, at its onset (a level dragged down
    # by the dip made the climb back a 'squeeze' that held at rest for up to
    # 90 s and swallowed it)
    for rate, amp, secs, gap in ((50, 15, 3.0, 20.0), (100, 15, 3.0, 20.0), (50, 10, 2.0, 10.0),
                                 (100, 12, 2.5, 12.0)):
        on = 8.0 + secs + gap
        sq = [(on, 0.6, 3.0, 0.5, 15, 0)]
        ts, xs, _ = pressure_track(rate, on + 10, sq, noise=0.1, ripple=0.5, dips=[(8.0, secs, amp)])
        recs, _ = _run(PressureChain(rate), ts, xs)
        sq_recs = _squeezes(recs)
        assert len(sq_recs) == 1, (rate, amp, [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs])
        assert abs(sq_recs[0][D.R_ONSET] - on * 1000) <= 250, (rate, amp, sq_recs[0][D.R_ONSET])


def test_relaxed_squeezes_with_the_next_one_soon_after_are_relaxed():
    # a sprint whose next squeeze comes 0.25-0.4 s after she let go fully:
    # the verdict window is cut short, and its mean holds the release's tail
    # and the next rise's foot (it read 2-4 cmH2O of residual on 20 cmH2O
    # squeezes); she was down at rest in between, so each is relaxed; a
    # squeeze left on a 5 cmH2O residual is still not relaxed
    sq, t = [], 4.0
    for gap in (0.25, 0.3, 0.4, 0.35, 0.25):
        sq.append((t, 0.3, 0.4, 0.4, 20, 0))
        t += 1.1 + gap
    sq.append((t, 0.3, 0.4, 0.4, 20, 5))
    sq.append((t + 2.5, 0.3, 0.4, 0.4, 20, 0))
    ts, xs, _ = pressure_track(50, t + 6, sq, noise=0.1, ripple=0.5)
    recs, _ = _run(PressureChain(50), ts, xs)
    got = [(r[D.R_ONSET], r[D.R_RELAXED], r[D.R_RESIDUAL]) for r in _squeezes(recs)]
    assert len(got) == 7, got
    assert [g[1] for g in got[:5]] == [1] * 5, got
    assert got[5][1] == 0, got


def test_pressure_hold_that_dips_and_comes_back_stays_one_relaxed_squeeze():
    # a 9 s hold whose pressure sags by over 40 % of the rise for most of a
    # second (a wobble, fatigue) and comes back: still the same squeeze,
    # and relaxed after it (the dip was read as a release to a plateau,
    # the rest of the hold as its residual: not relaxed)
    for rate in (50, 100):
        for depth, at in ((9.0, 8.0), (8.5, 9.5)):
            sq = [(5.0, 0.6, 8.0, 0.6, 20, 0), (20.0, 0.6, 3.0, 0.6, 20, 0)]
            ts, xs, _ = pressure_track(rate, 28, sq, noise=0.1, ripple=0.5, dips=((at, 0.9, depth),))
            recs, _ = _run(PressureChain(rate), ts, xs)
            got = [(r[D.R_ONSET], r[D.R_OFFSET], D.KIND_NAMES[r[D.R_KIND]], r[D.R_RELAXED]) for r in recs]
            assert len(_squeezes(recs)) == 2 and _kinds(recs) == ["squeeze"] * 2, (rate, depth, got)
            assert recs[0][D.R_RELAXED] == 1 and abs(recs[0][D.R_OFFSET] - 14200) <= 300, (rate, depth, got)


def test_mains_hum_is_found_and_taken_off():
    # 50 Hz hum (a third harmonic on it, its size swinging) under bursts of
    # 25-40 uV RMS: found at rest within seconds and taken off, the
    # detector learns her rest again, and the bursts are squeezes with
    # their onsets and offsets. Without: 40 uV of hum held the releases
    # up by 2 s, 80 uV hid two of the three bursts.
    bursts = [(8.0, 0.1, 2.0, 0.1, 40), (14.0, 0.15, 1.0, 0.1, 25), (19.0, 0.1, 3.0, 0.2, 30)]
    for uv in (40.0, 80.0):
        ts, xs = emg_track(1000, 26, bursts, hum=(uv, 50))
        ch = EmgChain(1000)
        recs, _ = _run(ch, ts, xs)
        got = [(r[D.R_ONSET], r[D.R_OFFSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs]
        assert _kinds(recs) == ["squeeze"] * 3, (uv, got)
        for r, b in zip(recs, bursts):
            assert abs(r[D.R_ONSET] - b[0] * 1000) <= 80, (uv, got)
            assert abs(r[D.R_OFFSET] - (b[0] + b[1] + b[2] + b[3]) * 1000) <= 150, (uv, got)
        assert ch.k[K.CH_HUM] == 20


def test_hum_stays_off_after_an_electrode_pop():
    # the same with an electrode pop at rest (3 mV, decaying over 0.5 s):
    # an artefact, and the hum's template survives it (the chain's filters
    # restart, the hum does not come back as a "squeeze" while relearnt)
    bursts = [(8.0, 0.1, 2.0, 0.1, 40), (14.0, 0.15, 1.0, 0.1, 25), (19.0, 0.1, 3.0, 0.2, 30)]
    ts, xs = emg_track(1000, 26, bursts, hum=(60.0, 50))
    for i in range(500):
        xs[11500 + i] += int(3000 * math.exp(-i / 100.0))
    recs, _ = _run(EmgChain(1000), ts, xs)
    got = [(r[D.R_ONSET], r[D.R_OFFSET], D.KIND_NAMES[r[D.R_KIND]]) for r in recs]
    assert [g[2] for g in got] == ["squeeze", "artefact", "squeeze", "squeeze"], got
    assert abs(got[1][0] - 11500) <= 50, got


def test_no_hum_nothing_taken_off():
    # clean EMG, and 60 Hz hum at 1 kHz (not a whole number of samples a
    # cycle): the template is learnt but never taken off
    bursts = [(4.0, 0.1, 2.0, 0.1, 60), (9.0, 0.1, 0.5, 0.1, 50), (13.0, 0.15, 4.0, 0.2, 40)]
    ts, xs = emg_track(1000, 20, bursts)
    ch = EmgChain(1000)
    _run(ch, ts, xs)
    assert ch.k[K.CH_HUM] == -20
    assert EmgChain(1000, mains_hz=60).k[K.CH_HUM] == 0
    assert EmgChain(1200, mains_hz=60).k[K.CH_HUM] == -20


def test_a_moderate_squeeze_from_a_low_plateau_left_by_a_strong_one_is_found():
    # a strong quick squeeze (40 cmH2O) released to a low residual plateau
    # (6 cmH2O, 15 %), then a 10 s hold 6 cmH2O above the plateau: under 20 %
    # of the strong one's rise (8), it went unseen (issue 11: a 10 s hold on
    # the second generator, never reported); the size is now also bounded
    # by 3x the plateau's own height (20 % of 18: 3.6 cmH2O). A rise of 3
    # cmH2O from it is still no new squeeze (it would be with no plateau rule)
    for rate in (50, 100):
        strong = (5.0, 0.2, 0.4, 0.3, 40, 6)
        got = {}
        for amp in (6, 3):
            sq = [strong, (10.0, 0.6, 8.0, 0.6, amp, 0)]
            ts, xs, _ = pressure_track(rate, 24, sq, noise=0.1, ripple=0.5)
            for k, pct in ((3, 20), (0, 20), (3, 0)):
                ch = PressureChain(rate)
                ch.det.cfg.plateau_res = k
                ch.det.cfg.plateau_pct = pct
                recs, _ = _run(ch, ts, xs)
                got[amp, k, pct] = [(r[D.R_ONSET], D.KIND_NAMES[r[D.R_KIND]], r[D.R_RELAXED], r[D.R_MARKS])
                                    for r in recs]
        new = got[6, 3, 20]
        assert [g[1] for g in new] == ["squeeze", "squeeze"], (rate, new)
        assert new[0][2] == 0 and abs(new[1][0] - 10000) <= 150, (rate, new)
        assert new[1][3] & D.M_PLATEAU, (rate, new)
        assert [g[1] for g in got[6, 0, 20]] == ["squeeze"], (rate, got)   # the old size: missed
        assert [g[1] for g in got[3, 3, 20]] == ["squeeze"], (rate, got)   # under the size
        assert [g[1] for g in got[3, 3, 0]] == ["squeeze", "squeeze"], (rate, got)  # no plateau rule
