"""The commands that put Knip on an ESP32 (docs/DEPLOY.md): `knip build`,
`knip flash`, `knip deploy` and `knip profile check`. The work is done in
knip_host.esp32."""
from __future__ import annotations

import argparse
import sys

from ..esp32 import build as B
from ..esp32 import release as R
from ..esp32.deploy import deploy
from ..esp32.flash import flash
from ..esp32.tools import FirmwareError, say
from ..usage import UsageError
from .spec import Command, arg


def cmd_build(args: argparse.Namespace) -> int:
    """Compiles the firmware for the ESP32 into a folder laid out like the
board's filesystem (/knip, /links, /drivers, /espboard as .mpy, /main.py,
/profile.json, /manifest.json) without touching a board. The per-sample
modules are native code (-X emit=native), the rest bytecode; every import
is checked against what MicroPython v1.29 offers on the ESP32.

examples:
  knip build -o out/esp32
  knip build -o out/esp32 --profile hardware/profiles/emg-myoware.json --no-native"""
    try:
        res = B.build(args.out, args.profile, native=not args.no_native, opt=args.opt,
                      say=say if args.verbose else None)
    except B.ProfileInvalid as exc:
        raise UsageError(str(exc)) from None
    except B.BuildError as exc:
        raise FirmwareError(str(exc)) from None
    say(f"built {args.out}: {res.summary()}")
    for n in res.native_fallback:
        say(f"note: bytecode instead of native code for {n}")
    for n in res.imports.optional:
        say(f"note: optional import {n}")
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    """Erases the board and writes MicroPython v1.29.0 (ESP32_GENERIC) with
esptool 5: erase-flash, then write-flash -z 0x1000 (offset 0 on S3/C3).
Which image: the SPIRAM variant (ESP32_GENERIC-SPIRAM) for an ESP32-WROVER
board (PSRAM, megabytes of heap: the reference board, ESP32-DevKitC-VE),
the plain one for a WROOM (no PSRAM). --psram / --no-psram say it, else
the profile's "module" (--profile), else what the Knip app on the board
reported, else SPIRAM. Afterwards the board reports its heap and PSRAM: a
board without PSRAM on the SPIRAM image is named a WROOM, with what to do.
Without --firmware the pinned image is downloaded once with mpflash and
kept in the data directory. Erasing deletes the board's files and
sessions: when the Knip app reports unsynced sessions it refuses until you
run 'knip sync' (or give --force). Next step: knip deploy.

errors: 'no serial port' (plug in, 'knip devices' lists ports); 'busy'
(close knip live, a serial monitor, ModemManager); 'no ESP32 answered'
(hold BOOT while pressing EN; use a data cable); offline (download the .bin
from https://micropython.org/download/ESP32_GENERIC/ and pass --firmware);
'this board has no PSRAM' (a WROOM: --no-psram and the frozen build, see
docs/DEPLOY.md).

examples:
  knip flash --port /dev/ttyUSB0
  knip flash --port /dev/ttyUSB0 --profile hardware/profiles/emg-ads1292r.json
  knip flash --port /dev/ttyUSB0 --no-psram
  knip flash --port /dev/ttyUSB0 --firmware ESP32_GENERIC-SPIRAM-20260829-v1.29.0.bin"""
    flash(args.port, args.firmware, chip=args.chip, baud=args.baud, erase=not args.no_erase, force=args.force,
          psram=args.psram, profile=args.profile)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    """Puts Knip on a board that runs MicroPython v1.29: checks the profile
(exit 2 naming each wrong field), builds, asks a running Knip app for the
REPL, checks the board's MicroPython and .mpy format and its heap (a board
without PSRAM, a WROOM, is refused unless the Knip modules are frozen into
its firmware: docs/DEPLOY.md), removes old files of ours, copies the build with mpremote (unchanged files are skipped),
installs aioble with mip (BLE; offline it warns and goes on), restarts the
board and checks that the app reports the built firmware and profile.
Sessions and /lib on the board are kept. A board whose firmware has this
tree frozen in (docs/FROZEN.md) gets only the profile.

errors: 'needs v1.29.x' (run 'knip flash' first); 'the board has N KB of
heap' (a WROOM, or the plain image on a WROVER: the message says which
and what to do); 'does not give its REPL'
(hold the safe-mode button while pressing EN, then deploy again); 'busy'
(close knip live, a serial monitor, ModemManager); 'app did not start'
(the board's own message says why, e.g. a sensor that does not answer).

examples:
  knip deploy --port /dev/ttyUSB0 --profile hardware/profiles/pressure-analog.json
  knip deploy --port /dev/ttyUSB0 --profile hardware/profiles/hil-loopback.json --no-mip"""
    deploy(args.port, args.profile, mip=not args.no_mip, native=not args.no_native,
           build_dir=args.build_dir, wait_s=args.wait, small_heap=args.small_heap,
           frozen=not args.no_frozen)
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """Checks board profiles (hardware/profiles/*.json) with the firmware's
own validator, the one the board runs at start-up. Prints 'FILE: ok
(profile NAME, signal, rate)' or one line per wrong field, naming the field
and what to use instead; exit status 2 when any file is wrong.

examples:
  knip profile check hardware/profiles/*.json"""
    bad = 0
    for file in args.files:
        try:
            doc = B.check_profile(file)
        except B.ProfileInvalid as exc:
            bad += 1
            for e in exc.errors:
                print(f"{file}: {e}", file=sys.stderr)
            continue
        chans = 2 if doc.get("abdominal") is not None else 1
        print(f"{file}: ok (profile {doc['profile']}, {doc['signal']}, {doc['rate_hz']} Hz, "
              f"{doc['sensor']['driver']}, {chans} channel{'s' if chans > 1 else ''}, "
              f"{doc.get('module', 'wrover').upper()})")
    return 2 if bad else 0


