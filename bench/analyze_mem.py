"""`knip analyze` on a large CSV: peak memory against the file's size, and
speed. The CSV is generated here (two pressure channels at 100 Hz, a squeeze
every 20 s, a few NaN dropouts), so the figure is the same on every machine.

Peak memory is what tracemalloc sees (Python objects and numpy buffers)
while one `knip analyze FILE --json` runs in-process: load, choose, analyse,
print (to a throwaway stream). What grows with the file (the parsed rows, the
per-squeeze results) is about 1.9 bytes a file byte from 0.1 to 1.5 MB; the
rest of the peak is fixed (imported code, first-call caches). This section
is the only check of the target: under tracemalloc a MB costs about 11 s.
Run alone for a quick figure:
    .venv/bin/python bench/analyze_mem.py [MB]
"""
from __future__ import annotations

import contextlib
import io
import math
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "host", ROOT / "firmware"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

RATE_HZ = 100
TARGET_RATIO = 3.0         # peak memory at most this many times the file size


def write_csv(path: Path, megabytes: float, abdominal: bool = False) -> int:
    """A pressure CSV of about `megabytes` MB: rest with a slow breathing
    ripple, a 5 s squeeze every 20 s, a NaN dropout every 1000 s, and with
    `abdominal` a second channel with a cough now and then. Returns the
    number of data rows."""
    target = int(megabytes * 1_000_000)
    size = 0
    i = 0
    with path.open("w", encoding="ascii", newline="\n") as f:
        f.write("# unit: cmH2O\ntime_s,pressure" + (",abdominal\n" if abdominal else "\n"))
        while size < target:
            rows = []
            for _ in range(1000):
                t = i / RATE_HZ
                cycle = t % 20.0
                ramp = max(0.0, min(1.0, (cycle - 10.0) / 0.8, (15.0 - cycle) / 0.8))
                p = 3.0 + 0.2 * math.sin(1.3 * t) + 28.0 * ramp
                a = 6.0 + 0.3 * math.sin(0.7 * t) + (9.0 if 2.0 <= t % 97.0 < 2.3 else 0.0)
                row = f"{t:.2f},nan" if i % 100_000 == 5_000 else f"{t:.2f},{p:.3f}"
                rows.append(row + f",{a:.3f}" if abdominal else row)
                i += 1
            text = "\n".join(rows) + "\n"
            f.write(text)
            size += len(text)
    return i


def measure(path: Path, *args: str) -> dict[str, Any]:
    """Peak traced memory and wall time of `knip analyze path --json *args`."""
    from knip_host.cli import main

    size = path.stat().st_size
    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["analyze", str(path), "--json", *args])
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if code != 0:
        raise RuntimeError(f"knip analyze {path.name} exited {code}: {err.getvalue().strip()}")
    return {"file_bytes": size, "peak_bytes": peak, "peak_over_file": round(peak / size, 3),
            "seconds_traced": round(wall, 2), "output_bytes": len(out.getvalue())}


def speed(path: Path) -> float:
    """Seconds for one `knip analyze --json` without tracing (tracemalloc slows Python down)."""
    from knip_host.cli import main

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        main(["analyze", str(path), "--json"])
    return time.perf_counter() - t0


def run(megabytes: float = 20.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        rows = write_csv(path, megabytes)
        res = measure(path)
        secs = speed(path)
    res.update({"what": f"knip analyze --json on a generated {megabytes:g} MB CSV "
                        f"(time_s, pressure at {RATE_HZ} Hz: narrow rows, the hardest case)",
                "rows": rows, "seconds": round(secs, 2), "rows_per_s": round(rows / secs) if secs else None,
                "target_ratio": TARGET_RATIO})
    return res


def summary_line(r: dict[str, Any]) -> str:
    return (f"{r['file_bytes'] / 1e6:.1f} MB CSV ({r['rows']} rows): peak {r['peak_bytes'] / 1e6:.1f} MB "
            f"traced ({r['peak_over_file']:.2f}x the file, target <= {r['target_ratio']:g}x), "
            f"{r['seconds']:.1f} s untraced ({r['rows_per_s']} rows/s)")


def print_analyze(r: dict[str, Any]) -> None:
    print("\nknip analyze on a large file (bench/analyze_mem.py)")
    print("  " + summary_line(r))


if __name__ == "__main__":
    print(summary_line(run(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0)))
