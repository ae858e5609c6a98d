"""`knip export`: one stored session as CSV tables or EDF+ (knip_host.export
writes them)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..usage import UsageError
from .output import cannot_write
from .spec import DB_ARG, SESSION_ARG, Command, arg
from .stored import session_and_output

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
    from ..export import export_csv, export_edf

    fmt = args.format
    named = {s: f for f, s in FORMAT_SUFFIX.items()}.get(Path(args.output).suffix.lower()) if args.output else None
    if fmt is not None and named is not None and named != fmt:
        raise UsageError(f"-o {args.output} names a .{named} file but --format {fmt} writes "
                         f"{fmt.upper()}: give the file a .{fmt} name, or --format {named}")
    fmt = fmt or named
    if fmt is None:
        raise UsageError("say which format: --format csv (spreadsheets) or --format edf "
                         "(biosignal viewers)")
    session, out = session_and_output(args, FORMAT_SUFFIX[fmt])
    try:
        written = export_csv(session, out) if fmt == "csv" else [export_edf(session, out)]
    except OSError as exc:
        raise cannot_write(f"-o {out}", exc) from None
    except ValueError as exc:
        raise UsageError(f"{session.key}: {exc}") from None
    for p in written:
        print(f"written {p}")
    return 0


COMMANDS = {
    "export": Command(cmd_export, "write a stored session as CSV or EDF+", [
        SESSION_ARG, DB_ARG,
        arg("--format", choices=("csv", "edf"),
            help="csv for spreadsheets, edf for biosignal viewers (default: from -o's suffix)"),
        arg("-o", "--output", metavar="FILE", help="file to write (default: knip-DEVICE-N.csv/.edf)"),
    ]),
}
