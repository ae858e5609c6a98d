"""Offline EMG onset detectors from BioSPPy and NeuroKit2, for side-by-side figures.

Every peer here is an offline, whole-record method: it sees the entire
recording (and, where it asks for one, a known rest segment) before it
answers. Knip decides causally, sample by sample.

Each peer is `run(x, fs, rest, params) -> [(onset_s, offset_s), ...]`, with
x the raw EMG (uV, float array), rest = (start, stop) sample indices of a
known rest stretch (the first rest of the session), and params one point of
the peer's grid. Then a common post-processing step (join bursts closer than
`gap_s`, drop bursts shorter than `min_s`) gives every peer the hysteresis
Knip has built in; (0, 0) means raw output. Grids are tuned on the TRAIN
split (max pooled F1), figures are reported on TEST.

How the libraries are called (read from their source, BioSPPy 2.1, NeuroKit2 0.2):
- biosppy.signals.emg.hodges_bui_onset_detector: `size` counts samples (the
  docstring says seconds); onsets and offsets come back interleaved. The rest
  statistics are given as a dict of the mean and SD of the test signal (moving
  average of the rectified EMG) over the rest stretch, as Hodges and Bui
  define them (given a rest segment, BioSPPy uses the raw zero-mean samples,
  whose mean is ~0).
- bonato_onset_detector: rest segment given as indices; test function is the
  sum of two squared samples over the rest variance; `active_state_duration`
  and `fail_size` count test-function samples (2 raw samples each).
- solnik_onset_detector: threshold = mean + h * SD of the rest statistics; we
  pass the mean and SD of the rectified TKEO over the rest stretch (given a
  rest segment, BioSPPy would use the raw samples' SD, which has other units).
- find_onsets: `size` is in seconds (converted to samples inside); absolute
  threshold or None for its default (1.2 mean + 2 SD of the smoothed signal).
- neurokit2.emg_activation: emg_clean (100 Hz high-pass) and emg_amplitude
  (TKEO + zero-lag envelope, assumes 1 kHz) first, as its docs do. We call its
  internal method functions and `_emg_activation_activations` directly: the
  public function additionally builds a per-sample DataFrame with a Python
  loop of `.loc` lookups (seconds per record), which does not change the
  onsets and offsets. `duration_min` is in samples.
- pelt: signal_changepoints is an O(n) pure-Python loop (~0.2 ms per sample),
  too slow for a grid on 1 kHz records: run untuned on a short excerpt.
"""
from __future__ import annotations

import itertools
import sys
import time
import traceback
import warnings
from typing import Any, Callable

import numpy as np

from metrics import pairs_from_interleaved

warnings.filterwarnings("ignore")

POST_GRID = [(g, m) for g in (0.0, 0.1, 0.3) for m in (0.0, 0.25)]


def _bursts(pairs, fs):
    return [(float(a) / fs, float(b) / fs) for a, b in pairs]


def _interleaved(idx, n, starts_active):
    # State-machine detectors (Bonato, Solnik) alternate onset, offset strictly.
    return pairs_from_interleaved(idx, n, starts_active)


def _crossings(idx, active, shift=0):
    """Pairs from BioSPPy's threshold-crossing detectors (Hodges-Bui, find_onsets).

    They return the union of the last sample below before each up-crossing
    and the first sample below after each down-crossing. A one-sample dip
    gives both at the same index, which the union keeps once, so the list is
    not strictly alternating: classify each index by its neighbours in the
    thresholded test signal `active` (indices shifted by `shift`) instead.
    """
    n = len(active)
    pts = []
    for i in sorted(int(v) for v in idx):
        j = i - shift
        if j - 1 >= 0 and j - 1 < n and active[j - 1]:
            pts.append((i, 0))       # offset first at a shared index
        if 0 <= j + 1 < n and active[j + 1]:
            pts.append((i, 1))
    out = []
    on = shift if n and active[0] else None
    for i, is_on in pts:
        if is_on and on is None:
            on = i
        elif not is_on and on is not None:
            if i > on:
                out.append((on, i))
            on = None
    if on is not None:
        out.append((on, n - 1 + shift))
    return out


def _rest_slice(x, rest):
    a, b = rest
    return x[a:b]


# ------------------------------------------------------------------ BioSPPy

