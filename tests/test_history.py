"""`knip sessions / show / plot / export` over a real session database.

The commands are called through their own argument specs (their entries
in knip_host.commands.registry.COMMANDS) with the test decoder in place of
knip_host.sessionfile.decode; one test also runs them through
`knip_host.cli.main`.
"""
from __future__ import annotations

import argparse
import csv
import json
import re

import edfio
import matplotlib.image
import numpy as np
import pytest

from knip_host import cli, durations
from knip_host.commands import stored
from knip_host.commands.output import default_name
from knip_host.commands.registry import COMMANDS
from knip_host.database import DatabaseError, SessionDatabase, session_figures
from knip_host.plot import session_figure_size
from knip_host.usage import UsageError
from test_database import EPOCH, fake_decode, make_session, store


@pytest.fixture(autouse=True)
def test_decoder(monkeypatch):
    monkeypatch.setattr(stored, "DECODER", fake_decode)


def run(capsys, name: str, *argv: str) -> tuple[int, str]:
    """Parse argv with the command's own argument list, run it, return (code, stdout)."""
    func, _help, spec = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"knip {name}")
    for names, kw in spec:
        parser.add_argument(*names, **kw)
    code = func(parser.parse_args(list(argv)))
    return code, capsys.readouterr().out


STORED_SESSION_COMMANDS = ("sessions", "show", "plot", "export")

SESSIONS = {
    ("sim-0001", 1): dict(start_epoch=EPOCH),
    ("sim-0001", 2): dict(start_epoch=EPOCH + 86400, program="marathon", seed=5, gaps=((700, 20),)),
    ("aabbccddeeff", 1): dict(start_epoch=None, signal="emg", complete=False, program=""),
}


@pytest.fixture
def dbpath(tmp_path):
    path = tmp_path / "knip.sqlite3"
    with SessionDatabase.open(path) as db:
        for (device, n), kw in SESSIONS.items():
            store(db, make_session(device, n, **kw))
    return str(path)


def session(device, n):
    return make_session(device, n, **SESSIONS[(device, n)])


# ------------------------------------------------------------------ formatting

def test_minutes_and_local_time():
    assert durations.minutes(65.4) == "1:05" and durations.minutes(5) == "0:05"
    assert durations.minutes(None) == "-" and durations.minutes(float("nan")) == "-"
    assert durations.minutes(3725) == "1:02:05"
    assert stored.local_time(None) == "clock not set"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", stored.local_time(EPOCH))
    assert default_name(("aa:bb:cc", 3), ".png") == "knip-aa-bb-cc-3.png"


def test_commands_have_the_cli_format():
    for name in STORED_SESSION_COMMANDS:
        func, help_text, spec = COMMANDS[name]
        assert callable(func) and func.__doc__ and help_text and help_text[0].islower()
        for names, kw in spec:
            assert isinstance(names, tuple) and isinstance(kw, dict)
        assert any(names == ("--db",) for names, _ in spec), name


# ------------------------------------------------------------------ sessions

def test_sessions_empty_database_is_helpful(capsys, tmp_path):
    code, out = run(capsys, "sessions", "--db", str(tmp_path / "none.sqlite3"))
    assert code == 0
    assert out.splitlines()[0] == stored.NO_SESSIONS
    assert not (tmp_path / "none.sqlite3").exists()           # reading creates nothing
    SessionDatabase.open(tmp_path / "empty.sqlite3").close()
    code, out = run(capsys, "sessions", "--db", str(tmp_path / "empty.sqlite3"))
    assert code == 0 and "knip sync --port sim" in out


def test_sessions_table(capsys, dbpath):
    code, out = run(capsys, "sessions", "--db", dbpath)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["session", "date", "program", "duration", "squeezes", "relaxed",
                                "fully", "status"]
    rows = {line.split()[0]: line for line in lines[1:4]}
    assert list(rows) == ["sim-0001/1", "sim-0001/2", "aabbccddeeff/1"]   # unset clock: last
    for (device, n) in SESSIONS:
        s = session(device, n)
        f = session_figures(s)
        line = rows[f"{device}/{n}"]
        assert durations.minutes(s.duration_s) in line
        cells = re.split(r"\s{2,}", line.strip())
        assert str(f["squeezes"]) in cells
        assert f"{f['relaxed_fully']}/{f['judged']}" in cells
    assert stored.local_time(EPOCH) in rows["sim-0001/1"]
    assert "clock not set" in rows["aabbccddeeff/1"]
    assert "recovered after power cut" in rows["aabbccddeeff/1"]
    assert "free training" in rows["aabbccddeeff/1"]
    assert "complete" in rows["sim-0001/2"] and "marathon" in rows["sim-0001/2"]
    assert "3 sessions from 2 devices" in out