PORT_ARG = arg("--port", "-p", metavar="PORT", required=True,
               help="the ESP32's serial port, e.g. /dev/ttyUSB0 or COM3 ('knip devices' lists them)")

COMMANDS = {
    "build": Command(cmd_build, "compile the firmware for the ESP32 into a folder", [
        arg("-o", "--out", metavar="DIR", default="out/esp32", help="output folder (default out/esp32)"),
        arg("--profile", metavar="FILE", default=str(B.DEFAULT_PROFILE),
            help="board profile to include (default hardware/profiles/pressure-analog.json)"),
        arg("--no-native", action="store_true", help="bytecode only (if native code does not fit the board)"),
        arg("--opt", type=int, default=0, choices=(0, 1, 2, 3),
            help="mpy-cross -O level (1: drop asserts, 3: also line numbers; default 0)"),
        arg("-v", "--verbose", action="store_true", help="one line per compiled file"),
    ]),
    "flash": Command(cmd_flash, f"write MicroPython v{R.MICROPYTHON_VERSION} to an ESP32 (esptool)", [
        PORT_ARG,
        arg("--firmware", metavar="FILE", help=f"image to write (default: {R.FIRMWARE_FILE_SPIRAM} or "
                                               f"{R.FIRMWARE_FILE}, downloaded with mpflash)"),
        arg("--psram", action=argparse.BooleanOptionalAction, default=None,
            help="the board has PSRAM (a WROVER: the SPIRAM image) or not (--no-psram: a WROOM, the plain "
                 "image); default: the profile's module, else what the board reported, else SPIRAM"),
        arg("--profile", metavar="FILE", help="the board profile: its \"module\" picks the image"),
        arg("--chip", default=R.CHIP, choices=tuple(R.FLASH_OFFSET), help="chip type (default esp32)"),
        arg("--baud", type=int, default=460800, help="flashing speed (default 460800; 115200 for long cables)"),
        arg("--no-erase", action="store_true",
            help="write without erasing first: keeps the board's files (an upgrade of MicroPython)"),
        arg("--force", action="store_true", help="erase even when the trainer holds unsynced sessions"),
    ]),
    "deploy": Command(cmd_deploy, "put the Knip firmware and a board profile on an ESP32", [
        PORT_ARG,
        arg("--profile", metavar="FILE", required=True, help="board profile, e.g. hardware/profiles/pressure-analog.json"),
        arg("--no-mip", action="store_true", help="do not install aioble (BLE stays off without it)"),
        arg("--no-frozen", action="store_true",
            help="copy the .mpy tree even onto a board whose firmware has Knip frozen in (docs/FROZEN.md)"),
        arg("--no-native", action="store_true", help="bytecode only (if native code does not fit the board)"),
        arg("--build-dir", metavar="DIR", help="where to build (default: build/esp32 in the data directory)"),
        arg("--wait", type=float, default=20.0, metavar="S", help="seconds to wait for the app after the restart"),
        arg("--small-heap", action="store_true",
            help="deploy even to a board without PSRAM (a WROOM without the frozen build): the app may stop "
                 "at start-up or at the first BLE connection"),
    ]),
    "profile": Command(cmd_profile, "check board profiles (knip profile check FILE ...)", [
        arg("action", choices=("check",), help="check: validate the files"),
        arg("files", nargs="+", metavar="FILE", help="profile JSON files"),
    ]),
}
