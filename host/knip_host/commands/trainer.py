"""The commands that talk to a trainer: `knip devices`, `knip info`,
`knip live`, `knip sync` and `knip sim` (the virtual trainer)."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
import time
from typing import TYPE_CHECKING

from ..device import DeviceError
from ..usage import UsageError
from ..esp32 import module as M
from ..esp32 import release as R
from ..ports import serial_ports
from ..simulator import VirtualTrainer, default_image
from .connection import PORT_ARGS, SIM_USER_NAMES, SIM_USERS, open_trainer
from .spec import Command, arg, positive_float, utf8_text

if TYPE_CHECKING:
    from ..sync import SyncReport


def cmd_devices(args: argparse.Namespace) -> int:
    """Lists serial ports (ESP32-like ones marked) and, with --ble and the
    bleak package, trainers advertising over Bluetooth LE. 'sim' is always
    available: every command takes --port sim."""
    ports = serial_ports()
    if ports:
        print("serial ports:")
        for p in ports:
            print("  " + p.row())
    else:
        print("serial ports: none found (is the trainer plugged in with a data cable?)")
    if args.ble:
        from ..ble import ble_trainers       # asyncio: only when scanning
        found, note = ble_trainers()
        if note:
            print(note)
        elif found:
            print("Bluetooth LE trainers:")
            for name, addr in found:
                print(f"  {addr:<20} {name}")
        else:
            print("Bluetooth LE: no trainer advertising (is it switched on and not connected elsewhere?)")
    print("virtual trainer: --port sim")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Shows firmware and protocol version, device id, sensor, sample rate,
    battery, storage and clock."""
    with open_trainer(args) as dev:
        info = dev.hello()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    clock = info.get("clock_ms")
    clock_txt = (dt.datetime.fromtimestamp(clock / 1000).strftime("%Y-%m-%d %H:%M:%S")
                 if clock else "not set (knip sync sets it)")
    total, free = info.get("storage_total") or 0, info.get("storage_free") or 0
    bat = info.get("battery_pct")
    mp = f", MicroPython {info['micropython']}" if info.get("micropython") else ""
    sim = info.get("sim") if isinstance(info.get("sim"), dict) else None
    rows = [
        ("device", f"{info.get('device')} ({info.get('board')}"
                   + (", the virtual trainer: MicroPython unix port" if sim else "") + ")"),
        ("firmware", f"{info.get('firmware')}, protocol {info.get('protocol')}" + ("" if info.get("profile") else mp)),
        ("sensor", f"{info.get('signal')} in {info.get('unit')}, {info.get('rate_hz')} Hz, "
                   f"{info.get('channels')} channel{'s' if info.get('channels', 1) > 1 else ''}"),
        ("battery", f"{bat}% ({info.get('battery_mv')} mV)" if bat is not None and bat >= 0 else "unknown"),
        ("storage", f"{free / 1024:.0f} KiB free of {total / 1024:.0f} KiB"
                    + ("  FULL: run 'knip sync'" if info.get("storage_full") else "")),
        ("sessions", f"{info.get('sessions')} on the device, {info.get('unsynced')} to sync"
                     + (f" (session store {info['store']})" if info.get("store") else "")),
        ("clock", clock_txt),
        ("state", info.get("state") + (f" (session {info.get('session')}, {info.get('program')})"
                                       if info.get("state") == "session" else "")),
        ("programs", ", ".join(info.get("programs", []))),
    ]
    if info.get("profile"):
        ble = info.get("ble") or {}
        rows.insert(1, ("profile", f"{info['profile']} ({info.get('sensor')}), MicroPython "
                                   f"{info.get('micropython')}"
                        + (f", BLE {ble.get('name')}" + (" (paired laptop connected)" if ble.get("bonded") else "")
                           if ble else "")))
    rows += memory_rows(info)
    if info.get("saturated"):
        rows.append(("sensor!", f"{info['saturated']} readings at the ADC's rail since start-up: the "
                                "sensor is out of range or miswired (hardware/WIRING.md)"))
    if info.get("alerts"):
        rows.append(("alerts", "; ".join(info["alerts"])))
    if info.get("recovered"):
        rows.append(("recovered", "sessions " + ", ".join(map(str, info["recovered"]))
                     + " were recovered after a power cut"))
    for k, v in rows:
        print(f"{k:<10} {v}")
    for problem in dev.info_problems:
        print(f"warning: {problem} (the firmware and this knip disagree: update both)", file=sys.stderr)
    return 0


