"""Serial ports: which there are (ESP32-like ones marked), which one a
command takes when none is given, and which programs hold one open."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from serial.tools import list_ports

from .device import DeviceError
from .holders import file_holders

# USB-serial bridges found on ESP32 boards (vendor id, product id)
ESP32_USB = {(0x10C4, 0xEA60): "CP210x", (0x1A86, 0x7523): "CH340", (0x1A86, 0x55D4): "CH9102",
             (0x0403, 0x6001): "FT232", (0x303A, 0x1001): "ESP32-S3/C3 USB"}

# who usually holds a trainer's or a board's port
BUSY_HINT = ("`knip live` or `knip sim` in another terminal, a serial monitor (screen, minicom, "
             "picocom, the Arduino IDE, Thonny) or ModemManager (sudo systemctl stop ModemManager)")


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


def ports_listing() -> str:
    """One line naming the serial ports here, for error messages."""
    ports = serial_ports()
    if not ports:
        return ("no serial ports found: plug the board in with a data cable (a charge-only cable "
                "shows no port)")
    return "serial ports here: " + ", ".join(p.device + (" (ESP32?)" if p.likely else "") for p in ports)


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
    if not likely:
        what = (f"the only serial port, {ports[0].device} ({ports[0].description or 'no description'}), "
                "does not look like an ESP32 board" if len(ports) == 1 else
                f"none of the serial ports ({', '.join(p.device for p in ports)}) looks like an ESP32 board")
        raise DeviceError(f"no trainer found: {what}. Plug the trainer in with a data cable, or if one "
                          "of these is it, name it with --port PORT (or set KNIP_PORT); --port sim uses "
                          "the virtual trainer")
    listing = ", ".join(p.device for p in likely)
    raise DeviceError(f"more than one possible trainer ({listing}): choose one with --port PORT "
                      "(or set KNIP_PORT); --port sim uses the virtual trainer")


def is_windows_port(port: str) -> bool:
    return bool(re.fullmatch(r"COM\d+", port, re.IGNORECASE))


def port_holders(port: str) -> list[str]:
    """Programs that have `port` open (Linux /proc; empty elsewhere)."""
    return file_holders(port)
