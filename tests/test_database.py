"""The session database: a real SQLite file, stored once, never replaced,
resumable downloads, references, and clear errors for bad places and files.

`make_session` (also used by test_export.py and test_history.py) builds a
Session from the synthetic user run through the device chain, so sessions
look like real ones: pressure at 20 counts per cmH2O with an optional
abdominal channel, or EMG in uV at 1000 Hz.
"""
from __future__ import annotations

import functools
import pickle
import sqlite3
import zlib
from pathlib import Path

import numpy as np
import pytest

from knip import replay
from simboard import synth
from knip_host.analysis import (EMG_COUNTS_PER_UNIT, EMG_ENVELOPE_FRACTION,
                                PRESSURE_COUNTS_PER_UNIT, make_chain, record_to_event, summarize)
from knip_host.database import (APPLICATION_ID, DB_HINT, FILE_NAME, DatabaseError,
                                SessionDatabase, default_path)
from knip_host.session import Session

EPOCH = 1_746_000_000          # 2025-04-30 08:00 UTC
FAKE_MAGIC = b"KNIPTEST"       # test stand-in for a session file: magic + pickled Session


@functools.lru_cache(maxsize=None)
def _rendered(program: str, signal: str, rate: int, abd: bool, seed: int):
    if signal == "emg":
        values, ab, truth, info = synth.sprint_session("emg", rate, seed, sets=1, reps=5, abd=abd)
    elif program == "marathon":
        values, ab, truth, info = synth.marathon_session("pressure", rate, seed, reps=3,
                                                         hold_s=6.0, abd=abd)
    else:
        values, ab, truth, info = synth.sprint_session("pressure", rate, seed, sets=1, reps=8,
                                                       abd=abd)
    per_unit = EMG_COUNTS_PER_UNIT if signal == "emg" else PRESSURE_COUNTS_PER_UNIT
    level_div = per_unit * (EMG_ENVELOPE_FRACTION if signal == "emg" else 1)
    xs = [int(round(v * per_unit)) for v in values]
    abs_ = [int(round(v * per_unit)) for v in ab] if ab is not None else None
    ts = [int(round(i * 1000 / rate)) for i in range(len(xs))]
    chain = make_chain(signal, rate, abs_ is not None)
    records = replay.run(chain, ts, xs, abs_)
    events = sorted((record_to_event(r, level_div, abs_ is not None) for r in records),
                    key=lambda e: e["onset_s"])
    # Cues as the device's program runner writes them (knip.programs.steps):
    # phase = block index, a relax cue after every squeeze, "done" at the end.
    squeezes = [c for c in info["cues"] if c[1] == "squeeze"]
    target = 60 if program == "marathon" else 80
    end_ms = int(ts[-1]) - 2000
    cues = [{"t_ms": 0, "cue": "rest", "phase": 0, "rep": 1, "reps": 1,
             "dur_ms": int(squeezes[0][0] * 1000), "target_pct": 0}]
    for i, (t, action, dur) in enumerate(squeezes, 1):
        on = int(t * 1000)
        off = int((t + dur) * 1000)
        nxt = int(squeezes[i][0] * 1000) if i < len(squeezes) else end_ms
        cues.append({"t_ms": on, "cue": "squeeze", "phase": 1, "rep": i, "reps": len(squeezes),
                     "dur_ms": off - on, "target_pct": target})
        cues.append({"t_ms": off, "cue": "relax", "phase": 1, "rep": i, "reps": len(squeezes),
                     "dur_ms": nxt - off, "target_pct": 0})
    cues.append({"t_ms": end_ms, "cue": "done", "phase": 2, "rep": 0, "reps": 0, "dur_ms": 0,
                 "target_pct": 0})
    return ts, xs, abs_, records, events, cues, summarize(events, signal=signal, rate_hz=rate)


