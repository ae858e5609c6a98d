"""Benchmark metrics on small hand-made event lists with known answers."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import metrics as M  # noqa: E402


def sq(on, off, **kw):
    e = {"kind": "squeeze", "onset_s": on, "offset_s": off}
    e.update(kw)
    return e


def ev(kind, on, off, **kw):
    e = {"kind": kind, "onset_s": on, "offset_s": off}
    e.update(kw)
    return e


# ------------------------------------------------------------------ matching

def test_match_empty():
    assert M.match_onsets([], [1.0], 0.25) == []
    assert M.match_onsets([1.0], [], 0.25) == []


def test_match_within_tolerance_only():
    assert M.match_onsets([1.0, 5.0], [1.2, 5.3], 0.25) == [(0, 0)]


def test_match_tolerance_is_inclusive():
    assert M.match_onsets([1.0], [1.25], 0.25) == [(0, 0)]


def test_match_is_one_to_one():
    # Two detections near one truth: only one may count.
    assert M.match_onsets([1.0], [0.95, 1.05], 0.25) in ([(0, 0)], [(0, 1)])
    # Two truths near one detection.
    assert len(M.match_onsets([1.0, 1.1], [1.05], 0.25)) == 1


def test_match_maximises_count_over_greedy():
    # Greedy nearest-first pairs t1=1.1 with d0=1.0 (err 0.1) and leaves t0
    # unmatched; the optimal assignment matches both.
    pairs = M.match_onsets([0.8, 1.1], [1.0, 1.3], 0.25)
    assert pairs == [(0, 0), (1, 1)]


def test_match_minimises_error_among_maximal():
    pairs = M.match_onsets([1.0, 2.0], [2.05, 1.02], 0.25)
    assert pairs == [(0, 1), (1, 0)]


# --------------------------------------------------------------- small stats

def test_f1_counts():
    r = M.f1_from_counts(8, 2, 2)
    assert r["precision"] == pytest.approx(0.8)
    assert r["recall"] == pytest.approx(0.8)
    assert r["f1"] == pytest.approx(0.8)
    r = M.f1_from_counts(0, 0, 0)
    assert r["f1"] is None and r["precision"] is None
    assert M.f1_from_counts(0, 3, 0)["f1"] == 0.0


def test_percentiles():
    assert M.median([3, 1, 2]) == 2
    assert M.percentile(list(range(11)), 90) == pytest.approx(9.0)
    assert M.median([]) is None


def test_balanced_accuracy():
    truth = [True, True, True, True, False, False]
    pred = [True, True, True, False, False, True]
    # recall(True) = 3/4, recall(False) = 1/2
    assert M.balanced_accuracy(truth, pred) == pytest.approx(0.625)
    # No verdict counts as wrong
    assert M.balanced_accuracy([True, False], [None, False]) == pytest.approx(0.5)
    # One class only: its recall
    assert M.balanced_accuracy([True, True], [True, False]) == pytest.approx(0.5)
    assert M.balanced_accuracy([], []) is None


def test_merge_bursts():
    b = [(1.0, 1.5), (1.55, 2.0), (3.0, 3.1), (5.0, 6.0)]
    assert M.merge_bursts(b) == b
    assert M.merge_bursts(b, gap=0.1) == [(1.0, 2.0), (3.0, 3.1), (5.0, 6.0)]
    assert M.merge_bursts(b, gap=0.1, min_dur=0.25) == [(1.0, 2.0), (5.0, 6.0)]


def test_pairs_from_interleaved():
    assert M.pairs_from_interleaved([10, 20, 30, 40], 100) == [(10, 20), (30, 40)]
    assert M.pairs_from_interleaved([10, 20, 30], 100) == [(10, 20), (30, 99)]
    assert M.pairs_from_interleaved([20, 30, 40], 100, starts_active=True) == [(0, 20), (30, 40)]


# ---------------------------------------------------------- per record

TRUTH = [
    sq(10.0, 12.0, relaxed=True, technique="lift"),
    sq(20.0, 23.0, relaxed=False, technique="co_contraction"),
    sq(30.0, 31.0, relaxed=True, technique="lift"),
    ev("cough", 40.0, 40.4),
    ev("cough", 50.0, 50.4),
    ev("bearing_down", 60.0, 64.0, technique="push"),
    ev("bearing_down", 70.0, 74.0, technique="push"),
]
REST = [[0.0, 9.5], [12.5, 19.5], [23.5, 29.5], [31.5, 39.5], [40.9, 49.5], [50.9, 59.5],
        [64.5, 69.5], [74.5, 90.0]]

DETECTED = [
    sq(10.05, 11.9, detected_s=10.15, relaxed=True, technique="lift"),       # TP, +50 / -100 ms
    sq(20.2, 23.3, detected_s=20.3, relaxed=True, technique="co_contraction"),  # TP, +200 / +300 ms
    # true squeeze at 30 s missed
    ev("cough", 40.0, 40.4),                                                   # cough rejected
    sq(50.05, 50.5, detected_s=50.1, relaxed=None, technique="lift"),         # cough called squeeze: FP
    ev("bearing_down", 60.2, 63.8, technique="push"),                          # push found
    sq(70.1, 73.9, detected_s=70.3, relaxed=True, technique="push"),           # push as squeeze+push: FP, found
    sq(80.0, 81.0, detected_s=80.1, relaxed=True, technique="lift"),           # FA in rest
    sq(0.2, 0.5, detected_s=0.3, relaxed=True, technique="lift"),              # FA in rest
]


def test_score_record_counts_and_errors():
    r = M.score_record(TRUTH, DETECTED, 0.25, REST, 90.0)
    assert (r["n_true"], r["n_det"], r["tp"], r["fp"], r["fn"]) == (3, 6, 2, 4, 1)
    assert sorted(r["onset_err_ms"]) == pytest.approx([50.0, 200.0])
    assert sorted(r["offset_err_ms"]) == pytest.approx([100.0, 300.0])
    assert sorted(r["offset_signed_ms"]) == pytest.approx([-100.0, 300.0])
    assert sorted(r["latency_ms"]) == pytest.approx([150.0, 300.0])
    # Unmatched squeezes at 50.05 (in rest 40.9-49.5? no: 50.05 is in the cough,
    # outside any rest), 70.1 (in the push), 80.0 and 0.2 (in rest).
    assert r["false_alarms"] == 2
    assert r["rest_s"] == pytest.approx(sum(b - a for a, b in REST))
    assert r["coughs"] == 2 and r["coughs_rejected"] == 1
    assert r["pushes"] == 2 and r["pushes_found"] == 2
    assert r["co_true"] == 1 and r["co_flagged"] == 1
    assert r["lift_true"] == 1 and r["lift_ok"] == 1
    assert r["relax_truth"] == [True, False]
    assert r["relax_pred"] == [True, True]


def test_summarize_pooled():
    r = M.score_record(TRUTH, DETECTED, 0.25, REST, 90.0)
    s = M.summarize(M.pool([r, r]))
    assert s["tp"] == 4 and s["fp"] == 8 and s["fn"] == 2
    assert s["precision"] == pytest.approx(4 / 12, abs=1e-4)
    assert s["recall"] == pytest.approx(4 / 6, abs=1e-4)
    assert s["f1"] == pytest.approx(8 / 18, abs=1e-4)
    assert s["onset_err_median_ms"] == pytest.approx(125.0)
    assert s["latency_median_ms"] == pytest.approx(225.0)
    rest_min = 2 * sum(b - a for a, b in REST) / 60.0
    assert s["false_alarms_per_min"] == pytest.approx(4 / rest_min, abs=1e-4)
    # relaxed: truth [T, F] x2, pred [T, T] x2 -> recall(T)=1, recall(F)=0
    assert s["relax_balanced_accuracy"] == pytest.approx(0.5)
    assert s["cough_rejection"] == pytest.approx(0.5)
    assert s["push_detection"] == pytest.approx(1.0)
    assert s["co_flag_rate"] == pytest.approx(1.0)


def test_perfect_detection():
    det = [sq(e["onset_s"], e["offset_s"], detected_s=e["onset_s"] + 0.1, relaxed=e["relaxed"],
              technique=e["technique"]) for e in TRUTH if e["kind"] == "squeeze"]
    s = M.summarize(M.pool([M.score_record(TRUTH, det, 0.25, REST, 90.0)]))
    assert s["f1"] == 1.0
    assert s["onset_err_median_ms"] == 0.0
    assert s["latency_median_ms"] == pytest.approx(100.0)
    assert s["false_alarms_per_min"] == 0.0
    assert s["relax_balanced_accuracy"] == 1.0
    assert s["cough_rejection"] == 1.0
    assert s["push_detection"] == 0.0


def test_no_pushes_or_coughs_gives_none():
    s = M.summarize(M.pool([M.score_record([sq(1.0, 2.0, relaxed=True)], [sq(1.0, 2.0)], 0.1, [], 3.0)]))
    assert s["cough_rejection"] is None
    assert s["push_detection"] is None
    assert s["false_alarms_per_min"] is None
    assert s["co_flag_rate"] is None
    # detected without a 'relaxed' key (peers) is not judged
    assert s["relax_n"] == 0 and s["relax_balanced_accuracy"] is None


def test_peer_crossings_with_one_sample_dip():
    # BioSPPy's crossing detectors return the union of "last sample below
    # before a rise" and "first sample below after a fall"; a one-sample dip
    # (index 5) appears once but is both an offset and an onset.
    import numpy as np
    import peers
    active = np.array([0, 0, 1, 1, 1, 0, 1, 1, 0, 0], dtype=bool)
    idx = [1, 5, 8]
    assert peers._crossings(idx, active) == [(1, 5), (5, 8)]
    # Starting active: the first burst starts at 0; shift maps indices.
    active = np.array([1, 1, 0, 0, 1, 1], dtype=bool)
    assert peers._crossings([12, 13], active, shift=10) == [(10, 12), (13, 15)]


def test_mistimed_onset_counted():
    # The detection covers the true squeeze but starts 500 ms early: one FP,
    # one FN, and the FP is recognised as a mis-timed version of the truth.
    r = M.score_record([sq(10.0, 12.0, relaxed=True)], [sq(9.5, 12.0, relaxed=True)], 0.25, [[0.0, 9.5]], 20.0)
    assert (r["tp"], r["fp"], r["fn"]) == (0, 1, 1)
    assert r["mistimed_signed_ms"] == pytest.approx([-500.0])
    s = M.summarize(M.pool([r]))
    assert s["fp_mistimed"] == 1 and s["mistimed_onset_median_ms"] == pytest.approx(-500.0)
    # onset 9.5 is inside the rest interval [0, 9.5]: also a false alarm
    assert s["false_alarms"] == 1
    # The full record in TRUTH/DETECTED has no mis-timed detection.
    assert M.score_record(TRUTH, DETECTED, 0.25, REST, 90.0)["mistimed_signed_ms"] == []


def test_holds_cut_short_are_counted():
    # Three holds found on time: one ended with her (10.0 s), one 1.2 s early
    # (her verdict would read a shorter hold), one 0.5 s early (an offset
    # error, not a cut); a quick squeeze is no hold, whatever its end.
    truth = [sq(2.0, 12.0), sq(20.0, 26.0), sq(30.0, 34.0), sq(40.0, 41.0)]
    det = [sq(2.05, 12.0), sq(20.05, 24.8), sq(30.05, 33.5), sq(40.05, 40.3)]
    s = M.summarize(M.pool([M.score_record(truth, det, 0.25, [], 50.0)]))
    assert (s["tp"], s["holds"], s["holds_cut"]) == (4, 3, 1)
    assert s["holds_cut_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert M.summarize(M.pool([M.score_record(truth, [], 0.25, [], 50.0)]))["holds_cut_rate"] is None
