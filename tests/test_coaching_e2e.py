"""Coaching end to end: every built-in program runs on the virtual trainer
(the real firmware under MicroPython, over a pty, on the virtual clock: about
2,700 s of board time as fast as the CPU allows, the same on every run) with
simulated women of different kinds, and the verdicts are the ones a
physiotherapist would give.
Each session is synced into a real SQLite file and decoded by the host, so
the stored verdicts, pain and scores are checked, not just the live stream."""
from __future__ import annotations

import json
import runpy
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from knip import protocol as P
from simboard.synth import make_user
from knip_host.coaching import verdict_dict
from knip_host.database import SessionDatabase
from knip_host.device import Device, DeviceRefused, iter_stream
from knip_host.session import Session
from knip_host.sessionfile import decode
from knip_host.simulator import VirtualTrainer
from knip_host.sync import sync

pytestmark = pytest.mark.micropython

SPEED = 40.0
ROOT = Path(__file__).resolve().parent.parent
SIM_USERS = runpy.run_path(str(ROOT / "firmware" / "simboard" / "users.py"))["USERS"]
SQUEEZE_KINDS = ("fast", "hold", "mvc")


@dataclass
class Run:
    user: str
    sessions: list[Session] = field(default_factory=list)
    live: dict[str, list[dict[str, Any]]] = field(default_factory=dict)     # program -> streamed verdicts
    notices: dict[str, list[str]] = field(default_factory=dict)

    def session(self, program: str) -> Session:
        return [s for s in self.sessions if s.program == program][-1]


def play(dev: Device, program: str, stop_after_reps: int | None = None, timeout: float = 120.0
         ) -> tuple[int, list[dict[str, Any]], list[str]]:
    info = dev.info
    level_div = float(info["level_div"])
    # the stream (verdicts, notices) is on while live is; samples in 1 s
    # frames, not the app's 100 ms: only verdicts and notices are read here,
    # and each frame costs a pause of the virtual clock and a decode (22 % of
    # the CPU a sample; verdicts and stored sessions the same byte for byte)
    dev.live(True, 1000)
    sid = dev.start(program)
    reps: list[dict[str, Any]] = []
    notices: list[str] = []
    for f in iter_stream(dev, time.monotonic() + timeout):
        if f.mtype == P.VERDICT:
            reps.append(verdict_dict(P.unpack_verdict(f.payload, 0, len(f.payload)), level_div, info["unit"]))
            if stop_after_reps is not None and sum(1 for r in reps if r["phase_kind"] in SQUEEZE_KINDS) \
                    >= stop_after_reps:
                dev.stop()
                stop_after_reps = None
        elif f.mtype == P.NOTICE:
            notices.append(f.payload[1:].decode())
            if f.payload[0] == P.N_CALIBRATED:
                notices.append("calibrated: " + notices[-1])
            if f.payload[0] == P.N_SESSION_ENDED:
                dev.live(False)
                return sid, reps, notices
    raise AssertionError(f"{program} did not end within {timeout} s; notices {notices}")


def train(tmp: Path, user: str, programs: list[str], seed: int = 1, stop: dict[str, int] | None = None) -> Run:
    """Run programs one after the other on a fresh trainer, then sync them."""
    run = Run(user)
    vt = VirtualTrainer(tmp / f"{user}.img", speed=SPEED, user=user, seed=seed, clock="virtual").start()
    try:
        dev = Device(vt.port)
        dev.hello()
        for name in programs:
            _sid, reps, notices = play(dev, name, (stop or {}).get(name))
            run.live[name] = reps
            run.notices[name] = notices
            dev.hello()                      # fresh info (MVC after a calibration)
        db = SessionDatabase.open(str(tmp / f"{user}.sqlite3"))
        rep = sync(dev, db, show_progress=False)
        assert len(rep.fetched) == len(programs)
        for r in db.list():
            run.sessions.append(db.load(r.key, lambda raw, d: decode(raw, d)))
        run.sessions.sort(key=lambda s: s.session_id)
        dev.close()
    finally:
        vt.stop()
    return run


