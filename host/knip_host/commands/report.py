"""`knip report --html FILE`: the report for her physiotherapist, one
self-contained HTML file (knip_host.html_report writes it). With no sessions
there is nothing to report: exit 1 (DatabaseError), nothing written; an
output path that cannot be written exits 2."""
from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from ..database import DatabaseError
from ..usage import UsageError
from .output import cannot_write, writable_folder
from .spec import DB_ARG, DEVICE_ARG, Command, arg, utf8_text
from .stored import NO_SESSIONS, device_rows, open_db


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
    from ..html_report import write

    out = Path(args.html).expanduser()
    if out.is_dir():
        raise UsageError(f"--html {args.html} is a folder; give a file name, e.g. "
                         f"{out / 'knip-report.html'}")
    writable_folder(out.resolve().parent, f"--html {args.html}")
    if out.exists() and not os.access(out, os.W_OK):
        raise UsageError(f"--html {args.html}: the file exists and cannot be overwritten; "
                         f"choose another name")
    with open_db(args) as db:
        rows = device_rows(db, args.device)
        db_file = str(db.path)
    if not rows:
        raise DatabaseError(f"{NO_SESSIONS}; the database {db_file} has none, so no report "
                            f"was written")
    try:
        write(out, rows, name=args.name, database=db_file)
    except OSError as exc:
        raise cannot_write(f"--html {args.html}", exc) from None
    dated = sorted(r.start_epoch for r in rows if r.start_epoch is not None)
    day = lambda epoch: dt.date.fromtimestamp(epoch).isoformat()      # noqa: E731
    span = f", {day(dated[0])} to {day(dated[-1])}" if dated else ""
    print(f"report written to {out} ({len(rows)} session{'s' if len(rows) != 1 else ''}{span}); "
          f"open it in a browser")
    return 0


COMMANDS = {
    "report": Command(cmd_report, "write an HTML report for her physiotherapist", [
        arg("--html", metavar="FILE", required=True, help="the HTML file to write"),
        DB_ARG, DEVICE_ARG,
        arg("--name", metavar="NAME", type=utf8_text, help="her name, printed at the top of the report"),
    ]),
}
