"""HIL figures on the virtual trainer running the ESP32 board code: the
hil-loopback profile's DAC user plays the tests/hil program's squeezes into
the simulated ADC, and the board's detector must find them. Reports how far
each detected onset, duration and amplitude is from what was played (the
same measure `make hil PORT=...` checks on a real board)."""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "hil"))

from rig import SQUEEZE_CMH2O, Rig, play_hil  # noqa: E402


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(None, Path(tmp)).start()
        try:
            dev = rig.open()
            t0 = time.monotonic()
            _sid, _ends, _rep, _db, s = play_hil(dev, Path(tmp) / "hil.sqlite3", rig.kind, timeout=120)
            wall = time.monotonic() - t0
        finally:
            rig.stop()
    cued = [c for c in s.cues if c["cue"] == "squeeze"]
    found = [e for e in s.events if e["kind"] == "squeeze"]
    pairs = list(zip(cued, found))
    onset = [1000 * (e["onset_s"] - c["t_ms"] / 1000) for c, e in pairs]
    dur = [1000 * (e["duration_s"] - c["dur_ms"] / 1000) for c, e in pairs]
    amp = [100 * (e["amplitude"] / SQUEEZE_CMH2O - 1) for _c, e in pairs]
    return {"board": "virtual trainer (espboard on simboard/esp32_machine)", "profile": "hil-loopback",
            "squeezes_played": len(cued), "squeezes_found": len(found),
            "onset_after_cue_ms": {"median": round(statistics.median(onset)), "max": round(max(onset))},
            "duration_error_ms": {"median": round(statistics.median(dur)), "max_abs": round(max(map(abs, dur)))},
            "amplitude_error_pct": {"median": round(statistics.median(amp), 1),
                                    "max_abs": round(max(map(abs, amp)), 1)},
            "samples": len(s.values), "samples_lost": s.summary.get("gaps"), "wall_s": round(wall, 1)}


def print_hil(res: dict) -> None:
    print(f"\nHIL loopback on the {res['board']}")
    print(f"  squeezes: {res['squeezes_found']} found of {res['squeezes_played']} played; "
          f"onset after the cue: median {res['onset_after_cue_ms']['median']} ms, "
          f"max {res['onset_after_cue_ms']['max']} ms")
    print(f"  duration error: median {res['duration_error_ms']['median']} ms, max |{res['duration_error_ms']['max_abs']}| ms;"
          f" amplitude error: median {res['amplitude_error_pct']['median']} %, "
          f"max |{res['amplitude_error_pct']['max_abs']}| %")
    print(f"  samples: {res['samples']}, lost {res['samples_lost']}")


if __name__ == "__main__":
    r = run()
    print_hil(r)