def bs_hodges_bui(x, fs, rest, p):
    from biosppy.signals import emg as E
    size = int(p["size"])
    fw = np.abs(x - np.mean(x))
    mv = np.convolve(fw, np.ones(size) / size, mode="valid")
    a, b = rest
    r = mv[a:max(a + 1, b - size + 1)]
    stats = {"mean": float(np.mean(r)), "std_dev": float(np.std(r, ddof=1))}
    out = E.hodges_bui_onset_detector(signal=x, rest=stats, sampling_rate=fs, size=size,
                                      threshold=p["threshold"])
    tf = np.asarray(out["processed"])
    return _bursts(_crossings(out["onsets"], tf >= p["threshold"], size // 2), fs)


def bs_bonato(x, fs, rest, p):
    from biosppy.signals import emg as E
    out = E.bonato_onset_detector(signal=x, rest=list(rest), sampling_rate=fs,
                                  threshold=p["threshold"],
                                  active_state_duration=int(p["active_state_duration"]),
                                  samples_above_fail=int(p["samples_above_fail"]),
                                  fail_size=int(p["fail_size"]))
    return _bursts(_interleaved(out["onsets"], len(x), False), fs)


def bs_solnik(x, fs, rest, p):
    from biosppy.signals import emg as E
    z = _rest_slice(x, rest)
    z = z - np.mean(x)
    tk = np.abs(z[1:-1] ** 2 - z[2:] * z[:-2])
    stats = {"mean": float(np.mean(tk)), "std_dev": float(np.std(tk, ddof=1))}
    out = E.solnik_onset_detector(signal=x, rest=stats, sampling_rate=fs,
                                  threshold=p["threshold"],
                                  active_state_duration=int(p["active_state_duration"]))
    # Indices are raw sample numbers (the TKEO loop runs k = 1 .. n-2).
    return _bursts(_interleaved(out["onsets"], len(x), False), fs)


def bs_find_onsets(x, fs, rest, p):
    from biosppy.signals import emg as E
    from biosppy.signals import tools as st
    size_s = p["size_s"]
    mv, _ = st.smoother(signal=np.abs(x), kernel="boxzen", size=int(fs * size_s), mirror=True)
    k = p["k_rest"]
    thr = None if k is None else float(k * np.mean(_rest_slice(mv, rest)))
    out = E.find_onsets(signal=x, sampling_rate=fs, size=size_s, threshold=thr)
    if thr is None:
        aux = np.abs(mv)
        thr = 1.2 * np.mean(aux) + 2.0 * np.std(aux, ddof=1)
    return _bursts(_crossings(out["onsets"], mv > thr), fs)


# ----------------------------------------------------------------- NeuroKit2

def _nk_mod():
    import neurokit2  # noqa: F401  (registers the submodule)
    return sys.modules["neurokit2.emg.emg_activation"]


def _nk_clean(x, fs, cache):
    if "nk_clean" not in cache:
        import neurokit2 as nk
        cache["nk_clean"] = np.asarray(nk.emg_clean(x, sampling_rate=int(fs)))
    return cache["nk_clean"]


def _nk_amp(x, fs, cache):
    if "nk_amp" not in cache:
        import neurokit2 as nk
        cache["nk_amp"] = np.asarray(nk.emg_amplitude(_nk_clean(x, fs, cache)))
    return cache["nk_amp"]


def _nk_finish(activity, p, fs):
    m = _nk_mod()
    info = m._emg_activation_activations(np.asarray(activity), duration_min=int(p["duration_min"]))
    on = np.asarray(info["EMG_Onsets"], dtype=int)
    off = np.asarray(info["EMG_Offsets"], dtype=int)
    k = min(len(on), len(off))
    return [(float(on[i]) / fs, float(off[i]) / fs) for i in range(k) if off[i] > on[i]]


def nk_threshold(x, fs, rest, p, cache):
    m = _nk_mod()
    amp = _nk_amp(x, fs, cache)
    k = p["k_rest"]
    thr = "default" if k is None else float(k * np.mean(_rest_slice(amp, rest)))
    return _nk_finish(m._emg_activation_threshold(amp, threshold=thr), p, fs)


def nk_mixture(x, fs, rest, p, cache):
    m = _nk_mod()
    amp = _nk_amp(x, fs, cache)
    key = ("mix", p["threshold"])
    if key not in cache:
        cache[key] = np.asarray(m._emg_activation_mixture(amp, threshold=p["threshold"]))
    return _nk_finish(cache[key], p, fs)


def nk_biosppy(x, fs, rest, p, cache):
    m = _nk_mod()
    cl = _nk_clean(x, fs, cache)
    k = p["k_rest"]
    if k is None:
        thr = "default"
    else:
        import neurokit2 as nk
        mv = nk.signal_smooth(np.abs(cl), method="convolution", kernel="boxzen", size=int(fs * p["size_s"]))
        thr = float(k * np.mean(_rest_slice(np.asarray(mv), rest)))
    return _nk_finish(m._emg_activation_biosppy(cl, sampling_rate=int(fs), size=p["size_s"], threshold=thr), p, fs)


def nk_silva(x, fs, rest, p, cache):
    m = _nk_mod()
    cl = _nk_clean(x, fs, cache)
    thr = float(p["k_rest"] * np.mean(np.abs(_rest_slice(cl, rest) - np.mean(cl))))
    act = m._emg_activation_silva(cl, size=int(p["size"]), threshold_size=int(p["threshold_size"]),
                                  threshold=thr)
    return _nk_finish(np.asarray(act), p, fs)


def nk_pelt(x, fs, rest, p, cache):
    m = _nk_mod()
    cl = _nk_clean(x, fs, cache)
    return _nk_finish(m._emg_activation_pelt(cl, duration_min=int(p["duration_min"])), p, fs)


def _grid(**axes) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(axes[k] for k in keys))]


