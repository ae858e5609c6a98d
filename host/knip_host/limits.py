"""What the device's detector can take, checked where samples enter the host
(a recording file, --rate, arrays given to knip_host.analysis), so that bad
input is one clear message instead of an overflow deep in the detector.

The detector (firmware/knip) counts time in whole milliseconds held in 32-bit
integers, so a sample period is at least 1 ms and every time must lie within
2**30 ms (about 12 days, with room to spare) of zero. Each check returns what
is wrong and what to do, or None; the caller adds where (file, line, option).
"""
from __future__ import annotations

import math

RATE_MIN_HZ = 0.1              # one sample every 10 s: slower shows no squeeze
RATE_MAX_HZ = 1000.0           # a period of 1 ms: the detector's time step
EMG_MIN_HZ = 200.0             # raw EMG: its band is 20-450 Hz and the chain high-passes at 40 Hz
RATE_SLACK = 1e-6              # rounding in a time column (1/0.000999999... Hz)
TIME_LIMIT_S = 2 ** 30 / 1000  # about 12.4 days either side of 0
VALUE_LIMIT = 1e12             # beyond any sensor's reading in any unit


def rate_problem(rate_hz: float, hint: str = "") -> str | None:
    """Why `rate_hz` cannot be analysed (None: it can); `hint` says what to do instead."""
    try:
        rate_hz = float(rate_hz)
    except (TypeError, ValueError):
        return f"the sampling rate must be a number of Hz, not {rate_hz!r}" + _then(hint)
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        return f"the sampling rate must be a positive number of Hz, not {rate_hz}" + _then(hint)
    if rate_hz < RATE_MIN_HZ:
        return (f"{rate_hz:.4g} Hz is too slow: the detector needs at least one sample every "
                f"{1 / RATE_MIN_HZ:g} s" + _then(hint))
    if rate_hz > RATE_MAX_HZ * (1 + RATE_SLACK):
        return (f"{rate_hz:.6g} Hz is too fast: the detector counts time in whole milliseconds, "
                f"so at most {RATE_MAX_HZ:g} samples a second; resample the recording to "
                f"{RATE_MAX_HZ:g} Hz or less")
    return None


def signal_problem(signal: str, rate_hz: float) -> str | None:
    """Why samples at `rate_hz` cannot be `signal` (None: they can)."""
    if signal == "emg" and rate_hz < EMG_MIN_HZ:
        return (f"raw EMG needs at least {EMG_MIN_HZ:g} samples a second (its band is 20-450 Hz) and this "
                f"recording has {rate_hz:.4g}: if it is pressure, give --signal pressure")
    return None


def times_problem(first_s: float, last_s: float) -> str | None:
    """Why times from `first_s` to `last_s` cannot be analysed (None: they can)."""
    if not (math.isfinite(first_s) and math.isfinite(last_s)):
        return "the times hold NaN or infinite values; fix or cut those rows"
    lo, hi = min(first_s, last_s), max(first_s, last_s)
    if lo <= -TIME_LIMIT_S or hi >= TIME_LIMIT_S:     # (-2**30 ms is the input guard's "none")
        return (f"times run from {lo:.6g} s to {hi:.6g} s, beyond the detector's clock "
                f"(+-{TIME_LIMIT_S:.0f} s, about 12 days, in 32-bit milliseconds); if the times "
                f"are not in seconds name the column for its unit (time_ms for milliseconds), "
                f"if they are clock times subtract the first time from every row, and split a "
                f"recording longer than 12 days")
    return None


def _then(hint: str) -> str:
    return f"; {hint}" if hint else ""
