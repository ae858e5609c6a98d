"""Tests of the independent physiological generator (bench/physio_gen.py)."""
from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "physio_gen.py"


def _load():
    if "physio_gen" in sys.modules:
        return sys.modules["physio_gen"]
    spec = importlib.util.spec_from_file_location("physio_gen", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["physio_gen"] = mod          # dataclasses look the module up while loading
    spec.loader.exec_module(mod)
    return mod


pg = _load()
NAMES = sorted(pg.SCENARIOS)
EMG_PLAIN = [n for n in NAMES if n.startswith("e") and n.endswith("db")]


@functools.lru_cache(maxsize=None)
def synth(name: str, seed: int):
    return pg._synth(name, seed)


def test_scenario_names():
    for ses in ("sprint", "marathon", "glazer", "free"):
        assert f"p1_{ses}" in pg.SCENARIOS and f"p2_{ses}" in pg.SCENARIOS
        for snr in (0, 5, 10, 20, 30):
            assert f"e1_{ses}_{snr}db" in pg.SCENARIOS
    for n in ("p1_artefacts", "p1_coughs", "p2_100hz_free", "e1_coughs_20db", "e2_free_20db",
              "e2_free_10db", "e1_artefacts_20db", "e1_ecg_10db"):
        assert n in pg.SCENARIOS


@pytest.mark.parametrize("name", NAMES)
def test_record_is_consistent(name):
    rec, _ = synth(name, 0)
    spec = pg.SCENARIOS[name]
    fs, dur, x = rec["rate"], rec["duration_s"], rec["x"]
    assert rec["signal"] == spec["signal"]
    assert fs == (1000.0 if rec["signal"] == "emg" else (100.0 if name == "p2_100hz_free" else 50.0))
    assert isinstance(x, np.ndarray) and x.dtype.kind == "f" and np.isfinite(x).all()
    assert len(x) == round(dur * fs) and 120 <= dur <= 400
    two = spec["channels"] == 2
    assert (rec["abd"] is not None) == two
    if two:
        assert rec["abd"].shape == x.shape and np.isfinite(rec["abd"]).all()
    lim = 800 if rec["signal"] == "pressure" else 16000
    for arr in (x, rec["abd"]):
        if arr is not None:
            assert np.abs(arr).max() < lim
    assert (rec["snr_db"] is None) == (rec["signal"] == "pressure")
    tr = rec["truth"]
    onsets = [e["onset_s"] for e in tr]
    assert onsets == sorted(onsets)
    kinds = {e["kind"] for e in tr}
    assert "squeeze" in kinds and kinds <= {"squeeze", "cough", "bearing_down"}
    if not spec["coughs"]:
        assert kinds == {"squeeze"}
    else:
        assert {"cough", "bearing_down"} <= kinds
    sq = [e for e in tr if e["kind"] == "squeeze"]
    for a, b in zip(sq, sq[1:]):
        assert a["offset_s"] < b["onset_s"]
    for e in tr:
        assert 0 < e["onset_s"] < e["offset_s"] < dur
        if e["kind"] == "squeeze":
            assert e["amplitude"] > 0
            assert e["quick"] == (e["offset_s"] - e["onset_s"] < 1.5)
            assert 0.2 <= e["offset_s"] - e["onset_s"] <= 70
            if e["relaxed"] is True:
                assert e["residual"] <= 0.05
            elif e["relaxed"] is False:
                assert 0.2 <= e["residual"] <= 0.6
            assert e["technique"] in (("lift", "co_contraction") if two else (None,))
            if e["cue_s"] is not None:
                assert -0.6 < e["onset_s"] - e["cue_s"] < 10
        elif e["kind"] == "cough":
            assert 0.3 - 1e-9 <= e["offset_s"] - e["onset_s"] <= 0.8 + 1e-9
        else:
            assert 1 - 1e-9 <= e["offset_s"] - e["onset_s"] <= 6 + 1e-9
            assert e["technique"] == ("push" if two else None)
    assert sum(e["relaxed"] is None for e in sq) <= max(3, 0.25 * len(sq))
    # rest intervals: no event, no transient artefact, margins kept
    rest = rec["rest_intervals"]
    assert rest and all(0 <= a < b <= dur + 1e-9 for a, b in rest)
    for a, b in rest:
        for e in tr:
            assert e["offset_s"] + 2 - 1e-9 <= a or b <= e["onset_s"] - 1 + 1e-9
        for art in rec["artefacts"]:
            if art["kind"] not in ("ecg", "hum"):
                assert art["end_s"] <= a or b <= art["start_s"]
    for art in rec["artefacts"]:
        assert art["kind"] in ("pop", "motion", "saturation", "flat", "ecg", "hum")
        assert 0 <= art["start_s"] <= art["end_s"] <= dur + 1e-9
    want = set(spec["artefacts"]) - {"slip"}
    assert want <= {a["kind"] for a in rec["artefacts"]}


@pytest.mark.parametrize("name", ["p1_sprint", "p2_free", "e1_glazer_10db", "e2_free_20db",
                                  "p1_artefacts", "e1_free_5db"])
def test_deterministic(name):
    a, b = synth(name, 0)[0], pg.generate(name, 0)
    assert np.array_equal(a["x"], b["x"])
    assert (a["abd"] is None and b["abd"] is None) or np.array_equal(a["abd"], b["abd"])
    assert a["truth"] == b["truth"] and a["artefacts"] == b["artefacts"]
    assert a["rest_intervals"] == b["rest_intervals"]
    c = synth(name, 1)[0]
    assert len(c["x"]) != len(a["x"]) or not np.array_equal(a["x"], c["x"])


@pytest.mark.parametrize("name", EMG_PLAIN)
def test_snr_as_defined(name):
    rec, parts = synth(name, 0)
    mask = np.zeros(len(rec["x"]), bool)
    for e in rec["truth"]:
        if e["kind"] == "squeeze":
            mask[round(e["onset_s"] * rec["rate"]):round(e["offset_s"] * rec["rate"]) + 1] = True
    snr = 10 * np.log10(np.mean(parts["muscle"][mask] ** 2) / np.mean(parts["noise"] ** 2))
    assert abs(snr - rec["snr_db"]) <= 1.0


@pytest.mark.parametrize("name", [n for n in EMG_PLAIN if int(n.split("_")[-1][:-2]) <= 10
                                  and "ecg" not in n])
@pytest.mark.parametrize("seed", [0, 1])
def test_snr_seen_in_the_data(name, seed):
    """Noise power read off x in the rest intervals (minus the known resting muscle power)."""
    rec, parts = synth(name, seed)
    fs, x, m = rec["rate"], rec["x"] - np.median(rec["x"]), parts["muscle"]
    sq, rest = np.zeros(len(x), bool), np.zeros(len(x), bool)
    for e in rec["truth"]:
        if e["kind"] == "squeeze":
            sq[round(e["onset_s"] * fs):round(e["offset_s"] * fs) + 1] = True
    for a, b in rec["rest_intervals"]:
        rest[round(a * fs):round(b * fs)] = True
    p_noise = np.mean(x[rest] ** 2) - np.mean(m[rest] ** 2)
    p_sig = np.mean(x[sq] ** 2) - p_noise
    assert abs(10 * np.log10(p_sig / p_noise) - rec["snr_db"]) <= 1.0


@pytest.mark.parametrize("name", ["p1_sprint", "p1_marathon", "p1_glazer", "p2_free", "p2_100hz_free"])
def test_pressure_rises_during_squeezes(name):
    rec, _ = synth(name, 0)
    fs, x = rec["rate"], rec["x"]
    for e in rec["truth"]:
        if e["kind"] == "squeeze" and e["amplitude"] > 10:
            i0, i1 = round(e["onset_s"] * fs), round(e["offset_s"] * fs)
            pre = np.median(x[max(0, i0 - round(0.3 * fs)):i0 + 1])
            assert x[i0:i1].max() - pre > 0.25 * e["amplitude"]   # >= 0.4 A even from a residual


def test_cough_is_larger_on_abdominal_channel():
    rec, _ = synth("p2_free", 0)
    fs = rec["rate"]
    for e in rec["truth"]:
        if e["kind"] in ("cough", "bearing_down"):
            sl = slice(round(e["onset_s"] * fs), round(e["offset_s"] * fs))
            assert np.ptp(rec["abd"][sl]) >= np.ptp(rec["x"][sl]) - 1.0


def test_cli_plot(tmp_path):
    out = tmp_path / "p.png"
    pg.main(["p2_sprint", "3", "--plot", str(out)])
    assert out.stat().st_size > 10000
