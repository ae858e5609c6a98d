"""`knip plot`: one stored session drawn to a PNG file (knip_host.plot draws)."""
from __future__ import annotations

import argparse

from .output import cannot_write, png_name
from .spec import DB_ARG, SESSION_ARG, Command, arg
from .stored import local_time, program_name, session_and_output


def cmd_plot(args: argparse.Namespace) -> int:
    """examples:
  knip plot last
  knip plot sim-0001/3 -o tuesday.png

Draws the signal with every squeeze shaded by its verdict (green: relaxed
fully, red: not relaxed), onset, offset and peak marked, the coached squeeze
phases along the bottom, lost samples hatched, and the abdominal channel
underneath when there is one. Without -o the file is knip-DEVICE-N.png in
the current folder; the path written is printed."""
    from ..plot import plot_session

    if args.output:
        png_name(args.output, "-o")
    session, out = session_and_output(args, ".png")
    title = (f"{session.key}: {local_time(session.start_epoch)}, "
             f"{program_name(session.program)}, {session.signal} ({session.unit}), "
             f"{float(session.rate_hz):g} Hz")
    try:
        plot_session(session, out, title=title)
    except OSError as exc:
        raise cannot_write(f"-o {out}", exc) from None
    print(f"plot written to {out}")
    return 0


COMMANDS = {
    "plot": Command(cmd_plot, "draw a stored session to a PNG file", [
        SESSION_ARG, DB_ARG,
        arg("-o", "--output", metavar="PNG", help="file to write (default: knip-DEVICE-N.png)"),
    ]),
}
