"""Event-level metrics for the Knip benchmark.

Everything works on plain event dicts (times in seconds):

- truth:    kind ("squeeze" | "cough" | "bearing_down"), onset_s, offset_s,
            relaxed (squeezes), technique ("lift" | "co_contraction" | "push")
- detected: kind, onset_s, offset_s, detected_s (optional), relaxed (True /
            False / None), technique (None with one channel)

Detected squeezes (kind "squeeze") are matched one-to-one to true squeezes by
onset, within a tolerance, with an optimal assignment that first maximises
the number of matches and then minimises the summed onset error.

Per-record results (`score_record`) are pooled over records with `pool`:
counts are summed and error lists concatenated, so F1 is micro-averaged over
all events of a set rather than averaged per record.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

SQUEEZE = "squeeze"
COUGH = "cough"
BEARING_DOWN = "bearing_down"
HOLD_S = 2.0        # a true squeeze this long is a hold whose end her verdict reads ...
CUT_S = 1.0         # ... and a detected end this much before hers cuts it


# --------------------------------------------------------------- matching

def match_onsets(true_on: Sequence[float], det_on: Sequence[float], tol: float) -> list[tuple[int, int]]:
    """Optimal one-to-one matching of onsets within `tol` (same unit as the times).

    Returns (true index, detected index) pairs sorted by true index. The number
    of pairs is maximal; among maximal matchings the summed |error| is minimal.
    """
    n, m = len(true_on), len(det_on)
    if n == 0 or m == 0:
        return []
    t = np.asarray(true_on, dtype=float)[:, None]
    d = np.asarray(det_on, dtype=float)[None, :]
    err = np.abs(t - d)
    ok = err <= tol + 1e-12
    if not ok.any():
        return []
    # A forbidden pair costs more than any set of allowed ones, so the solver
    # takes as few forbidden pairs as possible, i.e. as many allowed ones.
    big = (tol + 1.0) * (min(n, m) + 1) * 2.0
    cost = np.where(ok, err, big)
    rows, cols = linear_sum_assignment(cost)
    pairs = [(int(i), int(j)) for i, j in zip(rows, cols) if ok[i, j]]
    pairs.sort()
    return pairs


# ------------------------------------------------------------ small stats

def f1_from_counts(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    if tp + fp + fn == 0:
        f1 = None
    else:
        f1 = 2 * tp / (2 * tp + fp + fn)
    return {"precision": p, "recall": r, "f1": f1}


def percentile(xs: Sequence[float], q: float) -> float | None:
    """q-th percentile (0..100, linear interpolation) or None if empty."""
    if len(xs) == 0:
        return None
    return float(np.percentile(np.asarray(xs, dtype=float), q))


def median(xs: Sequence[float]) -> float | None:
    return percentile(xs, 50)


def balanced_accuracy(truth: Sequence[bool], pred: Sequence[bool | None]) -> float | None:
    """Mean of the per-class recalls over the classes present in `truth`.

    A prediction of None (no verdict) counts as wrong for either class.
    """
    per_class = []
    for cls in (True, False):
        idx = [i for i, t in enumerate(truth) if bool(t) == cls]
        if idx:
            hit = sum(1 for i in idx if pred[i] is not None and bool(pred[i]) == cls)
            per_class.append(hit / len(idx))
    if not per_class:
        return None
    return sum(per_class) / len(per_class)


def rate(hits: int, n: int) -> float | None:
    return hits / n if n else None


# ------------------------------------------------------------- intervals

def overlaps(a0: float, a1: float, b0: float, b1: float) -> bool:
    return a0 <= b1 and b0 <= a1


def in_intervals(t: float, intervals: Iterable[Sequence[float]]) -> bool:
    return any(a <= t <= b for a, b in intervals)


def merge_bursts(bursts: Sequence[tuple[float, float]], gap: float = 0.0,
                 min_dur: float = 0.0) -> list[tuple[float, float]]:
    """Join bursts separated by less than `gap`, then drop those shorter than `min_dur`."""
    out: list[list[float]] = []
    for on, off in sorted(bursts):
        if out and on - out[-1][1] < gap:
            out[-1][1] = max(out[-1][1], off)
        else:
            out.append([on, off])
    return [(a, b) for a, b in out if b - a >= min_dur]


def pairs_from_interleaved(idx: Sequence[int], n: int, starts_active: bool = False) -> list[tuple[int, int]]:
    """Turn alternating change points (onset, offset, onset, ...) into (on, off) pairs.

    If the record starts active, the first index is an offset and the burst
    starts at 0; a final unmatched onset runs to the last sample (n - 1).
    """
    pts = sorted(int(i) for i in idx)
    if starts_active:
        pts = [0] + pts
    out = []
    for k in range(0, len(pts), 2):
        on = pts[k]
        off = pts[k + 1] if k + 1 < len(pts) else n - 1
        if off > on:
            out.append((on, off))
    return out


# ---------------------------------------------------------- per record

def score_record(truth: list[dict[str, Any]], detected: list[dict[str, Any]], tol: float,
                 rest_intervals: Sequence[Sequence[float]] = (),
                 duration_s: float | None = None, ambiguous_coughs: bool = False) -> dict[str, Any]:
    """All event metrics of one record, in pool-able form (counts and lists).

    tol and all times in seconds; errors are returned in milliseconds.
    ambiguous_coughs: one channel carries no evidence that tells a cough from
    a quick squeeze (REFERENCE 5: "say ambiguous"; docs/DETECTOR.md), so a
    detected squeeze over a true cough is counted apart (coughs_as_squeeze),
    not as a false positive. Two-channel records never pass it.
    """
    t_sq = [e for e in truth if e["kind"] == SQUEEZE and e.get("offset_s") is not None]
    d_sq = [e for e in detected if e["kind"] == SQUEEZE]
    pairs = match_onsets([e["onset_s"] for e in t_sq], [e["onset_s"] for e in d_sq], tol)
    matched_d = {j for _, j in pairs}
    onset_err, onset_signed, offset_err, offset_signed, latency = [], [], [], [], []
    relax_truth, relax_pred = [], []
    co_true = co_flag = lift_true = lift_ok = 0
    holds = holds_cut = 0
    for i, j in pairs:
        t, d = t_sq[i], d_sq[j]
        if t["offset_s"] - t["onset_s"] >= HOLD_S and d.get("offset_s") is not None:
            # her verdict ("held 3 s of 10") stands on the offset: a hold ended
            # CUT_S or more before she let go is a wrong verdict, whatever F1 says
            holds += 1
            holds_cut += d["offset_s"] <= t["offset_s"] - CUT_S
        e_on = (d["onset_s"] - t["onset_s"]) * 1000.0
        onset_signed.append(e_on)
        onset_err.append(abs(e_on))
        if d.get("offset_s") is not None:
            e_off = (d["offset_s"] - t["offset_s"]) * 1000.0
            offset_signed.append(e_off)
            offset_err.append(abs(e_off))
        if d.get("detected_s") is not None:
            latency.append((d["detected_s"] - t["onset_s"]) * 1000.0)
        if t.get("relaxed") is not None and "relaxed" in d:
            relax_truth.append(bool(t["relaxed"]))
            relax_pred.append(d["relaxed"])
        tech = t.get("technique")
        if tech == "co_contraction":
            co_true += 1
            co_flag += d.get("technique") == "co_contraction"
        elif tech == "lift":
            lift_true += 1
            lift_ok += d.get("technique") == "lift"
    unmatched = [d for j, d in enumerate(d_sq) if j not in matched_d]
    coughs = [e for e in truth if e["kind"] == COUGH and e.get("offset_s") is not None]
    as_squeeze = 0
    if ambiguous_coughs:
        keep = []
        for d in unmatched:
            if any(overlaps(d["onset_s"], d["offset_s"], c["onset_s"] - tol, c["offset_s"] + tol)
                   for c in coughs):
                as_squeeze += 1
            else:
                keep.append(d)
        unmatched = keep
    # Right event, wrong onset: an unmatched detection overlapping an unmatched
    # true squeeze (it costs one FP and one FN). Signed onset error kept.
    matched_t = {i for i, _ in pairs}
    free_t = [t for i, t in enumerate(t_sq) if i not in matched_t]
    mistimed = []
    for d in unmatched:
        cand = [t for t in free_t if overlaps(d["onset_s"], d["offset_s"], t["onset_s"], t["offset_s"])]
        if cand:
            t = min(cand, key=lambda t: abs(t["onset_s"] - d["onset_s"]))
            free_t.remove(t)
            mistimed.append((d["onset_s"] - t["onset_s"]) * 1000.0)
    false_alarms = sum(1 for d in unmatched if in_intervals(d["onset_s"], rest_intervals))
    rest_s = float(sum(b - a for a, b in rest_intervals))
    # Coughs: rejected if no detected squeeze overlaps the cough (+- tol).
    cough_rejected = 0
    for c in coughs:
        hit = any(overlaps(d["onset_s"], d["offset_s"], c["onset_s"] - tol, c["offset_s"] + tol)
                  for d in d_sq)
        cough_rejected += not hit
    # Bearing down: some detected event says push over the true strain (+- tol).
    pushes = [e for e in truth if e["kind"] == BEARING_DOWN and e.get("offset_s") is not None]
    push_found = 0
    for p in pushes:
        hit = any((d["kind"] == BEARING_DOWN or d.get("technique") == "push")
                  and overlaps(d["onset_s"], d["offset_s"], p["onset_s"] - tol, p["offset_s"] + tol)
                  for d in detected)
        push_found += hit
    return {
        "n_true": len(t_sq), "n_det": len(d_sq), "tp": len(pairs),
        "fp": len(unmatched), "fn": len(t_sq) - len(pairs), "coughs_as_squeeze": as_squeeze,
        "onset_err_ms": onset_err, "onset_signed_ms": onset_signed,
        "offset_err_ms": offset_err, "offset_signed_ms": offset_signed,
        "latency_ms": latency,
        "false_alarms": false_alarms, "rest_s": rest_s, "mistimed_signed_ms": mistimed,
        "relax_truth": relax_truth, "relax_pred": relax_pred,
        "coughs": len(coughs), "coughs_rejected": cough_rejected,
        "pushes": len(pushes), "pushes_found": push_found,
        "co_true": co_true, "co_flagged": co_flag, "lift_true": lift_true, "lift_ok": lift_ok,
        "holds": holds, "holds_cut": holds_cut, "duration_s": duration_s,
    }


_SUMMED = ("n_true", "n_det", "tp", "fp", "fn", "coughs_as_squeeze", "false_alarms", "rest_s", "coughs",
           "coughs_rejected", "pushes", "pushes_found", "co_true", "co_flagged",
           "lift_true", "lift_ok", "holds", "holds_cut")
_LISTS = ("onset_err_ms", "onset_signed_ms", "offset_err_ms", "offset_signed_ms",
          "latency_ms", "relax_truth", "relax_pred", "mistimed_signed_ms")


def pool(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sum the counts and join the lists of several `score_record` results."""
    out: dict[str, Any] = {k: 0 for k in _SUMMED}
    for k in _LISTS:
        out[k] = []
    dur = 0.0
    for r in records:
        for k in _SUMMED:
            out[k] += r[k]
        for k in _LISTS:
            out[k].extend(r[k])
        dur += r.get("duration_s") or 0.0
    out["duration_s"] = dur
    out["records"] = len(records)
    return out


