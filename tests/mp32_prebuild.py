"""make test's background build of the 32-bit unix port with
firmware/manifest.py frozen in (knip_host.esp32.mp32), which
tests/test_frozen.py runs.

The build is about 70 s of CPU (make -j on every core). `make test` starts it
at once, beside `make setup`'s pip install (on a fresh clone pip keeps one
core busy for half a minute and leaves the other idle), into a new folder it
hands pytest as $KNIP_MP32_PREBUILD and removes afterwards. The fixture in
test_frozen.py waits for that build and takes its port when its key (what
it was built from, knip_host.esp32.mp32.key) is the one of the tree it
tests, else it builds its own, as a plain `pytest` run does. A port built
once is kept in a cache under that key (KNIP_MP32_CACHE=off always
builds). Standard library only: it runs before the venv exists.

    python3 tests/mp32_prebuild.py OUT_DIR     # OUT_DIR/port/micropython, rc, log, key
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "host") not in sys.path:
    sys.path.insert(0, str(ROOT / "host"))

from knip_host.esp32 import mp32 as P  # noqa: E402  (standard library only)


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
    if (out / "key").read_text() != P.key():
        return None
    return int((out / "rc").read_text()), (out / "log").read_text()


def main(argv: list[str]) -> int:
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    try:
        if not P.MP32.exists():
            return 0                          # test_frozen.py skips and says why
        try:
            rc, _ = P.build(out, own_group=True)
        except Exception as exc:              # noqa: BLE001  (the fixture shows it)
            (out / "log").write_text(f"mp32_prebuild: {exc!r}")
            (out / "key").write_text("")     # matches no tree: the fixture builds its own
            P.write_rc(out, 1)
            return 1
        return rc
    finally:
        # make test's trap stops a build still running, by its pid; once this
        # is here that pid may already be another process's (a cache hit ends
        # within a second)
        (out / "done").write_text("")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
