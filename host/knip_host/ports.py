"""Finding and opening trainers: serial ports, BLE (when bleak and an
adapter exist) and the virtual trainer behind `--port sim`."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

from serial.tools import list_ports

from .device import Device, DeviceError
from .simulator import VirtualTrainer

# USB-serial bridges found on ESP32 boards (vendor id, product id)
ESP32_USB = {(0x10C4, 0xEA60): "CP210x", (0x1A86, 0x7523): "CH340", (0x1A86, 0x55D4): "CH9102",
             (0x0403, 0x6001): "FT232", (0x303A, 0x1001): "ESP32-S3/C3 USB"}


@dataclass
class Port:
    device: str
    description: str
    likely: bool          # looks like an ESP32 board

    def row(self) -> str:
        return f"{self.device:<22} {'ESP32? ' if self.likely else '       '} {self.description}"


def serial_ports() -> list[Port]:
    out = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        vidpid = (p.vid, p.pid) if p.vid is not None else None
        chip = ESP32_USB.get(vidpid) if vidpid else None
        desc = p.description if p.description and p.description != "n/a" else (p.hwid or "")
        if chip:
            desc = f"{desc} ({chip})"
        out.append(Port(p.device, desc, chip is not None))
    return out


def ble_trainers(timeout: float = 4.0) -> tuple[list[tuple[str, str]], str | None]:
    """(name, address) of advertising trainers, and a note when BLE is not usable."""
    try:
        import asyncio

        from bleak import BleakScanner  # type: ignore[import-not-found]
    except ImportError:
        return [], "BLE: not scanned (install bleak: make setup, or pip install bleak)"
    nus = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
    try:
        found = asyncio.run(BleakScanner.discover(timeout=timeout, return_adv=True))
    except Exception as exc:     # no adapter, BlueZ not running, permissions
        return [], f"BLE: no usable adapter ({exc})"
    out = []
    for dev, adv in found.values():
        name = adv.local_name or dev.name or ""
        if nus in [u.lower() for u in adv.service_uuids] or name.lower().startswith("knip"):
            out.append((name, dev.address))
    return out, None


def default_port() -> str:
    env = os.environ.get("KNIP_PORT")
    if env:
        return env
    ports = serial_ports()
    likely = [p for p in ports if p.likely]
    if len(likely) == 1:
        return likely[0].device
    if not ports:
        raise DeviceError("no serial ports found: plug in the trainer, or try the virtual one with --port sim")
    listing = ", ".join(p.device for p in (likely or ports))
    raise DeviceError(f"more than one possible trainer ({listing}): choose one with --port PORT "
                      "(or set KNIP_PORT); --port sim uses the virtual trainer")


@contextlib.contextmanager
def connect(port: str | None, *, sim: dict[str, Any] | None = None, timeout: float = 3.0,
            ble: str | None = None, pair: bool = False) -> Iterator[Device]:
    """Open a trainer; `sim` starts (and afterwards stops) a virtual one.

    `ble` (a name or address) connects over Bluetooth LE instead; `pair`
    forgets an old pairing and pairs anew (the trainer must be in pairing
    mode: its button held 3 s). The CLI passes them
    inside its port options, so `sim` may carry "ble" and "pair" too."""
    sim = dict(sim or {})
    ble = sim.pop("ble", None) or ble
    pair = bool(sim.pop("pair", False)) or pair
    if ble:
        if port:
            raise DeviceError(f"choose one link: --port {port} or --ble {ble}, not both")
        from .ble import BleSerial
        dev = Device(f"BLE:{ble}", ser=BleSerial(ble, pair=pair), timeout=timeout)
        try:
            dev.sim = None             # type: ignore[attr-defined]
            yield dev
        finally:
            dev.close()
        return
    if pair:
        raise DeviceError("--pair is for Bluetooth: use it with --ble NAME_OR_ADDRESS")
    port = port or default_port()
    trainer = None
    if port == "sim":
        trainer = VirtualTrainer(**sim).start()
        port = trainer.port
    try:
        dev = Device(port, timeout=timeout)
        try:
            dev.sim = trainer          # type: ignore[attr-defined]
            yield dev
        finally:
            dev.close()
    finally:
        if trainer is not None:
            trainer.stop()
