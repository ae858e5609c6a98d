# What a sensor does when it is pushed past its range or an electrode pops,
# and that none of it becomes a squeeze. Run by pytest (CPython) and by
# run_tests.py (MicroPython unix port).
import math

from knip.chain import PressureChain, EmgChain
from knip.detector import SqueezeDetector, DetectorConfig
from knip.filters import X_MAX
from knip import replay
from knip import kernels as K
from knip import record as D
from signals import pressure_track, emg_track, collect


def _run(chain, ts, xs):
    collect()
    return replay.run(chain, ts, xs, None, [])


def _run2(chain, ts, xs, ab):
    collect()
    return replay.run(chain, ts, xs, ab, [])


def _got(recs):
    return [(D.KIND_NAMES[r[D.R_KIND]], r[D.R_ONSET], r[D.R_OFFSET]) for r in recs]


def _swing(xs, i0, ramp, n, rail):
    # a swing into the rail: ramp samples from where it is, n at the rail,
    # ramp back to where the signal is then
    x0 = xs[i0]
    for j in range(ramp):
        xs[i0 + j] = x0 + (rail - x0) * (j + 1) // (ramp + 1)
    for j in range(n):
        xs[i0 + ramp + j] = rail
    i1 = i0 + ramp + n
    x1 = xs[i1 + ramp]
    for j in range(ramp):
        xs[i1 + j] = rail + (x1 - rail) * (j + 1) // (ramp + 1)


def test_emg_swing_into_the_rail_is_one_artefact_never_a_squeeze():
    # a tugged lead: 30 ms down to the rail, 0.3 s there, 30 ms back. Its
    # ramp starts a "squeeze" before the rail is reached: the artefact
    # takes it (from its onset, under its number), and nothing after it
    # is a squeeze until her next burst
    bursts = [(3.0, 0.1, 1.0, 0.1, 50), (12.0, 0.1, 1.0, 0.1, 50)]
    ts, xs = emg_track(1000, 16, bursts)
    _swing(xs, 7000, 30, 300, -X_MAX)
    recs = _run(EmgChain(1000), ts, xs)
    got = _got(recs)
    assert [g[0] for g in got] == ["squeeze", "artefact", "squeeze"], got
    art = recs[1]
    assert art[D.R_MARKS] & D.M_SATURATED
    assert 6990 <= art[D.R_ONSET] <= 7040 and 7320 <= art[D.R_OFFSET] <= 7370, got
    assert abs(got[2][1] - 12000) <= 60, got
    assert [r[D.R_SEQ] for r in recs] == [1, 2, 3]


