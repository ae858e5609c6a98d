"""Running the board tools (esptool, mpremote, mpflash) as subprocesses with
their output passed through as it comes; FirmwareError when a step fails."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading

from ..device import DeviceError


class FirmwareError(DeviceError):
    """Flashing or deploying failed; the message says what to do."""


def say(text: str) -> None:
    print(text, flush=True)


def stream(cmd: list[str], *, cwd: str | os.PathLike[str] | None = None, env: dict | None = None,
           echo: bool = True, timeout: float | None = None) -> tuple[int, str]:
    """Run a tool, pass its output through as it comes (progress bars too)
    and return (exit code, output). A tool still running after `timeout`
    seconds is killed (exit code -9)."""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, env=env)
    except FileNotFoundError as exc:
        raise FirmwareError(f"cannot run {cmd[0]} ({exc}); run 'make setup'") from None
    assert proc.stdout is not None
    watchdog = threading.Timer(timeout, proc.kill) if timeout else None
    if watchdog:
        watchdog.daemon = True
        watchdog.start()
    chunks: list[bytes] = []
    try:
        while True:
            data = proc.stdout.read1(4096)
            if not data:
                break
            chunks.append(data)
            if echo:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
    except KeyboardInterrupt:
        proc.kill()
        raise
    finally:
        if watchdog:
            watchdog.cancel()
    rc = proc.wait()
    return rc, b"".join(chunks).decode("utf-8", "replace")


def python_tool(module: str) -> list[str]:
    """The command line that runs a Python tool of this environment."""
    return [sys.executable, "-m", module]


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
