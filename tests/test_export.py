"""`knip export`: CSV read back with the csv module, EDF+ read back with edfio."""
from __future__ import annotations

import csv
import datetime as dt
import re
import warnings

import edfio
import numpy as np
import pytest

from knip_host.export import (decimals, event_label, export_csv, export_edf, on_grid,
                              record_duration)
from test_database import EPOCH, make_session


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


# ------------------------------------------------------------------ helpers

def test_decimals_show_every_count():
    assert decimals(20) == 2 and decimals(1) == 0 and decimals(16) == 4 and decimals(10) == 1
    assert decimals(3) == 6


def test_record_duration():
    assert record_duration(50) == (1.0, 50)
    assert record_duration(1000.0) == (1.0, 1000)
    assert record_duration(12.5) == (2.0, 25)


def test_event_label_reads_like_a_sentence():
    ev = {"kind": "squeeze", "peak": 32.14, "hold_s": 4.21, "relaxed": True, "rest_ok": True,
          "technique": None}
    assert event_label(ev, 1, "cmH2O") == "squeeze 1: peak 32.1 cmH2O, held 4.2 s, relaxed"
    ev.update(relaxed=False, residual=6.04, rest_ok=False, technique="co_contraction")
    assert event_label(ev, 2, "cmH2O") == ("squeeze 2: peak 32.1 cmH2O, held 4.2 s, not relaxed "
                                           "(6.0 cmH2O left), rest before it too short, "
                                           "co-contraction")
    cough = {"kind": "cough", "peak": 80.0, "duration_s": 0.5, "technique": None}
    assert event_label(cough, 1, "cmH2O") == "cough 1: peak 80.0 cmH2O, 0.5 s"


# ------------------------------------------------------------------ CSV

def test_csv_samples_two_channels(tmp_path):
    s = make_session(session_id=3)
    paths = export_csv(s, tmp_path / "s3.csv")
    assert [p.name for p in paths] == ["s3.csv", "s3_events.csv", "s3_cues.csv"]
    rows = read_csv(paths[0])
    assert rows[0] == ["time_s", "pressure_cmH2O", "abdominal_cmH2O"]
    body = rows[1:]
    assert len(body) == len(s.values)
    t = np.array([float(r[0]) for r in body])
    p = np.array([float(r[1]) for r in body])
    a = np.array([float(r[2]) for r in body])
    np.testing.assert_allclose(t, s.t_ms / 1000.0, atol=1e-9)
    np.testing.assert_allclose(p, s.values / 20.0, atol=1e-9)     # every count exact
    np.testing.assert_allclose(a, s.abd / 20.0, atol=1e-9)
    assert all(len(r[1].split(".")[1]) == 2 for r in body[:50])  # 0.05 cmH2O steps: 2 decimals


def test_csv_events_one_row_per_event(tmp_path):
    s = make_session(session_id=3)
    _, ev_path, cue_path = export_csv(s, tmp_path / "s3.csv")
    rows = read_csv(ev_path)
    head, body = rows[0], rows[1:]
    assert head[0] == "number" and head[-1] == "label"
    assert set(s.events[0]) <= set(head)
    assert len(body) == len(s.events)
    col = {name: i for i, name in enumerate(head)}
    for row, ev in zip(body, sorted(s.events, key=lambda e: e["onset_s"])):
        assert row[col["kind"]] == ev["kind"]
        assert float(row[col["onset_s"]]) == pytest.approx(ev["onset_s"])
        assert float(row[col["peak"]]) == pytest.approx(ev["peak"])
        want = "" if ev["relaxed"] is None else ("yes" if ev["relaxed"] else "no")
        assert row[col["relaxed"]] == want
        assert row[col["label"]].startswith(f"{ev['kind'].replace('_', ' ')} ")
    squeezes = [r for r in body if r[col["kind"]] == "squeeze"]
    assert [int(r[0]) for r in squeezes] == list(range(1, len(squeezes) + 1))
    cues = read_csv(cue_path)
    assert cues[0][:3] == ["time_s", "cue", "phase"]
    assert len(cues) - 1 == len(s.cues)
    squeeze = cues[2]                                  # after the settling rest
    assert squeeze[1:6] == ["squeeze", "1", "1", str(s.cues[1]["reps"]), f"{s.cues[1]['dur_ms'] / 1000:g}"]
    assert float(squeeze[0]) == pytest.approx(s.cues[1]["t_ms"] / 1000)
    assert squeeze[-1].startswith("cue: squeeze 1/") and squeeze[-1].endswith("target 80% MVC)")