def summarize(p: dict[str, Any]) -> dict[str, Any]:
    """Headline figures from pooled counts (None where a figure does not apply)."""
    s: dict[str, Any] = {"records": p.get("records"), "true_squeezes": p["n_true"],
                         "detected_squeezes": p["n_det"], "tp": p["tp"], "fp": p["fp"], "fn": p["fn"]}
    s.update(f1_from_counts(p["tp"], p["fp"], p["fn"]))
    s["onset_err_median_ms"] = median(p["onset_err_ms"])
    s["onset_err_p90_ms"] = percentile(p["onset_err_ms"], 90)
    s["onset_bias_median_ms"] = median(p["onset_signed_ms"])
    s["offset_err_median_ms"] = median(p["offset_err_ms"])
    s["offset_err_p90_ms"] = percentile(p["offset_err_ms"], 90)
    s["offset_bias_median_ms"] = median(p["offset_signed_ms"])
    s["latency_median_ms"] = median(p["latency_ms"])
    s["latency_p90_ms"] = percentile(p["latency_ms"], 90)
    s["holds"] = p["holds"]
    s["holds_cut"] = p["holds_cut"]
    s["holds_cut_rate"] = p["holds_cut"] / p["holds"] if p["holds"] else None
    s["fp_mistimed"] = len(p["mistimed_signed_ms"])
    s["mistimed_onset_median_ms"] = median(p["mistimed_signed_ms"])
    s["rest_min"] = p["rest_s"] / 60.0
    s["false_alarms"] = p["false_alarms"]
    s["false_alarms_per_min"] = p["false_alarms"] / (p["rest_s"] / 60.0) if p["rest_s"] > 0 else None
    s["relax_n"] = len(p["relax_truth"])
    s["relax_unjudged"] = sum(1 for x in p["relax_pred"] if x is None)
    s["relax_balanced_accuracy"] = balanced_accuracy(p["relax_truth"], p["relax_pred"])
    s["coughs"] = p["coughs"]
    s["coughs_as_squeeze"] = p["coughs_as_squeeze"]
    s["cough_rejection"] = rate(p["coughs_rejected"], p["coughs"])
    s["pushes"] = p["pushes"]
    s["push_detection"] = rate(p["pushes_found"], p["pushes"])
    s["co_contractions"] = p["co_true"]
    s["co_flag_rate"] = rate(p["co_flagged"], p["co_true"])
    s["lifts"] = p["lift_true"]
    s["lift_ok_rate"] = rate(p["lift_ok"], p["lift_true"])
    for k, v in list(s.items()):
        if isinstance(v, float):
            s[k] = None if math.isnan(v) else round(v, 4)
    return s
