"""`knip`: the host tool's command line.

Each subcommand is one `cmd_*` function (its docstring is the epilog of
its --help) plus one entry in `COMMANDS` (name, one-line help, arguments). Bad input ends with exit
code 2 and a single line `knip: error: ...` on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .recordings import FORMATS, Recording, RecordingError, load
from .analysis import phasic_score
from .usage import UsageError

PROG = "knip"
EXIT_USAGE = 2
EXIT_FAILED = 1


# ----------------------------------------------------------- choosing channels

ANAL_CANAL = [str(i) for i in range(10, 0, -1)]     # HRM sensors 10..1


@dataclass
class Choice:
    signal: str
    channel: str
    abdominal: str | None
    notes: list[str]


def choose(rec: Recording, *, signal: str | None = None, channel: str | None = None,
           abdominal: str | None = None) -> Choice:
    """The signal kind and channels to analyse, with a note on any default taken."""
    notes: list[str] = []
    names = rec.channel_names
    for opt, name in (("--channel", channel), ("--abdominal", abdominal)):
        if name is not None and name not in rec.channels:
            raise UsageError(f"{rec.path}: {opt} {name!r} is not a channel; "
                             f"choose one of {', '.join(names)}")
    if channel is None:
        canal = [n for n in ANAL_CANAL if n in rec.channels]
        if rec.format == "hrm" and canal:
            channel = max(canal, key=lambda n: phasic_score(rec.channels[n], rec.rate_hz))
            notes.append(f"channel {channel} picked: of the anal canal sensors {canal[0]}..{canal[-1]}, "
                         f"the one whose squeezes stand furthest above its noise (--channel to choose another)")
            if abdominal is None and "B1" in rec.channels:
                notes.append("one channel: add --abdominal B1 (rectal balloon) to tell a lift "
                             "from a push")
        else:
            channel = names[0]
            if len(names) > 1:
                notes.append(f"channel {channel} picked: the first of {', '.join(names)} "
                             f"(--channel to choose another)")
    if abdominal is not None and abdominal == channel:
        others = [n for n in names if n != channel]
        fix = (f"give another one ({', '.join(others)})" if others
               else "the file has one channel only: drop --abdominal")
        raise UsageError(f"{rec.path}: --abdominal {abdominal} is the analysed channel too; {fix}")
    if signal is None:
        emg = rec.unit in ("counts", "uV") or (rec.unit == "" and rec.format == "text")
        signal = "emg" if emg else "pressure"
    return Choice(signal, channel, abdominal, notes)


# -------------------------------------------------------------------- analyze

def cmd_analyze(args: argparse.Namespace) -> int:
    """examples:
  knip analyze session.csv
  knip analyze anorectal_hrm_1.txt --abdominal B1 --plot hrm.png
  knip analyze semg_2.txt --json > events.json
  knip analyze raw.csv --rate 100 --signal pressure

formats: CSV with a header row (time_s column, or --rate; optional
'# unit: cmH2O' line), single-column text with '#' header lines (sEMG,
ADC counts), anorectal manometry exports (TIME: header, Annotations:).
Exit status 2 with one 'knip: error:' line when the input is unusable."""
    analyze_file(args.file, format=args.format, rate_hz=args.rate, signal=args.signal,
                 channel=args.channel, abdominal=args.abdominal, plot=args.plot, as_json=args.json)
    return 0


def analyze_file(file: str, *, format: str | None = None, rate_hz: float | None = None,
                 signal: str | None = None, channel: str | None = None, abdominal: str | None = None,
                 plot: str | None = None, as_json: bool = False) -> Any:
    """Load, analyse, print (table or JSON) and optionally plot one recording.
    Returns the Analysis; raises UsageError / RecordingError on bad input."""
    rec = load(file, format=format, rate_hz=rate_hz)
    pick = choose(rec, signal=signal, channel=channel, abdominal=abdominal)
    if plot:
        _check_writable(plot)

    from .analysis import AnalysisError, analyze
    from .report import render

    try:
        result = analyze(rec, signal=pick.signal, channel=pick.channel, abdominal=pick.abdominal)
    except AnalysisError as exc:
        raise UsageError(f"{rec.path}: {exc}") from None
    if plot:
        from .plot import plot_analysis
        try:
            plot_analysis(rec, result, plot, signal=pick.signal, channel=pick.channel,
                          abdominal=pick.abdominal)
        except OSError as exc:
            raise UsageError(f"--plot {plot}: cannot write ({exc.strerror or exc})") from None
    if as_json:
        doc = {"recording": recording_info(rec, pick), **result.to_json()}
        print(json.dumps(_plain(doc), indent=2))
    else:
        sys.stdout.write(render(rec, result, signal=pick.signal, channel=pick.channel,
                                abdominal=pick.abdominal, notes=pick.notes))
        if plot:
            print(f"plot written to {plot}")
    return result


def _check_writable(path: str) -> None:
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise UsageError(f"--plot {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--plot {path}: cannot write in {folder}; choose another place")


def recording_info(rec: Recording, pick: Choice) -> dict[str, Any]:
    return {
        "file": str(rec.path), "format": rec.format, "rate_hz": rec.rate_hz,
        "unit": rec.unit, "samples": rec.n_samples, "duration_s": rec.duration_s,
        "signal": pick.signal, "channel": pick.channel, "abdominal": pick.abdominal,
        "notes": pick.notes,
    }


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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


# ------------------------------------------------------------------- commands

def arg(*names: str, **kw: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return names, kw


Command = tuple[Callable[[argparse.Namespace], int], str, list]

COMMANDS: dict[str, Command] = {
    "analyze": (cmd_analyze, "find squeezes, coughs and pushes in a recording", [
        arg("file", metavar="FILE", help="CSV, single-column text (sEMG) or manometry export"),
        arg("--signal", choices=("pressure", "emg"),
            help="what the channel holds (default: emg for ADC counts, else pressure)"),
        arg("--channel", metavar="NAME",
            help="channel to analyse (default: the first; HRM: the most active of 10..1)"),
        arg("--abdominal", metavar="NAME",
            help="abdominal channel to tell a lift from a push (e.g. B1 on HRM)"),
        arg("--rate", metavar="HZ", type=_positive_float,
            help="sampling rate, for files without a time column or rate header"),
        arg("--format", choices=FORMATS, help="file format (default: recognised from content)"),
        arg("--json", action="store_true", help="print events and summary as JSON"),
        arg("--plot", metavar="PNG", help="also draw the signal and events to this PNG file"),
    ]),
}




def _merge_commands() -> None:
    from . import history, program_cmds, trainer_cmds
    COMMANDS.update(trainer_cmds.COMMANDS)
    COMMANDS.update(program_cmds.COMMANDS)
    COMMANDS.update(history.COMMANDS)
    from . import trend_cmds
    COMMANDS.update(trend_cmds.COMMANDS)
    from . import firmware_cmds
    COMMANDS.update(firmware_cmds.COMMANDS)


_merge_commands()

# ----------------------------------------------------------------- the parser

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
    listing = "\n".join(f"  {name:<10}  {help_text}" for name, (_, help_text, _) in COMMANDS.items())
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
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "run", None) is None:
            parser.print_help()
            return 0
        return int(args.run(args) or 0)
    except (UsageError, RecordingError) as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except _runtime_errors() as exc:       # the trainer, the link, the database
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except SystemExit as exc:              # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:                # `knip analyze f | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


def _runtime_errors() -> tuple[type[BaseException], ...]:
    from .database import DatabaseError
    from .device import DeviceError
    from .program_cmds import ProgramFileError
    return (DeviceError, DatabaseError, ProgramFileError)


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