def memory_rows(info: dict) -> list[tuple[str, str]]:
    """The board's heap and PSRAM (ESP32 boards report them), and what is
    wrong with them: a WROVER profile on a board whose firmware has no PSRAM,
    a heap running out."""
    if info.get("heap") is None:
        return []
    spiram = bool(info.get("spiram"))
    rows = [("memory", M.describe(info["heap"], info.get("heap_free"), info.get("psram"), spiram)
             + (f"; the profile says {info['module'].upper()}" if info.get("module") else ""))]
    if info.get("cpu_mhz"):
        rows.append(("cpu", f"{info['cpu_mhz']} MHz" + (" (raw EMG: the rated maximum, for headroom)"
                                                      if info["cpu_mhz"] >= 240 else "")))
    state = M.psram_state(spiram, info.get("psram"))
    if info.get("module") == "wrover" and state == "absent":
        rows.append(("memory!", "the profile says WROVER, but the SPIRAM image found no PSRAM: this board is "
                                f"a WROOM (or its PSRAM failed); see {M.WROOM_HELP}"))
    elif info.get("module") == "wrover" and state == "unused":
        rows.append(("memory!", "the board runs the plain image, which leaves the WROVER's PSRAM unused: "
                                "`knip flash --port PORT --psram` writes the SPIRAM image (then knip deploy)"))
    elif info["heap"] < R.HEAP_NEEDED:
        rows.append(("memory!", f"{M.kb(info['heap'])} of heap is too little for Knip loaded from files; "
                                f"see {M.WROOM_HELP}"))
    free = info.get("heap_free")
    if free is not None and free < 16 * 1024:
        rows.append(("memory!", f"only {M.kb(free)} of heap free: the trainer ends a session when it runs "
                                "out (the session is kept)"))
    return rows


def _ask_pain(question: str) -> int | None:
    """Ask at the terminal; Enter skips."""
    while True:
        try:
            text = input(question).strip()
        except EOFError:
            return None
        if not text:
            return None
        if text.isdigit() and 0 <= int(text) <= 10:
            return int(text)
        print("a whole number from 0 (no pain) to 10 (worst pain), or Enter to skip")


