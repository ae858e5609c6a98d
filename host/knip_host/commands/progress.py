"""`knip progress`: her progress over weeks from the stored sessions, as a
weekly table with her streak and notes, and the trend plots in one PNG
(knip_host.trends computes the figures, knip_host.trend_plots draws them).
With no sessions yet it says so and exits 0; a database that cannot be read
exits 1 (DatabaseError); an output path that cannot be written exits 2."""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ..trend_plots import plot_progress
from ..trends import Trends, build, plural_s
from ..database import SessionDatabase
from ..usage import UsageError
from .output import cannot_write, file_part, print_json, writable_folder
from .spec import DB_ARG, DEVICE_ARG, Command, arg
from .stored import db_path, device_rows, print_no_sessions

PROGRESS_PNG = "knip-progress.png"


def progress_png_path(output: str | None, device: str | None) -> Path:
    """Where `knip progress` draws: -o DIR (default: the current folder) /
    knip-progress[-DEVICE].png, or -o FILE.png itself."""
    name = PROGRESS_PNG if device is None else f"knip-progress-{file_part(device)}.png"
    if output is None:
        target = Path(name)
    else:
        p = Path(output).expanduser()
        target = p if (p.suffix.lower() == ".png" and not p.is_dir()) else p / name
        if target is not p and not p.is_dir():
            what = "is a file, not a folder" if p.exists() else "is not a folder yet"
            raise UsageError(f"-o {output} {what}: give a folder (create it first) or a "
                             f"file name ending in .png")
    writable_folder(target.resolve().parent, f"-o {output or '.'}")
    if target.is_dir():
        raise UsageError(f"-o {output}: {target} is a folder")
    return target


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
    path = db_path(args)
    empty = {"database": str(path), "device": args.device, "unit": None, "points": [],
             "weeks": [], "streak": None, "plot": None}
    if not path.exists():
        if args.json:
            print_json(empty)
        else:
            print_no_sessions(f"no database at {path} yet")
        return 0
    with SessionDatabase.open(path, create=False) as db:
        rows = device_rows(db, args.device)
        db_file = str(db.path)
    if not rows:
        if args.json:
            print_json(dict(empty, database=db_file))
        else:
            print_no_sessions(f"database: {db_file}")
        return 0
    out = progress_png_path(args.output, args.device)
    tr = build(rows)
    who = args.device or ", ".join(sorted({r.device_id for r in rows}))
    try:
        written = plot_progress(tr, out, title=f"Knip progress: {who}")
    except OSError as exc:
        raise cannot_write(f"-o {out}", exc) from None
    if args.json:
        print_json({"database": db_file, "device": args.device, **tr.to_json(),
                    "plot": None if written is None else str(written)})
    else:
        sys.stdout.write("\n".join(progress_lines(tr, who, db_file, written)) + "\n")
    return 0


def progress_lines(tr: Trends, who: str, db_file: str, written: Path | None) -> list[str]:
    """The text of `knip progress`: the weekly table, the streak, notes, and
    what was read and written."""
    from ..html_report import other_notes, pain_notes

    lines: list[str] = []
    if tr.weeks:
        lines += week_table(tr)
        st = tr.streak
        lines += ["", f"streak: {st.days} day{plural_s(st.days)} and {st.weeks} "
                      f"week{plural_s(st.weeks)} in a row with a session (longest "
                      f"{st.longest_days} day{plural_s(st.longest_days)}, {st.longest_weeks} "
                      f"week{plural_s(st.longest_weeks)}; last session {st.last_day})"]
    else:
        lines.append("no session has a date yet (the trainer's clock was not set): nothing "
                     "to put on a time axis")
    notes = pain_notes(tr) + other_notes(tr)
    if notes:
        lines.append("")
        lines += [f"note: {n}" for n in notes]
    lines.append("")
    n = len(tr.points)
    lines.append(f"{n} session{plural_s(n)} from {who} in {db_file}")
    if written is not None:
        lines.append(f"trends written to {written}")
    else:
        lines.append("no plot written: no dated session has anything to draw")
    return lines


WEEK_COLUMNS = ("week", "from", "sessions", "MVC", "strongest", "endurance", "fast",
                "relaxed", "rest tone", "pain b/a")


def _fmt(v: float | None, nd: int = 1, suffix: str = "") -> str:
    if v is None:
        return "-"
    return f"{v:.{nd}f}{suffix}"


def week_table(tr: Trends) -> list[str]:
    """The weekly table of `knip progress` (best MVC, strongest squeeze,
    endurance and fast count of the week; relaxed fully pooled over the
    week; mean resting tone and pain)."""
    cells = []
    for w in tr.weeks:
        pain = ("-" if w.pain_before_mean is None and w.pain_after_mean is None
                else f"{_fmt(w.pain_before_mean)}/{_fmt(w.pain_after_mean)}")
        cells.append([w.week, dt.date.fromisoformat(w.monday).strftime("%d %b"), str(w.sessions),
                      _fmt(w.mvc_best), _fmt(w.power_best), _fmt(w.endurance_best_s, 1, " s"),
                      "-" if w.fast_best is None else str(w.fast_best),
                      _fmt(w.relaxed_pct, 0, " %"), _fmt(w.resting_tone_mean), pain])
    head = list(WEEK_COLUMNS)
    head[3] = f"MVC {tr.unit}".strip()
    widths = [max([len(h)] + [len(c[j]) for c in cells]) for j, h in enumerate(head)]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if j < 2 else c.rjust(w)
                         for j, (c, w) in enumerate(zip(row, widths))).rstrip()

    return [fmt(head)] + [fmt(c) for c in cells]


COMMANDS = {
    "progress": Command(cmd_progress, "weekly progress and trend plots of the stored sessions", [
        DB_ARG,
        arg("-o", "--output", metavar="DIR",
            help=f"folder for {PROGRESS_PNG} (default: the current folder), or a .png file name"),
        DEVICE_ARG,
        arg("--json", action="store_true", help="print the points and weekly figures as JSON"),
    ]),
}