def make_session(device: str = "sim-0001", session_id: int = 1, *, program: str = "sprint",
                 signal: str = "pressure", rate: int = 50, abd: bool = True, seed: int = 3,
                 start_epoch: int | None = EPOCH, complete: bool = True,
                 gaps: tuple[tuple[int, int], ...] = ()) -> Session:
    """A decoded-looking Session. gaps ((i, n), ...): n samples lost from sample
    i on, i counting every sample including lost ones (as the device writes it)."""
    if signal == "emg":
        rate, abd = 1000, False
    ts, xs, abs_, records, events, cues, summary = _rendered(program, signal, rate, abd, seed)
    t_ms = np.array(ts, dtype=np.int64)
    values = np.array(xs, dtype=np.int32)
    ab = np.array(abs_, dtype=np.int32) if abs_ is not None else None
    if gaps:
        keep = np.ones(len(values), dtype=bool)
        for i, n in gaps:
            keep[i:i + n] = False
        t_ms, values = t_ms[keep], values[keep]
        ab = ab[keep] if ab is not None else None
    return Session(
        device_id=device, session_id=session_id, start_epoch=start_epoch, signal=signal,
        unit="uV" if signal == "emg" else "cmH2O",
        counts_per_unit=float(EMG_COUNTS_PER_UNIT if signal == "emg" else PRESSURE_COUNTS_PER_UNIT),
        rate_hz=float(rate), program=program, firmware="0.1.0-test", t_ms=t_ms, values=values,
        abd=ab, records=list(records), events=[dict(e) for e in events],
        cues=[dict(c) for c in cues], gaps=[tuple(g) for g in gaps], summary=dict(summary),
        header={"version": 1}, complete=complete, size=0)


def fake_file(session: Session) -> tuple[bytes, int]:
    """(raw bytes, crc32) standing in for the device's session file."""
    raw = FAKE_MAGIC + pickle.dumps(session)
    return raw, zlib.crc32(raw)


def fake_decode(raw: bytes, device_id: str) -> Session:
    assert raw.startswith(FAKE_MAGIC)
    s = pickle.loads(raw[len(FAKE_MAGIC):])
    assert s.device_id == device_id
    s.size = len(raw)
    return s


def store(db: SessionDatabase, session: Session) -> bool:
    raw, crc = fake_file(session)
    return db.add(session, raw, crc)


@pytest.fixture
def db(tmp_path):
    with SessionDatabase.open(tmp_path / "knip.sqlite3") as d:
        yield d


# ---------------------------------------------------------------- the fixture itself

def test_synthetic_sessions_look_real():
    s = make_session()
    assert s.rate_hz == 50 and s.abd is not None and len(s.values) == len(s.t_ms) == len(s.abd)
    assert sum(e["kind"] == "squeeze" for e in s.events) >= 6
    assert 2.0 < float(np.median(s.level())) < 25.0          # cmH2O at rest
    e = make_session(signal="emg")
    assert e.rate_hz == 1000 and e.unit == "uV" and e.abd is None
    assert sum(ev["kind"] == "squeeze" for ev in e.events) >= 3


# ---------------------------------------------------------------- opening

def test_open_creates_file_and_schema(tmp_path):
    path = tmp_path / "deep" / "er" / "knip.sqlite3"
    with SessionDatabase.open(path) as d:
        assert d.list() == [] and d.count() == 0
    assert path.is_file()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "partial"} <= tables
    cols = {r[1] for r in con.execute("PRAGMA table_info(sessions)")}
    assert {"device_id", "session_id", "start_epoch", "signal", "unit", "rate_hz", "program",
            "duration_s", "n_squeezes", "complete", "size", "crc32", "raw", "synced_at",
            "summary_json"} <= cols
    con.close()


def test_reopen_keeps_sessions(tmp_path):
    path = tmp_path / "k.sqlite3"
    with SessionDatabase.open(path) as d:
        store(d, make_session(session_id=4))
    with SessionDatabase.open(path) as d:
        assert d.has("sim-0001", 4)
        assert [r.key for r in d.list()] == ["sim-0001/4"]


