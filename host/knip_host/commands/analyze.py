"""`knip analyze`: squeezes, coughs and pushes in a recording file, with the
channel to analyse chosen when the file has several."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis import phasic_score
from ..recordings import FORMATS, Recording, load
from ..usage import UsageError
from .output import cannot_write, png_name, print_json, writable_folder
from .spec import Command, arg, positive_float

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
    if abdominal is None and channel is not None:
        named = [n for n in names if n != channel and n.lower().startswith("abdominal")]
        if named:
            abdominal = named[0]        # as knip export names it: abdominal_cmH2O
            notes.append(f"abdominal channel {abdominal} used to tell a lift from a push")
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
        png_name(plot, "--plot")
        writable_folder(Path(plot).resolve().parent, f"--plot {plot}")

    from ..analysis import AnalysisError, analyze
    from ..report import render

    try:
        result = analyze(rec, signal=pick.signal, channel=pick.channel, abdominal=pick.abdominal)
    except AnalysisError as exc:
        raise UsageError(f"{rec.path}: {exc}") from None
    if plot:
        from ..plot import plot_analysis
        try:
            plot_analysis(rec, result, plot, signal=pick.signal, channel=pick.channel,
                          abdominal=pick.abdominal)
        except OSError as exc:
            raise cannot_write(f"--plot {plot}", exc) from None
    if as_json:
        print_json({"recording": recording_info(rec, pick), **result.to_json()})
    else:
        sys.stdout.write(render(rec, result, signal=pick.signal, channel=pick.channel,
                                abdominal=pick.abdominal, notes=pick.notes))
        if plot:
            print(f"plot written to {plot}")
    return result


def recording_info(rec: Recording, pick: Choice) -> dict[str, Any]:
    return {
        "file": str(rec.path), "format": rec.format, "rate_hz": rec.rate_hz,
        "unit": rec.unit, "samples": rec.n_samples, "duration_s": rec.duration_s,
        "signal": pick.signal, "channel": pick.channel, "abdominal": pick.abdominal,
        "notes": pick.notes,
    }


COMMANDS = {
    "analyze": Command(cmd_analyze, "find squeezes, coughs and pushes in a recording", [
        arg("file", metavar="FILE", help="CSV, single-column text (sEMG) or manometry export"),
        arg("--signal", choices=("pressure", "emg"),
            help="what the channel holds (default: emg for ADC counts, else pressure)"),
        arg("--channel", metavar="NAME",
            help="channel to analyse (default: the first; HRM: the most active of 10..1)"),
        arg("--abdominal", metavar="NAME",
            help="abdominal channel to tell a lift from a push (e.g. B1 on HRM)"),
        arg("--rate", metavar="HZ", type=positive_float,
            help="sampling rate, for files without a time column or rate header"),
        arg("--format", choices=FORMATS, help="file format (default: recognised from content)"),
        arg("--json", action="store_true", help="print events and summary as JSON"),
        arg("--plot", metavar="PNG", help="also draw the signal and events to this PNG file"),
    ]),
}
