"""How a `knip` command is written down: `Command(run, help, args)`, each
argument as `arg(*names, **kw)` (what ArgumentParser.add_argument takes),
the argument types, and the arguments several commands share."""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable, NamedTuple

Arg = tuple[tuple[str, ...], dict[str, Any]]


class Command(NamedTuple):
    run: Callable[[argparse.Namespace], int]   # cmd_* function; its docstring is the --help epilog
    help: str                                  # one line, lower case, for `knip --help`
    args: list[Arg]


def arg(*names: str, **kw: Any) -> Arg:
    return names, kw


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


DB_ARG = arg("--db", metavar="PATH",
             help="the session database file (default: knip.sqlite3 in $KNIP_DATA, else in your "
                  "data folder, e.g. ~/.local/share/knip)")
DEVICE_ARG = arg("--device", metavar="ID", help="only the sessions of this trainer")
SESSION_ARG = arg("session", metavar="SESSION",
                  help="DEVICE/N as 'knip sessions' lists it, N, 'last', or -1, -2, ... (newest first)")
