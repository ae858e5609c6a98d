"""A synced training session as the host sees it: decoded from the device's
session file (the bytes are kept verbatim in the database, this is a view)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Session:
    device_id: str                 # e.g. "sim-0001" or the ESP32's MAC as hex
    session_id: int                # the device's session number (unique per device)
    start_epoch: int | None        # Unix seconds when it started; None if the device clock was unset
    signal: str                    # "pressure" or "emg"
    unit: str                      # "cmH2O" or "uV"
    counts_per_unit: float         # sample counts per unit (pressure: 20 counts = 1 cmH2O)
    rate_hz: float
    program: str                   # program name ("" for free training)
    firmware: str = ""
    t_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))      # ms since start
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))    # counts
    abd: np.ndarray | None = None  # abdominal channel counts, or None with one channel
    records: list[tuple[int, ...]] = field(default_factory=list)   # detector records (knip.record R_*)
    events: list[dict[str, Any]] = field(default_factory=list)     # analysis.record_to_event dicts
    cues: list[dict[str, Any]] = field(default_factory=list)       # {"t_ms","cue","phase","rep","reps","dur_ms","target_pct"}
    gaps: list[tuple[int, int]] = field(default_factory=list)      # (sample index, samples missing)
    summary: dict[str, Any] = field(default_factory=dict)          # the device's end-of-session summary
    verdicts: list[dict[str, Any]] = field(default_factory=list)   # coaching.verdict_dict per rep / rest window
    verdict_tuples: list[tuple[int, ...]] = field(default_factory=list)  # as the device stored them
    pain: dict[str, int | None] = field(default_factory=lambda: {"before": None, "after": None})
    scores: dict[str, Any] = field(default_factory=dict)            # knip.scores.session_scores
    header: dict[str, Any] = field(default_factory=dict)           # the session header as stored
    complete: bool = True          # ended normally (False: recovered after a power cut)
    size: int = 0                  # bytes of the session file
    store_id: str = ""             # the device's session store (a reflash makes a new one); "" unknown
    label: str = ""                # the device as the database names this store ("" = device_id)
    damage: dict[str, Any] = field(default_factory=dict)   # salvage.Damage.to_json(); {} when intact
    problems: list[str] = field(default_factory=list)      # values that made no sense (e.g. the date)

    @property
    def key(self) -> str:
        """Stable name used on the command line: DEVICE/NUMBER (DEVICE~2/NUMBER
        for the sessions of a store after a reset, see SessionDatabase)."""
        return f"{self.label or self.device_id}/{self.session_id}"

    @property
    def duration_s(self) -> float:
        """Time covered by the samples: to the end of the last one's period
        (as for a Recording), so 1500 samples at 100 Hz are 15 s, not 14.99."""
        if not len(self.t_ms):
            return 0.0
        return float(self.t_ms[-1]) / 1000.0 + (1.0 / self.rate_hz if self.rate_hz > 0 else 0.0)

    def level(self) -> np.ndarray:
        """Samples in the signal's unit."""
        return self.values / float(self.counts_per_unit)
