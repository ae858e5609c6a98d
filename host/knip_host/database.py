"""The session database: every synced session file, kept verbatim, in one
SQLite file on her own machine.

`SessionDatabase.open(path)` opens (or creates) it; `add()` stores a session
once and never replaces it silently; `partial_*` keep half-finished downloads
so `knip sync` can resume; `list()`, `resolve()`, `raw()` and `load()` serve
the `knip sessions / show / plot / export` commands.

The raw bytes are the truth; the metadata columns and `summary_json` are a
cache of what the decoder said when the session was stored, so listing a
thousand sessions never decodes a thousand files.

Default location: `$KNIP_DATA/knip.sqlite3` if KNIP_DATA is set, else the
user's data folder (`$XDG_DATA_HOME/knip` or `~/.local/share/knip` on Linux,
`~/Library/Application Support/knip` on macOS, `%LOCALAPPDATA%\\knip` on
Windows). Problems are `DatabaseError` with a message that says what to do.
"""
from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .session import Session

FILE_NAME = "knip.sqlite3"
APPLICATION_ID = 0x4B4E4950         # "KNIP": PRAGMA application_id marks the file as ours
SCHEMA_VERSION = 1                  # PRAGMA user_version
DB_HINT = "pass --db PATH to use another file"

SCHEMA = ("""
CREATE TABLE sessions (
    device_id    TEXT    NOT NULL,
    session_id   INTEGER NOT NULL,
    start_epoch  INTEGER,               -- Unix seconds; NULL when the device clock was not set
    signal       TEXT    NOT NULL,
    unit         TEXT    NOT NULL,
    rate_hz      REAL    NOT NULL,
    program      TEXT    NOT NULL DEFAULT '',
    duration_s   REAL    NOT NULL,
    n_squeezes   INTEGER NOT NULL,
    complete     INTEGER NOT NULL,      -- 0: recovered after a power cut
    size         INTEGER NOT NULL,      -- length of raw (bytes of the session file)
    crc32        INTEGER NOT NULL,      -- the CRC the device gave for the file
    raw          BLOB    NOT NULL,      -- the session file exactly as read from the device
    synced_at    INTEGER NOT NULL,      -- Unix seconds when it was stored
    summary_json TEXT    NOT NULL,      -- session_figures() + the device's own summary
    PRIMARY KEY (device_id, session_id)
)""", """
CREATE TABLE partial (
    device_id     TEXT    NOT NULL,
    session_id    INTEGER NOT NULL,
    expected_size INTEGER NOT NULL,
    expected_crc  INTEGER NOT NULL,
    data          BLOB    NOT NULL,     -- the first len(data) bytes of the file
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (device_id, session_id)
)""")

_ROW_COLUMNS = ("device_id", "session_id", "start_epoch", "signal", "unit", "rate_hz", "program",
                "duration_s", "n_squeezes", "complete", "size", "crc32", "synced_at", "summary_json")


class DatabaseError(Exception):
    """The database cannot do what was asked; the message says why and what to do."""


@dataclass
class SessionRow:
    """One stored session's metadata (everything but the raw bytes)."""
    device_id: str
    session_id: int
    start_epoch: int | None
    signal: str
    unit: str
    rate_hz: float
    program: str
    duration_s: float
    n_squeezes: int
    complete: bool
    size: int
    crc32: int
    synced_at: int
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.device_id}/{self.session_id}"

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "device_id": self.device_id, "session_id": self.session_id,
                "start_epoch": self.start_epoch, "signal": self.signal, "unit": self.unit,
                "rate_hz": self.rate_hz, "program": self.program, "duration_s": self.duration_s,
                "n_squeezes": self.n_squeezes, "complete": self.complete, "size": self.size,
                "crc32": self.crc32, "synced_at": self.synced_at, "summary": self.summary}


# ------------------------------------------------------------------ location

def default_path() -> Path:
    """Where the database lives when --db is not given (see the module docstring)."""
    env = os.environ.get("KNIP_DATA")
    if env:
        return Path(env).expanduser() / FILE_NAME
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share"
    return base / "knip" / FILE_NAME


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


# ------------------------------------------------------------------ figures

