"""The session store under MicroPython on real littlefs: the portable tests
(tests/mp/test_core_store.py), and a real kill of a recording process whose
flash is an image file, followed by a boot that recovers the session."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from conftest import FIRMWARE, ROOT, micropython_path

MP = ROOT / "tests" / "mp"
pytestmark = pytest.mark.micropython


def test_store_tests_pass_under_micropython(mpy):
    out = mpy(MP / "run_tests.py", "test_core_store", heap="64m")
    tally = out.strip().splitlines()[-1]
    passed, failed = int(tally.split()[0]), int(tally.split()[2])
    assert failed == 0 and passed >= 10, out


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.4])
def test_killed_recording_is_recovered(tmp_path, mpy, delay):
    exe = micropython_path()
    if exe is None:
        pytest.fail("micropython not found: run `make setup`")
    image = tmp_path / "flash.img"
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:{MP}")
    proc = subprocess.Popen([exe, "-X", "heapsize=8m", str(MP / "store_kill.py"), "write", str(image)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == b"ready", (line, proc.stderr.read())
        if delay:
            import time
            time.sleep(delay)           # kill it mid-write, wherever it is
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    out = mpy(MP / "store_kill.py", "recover", str(image)).split()
    got = dict(zip(out[0::2], out[1::2]))
    assert got["recovered"] == "1" and got["closed"] == "True" and got["error"] == "None", out
    assert int(got["records"]) >= 485 and got["size"] == out[-1], out
    # a second boot finds nothing to do and the records are unchanged
    again = mpy(MP / "store_kill.py", "recover", str(image)).split()
    assert again[1] == "0" and again[2:] == out[2:], again
