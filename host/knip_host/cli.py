"""`knip`: the host tool's command line.

The commands live in knip_host.commands, one module per family, gathered in
commands.registry.COMMANDS; this module builds the parser from that table
and runs one command. Bad input (arguments, a recording, a program file)
ends with exit code 2 and a single line `knip: error: ...` on stderr, never
a traceback; a trainer, link or database that fails ends with exit code 1
and one such line. Text that the terminal cannot show is printed escaped.
"""
from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata

from .commands.registry import COMMANDS
from .database import DatabaseError
from .device import DeviceError
from .recordings import RecordingError
from .usage import UsageError

PROG = "knip"
EXIT_USAGE = 2
EXIT_FAILED = 1
USAGE_ERRORS = (UsageError, RecordingError)        # commands.program.ProgramFileError is a UsageError
RUNTIME_ERRORS = (DeviceError, DatabaseError)       # the trainer, the link, the database


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _version() -> str:
    try:
        return metadata.version("knip")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<10}  {command.help}" for name, command in COMMANDS.items())
    parser = Parser(
        prog=PROG, usage=f"{PROG} [-h] [--version] COMMAND [ARGS...]",
        description="Knip: open pelvic floor muscle trainer, host tool.\n\n"
                    f"commands:\n{listing}",
        epilog=f"'{PROG} COMMAND --help' shows the options of a command.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", help=argparse.SUPPRESS, parser_class=Parser)
    for name, (run, help_text, args) in COMMANDS.items():
        p = sub.add_parser(name, prog=f"{PROG} {name}", help=help_text, epilog=run.__doc__,
                           description=help_text[0].upper() + help_text[1:] + ".",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        for names, kw in args:
            p.add_argument(*names, **kw)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):      # a file name or title it cannot encode
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "run", None) is None:
            parser.print_help()
            return 0
        return int(args.run(args) or 0)
    except USAGE_ERRORS as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except RUNTIME_ERRORS as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except SystemExit as exc:              # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:                # `knip analyze f | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