def session_figures(s: Session) -> dict[str, Any]:
    """The numbers a person looks at first, from the decoded session: squeezes,
    their strength and hold, relaxation, rests, technique, gaps. Stored as the
    `summary_json` column (with the device's own summary under "device") and
    shown by `knip show`."""
    events = list(s.events or [])
    squeezes = [e for e in events if e.get("kind") == "squeeze"]
    peaks = [float(e["peak"]) for e in squeezes if e.get("peak") is not None]
    amps = [float(e["amplitude"]) for e in squeezes if e.get("amplitude") is not None]
    holds = [float(e["hold_s"]) for e in squeezes if e.get("hold_s") is not None]
    judged = [e for e in squeezes if e.get("relaxed") is not None]
    rests = [e for e in squeezes if e.get("rest_ok") is not None]
    missing = sum(int(n) for _, n in (s.gaps or []))
    rate = float(s.rate_hz) if s.rate_hz else 0.0

    def mean(xs: list[float]) -> float | None:
        return round(sum(xs) / len(xs), 3) if xs else None

    return {
        "squeezes": len(squeezes),
        "coughs": sum(1 for e in events if e.get("kind") == "cough"),
        "bearing_down": sum(1 for e in events if e.get("kind") == "bearing_down"),
        "max_peak": round(max(peaks), 3) if peaks else None,
        "mean_peak": mean(peaks),
        "max_amplitude": round(max(amps), 3) if amps else None,
        "mean_amplitude": mean(amps),
        "mean_hold_s": mean(holds),
        "judged": len(judged),
        "relaxed_fully": sum(1 for e in judged if e["relaxed"]),
        "not_relaxed": sum(1 for e in judged if not e["relaxed"]),
        "rests_judged": len(rests),
        "rests_too_short": sum(1 for e in rests if e["rest_ok"] is False),
        "two_channel": s.abd is not None,
        "samples": int(len(s.values)),
        "gaps": len(s.gaps or []),
        "missing_samples": missing,
        "missing_s": round(missing / rate, 3) if rate else None,
        "cues": len(s.cues or []),
        "firmware": s.firmware,
        # coaching (issue 4): from the device's verdict records
        "calibrated": bool(s.scores.get("calibrated")) if s.scores else bool(s.header.get("calibrated")),
        "program_done": bool(s.summary.get("program_done", s.summary.get("reason") == "done")),
        "pain": dict(s.pain),
        "scores": dict(s.scores),
        "verdicts": [dict(v) for v in s.verdicts],
    }


def _json_default(x: Any) -> Any:
    if hasattr(x, "item"):            # numpy scalars
        return x.item()
    if hasattr(x, "tolist"):          # numpy arrays
        return x.tolist()
    return str(x)


