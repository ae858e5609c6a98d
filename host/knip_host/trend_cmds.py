"""`knip progress` and `knip report --html`: her progress over weeks, from
the sessions in the session database (see knip_host.trends and
knip_host.html_report).

Each command is one `cmd_*` function (its docstring is the epilog of its
--help) plus one entry in `COMMANDS`, in the same format as `cli.COMMANDS`,
which merges them. Database problems are DatabaseError (exit 1, the message
says what to do); a bad output path is cli.UsageError (exit 2).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from .database import DatabaseError, SessionDatabase
from .history import NO_SESSIONS, _file_part, _plain, _usage_error, arg, db_path, device_rows

PROGRESS_PNG = "knip-progress.png"


def _writable_folder(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise _usage_error(f"{what}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise _usage_error(f"{what}: cannot write in {folder}; choose another place")


def progress_png_path(output: str | None, device: str | None) -> Path:
    """Where `knip progress` draws: -o DIR (default: the current folder) /
    knip-progress[-DEVICE].png, or -o FILE.png itself."""
    name = PROGRESS_PNG if device is None else f"knip-progress-{_file_part(device)}.png"
    if output is None:
        target = Path(name)
    else:
        p = Path(output).expanduser()
        target = p if (p.suffix.lower() == ".png" and not p.is_dir()) else p / name
        if target is not p and not p.is_dir():
            what = "is a file, not a folder" if p.exists() else "is not a folder yet"
            raise _usage_error(f"-o {output} {what}: give a folder (create it first) or a "
                               f"file name ending in .png")
    _writable_folder(target.resolve().parent, f"-o {output or '.'}")
    if target.is_dir():
        raise _usage_error(f"-o {output}: {target} is a folder")
    return target


# ------------------------------------------------------------------ progress

def cmd_progress(args: argparse.Namespace) -> int:
    """examples:
  knip progress
  knip progress -o ~/knip --device sim-0001
  knip progress --json > progress.json

Prints one row per week (Monday to Sunday, from her first dated session to
the last; a week without training shows 0 sessions): how many sessions, her
best MVC and strongest squeeze of the week (rise above rest, in the sensor's
unit), best endurance (longest time above half her MVC), best count of fast
contractions, the share of squeezes she relaxed fully after, mean resting
tone and mean pain before/after. Then the current streak (consecutive days
and weeks with at least one session) and notes: pain that rose, sessions
without calibration, weeks without training, sessions whose trainer clock
was not set (listed, but not on the time axis).

Draws the trends (MVC, endurance, fast contractions, relaxation, resting
tone, sessions per week, pain) into knip-progress.png in the current folder
(knip-progress-DEVICE.png with --device); -o DIR writes it there, -o
FILE.png to that file. The path written is printed. A session that lacks a
figure adds nothing to that trend: nothing is filled in.

--json prints {"database", "device", "unit", "points": one per session,
"weeks", "streak", "plot", ...} instead of the table (the PNG is still
written). With no sessions yet it says so (or prints empty lists) and exits
0; a database that cannot be read exits 1; an output folder that does not
exist or cannot be written exits 2."""
    from . import trends as T
    from .html_report import other_notes, pain_notes

    path = db_path(args)
    empty = {"database": str(path), "device": args.device, "unit": None, "points": [],
             "weeks": [], "streak": None, "plot": None}
    if not path.exists():
        if args.json:
            print(json.dumps(empty, indent=2))
        else:
            print(NO_SESSIONS)
            print(f"(no database at {path} yet)")
        return 0
    with SessionDatabase.open(path, create=False) as db:
        rows = device_rows(db, args.device)
        db_file = str(db.path)
    if not rows:
        if args.json:
            print(json.dumps(dict(empty, database=db_file), indent=2))
        else:
            print(NO_SESSIONS)
            print(f"(database: {db_file})")
        return 0
    out = progress_png_path(args.output, args.device)
    tr = T.build(rows)
    who = args.device or ", ".join(sorted({r.device_id for r in rows}))
    try:
        written = T.plot_progress(tr, out, title=f"Knip progress: {who}")
    except OSError as exc:
        raise _usage_error(f"-o {out}: cannot write ({exc.strerror or exc})") from None
    if args.json:
        doc = {"database": db_file, "device": args.device, **tr.to_json(),
               "plot": None if written is None else str(written)}
        print(json.dumps(_plain(doc), indent=2))
        return 0
    lines: list[str] = []
    if tr.weeks:
        lines += T.week_table(tr)
        st = tr.streak
        lines += ["", f"streak: {st.days} day{T._s(st.days)} and {st.weeks} "
                      f"week{T._s(st.weeks)} in a row with a session (longest "
                      f"{st.longest_days} day{T._s(st.longest_days)}, {st.longest_weeks} "
                      f"week{T._s(st.longest_weeks)}; last session {st.last_day})"]
    else:
        lines.append("no session has a date yet (the trainer's clock was not set): nothing "
                     "to put on a time axis")
    notes = pain_notes(tr) + other_notes(tr)
    if notes:
        lines.append("")
        lines += [f"note: {n}" for n in notes]
    lines.append("")
    n = len(tr.points)
    lines.append(f"{n} session{T._s(n)} from {who} in {db_file}")
    if written is not None:
        lines.append(f"trends written to {written}")
    else:
        lines.append("no plot written: no dated session has anything to draw")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# ------------------------------------------------------------------ report

def cmd_report(args: argparse.Namespace) -> int:
    """examples:
  knip report --html report.html
  knip report --html ~/Desktop/knip.html --device sim-0001 --name "Kari N."

