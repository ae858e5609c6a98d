"""`knip sessions`, `knip show`, `knip plot`, `knip export`: the synced
sessions kept in the session database (see knip_host.database).

Each command is one `cmd_*` function (its docstring is the epilog of its
--help) plus one entry in `COMMANDS`, in the same format as `cli.COMMANDS`,
which merges them. Problems are raised as DatabaseError or cli.UsageError:
`knip` prints them as one `knip: error: ...` line with exit code 2.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .database import DatabaseError, SessionDatabase, SessionRow, default_path, session_figures
from .session import Session

# The decoder of stored session files: (raw, device_id) -> Session.
# None means knip_host.sessionfile.decode (imported when first needed).
DECODER: Callable[[bytes, str], Session] | None = None

NO_SESSIONS = ("no sessions yet: connect your trainer and run 'knip sync' "
               "(or try 'knip sync --port sim')")
CLOCK_NOT_SET = "clock not set"
POWER_CUT = "recovered after power cut"


def arg(*names: str, **kw: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Same as knip_host.cli.arg (kept here: cli imports this module)."""
    return names, kw


def _usage_error(message: str) -> Exception:
    from .cli import UsageError
    return UsageError(message)


def _decoder() -> Callable[[bytes, str], Session]:
    if DECODER is not None:
        return DECODER
    from .sessionfile import decode
    return decode


def db_path(args: argparse.Namespace) -> Path:
    """The database file --db names (default: the user's), not opened."""
    return Path(args.db).expanduser() if getattr(args, "db", None) else default_path()


def device_rows(db: SessionDatabase, device: str | None) -> list[SessionRow]:
    """The stored sessions (of one device); an unknown device is an error."""
    rows = db.list(device=device)
    if device is not None and not rows and db.count():
        raise DatabaseError(f"no sessions from device {device!r} in {db.path}; "
                            f"stored devices: {', '.join(db.devices())}")
    return rows


def _open(args: argparse.Namespace) -> SessionDatabase:
    """The database of --db (default: the user's); these commands only read,
    so a missing file is an error rather than a new empty database."""
    return SessionDatabase.open(getattr(args, "db", None), create=False)


# ------------------------------------------------------------------ formatting

def local_time(epoch: int | float | None) -> str:
    """'2025-04-30 10:00' in this computer's time zone, or 'clock not set'."""
    if epoch is None:
        return CLOCK_NOT_SET
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def minutes(seconds: float | None) -> str:
    """m:ss (h:mm:ss from an hour on)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def program_name(program: str | None) -> str:
    return program or "free training"


def status(complete: bool) -> str:
    return "complete" if complete else POWER_CUT


def _value(v: Any, unit: str = "") -> str:
    from .report import _value as fmt
    return fmt(v) + (f" {unit}" if unit and v is not None else "")


def _plain(x: Any) -> Any:
    """JSON-safe copy: numpy values to Python, NaN and inf to null."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _file_part(text: str) -> str:
    """A device id made safe for a file name (a MAC's colons become dashes)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "device"


def default_name(session_key: tuple[str, int], suffix: str) -> str:
    device, n = session_key
    return f"knip-{_file_part(device)}-{n}{suffix}"


def _check_output(path: str | Path, opt: str = "-o") -> Path:
    p = Path(path)
    folder = p.resolve().parent
    if p.is_dir():
        raise _usage_error(f"{opt} {path} is a folder; give a file name, e.g. {p / 'session.png'}")
    if not folder.is_dir():
        raise _usage_error(f"{opt} {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise _usage_error(f"{opt} {path}: cannot write in {folder}; choose another place")
    return p


# ------------------------------------------------------------------ sessions

def cmd_sessions(args: argparse.Namespace) -> int:
    """examples:
  knip sessions
  knip sessions --device sim-0001
  knip sessions --json > sessions.json

