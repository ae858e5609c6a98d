"""knip app says in its terminal what the page says went wrong with the
trainer: with --no-browser (or a browser that did not open) nothing else
tells her that the port she gave is not there."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

from knip_host.commands.app import TerminalNotes


def test_a_port_that_is_not_there_is_said_in_the_terminal(tmp_path):
    knip = os.path.join(os.path.dirname(sys.executable), "knip")
    proc = subprocess.Popen([knip, "app", "--port", str(tmp_path / "ttyUSB9"), "--no-browser",
                             "--db", str(tmp_path / "k.sqlite3")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 30
        err = ""
        while time.monotonic() < end and "knip app: trainer:" not in err:
            line = proc.stderr.readline()
            if not line:
                break
            err += line
    finally:
        proc.send_signal(signal.SIGTERM)
        out, rest = proc.communicate(timeout=10)
    assert f"knip app: trainer: no serial port {tmp_path / 'ttyUSB9'}" in err, err + rest
    assert "'knip devices' lists the ports" in err
    assert "knip app is running at http://127.0.0.1:" in out


def test_each_problem_once_until_it_changes():
    out = io.StringIO()
    note = TerminalNotes(out)
    for msg in ({"type": "trainer", "state": "connecting", "error": None},
                {"type": "trainer", "state": "disconnected", "error": "no serial port X"},
                {"type": "trainer", "state": "disconnected", "error": "no serial port X"},
                {"type": "live", "samples": [1, 2]},
                {"type": "sync", "state": "failed", "error": "the trainer stopped answering"},
                {"type": "trainer", "state": "connected", "error": None},
                {"type": "trainer", "state": "disconnected", "error": "no serial port X"}):
        note(msg)
    assert out.getvalue().splitlines() == [
        "knip app: trainer: no serial port X",
        "knip app: sync failed: the trainer stopped answering",
        "knip app: trainer: no serial port X"]
