"""`knip analyze` holds its data compactly: the memory it needs grows by at
most 3 bytes for each byte of the file (bench/analyze_mem.py measures it on
20 MB for `make bench`; here the growth between a small and a larger file,
which leaves out what any run needs, such as imported code)."""
from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import analyze_mem as AM  # noqa: E402


def test_peak_memory_grows_less_than_three_times_the_file(tmp_path):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    AM.write_csv(small, 0.1)
    AM.write_csv(large, 1.5)
    a, b = AM.measure(small), AM.measure(large)
    growth = (b["peak_bytes"] - a["peak_bytes"]) / (b["file_bytes"] - a["file_bytes"])
    assert growth <= AM.TARGET_RATIO, (a, b, growth)
