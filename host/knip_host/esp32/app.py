"""The Knip app on a board, as flash and deploy meet it over the protocol:
its INFO when it runs, asking it to leave for the REPL, and waiting for it
to come up after a restart."""
from __future__ import annotations

import json
import re
import time
from typing import Any, Callable

from knip import protocol as P

from ..device import Device, DeviceError
from .tools import FirmwareError, say

BOOT_FAIL = re.compile(r"did not start|cannot load|safe mode|no profile|Traceback|Error")
# stripped from both ends of a start-up line: whitespace and the control bytes
# a REPL leaves on the line before main.py prints (raw REPL end markers \x04)
_NOISE = "".join(map(chr, range(33))) + "\x7f\ufffd"


def knip_app_info(port: str, timeout: float = 1.2) -> dict | None:
    """INFO from the Knip application if it runs on `port`, else None."""
    try:
        with Device(port, timeout=timeout) as dev:
            f = dev.request(P.HELLO, bytes([P.VERSION]), timeout=timeout, retries=0)
            return json.loads(f.payload)
    except (DeviceError, ValueError):
        return None


def request_repl(port: str) -> None:
    """Ask the running app to end (a session in progress is kept) and leave the REPL free."""
    try:
        with Device(port, timeout=2.0) as dev:
            dev.repl()
    except DeviceError:
        pass        # it may have left already; the version check tells


def wait_for_app(port: str, wait_s: float, safe_pin: int | None,
                 hello: Callable[[Any], dict] | None = None) -> dict:
    """After a reset: show the board's 'knip:' lines, then HELLO. When the
    app does not start, raise with the board's own words (they say why)."""
    deadline = time.monotonic() + wait_s
    lines: list[str] = []
    last_err: Exception | None = None
    while time.monotonic() < deadline:
        try:
            dev = Device(port, timeout=2.0)
        except DeviceError as exc:         # the USB port comes back after the reset
            last_err = exc
            time.sleep(0.5)
            continue
        try:
            _read_start_up(dev, lines, deadline, safe_pin)
            try:
                return (hello or (lambda d: d.hello()))(dev)
            except DeviceError as exc:
                last_err = exc
        finally:
            dev.close()
    shown = f"; the board said: {' | '.join(lines[-3:])}" if lines else ""
    raise FirmwareError(f"the Knip app did not answer on {port} within {wait_s:g} s after the restart "
                        f"({last_err}){shown}; open the REPL (`mpremote connect {port}`) and press EN "
                        "to read its start-up messages")


def _read_start_up(dev: Device, lines: list[str], deadline: float, safe_pin: int | None) -> None:
    """Pass the board's start-up lines on (into `lines` too) until it says it
    is ready or the wait is over; raise when they say the app did not start."""
    buf = b""
    ready = False
    failed = False
    until = time.monotonic() + min(8.0, max(1.0, deadline - time.monotonic()))
    while time.monotonic() < until and not ready:
        chunk = dev.ser.read(256)
        if not chunk:
            continue
        buf += chunk
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.decode("utf-8", "replace").strip(_NOISE)
            if not (line.startswith("knip:") or "Error" in line):
                continue
            lines.append(line)
            say(f"deploy: board: {line}")
            if " ready" in line:
                ready = True
            elif BOOT_FAIL.search(line) and not failed:
                failed = True
                until = min(until, time.monotonic() + 1.0)     # its next line says more
    if failed:
        pin = (f"; holding GPIO{safe_pin} at boot always leaves the REPL free"
               if safe_pin is not None else "")
        raise FirmwareError("the app did not start; the board says: " + " | ".join(lines[-3:]) + pin)

