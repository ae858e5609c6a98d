"""The one table of `knip` commands, gathered from the command families in
the order `knip --help` lists them."""
from __future__ import annotations

from . import analyze, app, esp32, export, plot, program, progress, report, sessions, trainer
from .spec import Command

FAMILIES = (analyze, trainer, program, sessions, plot, export, progress, report, app, esp32)


def _gather() -> dict[str, Command]:
    table: dict[str, Command] = {}
    for family in FAMILIES:
        for name, command in family.COMMANDS.items():
            if name in table:
                raise ValueError(f"knip {name} is defined twice ({family.__name__})")
            table[name] = command
    return table


COMMANDS: dict[str, Command] = _gather()