One line per stored session, oldest first: its name (DEVICE/N, what 'knip
show', 'knip plot' and 'knip export' take; 'last' and -1, -2, ... work too),
when it started in local time, the program, how long it lasted, the
squeezes, how many of them she relaxed fully after, and whether it ended
normally or was recovered after a power cut."""
    path = db_path(args)
    if not path.exists():
        if args.json:
            print(json.dumps({"database": str(path), "sessions": []}, indent=2))
        else:
            print(NO_SESSIONS)
            print(f"(no database at {path} yet)")
        return 0
    with _open(args) as db:
        rows = device_rows(db, args.device)
        if args.json:
            doc = {"database": str(db.path),
                   "sessions": [dict(r.to_json(), start_local=local_time(r.start_epoch))
                                for r in rows]}
            print(json.dumps(_plain(doc), indent=2))
            return 0
        if not rows:
            print(NO_SESSIONS)
            print(f"(database: {db.path})")
            return 0
        sys.stdout.write("\n".join(sessions_table(rows)) + "\n")
        devices = len({r.device_id for r in rows})
        print(f"\n{len(rows)} session{'s' if len(rows) != 1 else ''} from {devices} "
              f"device{'s' if devices != 1 else ''} in {db.path}; "
              f"'knip show SESSION' for one of them")
    return 0


SESSION_COLUMNS = ("session", "date", "program", "duration", "squeezes", "relaxed fully", "status")
SESSION_RIGHT = {"duration", "squeezes", "relaxed fully"}


def sessions_table(rows: list[SessionRow]) -> list[str]:
    cells = []
    for r in rows:
        judged = r.summary.get("judged")
        relaxed = (f"{r.summary.get('relaxed_fully', 0)}/{judged}" if judged else "-")
        cells.append([r.key, local_time(r.start_epoch), program_name(r.program),
                      minutes(r.duration_s), str(r.n_squeezes), relaxed, status(r.complete)])
    widths = [max([len(h)] + [len(c[j]) for c in cells]) for j, h in enumerate(SESSION_COLUMNS)]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if SESSION_COLUMNS[j] in SESSION_RIGHT else c.ljust(w)
                         for j, (c, w) in enumerate(zip(row, widths))).rstrip()

    return [fmt(list(SESSION_COLUMNS))] + [fmt(c) for c in cells]


# ------------------------------------------------------------------ show

def cmd_show(args: argparse.Namespace) -> int:
    """examples:
  knip show last
  knip show sim-0001/3
  knip show -2 --json

SESSION is DEVICE/N (as 'knip sessions' lists them), N alone when only one
device has that number, 'last', or -1, -2, ... counting back from the newest.
Prints when and what she trained, the squeezes (strongest and mean peak,
mean hold), how often she relaxed fully and rested long enough, bearing down
(with two channels), lost samples, then one row per squeeze as in 'knip
analyze'. Peaks are levels in the signal's unit; 'above rest' is the rise."""
    with _open(args) as db:
        session = db.load(args.session, _decoder())
    if args.json:
        print(json.dumps(_plain(show_json(session)), indent=2))
    else:
        sys.stdout.write(render_session(session))
    return 0


def session_info(s: Session) -> dict[str, Any]:
    return {"key": s.key, "device_id": s.device_id, "session_id": s.session_id,
            "start_epoch": s.start_epoch, "start_local": local_time(s.start_epoch),
            "program": s.program, "firmware": s.firmware, "signal": s.signal, "unit": s.unit,
            "rate_hz": s.rate_hz, "channels": 2 if s.abd is not None else 1,
            "duration_s": round(s.duration_s, 3), "samples": int(len(s.values)),
            "complete": s.complete, "size": s.size}


def show_json(s: Session) -> dict[str, Any]:
    return {"session": session_info(s), "summary": session_figures(s),
            "device_summary": s.summary, "events": s.events, "cues": s.cues,
            "gaps": [{"index": int(i), "missing": int(n)} for i, n in s.gaps]}


def render_session(s: Session) -> str:
    """The text of `knip show`: summary block, then the per-event table."""
    from .report import table

    f = session_figures(s)
    u = s.unit
    rate = float(s.rate_hz)
    lines = [
        ("session", s.key),
        ("date", local_time(s.start_epoch) + ("" if s.start_epoch is None else " (local time)")),
        ("device", s.device_id + (f", firmware {s.firmware}" if s.firmware else "")),
        ("program", program_name(s.program)),
        ("duration", f"{minutes(s.duration_s)} ({status(s.complete)})"),
        ("signal", f"{s.signal} in {u or 'counts'}, {rate:g} Hz, "
                   + ("two channels (pelvic floor and abdominal)" if s.abd is not None
                      else "one channel")),
    ]
    if f["squeezes"]:
        sq = (f"{f['squeezes']}: strongest {_value(f['max_peak'], u)}, mean peak "
              f"{_value(f['mean_peak'], u)}")
        if f["mean_amplitude"] is not None:
            sq += f" ({_value(f['mean_amplitude'], u)} above rest)"
        if f["mean_hold_s"] is not None:
            sq += f", mean hold {f['mean_hold_s']:.1f} s"
        lines.append(("squeezes", sq))
    else:
        lines.append(("squeezes", "none found"))
    if f["judged"]:
        lines.append(("relaxed fully", f"{f['relaxed_fully']} of {f['judged']} "
                                       f"({100 * f['relaxed_fully'] / f['judged']:.0f} %)"))
    if f["rests_judged"] and not s.verdicts:      # in a program the coach judges rests (below)
        lines.append(("rests too short", f"{f['rests_too_short']} of {f['rests_judged']}"))
    if s.abd is not None:
        lines.append(("bearing down", str(f["bearing_down"])))
    if f["coughs"]:
        lines.append(("coughs", str(f["coughs"])))
    if f["gaps"]:
        lost = f" ({f['missing_s']:.2f} s)" if f["missing_s"] is not None else ""
        lines.append(("gaps", f"{f['gaps']}: {f['missing_samples']} samples lost{lost}"))
    else:
        lines.append(("gaps", "none"))
    from .coaching import PAIN_NOTE, pain_rose, score_lines, verdict_table

    if s.verdicts:
        done = s.summary.get("program_done", s.summary.get("reason") == "done")
        if s.summary and not done:
            lines.append(("program", f"stopped early ({s.summary.get('reason', 'unknown')})"))
        lines += score_lines(s.scores)
    pb, pa = s.pain.get("before"), s.pain.get("after")
    if pb is not None or pa is not None:
        lines.append(("pain (0-10)", f"before {'-' if pb is None else pb}, after {'-' if pa is None else pa}"))
    width = max(len(k) for k, _ in lines) + 2
    out = [f"{k:<{width}}{v}" for k, v in lines]
    if pain_rose(s.pain):
        out += ["", PAIN_NOTE]
    if s.verdicts:
        ascii_only = "utf" not in (getattr(sys.stdout, "encoding", None) or "").lower()
        out.append("")
        out += verdict_table(s.verdicts, ascii_only)
    out.append("")
    events = s.events
    if s.verdicts:
        # in a program the coach judges rests against the cues (above); the
        # detector's own onset-to-offset rule would contradict it here
        out.append("detector events:")
        events = [dict(e, rest_ok=None) for e in events]
    out += table(events, session_notes(s), unit=u)
    return "\n".join(out) + "\n"


def session_notes(s: Session) -> list[tuple[float, str]]:
    """Rows interleaved with the events in `knip show`: where each block of the
    program began, and gaps."""
    from .export import gap_spans, phase_notes

    notes = phase_notes(s.cues or [])
    for start, length, missing in gap_spans(s):
        notes.append((start, f"gap: {missing} samples lost ({length:.2f} s)"))
    return notes


# ------------------------------------------------------------------ plot

def cmd_plot(args: argparse.Namespace) -> int:
    """examples:
  knip plot last
  knip plot sim-0001/3 -o tuesday.png

Draws the signal with every squeeze shaded by its verdict (green: relaxed
fully, red: not relaxed), onset, offset and peak marked, the coached squeeze
phases along the bottom, lost samples hatched, and the abdominal channel
underneath when there is one. Without -o the file is knip-DEVICE-N.png in
the current folder; the path written is printed."""
    from .plot import plot_session

    with _open(args) as db:
        key = db.resolve(args.session)
        out = _check_output(args.output or default_name(key, ".png"))
        session = db.load(f"{key[0]}/{key[1]}", _decoder())
    title = (f"{session.key}: {local_time(session.start_epoch)}, "
             f"{program_name(session.program)}, {session.signal} ({session.unit}), "
             f"{float(session.rate_hz):g} Hz")
    try:
        plot_session(session, out, title=title)
    except OSError as exc:
        raise _usage_error(f"-o {out}: cannot write ({exc.strerror or exc})") from None
    print(f"plot written to {out}")
    return 0


# ------------------------------------------------------------------ export

FORMAT_SUFFIX = {"csv": ".csv", "edf": ".edf"}


def cmd_export(args: argparse.Namespace) -> int:
    """examples:
  knip export last --format csv
  knip export sim-0001/3 --format edf -o session3.edf
  knip export -2 -o week2.csv            (format from the file name)

csv: FILE has time_s and the signal in its unit (e.g. pressure_cmH2O, plus
abdominal_cmH2O with two channels), one row per sample; FILE_events.csv
beside it has one row per squeeze, cough or bearing down with its verdict,
and FILE_cues.csv the coaching cues when there were any. Plain tables: a
spreadsheet opens them directly.
edf: EDF+ with the channels in their units and annotations for every
squeeze (onset, peak, end, verdict), every cue and every gap; opens in
EDFbrowser and other biosignal viewers.
Without -o: knip-DEVICE-N.csv or .edf in the current folder."""
    from .export import export_csv, export_edf

    fmt = args.format
    if fmt is None and args.output:
        fmt = {".csv": "csv", ".edf": "edf"}.get(Path(args.output).suffix.lower())
    if fmt is None:
        raise _usage_error("say which format: --format csv (spreadsheets) or --format edf "
                           "(biosignal viewers)")
    with _open(args) as db:
        key = db.resolve(args.session)
        out = _check_output(args.output or default_name(key, FORMAT_SUFFIX[fmt]))
        session = db.load(f"{key[0]}/{key[1]}", _decoder())
    try:
        written = export_csv(session, out) if fmt == "csv" else [export_edf(session, out)]
    except OSError as exc:
        raise _usage_error(f"-o {out}: cannot write ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise _usage_error(f"{session.key}: {exc}") from None
    for p in written:
        print(f"written {p}")
    return 0


# ------------------------------------------------------------------ commands

_DB = arg("--db", metavar="PATH",
          help="the session database file (default: knip.sqlite3 in $KNIP_DATA, else in your "
               "data folder, e.g. ~/.local/share/knip)")
_SESSION = arg("session", metavar="SESSION",
               help="DEVICE/N as 'knip sessions' lists it, N, 'last', or -1, -2, ... (newest first)")

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, list]] = {
    "sessions": (cmd_sessions, "list the training sessions stored on this computer", [
        _DB,
        arg("--device", metavar="ID", help="only the sessions of this trainer"),
        arg("--json", action="store_true", help="print the list as JSON"),
    ]),
    "show": (cmd_show, "summary and squeeze table of one stored session", [
        _SESSION, _DB,
        arg("--json", action="store_true", help="print session, summary and events as JSON"),
    ]),
    "plot": (cmd_plot, "draw a stored session to a PNG file", [
        _SESSION, _DB,
        arg("-o", "--output", metavar="PNG", help="file to write (default: knip-DEVICE-N.png)"),
    ]),
    "export": (cmd_export, "write a stored session as CSV or EDF+", [
        _SESSION, _DB,
        arg("--format", choices=("csv", "edf"),
            help="csv for spreadsheets, edf for biosignal viewers (default: from -o's suffix)"),
        arg("-o", "--output", metavar="FILE", help="file to write (default: knip-DEVICE-N.csv/.edf)"),
    ]),
}
