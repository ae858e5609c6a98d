"""The 32-bit unix port with firmware/manifest.py frozen in (../shared/tools/mp32),
which tests/test_frozen.py runs.

The build is about 45 s of CPU (make -j on every core). `make test` starts it
at once, beside `make setup`'s pip install (on a fresh clone pip keeps one
core busy for half a minute and leaves the other idle), into a new folder it
hands pytest as $KNIP_MP32_PREBUILD and removes afterwards. The fixture in
test_frozen.py waits for that build and takes its port when the key (what it
was built from: the tool, the manifest, the frozen sources and the marker)
is the one of the tree it tests, else it builds its own, as a plain
`pytest` run does. Standard library only: it runs before the venv exists.

    python3 tests/mp32_prebuild.py OUT_DIR     # OUT_DIR/port/micropython, rc, log, key
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "firmware" / "manifest.py"
MP32 = ROOT.parent / "shared" / "tools" / "mp32"
if str(ROOT / "host") not in sys.path:
    sys.path.insert(0, str(ROOT / "host"))

from knip_host.esp32 import frozen as F  # noqa: E402  (standard library only, like the manifest)


def key() -> str:
    """What the port is built from, as far as this tree decides it."""
    h = hashlib.sha256()
    for part in (MP32.read_bytes(), MANIFEST.read_bytes(), F.MP32_MPY_CROSS_FLAGS.encode(),
                 F.source_digest(F.frozen_sources()).encode(), F.marker_source().encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def build(out: Path, timeout: float = 1500, own_group: bool = False) -> tuple[int, str]:
    """Build into out/port; returns (exit status, output). Writes out/key
    first and out/rc last, so a waiting reader sees a finished build. With
    own_group (make test's background build) the compilers run in a process
    group of their own, which goes when this process is told to stop."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "key").write_text(key())
    proc = subprocess.Popen(["bash", str(MP32), str(out / "port"), str(MANIFEST)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=F.mp32_env(), start_new_session=own_group)

    def stop(signum, _frame):                  # make test ended early: the compilers go too
        os.killpg(proc.pid, signal.SIGTERM)
        raise SystemExit(128 + signum)
    if own_group:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        (os.killpg if own_group else os.kill)(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        log += f"\nmp32: no port after {timeout:g} s"
    (out / "log").write_text(log)
    (out / "rc").write_text(str(proc.returncode))
    return proc.returncode, log


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def wait_for(out: Path, timeout: float = 1500) -> tuple[int, str] | None:
    """The result of the build make test runs into out: (exit status,
    output) once it has ended; None when it is not for this tree, or there
    is no such build (out/pid, written by make as it starts it) or it went
    without finishing."""
    end = time.monotonic() + timeout
    while not (out / "rc").exists():
        try:                                  # make writes it as it starts the build
            pid = int((out / "pid").read_text())
        except (OSError, ValueError):
            return None
        if time.monotonic() > end or (not _alive(pid) and not (out / "rc").exists()):
            return None
        time.sleep(0.2)
    if (out / "key").read_text() != key():
        return None
    return int((out / "rc").read_text()), (out / "log").read_text()


def main(argv: list[str]) -> int:
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    if not MP32.exists():
        return 0                              # test_frozen.py skips and says why
    try:
        rc, _ = build(out, own_group=True)
    except Exception as exc:                  # noqa: BLE001  (the fixture shows it)
        (out / "log").write_text(f"mp32_prebuild: {exc!r}")
        (out / "key").write_text("")         # matches no tree: the fixture builds its own
        (out / "rc").write_text("1")
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