# a calibration first where a test needs a calibrated session (the pusher's:
# the push threshold then starts from her maximal squeezes)
PLANS = {
    "good": ["calibrate", "sprint", "marathon", "assessment", "relax"],
    "weak": ["calibrate", "sprint"],
    "no_relax": ["calibrate", "sprint", "relax"],
    "pusher": ["calibrate", "sprint"],
    "short_rest": ["marathon"],
    "stops_early": ["calibrate", "marathon"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    tmp = tmp_path_factory.mktemp("coaching")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futs = {u: pool.submit(train, tmp, u, plan) for u, plan in PLANS.items()}
        futs["uncalibrated"] = pool.submit(train, tmp, "typical", ["sprint"], 5, {"sprint": 12})
        return {u: f.result() for u, f in futs.items()}


def squeezes(reps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in reps if r["phase_kind"] in SQUEEZE_KINDS]


def share(reps: list[dict[str, Any]], check: str, value: bool | None = True) -> float:
    judged = [r for r in reps if r["checks"][check] is not None]
    return sum(1 for r in judged if r["checks"][check] is value) / len(judged) if judged else 0.0


# ---- the stored session says what the stream said ---------------------------

def test_stored_verdicts_equal_streamed_and_scores_are_the_devices(runs):
    for run in runs.values():
        for s in run.sessions:
            streamed = run.live[s.program]
            assert [v["explain"] for v in s.verdicts] == [v["explain"] for v in streamed], (run.user, s.program)
            if s.summary.get("scores"):
                # the device scored the session on its own; the host's recomputation agrees
                dev_sc, host_sc = s.summary["scores"], json.loads(json.dumps(s.scores))
                assert dev_sc.keys() == host_sc.keys()
                for k, v in host_sc.items():
                    if isinstance(v, float):
                        assert dev_sc[k] == pytest.approx(v, abs=0.011), (run.user, s.program, k)
                    else:
                        assert dev_sc[k] == v, (run.user, s.program, k)


# ---- calibration and good technique ------------------------------------------

def test_calibrate_measures_her_mvc(runs):
    for user in ("good", "weak"):
        run = runs[user]
        cal = run.session("calibrate")
        reps = squeezes(cal.verdicts)
        # all three found; relaxation is judged against her noise and breathing,
        # so one borderline verdict in three is allowed
        assert len(reps) == 3 and all(r["squeezed"] for r in reps), [r["explain"] for r in reps]
        assert sum(1 for r in reps if r["checks"]["relaxed"]) >= 2, [r["explain"] for r in reps]
        note = [n for n in run.notices["calibrate"] if n.startswith("calibrated: ")]
        mvc_counts = int(note[-1].split()[1])
        tr = make_user(1, **SIM_USERS[user])
        expected = tr["mvc"] * tr["effort"]                   # cmH2O above rest
        assert abs(mvc_counts / 20.0 - expected) < 0.2 * expected, (user, mvc_counts / 20.0, expected)
        # the next session is scored against it
        nxt = run.sessions[1]
        assert nxt.header["mvc"] == mvc_counts and nxt.scores["calibrated"]


def test_good_technique_passes_every_program(runs):
    run = runs["good"]
    for s in run.sessions:
        reps = squeezes(s.verdicts)
        assert reps, s.program
        assert all(r["squeezed"] for r in reps), s.program
        for check in ("on_cue", "relaxed", "rested", "technique", "held", "target"):
            assert share(reps, check, False) <= 0.1, (s.program, check, [r["explain"] for r in reps])
        assert s.pain == {"before": 1, "after": 1}
        assert s.summary["program_done"]
    sprint = run.session("sprint")
    assert len(squeezes(sprint.verdicts)) == 30 and sprint.scores["fast"] >= 27
    marathon = run.session("marathon")
    assert marathon.scores["repetitions"] == 5 and marathon.scores["endurance_s"] >= 9.0
    assert marathon.scores["oxford"] is not None and marathon.scores["power"] > 10


def test_assessment_reports_glazer_figures(runs):
    s = runs["good"].session("assessment")
    kinds = [r["phase_kind"] for r in squeezes(s.verdicts)]
    assert kinds == ["fast"] * 5 + ["hold"] * 6
    sc = s.scores
    for key in ("resting_tone", "rest_variability", "post_rest_tone", "time_to_peak_s", "time_to_relax_s"):
        assert sc[key] is not None, key
    assert 0.2 <= sc["time_to_peak_s"] <= 2.0
    assert sc["endurance_s"] >= 9.0       # the 10 s holds stay above half her MVC (the 60 s one fatigues)
    assert abs(sc["post_rest_tone"] - sc["resting_tone"]) < 3.0


# ---- the faults a physiotherapist looks for ----------------------------------

def test_no_relax_is_told_to_let_go(runs):
    run = runs["no_relax"]
    reps = squeezes(run.session("sprint").verdicts)
    assert share(reps, "relaxed", False) >= 0.7
    bad = [r for r in reps if r["checks"]["relaxed"] is False]
    assert all("let go" in " ".join(r["explain"]) for r in bad)
    relax = run.session("relax")
    holds = squeezes(relax.verdicts)
    assert share(holds, "relaxed", False) >= 0.5
    good_relax = squeezes(runs["good"].session("relax").verdicts)
    assert share(good_relax, "relaxed", True) == 1.0


def test_pusher_is_told_to_lift_not_push(runs):
    reps = squeezes(runs["pusher"].session("sprint").verdicts)
    pushed = [r for r in reps if r["pushed"] or r["technique"] == "push"]
    assert len(pushed) >= 0.4 * len(reps), [r["explain"] for r in reps]
    assert all(r["checks"]["technique"] is False for r in pushed)
    assert all("push" in " ".join(r["explain"]) for r in pushed)
    good = squeezes(runs["good"].session("sprint").verdicts)
    assert not any(r["pushed"] for r in good)


def test_short_rest_is_told_to_rest_as_long_as_she_squeezes(runs):
    reps = squeezes(runs["short_rest"].session("marathon").verdicts)
    assert reps[0]["checks"]["on_cue"] is True
    early = reps[1:]
    assert all(r["checks"]["on_cue"] is False and r["reaction_s"] < -1.0 for r in early)
    assert sum(1 for r in reps[:-1] if r["checks"]["rested"] is False) >= 3
    assert any("rest at least as long as you squeeze" in " ".join(r["explain"]) for r in reps)


def test_stops_early_is_told_to_hold_and_her_pain_rise_is_noted(runs):
    s = runs["stops_early"].session("marathon")
    reps = squeezes(s.verdicts)
    assert all(r["checks"]["held"] is False and r["hold_s"] < 6.0 for r in reps), [r["explain"] for r in reps]
    assert all("hold until the relax cue" in " ".join(r["explain"]) for r in reps)
    assert s.scores["repetitions"] == 0 and s.scores["endurance_s"] < 6.0
    assert s.pain == {"before": 3, "after": 6}
    from knip_host.coaching import pain_rose
    assert pain_rose(s.pain)


def test_weak_user_scores_weak_but_meets_her_own_targets(runs):
    s = runs["weak"].session("sprint")
    assert s.scores["oxford"] in (1, 2) and s.scores["oxford_label"] in ("very weak", "weak")
    assert share(squeezes(s.verdicts), "target", True) >= 0.8
    assert runs["good"].session("sprint").scores["oxford"] >= 3


def test_no_calibration_is_said_and_a_stopped_session_is_kept(runs):
    run = runs["uncalibrated"]
    s = run.session("sprint")
    assert any("no calibration" in n for n in run.notices["sprint"])
    assert s.header["calibrated"] is False and s.scores["calibrated"] is False
    assert all(v["provisional"] for v in s.verdicts)
    # she stopped after 12 reps: nothing recorded is lost, the summary says so
    assert not s.summary["program_done"] and s.summary["reason"] == "stopped"
    # the host stopped at the board time of the 12th verdict, when the 13th
    # squeeze was already cued: it is judged too
    assert len(squeezes(s.verdicts)) == 13


# ---- bad programs never replace a good one -----------------------------------

def test_bad_programs_are_refused_and_the_last_good_one_runs(tmp_path):
    vt = VirtualTrainer(tmp_path / "p.img", speed=SPEED, seed=2, clock="virtual").start()
    try:
        dev = Device(vt.port)
        dev.hello()
        good = {"name": "gentle", "title": "Gentle", "phases": [
            {"kind": "rest", "seconds": 3}, {"kind": "hold", "reps": 2, "squeeze_s": 3, "rest_s": 4, "target_pct": 40}]}
        assert dev.put_program(good) == "gentle"
        bad = [
            ({"name": "gentle", "phases": [{"kind": "hold", "reps": 2, "squeeze_s": -3, "rest_s": 4}]},
             "phases[0].squeeze_s"),
            ({"name": "gentle", "phases": [{"kind": "jump", "reps": 2}]}, "phases[0].kind: unknown cue"),
            ({"name": "gentle", "phases": [{"kind": "fast", "squeeze_s": 1, "rest_s": 2, "target_pct": 120}]},
             "phases[0].target_pct"),
            ({"name": "gentle", "phases": [{"kind": "hold", "squeeze_s": 10, "rest_s": 4}]}, "phases[0].rest_s"),
            ({"name": "sprint", "phases": [{"kind": "rest", "seconds": 1}]}, "built-in"),
        ]
        for doc, words in bad:
            with pytest.raises(DeviceRefused) as e:
                dev.put_program(doc)
            assert e.value.code == P.E_ARG and words in str(e.value), (words, str(e.value))
        info = dev.hello()
        assert "gentle" in info["custom_programs"]
        _sid, reps, _n = play(dev, "gentle")
        assert [r["phase_kind"] for r in squeezes(reps)] == ["hold", "hold"]
        dev.close()
    finally:
        vt.stop()
