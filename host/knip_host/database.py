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
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import checks as C
from .dbschema import APPLICATION_ID, SCHEMA_VERSION, TABLES, create, migrate
from .holders import file_holders
from .references import resolve
from .session import Session

FILE_NAME = "knip.sqlite3"
DB_HINT = "pass --db PATH to use another file"
LOCK_WAIT_S = 1.0                   # a write of ours takes milliseconds: longer is someone holding it

_ROW_COLUMNS = ("device_id", "session_id", "start_epoch", "signal", "unit", "rate_hz", "program",
                "duration_s", "n_squeezes", "complete", "size", "crc32", "synced_at", "summary_json",
                "store_id")
# the database's name for a device's store: the device id for its first store, DEVICE~N after
_LABEL_SQL = ("CASE WHEN COALESCE(st.number, 1) = 1 THEN s.device_id "
              "ELSE s.device_id || '~' || st.number END")
_FROM = "FROM sessions s LEFT JOIN stores st ON st.device_id = s.device_id AND st.store_id = s.store_id"


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
    store_id: str = ""              # the device's session store ('' unknown)
    label: str = ""                 # the device as shown: its id, or DEVICE~2 for its second store
    problems: list[str] = field(default_factory=list)   # values that made no sense, for a warning

    @property
    def key(self) -> str:
        return f"{self.label or self.device_id}/{self.session_id}"

    @property
    def damage(self) -> dict[str, Any]:
        """What the session file lost on the device (salvage.Damage.to_json()); {} if intact."""
        d = self.summary.get("damage")
        return d if isinstance(d, dict) else {}

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "device_id": self.device_id, "store_id": self.store_id,
                "session_id": self.session_id, "damage": self.damage, "problems": self.problems,
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
            conn = sqlite3.connect(str(p), timeout=LOCK_WAIT_S, isolation_level=None)
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
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                raise DatabaseError(self._locked()) from None
            raise DatabaseError(f"cannot read {p} ({exc}); it was left as it is; {DB_HINT}") from None
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{p} is not a Knip database ({exc}); it was left as it is; "
                                f"{DB_HINT}") from None
        if app_id == 0 and not tables:
            with self._write("create"):
                create(self.conn)
            return
        if app_id != APPLICATION_ID:
            what = (f"tables {', '.join(sorted(tables)[:5])}" if tables else "no tables")
            raise DatabaseError(f"{p} is an SQLite database of another program ({what}), not a "
                                f"Knip database; it was left as it is; {DB_HINT}")
        if version > SCHEMA_VERSION:
            raise DatabaseError(f"{p} was written by a newer knip (schema {version}, this one "
                                f"reads up to {SCHEMA_VERSION}); upgrade knip "
                                f"(pip install -U knip) or {DB_HINT}")
        need = TABLES if version >= SCHEMA_VERSION else {"sessions", "partial"}
        if version < 1 or not need <= set(tables):
            raise DatabaseError(f"{p} is a damaged Knip database (schema {version}, tables "
                                f"{', '.join(sorted(tables)) or 'none'}); it was left as it is; "
                                f"{DB_HINT}")
        if version < SCHEMA_VERSION:
            with self._write(f"upgrade from schema {version} to {SCHEMA_VERSION}"):
                migrate(self.conn, version)

    def _locked(self) -> str:
        p = self.path
        who = file_holders(p, f"{p}-journal", f"{p}-wal")
        held = (f"held by {', '.join(who)}" if who else
                "held by another program (another knip, or an SQLite tool with the file open)")
        return (f"{p} is locked, {held}: wait for that sync or report to finish, or close the "
                f"program (DB Browser for SQLite, sqlite3), then run the command again; {DB_HINT}")

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
        if _busy(exc):
            return DatabaseError(f"cannot {what}: {self._locked()}")
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

    @staticmethod
    def _where(label: str, session_id: int, t: str = "") -> tuple[str, tuple]:
        """SQL condition and parameters for session N of a label (DEVICE or DEVICE~K);
        `t`: the sessions table's alias with its dot."""
        device, _, number = label.partition("~")
        k = int(number) if number.isdigit() else 1
        cond = (f"{t}device_id = ? AND {t}session_id = ? AND {t}store_id = COALESCE((SELECT store_id "
                "FROM stores WHERE stores.device_id = ? AND stores.number = ?), '')")
        return cond, (device, int(session_id), device, k)

    def has(self, device_id: str, session_id: int) -> bool:
        """Session N of DEVICE (or DEVICE~K) is stored."""
        cond, params = self._where(device_id, session_id)
        return bool(self._read(f"SELECT 1 FROM sessions WHERE {cond}", params))

    def numbers(self, device_id: str) -> set[int]:
        """The session numbers stored for a device, in any of its stores."""
        return {int(r[0]) for r in self._read("SELECT session_id FROM sessions WHERE device_id = ?",
                                              (device_id,))}

    def holds(self, device_id: str, session_id: int, size: int, crc32: int) -> str | None:
        """The key of a stored copy of exactly this file (same device, number, size
        and CRC, whatever its store), or None: what sync asks before fetching."""
        rows = self._read(f"SELECT {_LABEL_SQL}, s.session_id {_FROM} WHERE s.device_id = ? AND "
                          "s.session_id = ? AND s.size = ? AND s.crc32 = ?",
                          (device_id, int(session_id), int(size), int(crc32) & 0xFFFFFFFF))
        return f"{rows[0][0]}/{rows[0][1]}" if rows else None

    def add(self, session: Session, raw: bytes, crc32: int) -> bool:
        """Store a session and its file bytes. Returns True if stored, False if
        this very file (same device, number, size and CRC) is already there
        (nothing changes). A stored session is never replaced: another file
        under the same (device, store, number), which only a trainer without
        store ids can make (its numbers restarted after a reset), is kept
        beside it under a store of its own. A finished download's partial data
        is dropped."""
        raw = bytes(raw)
        crc32 = int(crc32) & 0xFFFFFFFF
        key = session.key
        if session.size > len(raw):
            raise DatabaseError(f"{key}: the decoded session claims {session.size} valid bytes "
                                f"but the file has only {len(raw)}; nothing was stored")
        start = session.start_epoch if C.epoch_ok(session.start_epoch) else None
        figures = session_figures(session)
        figures["device"] = session.summary or {}
        if session.damage:
            figures["damage"] = session.damage
        problems = list(session.problems) + ([] if start == session.start_epoch else
                                             [C.bad_time("the start time (Unix s)", session.start_epoch)])
        if problems:
            figures["problems"] = problems
        summary_json = json.dumps(_clean_json(figures), default=_json_default, sort_keys=True)
        device, sid = session.device_id, int(session.session_id)
        with self._write(f"store {key}"):
            if self.conn.execute("SELECT 1 FROM sessions WHERE device_id = ? AND session_id = ? AND "
                                 "size = ? AND crc32 = ?", (device, sid, len(raw), crc32)).fetchone():
                return False
            store = session.store_id
            if self.conn.execute("SELECT 1 FROM sessions WHERE device_id = ? AND store_id = ? AND "
                                 "session_id = ?", (device, store, sid)).fetchone():
                store = f"{store}~{crc32:08x}"      # the same number, another file: keep both
            self.conn.execute(
                "INSERT OR IGNORE INTO stores (device_id, store_id, number, first_seen) VALUES "
                "(?, ?, (SELECT COALESCE(MAX(number), 0) + 1 FROM stores WHERE device_id = ?), ?)",
                (device, store, device, int(time.time())))
            self.conn.execute(
                "INSERT INTO sessions (device_id, store_id, session_id, start_epoch, signal, unit, "
                "rate_hz, program, duration_s, n_squeezes, complete, size, crc32, raw, synced_at, "
                "summary_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (device, store, sid, start, session.signal, session.unit, float(session.rate_hz),
                 session.program or "", float(session.duration_s), int(figures["squeezes"]),
                 int(bool(session.complete)), len(raw), crc32, raw, int(time.time()), summary_json))
            self.conn.execute("DELETE FROM partial WHERE device_id = ? AND store_id = ? AND session_id = ?",
                              (device, session.store_id, sid))
        return True

    def list(self, device: str | None = None) -> list[SessionRow]:
        """Stored sessions, oldest first: by start time (the sync time stands in
        for a session whose device clock was not set), then device and number."""
        sql = f"SELECT {', '.join('s.' + c for c in _ROW_COLUMNS)}, {_LABEL_SQL} {_FROM}"
        params: tuple = ()
        if device is not None:
            sql += " WHERE s.device_id = ?"
            params = (device,)
        sql += " ORDER BY COALESCE(s.start_epoch, s.synced_at), s.device_id, s.session_id, st.number"
        return [self._row(r) for r in self._read(sql, params)]

    @staticmethod
    def _row(r: tuple) -> SessionRow:
        """A row as read, every value checked: one that makes no sense is
        replaced and named in .problems (shown as a warning, never fatal)."""
        d = dict(zip(_ROW_COLUMNS + ("label",), r))
        try:
            summary = json.loads(d.pop("summary_json") or "{}")
        except ValueError:
            summary = {}
        summary = summary if isinstance(summary, dict) else {}
        problems = [str(p) for p in summary.get("problems") or [] if isinstance(summary.get("problems"), list)]
        if d["start_epoch"] is not None and not C.epoch_ok(d["start_epoch"]):
            problems.append(C.bad_time("the stored start time (Unix s)", d["start_epoch"]))
            d["start_epoch"] = None
        for name, hi in (("duration_s", 1e7), ("rate_hz", C.RATE_MAX_HZ)):
            if C.number(d[name], 0, hi) is None:
                problems.append(f"the stored {name} {d[name]!r} makes no sense")
                d[name] = 0.0
        d["complete"] = bool(d["complete"])
        return SessionRow(**d, summary=summary, problems=problems)

    def get(self, device_id: str, session_id: int) -> SessionRow | None:
        cond, params = self._where(device_id, session_id, "s.")
        rows = self._read(f"SELECT {', '.join('s.' + c for c in _ROW_COLUMNS)}, {_LABEL_SQL} {_FROM} "
                          f"WHERE {cond}", params)
        return self._row(rows[0]) if rows else None

    def devices(self) -> list[str]:
        return [r[0] for r in self._read("SELECT DISTINCT device_id FROM sessions ORDER BY device_id")]

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM sessions")[0][0])

    def raw(self, device_id: str, session_id: int) -> bytes:
        """The session file exactly as it came from the device (device_id may be DEVICE~K)."""
        cond, params = self._where(device_id, session_id)
        rows = self._read(f"SELECT raw FROM sessions WHERE {cond}", params)
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
        """A user's reference to a stored session as (label, session_id): the
        label is the device id, or DEVICE~K for its K-th session store
        (knip_host.references has the forms)."""
        rows = self.list() if str(ref).strip() else []
        hint = self._listing_hint() if rows or not str(ref).strip() else ""
        return resolve(rows, ref, str(self.path), hint, DatabaseError)

    def load(self, ref: str, decode: Callable[[bytes, str], Session]) -> Session:
        """Resolve `ref` and decode the stored bytes with `decode(raw, device_id)`."""
        label, session_id = self.resolve(ref)
        device_id = label.partition("~")[0]
        raw = self.raw(label, session_id)
        try:
            session = decode(raw, device_id)
        except DatabaseError:
            raise
        except Exception as exc:    # a decoder bug or an old format: say which session
            raise DatabaseError(f"{label}/{session_id}: the stored session file "
                                f"({len(raw)} bytes) cannot be decoded: {exc}; it is kept "
                                f"unchanged in {self.path}") from exc
        if session.session_id != session_id or session.device_id != device_id:
            raise DatabaseError(f"{label}/{session_id}: the stored file decodes as "
                                f"{session.key}; the database row is inconsistent")
        row = self.get(label, session_id)
        if row is not None:
            session.store_id, session.label = row.store_id, row.label
        return session

    # ---- partial downloads -------------------------------------------------

    def partial_get(self, device_id: str, session_id: int,
                    store_id: str = "") -> tuple[bytes, int, int] | None:
        """(data so far, expected size, expected CRC) of an unfinished download."""
        rows = self._read("SELECT data, expected_size, expected_crc FROM partial WHERE device_id = ? "
                          "AND store_id = ? AND session_id = ?", (device_id, store_id, int(session_id)))
        if not rows:
            return None
        data, size, crc = rows[0]
        return bytes(data), int(size), int(crc)

    def partial_put(self, device_id: str, session_id: int, data: bytes, expected_size: int,
                    expected_crc: int, store_id: str = "") -> None:
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
                "INSERT OR REPLACE INTO partial (device_id, store_id, session_id, expected_size, "
                "expected_crc, data, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (device_id, store_id, int(session_id), expected_size, expected_crc, data, int(time.time())))

    def partial_drop(self, device_id: str, session_id: int, store_id: str = "") -> None:
        with self._write(f"drop the partial download of {device_id}/{session_id}"):
            self.conn.execute("DELETE FROM partial WHERE device_id = ? AND store_id = ? AND session_id = ?",
                              (device_id, store_id, int(session_id)))


def _busy(exc: sqlite3.Error) -> bool:
    low = str(exc).lower()
    return "locked" in low or "busy" in low
