"""The board under test for tests/hil: a real ESP32 on a serial port
(flashed, deployed with hardware/profiles/hil-loopback.json, its DAC wired
to its ADC: hardware/HIL.md) or, without one, the virtual trainer running the
same ESP32 board code (firmware/espboard) on a simulated machine, on the
virtual clock (board time the host grants: knip_host/simclock.py), so on
simulation what a test sees is decided by simulated time alone. Test bodies
only use this interface, and wait and read the time through rig.clock
(the wall clock for a real board), so they are the same for both."""
from __future__ import annotations

import time
from pathlib import Path

import serial

from knip import protocol as P
from knip_host.database import SessionDatabase
from knip_host.device import Device, DeviceError, iter_stream
from knip_host.session import Session
from knip_host.sessionfile import decode
from knip_host.simclock import WALL, SimClock, WallClock
from knip_host.simulator import VirtualTrainer
from knip_host.sync import SyncReport, sync

ROOT = Path(__file__).resolve().parents[2]
HIL_PROFILE = ROOT / "hardware" / "profiles" / "hil-loopback.json"

# A short program the rig can play in about 40 s: 5 quick squeezes and
# 2 holds, resting at least as long as each squeeze.
HIL_PROGRAM = {"name": "hil", "title": "HIL loopback check",
               "phases": [{"kind": "rest", "seconds": 4},
                          {"kind": "fast", "reps": 5, "squeeze_s": 1, "rest_s": 2, "target_pct": 0},
                          {"kind": "hold", "reps": 2, "squeeze_s": 4, "rest_s": 5, "target_pct": 0},
                          {"kind": "rest", "seconds": 2}]}
SQUEEZE_CMH2O = 40.0     # hil-loopback: DAC codes 30 -> 150 at 38 824 uV per cmH2O


def start_hil(dev: Device) -> int:
    """Push and start the HIL program with the live stream on; its session id."""
    dev.hello()
    dev.set_clock()
    dev.put_program(HIL_PROGRAM)
    dev.live(True, 100)
    sid = dev.start("hil")
    # nobody presses the rig's button: the host answers both pain check-ins
    dev.pain(0, 0)
    dev.pain(1, 0)
    return sid


def play_hil(dev: Device, db_path: Path, kind: str, timeout: float = 90.0
             ) -> tuple[int, int, SyncReport, SessionDatabase, Session]:
    """Play the HIL program to its end, then sync it into a database at
    db_path: (session id, squeeze ends seen live, sync report, database,
    the synced session)."""
    sid = start_hil(dev)
    live_ends = 0
    for f in iter_stream(dev, time.monotonic() + timeout):
        if f.mtype == P.EVENT and f.payload[0] & 4:
            live_ends += 1
        if f.mtype == P.NOTICE and f.payload[0] == P.N_SESSION_ENDED:
            break
    else:
        raise AssertionError(f"the hil program did not end on the {kind}")
    dev.live(False)
    db = SessionDatabase.open(str(db_path))
    rep = sync(dev, db, show_progress=False)
    device = dev.get_info()["device"]
    s = db.load(f"{device}/{sid}", lambda raw, d: decode(raw, d, sid))
    return sid, live_ends, rep, db, s


class Rig:
    def __init__(self, port: str | None, workdir: Path):
        self.real = port is not None
        self.kind = "board" if self.real else "virtual trainer"
        self.port = port or ""
        self.image = workdir / "flash.img"
        self.vt: VirtualTrainer | None = None
        self.devices: list[Device] = []

    def start(self) -> "Rig":
        if not self.real:
            self.vt = VirtualTrainer(self.image, profile=HIL_PROFILE, clock="virtual").start()
            self.port = self.vt.port
        return self

    @property
    def clock(self) -> WallClock | SimClock:
        """Where the test's time comes from: the board's (simulation) or the wall's."""
        return self.vt.clock if self.vt is not None else WALL

    def open(self, timeout: float = 3.0) -> Device:
        dev = Device(self.port, timeout=timeout)
        self.devices.append(dev)
        return dev

    def close_devices(self) -> None:
        for d in self.devices:
            d.close()
        self.devices.clear()

    def reset(self) -> None:
        """Reset the board mid-whatever: EN pulled low through the USB
        bridge's RTS line on a DevKitC; a power cut (SIGKILL) of the virtual
        trainer, which then boots again from the same flash image."""
        self.close_devices()
        if self.real:
            with serial.Serial(self.port, 115200) as ser:
                ser.dtr = False         # GPIO0 high: boot the application, not the ROM loader
                ser.rts = True          # EN low
                time.sleep(0.2)
                ser.rts = False
        else:
            assert self.vt is not None
            self.vt.kill()
            self.vt.stop()
            self.vt = VirtualTrainer(self.image, profile=HIL_PROFILE, clock="virtual").start()
            self.port = self.vt.port

    def wait_ready(self, timeout: float = 15.0) -> dict:
        """HELLO until the application answers (after a reset it boots first)."""
        clock = self.clock
        end = clock.monotonic() + timeout
        last: Exception | None = None
        while clock.monotonic() < end:
            try:
                dev = self.open(timeout=1.0)
                return dev.hello()
            except DeviceError as exc:
                last = exc
                self.close_devices()
                clock.sleep(0.5)
        raise AssertionError(f"the {self.kind} did not answer within {timeout} s after the reset: {last}")

    def stop(self) -> None:
        self.close_devices()
        if self.vt is not None:
            self.vt.stop()
            self.vt = None

    @property
    def log(self) -> str:
        return "\n".join(self.vt.log[-20:]) if self.vt else ""