def test_sessions_device_filter_and_json(capsys, dbpath):
    code, out = run(capsys, "sessions", "--db", dbpath, "--device", "sim-0001", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["database"] == dbpath
    assert [r["key"] for r in doc["sessions"]] == ["sim-0001/1", "sim-0001/2"]
    first = doc["sessions"][0]
    assert first["n_squeezes"] == session_figures(session("sim-0001", 1))["squeezes"]
    assert first["start_epoch"] == EPOCH and first["complete"] is True
    with pytest.raises(DatabaseError, match=r"no sessions from device 'sim-9'.*aabbccddeeff, sim-0001"):
        run(capsys, "sessions", "--db", dbpath, "--device", "sim-9")


# ------------------------------------------------------------------ show

def test_show_summary_and_table(capsys, dbpath):
    code, out = run(capsys, "show", "sim-0001/2", "--db", dbpath)
    assert code == 0
    s = session("sim-0001", 2)
    f = session_figures(s)
    head = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.split("\n\n")[0].splitlines())
    assert head["session"] == "sim-0001/2" and head["program"] == "marathon"
    assert head["date"] == stored.local_time(EPOCH + 86400) + " (local time)"
    assert head["duration"] == f"{durations.minutes(s.duration_s)} (complete)"
    assert head["signal"].startswith("pressure in cmH2O, 50 Hz, two channels")
    assert head["squeezes"].startswith(f"{f['squeezes']}: strongest {f['max_peak']:.1f} cmH2O")
    assert f"mean hold {f['mean_hold_s']:.1f} s" in head["squeezes"]
    assert head["relaxed fully"].startswith(f"{f['relaxed_fully']} of {f['judged']}")
    assert head["rests too short"] == f"{f['rests_too_short']} of {f['rests_judged']}"
    assert head["bearing down"] == str(f["bearing_down"])
    assert head["gaps"] == "1: 20 samples lost (0.40 s)"
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split()[:3] == ["#", "kind", "onset"]
    event_rows = [r for r in table[1:] if re.match(r"\d+\s", r)]
    assert len(event_rows) == len(s.events)
    assert any("gap: 20 samples lost (0.40 s)" in r for r in table)
    block = s.cues[1]
    assert any(r.endswith(f"set: {block['reps']} x squeeze {block['dur_ms'] / 1000:g} s, target 60% MVC")
               for r in table)
    assert any(r.endswith("program done") for r in table)
    first = sorted(s.events, key=lambda e: e["onset_s"])[0]
    assert f"{first['onset_s']:.2f}" in event_rows[0]


def test_show_emg_one_channel(capsys, dbpath):
    code, out = run(capsys, "show", "last", "--db", dbpath)
    assert code == 0
    assert "aabbccddeeff/1" in out and "clock not set" in out and "recovered after power cut" in out
    assert "emg in uV, 1000 Hz, one channel" in out
    assert "bearing down" not in out.split("\n\n")[0]           # one channel: not judged
    f = session_figures(session("aabbccddeeff", 1))
    assert f"strongest {f['max_peak']:.1f} uV" in out


def test_show_json(capsys, dbpath):
    code, out = run(capsys, "show", "-3", "--db", dbpath, "--json")
    doc = json.loads(out)
    s = session("sim-0001", 1)
    assert code == 0 and doc["session"]["key"] == "sim-0001/1"
    assert doc["summary"] == json.loads(json.dumps(session_figures(s)))
    assert len(doc["events"]) == len(s.events) and len(doc["cues"]) == len(s.cues)
    assert doc["session"]["channels"] == 2 and doc["session"]["samples"] == len(s.values)


