"""The options that pick a trainer (--port, --sim-*, --ble, --pair), shared
by every command that talks to one, and opening the trainer they pick."""
from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from typing import Any

from ..connect import connect
from ..device import Device
from .spec import arg, positive_float

SIM_USER_NAMES = ("good", "typical", "weak", "no_relax", "pusher", "short_rest", "stops_early")
SIM_USERS = ", ".join(SIM_USER_NAMES)

PORT_ARGS = [
    arg("--port", "-p", metavar="PORT",
        help="serial port of the trainer, or 'sim' for a virtual trainer started on the fly "
             "(default: $KNIP_PORT or the only ESP32-like port)"),
    arg("--sim-speed", type=positive_float, default=1.0, metavar="X",
        help="with --port sim: run the virtual trainer X times faster than real time"),
    arg("--sim-user", default="good", metavar="KIND", choices=SIM_USER_NAMES,
        help="with --port sim: simulated user (" + SIM_USERS + ")"),
    arg("--sim-image", metavar="FILE", help="with --port sim: flash image (default: in the data directory)"),
    arg("--sim-seed", type=int, default=1, metavar="N", help=argparse.SUPPRESS),
    arg("--sim-clock", choices=("wall", "virtual"), default="wall",
        help="with --port sim: 'virtual' runs the trainer on simulated time, as fast as the CPU "
             "allows and the same on every run (for scripts and tests; default: wall)"),
    arg("--ble", metavar="NAME_OR_ADDRESS",
        help="connect over Bluetooth LE to the trainer of that name (e.g. Knip) or address "
             "instead of a serial port ('knip devices --ble' lists them; needs bleak)"),
    arg("--pair", action="store_true",
        help="with --ble: forget any old pairing with the trainer and pair anew "
             "(hold the trainer's button 3 s first to open pairing)"),
]


def port_options(args: argparse.Namespace) -> dict[str, Any]:
    """The port options for connect(): the virtual trainer's, plus --ble/--pair
    (connect() takes those out), so every command that passes these gets BLE."""
    opts: dict[str, Any] = {"image": getattr(args, "sim_image", None), "speed": getattr(args, "sim_speed", 1.0),
                            "user": getattr(args, "sim_user", "good"), "seed": getattr(args, "sim_seed", 1),
                            "clock": getattr(args, "sim_clock", "wall")}
    if getattr(args, "ble", None):
        opts["ble"] = args.ble
    if getattr(args, "pair", False):
        opts["pair"] = True
    return opts


def open_trainer(args: argparse.Namespace) -> AbstractContextManager[Device]:
    """The trainer PORT_ARGS pick, open for a `with` block."""
    return connect(args.port, sim=port_options(args))
