"""ProgressBar: a plain progress bar on stderr (only when stderr is a terminal),
for downloads such as `knip sync` fetching a session."""
from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, total: int, label: str, *, unit: str = "B", stream=None, enabled: bool | None = None):
        self.total = max(1, total)
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self.t0 = time.monotonic()
        self._last = 0.0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or done >= self.total):
            self._last = now
            frac = min(1.0, done / self.total)
            width = 28
            fill = int(frac * width)
            rate = done / max(1e-6, now - self.t0)
            self.stream.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {frac * 100:5.1f}% "
                              f"{self._n(done)}/{self._n(self.total)}{self.unit} {self._n(rate)}{self.unit}/s ")
            self.stream.flush()

    def _n(self, x: float) -> str:
        # bytes in KiB and MiB, as knip sync's summary gives them; anything else in k, M
        return _human(x, 1024, "i") if self.unit == "B" else _human(x, 1000, "")

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _human(x: float, step: int, binary: str) -> str:
    for unit in ("", "K" if binary else "k", "M", "G"):
        if abs(x) < step:
            return f"{x:.0f}" if unit == "" else f"{x:.1f}{unit}{binary}"
        x /= step
    return f"{x:.1f}T{binary}"
