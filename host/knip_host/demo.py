"""`make demo`: the whole system without hardware. A virtual trainer (the
real firmware under the MicroPython unix port, with a simulated woman who
follows its cues) first calibrates her (resting level and MVC), then runs
the 'daily' program — a sprint set of 10 quick squeezes and a marathon set
of 5 holds — while the terminal shows the live biofeedback and a verdict for
every squeeze; then the sessions are synced into a database, summarised
(scores, pain, rep by rep) and plotted, exactly as `knip live`, `knip sync`,
`knip show` and `knip plot` would do with a real trainer. Everything goes to
./out/demo/."""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from . import cli

OUT = Path("out") / "demo"
SPEED = 4.0          # the 2.5-minute program in about 40 s
CAL_SPEED = 12.0     # the 1.5-minute calibration in about 8 s


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    os.environ["KNIP_DATA"] = str(OUT)          # keep the demo away from your own sessions
    image = str(OUT / "trainer.img")
    t0 = time.monotonic()
    print(f"== 1. calibrate: resting level and MVC, at {CAL_SPEED:g}x real time ==")
    cal = ["--port", "sim", "--sim-image", image, "--sim-speed", str(CAL_SPEED)]
    rc = cli.main(["live", *cal, "--program", "calibrate", "--plain", "--pain-before", "2", "--pain-after", "2"])
    if rc:
        return rc
    print(f"\n== 2. live: the virtual trainer runs 'daily' at {SPEED:g}x real time ==")
    sim = ["--port", "sim", "--sim-image", image, "--sim-speed", str(SPEED)]
    rc = cli.main(["live", *sim, "--program", "daily", "--pain-before", "2", "--pain-after", "1"])
    if rc:
        return rc
    print("\n== 3. sync: fetch, verify, store, acknowledge ==")
    rc = cli.main(["sync", *sim])
    if rc:
        return rc
    print("\n== 4. show: scores, pain and a verdict for every squeeze ==")
    rc = cli.main(["show", "last"])
    if rc:
        return rc
    print("\n== 5. plot ==")
    png = OUT / "session.png"
    rc = cli.main(["plot", "last", "-o", str(png)])
    if rc:
        return rc
    print(f"\ndemo finished in {time.monotonic() - t0:.0f} s; database {OUT / 'knip.sqlite3'}, plot {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
