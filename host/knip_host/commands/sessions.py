"""`knip sessions` and `knip show`: the list of the synced sessions kept in
the session database (see knip_host.database), and one of them in full."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..database import SessionRow, session_figures
from ..salvage import describe
from ..session import Session
from .output import print_json
from .spec import DB_ARG, DEVICE_ARG, SESSION_ARG, Command, arg
from ..durations import minutes
from .stored import (db_path, decoder, device_rows, local_time, open_db, print_no_sessions,
                     program_name, status)


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
normally or was recovered after a power cut. A device whose storage was
erased (a reflash) starts its numbers again: those sessions are DEVICE~2/N.
A session damaged on the trainer says DAMAGED ('knip show' says what was
lost); a value that makes no sense (a start time that is no date) is shown
as unknown, with a warning."""
    path = db_path(args)
    if not path.exists():
        if args.json:
            print_json({"database": str(path), "sessions": []})
        else:
            print_no_sessions(f"no database at {path} yet")
        return 0
    with open_db(args) as db:
        rows = device_rows(db, args.device)
        if args.json:
            doc = {"database": str(db.path),
                   "sessions": [dict(r.to_json(), start_local=local_time(r.start_epoch, r.problems))
                                for r in rows]}
            print_json(doc)
            return 0
        if not rows:
            print_no_sessions(f"database: {db.path}")
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
        cells.append([r.key, local_time(r.start_epoch, r.problems), program_name(r.program),
                      minutes(r.duration_s), str(r.n_squeezes), relaxed, status(r.complete, r.damage)])
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
    with open_db(args) as db:
        session = db.load(args.session, decoder())
    if args.json:
        print_json(show_json(session))
    else:
        sys.stdout.write(render_session(session))
    return 0


def session_info(s: Session) -> dict[str, Any]:
    return {"key": s.key, "device_id": s.device_id, "session_id": s.session_id,
            "start_epoch": s.start_epoch, "start_local": local_time(s.start_epoch, s.problems),
            "program": s.program, "firmware": s.firmware, "signal": s.signal, "unit": s.unit,
            "rate_hz": s.rate_hz, "channels": 2 if s.abd is not None else 1,
            "duration_s": round(s.duration_s, 3), "samples": int(len(s.values)),
            "complete": s.complete, "size": s.size, "store_id": s.store_id, "damage": s.damage,
            "problems": s.problems}


def show_json(s: Session) -> dict[str, Any]:
    return {"session": session_info(s), "summary": session_figures(s),
            "device_summary": s.summary, "events": s.events, "cues": s.cues,
            "gaps": [{"index": int(i), "missing": int(n)} for i, n in s.gaps]}


def render_session(s: Session) -> str:
    """The text of `knip show`: summary block, then the per-event table."""
    from ..report import table

    f = session_figures(s)
    u = s.unit
    rate = float(s.rate_hz)
    lines = [
        ("session", s.key),
        ("date", local_time(s.start_epoch, s.problems) + ("" if s.start_epoch is None else " (local time)")),
        ("device", s.device_id + (f", firmware {s.firmware}" if s.firmware else "")),
        ("program", program_name(s.program)),
        ("duration", f"{minutes(s.duration_s)} ({status(s.complete, s.damage)})"),
        ("signal", f"{s.signal} in {u or 'counts'}, {rate:g} Hz, "
                   + ("two channels (pelvic floor and abdominal)" if s.abd is not None
                      else "one channel")),
    ]
    if s.damage:
        lines.append(("damaged", describe(s.damage, rate) + ": the rest was salvaged; the file is "
                                 "kept byte for byte"))
    lines += [("warning", p) for p in s.problems]
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
    from ..coaching import PAIN_NOTE, pain_rose, score_lines, verdict_table

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
    from ..export import gap_spans, phase_notes

    notes = phase_notes(s.cues or [])
    for start, length, missing in gap_spans(s):
        notes.append((start, f"gap: {missing} samples lost ({length:.2f} s)"))
    return notes


def _value(v: Any, unit: str = "") -> str:
    from ..report import _value as fmt
    return fmt(v) + (f" {unit}" if unit and v is not None else "")


COMMANDS = {
    "sessions": Command(cmd_sessions, "list the training sessions stored on this computer", [
        DB_ARG, DEVICE_ARG,
        arg("--json", action="store_true", help="print the list as JSON"),
    ]),
    "show": Command(cmd_show, "summary and squeeze table of one stored session", [
        SESSION_ARG, DB_ARG,
        arg("--json", action="store_true", help="print session, summary and events as JSON"),
    ]),
}