def test_show_bad_reference_lists_what_exists(capsys, dbpath):
    with pytest.raises(DatabaseError, match=r"session 1 exists on 2 devices"):
        run(capsys, "show", "1", "--db", dbpath)
    with pytest.raises(DatabaseError, match=r"no session 7; 'knip sessions' lists the 3 stored sessions"):
        run(capsys, "show", "7", "--db", dbpath)


def test_show_without_database(capsys, tmp_path):
    with pytest.raises(DatabaseError, match=r"no session database at .*knip sync"):
        run(capsys, "show", "last", "--db", str(tmp_path / "missing.sqlite3"))
    assert not (tmp_path / "missing.sqlite3").exists()


# ------------------------------------------------------------------ plot

def test_plot_default_name_two_channels(capsys, dbpath, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = run(capsys, "plot", "sim-0001/2", "--db", dbpath)
    png = tmp_path / "knip-sim-0001-2.png"
    assert code == 0 and out.strip() == "plot written to knip-sim-0001-2.png"
    assert png.stat().st_size > 10_000
    img = matplotlib.image.imread(png)
    w, h = session_figure_size(True)
    assert img.shape[:2] == (h, w)
    assert float(np.std(img[..., :3])) > 0.05                 # not a blank page
    # relaxed squeezes are shaded green: some pixels are clearly greenish
    rgb = img[..., :3]
    assert np.any((rgb[..., 1] > rgb[..., 0] + 0.08) & (rgb[..., 1] > rgb[..., 2] + 0.08))


def test_plot_output_option_one_channel(capsys, dbpath, tmp_path):
    png = tmp_path / "emg.png"
    code, out = run(capsys, "plot", "last", "--db", dbpath, "-o", str(png))
    assert code == 0 and f"plot written to {png}" in out
    w, h = session_figure_size(False)
    assert matplotlib.image.imread(png).shape[:2] == (h, w)


def test_plot_into_missing_folder(capsys, dbpath, tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        run(capsys, "plot", "last", "--db", dbpath, "-o", str(tmp_path / "no" / "x.png"))


# ------------------------------------------------------------------ export

def test_export_csv_default_names(capsys, dbpath, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = run(capsys, "export", "sim-0001/1", "--format", "csv", "--db", dbpath)
    assert code == 0
    assert out.splitlines() == ["written knip-sim-0001-1.csv", "written knip-sim-0001-1_events.csv",
                                "written knip-sim-0001-1_cues.csv"]
    s = session("sim-0001", 1)
    with open(tmp_path / "knip-sim-0001-1.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time_s", "pressure_cmH2O", "abdominal_cmH2O"] and len(rows) == len(s.values) + 1
    with open(tmp_path / "knip-sim-0001-1_events.csv", newline="") as f:
        assert len(list(csv.reader(f))) == len(s.events) + 1


def test_export_edf_format_from_suffix(capsys, dbpath, tmp_path):
    path = tmp_path / "week.edf"
    code, out = run(capsys, "export", "aabbccddeeff/1", "-o", str(path), "--db", dbpath)
    assert code == 0 and out.strip() == f"written {path}"
    edf = edfio.read_edf(path)
    assert [sig.label for sig in edf.signals] == ["EMG"]
    assert any("clock was not set" in a.text for a in edf.annotations)


def test_export_needs_a_format(capsys, dbpath, tmp_path):
    with pytest.raises(UsageError, match="--format csv"):
        run(capsys, "export", "last", "--db", dbpath, "-o", str(tmp_path / "x.txt"))
    assert not (tmp_path / "x.txt").exists()


# ------------------------------------------------------------------ through knip's parser

def test_commands_run_through_cli_main(capsys, dbpath):
    assert cli.main(["sessions", "--db", dbpath]) == 0
    assert "sim-0001/2" in capsys.readouterr().out
    assert cli.main(["show", "-1", "--db", dbpath]) == 0          # "-1" is a SESSION, not an option
    assert "aabbccddeeff/1" in capsys.readouterr().out
    assert cli.main(["plot", "--help"]) == 0
    out = capsys.readouterr().out
    assert "knip plot last" in out and "--db PATH" in out