def _clean_json(x: Any) -> Any:
    """NaN / inf are not JSON: store them as null."""
    if isinstance(x, dict):
        return {str(k): _clean_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean_json(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ------------------------------------------------------------------ the database

class SessionDatabase:
    """The synced sessions in one SQLite file. Use `SessionDatabase.open(path)`."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    # ---- opening ---------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, *, create: bool = True) -> "SessionDatabase":
        """Open the database at `path` (None: `default_path()`), creating the
        file and its folders if needed (create=False: a missing file is a
        DatabaseError instead, for commands that only read). Never overwrites
        a file that is not a Knip database."""
        p = Path(path).expanduser() if path is not None else default_path()
        if not create and not p.exists():
            raise DatabaseError(f"no session database at {p} yet: connect your trainer and run "
                                f"'knip sync' (or try 'knip sync --port sim'); pass --db PATH "
                                f"if you keep it elsewhere")
        if p.is_dir():
            raise DatabaseError(f"{p} is a folder, not a database file; "
                                f"pass --db {p / FILE_NAME} (or another file name)")
        folder = p.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the folder {folder} for {p.name}: "
                                f"{_reason(exc)}; {DB_HINT}") from None
        if not folder.is_dir():
            raise DatabaseError(f"cannot create {p}: {folder} is not a folder; {DB_HINT}")
        existed = p.exists() and p.stat().st_size > 0
        if not existed and not os.access(folder, os.W_OK):
            raise DatabaseError(f"cannot write {p}: permission denied; {DB_HINT}")
        try:
            conn = sqlite3.connect(str(p), timeout=10.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open {p}: {exc}; {DB_HINT}") from None
        db = cls(conn, p)
        try:
            db._check_or_create(existed)
        except BaseException:
            conn.close()
            raise
        return db

    def _check_or_create(self, existed: bool) -> None:
        p = self.path
        try:
            app_id = self.conn.execute("PRAGMA application_id").fetchone()[0]
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            tables = [r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{p} is not a Knip database ({exc}); it was left as it is; "
                                f"{DB_HINT}") from None
        if app_id == 0 and not tables:
            self._create()
            return
        if app_id != APPLICATION_ID:
            what = (f"tables {', '.join(sorted(tables)[:5])}" if tables else "no tables")
            raise DatabaseError(f"{p} is an SQLite database of another program ({what}), not a "
                                f"Knip database; it was left as it is; {DB_HINT}")
        if version > SCHEMA_VERSION:
            raise DatabaseError(f"{p} was written by a newer knip (schema {version}, this one "
                                f"reads up to {SCHEMA_VERSION}); upgrade knip "
                                f"(pip install -U knip) or {DB_HINT}")
        if version < 1 or not {"sessions", "partial"} <= set(tables):
            raise DatabaseError(f"{p} is a damaged Knip database (schema {version}, tables "
                                f"{', '.join(sorted(tables)) or 'none'}); it was left as it is; "
                                f"{DB_HINT}")

    def _create(self) -> None:
        with self._write("create"):
            for stmt in SCHEMA:
                self.conn.execute(stmt)
            self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _write(self, what: str) -> Iterator[None]:
        """One transaction; SQLite and OS errors become DatabaseError."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(what, exc) from None
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException as exc:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(exc, sqlite3.Error):
                raise self._error(what, exc) from None
            raise

    def _error(self, what: str, exc: sqlite3.Error) -> DatabaseError:
        text = str(exc)
        low = text.lower()
        if "readonly" in low or "read-only" in low or "unable to open" in low or "permission" in low:
            return DatabaseError(f"cannot write {self.path} ({what}): permission denied; {DB_HINT}")
        if "locked" in low or "busy" in low:
            return DatabaseError(f"{self.path} is busy: another knip is using it; "
                                 f"wait for it to finish and try again")
        if "disk" in low and ("full" in low or "i/o" in low):
            return DatabaseError(f"cannot write {self.path} ({what}): {text}; free some space "
                                 f"or {DB_HINT}")
        return DatabaseError(f"{self.path}: {what} failed: {text}")

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error("read", exc) from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "SessionDatabase":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- sessions --------------------------------------------------------

    def has(self, device_id: str, session_id: int) -> bool:
        return bool(self._read("SELECT 1 FROM sessions WHERE device_id = ? AND session_id = ?",
                               (device_id, int(session_id))))

    def add(self, session: Session, raw: bytes, crc32: int) -> bool:
        """Store a session and its file bytes. Returns True if stored, False if
        it was already there with the same CRC (nothing changes). The same
        session with another CRC is refused (DatabaseError): a stored session is
        never replaced. A finished download's partial data is dropped."""
        raw = bytes(raw)
        crc32 = int(crc32) & 0xFFFFFFFF
        key = session.key
        if session.size > len(raw):
            raise DatabaseError(f"{key}: the decoded session claims {session.size} valid bytes "
                                f"but the file has only {len(raw)}; nothing was stored")
        figures = session_figures(session)
        figures["device"] = session.summary or {}
        summary_json = json.dumps(_clean_json(figures), default=_json_default, sort_keys=True)
        with self._write(f"store {key}"):
            row = self.conn.execute(
                "SELECT crc32, size FROM sessions WHERE device_id = ? AND session_id = ?",
                (session.device_id, int(session.session_id))).fetchone()
            if row is not None:
                if int(row[0]) == crc32:
                    return False
                raise DatabaseError(
                    f"{key} is already stored with CRC {int(row[0]):08x} ({row[1]} bytes) and the "
                    f"device now has a different file with CRC {crc32:08x} ({len(raw)} bytes); "
                    f"the stored session was kept (was the trainer reset? its session numbers "
                    f"may have started again)")
            self.conn.execute(
                "INSERT INTO sessions (device_id, session_id, start_epoch, signal, unit, rate_hz, "
                "program, duration_s, n_squeezes, complete, size, crc32, raw, synced_at, "
                "summary_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session.device_id, int(session.session_id),
                 None if session.start_epoch is None else int(session.start_epoch),
                 session.signal, session.unit, float(session.rate_hz), session.program or "",
                 float(session.duration_s), int(figures["squeezes"]), int(bool(session.complete)),
                 len(raw), crc32, raw, int(time.time()), summary_json))
            self.conn.execute("DELETE FROM partial WHERE device_id = ? AND session_id = ?",
                              (session.device_id, int(session.session_id)))
        return True

    def list(self, device: str | None = None) -> list[SessionRow]:
        """Stored sessions, oldest first: by start time (the sync time stands in
        for a session whose device clock was not set), then device and number."""
        sql = f"SELECT {', '.join(_ROW_COLUMNS)} FROM sessions"
        params: tuple = ()
        if device is not None:
            sql += " WHERE device_id = ?"
            params = (device,)
        sql += " ORDER BY COALESCE(start_epoch, synced_at), device_id, session_id"
        return [self._row(r) for r in self._read(sql, params)]

    @staticmethod
    def _row(r: tuple) -> SessionRow:
        d = dict(zip(_ROW_COLUMNS, r))
        try:
            summary = json.loads(d.pop("summary_json") or "{}")
        except ValueError:
            summary = {}
        d["complete"] = bool(d["complete"])
        return SessionRow(**d, summary=summary)

    def get(self, device_id: str, session_id: int) -> SessionRow | None:
        rows = self._read(f"SELECT {', '.join(_ROW_COLUMNS)} FROM sessions "
                          "WHERE device_id = ? AND session_id = ?", (device_id, int(session_id)))
        return self._row(rows[0]) if rows else None

    def devices(self) -> list[str]:
        return [r[0] for r in self._read("SELECT DISTINCT device_id FROM sessions ORDER BY device_id")]

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM sessions")[0][0])

    def raw(self, device_id: str, session_id: int) -> bytes:
        """The session file exactly as it came from the device."""
        rows = self._read("SELECT raw FROM sessions WHERE device_id = ? AND session_id = ?",
                          (device_id, int(session_id)))
        if not rows:
            raise DatabaseError(f"no session {device_id}/{session_id} in {self.path}; "
                                f"{self._listing_hint()}")
        return bytes(rows[0][0])

    # ---- references --------------------------------------------------------

    def _listing_hint(self) -> str:
        n = self.count()
        if n == 0:
            return "no sessions are stored yet: run 'knip sync' first"
        return f"'knip sessions' lists the {n} stored session{'s' if n != 1 else ''}"

    def resolve(self, ref: str) -> tuple[str, int]:
        """A user's reference to a stored session as (device_id, session_id).

        DEVICE/N   that device's session N
        N          session N of whichever device has one (error if several do)
        last, latest, -1   the newest; -2 the one before, and so on
        """
        text = str(ref).strip()
        low = text.lower()
        if not text:
            raise DatabaseError(f"no session given; {self._listing_hint()}")
        rows = self.list()
        if not rows:
            raise DatabaseError(f"no sessions are stored yet in {self.path}: connect your trainer "
                                f"and run 'knip sync' (or try 'knip sync --port sim')")
        if low in ("last", "latest", "newest"):
            row = rows[-1]
            return row.device_id, row.session_id
        if re.fullmatch(r"-\d+", text):
            back = int(text[1:])
            if back == 0:
                raise DatabaseError(f"{text!r}: count back from -1 (the newest session)")
            if back > len(rows):
                raise DatabaseError(f"{text!r}: only {len(rows)} session"
                                    f"{'s are' if len(rows) != 1 else ' is'} stored; "
                                    f"'knip sessions' lists them")
            row = rows[-back]
            return row.device_id, row.session_id
        if re.fullmatch(r"\d+", text):
            n = int(text)
            hits = [r for r in rows if r.session_id == n]
            if len(hits) == 1:
                return hits[0].device_id, n
            if hits:
                devs = ", ".join(r.device_id for r in hits)
                raise DatabaseError(f"session {n} exists on {len(hits)} devices ({devs}); say which, "
                                    f"e.g. {hits[-1].device_id}/{n}")
            raise DatabaseError(f"no session {n}; {self._listing_hint()}")
        if "/" in text:
            device, _, num = text.rpartition("/")
            if not re.fullmatch(r"\d+", num.strip()) or not device.strip():
                raise DatabaseError(f"{text!r} is not a session: write DEVICE/NUMBER, e.g. "
                                    f"{rows[-1].key}")
            device, n = device.strip(), int(num)
            mine = [r.session_id for r in rows if r.device_id == device]
            if n in mine:
                return device, n
            if not mine:
                devs = sorted({r.device_id for r in rows})
                raise DatabaseError(f"no device {device!r} in {self.path}; stored devices: "
                                    f"{', '.join(devs)}")
            raise DatabaseError(f"no session {device}/{n}; {device} has session"
                                f"{'s' if len(mine) != 1 else ''} {_ranges(sorted(mine))} "
                                f"('knip sessions' lists them)")
        raise DatabaseError(f"{text!r} is not a session: use DEVICE/N, N, 'last' or -1, -2, ... "
                            f"({self._listing_hint()})")

    def load(self, ref: str, decode: Callable[[bytes, str], Session]) -> Session:
        """Resolve `ref` and decode the stored bytes with `decode(raw, device_id)`."""
        device_id, session_id = self.resolve(ref)
        raw = self.raw(device_id, session_id)
        try:
            session = decode(raw, device_id)
        except DatabaseError:
            raise
        except Exception as exc:    # a decoder bug or an old format: say which session
            raise DatabaseError(f"{device_id}/{session_id}: the stored session file "
                                f"({len(raw)} bytes) cannot be decoded: {exc}; it is kept "
                                f"unchanged in {self.path}") from exc
        if session.session_id != session_id or session.device_id != device_id:
            raise DatabaseError(f"{device_id}/{session_id}: the stored file decodes as "
                                f"{session.key}; the database row is inconsistent")
        return session

    # ---- partial downloads -------------------------------------------------

    def partial_get(self, device_id: str, session_id: int) -> tuple[bytes, int, int] | None:
        """(data so far, expected size, expected CRC) of an unfinished download."""
        rows = self._read("SELECT data, expected_size, expected_crc FROM partial "
                          "WHERE device_id = ? AND session_id = ?", (device_id, int(session_id)))
        if not rows:
            return None
        data, size, crc = rows[0]
        return bytes(data), int(size), int(crc)

    def partial_put(self, device_id: str, session_id: int, data: bytes, expected_size: int,
                    expected_crc: int) -> None:
        """Keep the first len(data) bytes of a download. `data` replaces what was
        kept; a different expected size or CRC means another file: start over."""
        data = bytes(data)
        expected_size = int(expected_size)
        expected_crc = int(expected_crc) & 0xFFFFFFFF
        if len(data) > expected_size:
            raise DatabaseError(f"{device_id}/{session_id}: {len(data)} bytes received but the "
                                f"file has only {expected_size}; the download is corrupt")
        with self._write(f"keep the partial download of {device_id}/{session_id}"):
            # INSERT OR REPLACE: a different expected size/CRC leaves nothing of the old file
            self.conn.execute(
                "INSERT OR REPLACE INTO partial (device_id, session_id, expected_size, "
                "expected_crc, data, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (device_id, int(session_id), expected_size, expected_crc, data, int(time.time())))

    def partial_drop(self, device_id: str, session_id: int) -> None:
        with self._write(f"drop the partial download of {device_id}/{session_id}"):
            self.conn.execute("DELETE FROM partial WHERE device_id = ? AND session_id = ?",
                              (device_id, int(session_id)))


def _ranges(ns: list[int]) -> str:
    """[1, 2, 3, 5, 8, 9] -> '1-3, 5, 8-9' (at most 8 pieces, then '...')."""
    parts: list[str] = []
    i = 0
    while i < len(ns):
        j = i
        while j + 1 < len(ns) and ns[j + 1] == ns[j] + 1:
            j += 1
        parts.append(str(ns[i]) if i == j else f"{ns[i]}-{ns[j]}")
        i = j + 1
    if len(parts) > 8:
        parts = parts[:4] + ["..."] + parts[-3:]
    return ", ".join(parts)
