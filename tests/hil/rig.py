"""The board under test for tests/hil: a real ESP32 on a serial port
(flashed, deployed with hardware/profiles/hil-loopback.json, its DAC wired
to its ADC: hardware/HIL.md) or, without one, the virtual trainer running the
same ESP32 board code (firmware/espboard) on a simulated machine. Test
bodies only use this interface, so they are the same for both."""
from __future__ import annotations

import time
from pathlib import Path

import serial

from knip_host.device import Device, DeviceError
from knip_host.simulator import VirtualTrainer

ROOT = Path(__file__).resolve().parents[2]
HIL_PROFILE = ROOT / "hardware" / "profiles" / "hil-loopback.json"


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
            self.vt = VirtualTrainer(self.image, profile=HIL_PROFILE).start()
            self.port = self.vt.port
        return self

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
            self.vt = VirtualTrainer(self.image, profile=HIL_PROFILE).start()
            self.port = self.vt.port

    def wait_ready(self, timeout: float = 15.0) -> dict:
        """HELLO until the application answers (after a reset it boots first)."""
        end = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < end:
            try:
                dev = self.open(timeout=1.0)
                return dev.hello()
            except DeviceError as exc:
                last = exc
                self.close_devices()
                time.sleep(0.5)
        raise AssertionError(f"the {self.kind} did not answer within {timeout} s after the reset: {last}")

    def stop(self) -> None:
        self.close_devices()
        if self.vt is not None:
            self.vt.stop()
            self.vt = None

    @property
    def log(self) -> str:
        return "\n".join(self.vt.log[-20:]) if self.vt else ""
