"""A length of time as people read it on a clock: m:ss, h:mm:ss from an hour on."""
from __future__ import annotations

import math


def minutes(seconds: float | None) -> str:
    """m:ss (h:mm:ss from an hour on); '-' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
