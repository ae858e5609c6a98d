"""The synthetic user: determinism, ground truth, SNR, plausibility, MicroPython parity."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from simboard import synth

MP_DIR = Path(__file__).resolve().parent / "mp"
SMOKE = MP_DIR / "synth_smoke.py"
SESSIONS = {
    "sprint": lambda sig, seed, **kw: synth.sprint_session(sig, seed=seed, sets=2, reps=5, **kw),
    "marathon": lambda sig, seed, **kw: synth.marathon_session(sig, seed=seed, reps=3, **kw),
    "mixed": lambda sig, seed, **kw: synth.mixed_session(sig, seed=seed, events=10, **kw),
}


def rms(xs):
    return math.sqrt(sum(x * x for x in xs) / len(xs))


def idx(t, rate):
    return int(round(t * rate))


# ---- PRNG ----------------------------------------------------------------

def test_rng_is_xorshift32_and_well_spread():
    r = synth.Rng(1)
    s = r.state
    x = s ^ ((s << 13) & 0xFFFFFFFF)
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    assert r.next32() == x
    u = [r.random() for _ in range(20000)]
    assert 0.0 <= min(u) and max(u) < 1.0
    assert abs(sum(u) / len(u) - 0.5) < 0.01
    g = [r.gauss() for _ in range(20000)]
    mean = sum(g) / len(g)
    assert abs(mean) < 0.03
    assert abs(rms([v - mean for v in g]) - 1.0) < 0.03
    assert synth.Rng(1).next32() != synth.Rng(2).next32()
    assert synth.Rng(1, 1).next32() != synth.Rng(1, 2).next32()


def test_user_overrides_change_only_that_trait():
    a = synth.make_user(4)
    b = synth.make_user(4, mvc=30.0)
    assert b["mvc"] == 30.0
    assert {k: v for k, v in a.items() if k != "mvc"} == {k: v for k, v in b.items() if k != "mvc"}
    with pytest.raises(ValueError):
        synth.make_user(4, not_a_trait=1)


# ---- determinism ---------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(SESSIONS))
@pytest.mark.parametrize("signal", ["pressure", "emg"])
def test_same_seed_same_session(kind, signal):
    rate = 200 if signal == "emg" else 50       # speed; the model is the same
    a = SESSIONS[kind](signal, 7, rate_hz=rate)
    b = SESSIONS[kind](signal, 7, rate_hz=rate)
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]
    assert a[3]["rest_intervals"] == b[3]["rest_intervals"]
    c = SESSIONS[kind](signal, 8, rate_hz=rate)
    assert c[0][:len(a[0])] != a[0][:len(c[0])]
    assert [e["onset_s"] for e in c[2]] != [e["onset_s"] for e in a[2]]


def test_truth_does_not_depend_on_rate():
    a = synth.mixed_session("pressure", 50, seed=3, events=8)[2]
    b = synth.mixed_session("pressure", 200, seed=3, events=8)[2]
    assert a == b


# ---- ground truth --------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(SESSIONS))
@pytest.mark.parametrize("signal", ["pressure", "emg"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_truth_is_consistent(kind, signal, seed):
    user = {"relaxes": 0.5}
    values, abd, truth, info = SESSIONS[kind](signal, seed, rate_hz=100, user=user)
    assert truth
    fields = {"kind", "technique", "cue_s", "onset_s", "peak_s", "offset_s", "amplitude",
              "abd_amplitude", "relaxed", "residual", "rise_s", "hold_s", "release_s"}
    prev_offset = 0.0
    for e in truth:
        assert fields <= set(e)
        assert e["cue_s"] < e["onset_s"] < e["peak_s"] < e["offset_s"] <= info["duration_s"]
        assert e["onset_s"] >= prev_offset           # plans never overlap events
        prev_offset = e["offset_s"]
        assert e["offset_s"] == pytest.approx(e["onset_s"] + e["rise_s"] + e["hold_s"] + e["release_s"])
        assert e["amplitude"] > 0
        if e["kind"] == "squeeze":
            assert e["technique"] in ("lift", "co_contraction")
            # relaxed: back at her resting level, counting the tone an
            # earlier squeeze left (None in between: not scored)
            assert e["relaxed"] in (True, False, None)
            frac = e["residual"] / e["amplitude"]
            left = (e["residual"] + e["tone_before"]) / e["amplitude"]
            # unrelaxed: 25-50 % of the squeeze in EMG, 20-60 % in pressure
            # (incomplete relaxation of varied depth); EMG: the residual is a
            # fraction of her nominal level, and the peak a wandering hold
            # reaches is up to ~1.7 times that
            assert 0.0 <= frac <= 0.04 or (0.14 if signal == "emg" else 0.2) <= frac <= (0.5 if signal == "emg" else 0.6)
            if e["relaxed"] is True:
                assert frac <= 0.04 and left <= 0.06
            elif e["relaxed"] is False:
                assert left > 0.15
        elif e["kind"] == "cough":
            assert e["technique"] is None and e["relaxed"] is None and e["residual"] == 0.0
            assert e["peak_s"] - e["onset_s"] <= 0.3
            if signal == "pressure":
                assert 0.3 <= e["offset_s"] - e["onset_s"] <= 0.7
            else:
                assert e["offset_s"] - e["onset_s"] < 0.4
        else:
            assert e["kind"] == "bearing_down" and e["technique"] == "push"
            assert e["relaxed"] is None and e["residual"] == 0.0
    # rest intervals: inside the session, ordered, clear of every event
    last = -1.0
    for a, b in info["rest_intervals"]:
        assert last <= a < b <= info["duration_s"]
        last = b
        for e in truth:
            assert b <= e["onset_s"] or a >= e["offset_s"]
    assert info["rest_s"] > 0.3 * info["duration_s"]


def test_both_relaxation_classes_and_all_kinds_occur():
    truth = []
    for seed in range(1, 6):
        truth += synth.mixed_session("pressure", seed=seed, user={"relaxes": 0.5})[2]
    kinds = {e["kind"] for e in truth}
    assert kinds == {"squeeze", "cough", "bearing_down"}
    relaxed = [(e["residual"] + e["tone_before"]) / e["amplitude"] for e in truth if e["relaxed"] is True]
    tense = [(e["residual"] + e["tone_before"]) / e["amplitude"] for e in truth if e["relaxed"] is False]
    assert relaxed and tense and max(relaxed) < 0.5 * min(tense)   # a clear gap


def _noise_free_user(signal, seed, **traits):
    base = {"resp_amp": 0.0, "abd_resp_amp": 0.0, "drift": 0.0, "relaxes": 0.5}
    base.update(traits)
    return synth.make_user(seed, **base)


@pytest.mark.parametrize("seed", [1, 5, 9])
def test_truth_matches_the_noise_free_pressure(seed):
    rate = 500
    user = _noise_free_user("pressure", seed)
    _, _, truth, info = synth.mixed_session("pressure", rate, seed, user=user, events=10,
                                            keep_clean=True)
    clean = info["clean"]
    for e in truth:
        i0, i1 = idx(e["onset_s"], rate), idx(e["offset_s"], rate)
        pre = clean[i0 - 1]
        seg = clean[i0:i1 + 1]
        top = max(seg)
        # the sampled max sits within a sample of the continuous one
        assert top - pre == pytest.approx(e["amplitude"], rel=0.01)
        assert clean[idx(e["peak_s"], rate)] - pre == pytest.approx(e["amplitude"], rel=0.01)
        assert clean[i1 + 1] - pre == pytest.approx(e["residual"], abs=0.02 * e["amplitude"])
        # before onset and before the peak, nothing of the event shows yet / it is rising
        assert abs(clean[i0] - pre) < 0.02 * e["amplitude"]
        ip = idx(e["peak_s"], rate)
        assert clean[(i0 + ip) // 2] < clean[ip]


def test_non_relaxed_residual_persists_relaxed_one_fades():
    rate = 100
    plan = [("rest", 5.0), ("squeeze", 3.0), ("rest", 12.0)]
    for relaxes in (True, False):
        user = _noise_free_user("pressure", 2, relaxes=relaxes, p_push=0.0)
        _, _, truth, info = synth.render(plan, "pressure", rate, 2, user=user, keep_clean=True)
        e = truth[0]
        assert e["kind"] == "squeeze" and e["relaxed"] is relaxes
        clean = info["clean"]
        pre = clean[idx(e["onset_s"], rate) - 1]
        after_2s = clean[idx(e["offset_s"] + 2.0, rate)] - pre
        if relaxes:
            assert after_2s < 0.03 * e["amplitude"]
        else:
            assert after_2s > 0.1 * e["amplitude"]


def test_truth_matches_the_emg_envelope():
    rate = 1000
    su = synth.SyntheticUser("emg", rate, seed=4, user={"relaxes": 0.5}, abd=True)
    plan = [("rest", 3.0), ("squeeze", 2.0), ("rest", 4.0), ("cough",), ("rest", 3.0),
            ("push", 3.0), ("rest", 4.0), ("squeeze", 5.0), ("rest", 6.0)]
    cues, dur = synth.plan_cues(plan)
    env = []
    ci = 0
    for i in range(int(dur * rate)):
        while ci < len(cues) and cues[ci][0] <= i / rate:
            su.cue(cues[ci][1], cues[ci][2], at=cues[ci][0])
            ci += 1
        x, y = su.step()
        assert y is not None
        env.append(su.level)
    for e in su.truth:
        i0, i1 = idx(e["onset_s"], rate), idx(e["offset_s"], rate)
        pre = env[i0 - 1]
        assert max(env[i0:i1 + 1]) - pre == pytest.approx(e["amplitude"], rel=0.01)
        assert env[i1 + 1] - pre == pytest.approx(e["residual"], abs=0.02 * e["amplitude"])


def test_channels_follow_the_technique():
    truth = []
    for seed in range(1, 9):
        truth += synth.mixed_session("pressure", seed=seed, user={"p_co": 0.5, "p_push": 0.1})[2]
    seen = set()
    for e in truth:
        a, b = e["amplitude"], e["abd_amplitude"]
        seen.add(e["technique"])
        if e["technique"] == "lift":
            assert b <= 0.2 * a + 1e-9
        elif e["technique"] == "co_contraction":
            assert 0.6 * a - 1e-9 <= b <= 0.9 * a + 1e-9
        elif e["kind"] == "bearing_down":
            assert 0.8 * b - 1e-9 <= a <= b + 1e-9
            assert 20.0 <= b <= 60.0 * 1.07                 # plus strain wobble
        else:
            assert 30.0 <= a <= 100.0 and a <= b            # cough: both channels
    assert seen == {"lift", "co_contraction", "push", None}


# ---- EMG signal-to-noise -------------------------------------------------

@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0, 30.0])
@pytest.mark.parametrize("kind", ["sprint", "marathon"])
def test_emg_snr_is_realised(snr_db, kind):
    # the heart's QRS is contamination outside the SNR: off here
    user = {"relaxes": True, "p_push": 0.0, "ecg_uv": 0.0}
    seed = 3 + int(snr_db)
    values, _, truth, info = SESSIONS[kind]("emg", seed, rate_hz=1000, snr_db=snr_db,
                                            user=user, keep_clean=True)
    rate = info["rate_hz"]
    clean = info["clean"]
    plateau = []
    for e in truth:
        a = e["onset_s"] + e["rise_s"]
        plateau += clean[idx(a, rate):idx(a + e["hold_s"], rate)]
    noise = [v - c for v, c in zip(values, clean)]
    realised = 20.0 * math.log10(rms(plateau) / rms(noise))
    assert realised == pytest.approx(snr_db, abs=1.0)
    assert rms(noise) == pytest.approx(info["noise_rms"], rel=0.02)


def test_emg_levels_are_plausible():
    user = {"relaxes": True, "p_push": 0.0, "ecg_uv": 0.0}
    values, _, truth, info = synth.sprint_session("emg", seed=2, sets=1, reps=5, snr_db=None,
                                                  user=user)
    rate = info["rate_hz"]
    tr = info["user"]
    rest = []
    for a, b in info["rest_intervals"]:
        rest += values[idx(a, rate):idx(b, rate)]
    assert 2.0 <= rms(rest) <= 6.5
    assert rms(rest) == pytest.approx(tr["rest_uv"], rel=0.1)
    for e in truth:
        a = e["onset_s"] + e["rise_s"]
        hold = values[idx(a, rate):idx(a + e["hold_s"], rate)]
        assert 10.0 <= rms(hold) <= 120.0       # MVC 15-90 uV RMS (Glazer: 50 +- 26)
        assert 0.05 <= e["rise_s"] <= 0.2 and 0.05 <= e["release_s"] <= 0.3


def test_emg_ecg_is_periodic_qrs_on_half_the_users():
    with_ecg = [s for s in range(1, 13) if synth.make_user(s)["ecg_uv"] > 0]
    assert 2 <= len(with_ecg) <= 10
    seed = with_ecg[0]
    user = {"relaxes": True, "p_push": 0.0}
    values, _, _, info = synth.sprint_session("emg", seed=seed, sets=1, reps=2, snr_db=None, user=user,
                                              keep_clean=True)
    ecg = [v - c for v, c in zip(values, info["clean"])]
    beats = [i for i in range(1, len(ecg) - 1) if ecg[i] > 0.9 * info["user"]["ecg_uv"]
             and ecg[i] >= ecg[i - 1] and ecg[i] > ecg[i + 1]]
    per = [(b - a) / 1000.0 for a, b in zip(beats, beats[1:])]
    assert per and all(abs(p - 60.0 / info["user"]["hr_bpm"]) < 0.01 for p in per)


def test_emg_offset_and_gain():
    v0 = synth.mixed_session("emg", 500, seed=1, events=4)[0]
    v1 = synth.mixed_session("emg", 500, seed=1, events=4, offset=2048.0, gain=2.0)[0]
    assert all(abs(b - (2.0 * a + 2048.0)) < 1e-9 for a, b in zip(v0, v1))


# ---- pressure plausibility -----------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_pressure_is_physically_plausible(seed):
    values, abd, truth, info = synth.mixed_session("pressure", 50, seed, user={"relaxes": True})
    tr = info["user"]
    assert -30.0 <= min(values) and max(values) <= 250.0     # urodynamic range
    assert -30.0 <= min(abd) and max(abd) <= 250.0
    assert len(values) == len(abd) == info["n"]
    rate = info["rate_hz"]
    for a, b in info["rest_intervals"]:
        seg = values[idx(a + 3.0, rate):idx(b, rate)]     # 3 s: relaxed residual gone
        if seg:
            # drift <= 2, the probe warming by warm, breathing of varying depth
            breath = 1.25 * tr["resp_amp"] * (1.0 + tr["resp_var"])
            assert abs(sum(seg) / len(seg) - tr["baseline"]) < 2.5 + abs(tr["warm"]) + breath
            assert max(seg) - min(seg) < 2 * (2 * breath + 5 * tr["noise"]) + 1.0 + abs(tr["warm"])
    for e in truth:
        if e["kind"] == "squeeze":
            assert 0.7 * 0.9 * tr["mvc"] <= e["amplitude"] <= 1.1 * 1.03 * tr["mvc"]
            # 0.3-1.5 s, and slow build-ups of 1.5-2.5 s
            assert 0.3 <= e["rise_s"] <= 2.5 and 0.3 <= e["release_s"] <= 1.0


def test_rates_from_1_hz_to_2_khz():
    plan = [("rest", 4.0), ("squeeze", 3.0), ("rest", 4.0), ("cough",), ("rest", 2.0)]
    ref = None
    duration = synth.plan_cues(plan)[1]
    for signal in ("pressure", "emg"):
        for rate in (1, 3, 50, 2000):
            values, abd, truth, info = synth.render(plan, signal, rate, 5)
            assert len(values) == int(duration * rate + 0.5)
            assert all(math.isfinite(v) for v in values)
            if signal == "pressure":
                ref = ref or truth
                assert truth == ref


# ---- streaming -------------------------------------------------------------

def test_streaming_user_follows_cues():
    su = synth.SyntheticUser("pressure", 50, seed=6, user={"p_push": 0.0})
    assert not su.busy
    for _ in range(100):
        x, y = su.step()
        assert y is not None
    tr = su.cue("squeeze")                       # hold until told to relax
    assert tr["onset_s"] > 2.0 and tr["offset_s"] is None
    for _ in range(250):
        su.step()
    done = su.cue("relax")
    assert done is tr and tr["offset_s"] > su.t and tr["peak_s"] < tr["offset_s"]
    assert 4.5 < tr["hold_s"] + tr["rise_s"] < 6.0
    while su.busy:
        su.step()
    assert su.t >= tr["offset_s"]
    assert su.truth == [tr]
    x, y = synth.SyntheticUser("emg", seed=1).step()
    assert y is None                              # EMG: one channel unless asked


# ---- MicroPython parity ----------------------------------------------------

def _cpython_smoke(*args):
    spec = importlib.util.spec_from_file_location("synth_smoke", SMOKE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return json.loads(json.dumps(mod.run(*args)))


def _close(a, b, tol=1e-6):
    if isinstance(a, dict):
        return set(a) == set(b) and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol * max(1.0, abs(a))
    return a == b


@pytest.mark.micropython
@pytest.mark.parametrize("args", [("mixed", "pressure", 100, 11, 400),
                                  ("short", "emg", 1000, 11, 1000)])
def test_micropython_renders_the_same_session(mpy, args):
    out = mpy(SMOKE, *[str(a) for a in args])
    mp = json.loads(out)
    cp = _cpython_smoke(*args)
    assert mp["n"] == cp["n"] and len(mp["head"]) == args[-1]
    assert _close(mp["truth"], cp["truth"])
    assert _close(mp["rests"], cp["rests"])
    assert _close(mp["head"], cp["head"])
    assert _close(mp["abd_head"], cp["abd_head"])
    assert _close(mp["sum"], cp["sum"]) and _close(mp["sum_sq"], cp["sum_sq"])


def test_pressure_movements_sit_in_long_rests_and_emg_has_none():
    # pressure mixed sessions: she moves in some long rests (a wobble or a
    # hump on both channels), never during an event; rest intervals leave
    # the movements out. EMG sessions never get them.
    moves = []
    for seed in (1, 2, 3):
        values, abd, truth, info = synth.mixed_session("pressure", 50, seed, user={"resp_amp": 0.0,
                                                                                 "abd_resp_amp": 0.0})
        for m in info["artefacts"]:
            assert m["kind"] == "motion" and 0.5 <= m["end_s"] - m["start_s"] <= 3.0
            for e in truth:
                assert m["end_s"] <= e["onset_s"] or m["start_s"] >= e["offset_s"] + 1.0
            for a, b in info["rest_intervals"]:
                assert b <= m["start_s"] or a >= m["end_s"]
            i0, i1 = idx(m["start_s"], 50), idx(m["end_s"], 50)
            seg = values[i0:i1]
            assert max(seg) - min(seg) > 2.0           # 3-15 cmH2O of movement
            moves.append(m)
    assert len(moves) >= 3
    assert synth.mixed_session("emg", 500, 1, events=6)[3]["artefacts"] == []
    assert synth.mixed_session("pressure", 50, 1, motion=0.0)[3]["artefacts"] == []


def test_emg_hold_amplitude_wanders_slowly():
    # A held contraction's EMG amplitude wanders (recruitment, firing rates):
    # 0.3-2 Hz, a coefficient of variation of about 10-30 % over the hold
    # on top of fatigue (a sum of two faster sines gave about half that).
    su = synth.SyntheticUser("emg", 1000, seed=3, user={"relaxes": True, "p_push": 0.0})
    tr = su.cue("squeeze", 10.0, at=0.0)
    levels = []
    while su.t < tr["offset_s"]:
        su.step()
        if tr["onset_s"] + tr["rise_s"] + 0.5 <= su.t < tr["offset_s"] - tr["release_s"]:
            levels.append(su.level - su.traits["rest_uv"])
    # detrend the fatigue with a straight line, then the spread
    n = len(levels)
    mx = (n - 1) / 2.0
    my = sum(levels) / n
    b = sum((i - mx) * (y - my) for i, y in enumerate(levels)) / sum((i - mx) ** 2 for i in range(n))
    res = [y - my - b * (i - mx) for i, y in enumerate(levels)]
    cv = math.sqrt(sum(r * r for r in res) / n) / my
    assert 0.15 <= cv <= 0.4, cv      # this user's: 0.24 (0.12 with the two faster sines)
    # slow: most of the change between samples 100 ms apart is small
    step = [abs(levels[i + 100] - levels[i]) / my for i in range(0, n - 100, 100)]
    assert sorted(step)[len(step) // 2] < 0.25
