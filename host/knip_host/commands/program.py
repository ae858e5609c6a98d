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

from .connection import PORT_ARGS, open_trainer
from .spec import Command, arg


class ProgramFileError(Exception):
    """A program file that cannot be used; the message says why."""


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


def minutes(ms: int) -> str:
    s = ms // 1000
    return f"{s // 60}:{s % 60:02d}"


def load_file(path: str) -> tuple[str, str, list[tuple[int, ...]], dict[str, Any]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProgramFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramFileError(f"{path}: cannot read it ({exc})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ProgramFileError(f"{path}: not JSON ({exc}); see docs/COACHING.md for the format") from None
    try:
        name, title, phases = PG.parse(doc, p.stem)
    except PG.ProgramError as exc:
        raise ProgramFileError(f"{path}: {exc}") from None
    if name in PG.BUILTIN:
        raise ProgramFileError(f"{path}: name: '{name}' is a built-in program; choose another name")
    return name, title, phases, PG.to_doc(name, title, phases)


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
        for name in sorted(PG.BUILTIN):
            _, title, phases = PG.builtin(name)
            print(f"{name:<12} {minutes(PG.duration_ms(phases)):>6}  {title}")
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
        doc = PG.BUILTIN.get(args.target)
        if doc is None:
            raise ProgramFileError(f"no built-in program {args.target!r}; built-in: {', '.join(sorted(PG.BUILTIN))}")
        _, title, phases = PG.builtin(args.target)
        print(json.dumps(PG.to_doc(args.target, title, phases), indent=2))
        return 0
    if action == "check":
        name, title, phases, _ = load_file(args.target)
        print(f"{args.target}: program '{name}' ({title}) is valid: {minutes(PG.duration_ms(phases))}, "
              f"{PG.squeezes(phases)} squeezes; {describe(phases)}")
        return 0
    with open_trainer(args) as dev:
        dev.hello()
        if action == "push":
            name, title, phases, doc = load_file(args.target)
            got = dev.put_program(doc)
            print(f"stored program '{got}' on the trainer ({minutes(PG.duration_ms(phases))}); "
                  f"run it with 'knip live --program {got}'")
        else:
            dev.remove_program(args.target)
            print(f"removed program '{args.target}' from the trainer")
    return 0


COMMANDS = {
    "program": Command(cmd_program, "list, check and push training programs", [
        arg("action", choices=("list", "show", "check", "push", "remove"), help="what to do"),
        arg("target", nargs="?", metavar="NAME_OR_FILE", help="program name (show, remove) or JSON file"),
        *PORT_ARGS,
    ]),
}
