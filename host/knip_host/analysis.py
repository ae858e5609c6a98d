"""Run the device's own detector (the portable core, imported as `knip`) over
recordings and turn its integer records into readable events."""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from knip import record as D      # the detector's record layout
from knip import replay
from knip.chain import EmgChain, PressureChain
from knip.filters import X_MAX
from knip.thresholds import DetectorConfig

from . import limits
from .rails import Rails, find_rails
from .runs import true_runs

# Host-side integer scales (counts per signal unit) fed to the chains.
PRESSURE_COUNTS_PER_UNIT = 20      # 0.05 cmH2O (or mmHg) resolution, +-819 range
EMG_COUNTS_PER_UNIT = 1            # raw ADC counts (or 1 uV per count)
EMG_ENVELOPE_FRACTION = 16         # the RMS envelope comes out in 1/16 counts

SIGNALS = ("pressure", "emg")
BLOCK = 1 << 16           # samples converted at a time
NO_RAILS = Rails(None, None)


class AnalysisError(ValueError):
    """Input the detector cannot run on; the message says what to do."""


@dataclass
class Analysis:
    events: list[dict[str, Any]]
    summary: dict[str, Any]
    annotations: list[tuple[float, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    log: list[tuple[float, str, int]] = field(default_factory=list)
    # samples at rails where the caller has already warned the channel is
    # clipped (analyze_arrays' clipped_at): (signal, abdominal)
    rail_samples_told: tuple[int, int] = (0, 0)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"events": self.events, "summary": self.summary}
        if self.annotations:
            out["annotations"] = [{"time_s": t, "label": s} for t, s in self.annotations]
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def make_chain(signal: str, rate_hz: float, two_channel: bool):
    if signal == "emg":
        return EmgChain(rate_hz, two_channel=two_channel)
    if signal == "pressure":
        return PressureChain(rate_hz, two_channel=two_channel)
    raise AnalysisError(f"unknown signal {signal!r}: use one of {', '.join(SIGNALS)}")


_SPIKE_MS = DetectorConfig().min_squeeze_ms   # an unmarked artefact shorter is a spike
_MISSING = "missing (empty, NA, NaN, infinite, or a lone reading out of range)"   # what a gap in the input is
LONE_WILD_MS = 40           # a reading out of range this long at most: corrupt (_lone_wild) ...
LONE_APART_MS = 500         # ... with no other this near it (many: a signal clipping, saturation)


def counts(values: Any, per_unit: float, rails: Rails = NO_RAILS) -> tuple[array, np.ndarray, int]:
    """Scale to the chain's integers, clipped to +-X_MAX, as an array('i'):
    samples at a rail (knip_host.rails) become +-X_MAX, the chain's
    saturation.
    (counts, missing, how many were clipped). NaN and infinite values are
    missing: samples the chain never sees (a gap); their count is 0. Rounds
    half to even, as Python's round does. Works a block at a time, so it
    needs little beyond the 4 bytes a sample it returns."""
    v = np.asarray(values, dtype=np.float64)
    missing = ~np.isfinite(v)
    out = array("i")
    clipped = 0
    for k in range(0, len(v), BLOCK):
        c = v[k:k + BLOCK] * per_unit
        np.rint(c, out=c)
        c[missing[k:k + BLOCK]] = 0.0
        if rails.hi is not None:
            c[v[k:k + BLOCK] == rails.hi] = X_MAX
        if rails.lo is not None:
            c[v[k:k + BLOCK] == rails.lo] = -X_MAX
        clipped += int(np.count_nonzero(c > X_MAX)) + int(np.count_nonzero(c < -X_MAX))
        np.clip(c, -X_MAX, X_MAX, out=c)
        out.frombytes(c.astype(np.int32).tobytes())
    return out, missing, clipped


def to_counts(values: Sequence[float], per_unit: float) -> tuple[list[int | None], int]:
    """counts() as a list with None for each missing sample."""
    c, missing, clipped = counts(values, per_unit)
    return [None if m else v for v, m in zip(c, missing.tolist())], clipped


class Gappy:
    """Counts as replay.run reads them (xs[i]: a Python int, or None where
    the sample is missing), 5 bytes a sample instead of a list's 36."""

    __slots__ = ("_x", "_missing")

    def __init__(self, x: array, missing: np.ndarray) -> None:
        self._x = x
        self._missing = missing.tobytes()

    def __len__(self) -> int:
        return len(self._x)

    def __getitem__(self, i: int) -> int | None:
        return None if self._missing[i] else self._x[i]


def _feed(x: array, missing: np.ndarray) -> array | Gappy:
    return Gappy(x, missing) if missing.any() else x


def _held(a: array, missing: np.ndarray) -> list[tuple[int, int]]:
    """Fill the missing samples of a (in place) with the last one present
    (the first present, before it); returns the (start index, samples) runs."""
    v = np.frombuffer(a, dtype=np.int32).copy()
    idx = np.where(missing, 0, np.arange(len(v)))
    first = int(np.argmin(missing))
    idx[:first] = first
    np.maximum.accumulate(idx, out=idx)
    a[:] = array("i", v[idx].tobytes())
    starts, lengths = true_runs(missing)
    return [(int(i), int(k)) for i, k in zip(starts, lengths)]


def _abd_gap_events(events: list[dict[str, Any]], gaps: list[tuple[int, int]], ts: Sequence[int],
                    warnings: list[str]) -> None:
    """Squeezes over a gap in the abdominal channel: technique not judged."""
    spans = [(ts[i] / 1000.0, ts[min(i + k, len(ts) - 1)] / 1000.0) for i, k in gaps]
    hit = 0
    for e in events:
        if e["channel"] == "pelvic_floor" and e["technique"] is not None and \
                any(e["onset_s"] <= b and e["offset_s"] >= a for a, b in spans):
            e["technique"] = None
            hit += 1
    warnings.append(f"{sum(k for _, k in gaps)} abdominal samples are {_MISSING} in {len(gaps)} "
                    f"stretch(es), first at {spans[0][0]:.3f} s: the abdomen is held at its last value "
                    f"there, so no push or cough is seen in them and the technique of the {hit} "
                    f"event(s) over them is not judged")


def times_ms(times_s: Any) -> array:
    """Times in s as the detector's whole ms (array('i'): indexing gives the
    Python ints its arithmetic expects), after checking they fit its clock."""
    t = np.asarray(times_s, dtype=np.float64)
    if not np.isfinite(t).all():
        raise AnalysisError("the time column holds NaN or infinite values; fix or cut those rows")
    problem = limits.times_problem(float(t.min()), float(t.max()))
    if problem:
        raise AnalysisError(problem)
    out = array("i")
    for k in range(0, len(t), BLOCK):
        ms = t[k:k + BLOCK] * 1000.0
        out.frombytes(np.rint(ms, out=ms).astype(np.int32).tobytes())
    return out


def analyze_arrays(times_s: Sequence[float], values: Sequence[float], *, rate_hz: float,
                   signal: str = "pressure", abdominal: Sequence[float] | None = None,
                   unit: str = "", clipped_at: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
                   ) -> Analysis:
    """Feed samples through the exact device chain; return events and a summary.
    Takes lists or numpy arrays; holds about 9 bytes a sample while it runs.
    clipped_at: (signal, abdominal) values at which the caller has already
    warned that the channel is clipped; a rail found there is counted in
    rail_samples_told for that warning, not given one of its own."""
    n = len(values)
    if n == 0:
        raise AnalysisError("no samples to analyse")
    if len(times_s) != n or (abdominal is not None and len(abdominal) != n):
        raise AnalysisError("time, signal and abdominal columns differ in length")
    problem = limits.rate_problem(rate_hz) or limits.signal_problem(signal, rate_hz)
    if problem:
        raise AnalysisError(problem)
    per_unit = EMG_COUNTS_PER_UNIT if signal == "emg" else PRESSURE_COUNTS_PER_UNIT
    level_div = per_unit * (EMG_ENVELOPE_FRACTION if signal == "emg" else 1)
    warnings: list[str] = []
    x, missing, clipped, told = _channel(values, rate_hz, per_unit, unit, "", clipped_at[0], warnings)
    xs = _feed(x, missing)
    del x
    ab, clipped_a, told_a = None, 0, 0
    abd_gaps: list[tuple[int, int]] = []      # (first sample, samples) of each abdominal gap
    if abdominal is not None:
        a, a_missing, clipped_a, told_a = _channel(abdominal, rate_hz, per_unit, unit, "abdominal ",
                                                   clipped_at[1], warnings)
        if a_missing.all():
            warnings.append(f"every abdominal sample is {_MISSING}: analysed as one channel "
                            f"(technique not judged)")
            abdominal = None
        else:
            # a gap in the abdomen alone is no gap in the squeeze: it is held at
            # its last value (the firmware's chain has no "missing" for it), and
            # what it alone tells (technique, push, cough) is not judged there
            if a_missing.any():
                abd_gaps = _held(a, a_missing)
            ab = a
        del a, a_missing
    ts = times_ms(times_s)
    missing_runs = _missing_runs(missing, ts)
    del missing
    if len(missing_runs) and sum(k for _, k in missing_runs) == n:
        raise AnalysisError(f"every sample is {_MISSING}: nothing to analyse")
    if missing_runs:
        warnings.append(f"{sum(k for _, k in missing_runs)} samples are {_MISSING} in "
                        f"{len(missing_runs)} stretch(es), first at {missing_runs[0][0]:.3f} s: "
                        f"they are left out and reported as gaps")
    if clipped or clipped_a:
        warnings.append(f"{clipped + clipped_a} samples beyond the detector's range "
                        f"(+-{X_MAX / per_unit:g} {unit or 'units'}) were clipped")
    chain = make_chain(signal, rate_hz, abdominal is not None)
    log: list[tuple[int, int, int]] = []
    records = replay.run(chain, ts, xs, ab, log)
    if getattr(chain, "glitches", 0):
        warnings.append(f"{chain.glitches} lone sample(s) far off both neighbours (glitches: no squeeze or "
                        f"cough is one sample wide), first at {chain.glitch_t / 1000:.3f} s: each was read "
                        f"as the mean of its neighbours")
    events = [record_to_event(r, level_div, abdominal is not None) for r in records]
    events.sort(key=lambda e: e["onset_s"])
    if abd_gaps:
        _abd_gap_events(events, abd_gaps, ts, warnings)
    flat = [e for e in events if e.get("artefact") == "flat"]
    if flat:
        warnings.append(f"the signal stays exactly flat in {len(flat)} stretch(es) "
                        f"({sum(e['duration_s'] for e in flat):.1f} s, first at {flat[0]['onset_s']:.3f} s): "
                        f"a sensor that stopped reading, or one at the end of its range? reported as "
                        f"artefacts, never as squeezes")
    det = chain.det
    summary = summarize(events, signal=signal, unit=unit, rate_hz=rate_hz,
                        duration_s=(ts[-1] - ts[0]) / 1000.0,
                        rest_level=det.tone.level() / level_div,
                        noise=det.lvl.noise() / level_div,
                        decision_delay_ms=det.decision_delay_ms(),
                        filter_delay_ms=chain.delay_ms,
                        two_channel=abdominal is not None)
    named = [(t / 1000.0, _flag_names(f), s) for t, f, s in log]
    return Analysis(events=events, summary=summary, warnings=warnings, log=named,
                    rail_samples_told=(told, told_a))


def _channel(values: Any, rate_hz: float, per_unit: float, unit: str, which: str,
             clipped_at: tuple[float, ...], warnings: list[str]) -> tuple[array, np.ndarray, int, int]:
    # One channel as the chain's counts, its rails read as saturation:
    # counts()'s (counts, missing, clipped), and the samples at rails the
    # caller has already warned of (clipped_at); the other rails are warned of.
    v = _lone_wild(np.asarray(values, dtype=np.float64), per_unit, rate_hz)
    rails = find_rails(v, rate_hz)          # (a corrupt reading is no rail's top)
    x, missing, clipped = counts(v, per_unit, rails)
    return x, missing, clipped, _rail_warning(warnings, rails, v, unit, which, clipped_at)


def _lone_wild(v: np.ndarray, per_unit: float, rate_hz: float) -> np.ndarray:
    # A reading beyond the detector's range for no more than LONE_WILD_MS is
    # a corrupt sample, not a sensor at its limit: clipped, it would be
    # saturation and cut the squeeze it falls in; left out, it is a gap
    # the detector steps over. Longer runs stay saturation.
    with np.errstate(invalid="ignore"):
        wild = np.abs(v) * per_unit > X_MAX
    if not wild.any():
        return v
    starts, lengths = true_runs(wild)
    most = max(1, int(rate_hz * LONE_WILD_MS / 1000))
    apart = int(rate_hz * LONE_APART_MS / 1000)
    ends = [int(i) + int(k) for i, k in zip(starts, lengths)]
    lone = [(int(i), int(k)) for j, (i, k) in enumerate(zip(starts, lengths))
            if k <= most and (j == 0 or i - ends[j - 1] > apart)
            and (j + 1 == len(ends) or starts[j + 1] - ends[j] > apart)]
    if not lone:
        return v
    v = v.copy()
    for i, k in lone:
        v[i:i + k] = np.nan
    return v


def _rail_warning(warnings: list[str], rails: Rails, v: np.ndarray, unit: str, which: str,
                  clipped_at: tuple[float, ...] = ()) -> int:
    # Returns the samples at rails the caller has already warned of (clipped_at).
    told = 0
    for name, r in (("bottom", rails.lo), ("top", rails.hi)):
        if r is not None:
            n = int(np.count_nonzero(v == r))
            if r in clipped_at:
                told += n
                continue
            warnings.append(f"{n} {which}samples sit at the sensor's {name} rail ({r:g} {unit or 'units'}): "
                            f"read as saturation, never as a squeeze; if the sensor reads past its "
                            f"range often, check its gain or the probe's fit")
    return told


def _missing_runs(missing: np.ndarray, ts: Sequence[int]) -> list[tuple[float, int]]:
    """(start s, samples) of each run of missing samples."""
    starts, lengths = true_runs(missing)
    return [(ts[int(i)] / 1000.0, int(k)) for i, k in zip(starts, lengths)]


def _flag_names(flags: int) -> str:
    names = []
    for bit, name in ((D.EV_START, "start"), (D.EV_PEAK, "peak"), (D.EV_END, "end"),
                      (D.EV_RELAXED, "relaxed"), (D.EV_NOT_RELAXED, "not_relaxed"),
                      (D.EV_ABD_START, "abd_start"), (D.EV_ABD_END, "abd_end")):
        if flags & bit:
            names.append(name)
    return "+".join(names)


def _tri(v: int) -> bool | None:
    return None if v < 0 else bool(v)


def _r(x: float, nd: int = 3) -> float:
    return round(x, nd)


def record_to_event(r: Sequence[int], level_div: float, two_channel: bool) -> dict[str, Any]:
    """One detector record (tuple of ints) as a readable event dict."""
    abd_only = r[D.R_CHANNEL] == 1
    rest = r[D.R_BASE] if abd_only else min(r[D.R_REST], r[D.R_BASE])
    kind = D.KIND_NAMES[r[D.R_KIND]]
    ev: dict[str, Any] = {
        "kind": kind,
        "onset_s": _r(r[D.R_ONSET] / 1000),
        "offset_s": _r(r[D.R_OFFSET] / 1000),
        "duration_s": _r((r[D.R_OFFSET] - r[D.R_ONSET]) / 1000),
        "peak": _r(r[D.R_PEAK] / level_div),
        "amplitude": _r((r[D.R_PEAK] - r[D.R_BASE]) / level_div),
        "peak_s": _r(r[D.R_PEAK_T] / 1000),
        "mean_hold": _r(r[D.R_MEAN_HOLD] / level_div),
        "hold_s": _r(r[D.R_HOLD_MS] / 1000),
        "rise_s": _r(r[D.R_RISE_MS] / 1000),
        "release_s": _r(r[D.R_RELEASE_MS] / 1000),
        "area": _r((r[D.R_AREA_HI] * 1024 + r[D.R_AREA_LO]) / level_div / 1000),
        "baseline": _r(r[D.R_BASE] / level_div),
        "rest_level": _r(rest / level_div),
        "residual": _r(r[D.R_RESIDUAL] / level_div) if r[D.R_RELAXED] >= 0 else None,
        "relaxed": _tri(r[D.R_RELAXED]),
        "rest_before_s": _r(r[D.R_REST_BEFORE] / 1000) if r[D.R_REST_BEFORE] >= 0 else None,
        "rest_ok": _tri(r[D.R_REST_OK]),
        "abdominal_rise": _r(r[D.R_ABD_RISE] / level_div) if r[D.R_ABD_RISE] >= 0 else None,
        "technique": D.TECH_NAMES[r[D.R_TECH]] if two_channel else None,
        "detected_s": _r(r[D.R_DETECTED] / 1000),
        "ended_s": _r(r[D.R_ENDED] / 1000),
        "seq": r[D.R_SEQ],
    }
    ev["channel"] = "abdominal" if abd_only else "pelvic_floor"
    marks = r[D.R_MARKS] if len(r) > D.R_MARKS else 0     # older records have none
    ev["quick"] = bool(marks & D.M_QUICK) if kind == "squeeze" else None
    ev["from_plateau"] = bool(marks & D.M_PLATEAU)
    ev["cut"] = bool(marks & D.M_CUT)
    if kind == "artefact":
        ev["artefact"] = ("gap" if marks & D.M_GAP else "saturation" if marks & D.M_SATURATED
                          else "flat" if marks & D.M_FLAT else "motion" if marks & D.M_MOTION
                          # unmarked: too brief for a squeeze, or a stretch set aside (a level that
                          # moved and stayed, the filters settling once mains hum was found)
                          else "spike" if r[D.R_OFFSET] - r[D.R_ONSET] < _SPIKE_MS else "other")
    if abd_only:
        # Only the abdominal channel rose: levels describe that channel.
        ev["peak_s"] = None
        ev["rest_level"] = None
    return ev


def summarize(events: list[dict[str, Any]], **info: Any) -> dict[str, Any]:
    squeezes = [e for e in events if e["kind"] == "squeeze"]
    judged = [e for e in squeezes if e["relaxed"] is not None]
    rests = [e for e in squeezes if e["rest_ok"] is not None]
    peaks = [e["amplitude"] for e in squeezes]
    out = dict(info)
    out.update({
        "squeezes": len(squeezes),
        "coughs": sum(1 for e in events if e["kind"] == "cough"),
        "bearing_down": sum(1 for e in events if e["kind"] == "bearing_down"),
        "max_amplitude": max(peaks) if peaks else None,
        "mean_amplitude": _r(sum(peaks) / len(peaks)) if peaks else None,
        "mean_hold_s": _r(sum(e["hold_s"] for e in squeezes) / len(squeezes)) if squeezes else None,
        "relaxed_fully": sum(1 for e in judged if e["relaxed"]),
        "not_relaxed": sum(1 for e in judged if not e["relaxed"]),
        "rests_too_short": sum(1 for e in rests if not e["rest_ok"]),
    })
    for k in ("rest_level", "noise"):
        if isinstance(out.get(k), float):
            out[k] = _r(out[k])
    return out


def phasic_score(x: Sequence[float], rate_hz: float, window_s: float = 30.0) -> float:
    """How far a channel's squeezes stand above its noise: the spread left
    after removing its slow trend (a 30 s moving mean), over its typical
    sample-to-sample step. A drifting or noisy sensor scores low, one that
    moves with each squeeze high."""
    v = np.asarray(x, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n < 3:
        return 0.0
    k = max(3, int(window_s * rate_hz))
    c = np.concatenate([[0.0], np.cumsum(v)])
    i = np.arange(n)
    lo = np.clip(i - k // 2, 0, n)
    hi = np.clip(i + k // 2 + 1, 0, n)
    step = float(np.median(np.abs(np.diff(v))))
    return float((v - (c[hi] - c[lo]) / (hi - lo)).std()) / max(step, 1e-9)


def pick_channel(channels: dict[str, Any], wanted: str | None, what: str) -> str:
    if wanted is None:
        return next(iter(channels))
    if wanted not in channels:
        raise AnalysisError(f"no {what} channel named {wanted!r}; the file has: {', '.join(channels)}")
    return wanted


def analyze(recording: Any, *, signal: str = "pressure", channel: str | None = None,
            abdominal: str | None = None) -> Analysis:
    """Analyse one channel of a Recording (see knip_host.recordings)."""
    name = pick_channel(recording.channels, channel, "signal")
    abd_name = pick_channel(recording.channels, abdominal, "abdominal") if abdominal else None
    if abd_name == name:
        raise AnalysisError("the abdominal channel must differ from the signal channel")
    clip = [recording.clipped.get(c, ((), "")) if c else ((), "") for c in (name, abd_name)]
    result = analyze_arrays(recording.times_s, recording.channels[name],
                            rate_hz=float(recording.rate_hz), signal=signal,
                            abdominal=recording.channels[abd_name] if abd_name else None,
                            unit=recording.unit, clipped_at=(clip[0][0], clip[1][0]))
    result.summary["channel"] = name
    result.summary["abdominal_channel"] = abd_name
    result.annotations = list(recording.annotations)
    # the loader's "clipped" and the rail found here are one finding: one warning
    told = {w: n for (_, w), n in zip(clip, result.rail_samples_told) if n}
    loader = [f"{w}; the detector reads the {told[w]} samples at its rail(s) as saturation, never as a squeeze"
              if w in told else w for w in recording.warnings]
    result.warnings = loader + result.warnings
    return result
