"""`knip analyze` holds its data compactly: the memory it needs grows by at
most 3 bytes for each byte of the file (bench/analyze_mem.py measures it on
20 MB for `make bench`; here the growth between a small and a larger file,
which leaves out what any run needs, such as imported code).

The larger file is 1 MB (about 1,000 s at 100 Hz, 50 squeezes): under
tracemalloc the analysis runs about 14 times slower than without (every
integer of the CPython kernels is a traced allocation), so each MB costs
about 11 s here. What grows with the file (the parsed rows, the per-squeeze
results) is the same at 1 MB as at 1.5 MB: 1.87 bytes a file byte from 0.1
to 1.0 MB, 1.84 to 1.5 MB. One untraced run first does the imports, so
their memory is not counted in the small file's peak (it would hide growth:
with it counted, the figure read 1.1 on 1.5 MB)."""
from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import analyze_mem as AM  # noqa: E402


def test_peak_memory_grows_less_than_three_times_the_file(tmp_path):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    AM.write_csv(small, 0.1)
    AM.write_csv(large, 1.0)
    with contextlib.redirect_stdout(io.StringIO()):
        AM.speed(small)                  # imports and first-call caches, untraced
    a, b = AM.measure(small), AM.measure(large)
    growth = (b["peak_bytes"] - a["peak_bytes"]) / (b["file_bytes"] - a["file_bytes"])
    assert growth <= AM.TARGET_RATIO, (a, b, growth)
