"""Bad input thrown at every `knip` command that reads input: each answer is
one line `knip: error: ...` on stderr, never a traceback or a Python warning,
with exit code 2 (bad input); 1 where the CLI documents it (a database or
trainer that fails); 0 where the input is in fact fine. In-process, a few
seconds in all; the counts of cases are asserted so that none drop out."""
from __future__ import annotations

import json
import os
import random
import re
import gc
import warnings
from pathlib import Path
from typing import Callable

import pytest

from knip_host.cli import main
from knip_host.commands import stored
from knip_host.database import SessionDatabase
from test_database import fake_decode, make_session, store

PYTHON_ERROR = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|Traceback")


@pytest.fixture(autouse=True)
def _no_leaks_from_earlier_tests():
    gc.collect()        # files other tests in this process left open warn now, not in a command below


def run(capsys, argv: list[str]) -> tuple[int, str, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    out, err = capsys.readouterr()
    shown = [f"{w.category.__name__}: {w.message}" for w in caught
             if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    assert not shown, (argv, shown)
    return code, out, err


def check(capsys, argv: list[str], expect: set[int]) -> str:
    code, out, err = run(capsys, argv)
    shown = " ".join(a[-60:] for a in argv)
    assert code in expect, f"knip {shown}: exit {code}, expected {expect}\n{err}"
    assert "Traceback" not in err and "Traceback" not in out, shown
    if code:
        lines = err.strip().splitlines()
        assert len(lines) == 1, f"knip {shown}:\n{err}"
        assert lines[0].startswith("knip: error: ") and len(lines[0]) > 25, f"knip {shown}: {err}"
        assert not PYTHON_ERROR.search(lines[0]), f"knip {shown}: {err}"
    return err


# ------------------------------------------------------------ recordings

def _rows(n: int, rate: float = 50.0, t0: float = 0.0, scale: float = 1.0, cols: int = 1,
          value: Callable[[int], str] | None = None) -> str:
    out = []
    for i in range(n):
        v = value(i) if value else f"{2 + 30 * ((i // 250) % 2) + 0.1 * (i % 3):.2f}"
        out.append(",".join([f"{(t0 + i / rate) * scale:.6g}"] + [v] * cols))
    return "\n".join(out) + "\n"


def _noise(seed: int, n: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


GOOD = "time_s,p\n" + _rows(1500)
BAD_RECORDINGS: dict[str, tuple[bytes | str, set[int]]] = {
    "empty": ("", {2}),
    "blank": (" \n\t\n\r\n", {2}),
    "vertical_tabs": ("\x0b\x0b\x0b", {2}),
    "random_bytes": (_noise(1, 5000), {2}),
    "png": (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(300), {2}),
    "utf16": (GOOD.encode("utf-16"), {0}),     # with its BOM: read as it is
    "nul_late": (GOOD + "0.5\0,1\n" * 3, {2}),
    "gzip": (b"\x1f\x8b\x08\x00" + _noise(2, 400), {2}),
    "truncated_row": (GOOD[: len(GOOD) // 2].rsplit(",", 1)[0], {0}),     # cut off: the last row left out
    "truncated_number": (GOOD[: len(GOOD) // 2 + 3], {0, 2}),
    "header_only": ("time_s,p\n", {2}),
    "comments_only": ("# unit: cmH2O\n# rate_hz: 50\n", {2}),
    "all_nan": ("time_s,p\n" + _rows(200, value=lambda i: "nan"), {2}),
    "all_inf": ("time_s,p\n" + _rows(200, value=lambda i: "inf"), {2}),
    "overflow_literals": ("time_s,p\n" + _rows(200, value=lambda i: "1e999" if i % 2 else "-1e999"), {2}),
    "some_nan": ("time_s,p\n" + _rows(1500, value=lambda i: "NaN" if 300 < i < 320 else "2.5"), {0}),
    "huge_values": ("time_s,p\n" + _rows(300, value=lambda i: "1e300"), {2}),
    "big_but_sane": ("time_s,p\n" + _rows(300, value=lambda i: f"{1e9 * (i % 2):.1f}"), {0}),
    "times_x1e12": ("time_s,p\n" + _rows(300, scale=1e12), {2}),
    "times_x1e3": ("time_s,p\n" + _rows(300, scale=1e3), {2}),
    "epoch_times": ("time_s,p\n" + _rows(300, t0=1.7e9), {2}),
    "time_1e308": ("time_s,p\n0,1\n1e308,2\n", {2}),
    "time_minus_1e308": ("time_s,p\n-1e308,1\n1e308,2\n", {2}),
    "time_overflow_literal": ("time_s,p\n0,1\n0.02,1\n1e999,2\n", {2}),
    "time_nan": ("time_s,p\n0,1\nnan,2\n", {2}),
    "negative_times": ("time_s,p\n" + _rows(1500, t0=-15.0), {0}),
    "non_monotonic": ("time_s,p\n0,1\n0.02,1\n0.01,1\n0.03,1\n", {2}),
    "duplicate_times": ("time_s,p\n0,1\n0.02,1\n0.02,1\n0.04,1\n", {2}),
    "rate_change": ("time_s,p\n" + _rows(200, rate=100) + _rows(200, rate=50, t0=3), {2}),
    "too_fast": ("time_s,p\n" + _rows(300, rate=4000), {2}),
    "too_slow": ("time_s,p\n" + _rows(20, rate=0.01), {2}),
    "one_row": ("time_s,p\n0,1\n", {2}),
    "extra_column": ("time_s,p\n0,1\n0.02,1,9\n", {2}),
    "missing_column": ("time_s,p,q\n0,1,2\n0.02,1\n", {2}),
    "only_time": ("time_s\n0\n0.02\n0.04\n", {2}),
    "empty_column_name": ("time_s,,p\n0,1,2\n", {2}),
    "duplicate_names": ("time_s,p,p\n0,1,2\n", {2}),
    "no_header": ("0,1\n0.02,2\n", {2}),
    "prose": ("Dear diary, today I trained twice and it went well.\n", {2}),
    "json": ('{"events": [1, 2]}', {2}),
    "deep_json": ("[" * 100000 + "]" * 100000, {2}),
    "html": ("<!doctype html><html></html>", {2}),
    "decimal_comma": ("time_s;p\n0;1\n0,02;1,5\n", {2}),
    "words_in_data": ("time_s,p\n0,1\n0.02,high\n", {2}),
    "long_token": ("time_s,p\n0,1\n0.02," + "x" * 100000 + "\n", {2}),
    "one_long_line": ("1" * 300000, {2}),
    "many_columns": ("time_s," + ",".join(f"c{i}" for i in range(500)) + "\n"
                     + _rows(100, cols=500), {0}),
    "crlf": (GOOD.replace("\n", "\r\n"), {0}),
    "cr_only": (GOOD.replace("\n", "\r"), {0}),
    "bom": ("\ufeff" + GOOD, {0}),
    "latin1_name": (("time_s,caf\xe9\n" + _rows(1500)).encode("latin-1"), {0}),
    "surrogate_bytes": (b"time_s,p\xed\xa0\x80\n" + _rows(1500).encode(), {0}),
    "constant": ("time_s,p\n" + _rows(500, value=lambda i: "3"), {0}),
    "ms_column": ("time_ms,p\n" + _rows(1500, scale=1000), {0}),
    "no_time_no_rate": ("p\n" + "1\n2\n" * 50, {2}),
    "rate_header_nan": ("# rate_hz: nan\np,q\n1,2\n", {2}),
    "rate_header_tiny": ("# rate_hz: 1e-9\np,q\n1,2\n3,4\n", {2}),
    "rate_header_huge": ("# rate_hz: 1e400\np,q\n1,2\n", {2}),
    "rate_header_fast": ("# rate_hz: 5000\np,q\n1,2\n3,4\n", {2}),
    "rate_header_long": ("# rate_hz: 0.1\np,q\n" + "1,2\n3,4\n" * 60000, {2}),   # 1.2e6 s: past 12 days
    "text_good": ("# Sampling Rate (Hz):= 1000.00\n# Labels:= EMG\n" + "2048\n2050\n" * 3000, {0}),
    "text_resolution_inf": ("# Sampling Rate (Hz):= 1000\n# Resolution:= inf\n" + "2048\n2050\n" * 3000, {0}),
    "text_resolution_huge": ("# Sampling Rate (Hz):= 1000\n# Resolution:= 1e9\n" + "2048\n2050\n" * 3000, {0}),
    "text_rate_zero": ("# Sampling Rate (Hz):= 0\n# Labels:= EMG\n2048\n", {2}),
    "hrm_no_channels": ("TIME:\n0\n0.5\n", {2}),
    "hrm_backwards": ("TIME:\tB1\t1\n0.5\t1\t2\n0.0\t1\t2\n", {2}),
    "hrm_bad_annotations": ("TIME:\tB1\t1\n" + "".join(f"{i * 0.5}\t{i % 3}\t{i % 5}\n" for i in range(80))
                            + "Annotations:\n1e999 Squeeze\nnot a time\n9" * 50 + " x\n", {0}),
}

RATE_OPTIONS = {"1e-9": {2}, "1e9": {2}, "1e308": {2}, "1e400": {2}, "nan": {2}, "inf": {2}, "-1": {2},
                "0": {2}, "abc": {2}, "0.05": {2}, "2000": {2}, "100": {0}}


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    out = {}
    for name, (content, _) in BAD_RECORDINGS.items():
        p = tmp_path / f"{name}.csv"
        if isinstance(content, str):
            p.write_text(content, encoding="utf-8", newline="")
        else:
            p.write_bytes(content)
        out[name] = p
    return out


def test_analyze_answers_every_bad_recording_in_one_line(capsys, files):
    assert len(BAD_RECORDINGS) >= 65
    for name, (_, expect) in BAD_RECORDINGS.items():
        check(capsys, ["analyze", str(files[name])], expect)
        check(capsys, ["analyze", str(files[name]), "--json"], expect)


def test_analyze_bad_options(capsys, files, tmp_path):
    good = str(files["crlf"])
    text = str(files["no_time_no_rate"])
    for rate, expect in RATE_OPTIONS.items():
        check(capsys, ["analyze", text, "--rate", rate], expect)
    cases = [
        (["analyze", good, "--channel", "nope"], {2}),
        (["analyze", good, "--channel", ""], {2}),
        (["analyze", good, "--abdominal", "p"], {2}),
        (["analyze", good, "--channel", "p", "--abdominal", "\udcff"], {2}),
        (["analyze", good, "--format", "hrm"], {2}),
        (["analyze", good, "--format", "text"], {2}),
        (["analyze", good, "--format", "xml"], {2}),
        (["analyze", good, "--signal", "force"], {2}),
        (["analyze", good, "--plot", str(tmp_path / "missing" / "x.png")], {2}),
        (["analyze", good, "--plot", str(tmp_path)], {2}),
        (["analyze", str(tmp_path / "nope.csv")], {2}),
        (["analyze", str(tmp_path)], {2}),
        (["analyze", "/dev/null"], {2}),
        (["analyze", str(tmp_path / "a\0b.csv")], {2}),
        (["analyze", good, "extra"], {2}),
        (["analyze"], {2}),
    ]
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)                  # must be refused, not waited on
    cases.append((["analyze", str(fifo)], {2}))
    weird = tmp_path / "\udcff name.csv"
    weird.write_text(GOOD)
    cases.append((["analyze", str(weird)], {0}))
    for argv, expect in cases:
        check(capsys, argv, expect)


# ------------------------------------------------------------ program files

REST = [{"kind": "rest", "seconds": 3}]
HOLD = {"kind": "hold", "reps": 2, "squeeze_s": 3, "rest_s": 4, "target_pct": 40}
BAD_PROGRAMS: dict[str, tuple[str | bytes, set[int]]] = {
    "good": (json.dumps({"name": "gentle", "title": "Caf\u00e9 \u2615", "phases": [HOLD]}), {0}),
    "nan_seconds": ('{"name": "x", "phases": [{"kind": "rest", "seconds": NaN}]}', {2}),
    "nan_squeeze": (json.dumps({"name": "x", "phases": [dict(HOLD, squeeze_s="@")]}).replace('"@"', "NaN"), {2}),
    "nan_target": (json.dumps({"name": "x", "phases": [dict(HOLD, target_pct="@")]}).replace('"@"', "NaN"), {2}),
    "infinity": ('{"name": "x", "phases": [{"kind": "rest", "seconds": Infinity}]}', {2}),
    "minus_infinity": (json.dumps({"name": "x", "phases": [dict(HOLD, rest_s="@")]}).replace('"@"', "-Infinity"), {2}),
    "overflow": ('{"name": "x", "phases": [{"kind": "rest", "seconds": 1e999}]}', {2}),
    "huge_int": ('{"name": "x", "phases": [{"kind": "rest", "reps": ' + "9" * 4000 + ', "seconds": 3}]}', {2}),
    "too_many_digits": ('{"name": "x", "phases": [{"kind": "rest", "reps": ' + "9" * 5000 + ', "seconds": 3}]}', {2}),
    "deep": ('{"name": "x", "phases": ' + "[" * 5000 + "]" * 5000 + "}", {2}),
    "deep_name": ('{"name": ' + "[" * 900 + "]" * 900 + ', "phases": []}', {2}),
    "deep_phase": ('{"name": "x", "phases": [' + '{"kind": ' * 900 + "1" + "}" * 900 + "]}", {2}),
    "surrogate_title": ('{"name": "x", "title": "\\ud800", "phases": [{"kind": "rest", "seconds": 3}]}', {2}),
    "surrogate_name": ('{"name": "a\\udfff", "phases": [{"kind": "rest", "seconds": 3}]}', {2}),
    "surrogate_key": ('{"name": "x", "phases": [{"kind": "rest", "seconds": 3, "\\ud800": 1}]}', {2}),
    "control_title": (json.dumps({"name": "x", "title": "two\nlines", "phases": REST}), {2}),
    "accented_name": (json.dumps({"name": "caf\u00e9", "phases": REST}), {2}),
    "arabic_digit": (json.dumps({"name": "x\u0663", "phases": REST}), {2}),
    "capital_name": (json.dumps({"name": "Gentle", "phases": REST}), {2}),
    "long_name": (json.dumps({"name": "x" * 25, "phases": REST}), {2}),
    "long_title": (json.dumps({"name": "x", "title": "t" * 81, "phases": REST}), {2}),
    "builtin_name": (json.dumps({"name": "sprint", "phases": REST}), {2}),
    "Stem Name": (json.dumps({"phases": REST}), {2}),            # the file name is not a valid name
    "list": ("[1, 2, 3]", {2}),
    "string": ('"hello"', {2}),
    "null": ("null", {2}),
    "number": ("42", {2}),
    "empty": ("", {2}),
    "whitespace": ("  \n ", {2}),
    "trailing": (json.dumps({"name": "x", "phases": REST}) + " }", {2}),
    "binary": (_noise(3, 3000), {2}),
    "utf16": (json.dumps({"name": "x", "phases": REST}).encode("utf-16"), {2}),
    "bom": (b"\xef\xbb\xbf" + json.dumps({"name": "bom", "phases": REST}).encode(), {0}),
    "latin1": (json.dumps({"name": "x", "title": "caf\u00e9", "phases": REST},
                          ensure_ascii=False).encode("latin-1"), {2}),
    "too_large": (json.dumps({"name": "x", "title": "t", "phases": REST, "pad": "x" * 70000}), {2}),
    "no_phases": (json.dumps({"name": "x"}), {2}),
    "empty_phases": (json.dumps({"name": "x", "phases": []}), {2}),
    "phases_object": (json.dumps({"name": "x", "phases": {"kind": "rest"}}), {2}),
    "too_many_phases": (json.dumps({"name": "x", "phases": REST * 33}), {2}),
    "too_long": (json.dumps({"name": "x", "phases": [{"kind": "rest", "reps": 100, "seconds": 600}]}), {2}),
    "unknown_field": (json.dumps({"name": "x", "phases": REST, "colour": "red"}), {2}),
    "bool_reps": (json.dumps({"name": "x", "phases": [dict(HOLD, reps=True)]}), {2}),
    "float_reps": (json.dumps({"name": "x", "phases": [dict(HOLD, reps=2.5)]}), {2}),
    "negative": (json.dumps({"name": "x", "phases": [dict(HOLD, squeeze_s=-3)]}), {2}),
    "list_kind": (json.dumps({"name": "x", "phases": [dict(HOLD, kind=["hold"])]}), {2}),
    "dict_rule": (json.dumps({"name": "x", "phases": [dict(HOLD, rest_rule={"a": [1]})]}), {2}),
    "rest_shorter": (json.dumps({"name": "x", "phases": [dict(HOLD, rest_s=1)]}), {2}),
    "mvc_target": (json.dumps({"name": "x", "phases": [dict(HOLD, kind="mvc", target_pct=50)]}), {2}),
}
BAD_NAMES = {"": {2}, "caf\u00e9": {2}, "../etc/passwd": {2}, "x" * 100: {2}, "sprint": {2},
             "Gentle": {2}, "a b": {2}, "\udcff": {2}, "a\0b": {2}, "x\u0663": {2}}


def test_program_check_and_push_answer_every_bad_file_in_one_line(capsys, tmp_path):
    assert len(BAD_PROGRAMS) >= 45
    for name, (content, expect) in BAD_PROGRAMS.items():
        p = tmp_path / f"{name}.json"
        if isinstance(content, str):
            p.write_text(content, encoding="utf-8")
        else:
            p.write_bytes(content)
        check(capsys, ["program", "check", str(p)], expect)
        if expect == {2}:            # refused before any trainer is looked for
            check(capsys, ["program", "push", str(p), "--port", str(tmp_path / "no-such-port")], {2})
    for argv in (["program", "check", str(tmp_path / "nope.json")], ["program", "check", str(tmp_path)],
                 ["program", "check", "/dev/null"], ["program", "check"], ["program", "push"],
                 ["program", "show", "nosuch"], ["program", "show", "\udcff"], ["program", "frob"],
                 ["program", "check", str(tmp_path / "a\0b.json")]):
        check(capsys, argv, {2})


def test_program_remove_and_show_check_the_name_first(capsys, tmp_path):
    for name, expect in BAD_NAMES.items():
        check(capsys, ["program", "remove", name, "--port", str(tmp_path / "no-such-port")], expect)
        check(capsys, ["program", "show", name], {0} if name == "sprint" else expect)


# ------------------------------------------------------------ stored sessions

@pytest.fixture
def db_file(tmp_path, monkeypatch) -> str:
    monkeypatch.setattr(stored, "DECODER", fake_decode)
    path = tmp_path / "knip.sqlite3"
    with SessionDatabase.open(path) as db:
        store(db, make_session("sim-0001", 1))
    return str(path)


BAD_REFS = {"abc": {1}, "-0": {1}, "0": {1}, "9" * 5000: {2}, "-" + "9" * 30: {1}, "x/\udcff": {2},
            "\udcff": {2}, "1\0": {1}, "sim-0001/": {1}, "/1": {1}, "sim-0001/99": {1}, " ": {1},
            "nosuch/1": {1}, "last": {0}}


def test_stored_session_commands_answer_bad_references(capsys, db_file, tmp_path):
    for ref, expect in BAD_REFS.items():
        check(capsys, ["show", ref, "--db", db_file], expect)
        check(capsys, ["plot", ref, "--db", db_file, "-o", str(tmp_path / "s.png")], expect)
        check(capsys, ["export", ref, "--db", db_file, "--format", "csv", "-o", str(tmp_path / "s.csv")],
              expect)


def test_database_commands_answer_bad_databases_and_options(capsys, db_file, tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(_noise(4, 4096))
    csv = tmp_path / "session.csv"
    csv.write_text(GOOD)
    bad_dbs = {str(junk): {1}, str(csv): {1}, str(tmp_path): {1}, "\udcff.sqlite3": {2},
               str(tmp_path / "none.sqlite3"): {0, 1}}
    for db, expect in bad_dbs.items():
        check(capsys, ["sessions", "--db", db], expect)
        check(capsys, ["progress", "--db", db, "-o", str(tmp_path)], expect)
        check(capsys, ["show", "last", "--db", db], expect - {0} or {1})
    out = str(tmp_path / "r.html")
    for argv, expect in [
        (["sessions", "--db", db_file, "--device", "\udcff"], {2}),
        (["sessions", "--db", db_file, "--device", "nosuch"], {1}),
        (["progress", "--db", db_file, "--device", "\udcff"], {2}),
        (["progress", "--db", db_file, "-o", str(tmp_path / "missing" / "dir")], {2}),
        (["report", "--html", out, "--db", db_file, "--name", "\udcff"], {2}),
        (["report", "--html", str(tmp_path), "--db", db_file], {2}),
        (["report", "--html", str(tmp_path / "missing" / "r.html"), "--db", db_file], {2}),
        (["report", "--db", db_file], {2}),
        (["export", "last", "--db", db_file], {2}),
        (["export", "last", "--db", db_file, "-o", str(tmp_path)], {2}),
        (["plot", "last", "--db", db_file, "-o", str(tmp_path / "missing" / "p.png")], {2}),
    ]:
        check(capsys, argv, expect)


# ------------------------------------------------------------ trainer options

def test_trainer_options_are_checked_before_any_trainer_starts(capsys, tmp_path):
    cases = []
    for value in ("nan", "inf", "-1", "0", "1e400", "fast"):
        cases += [["info", "--port", "sim", "--sim-speed", value],
                  ["live", "--port", "sim", "--seconds", value],
                  ["sim", "--speed", value]]
    cases += [["info", "--port", "sim", "--sim-user", "nobody"], ["sim", "--user", "nobody"],
              ["live", "--pain-before", "11"], ["live", "--pain-after", "-1"],
              ["live", "--batch-ms", "many"], ["live", "--batch-ms", "0"], ["live", "--batch-ms", "-5"],
              ["live", "--batch-ms", "100000"], ["live", "--port", "sim", "--pain-before", "2"], ["sync", "--db", "\udcff.sqlite3", "--port", "sim"],
              ["sim", "--signal", "force"], ["sim", "--seed", "1.5"], ["devices", "--frob"]]
    for argv in cases:
        check(capsys, argv, {2})


def test_a_port_that_is_no_trainer_says_where_it_came_from_and_what_it_is(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KNIP_PORT", str(tmp_path / "ttyUSB9"))
    err = check(capsys, ["info"], {1})
    assert f"no serial port {tmp_path / 'ttyUSB9'}" in err and "(the port named by $KNIP_PORT)" in err
    monkeypatch.delenv("KNIP_PORT")
    err = check(capsys, ["info", "--port", os.devnull], {1})
    assert f"{os.devnull} is no serial port: 'knip devices' lists the ports" in err


def test_profile_check_answers_bad_profile_files(capsys, tmp_path):
    contents = {"empty": "", "binary": bytes(range(256)) * 4, "deep": "[" * 5000 + "]" * 5000,
                "nan": '{"profile": NaN}', "list": "[]", "surrogate": '{"profile": "\\ud800"}',
                "huge": '{"rate_hz": 1e999}'}
    for name, content in contents.items():
        p = tmp_path / f"{name}.json"
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        code, out, err = run(capsys, ["profile", "check", str(p)])
        assert code == 2 and "Traceback" not in err, (name, err)
        assert all(line.startswith(f"{p}: ") for line in err.strip().splitlines()), (name, err)