# name -> (library label, function, takes cache, grid)
PEERS: dict[str, tuple[str, Callable, bool, list[dict[str, Any]]]] = {
    "hodges_bui": ("biosppy", bs_hodges_bui, False,
                   _grid(size=[25, 50, 100], threshold=[3.0, 6.0, 12.0, 24.0])),
    "bonato": ("biosppy", bs_bonato, False,
               _grid(threshold=[4.0, 8.0, 16.0, 32.0], active_state_duration=[15, 50],
                     samples_above_fail=[1], fail_size=[5, 15])),
    "solnik": ("biosppy", bs_solnik, False,
               _grid(threshold=[3.0, 8.0, 20.0, 50.0], active_state_duration=[25, 100])),
    "find_onsets": ("biosppy", bs_find_onsets, False,
                    _grid(size_s=[0.025, 0.05, 0.1], k_rest=[None, 2.0, 3.0, 5.0])),
    "nk_threshold": ("neurokit2", nk_threshold, True,
                     _grid(k_rest=[None, 2.0, 4.0, 8.0, 16.0], duration_min=[50, 150])),
    "nk_mixture": ("neurokit2", nk_mixture, True,
                   _grid(threshold=[0.33, 0.5, 0.8], duration_min=[50, 150])),
    "nk_biosppy": ("neurokit2", nk_biosppy, True,
                   _grid(size_s=[0.025, 0.05, 0.1], k_rest=[None, 2.0, 3.0, 5.0], duration_min=[50])),
    "nk_silva": ("neurokit2", nk_silva, True,
                 [dict(size=s, threshold_size=t, k_rest=k, duration_min=50)
                  for s, t in ((20, 22), (50, 60), (100, 120)) for k in (1.5, 2.0, 3.0, 5.0)]),
    "nk_pelt": ("neurokit2", nk_pelt, True, [dict(duration_min=50)]),
}

# Too slow for a grid on whole 1 kHz records (see module docstring).
SLOW = {"nk_pelt"}


def run_peer(name: str, x: np.ndarray, fs: float, rest: tuple[int, int], params: dict[str, Any],
             cache: dict | None = None) -> list[tuple[float, float]]:
    lib, fn, cached, _ = PEERS[name]
    if cached:
        return fn(x, fs, rest, params, cache if cache is not None else {})
    return fn(x, fs, rest, params)


def safe_run(name, x, fs, rest, params, cache=None):
    """(bursts or None, error text or None, seconds)."""
    t0 = time.perf_counter()
    try:
        out = run_peer(name, x, fs, rest, params, cache)
        return out, None, time.perf_counter() - t0
    except Exception as exc:  # a peer failing is a result, not a crash
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" ({tb[-1].name}:{tb[-1].lineno})" if tb else ""
        return None, f"{type(exc).__name__}: {exc}{where}"[:300], time.perf_counter() - t0
