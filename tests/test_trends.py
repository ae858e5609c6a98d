"""`knip progress` and `knip report --html` on real synced sessions: the
virtual trainer (the real firmware under MicroPython, a simulated woman, on
the virtual clock) runs five programs, `knip sync` stores them in a real SQLite file, and the
commands read them back. `real_database()` is shared with
test_report_browser.py (recorded once per test run, on whichever xdist worker
comes first)."""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import io
import json
import os
import re
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from knip_host import cli
from knip_host import trends as T
from knip_host.trend_plots import panels_with_data
from knip_host.database import SessionDatabase
from knip_host.html_report import PAIN_ADVICE, SESSION_HEADERS, UNCALIBRATED

pytestmark = pytest.mark.micropython

SPEED = "40"
# (program, simulated user, extra `knip live` options); session ids follow this order
PLAN = [
    ("marathon", "good", []),                                    # 0: before calibrating
    ("calibrate", "good", []),                                   # 1: measures her MVC
    ("sprint", "good", ["--pain-before", "1", "--pain-after", "2"]),  # 2: pain from the command line
    ("marathon", "good", []),                                    # 3: its clock is unset below
    ("marathon", "stops_early", []),                             # 4: lets go early, pain 3 -> 6
]
UNDATED = 3

_BUILT: dict[str, Path] = {}


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def shifted_epochs(today: dt.date) -> dict[int, int | None]:
    """Where the sessions are put in time (local): weeks of training with a
    gap, the last two on consecutive days (yesterday and today)."""
    at = lambda days_ago, h, m=0: int(dt.datetime.combine(  # noqa: E731
        today - dt.timedelta(days=days_ago), dt.time(h, m)).timestamp())
    return {0: at(31, 10), 1: at(17, 10), 2: at(1, 18), UNDATED: None, 4: at(0, 0, 30)}


