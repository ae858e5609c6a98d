"""The board's serial port as flash and deploy need it: there, and held by
no other program; when a tool finds it busy, who holds it."""
from __future__ import annotations

import os

from ..ports import BUSY_HINT, is_windows_port, port_holders, ports_listing
from ..usage import UsageError
from .tools import FirmwareError


def check_port(port: str) -> None:
    """A clear error when the port is missing or another program holds it."""
    if not port:
        raise UsageError("no port given: add --port PORT (e.g. /dev/ttyUSB0; 'knip devices' lists ports)")
    if port == "sim":
        raise UsageError("--port sim is the virtual trainer, which has no flash: give the ESP32's serial port")
    if not is_windows_port(port) and not os.path.exists(port):
        raise FirmwareError(f"no serial port {port}: is the board plugged in? {ports_listing()}")
    holders = port_holders(port)
    if holders:
        raise FirmwareError(f"{port} is busy: in use by {', '.join(holders)}; close that program "
                            f"(likely {BUSY_HINT}), then run again")


def busy_error(port: str) -> FirmwareError:
    """A tool could not open `port`: who holds it, if anyone can tell."""
    holders = port_holders(port)
    who = f"in use by {', '.join(holders)}" if holders else "another program may have it open"
    return FirmwareError(f"{port} is busy ({who}); close it (likely {BUSY_HINT}), then run again")
