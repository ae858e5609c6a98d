"""Runs of True in a boolean mask (missing samples, samples at a rail), found
with a byte a sample of scratch: the signal itself is never copied."""
from __future__ import annotations

import numpy as np


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of True in `mask`, in order."""
    padded = np.zeros(len(mask) + 2, dtype=np.int8)
    padded[1:-1] = mask
    edges = np.flatnonzero(np.diff(padded))
    starts = edges[0::2]
    return starts, edges[1::2] - starts