Writes ONE self-contained HTML file for her physiotherapist (inline style,
plots embedded, no JavaScript, nothing loaded from the network): who (with
--name; the database holds no names) and which trainer, the period, notes
(pain that rose, with the advice to train within the pain limit; sessions
without calibration; weeks without training; lost samples), the trend
plots, a week-by-week table, one row per session (date, program, duration,
MVC, power and Modified Oxford band, endurance, repetitions, fast
contractions, relaxed fully, rested long enough, technique, resting tone,
pain before/after) and, per session, a collapsible table with the verdict
on every cued squeeze and rest.

The file is written whole or not at all. With no sessions there is nothing
to report: the command exits 1 and writes nothing (run 'knip sync' first);
an output path that cannot be written exits 2."""
    from .html_report import write

    out = Path(args.html).expanduser()
    if out.is_dir():
        raise _usage_error(f"--html {args.html} is a folder; give a file name, e.g. "
                           f"{out / 'knip-report.html'}")
    _writable_folder(out.resolve().parent, f"--html {args.html}")
    if out.exists() and not os.access(out, os.W_OK):
        raise _usage_error(f"--html {args.html}: the file exists and cannot be overwritten; "
                           f"choose another name")
    with SessionDatabase.open(getattr(args, "db", None), create=False) as db:
        rows = device_rows(db, args.device)
        db_file = str(db.path)
    if not rows:
        raise DatabaseError(f"{NO_SESSIONS}; the database {db_file} has none, so no report "
                            f"was written")
    try:
        write(out, rows, name=args.name, database=db_file)
    except OSError as exc:
        raise _usage_error(f"--html {args.html}: cannot write ({exc.strerror or exc})") from None
    dated = sorted(r.start_epoch for r in rows if r.start_epoch is not None)
    day = lambda epoch: dt.date.fromtimestamp(epoch).isoformat()      # noqa: E731
    span = f", {day(dated[0])} to {day(dated[-1])}" if dated else ""
    print(f"report written to {out} ({len(rows)} session{'s' if len(rows) != 1 else ''}{span}); "
          f"open it in a browser")
    return 0


# ------------------------------------------------------------------ commands

_DB = arg("--db", metavar="PATH",
          help="the session database file (default: knip.sqlite3 in $KNIP_DATA, else in your "
               "data folder, e.g. ~/.local/share/knip)")
_DEVICE = arg("--device", metavar="ID", help="only the sessions of this trainer")

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, list]] = {
    "progress": (cmd_progress, "weekly progress and trend plots of the stored sessions", [
        _DB,
        arg("-o", "--output", metavar="DIR",
            help=f"folder for {PROGRESS_PNG} (default: the current folder), or a .png file name"),
        _DEVICE,
        arg("--json", action="store_true", help="print the points and weekly figures as JSON"),
    ]),
    "report": (cmd_report, "write an HTML report for her physiotherapist", [
        arg("--html", metavar="FILE", required=True, help="the HTML file to write"),
        _DB, _DEVICE,
        arg("--name", metavar="NAME", help="her name, printed at the top of the report"),
    ]),
}
