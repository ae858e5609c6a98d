"""`knip program`: list, show, check, push and remove training programs.
Programs are validated by the firmware's own parser (knip.programs.parse)
here first, then again on the trainer, so a bad file never reaches her
device and the trainer keeps its last good program either way."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from knip import programs as PG

from ..durations import minutes
from ..usage import UsageError
from .connection import PORT_ARGS, open_trainer
from .spec import Command, arg


MAX_FILE_BYTES = 64 * 1024     # a program of 32 phases is about 4 KB of JSON
FORMAT_HELP = "see docs/COACHING.md for the format, or 'knip program show sprint' for an example"


class ProgramFileError(UsageError):
    """A program file or name that cannot be used: exit 2, the message says why."""


def describe(phases: list[tuple[int, ...]]) -> str:
    parts = []
    for k, reps, on, off, tgt, rule in phases:
        kind = PG.KIND_NAMES[k]
        if k < PG.K_MVC:
            parts.append(f"{kind} {reps} x {off / 1000:g} s" if reps > 1 else f"{kind} {off / 1000:g} s")
        else:
            t = f" at {tgt}%" if tgt and k != PG.K_MVC else ""
            parts.append(f"{reps} {kind} {on / 1000:g} s{t} / rest {off / 1000:g} s ({PG.RULE_NAMES[rule]})")
    return ", ".join(parts)


def read_program(path: str) -> Any:
    """The JSON document in the program file `path`."""
    p = Path(path)
    try:
        if p.is_dir():
            raise ProgramFileError(f"{path}: is a folder; give a program JSON file")
        if p.exists() and not p.is_file():
            raise ProgramFileError(f"{path}: not a regular file; give a program JSON file")
        with p.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ProgramFileError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ProgramFileError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ProgramFileError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KB, too large for a "
                               f"program; is it the right file? ({FORMAT_HELP})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProgramFileError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON "
                               f"({FORMAT_HELP})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ProgramFileError(f"{path}: nested too deeply to be a program; {FORMAT_HELP}") from None
    except ValueError as exc:
        raise ProgramFileError(f"{path}: not JSON ({exc}); {FORMAT_HELP}") from None


def load_file(path: str) -> tuple[str, str, list[tuple[int, ...]], dict[str, Any]]:
    """Read and validate a program file with the firmware's own parser."""
    doc = read_program(path)
    try:
        name, title, phases = PG.parse(doc, Path(path).stem)
    except PG.ProgramError as exc:
        raise ProgramFileError(f"{path}: {exc}") from None
    except RecursionError:
        raise ProgramFileError(f"{path}: nested too deeply to be a program; {FORMAT_HELP}") from None
    if name in PG.BUILTIN_NAMES:
        raise ProgramFileError(f"{path}: name: '{name}' is a built-in program; choose another name")
    return name, title, phases, PG.to_doc(name, title, phases)


def program_name(name: str) -> str:
    """A name as the trainer stores programs under (checked before connecting)."""
    try:
        PG.check_name(name)
    except PG.ProgramError as exc:
        raise ProgramFileError(str(exc)) from None
    if name in PG.BUILTIN_NAMES:
        raise ProgramFileError(f"'{name}' is a built-in program; only custom programs can be removed")
    return name


def cmd_program(args: argparse.Namespace) -> int:
    """examples:
  knip program list                 built-in programs (and, with --port, the trainer's)
  knip program show sprint          a program as JSON: a template for your own
  knip program check my.json        validate a file here, without a trainer
  knip program push my.json         validate, then store it on the trainer
  knip program remove my-program    delete a custom program from the trainer

A program is JSON: {"name": "gentle", "title": "...", "phases": [...]}; each
phase is {"kind": "rest"|"relax", "reps": N, "seconds": S} or {"kind":
"fast"|"hold"|"mvc", "reps": N, "squeeze_s": S, "rest_s": S, "target_pct":
0-100, "rest_rule": "fixed"|"equal"|"relaxed"}. Errors name the field, for
example 'phases[2].rest_s'. Details: docs/COACHING.md."""
    action = args.action
    if action == "list":
        print(f"{'program':<12} {'length':>6}  what")
        for name in sorted(PG.BUILTIN_NAMES):
            _, title, phases = PG.builtin(name)
            print(f"{name:<12} {minutes(PG.duration_ms(phases) / 1000):>6}  {title}")
            print(f"{'':<12} {'':>6}  {describe(phases)}")
        if args.port:
            with open_trainer(args) as dev:
                info = dev.hello()
            custom = info.get("custom_programs", [])
            print(f"\non the trainer ({info.get('device')}): "
                  + (", ".join(custom) if custom else "no custom programs"))
            more = int(info.get("custom_count", len(custom))) - len(custom)
            if more > 0:
                print(f"  and {more} more (too many long names for one INFO frame; "
                      f"'knip program remove NAME' frees room)")
            for err in info.get("program_errors", []):
                print(f"  unreadable program file on the trainer: {err}")
        return 0
    if not args.target:
        raise ProgramFileError(f"'knip program {action}' needs a "
                               f"{'program name' if action in ('show', 'remove') else 'JSON file'}")
    if action == "show":
        doc = PG.builtin_docs().get(args.target)
        if doc is None:
            raise ProgramFileError(f"no built-in program {args.target!r}; built-in: {', '.join(sorted(PG.BUILTIN_NAMES))}")
        _, title, phases = PG.builtin(args.target)
        print(json.dumps(PG.to_doc(args.target, title, phases), indent=2))
        return 0
    if action == "check":
        name, title, phases, _ = load_file(args.target)
        print(f"{args.target}: program '{name}' ({title}) is valid: {minutes(PG.duration_ms(phases) / 1000)}, "
              f"{PG.squeezes(phases)} squeezes; {describe(phases)}")
        return 0
    if action == "push":
        name, title, phases, doc = load_file(args.target)      # a bad file never waits for a trainer
        with open_trainer(args) as dev:
            dev.hello()
            got = dev.put_program(doc)
        print(f"stored program '{got}' on the trainer ({minutes(PG.duration_ms(phases) / 1000)}); "
              f"run it with 'knip live --program {got}'")
        return 0
    name = program_name(args.target)
    with open_trainer(args) as dev:
        dev.hello()
        dev.remove_program(name)
    print(f"removed program '{name}' from the trainer")
    return 0


COMMANDS = {
    "program": Command(cmd_program, "list, check and push training programs", [
        arg("action", choices=("list", "show", "check", "push", "remove"), help="what to do"),
        arg("target", nargs="?", metavar="NAME_OR_FILE", help="program name (show, remove) or JSON file"),
        *PORT_ARGS,
    ]),
}
