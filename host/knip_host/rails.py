"""A recording's sensor rails, read from the samples themselves.

A sensor driven past its range (a probe squeezed against the pelvic bone, an
electrode lead tugged) reads its rail: the very same value, sample after
sample, at the recording's very top or bottom. A live muscle never does that.
On the device the driver knows its ADC's range and says so; a file does not,
so `knip analyze` finds the rail here and hands its samples to the chain as
saturation, so that a ramp into the rail is never counted as a squeeze.

A rail is the recording's extreme value held exactly for RAIL_MS (and at
least RAIL_SAMPLES samples), reached or left by a step of at least
STEP_QUANTA times the data's quantum (its smallest step): a natural peak of
coarsely quantised data (whole mmHg, say) is reached by one quantum at a
time, a rail is hit. Fine-grained data held sample-and-hold (a 20 Hz
sensor exported at 100 Hz repeats each value 5 times) must hold its extreme
HOLD_RUNS times as long as it holds any value on average. And a rail is
the exception: a value that holds more than RAIL_SHARE of the recording is where the signal rests (an envelope at the
ADC's floor, a sensor that cannot read below zero), not where it was
driven.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .runs import true_runs

RAIL_MS = 50.0          # held this long at the extreme ... (as the loader's flat top)
RAIL_SAMPLES = 3        # ... and this many samples
STEP_QUANTA = 4         # reached or left by this many quanta at once
RAIL_SHARE = 0.1        # at most this share of the samples
HOLD_RUNS = 4           # ... and this many times the recording's mean run of one value
FINE = 1e-4             # (fine-grained data: its quantum below this share of its range)
_BLOCK = 1 << 16


class Rails(NamedTuple):
    lo: float | None    # the bottom rail's value, None: never reached
    hi: float | None    # the top rail's value


def quantum(v: np.ndarray) -> float:
    """The smallest step between neighbouring finite samples (0.0 if none),
    a block at a time (no copy of the whole recording)."""
    return _steps(v)[0]


def _steps(v: np.ndarray) -> tuple[float, float]:
    # (the smallest step, the mean run of one value in samples)
    q = np.inf
    moves = 0
    for k in range(0, len(v), _BLOCK):
        d = np.abs(np.diff(v[k:k + _BLOCK + 1]))
        moves += int(np.count_nonzero(d))         # (nan counts as a move)
        d = d[np.isfinite(d) & (d > 0)]
        if len(d):
            q = min(q, float(d.min()))
    return (0.0 if q == np.inf else q), len(v) / (moves + 1)


def _is_rail(v: np.ndarray, e: float, need: int, step: float) -> bool:
    at = v == e
    n = len(v)
    if np.count_nonzero(at) > RAIL_SHARE * n:
        return False
    starts, lengths = true_runs(at)
    del at
    for s, k in zip(starts.tolist(), lengths.tolist()):
        if k < need:
            continue
        # (at the recording's ends, or next to a gap (nan), there is no step)
        into = abs(e - v[s - 1]) if s > 0 else 0.0
        out = abs(v[s + k] - e) if s + k < n else 0.0
        if into >= step or out >= step:
            return True
    return False


def find_rails(values: np.ndarray, rate_hz: float) -> Rails:
    """The rails a recording (float samples; NaN for missing) sits on."""
    v = np.asarray(values, dtype=np.float64)
    fin = np.isfinite(v)
    if not fin.any():
        return Rails(None, None)
    top = float(np.max(v, where=fin, initial=-np.inf))
    bottom = float(np.min(v, where=fin, initial=np.inf))
    del fin
    if top == bottom:
        return Rails(None, None)          # one value throughout: flat, not railed
    q, run = _steps(v)
    need = max(RAIL_SAMPLES, int(np.ceil(RAIL_MS * rate_hz / 1000.0)))
    if q < (top - bottom) * FINE:
        # fine-grained values repeat only where the export held them
        need = max(need, int(np.ceil(HOLD_RUNS * run)))
    step = STEP_QUANTA * q
    return Rails(bottom if _is_rail(v, bottom, need, step) else None,
                 top if _is_rail(v, top, need, step) else None)
