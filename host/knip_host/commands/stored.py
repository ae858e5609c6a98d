"""The stored sessions as the commands reach them: the session database
--db names, the decoder of stored session files, and the words for a
session's time, length, program and status."""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..checks import date_unknown, epoch_ok
from ..database import DatabaseError, SessionDatabase, SessionRow, default_path
from ..session import Session
from .output import default_name, output_file

# The decoder of stored session files: (raw, device_id) -> Session.
# None means knip_host.sessionfile.decode (imported when first needed).
DECODER: Callable[[bytes, str], Session] | None = None

NO_SESSIONS = ("no sessions yet: connect your trainer and run 'knip sync' "
               "(or try 'knip sync --port sim')")
CLOCK_NOT_SET = "clock not set"
DATE_UNKNOWN = "date unknown"
POWER_CUT = "recovered after power cut"
DAMAGED = "DAMAGED on the trainer (knip show)"


def decoder() -> Callable[[bytes, str], Session]:
    if DECODER is not None:
        return DECODER
    from ..sessionfile import decode
    return decode


def db_path(args: argparse.Namespace) -> Path:
    """The database file --db names (default: the user's), not opened."""
    return Path(args.db).expanduser() if getattr(args, "db", None) else default_path()


def open_db(args: argparse.Namespace) -> SessionDatabase:
    """The database of --db (default: the user's); these commands only read,
    so a missing file is an error rather than a new empty database."""
    return SessionDatabase.open(getattr(args, "db", None), create=False)


def device_rows(db: SessionDatabase, device: str | None) -> list[SessionRow]:
    """The stored sessions (of one device); an unknown device is an error. A
    row with a value that made no sense is warned about on stderr (it is
    shown with that value unknown, never a crash)."""
    rows = db.list(device=device)
    if device is not None and not rows and db.count():
        raise DatabaseError(f"no sessions from device {device!r} in {db.path}; "
                            f"stored devices: {', '.join(db.devices())}")
    warn_problems((r.key, r.problems) for r in rows)
    return rows


def warn_problems(items: Iterable[tuple[str, list[str]]]) -> None:
    """'warning: KEY: problem' on stderr for each (key, problems)."""
    for key, problems in items:
        for problem in problems:
            print(f"warning: {key}: {problem}", file=sys.stderr)


def print_no_sessions(where: str) -> None:
    """There is nothing to show yet; `where` says which database was looked at."""
    print(NO_SESSIONS)
    print(f"({where})")


def session_and_output(args: argparse.Namespace, suffix: str) -> tuple[Session, Path]:
    """The stored session args.session names, and the file -o names (checked;
    default knip-DEVICE-N plus `suffix`)."""
    with open_db(args) as db:
        key = db.resolve(args.session)
        out = output_file(args.output or default_name(key, suffix))
        session = db.load(f"{key[0]}/{key[1]}", decoder())
    return session, out


def local_time(epoch: int | float | None, problems: Sequence[str] = ()) -> str:
    """'2025-04-30 10:00' in this computer's time zone, 'clock not set', or
    'date unknown' when the time the trainer gave was no date."""
    if epoch is None or not epoch_ok(epoch):
        return DATE_UNKNOWN if (epoch is not None or date_unknown(problems)) else CLOCK_NOT_SET
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def program_name(program: str | None) -> str:
    return program or "free training"


def status(complete: bool, damage: dict[str, Any] | None = None) -> str:
    return ("complete" if complete else POWER_CUT) + (f", {DAMAGED}" if damage else "")