def test_csv_emg_one_channel_no_cues(tmp_path):
    s = make_session(signal="emg")
    s.cues = []
    paths = export_csv(s, tmp_path / "emg.csv")
    assert [p.name for p in paths] == ["emg.csv", "emg_events.csv"]
    rows = read_csv(paths[0])
    assert rows[0] == ["time_s", "emg_uV"]
    assert len(rows) - 1 == len(s.values)
    assert [int(r[1]) for r in rows[1:2001]] == [int(v) for v in s.values[:2000]]
    assert float(rows[1001][0]) == pytest.approx(1.0)


def test_csv_gap_shows_as_a_time_jump(tmp_path):
    s = make_session(gaps=((400, 25),))
    rows = read_csv(export_csv(s, tmp_path / "g.csv")[0])[1:]
    t = np.array([float(r[0]) for r in rows])
    steps = np.diff(t)
    assert steps.max() == pytest.approx(26 / 50)          # one jump over the 25 lost samples
    assert int(np.argmax(steps)) == 399


# ------------------------------------------------------------------ EDF

def read_edf(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # edfio must not complain about our file
        return edfio.read_edf(path)


def texts(edf):
    return [a.text for a in edf.annotations]


def test_edf_samples_units_and_start(tmp_path):
    s = make_session(session_id=4)
    path = export_edf(s, tmp_path / "s.edf")
    edf = read_edf(path)
    assert edf.startdatetime == dt.datetime.fromtimestamp(EPOCH)
    assert edf.data_record_duration == 1.0
    assert edf.reserved == "EDF+C"
    assert [sig.label for sig in edf.signals] == ["pressure", "abdominal"]
    for sig, counts in zip(edf.signals, (s.values, s.abd)):
        assert sig.physical_dimension == "cmH2O" and sig.sampling_frequency == 50
        assert sig.digital_range == (-32768, 32767)
        x = counts / 20.0
        lo, hi = sig.physical_range
        assert lo < x.min() and hi > x.max()                     # margin round the data
        assert hi - lo < 1.5 * (x.max() - x.min())
        q = (hi - lo) / 65535
        data = sig.data
        assert len(data) == edf.num_data_records * 50 >= len(x)
        np.testing.assert_allclose(data[:len(x)], x, atol=q)
    assert "knip-sim-0001" in edf.local_recording_identification
    assert "session-4" in edf.local_recording_identification


def test_edf_annotations_squeezes_cues_and_padding(tmp_path):
    s = make_session(session_id=4)
    edf = read_edf(export_edf(s, tmp_path / "s.edf"))
    notes = texts(edf)
    squeezes = sorted((e for e in s.events if e["kind"] == "squeeze"), key=lambda e: e["onset_s"])
    first = squeezes[0]
    verdict = "relaxed" if first["relaxed"] else "not relaxed"
    label = next(t for t in notes if t.startswith("squeeze 1:"))
    assert f"peak {first['peak']:.1f} cmH2O" in label and f"held {first['hold_s']:.1f} s" in label
    assert verdict in label
    ann = next(a for a in edf.annotations if a.text == label)
    assert ann.onset == pytest.approx(first["onset_s"], abs=1e-3)
    assert ann.duration == pytest.approx(first["offset_s"] - first["onset_s"], abs=1e-3)
    end = next(a for a in edf.annotations if a.text == f"squeeze 1 end: {verdict}")
    assert end.onset == pytest.approx(first["offset_s"], abs=1e-3)
    n = len(squeezes)
    assert sum(bool(re.match(r"squeeze \d+:", t)) for t in notes) == n
    assert sum(bool(re.match(r"squeeze \d+ end: ", t)) for t in notes) == n
    cue = next(a for a in edf.annotations if a.text.startswith("cue: squeeze 1/"))
    assert cue.onset == pytest.approx(s.cues[1]["t_ms"] / 1000, abs=1e-3)
    assert cue.duration == pytest.approx(s.cues[1]["dur_ms"] / 1000, abs=1e-3)
    assert "target 80% MVC" in cue.text
    assert sum(t.startswith("cue: ") for t in notes) == len(s.cues)
    block = next(a for a in edf.annotations if a.text.startswith("set: "))
    assert block.text == f"set: {s.cues[1]['reps']} x squeeze {s.cues[1]['dur_ms'] / 1000:g} s, target 80% MVC"
    assert "program done" in notes
    # the last record is padded, and an annotation says where the data ends
    pad = edf.num_data_records * 50 - len(s.values)
    assert pad > 0
    padding = next(a for a in edf.annotations if a.text.startswith("end of data"))
    assert padding.onset == pytest.approx(len(s.values) / 50) and padding.duration == pytest.approx(pad / 50)
    assert not any("clock" in t for t in notes)


def test_edf_gap_keeps_time_aligned(tmp_path):
    s = make_session(gaps=((400, 25),))
    edf = read_edf(export_edf(s, tmp_path / "g.edf"))
    gap = next(a for a in edf.annotations if a.text.startswith("gap:"))
    assert gap.onset == pytest.approx(400 / 50) and gap.duration == pytest.approx(25 / 50)
    assert "25 samples" in gap.text
    sig = edf.signals[0]
    q = (sig.physical_range.max - sig.physical_range.min) / 65535
    x = s.values / 20.0
    # after the gap each sample sits at its own time: sample i (i >= 400) at slot i + 25
    np.testing.assert_allclose(sig.data[425:425 + 100], x[400:500], atol=q)
    np.testing.assert_allclose(sig.data[:400], x[:400], atol=q)
    np.testing.assert_allclose(sig.data[400:425], x[399], atol=q)     # held over the gap
    grid, real = on_grid(s, x, 50.0, 0.0)
    assert (~real).sum() == 25


def test_two_gaps_counted_as_the_device_counts(tmp_path):
    """Gap indices count every sample, lost ones too: the second gap (at 900)
    comes after 25 samples lost at 400, so the kept sample after it is values[875]."""
    s = make_session(gaps=((400, 25), (900, 10)))
    assert len(s.values) == len(make_session().values) - 35
    edf = read_edf(export_edf(s, tmp_path / "g2.edf"))
    gaps = [a for a in edf.annotations if a.text.startswith("gap:")]
    assert [(g.onset, g.duration) for g in gaps] == [pytest.approx((8.0, 0.5)), pytest.approx((18.0, 0.2))]
    sig = edf.signals[0]
    q = (sig.physical_range.max - sig.physical_range.min) / 65535
    full = make_session().values / 20.0
    n = len(full)
    np.testing.assert_allclose(sig.data[:n][np.r_[0:400, 425:900, 910:n]],
                               full[np.r_[0:400, 425:900, 910:n]], atol=q)
    rows = read_csv(export_csv(s, tmp_path / "g2.csv")[0])[1:]
    t = np.array([float(r[0]) for r in rows])
    jumps = np.flatnonzero(np.diff(t) > 0.03)
    assert list(jumps) == [399, 874]


def test_edf_unset_clock_and_power_cut(tmp_path):
    s = make_session(start_epoch=None, complete=False)
    path = export_edf(s, tmp_path / "nc.edf")
    edf = read_edf(path)
    header = path.read_bytes()[:256]
    assert header[168:184] == b"01.01.8500.00.00"           # EDF+ date for "unknown"
    assert edf.recording.get_subfield(1) == "X"
    clock = next(a for a in edf.annotations if "clock was not set" in a.text)
    assert clock.onset == 0
    assert any("power cut" in t for t in texts(edf))


def test_edf_emg_1000hz(tmp_path):
    s = make_session(signal="emg")
    edf = read_edf(export_edf(s, tmp_path / "emg.edf"))
    (sig,) = edf.signals
    assert sig.label == "EMG" and sig.physical_dimension == "uV"
    assert sig.sampling_frequency == 1000
    q = (sig.physical_range.max - sig.physical_range.min) / 65535
    np.testing.assert_allclose(sig.data[:len(s.values)], s.values.astype(float), atol=q)
    sq = [e for e in s.events if e["kind"] == "squeeze"]
    labels = [t for t in texts(edf) if re.match(r"squeeze \d+:", t)]
    assert len(labels) == len(sq) > 0
    assert all(" uV," in t for t in labels)


def test_edf_no_samples_is_refused(tmp_path):
    s = make_session()
    s.values = s.values[:0]
    s.t_ms = s.t_ms[:0]
    s.abd = None
    with pytest.raises(ValueError, match="no samples"):
        export_edf(s, tmp_path / "e.edf")
    assert not (tmp_path / "e.edf").exists()
