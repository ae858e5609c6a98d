"""The ESP32 board code under the real MicroPython unix port, on the virtual
trainer's simulated machine: profile -> drivers -> sampler -> ring with the
HIL loopback, zero heap per sample, the button (pain scores, BLE pairing,
forgetting every laptop), the battery curve and every way boot refuses to
start while keeping the REPL."""
from __future__ import annotations

import pytest

from conftest import ROOT

pytestmark = pytest.mark.micropython


def test_espboard_checks_pass_under_micropython(mpy):
    out = mpy(ROOT / "tests" / "mp" / "run_tests.py", "espboard_checks", heap="16m")
    tally = out.strip().splitlines()[-1]
    passed, failed = int(tally.split()[0]), int(tally.split()[2])
    assert failed == 0 and passed >= 8, out