def shared_dir(tmp_path_factory) -> Path:
    """A folder of this test run that every xdist worker sees (the parent of
    the workers' own temporary folders), else the run's temporary folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent / "knip-real-sessions" if os.environ.get("PYTEST_XDIST_WORKER") else \
        base / "knip-real-sessions"


def real_database(base: Path) -> Path:
    """Record PLAN on one virtual trainer, sync it into base/knip.sqlite3 and
    spread the sessions over weeks. Built once per test run, also when
    test_report_browser.py runs on another xdist worker (base from
    shared_dir: the first to come records it under a lock, the other waits
    and reads the same file); copy it before changing it."""
    if "db" in _BUILT and _BUILT["db"].exists():
        return _BUILT["db"]
    base.mkdir(parents=True, exist_ok=True)
    db = base / "knip.sqlite3"
    with open(base / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / "recorded").exists():
            _record(base, db)
            (base / "recorded").write_text("ok\n")
    _BUILT["db"] = db
    return db


def _record(base: Path, db: Path) -> None:
    for old in (base / "trainer.img", db, base / "data"):          # a failed attempt's leftovers
        shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
    image = str(base / "trainer.img")
    sim = ["--port", "sim", "--sim-image", image, "--sim-speed", SPEED, "--sim-clock", "virtual"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KNIP_DATA", str(base / "data"))
        for program, user, extra in PLAN:
            # 1 s live frames: the sessions are what counts here, and each
            # frame costs a pause of the virtual clock and a decode
            rc, out, err = _run(["live", *sim, "--sim-user", user, "--program", program,
                                 "--plain", "--batch-ms", "1000", *extra])
            assert rc == 0, f"knip live {program} ({user}) failed: {err}\n{out[-2000:]}"
            assert "session ended" in out
        rc, out, err = _run(["sync", *sim, "--db", str(db)])
        assert rc == 0 and f"{len(PLAN)} new sessions" in out, err + out
    # The five sessions were recorded a few seconds apart. Moving their start
    # times here stands in for weeks of training (and for a trainer whose
    # clock was not set, session 3): plain SQL on the real SQLite file.
    today = dt.date.today()
    con = sqlite3.connect(db)
    with con:
        for sid, epoch in shifted_epochs(today).items():
            con.execute("UPDATE sessions SET start_epoch = ? WHERE session_id = ?", (epoch, sid))
    con.close()


@pytest.fixture(scope="module")
def real_db(tmp_path_factory) -> Path:
    return real_database(shared_dir(tmp_path_factory))


@pytest.fixture
def db_copy(real_db, tmp_path) -> Path:
    p = tmp_path / "copy.sqlite3"
    shutil.copy(real_db, p)
    return p


def rows_of(db: Path):
    with SessionDatabase.open(db, create=False) as d:
        return d.list()


def _iso_weeks(first: dt.date, last: dt.date) -> list[str]:
    out, m = [], first - dt.timedelta(days=first.weekday())
    while m <= last:
        y, w, _ = m.isocalendar()
        out.append(f"{y}-W{w:02d}")
        m += dt.timedelta(days=7)
    return out


# ------------------------------------------------------------------ the figures

def test_points_come_from_the_stored_summaries(real_db):
    rows = rows_of(real_db)
    assert len(rows) == len(PLAN)
    tr = T.build(rows)
    by = {p.session_id: p for p in tr.points}
    for r in rows:
        p, s = by[r.session_id], r.summary
        sc = s["scores"]
        assert p.mvc == sc["mvc"] and p.power == sc["power"]
        assert p.oxford == sc["oxford"] and p.oxford_label == sc["oxford_label"]
        assert p.fast == sc["fast"] and p.repetitions == sc["repetitions"]
        assert p.resting_tone == sc["resting_tone"]
        assert p.relaxed == sc["relaxed"] and p.relax_judged == sc["judged"]["relaxed"]
        assert p.rested == sc["rested"] and p.rest_judged == sc["judged"]["rested"]
        assert (p.pain_before, p.pain_after) == (s["pain"]["before"], s["pain"]["after"])
        assert p.calibrated == s["calibrated"] and p.program_done == s["program_done"]
    # what the programs did: quick squeezes only in the sprint, holds in the marathons
    assert by[2].fast is not None and by[2].fast > 20
    assert by[2].endurance_s is None          # quick squeezes say nothing about endurance
    for sid in (0, 3, 4):
        assert by[sid].fast is None           # no fast phase: no count, not a zero
        assert by[sid].endurance_s == rows[[r.session_id for r in rows].index(sid)].summary[
            "scores"]["endurance_s"]
    assert by[4].endurance_s < by[0].endurance_s     # she let go early
    assert by[1].calibrating and not by[1].uncalibrated
    assert by[0].uncalibrated and not by[2].uncalibrated
    assert (by[2].pain_before, by[2].pain_after) == (1, 2)    # --pain-before/--pain-after
    assert by[4].pain_after > by[4].pain_before               # the stops_early user: 3 -> 6
    assert [p.session_id for p in tr.points if p.start_epoch is None] == [UNDATED]


def test_weeks_streak_and_notes(real_db):
    tr = T.build(rows_of(real_db))
    epochs = shifted_epochs(dt.date.today())
    days = sorted(dt.datetime.fromtimestamp(e).date() for e in epochs.values() if e is not None)
    assert [w.week for w in tr.weeks] == _iso_weeks(days[0], days[-1])
    assert sum(w.sessions for w in tr.weeks) == len(PLAN) - 1      # the undated one is in none
    assert tr.gap_weeks and all(w.sessions == 0 and w.mvc_best is None for w in tr.gap_weeks)
    busy = [w for w in tr.weeks if w.sessions]
    for w in busy:     # weekly figures are the week's own sessions' figures
        ps = [p for p in tr.dated if T.iso_week(p.day) == w.week]
        mvcs = [p.mvc for p in ps if p.mvc is not None]
        assert w.mvc_best == (round(max(mvcs), 2) if mvcs else None)
        judged = [p for p in ps if p.relax_judged]
        assert w.relax_judged == (sum(p.relax_judged for p in judged) if judged else None)
    st = tr.streak
    assert (st.days, st.last_days) == (2, 2)            # yesterday and today
    assert st.weeks >= 1 and st.longest_days == 2
    # the same sessions seen three days later: the streak is broken, its length kept
    later = T.streak(tr.points, dt.date.today() + dt.timedelta(days=3))
    assert (later.days, later.last_days, later.longest_days) == (0, 2, 2)
    assert [p.session_id for p in tr.pain_rose] == [2, 4]
    assert tr.pain_trend_up                    # after: 1, 1, 2, 6
    assert [p.session_id for p in tr.uncalibrated] == [0]
    notes = " ".join(tr.notes())
    assert f"sim-0001/{UNDATED}" in notes and "clock was not set" in notes


def test_rows_from_an_older_knip_contribute_only_what_they_have(db_copy):
    # Stand-in for a session synced before scores, pain and verdicts existed:
    # the same real row without those keys.
    con = sqlite3.connect(db_copy)
    with con:
        con.execute("UPDATE sessions SET summary_json = json_remove(summary_json, '$.scores', "
                    "'$.verdicts', '$.pain', '$.calibrated', '$.program_done') "
                    "WHERE session_id = 0")
    con.close()
    rows = rows_of(db_copy)
    p = next(x for x in T.build(rows).points if x.session_id == 0)
    assert p.mvc is None and p.endurance_s is None and p.fast is None and p.resting_tone is None
    assert p.pain_before is None and p.calibrated is None and not p.uncalibrated
    assert p.power == rows[[r.session_id for r in rows].index(0)].summary["max_amplitude"]
    assert p.relax_judged == rows[[r.session_id for r in rows].index(0)].summary["judged"]
    rc, out, err = _run(["report", "--html", str(db_copy.parent / "r.html"), "--db", str(db_copy)])
    assert rc == 0, err
    page = (db_copy.parent / "r.html").read_text()
    assert "no per-squeeze verdicts stored" in page and "older knip" in page


# ------------------------------------------------------------------ knip progress

def test_progress_prints_weeks_and_writes_the_png(real_db, tmp_path):
    rc, out, err = _run(["progress", "--db", str(real_db), "-o", str(tmp_path)])
    assert rc == 0, err
    png = tmp_path / "knip-progress.png"
    assert f"trends written to {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 30000
    tr = T.build(rows_of(real_db))
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["week", "from", "sessions"]
    for w in tr.weeks:
        row = next(line for line in lines if line.startswith(w.week))
        assert row.split()[3] == str(w.sessions)
    assert "streak: 2 days" in out
    assert PAIN_ADVICE in out and UNCALIBRATED in out
    assert f"sim-0001/{UNDATED}" in out and "not on the time axis" in out
    assert "No sessions in" in out


def test_progress_json(real_db, tmp_path):
    rc, out, err = _run(["progress", "--db", str(real_db), "-o", str(tmp_path / "p.png"),
                         "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["plot"] == str(tmp_path / "p.png") and (tmp_path / "p.png").exists()
    assert len(doc["points"]) == len(PLAN) and doc["unit"] == "cmH2O"
    assert doc["undated"] == [f"sim-0001/{UNDATED}"]
    assert doc["streak"]["days"] == 2 and doc["pain_trend_up"] is True
    assert sum(w["sessions"] for w in doc["weeks"]) == len(PLAN) - 1
    sprint = next(p for p in doc["points"] if p["program"] == "sprint")
    assert sprint["relaxed_pct"] is not None and sprint["week"] is not None
    undated = next(p for p in doc["points"] if p["session_id"] == UNDATED)
    assert undated["date"] is None and undated["week"] is None and undated["mvc"] is not None


def test_progress_device_filter_and_errors(real_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = _run(["progress", "--db", str(real_db), "--device", "sim-0001"])
    assert rc == 0 and (tmp_path / "knip-progress-sim-0001.png").exists()
    rc, _, err = _run(["progress", "--db", str(real_db), "--device", "nope"])
    assert rc == 1 and "stored devices: sim-0001" in err
    rc, _, err = _run(["progress", "--db", str(real_db), "-o", str(tmp_path / "no" / "dir")])
    assert rc == 2 and "create it first" in err and "not a folder yet" in err
    rc, out, _ = _run(["progress", "--db", str(tmp_path / "none.sqlite3")])
    assert rc == 0 and "no sessions yet" in out and "knip sync" in out
    SessionDatabase.open(tmp_path / "empty.sqlite3").close()
    rc, out, _ = _run(["progress", "--db", str(tmp_path / "empty.sqlite3")])
    assert rc == 0 and "no sessions yet" in out
    (tmp_path / "other.sqlite3").write_bytes(b"not a database at all" * 100)
    rc, _, err = _run(["progress", "--db", str(tmp_path / "other.sqlite3")])
    assert rc == 1 and "--db" in err


def test_progress_with_no_dated_session(db_copy, tmp_path):
    con = sqlite3.connect(db_copy)
    with con:
        con.execute("UPDATE sessions SET start_epoch = NULL")
    con.close()
    rc, out, err = _run(["progress", "--db", str(db_copy), "-o", str(tmp_path)])
    assert rc == 0, err
    assert "no session has a date yet" in out and "no plot written" in out
    assert not (tmp_path / "knip-progress.png").exists()
    rc, _, err = _run(["report", "--html", str(tmp_path / "r.html"), "--db", str(db_copy)])
    assert rc == 0, err
    assert "Nothing to draw yet" in (tmp_path / "r.html").read_text()


# ------------------------------------------------------------------ knip report --html

def test_report_is_one_self_contained_escaped_file(real_db, tmp_path):
    page_path = tmp_path / "report.html"
    name = 'Kari <script>alert("x")</script> & Co'
    t0 = time.monotonic()
    rc, out, err = _run(["report", "--html", str(page_path), "--db", str(real_db),
                         "--name", name])
    assert rc == 0, err
    assert f"report written to {page_path}" in out and time.monotonic() - t0 < 30
    page = page_path.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "Kari &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in page
    srcs = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in page and "https://" not in page and "url(" not in page
    assert PAIN_ADVICE in page and UNCALIBRATED in page
    assert page.count('<details class="verdicts"') == len(PLAN)
    for h in SESSION_HEADERS:
        assert f"<th>{h}</th>" in page
    rows = rows_of(real_db)
    tr = T.build(rows)
    assert page.count("<img ") == len(panels_with_data(tr)) == 7


def test_report_errors(real_db, tmp_path):
    rc, _, err = _run(["report", "--html", str(tmp_path / "no" / "r.html"), "--db", str(real_db)])
    assert rc == 2 and "does not exist" in err
    rc, _, err = _run(["report", "--html", str(tmp_path), "--db", str(real_db)])
    assert rc == 2 and "is a folder" in err
    SessionDatabase.open(tmp_path / "empty.sqlite3").close()
    rc, _, err = _run(["report", "--html", str(tmp_path / "r.html"),
                       "--db", str(tmp_path / "empty.sqlite3")])
    assert rc == 1 and "no sessions yet" in err and "no report was written" in err
    assert not (tmp_path / "r.html").exists()
    rc, _, err = _run(["report", "--html", str(tmp_path / "r.html"),
                       "--db", str(tmp_path / "missing.sqlite3")])
    assert rc == 1 and "knip sync" in err
    rc, _, err = _run(["report", "--db", str(real_db)])
    assert rc == 2 and "--html" in err
    assert list(tmp_path.glob("*.html")) == [] and list(tmp_path.glob(".*tmp*")) == []
