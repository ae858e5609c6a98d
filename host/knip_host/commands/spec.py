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


def utf8_text(text: str) -> str:
    """Text as given, if it is UTF-8: bytes that are not arrive as lone
    surrogates, which the database and the files written cannot hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
        raise argparse.ArgumentTypeError(f"'{shown}' is not UTF-8 text; type it in UTF-8 "
                                         f"(or rename the file)") from None
    return text


SESSION_REF_MAX = 80


def session_ref(text: str) -> str:
    """A session as the user names it (the database resolves it); checked for
    what would break before that: bytes that are not UTF-8, absurd lengths."""
    text = utf8_text(text)
    if len(text.strip()) > SESSION_REF_MAX:
        raise argparse.ArgumentTypeError(f"'{text[:20]}...' is too long to name a session: use "
                                         f"DEVICE/N, N, 'last' or -1, -2, ...")
    return text


DB_ARG = arg("--db", metavar="PATH", type=utf8_text,
             help="the session database file (default: knip.sqlite3 in $KNIP_DATA, else in your "
                  "data folder, e.g. ~/.local/share/knip)")
DEVICE_ARG = arg("--device", metavar="ID", type=utf8_text, help="only the sessions of this trainer")
SESSION_ARG = arg("session", metavar="SESSION", type=session_ref,
                  help="DEVICE/N as 'knip sessions' lists it, N, 'last', or -1, -2, ... (newest first)")