def _pain_arg(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 10:
        raise argparse.ArgumentTypeError(f"pain is a whole number from 0 to 10, not {text!r}")
    return int(text)


def _batch_ms_arg(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 60000:
        raise argparse.ArgumentTypeError(f"a live frame holds 1 to 60000 ms of samples, not {text!r}")
    return int(text)


def cmd_live(args: argparse.Namespace) -> int:
    """Shows the pressure (or EMG activity) as it happens: a bar in the
    sensor's unit and in % of MVC, the target of the current cue, the
    state, and a verdict after every squeeze. With --program the trainer
    runs that program and records the session; Ctrl-C stops.

programs: calibrate (resting level and MVC; run it first), sprint, marathon,
assessment (Glazer), relax (down-training), daily, and any you pushed with
'knip program push'. Before and after a program she gives her pain (0-10):
at this terminal when it is interactive, with --pain-before/--pain-after,
or on the trainer's button (one press per point, hold to confirm).

examples:
  knip live --program calibrate
  knip live --program sprint --pain-before 2
  knip live --port sim --program marathon --sim-user stops_early"""
    from ..live import run_live
    if not args.program and (args.pain_before is not None or args.pain_after is not None):
        raise UsageError("--pain-before and --pain-after go with --program: pain is stored with a session")
    ask = _ask_pain if (args.program and sys.stdin.isatty() and not args.plain) else None
    with open_trainer(args) as dev:
        info = dev.hello()
        dev.set_clock()
        known = set(info.get("programs", [args.program])) | set(info.get("custom_programs", []))
        if args.program and args.program not in known and "custom_count" not in info:
            raise DeviceError(f"the trainer has no program {args.program!r}; it has: "
                              f"{', '.join(info.get('programs', []))} ('knip program push FILE' adds one)")
        if info.get("usb_power") and args.program:
            print("warning: the trainer is on USB power; with the probe or electrodes on the body, "
                  "run it from its battery (hardware/SAFETY.md)", file=sys.stderr)
        res = run_live(dev, seconds=args.seconds, program=args.program,
                       plain=True if args.plain else None, batch_ms=args.batch_ms,
                       pain=(args.pain_before, args.pain_after), ask_pain=ask)
    if res.reps:
        sq = [d for d in res.reps if d["phase_kind"] in ("fast", "hold", "mvc")]
        good = sum(1 for d in sq if d["ok"])
        relaxed = sum(1 for d in sq if d["checks"]["relaxed"])
        print(f"{len(sq)} squeezes cued: {good} fully right, {relaxed} relaxed fully"
              + (f"; session {res.session} is on the trainer: 'knip sync' fetches it"
                 if res.session is not None else ""))
        return 0
    sq = [v for v in res.verdicts if v.kind == "squeeze"]
    if sq:
        relaxed = sum(1 for v in sq if v.relaxed)
        print(f"{len(sq)} squeezes, {relaxed} relaxed fully"
              + (f"; session {res.session} is on the trainer: 'knip sync' fetches it" if res.session is not None else ""))
    if res.lost_frames:
        print(f"note: {res.lost_frames} live frames were lost on the link (the session file is not affected)")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Fetches new sessions into the local database, verifies each copy and
    only then lets the trainer delete it. Safe to interrupt and re-run: it
    resumes where it stopped and never stores a session twice.

A session damaged on the trainer's flash (the same damage in two exact
copies) is salvaged: every readable record is stored, the file is kept
byte for byte, 'knip show' says what was lost, and then it is deleted from
the trainer. A session that cannot be copied at all stays on the trainer and
the sync goes on with the next; --discard N deletes such a session N from
the trainer without a copy, only when you ask (docs/PROTOCOL.md section 7)."""
    from ..database import SessionDatabase
    from ..sync import sync
    db = SessionDatabase.open(args.db)
    with open_trainer(args) as dev:
        dev.hello()
        rep = sync(dev, db, discard=set(args.discard or ()))
    for line in sync_lines(rep):
        print(line)
    return 1 if rep.failed else 0


def sync_lines(rep: SyncReport) -> list[str]:
    """What `knip sync` tells her: what came, what was damaged, what stays."""
    n = len(rep.fetched)
    parts = [f"{n} new session{'s' if n != 1 else ''}"]
    if rep.resumed:
        parts.append(f"{len(rep.resumed)} resumed")
    if rep.already:
        parts.append(f"{len(rep.already)} already stored")
    out = [f"synced {rep.device}: " + ", ".join(parts)
           + (f" ({rep.bytes / 1024:.1f} KiB in {rep.seconds:.1f} s)" if rep.bytes else "")]
    for sid, what in sorted(rep.damaged.items()):
        out.append(f"session {sid} was damaged on the trainer's flash: {what}. Everything readable "
                   f"is stored (and the file byte for byte); 'knip show' marks it damaged")
    for sid, why in sorted(rep.failed.items()):
        out.append(f"session {sid} could not be copied and stays on the trainer: {why}. "
                   f"If this repeats, 'knip sync --discard {sid}' deletes it from the trainer")
    if rep.recording:
        out.append(f"session {', '.join(map(str, rep.recording))} is still recording: sync again when it ends")
    if rep.bad:
        out.append(f"session {', '.join(map(str, rep.bad))} on the trainer is unreadable (no valid header) "
                   f"and was left there; 'knip sync --discard N' deletes it")
    if rep.discarded:
        out.append(f"session {', '.join(map(str, rep.discarded))} deleted from the trainer without a copy "
                   "(--discard)")
    for sid, why in rep.kept.items():
        out.append(f"--discard {sid}: {why}")
    if rep.fetched:
        out.append("'knip sessions' lists them, 'knip show last' shows the newest")
    return out


def cmd_sim(args: argparse.Namespace) -> int:
    """Starts a virtual trainer (the real firmware under the MicroPython unix
port with a simulated user) on a pseudo-terminal and prints its port.
Other knip commands (or mpremote-style tools) connect with --port PORT.
Runs until Ctrl-C; its sessions persist in the flash image, which no other
virtual trainer may use meanwhile."""
    vt = VirtualTrainer(args.image, speed=args.speed, user=args.user, seed=args.seed,
                        signal_kind=args.signal, baud=args.baud)
    vt.start()
    print(vt.port, flush=True)
    print(f"virtual trainer running on {vt.port} (image {vt.image}); Ctrl-C stops it", file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while vt.alive:
            time.sleep(0.2)
        print("the virtual trainer stopped:\n" + "\n".join(vt.log[-5:]), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        vt.stop()


# `knip sync --help` words --db its own way (spec.DB_ARG is the reading commands')
SYNC_DB_ARG = arg("--db", metavar="PATH", type=utf8_text, help="session database (default: knip.sqlite3 in the data directory)")

COMMANDS = {
    "devices": Command(cmd_devices, "list serial ports and trainers", [
        arg("--ble", action="store_true", help="also scan for Bluetooth LE trainers (needs bleak)"),
    ]),
    "info": Command(cmd_info, "show what a trainer is and holds", PORT_ARGS + [
        arg("--json", action="store_true", help="print the device's INFO as JSON"),
    ]),
    "live": Command(cmd_live, "real-time biofeedback in the terminal", PORT_ARGS + [
        arg("--program", metavar="NAME",
            help="run a program and record the session (calibrate, sprint, marathon, assessment, relax, daily)"),
        arg("--pain-before", type=_pain_arg, metavar="0-10", help="her pain before the program"),
        arg("--pain-after", type=_pain_arg, metavar="0-10", help="her pain after the program"),
        arg("--seconds", type=positive_float, metavar="S",
            help="stop after S seconds (default: 30, or the program's end); a program still running is "
                 "stopped then, and its session so far is kept"),
        arg("--batch-ms", type=_batch_ms_arg, default=100, metavar="MS",
            help="samples per live frame, in ms: 1 to 60000 (default 100; the trainer caps a frame's samples)"),
        arg("--plain", action="store_true", help="print lines instead of a moving bar"),
    ]),
    "sync": Command(cmd_sync, "fetch new sessions into the local database", PORT_ARGS + [
        SYNC_DB_ARG,
        arg("--discard", type=int, action="append", metavar="N",
            help="if session N cannot be copied (unreadable, or no exact copy), delete it from the "
                 "trainer anyway (repeatable); sessions that copy are stored as usual"),
    ]),
    "sim": Command(cmd_sim, "run a virtual trainer on a pseudo-terminal", [
        arg("--image", metavar="FILE", default=None, help=f"flash image (default: {default_image()})"),
        arg("--speed", type=positive_float, default=1.0, metavar="X", help="times faster than real time (default 1)"),
        arg("--user", default="good", choices=SIM_USER_NAMES, help=f"simulated user: {SIM_USERS}"),
        arg("--signal", default="pressure", choices=("pressure", "emg"),
            help="what its sensor gives: a pressure probe or raw EMG (default pressure)"),
        arg("--seed", type=int, default=1,
            help="the simulated user's random draws: the same seed, the same sessions (default 1)"),
        arg("--baud", type=int, default=115200, help="pace the link like a UART (0: unlimited)"),
    ]),
}
