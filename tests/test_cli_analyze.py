"""`knip analyze`: report, JSON, plot, exit codes, and the real recordings end to end."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from knip_host.cli import main
from knip_host.commands.registry import COMMANDS

# Fields every event carries (docs/CORE_API.md, "Host view of an event").
EVENT_FIELDS = {"kind", "onset_s", "offset_s", "peak", "peak_s", "mean_hold", "hold_s", "rise_s",
                "release_s", "area", "residual", "relaxed", "rest_before_s", "rest_ok",
                "technique", "detected_s", "ended_s"}
KINDS = {"squeeze", "cough", "bearing_down"}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def squeeze_csv(tmp_path: Path, name: str = "session.csv") -> Path:
    """50 Hz pressure: 20 s rest, then three 5 s squeezes of 30 cmH2O with 10 s rests."""
    rate, rows = 50, []
    for i in range(int(70 * rate)):
        t = i / rate
        p = 2.0 + 0.15 * math.sin(7.1 * t)
        for start in (20, 35, 50):
            if start <= t < start + 5:
                ramp = min(1.0, (t - start) / 0.8, (start + 5 - t) / 0.8)
                p += 30.0 * max(0.0, ramp)
        rows.append(f"{t:.3f},{p:.3f}")
    path = tmp_path / name
    path.write_text("# unit: cmH2O\ntime_s,pressure\n" + "\n".join(rows) + "\n")
    return path


def assert_one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("knip: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, err)


# -------------------------------------------------------------- help, parser

def test_help_lists_analyze(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "analyze" in out and "usage: knip" in out
    code, out, _ = run(capsys, "analyze", "--help")
    assert code == 0
    for opt in ("--signal", "--channel", "--abdominal", "--rate", "--json", "--plot", "--format"):
        assert opt in out


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "commands:" in out


def test_commands_table_shape():
    for name, (func, help_text, args) in COMMANDS.items():
        assert callable(func) and help_text and isinstance(args, list)


@pytest.mark.parametrize("argv, needle", [
    (["analyze"], "FILE"),
    (["analyze", "x.csv", "--rate", "fast"], "--rate"),
    (["analyze", "x.csv", "--rate", "-5"], "positive"),
    (["analyze", "x.csv", "--signal", "force"], "--signal"),
    (["frobnicate"], "frobnicate"),
])
def test_argument_errors_are_one_line(capsys, argv, needle):
    assert_one_line_error(*run(capsys, *argv), needle)


# ------------------------------------------------------------- the happy path

def test_report_on_synthetic_squeezes(capsys, tmp_path):
    path = squeeze_csv(tmp_path)
    code, out, err = run(capsys, "analyze", str(path))
    assert code == 0, err
    assert str(path) in out and "csv, 50 Hz" in out and "cmH2O" in out
    assert "peak cmH2O" in out and "summary" in out
    assert out.count(" squeeze ") >= 2


def test_json_shape(capsys, tmp_path):
    path = squeeze_csv(tmp_path)
    code, out, err = run(capsys, "analyze", str(path), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert {"recording", "events", "summary"} <= set(doc)
    rec = doc["recording"]
    assert rec["format"] == "csv" and rec["unit"] == "cmH2O" and rec["channel"] == "pressure"
    assert rec["signal"] == "pressure" and rec["abdominal"] is None
    assert rec["rate_hz"] == pytest.approx(50, rel=1e-3)
    assert isinstance(doc["summary"], dict)
    squeezes = [e for e in doc["events"] if e["kind"] == "squeeze"]
    assert len(squeezes) == 3, doc["events"]
    for ev, start in zip(squeezes, (20, 35, 50)):
        assert EVENT_FIELDS <= set(ev)
        assert abs(ev["onset_s"] - start) < 1.0
        assert ev["peak"] == pytest.approx(32, abs=3)
        assert ev["technique"] is None                  # one channel: not judged
    for ev in doc["events"]:
        assert ev["kind"] in KINDS


def test_signal_and_channel_options(capsys, tmp_path):
    path = tmp_path / "two.csv"
    rows = "".join(f"{i / 20:.2f},{i % 7},{5 + i % 3}\n" for i in range(400))
    path.write_text("time_s,a,b\n" + rows)
    code, out, err = run(capsys, "analyze", str(path), "--json", "--channel", "b",
                         "--abdominal", "a", "--signal", "pressure")
    assert code == 0, err
    rec = json.loads(out)["recording"]
    assert rec["channel"] == "b" and rec["abdominal"] == "a"
    code, out, err = run(capsys, "analyze", str(path), "--json")
    assert code == 0 and "channel a picked" in json.loads(out)["recording"]["notes"][0]


def test_pressure_rates_are_refused_as_emg(capsys, tmp_path):
    # 50 Hz read as raw EMG gave a rest level of 4092 and no events, silently
    path = squeeze_csv(tmp_path)
    assert_one_line_error(*run(capsys, "analyze", str(path), "--signal", "emg"),
                          "raw EMG needs at least 200 samples a second", "this recording has 50",
                          "give --signal pressure")


def test_rate_option_for_timeless_csv(capsys, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("pressure\n" + "".join(f"{2 + (i % 5) * 0.1}\n" for i in range(500)))
    assert_one_line_error(*run(capsys, "analyze", str(path)), "line 1", "--rate")
    code, out, err = run(capsys, "analyze", str(path), "--rate", "50", "--json")
    assert code == 0, err
    assert json.loads(out)["recording"]["rate_hz"] == 50


def test_plot_writes_a_png(capsys, tmp_path):
    png = tmp_path / "out.png"
    code, out, err = run(capsys, "analyze", str(squeeze_csv(tmp_path)), "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert f"plot written to {png}" in out


def test_plot_into_missing_folder(capsys, tmp_path):
    png = tmp_path / "no" / "such" / "out.png"
    assert_one_line_error(*run(capsys, "analyze", str(squeeze_csv(tmp_path)), "--plot", str(png)),
                          "does not exist")


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("name, text, needles", [
    ("empty.csv", "", ["empty"]),
    ("header.csv", "time_s,pressure\n", ["no data rows", "line 1"]),
    ("nan.csv", "time_s,p\n0,1\nnan,2\n", ["line 3", "not a finite time"]),
    ("word.csv", "time_s,p\n0,1\n0.02,high\n", ["line 3", "'high'", "not a number"]),
    ("cols.csv", "time_s,p\n0,1\n0.02,1,2\n", ["line 3", "expected 2"]),
    ("back.csv", "time_s,p\n0,1\n0.02,1\n0.01,2\n", ["line 4", "not after"]),
    ("data.json", '{"a": 1}\n', ["JSON"]),
])
def test_bad_files_exit_2_with_line(capsys, tmp_path, name, text, needles):
    path = tmp_path / name
    path.write_text(text)
    assert_one_line_error(*run(capsys, "analyze", str(path)), str(path), *needles)


def test_binary_and_missing_files(capsys, tmp_path):
    blob = tmp_path / "blob.csv"
    blob.write_bytes(bytes(range(256)) * 8)
    assert_one_line_error(*run(capsys, "analyze", str(blob)), "binary")
    assert_one_line_error(*run(capsys, "analyze", str(tmp_path / "missing.csv")), "no such file")


def test_unknown_channel_lists_the_channels(capsys, tmp_path):
    path = squeeze_csv(tmp_path)
    assert_one_line_error(*run(capsys, "analyze", str(path), "--channel", "force"),
                          "'force'", "pressure")
    assert_one_line_error(*run(capsys, "analyze", str(path), "--abdominal", "pressure"),
                          "--abdominal")


def test_constant_signal_warns_but_runs(capsys, tmp_path):
    path = tmp_path / "flat.csv"
    path.write_text("time_s,p\n" + "".join(f"{i / 50:.2f},3.0\n" for i in range(300)))
    code, out, err = run(capsys, "analyze", str(path))
    assert code == 0, err
    assert "no squeezes can be found in a constant signal" in out


# ------------------------------------------------------------------ real data

def test_real_hrm_end_to_end(capsys, recordings, tmp_path):
    path = recordings / "anorectal_hrm_1.txt"
    code, out, err = run(capsys, "analyze", str(path), "--abdominal", "B1",
                         "--plot", str(tmp_path / "hrm.png"))
    assert code == 0, err
    assert "hrm, 1.852 Hz" in out and "mmHg" in out
    assert "picked" in out and "abdominal B1" in out
    # Annotations are interleaved with the events in time order.
    lines = out.splitlines()
    i_sq1 = next(i for i, s in enumerate(lines) if s.rstrip().endswith("# Squeeze 1"))
    i_push = next(i for i, s in enumerate(lines) if s.rstrip().endswith("# Push 1"))
    assert i_sq1 < i_push
    assert any("squeeze" in s for s in lines[i_sq1 + 1:i_push])
    assert (tmp_path / "hrm.png").read_bytes()[:4] == b"\x89PNG"

    code, out, err = run(capsys, "analyze", str(path), "--abdominal", "B1", "--json")
    doc = json.loads(out)
    assert doc["recording"]["channel"] in [str(i) for i in range(1, 11)]
    assert doc["events"] and all(EVENT_FIELDS <= set(e) for e in doc["events"])
    assert {e["technique"] for e in doc["events"]} <= {"lift", "co_contraction", "push", None}


def test_real_semg_end_to_end(capsys, recordings):
    for name in ("semg_1.txt", "semg_2.txt"):
        code, out, err = run(capsys, "analyze", str(recordings / name), "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert doc["recording"]["signal"] == "emg" and doc["recording"]["unit"] == "counts"
        assert doc["recording"]["channel"] == "EMG"
        assert all(EVENT_FIELDS <= set(e) for e in doc["events"])
    assert doc["events"], "semg_2 has strong bursts: expected events"


def test_installed_console_script(recordings, tmp_path):
    exe = Path(sys.executable).parent / "knip"
    script = str(exe) if exe.exists() else shutil.which("knip")
    if script is None:
        pytest.fail("the `knip` console script is not installed: run `make setup`")
    ok = subprocess.run([script, "analyze", str(recordings / "anorectal_hrm_2.txt"), "--json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["recording"]["format"] == "hrm"
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,p\n0,1\n0.02,x\n")
    fail = subprocess.run([script, "analyze", str(bad)], capture_output=True, text=True, timeout=60)
    assert fail.returncode == 2 and fail.stdout == ""
    assert fail.stderr.startswith("knip: error: ") and "line 3" in fail.stderr
    assert "Traceback" not in fail.stderr


# ------------------------------------------------------------- report layout

def test_report_layout_interleaves_annotations_and_marks_short_rests(tmp_path):
    from types import SimpleNamespace

    from knip_host.recordings import load
    from knip_host.report import render

    path = tmp_path / "m.txt"
    rows = "".join(f"{0.5 * i:8.2f}\t{5 + i % 3:8.2f}\t{20 + i % 4:8.2f}\n" for i in range(100))
    path.write_text("TIME:\tB1\t1\n" + rows + "\nAnnotations:\n   9.00\t# Squeeze 1\n"
                    "  30.00\t# Push 1\n")
    rec = load(path)
    base = dict(peak_s=0, mean_hold=0, area=0, detected_s=0, ended_s=0, rise_s=0.5,
                release_s=0.4, residual=0.2, technique="lift")
    events = [
        dict(base, kind="squeeze", onset_s=10.0, offset_s=16.0, peak=41.25, hold_s=5.0,
             relaxed=True, rest_before_s=None, rest_ok=None),
        dict(base, kind="squeeze", onset_s=18.0, offset_s=25.0, peak=38.0, hold_s=6.0,
             relaxed=False, rest_before_s=2.0, rest_ok=False),
        dict(base, kind="bearing_down", onset_s=31.0, offset_s=36.0, peak=30.0, hold_s=3.0,
             relaxed=None, rest_before_s=None, rest_ok=None, residual=None, technique="push"),
    ]
    text = render(rec, SimpleNamespace(events=events, summary={"noise": 0.5}),
                  signal="pressure", channel="1", abdominal="B1")
    lines = text.splitlines()
    head = next(i for i, s in enumerate(lines) if s.lstrip().startswith("#  kind"))
    body = lines[head + 1:head + 6]
    assert [s.split()[0] for s in body] == [">", "1", "2", ">", "3"]
    assert body[0].endswith("# Squeeze 1") and body[3].endswith("# Push 1")
    assert "peak mmHg" in lines[head] and "41.2" in body[1]
    assert "2.0!" in body[2] and "bearing down" in body[4] and "push" in body[4]
    col = lines[head].index("offset s") + len("offset s")
    assert all(s[col - 1] != " " for s in (body[1], body[2], body[4]))  # right-aligned
    assert "rests too short 1 of 1" in text and "relaxed after   1 of 2" in text
    assert "squeeze 2, cough 0, bearing down 1" in text and "noise 0.50 mmHg" in text


def _rows_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _clean_and_edited(capsys, tmp_path, edits: dict[str, Callable[[float], str]]) -> list[dict]:
    """`knip analyze --json` of squeeze_csv() and of a copy with the value at
    each time in `edits` (s, as written) replaced by edits[time](value)."""
    clean = squeeze_csv(tmp_path, "clean.csv")
    lines = _rows_of(clean)
    for at, cell in edits.items():
        i = lines.index(next(ln for ln in lines if ln.startswith(at + ",")))
        lines[i] = f"{at},{cell(float(lines[i].split(',')[1]))}"
    edited = tmp_path / "edited.csv"
    edited.write_text("\n".join(lines) + "\n")
    runs = []
    for path in (clean, edited):
        code, out, err = run(capsys, "analyze", str(path), "--json")
        assert code == 0, err
        runs.append(json.loads(out))
    return runs


def test_a_lone_corrupt_reading_is_a_gap_not_saturation(capsys, tmp_path):
    # one sample of 1e11 in the middle of a hold: clipped, it was saturation
    # and cut the squeeze (the rest of it never reported)
    runs = _clean_and_edited(capsys, tmp_path, {"37.000": lambda p: "1e11"})
    assert [(e["kind"], e["onset_s"], e["offset_s"]) for e in runs[1]["events"]] == \
        [(e["kind"], e["onset_s"], e["offset_s"]) for e in runs[0]["events"]]
    assert len(runs[1]["events"]) == 3 and not any(e["cut"] for e in runs[1]["events"])
    assert any("1 samples are missing" in w and "a lone reading out of range" in w and "37.000 s" in w
               for w in runs[1]["warnings"])


def test_a_lone_glitch_within_range_is_mended_and_told(capsys, tmp_path):
    # one sample of +80 cmH2O at rest and one of +60 in a hold: before, the
    # first was a squeeze of its own and the second raised the hold's peak
    runs = _clean_and_edited(capsys, tmp_path, {"12.000": lambda p: f"{p + 80:.3f}",
                                                "37.000": lambda p: f"{p + 60:.3f}"})
    assert runs[1]["events"] == runs[0]["events"]
    assert any(w.startswith("2 lone sample(s) far off both neighbours") and "first at 12.000 s" in w
               for w in runs[1]["warnings"]), runs[1]["warnings"]


def test_the_table_names_each_artefact_and_a_cut_squeeze(capsys, tmp_path):
    lines = _rows_of(squeeze_csv(tmp_path))
    for k, ln in enumerate(lines):
        t = ln.split(",")[0]
        if t.replace(".", "").isdigit():
            if 37.0 <= float(t) < 38.0:
                lines[k] = f"{t},nan"                # a dropout in the second squeeze
            elif 10.0 <= float(t) < 15.0:
                lines[k] = f"{t},2.000"              # a sensor stuck at one value at rest
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "analyze", str(path))
    assert code == 0, err
    rows = {r.split()[1] + (" " + r.split()[2] if r.split()[2].startswith("(") else ""): r
            for r in out.splitlines() if r[:2].strip().isdigit()}
    assert "artefact (flat)" in rows and "artefact (gap)" in rows and "squeeze (cut)" in rows, out
    assert rows["artefact (gap)"].split()[5:9] == ["-", "-", "-", "-"]      # no peak, hold, rise, release
    assert rows["squeeze (cut)"].split()[8] == "-"                         # its release was not seen
    assert "the signal stays exactly flat in 1 stretch(es)" in out


def test_knip_exports_own_csv_is_read_with_its_unit_and_abdominal_channel(capsys, tmp_path):
    # the columns knip export writes (knip_host.export): the unit in the name
    lines = _rows_of(squeeze_csv(tmp_path))
    body = [f"{ln},{5 + 0.1 * (k % 5):.2f}" for k, ln in enumerate(lines[2:])]
    path = tmp_path / "knip-sim-0001-3.csv"
    path.write_text("time_s,pressure_cmH2O,abdominal_cmH2O\n" + "\n".join(body) + "\n")
    code, out, err = run(capsys, "analyze", str(path), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["recording"]["unit"] == "cmH2O" and d["recording"]["abdominal"] == "abdominal_cmH2O"
    assert [e["technique"] for e in d["events"]] == ["lift"] * 3