def test_default_path_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KNIP_DATA", str(tmp_path / "kd"))
    assert default_path() == tmp_path / "kd" / FILE_NAME
    monkeypatch.delenv("KNIP_DATA")
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_path() == tmp_path / "xdg" / "knip" / FILE_NAME
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / ".local" / "share" / "knip" / FILE_NAME
    monkeypatch.setattr("sys.platform", "darwin")
    assert default_path() == tmp_path / "home" / "Library" / "Application Support" / "knip" / FILE_NAME
    monkeypatch.setattr("sys.platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "lad"))
    assert default_path() == tmp_path / "lad" / "knip" / FILE_NAME


def test_open_default_uses_knip_data(tmp_path, monkeypatch):
    monkeypatch.setenv("KNIP_DATA", str(tmp_path / "data"))
    with SessionDatabase.open(None) as d:
        assert d.path == tmp_path / "data" / FILE_NAME
    assert (tmp_path / "data" / FILE_NAME).is_file()


def test_open_without_create_refuses_a_missing_file(tmp_path):
    path = tmp_path / "sub" / "knip.sqlite3"
    with pytest.raises(DatabaseError, match=r"no session database at .*knip sync.*--db PATH"):
        SessionDatabase.open(path, create=False)
    assert not path.exists() and not path.parent.exists()
    SessionDatabase.open(path).close()
    with SessionDatabase.open(path, create=False) as d:
        assert d.count() == 0


def test_unwritable_place_says_what_and_what_to_do(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("I am a file, not a folder\n")
    target = blocker / "knip" / "knip.sqlite3"
    with pytest.raises(DatabaseError) as info:
        SessionDatabase.open(target)
    msg = str(info.value)
    assert str(blocker) in msg and DB_HINT in msg and "--db PATH" in msg
    assert blocker.read_text() == "I am a file, not a folder\n"


def test_folder_given_as_db_is_refused(tmp_path):
    with pytest.raises(DatabaseError, match=r"is a folder.*--db"):
        SessionDatabase.open(tmp_path)


def test_not_sqlite_file_is_refused_and_left_intact(tmp_path):
    path = tmp_path / "notes.sqlite3"
    content = b"time_s,pressure\n0.00,5.1\n" * 200
    path.write_bytes(content)
    with pytest.raises(DatabaseError) as info:
        SessionDatabase.open(path)
    assert "not a Knip database" in str(info.value) and "--db" in str(info.value)
    assert path.read_bytes() == content


def test_other_programs_sqlite_is_refused_and_left_intact(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE recipes (name TEXT)")
    con.execute("INSERT INTO recipes VALUES ('pancakes')")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(DatabaseError, match=r"another program.*recipes"):
        SessionDatabase.open(path)
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "k.sqlite3"
    SessionDatabase.open(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(DatabaseError, match=r"newer knip.*schema 99"):
        SessionDatabase.open(path)


# ---------------------------------------------------------------- add

def test_add_stores_exact_bytes_and_metadata(db):
    s = make_session(session_id=3)
    raw, crc = fake_file(s)
    assert not db.has("sim-0001", 3)
    assert db.add(s, raw, crc) is True
    assert db.has("sim-0001", 3)
    assert db.raw("sim-0001", 3) == raw
    (row,) = db.list()
    n_sq = sum(e["kind"] == "squeeze" for e in s.events)
    assert (row.device_id, row.session_id, row.start_epoch) == ("sim-0001", 3, EPOCH)
    assert (row.signal, row.unit, row.rate_hz, row.program) == ("pressure", "cmH2O", 50.0, "sprint")
    assert row.n_squeezes == n_sq and row.complete is True
    assert row.size == len(raw) and row.crc32 == crc
    assert row.duration_s == pytest.approx(s.duration_s)
    assert row.summary["squeezes"] == n_sq
    assert row.summary["relaxed_fully"] + row.summary["not_relaxed"] == row.summary["judged"]
    assert row.summary["device"]["squeezes"] == s.summary["squeezes"]


def test_add_is_idempotent(db):
    s = make_session(session_id=5)
    raw, crc = fake_file(s)
    assert db.add(s, raw, crc) is True
    synced = db.list()[0].synced_at
    assert db.add(s, raw, crc) is False
    assert db.add(s, raw, crc) is False
    assert db.count() == 1 and db.list()[0].synced_at == synced
    assert db.raw("sim-0001", 5) == raw


def test_a_reused_number_keeps_both_sessions(db):
    # a trainer without store ids restarted its numbers (a reset): the same
    # (device, store, number) with another file is stored beside the first
    s = make_session(session_id=2)
    raw, crc = fake_file(s)
    db.add(s, raw, crc)
    other = make_session(session_id=2, seed=11, start_epoch=EPOCH + 86400)
    raw2, crc2 = fake_file(other)
    assert crc2 != crc
    assert db.add(other, raw2, crc2) is True
    assert db.add(other, raw2, crc2) is False            # the same file again: nothing changes
    assert [r.key for r in db.list()] == ["sim-0001/2", "sim-0001~2/2"]
    assert db.raw("sim-0001", 2) == raw and db.raw("sim-0001~2", 2) == raw2
    assert db.holds("sim-0001", 2, len(raw2), crc2) == "sim-0001~2/2"
    with pytest.raises(DatabaseError, match="2 times"):
        db.resolve("2")
    assert db.resolve("sim-0001~2/2") == ("sim-0001~2", 2)


def test_store_ids_key_sessions_and_label_later_stores(db):
    # one board, reflashed twice: every store counts from 1 again
    for store_id, seed in (("0a0b0c0d", 3), ("1a1b1c1d", 5), ("2a2b2c2d", 7)):
        for n in (1, 2):
            s = make_session(session_id=n, seed=seed + n, start_epoch=EPOCH + seed * 86400 + n * 3600)
            s.store_id = store_id
            assert store(db, s) is True
    rows = db.list()
    assert [r.key for r in rows] == ["sim-0001/1", "sim-0001/2", "sim-0001~2/1", "sim-0001~2/2",
                                     "sim-0001~3/1", "sim-0001~3/2"]
    assert [r.store_id for r in rows[::2]] == ["0a0b0c0d", "1a1b1c1d", "2a2b2c2d"]
    assert db.resolve("sim-0001~3/2") == ("sim-0001~3", 2) and db.resolve("last") == ("sim-0001~3", 2)
    s = db.load("sim-0001~2/1", fake_decode)
    assert s.key == "sim-0001~2/1" and s.store_id == "1a1b1c1d"
    assert db.get("sim-0001~3", 1).store_id == "2a2b2c2d" and not db.has("sim-0001~4", 1)


def test_size_mismatch_is_refused(db):
    s = make_session(session_id=9)
    raw, crc = fake_file(s)
    s.size = len(raw) + 10
    with pytest.raises(DatabaseError, match="bytes"):
        db.add(s, raw, crc)
    assert not db.has("sim-0001", 9)


def test_recovered_file_with_trailing_bytes_is_stored_whole(db):
    """After a power cut the decoder's `size` (valid bytes) can be less than the
    file: the file is still stored byte for byte."""
    s = make_session(session_id=10, complete=False)
    raw, _ = fake_file(s)
    raw += b"\xff" * 64                                   # erased flash after the last record
    s.size = len(raw) - 64
    assert db.add(s, raw, zlib.crc32(raw)) is True
    assert db.raw("sim-0001", 10) == raw
    row = db.get("sim-0001", 10)
    assert row.size == len(raw) and row.complete is False


def test_same_number_on_two_devices_are_two_sessions(db):
    assert store(db, make_session("sim-0001", 1))
    assert store(db, make_session("aabbccddeeff", 1, seed=5))
    assert db.count() == 2
    assert [r.key for r in db.list(device="aabbccddeeff")] == ["aabbccddeeff/1"]
    assert db.devices() == ["aabbccddeeff", "sim-0001"]


def test_list_orders_by_start_then_id_and_clock_unset(db):
    store(db, make_session("b", 1, start_epoch=EPOCH + 100))
    store(db, make_session("a", 2, start_epoch=EPOCH + 100))
    store(db, make_session("a", 1, start_epoch=EPOCH))
    store(db, make_session("a", 3, start_epoch=None))       # synced now: newest
    rows = db.list()
    assert [r.key for r in rows] == ["a/1", "a/2", "b/1", "a/3"]
    assert rows[-1].start_epoch is None


# ---------------------------------------------------------------- partial downloads

def test_partial_resume_round_trip(db):
    s = make_session(session_id=7)
    raw, crc = fake_file(s)
    assert db.partial_get("sim-0001", 7) is None
    cut = len(raw) // 3
    db.partial_put("sim-0001", 7, raw[:cut], len(raw), crc)
    assert db.partial_get("sim-0001", 7) == (raw[:cut], len(raw), crc)
    # resume: fetch the rest from where we were
    data, size, want = db.partial_get("sim-0001", 7)
    db.partial_put("sim-0001", 7, data + raw[len(data):2 * cut], size, want)
    data, size, want = db.partial_get("sim-0001", 7)
    assert data == raw[:2 * cut]
    full = data + raw[len(data):]
    assert zlib.crc32(full) == want and len(full) == size
    assert db.add(fake_decode(full, "sim-0001"), full, want) is True
    assert db.partial_get("sim-0001", 7) is None           # the finished download is gone
    assert db.raw("sim-0001", 7) == raw


def test_partial_for_a_different_file_starts_over(db):
    db.partial_put("sim-0001", 8, b"abcdef", 100, 0x1234)
    db.partial_put("sim-0001", 8, b"XY", 50, 0x9999)
    assert db.partial_get("sim-0001", 8) == (b"XY", 50, 0x9999)
    db.partial_drop("sim-0001", 8)
    assert db.partial_get("sim-0001", 8) is None
    db.partial_drop("sim-0001", 8)                          # dropping nothing is fine


def test_partial_longer_than_file_is_refused(db):
    with pytest.raises(DatabaseError, match="corrupt"):
        db.partial_put("sim-0001", 1, b"x" * 11, 10, 0)
    assert db.partial_get("sim-0001", 1) is None


# ---------------------------------------------------------------- references

@pytest.fixture
def filled(db):
    for i in range(1, 6):
        store(db, make_session("sim-0001", i, start_epoch=EPOCH + 3600 * i))
    store(db, make_session("aabbcc", 3, start_epoch=EPOCH + 3600 * 10, seed=4))
    store(db, make_session("aabbcc", 9, start_epoch=EPOCH + 3600 * 11, seed=4))
    return db


def test_resolve_references(filled):
    assert filled.resolve("sim-0001/2") == ("sim-0001", 2)
    assert filled.resolve(" aabbcc/9 ") == ("aabbcc", 9)
    assert filled.resolve("5") == ("sim-0001", 5)
    assert filled.resolve("9") == ("aabbcc", 9)
    assert filled.resolve("last") == ("aabbcc", 9)
    assert filled.resolve("latest") == ("aabbcc", 9)
    assert filled.resolve("-1") == ("aabbcc", 9)
    assert filled.resolve("-2") == ("aabbcc", 3)
    assert filled.resolve("-3") == ("sim-0001", 5)
    assert filled.resolve("-7") == ("sim-0001", 1)


@pytest.mark.parametrize("ref, needles", [
    ("3", ["session 3", "2 devices", "sim-0001", "aabbcc", "aabbcc/3"]),
    ("7", ["no session 7", "'knip sessions' lists the 7 stored sessions"]),
    ("sim-0001/8", ["no session sim-0001/8", "sessions 1-5"]),
    ("nope/1", ["no device 'nope'", "aabbcc, sim-0001"]),
    ("-8", ["only 7 sessions"]),
    ("-0", ["-1"]),
    ("yesterday", ["not a session", "DEVICE/N", "last"]),
    ("sim-0001/x", ["DEVICE/NUMBER"]),
])
def test_resolve_errors_say_what_exists(filled, ref, needles):
    with pytest.raises(DatabaseError) as info:
        filled.resolve(ref)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_resolve_on_empty_database_points_to_sync(db):
    with pytest.raises(DatabaseError, match=r"no sessions are stored yet.*knip sync"):
        db.resolve("last")


def test_raw_of_missing_session(filled):
    with pytest.raises(DatabaseError, match="no session sim-0001/99"):
        filled.raw("sim-0001", 99)


# ---------------------------------------------------------------- load

def test_load_decodes_with_the_given_decoder(filled):
    s = filled.load("sim-0001/2", fake_decode)
    assert s.key == "sim-0001/2" and s.start_epoch == EPOCH + 7200
    assert s.size == len(filled.raw("sim-0001", 2))
    np.testing.assert_array_equal(s.values, make_session("sim-0001", 2).values)


def test_load_wraps_decoder_failure(filled):
    def broken(raw, device_id):
        raise ValueError("bad block 3")

    with pytest.raises(DatabaseError) as info:
        filled.load("last", broken)
    msg = str(info.value)
    assert "aabbcc/9" in msg and "bad block 3" in msg and "cannot be decoded" in msg
    assert isinstance(info.value.__cause__, ValueError)


def test_load_rejects_a_file_that_decodes_as_another_session(filled):
    def wrong(raw, device_id):
        s = fake_decode(raw, device_id)
        s.session_id += 100
        return s

    with pytest.raises(DatabaseError, match="inconsistent"):
        filled.load("sim-0001/1", wrong)


def test_read_only_file_reports_write_failure(tmp_path):
    """A database that opens but cannot be written (read-only mode) says so with the hint."""
    path = tmp_path / "k.sqlite3"
    SessionDatabase.open(path).close()
    d = SessionDatabase(sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None),
                        Path(path))
    with pytest.raises(DatabaseError) as info:
        store(d, make_session())
    assert "cannot write" in str(info.value) and DB_HINT in str(info.value)
    d.close()
