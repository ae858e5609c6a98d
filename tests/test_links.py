"""The link plumbing (firmware/links/chunker.py, multi_link.py, ble_link.py):
the checks of tests/mp/links_checks.py, tests/mp/ble_checks.py and
tests/mp/ble_security_checks.py under the real MicroPython unix port (all of
them, with heap measurements and BleLink against the simulated radio of
tests/mp/sim_radio.py, on virtual time) and under CPython (the portable ones
of links_checks.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent    # (not from conftest: tests/hil has one too)
FIRMWARE = ROOT / "firmware"
MP = ROOT / "tests" / "mp"


@pytest.mark.micropython
def test_link_tests_pass_under_micropython(mpy, tmp_path, monkeypatch):
    monkeypatch.setenv("KNIP_TMP", str(tmp_path))      # bond files of the BleLink tests
    out = mpy(MP / "run_tests.py", "links_checks", "ble_checks", "ble_security_checks")
    tally = out.strip().splitlines()[-1]
    passed, failed = int(tally.split()[0]), int(tally.split()[2])
    names = [ln.split()[2] for ln in out.splitlines() if ln.startswith("PASS")]
    assert failed == 0 and passed >= 22, out
    assert sum(n.endswith("_mp") for n in names) >= 14, names     # heap and BleLink ran too
    assert sum(n.startswith("test_ble_") for n in names) >= 12, names
    heap = [ln for ln in out.splitlines() if ln.startswith("chunker heap")]
    assert heap and "32.0 B per chunk" in heap[0], out             # one memoryview per chunk on 64-bit


def _cpython_module():
    """tests/mp/links_checks.py loaded as a module (pytest does not collect it: it needs MicroPython for the _mp tests)."""
    if "mp_test_links" in sys.modules:
        return sys.modules["mp_test_links"]
    for p in (str(FIRMWARE), str(MP)):
        if p not in sys.path:
            sys.path.insert(0, p)
    spec = importlib.util.spec_from_file_location("mp_test_links", MP / "links_checks.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["mp_test_links"] = mod
    spec.loader.exec_module(mod)
    return mod


_NAMES = sorted(n for n in dir(_cpython_module()) if n.startswith("test_") and not n.endswith("_mp"))


@pytest.mark.parametrize("name", _NAMES)
def test_link_tests_pass_under_cpython(name):
    getattr(_cpython_module(), name)()


def test_cpython_ran_the_portable_ones():
    assert len(_NAMES) >= 8 and not any(n.endswith("_mp") for n in _NAMES)