def test_pressure_rise_into_the_rail_is_the_artefact():
    # the probe pushed past its range 0.2 s into a rise: the "squeeze" that
    # began is ended as an artefact of its own (the ramp: its start was
    # streamed, so its end comes under its number), then the stretch at the
    # rail; her squeezes either side are squeezes
    sq = [(4.0, 0.5, 2.0, 0.5, 30, 0), (16.0, 0.5, 2.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 22, sq)
    _swing(xs, 500, 10, 50, X_MAX)          # 10-10.2 s up, 1 s at the rail
    recs = _run(PressureChain(50), ts, xs)
    got = _got(recs)
    assert [g[0] for g in got] == ["squeeze", "artefact", "artefact", "squeeze"], got
    assert 9900 <= got[1][1] <= 10100 and 10150 <= got[1][2] <= 10250, got
    assert recs[1][D.R_MARKS] & D.M_SATURATED and recs[1][D.R_MARKS] & D.M_CUT
    assert [r[D.R_SEQ] for r in recs] == [1, 2, 3, 4]


def test_a_squeeze_cut_by_saturation_is_kept_unjudged():
    # 1.5 s into her hold the sensor saturates: her squeeze stands (cut
    # there), but whether she relaxed after it was not seen
    sq = [(4.0, 0.5, 4.0, 0.5, 30, 0), (16.0, 0.5, 2.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 22, sq)
    for i in range(300, 340):               # 6.0-6.8 s at the rail
        xs[i] = X_MAX
    recs = _run(PressureChain(50), ts, xs)
    got = _got(recs)
    assert [g[0] for g in got] == ["squeeze", "artefact", "squeeze"], got
    assert recs[0][D.R_MARKS] & D.M_CUT and recs[0][D.R_RELAXED] == -1
    assert recs[2][D.R_RELAXED] == 1


def test_fast_pop_tail_at_rest_is_not_a_squeeze():
    # an electrode pop: a 3.7 mV step that returns over ~80 ms to a new
    # offset; its tail through the high-pass hovers at the onset threshold
    # after the artefact has been reported
    bursts = [(3.0, 0.1, 1.0, 0.1, 50), (12.0, 0.1, 1.0, 0.1, 50)]
    for seed in (5, 6, 7):
        ts, xs = emg_track(1000, 16, bursts, rest_uv=6.0, seed=seed)
        for i in range(7000, 9000):
            xs[i] += int(3700 * math.exp(-(i - 7000) / 80.0)) - 50
        for i in range(9000, len(xs)):
            xs[i] -= 50
        got = _got(_run(EmgChain(1000), ts, xs))
        assert [g[0] for g in got] == ["squeeze", "artefact", "squeeze"], (seed, got)


def test_hum_template_is_kept_from_before_the_swing():
    # hum found and taken off; then a swing into the rail. The template
    # learnt on the ramp and on the filters' ring after it would take "hum"
    # off that is not there: the chain goes on from a copy taken before it
    bursts = [(8.0, 0.1, 1.0, 0.1, 40), (16.0, 0.1, 1.0, 0.1, 40)]
    ts, xs = emg_track(1000, 20, bursts, hum=(60.0, 50))
    _swing(xs, 12000, 25, 300, X_MAX)
    ch = EmgChain(1000)
    lv = []
    for i in range(len(ts)):
        ch.push(ts[i], xs[i])
        if 10000 <= i < 11900 and i % 100 == 0 or 12650 <= i < 13500 and i % 50 == 0:
            lv.append((i, ch.level))
    assert ch.k[K.CH_HUM] == 20
    before = max(v for i, v in lv if i < 11900)
    after = max(v for i, v in lv if i >= 12700)
    assert after <= 2 * before, lv
    recs = _run(EmgChain(1000), ts, xs)
    got = _got(recs)
    assert [g[0] for g in got] == ["squeeze", "artefact", "squeeze"], got


def _tail_run(tail, shift=0, t0=0):
    # the EMG envelope (100 Hz) at rest, a 50 ms artefact at 5 s reported
    # as the input guard does, then tail(t) on top of her rest (and shift
    # for good), and a squeeze of hers at 9-10 s; the clock reads t0 at the
    # start
    d = SqueezeDetector(10, DetectorConfig("emg"), 8, 0)
    seed = [12345]
    recs = []

    def feed(t, v):
        seed[0] = (seed[0] * 1103515245 + 12345) & 0x7FFFFFFF
        if d.update(t + t0, v + (seed[0] >> 16) % 21 - 10) & D.EV_END:
            recs.append((D.KIND_NAMES[d.done[D.R_KIND]], d.done[D.R_ONSET] - t0))

    for t in range(0, 5000, 10):
        feed(t, 100)
    d.cut(5000 + t0, 300)
    d.artefact(5000 + t0, 5050 + t0, D.M_SPIKE)
    recs.append(("artefact", d.done[D.R_ONSET] - t0))
    for t in range(5300, 14000, 10):
        feed(t, 100 + shift + tail(t) + (500 if 9000 <= t < 10000 else 0))
    return recs


def test_an_artefacts_tail_above_the_threshold_is_no_squeeze():
    # detection resumes while a pop's tail is still above the onset
    # threshold: no squeeze until she has been back at rest
    for amp in (60, 120, 200):
        got = _tail_run(lambda t: int(amp * math.exp(-(t - 5300) / 400.0)) if t < 8000 else 0)
        assert got == [("artefact", 5000), ("squeeze", 8970)], (amp, got)
    # the same on a clock that runs before 0, the wait for rest ending at
    # exactly 0 ms included (0 once meant "no wait")
    for t0 in (-7050, -20000):
        got = _tail_run(lambda t: int(120 * math.exp(-(t - 5300) / 400.0)) if t < 8000 else 0, t0=t0)
        assert got == [("artefact", 5000), ("squeeze", 8970)], (t0, got)


def test_a_level_raised_for_good_after_an_artefact_is_learnt():
    # the electrode sits differently after the pop: her rest is higher
    # from then on; within a few seconds it is her rest, and her squeeze
    # on top of it is found
    got = _tail_run(lambda t: 0, shift=150)
    assert got == [("artefact", 5000), ("squeeze", 8970)], got


def test_emg_co_contraction_as_strong_as_the_squeeze_is_no_push():
    # two EMG channels: the abdomen's EMG rises about as much as the pelvic
    # floor's in a co-contraction (the two muscles' amplitudes are not in
    # one unit); a push drives the abdomen several times higher
    pf = [(4.0, 0.1, 2.0, 0.1, 40), (10.0, 0.1, 2.0, 0.1, 40), (16.0, 0.3, 2.0, 0.3, 15)]
    abd = [(4.0, 0.1, 2.0, 0.1, 2), (10.0, 0.1, 2.0, 0.1, 44), (16.0, 0.3, 2.0, 0.3, 90)]
    ts, xs = emg_track(1000, 22, pf, seed=5)
    _, ab = emg_track(1000, 22, abd, seed=9)
    recs = _run2(EmgChain(1000, two_channel=True), ts, xs, ab)
    got = [(D.KIND_NAMES[r[D.R_KIND]], D.TECH_NAMES[r[D.R_TECH]]) for r in recs if r[D.R_CHANNEL] == 0]
    assert got == [("squeeze", "lift"), ("squeeze", "co_contraction"), ("bearing_down", "push")], got


def test_abdominal_channel_at_its_rail_is_saturation():
    # the abdominal tube reads its floor for 0.3 s while she rests: that
    # stretch is saturation, and her squeeze after it is a lift, with the
    # abdomen's rise read from where it really was
    sq = [(4.0, 0.5, 2.0, 0.5, 30, 0, 2), (16.0, 0.5, 2.0, 0.5, 30, 0, 2)]
    ts, xs, ab = pressure_track(50, 22, sq, abd=True)
    for i in range(500, 515):
        ab[i] = -X_MAX
    recs = _run2(PressureChain(50, two_channel=True), ts, xs, ab)
    got = [(D.KIND_NAMES[r[D.R_KIND]], D.TECH_NAMES[r[D.R_TECH]], r[D.R_ONSET]) for r in recs]
    assert [(g[0], g[1] if g[0] == "squeeze" else "-") for g in got] == \
        [("squeeze", "lift"), ("artefact", "-"), ("squeeze", "lift")], got
    assert recs[1][D.R_MARKS] & D.M_SATURATED and 9950 <= got[1][2] <= 10050, got
    assert recs[2][D.R_ABD_RISE] < 5 * 20, recs[2][D.R_ABD_RISE]


def test_artefacts_are_found_at_negative_times_too():
    # a recording whose clock starts before 0 (knip analyze allows +-12
    # days): the same swing into the rail is still one artefact
    bursts = [(3.0, 0.1, 1.0, 0.1, 50), (12.0, 0.1, 1.0, 0.1, 50)]
    ts, xs = emg_track(1000, 16, bursts)
    _swing(xs, 7000, 30, 300, -X_MAX)
    ts = [t - 20000 for t in ts]
    got = _got(_run(EmgChain(1000), ts, xs))
    assert [g[0] for g in got] == ["squeeze", "artefact", "squeeze"], got
    assert -13010 <= got[1][1] <= -12960, got


def test_a_clock_before_0_or_days_on_gives_the_same_records():
    # knip analyze allows times of +-12 days: the records of a recording
    # whose clock starts at -11.6 days or +11.6 days are those of the same
    # samples from 0, shifted (the onset walk once stopped at -1 ms, "no
    # squeeze yet"; the rest before a squeeze was unknown below 0; "long
    # ago", "still recovering" and "no hum copy" were +-2^29 ms, inside
    # that range): one channel and two of pressure, and EMG with mains hum
    # and a swing into the rail (the hum template's copies)
    times = (D.R_ONSET, D.R_DETECTED, D.R_PEAK_T, D.R_OFFSET, D.R_ENDED, D.R_VERDICT_T)
    sq = [(3.0, 0.8, 2.0, 0.5, 30, 0, 2), (9.0, 1.5, 3.0, 0.8, 25, 5, 3), (16.0, 0.3, 0.5, 0.3, 35, 0, 30)]
    ts, xs, ab = pressure_track(50, 22, sq, gentle=True, abd=True)
    bursts = [(8.0, 0.1, 1.0, 0.1, 40), (16.0, 0.1, 1.0, 0.1, 40)]
    te, xe = emg_track(1000, 20, bursts, hum=(60.0, 50))
    _swing(xe, 12000, 25, 300, X_MAX)
    runs = ((lambda: PressureChain(50), ts, xs, None, 3),
            (lambda: PressureChain(50, two_channel=True), ts, xs, ab, 3),
            (lambda: EmgChain(1000), te, xe, None, 3))
    for make, ts, xs, ab, n in runs:
        a = _run2(make(), ts, xs, ab)
        assert len(a) == n, a
        assert a[-1][D.R_REST_BEFORE] > 0, a[-1]
        for shift in (-1000000000, 1000000000):
            b = _run2(make(), [t + shift for t in ts], xs, ab)
            assert len(b) == n, (shift, b)
            for ra, rb in zip(a, b):
                want = [v + shift if i in times and v > 0 else v for i, v in enumerate(ra)]
                assert list(rb) == want, (shift, list(ra), list(rb))


def test_her_breathing_after_a_stuck_sensor_is_no_squeeze():
    # 5 s of one value at rest (a sensor that stopped reading): the warm-up
    # after it learnt 1.5 s of a slow breath as her rest, which holds less
    # than the breath's swing, and its crests became squeezes; her rest is
    # now learnt as at the start (knip.tone onset_floor)
    sq = [(4.0, 0.4, 3.0, 0.4, 30, 0), (34.0, 0.4, 3.0, 0.4, 30, 0)]
    for f0 in (16.0, 20.0):
        ts, xs, _ = pressure_track(50, 42, sq, base=20.0, ripple=1.5, noise=0.1, seed=4)
        i0 = int(f0 * 50)
        for i in range(i0, i0 + 250):
            xs[i] = xs[i0]
        got = _got(_run(PressureChain(50), ts, xs))
        assert [g[0] for g in got] == ["squeeze", "artefact", "squeeze"], (f0, got)
        assert abs(got[2][1] - 34000) <= 150, (f0, got)


def test_her_rest_moving_up_and_then_her_squeeze_is_timed_from_her_squeeze():
    # she shifts on the probe: her pressure steps up 4 cmH2O at 10 s and
    # stays there; at 15 s she squeezes 30 on top of it. The step started a
    # "squeeze" (its start was streamed); it is that squeeze, re-timed from
    # where she rose at 15 s and measured from the step's level, which is
    # her rest now: she relaxed back to it. Before, it was one squeeze from
    # 10 s, 9 s long, and her squeeze at 15 s was not found
    sq = [(4.0, 0.5, 2.0, 0.5, 30, 0), (10.0, 0.5, 60.0, 0.5, 4, 0), (15.0, 0.5, 3.0, 0.5, 30, 0)]
    for rate in (25, 50, 100):
        ts, xs, _ = pressure_track(rate, 26, sq)
        log = []
        collect()
        recs = replay.run(PressureChain(rate), ts, xs, None, log)
        got = _got(recs)
        assert [g[0] for g in got] == ["squeeze", "squeeze"], (rate, got)
        sq2 = recs[1]
        assert abs(sq2[D.R_ONSET] - 15000) <= 150, (rate, got)
        # its rise is the squeeze's, from the step (counts: 20 per cmH2O)
        assert abs(sq2[D.R_PEAK] - sq2[D.R_BASE] - 600) <= 60, (rate, sq2[D.R_PEAK], sq2[D.R_BASE])
        assert sq2[D.R_RELAXED] == 1, (rate, sq2[D.R_RESIDUAL])
        # its start at the step (when a squeeze seemed to begin) and again when
        # re-timed (its decision time), one end, at most one peak
        mine = [(t, f) for t, f, s in log if s == sq2[D.R_SEQ]]
        starts = [t for t, f in mine if f & D.EV_START]
        assert len(starts) == 2 and sum(1 for _, f in mine if f & D.EV_END) == 1, (rate, mine)
        assert sum(1 for _, f in mine if f & D.EV_PEAK) <= 1, (rate, mine)
        assert 10000 <= starts[0] <= 10600 and starts[1] == sq2[D.R_DETECTED], (rate, mine)
        assert sq2[D.R_ONSET] < sq2[D.R_DETECTED] <= sq2[D.R_ONSET] + 600, (rate, sq2[D.R_DETECTED])
        # her relaxation and her area are the squeeze's own (as the first one's, held 1 s longer)
        area = lambda r: (r[D.R_AREA_HI] << 10) + r[D.R_AREA_LO]
        assert 1.2 < area(sq2) / area(recs[0]) < 1.5, (rate, area(sq2), area(recs[0]))


def test_a_weak_hold_she_then_squeezes_harder_stays_one_squeeze():
    # not every level that stands is her rest moving: a weak hold (8 cmH2O,
    # over a fifth of her best squeeze) she then raises to 38 without
    # letting go, and a squeeze from the residual plateau of the one before
    # that stands and then climbs, are each one squeeze from their own start
    for sq in ([(2.0, 0.5, 2.0, 0.5, 30, 0), (9.0, 0.3, 8.0, 0.5, 8, 0), (11.3, 0.5, 5.7, 0.0, 30, 0)],
               [(2.0, 0.4, 3.0, 0.5, 30, 10), (8.0, 0.3, 6.0, 0.5, 8, 0), (9.8, 0.5, 3.7, 0.0, 40, 0)]):
        ts, xs, _ = pressure_track(50, 24, sq)
        got = _got(_run(PressureChain(50), ts, xs))
        assert [g[0] for g in got] == ["squeeze", "squeeze"], (sq, got)
        assert abs(got[1][1] - sq[1][0] * 1000) <= 150, (sq, got)


def test_a_cough_in_her_hold_is_no_new_squeeze():
    # the knack: she holds and coughs. The cough climbs far past her
    # standing hold, faster than any squeeze, and comes straight back: her
    # hold stays one squeeze from its own start (the cough inside it is not
    # told apart). (A cough too slow for that, 100 cmH2O at 25 Hz, is read
    # as a squeeze at rest too: on a weak hold it re-times it, docs/DETECTOR.md)
    for rate in (25, 50, 100):
        for hold, cough in ((20, 100), (20, 150), (30, 300), (6, 150)):
            sq = [(4.0, 0.5, 6.0, 0.5, hold, 0)]
            ts, xs, _ = pressure_track(rate, 16, sq, coughs=[(7.0, cough)])
            got = _got(_run(PressureChain(rate), ts, xs))
            assert [g[0] for g in got if g[0] != "cough"] == ["squeeze"], (rate, hold, cough, got)
            assert abs(got[0][1] - 4000) <= 150, (rate, hold, cough, got)


def test_a_hold_she_builds_up_slowly_stays_one_squeeze():
    # a hold that she keeps raising (one gentle rise over 4 s, no standing
    # level first) and a hold that rises by half again after 2 s: each is
    # one squeeze, never split as a shift of her rest
    for sq in ([(4.0, 4.0, 2.0, 0.5, 30, 0)],
               [(4.0, 0.5, 5.0, 0.5, 20, 0), (6.5, 0.5, 2.5, 0.5, 10, 0)]):
        ts, xs, _ = pressure_track(50, 16, sq)
        recs = _run(PressureChain(50), ts, xs)
        got = _got(recs)
        assert [g[0] for g in got] == ["squeeze"], (sq, got)
        assert abs(got[0][1] - 4000) <= 200, (sq, got)


def test_a_lone_glitch_in_the_pressure_is_no_squeeze_and_no_peak():
    # one corrupt sample (a loose contact, a bit flip): at rest it made a
    # squeeze (+60 cmH2O) or a cough (+800); in her hold it raised its peak
    # (+60) or cut it short (+400). At 50 Hz no cough or squeeze is one
    # sample wide: the sample is taken for its neighbours' mean
    sq = [(4.0, 0.5, 4.0, 0.5, 30, 0)]
    ts, xs, _ = pressure_track(50, 20, sq)
    clean = _got(_run(PressureChain(50), ts, xs))
    peak = _run(PressureChain(50), ts, xs)[0][D.R_PEAK]
    for at, cm in ((12.0, 60), (12.0, 800), (12.0, -60), (6.0, 60), (6.0, 400)):
        ts, xs, _ = pressure_track(50, 20, sq)
        xs[int(at * 50)] += cm * 20
        ch = PressureChain(50)
        recs = _run(ch, ts, xs)
        assert _got(recs) == clean, (at, cm, _got(recs))
        assert recs[0][D.R_PEAK] == peak, (at, cm, recs[0][D.R_PEAK], peak)
        assert ch.glitches == 1 and ch.glitch_t == int(at * 1000), (ch.glitches, ch.glitch_t)


def test_coughs_are_only_delayed_by_the_glitch_check_never_changed():
    # a cough rises faster than the glitch check's rate: its steep samples
    # are held back one sample each, then fed as they were; the top of a
    # sharp one (0.12 s) is no lone sample, since the one before it was
    # climbing too. The records are the very same as without the check, at
    # every rate it runs at, and with a noisy sensor
    sq = [(4.0, 0.5, 2.0, 0.5, 30, 0), (12.0, 0.2, 0.3, 0.2, 25, 0), (14.0, 0.06, 0.0, 0.06, 100, 0)]
    for rate in (40, 50, 100, 200):
        for noise in (0.2, 1.0):
            ts, xs, _ = pressure_track(rate, 20, sq, noise=noise,
                                       coughs=[(8.0, 150.0), (9.5, 40.0), (16.0, 300.0)])
            ch = PressureChain(rate)
            recs = _run(ch, ts, xs)
            assert recs == _run(PressureChain(rate, glitch_rate=0), ts, xs), (rate, noise)
            assert ch.glitches == 0, (rate, noise, ch.glitches)
            # (the 40 cmH2O one rises too slowly for a cough on one channel)
            assert [g[0] for g in _got(recs)].count("cough") >= 2, (rate, noise, _got(recs))


def test_below_40_hz_one_sample_may_be_a_whole_cough():
    # a 0.1 s pressure pulse is one sample at 20 Hz (a manometry export at
    # 1-2 Hz: a whole cough is): nothing is held back or mended there
    assert [PressureChain(r).jump for r in (2, 10, 20, 25, 40, 50, 100, 200)] == [0, 0, 0, 0, 250, 200, 200, 200]
    for rate in (2, 20, 25):
        ts, xs, _ = pressure_track(rate, 20, [(4.0, 0.5, 2.0, 0.5, 30, 0)])
        xs[12 * rate] += 60 * 20
        ch = PressureChain(rate)
        got = _got(_run(ch, ts, xs))
        assert len(got) == 2 and ch.glitches == 0, (rate, got)


def test_a_sensor_that_jumps_and_sticks_is_an_artefact_at_any_rate():
    # at 2-10 Hz the jump into a stuck value was a squeeze one sample long,
    # its hold read 1-4 s (what was fed before 8 equal samples told it was
    # stuck); the jump is the sensor failing, as a ramp into the rail is
    for rate in (2, 5, 10, 50):
        sq = [(10.0, 1.0, 4.0, 1.0, 30, 0)]
        ts, xs, _ = pressure_track(rate, 60, sq)
        for i in range(30 * rate, 38 * rate):
            xs[i] = 40 * 20
        recs = _run(PressureChain(rate), ts, xs)
        got = _got(recs)
        assert [g[0] for g in got] == ["squeeze", "artefact", "artefact"], (rate, got)
        assert recs[1][D.R_MARKS] & D.M_FLAT and recs[2][D.R_MARKS] & D.M_FLAT, (rate, got)
        assert all(r[D.R_HOLD_MS] <= r[D.R_OFFSET] - r[D.R_ONSET] for r in recs), (rate, got)
