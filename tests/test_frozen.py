"""The frozen firmware for plain ESP32 boards (docs/FROZEN.md): firmware/manifest.py
freezes every module `knip build` deploys (and aioble), each of them
cross-compiles, the manifest builds into the 32-bit unix port (shared/tools/mp32,
when ../shared is there), and `knip deploy` onto a board that has this tree
frozen in copies only the profile."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "host"))
from knip_host.esp32 import build as B  # noqa: E402
from knip_host.esp32 import frozen as F  # noqa: E402
from knip_host.esp32 import release as R  # noqa: E402

MANIFEST = ROOT / "firmware" / "manifest.py"
MP32 = ROOT.parent / "shared" / "tools" / "mp32"
MPY_LIB = ROOT.parent / "shared" / "vendor" / "micropython" / "lib" / "micropython-lib"


def _run_manifest(path: Path, port_dir: str = "/nonexistent-port") -> list[tuple[str, str]]:
    """(source file, frozen path) of everything a manifest freezes, by
    MicroPython's own manifest reader (needs the vendored source) or, without
    it, a stand-in for the manifest API that records package/module calls."""
    tools = ROOT.parent / "shared" / "vendor" / "micropython" / "tools"
    if (tools / "manifestfile.py").exists():
        sys.path.insert(0, str(tools))
        keep, sys.dont_write_bytecode = sys.dont_write_bytecode, True     # no __pycache__ in ../shared
        try:
            import manifestfile  # type: ignore[import-not-found]
        finally:
            sys.path.remove(str(tools))
            sys.dont_write_bytecode = keep
        m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
            "MPY_DIR": str(tools.parent), "MPY_LIB_DIR": str(MPY_LIB), "PORT_DIR": port_dir,
            "BOARD_DIR": port_dir})
        m.execute(str(path))
        return [(f.full_path, f.target_path) for f in m.files()]
    got: list[tuple[str, str]] = []

    def module(p, base_path="."):
        got.append((os.path.join(os.path.abspath(base_path), p), p))
    api = {"module": module, "include": lambda *a, **k: None, "require": lambda *a, **k: None,
           "package": lambda *a, **k: None}
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        exec(compile(path.read_text(), str(path), "exec"), api)
    finally:
        os.chdir(cwd)
    return got


# ------------------------------------------------------ the 32-bit port (mp32)
# First in the file: the build is the longest step of `make test`, and xdist
# hands a worker its next file when two of its tests are left (conftest.py);
# with the build last, this worker took the next long file at once and held
# it until the build was done, while the other worker ran out of files.

@pytest.fixture(scope="session")
def mp32(tmp_path_factory):
    """The 32-bit unix port with firmware/manifest.py frozen in (built once a
    session): make test's, built beside its pip install, when it was built
    from this tree (tests/mp32_prebuild.py), else built here."""
    if not MP32.exists():
        pytest.skip("../shared/tools/mp32 not present (the 32-bit port comes from the shared vendor tree)")
    import mp32_prebuild
    from knip_host.esp32 import mp32 as P
    pre = os.environ.get("KNIP_MP32_PREBUILD")
    got = mp32_prebuild.wait_for(Path(pre)) if pre else None
    if got is not None:
        out = Path(pre)
    else:
        out = tmp_path_factory.mktemp("mp32")
        got = P.build(out)
    rc, log = got
    assert rc == 0, log[-3000:]
    return out / "port" / "micropython"


def test_the_manifest_builds_into_the_32bit_port(mp32):
    code = ("import gc,sys\ngc.collect()\na=gc.mem_alloc()\nimport knip_frozen\n"
        "import knip.app, espboard.board, espboard.boot, links.multi_link, links.serial_link\n"
        "gc.collect()\nprint('frozen', knip_frozen.FIRMWARE, knip_frozen.SOURCE, knip.app.FIRMWARE,"
        " sys.maxsize, gc.mem_alloc()-a)\n")
    env = dict(os.environ, MICROPYPATH=".frozen")
    p = subprocess.run([str(mp32), "-X", "heapsize=110k", "-c", code], capture_output=True, text=True,
                       env=env, timeout=60, cwd="/")
    assert p.returncode == 0, p.stderr
    _, fw, src, app_fw, maxsize, heap = p.stdout.split()
    assert fw == app_fw == B.firmware_version() and src == F.source_digest(F.frozen_sources())
    assert int(maxsize) == 2**31 - 1                 # 32-bit, like the ESP32
    assert int(heap) < 40 * 1024, heap               # code in "flash": the imports cost little heap


def test_the_port_cache_gives_back_what_was_kept_and_drops_a_damaged_port(tmp_path, monkeypatch):
    """The cache make test takes the port from when nothing it is built from
    changed (knip_host.esp32.mp32): what was kept comes back byte for byte,
    another key finds nothing, a damaged entry goes, the CACHE_KEEP used
    last stay."""
    from knip_host.esp32 import mp32 as M
    cache = tmp_path / "cache"
    monkeypatch.setenv("KNIP_MP32_CACHE", str(cache))
    built = tmp_path / "built"
    built.mkdir()
    for n in M.PORT_FILES:
        (built / n).write_bytes(n.encode() * 1000)
    M.to_cache("k1", built)
    log = M.from_cache("k1", tmp_path / "got")
    assert log is not None and str(cache / "k1") in log and "KNIP_MP32_CACHE=off" in log
    assert all((tmp_path / "got" / n).read_bytes() == (built / n).read_bytes() for n in M.PORT_FILES)
    assert M.from_cache("k2", tmp_path / "other") is None and not (tmp_path / "other").exists()
    for name, damage in (("micropython", b"cut short"), ("sums", b"\xff\xfe not text"), ("built", None)):
        M.to_cache("k1", built)
        if damage is None:
            (cache / "k1" / name).unlink()
        else:
            (cache / "k1" / name).write_bytes(damage)
        assert M.from_cache("k1", tmp_path / "again") is None and not (cache / "k1").exists(), name
    monkeypatch.setattr(M, "CACHE_KEEP", 4)
    for i in range(4):
        M.to_cache(f"e{i}", built)
        os.utime(cache / f"e{i}", (1000 + i, 1000 + i))     # kept in this order
    assert M.from_cache("e0", tmp_path / "e0") is not None     # e0 used again: now the newest
    M.to_cache("e4", built)
    M.to_cache("e5", built)
    assert sorted(e.name for e in cache.iterdir()) == ["e0", "e3", "e4", "e5"]
    for off in ("off", "0", "false"):
        monkeypatch.setenv("KNIP_MP32_CACHE", off)
        assert M.cache_dir() is None and M.from_cache("e5", tmp_path / "off") is None


def test_a_port_is_cached_only_when_built_and_found_only_for_the_same_sources(tmp_path, monkeypatch):
    """build() with a stand-in for the mp32 tool: a failed build is not
    kept, a good one is and comes back with its key; a change to the
    vendored source is another key, a __pycache__ folder in it is not; the
    caller's make flags do not reach the build."""
    from knip_host.esp32 import mp32 as M
    monkeypatch.setenv("KNIP_MP32_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MAKEFLAGS", "DEBUG=1")
    monkeypatch.setenv("COPT", "-O0")
    vendor = tmp_path / "vendor"
    (vendor / "py").mkdir(parents=True)
    (vendor / "py" / "vm.c").write_text("int vm;\n")
    monkeypatch.setattr(M, "VENDOR", vendor)
    monkeypatch.setattr(M, "_firmware", lambda: [b"this tree"])     # (the real one: about 1 s a call)
    status = tmp_path / "status"
    tool = tmp_path / "mp32"
    tool.write_text('mkdir -p "$1"\nfor f in micropython mpy-cross; do echo "$f $(cat %s/py/vm.c)" > "$1/$f"; done\n'
                    'echo "flags=${MAKEFLAGS-none} copt=${COPT-none}"\nexit "$(cat %s)"\n' % (vendor, status))
    monkeypatch.setattr(M, "MP32", tool)
    status.write_text("2")
    rc, log = M.build(tmp_path / "a")
    assert rc == 2 and "flags=none copt=none" in log and not (tmp_path / "cache").exists()
    status.write_text("0")
    rc, log = M.build(tmp_path / "b")
    assert rc == 0 and "from the cache" not in log
    rc, log = M.build(tmp_path / "c")
    assert rc == 0 and "from the cache" in log
    assert (tmp_path / "c" / "key").read_text() == M.key() and (tmp_path / "c" / "rc").read_text() == "0"
    assert (tmp_path / "c" / "port" / "micropython").read_text() == "micropython int vm;\n"
    k = M.key()
    (vendor / "__pycache__").mkdir()
    (vendor / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"compiled")
    assert M.key() == k
    (vendor / "py" / "vm.c").write_text("int vm2;\n")
    assert M.key() != k
    rc, log = M.build(tmp_path / "d")
    assert rc == 0 and "from the cache" not in log
    assert (tmp_path / "d" / "port" / "micropython").read_text() == "micropython int vm2;\n"


def test_another_manifest_builds_its_own_port_under_its_own_key(tmp_path, monkeypatch):
    """make bench's port (another manifest and the files it freezes besides
    the firmware) with a stand-in for the mp32 tool: the tool gets that
    manifest; its key changes with the manifest's place or text and with
    the name or .py contents of what it freezes, not with other files
    beside them; the firmware's port is not served for it; a second build
    into the same folder starts clean (no old rc, log or port files)."""
    from knip_host.esp32 import mp32 as M
    monkeypatch.setenv("KNIP_MP32_CACHE", str(tmp_path / "cache"))
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "vm.c").write_text("int vm;\n")
    monkeypatch.setattr(M, "VENDOR", vendor)
    monkeypatch.setattr(M, "_firmware", lambda: [b"this tree"])
    tool = tmp_path / "mp32"
    tool.write_text('mkdir -p "$1"\nfor f in micropython mpy-cross; do echo "$f $2" > "$1/$f"; done\n'
                    'echo "manifest=$2"\n')
    monkeypatch.setattr(M, "MP32", tool)
    measure = tmp_path / "a" / "manifest_measure.py"
    measure.parent.mkdir()
    measure.write_text('include("firmware.py")\nmodule("radio.py")\n')
    sim = tmp_path / "sim"
    sim.mkdir()
    (sim / "user.py").write_text("x = 1\n")
    radio = tmp_path / "a" / "radio.py"
    radio.write_text("r = 1\n")
    extra = [sim, radio]
    k = M.key(measure, extra)
    assert M.key(measure, extra) == k and M.key(measure, [sim]) != k
    firmware = tmp_path / "firmware_manifest.py"
    firmware.write_text(measure.read_text())
    assert M.key(firmware, extra) != k                       # the same text elsewhere
    (sim / "notes.txt").write_text("not frozen")
    (sim / "__pycache__").mkdir()
    (sim / "__pycache__" / "user.cpython-311.pyc").write_bytes(b"compiled")
    assert M.key(measure, extra) == k
    moved = tmp_path / "sim2"
    shutil.copytree(sim, moved)
    assert M.key(measure, [moved, radio]) != k               # the same files, another folder

    rc, log = M.build(tmp_path / "out", measure, extra)
    assert rc == 0 and f"manifest={measure}" in log and "from the cache" not in log
    assert (tmp_path / "out" / "key").read_text() == k
    assert (tmp_path / "out" / "port" / "micropython").read_text() == f"micropython {measure}\n"
    rc, log = M.build(tmp_path / "fw", firmware, extra)     # another manifest: not the port above
    assert rc == 0 and f"manifest={firmware}" in log and "from the cache" not in log
    (tmp_path / "out" / "port" / "stale.o").write_text("from the last build")
    for change, what in ((sim / "user.py", "x = 2\n"), (radio, "r = 2\n"), (measure, 'module("radio.py")\n')):
        change.write_text(what)
        assert M.key(measure, extra) != k, change.name
        k = M.key(measure, extra)
    tool.write_text('echo "manifest=$2"; exit 3\n')
    rc, log = M.build(tmp_path / "out", measure, extra)
    assert rc == 3 and (tmp_path / "out" / "rc").read_text() == "3"
    assert not (tmp_path / "out" / "port").exists() and not (tmp_path / "cache" / k).exists()
    assert not (tmp_path / "out" / "rc.new").exists()


def test_deploy_onto_a_board_with_knip_frozen_copies_only_the_profile(mp32, tmp_path, capsys, monkeypatch):
    """The simulated board of test_firmware_cmds running the 32-bit port with
    this tree frozen in: at power-on it runs the frozen main.py (as MicroPython
    runs a frozen main.py before any on the filesystem). deploy finds the
    marker with this tree's digest, removes an old .mpy tree and /main.py
    (they would shadow the frozen modules), copies profile.json alone, and
    the app that comes back reports the firmware and the profile."""
    import test_firmware_cmds as T
    from knip_host.esp32.deploy import deploy
    monkeypatch.setenv("KNIP_MICROPYTHON", str(mp32))
    monkeypatch.setattr(T, "SHIM", T.SHIM + (
        "    if src is None:\n"
        "        try:\n            import knip_frozen\n        except ImportError:\n            knip_frozen = None\n"
        "        if knip_frozen is not None:\n            import main\n"))
    root = tmp_path / "flash"
    (root / "knip").mkdir(parents=True)
    (root / "knip" / "app.mpy").write_bytes(b"M\x06\x00\x1f")      # an earlier filesystem deploy
    (root / "main.py").write_text("print('old main')\n")
    b = T.SimulatedBoard(root, tmp_path)
    try:
        prof = ROOT / "hardware" / "profiles" / "pressure-analog.json"
        info = deploy(b.port, str(prof), mip=False, build_dir=tmp_path / "build", march="x86", wait_s=40)
    finally:
        b.close()
    out = capsys.readouterr().out
    assert "frozen in, built from these sources" in out and "copying the profile only" in out
    assert "removed knip/app.mpy" in out and "removed main.py" in out
    assert info["firmware"] == B.firmware_version() and info["profile"] == "pressure-analog"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert "profile.json" in files and not any(f.endswith((".mpy", ".py")) for f in files), files


# ------------------------------------------------------ the manifest and the sources

def test_the_manifest_freezes_every_module_knip_build_deploys(tmp_path):
    frozen = dict((t, s) for s, t in _run_manifest(MANIFEST))
    res = B.build(tmp_path / "tree", B.DEFAULT_PROFILE, native=False)
    deployed = {f.source for f in res.files if f.source and f.source.endswith(".py")}
    ours = {t for t in frozen if t.split("/")[0] in R.PACKAGES or t == "main.py"}
    assert {F.target_path(rel) for rel in deployed} == ours
    for rel in deployed:
        assert Path(frozen[F.target_path(rel)]).resolve() == (ROOT / "firmware" / rel).resolve()
    assert F.MARKER + ".py" in frozen
    assert not any(t.startswith(tuple(R.SIMULATION)) for t in frozen)
    assert not any(t in R.HOST_ONLY for t in frozen)
    if MPY_LIB.is_dir():                     # aioble's peripheral parts, as mip installs them
        for part in ("aioble/core.py", "aioble/peripheral.py", "aioble/server.py", "aioble/security.py"):
            assert part in frozen, part
        assert "asyncio/core.py" in frozen   # the port's own modules stay (asyncio, here)


def test_a_module_added_to_firmware_is_frozen_without_editing_the_manifest(tmp_path):
    fw = tmp_path / "firmware"
    import shutil
    shutil.copytree(ROOT / "firmware", fw, ignore=shutil.ignore_patterns("__pycache__", "simboard"))
    (fw / "knip" / "detector_split_part.py").write_text("X = 1\n")
    (tmp_path / "host").symlink_to(ROOT / "host")
    got = {t for _s, t in _run_manifest(fw / "manifest.py")}
    assert "knip/detector_split_part.py" in got


def test_every_frozen_module_cross_compiles(tmp_path):
    exe = B.mpy_cross()
    for rel in F.frozen_sources():
        ok, msg = B.compile_module(ROOT / "firmware" / rel, tmp_path / (rel[:-3] + ".mpy"), rel,
                                   native=False, exe=exe)
        assert ok, f"{rel}: {msg}"
    marker = tmp_path / "knip_frozen.py"
    marker.write_text(F.marker_source())
    ok, msg = B.compile_module(marker, tmp_path / "knip_frozen.mpy", "knip_frozen.py", native=False, exe=exe)
    assert ok, msg


def test_marker_names_the_firmware_and_the_sources():
    text = F.marker_source()
    ns: dict = {}
    exec(text, ns)
    assert ns["FIRMWARE"] == B.firmware_version() and ns["MICROPYTHON"] == R.MICROPYTHON_VERSION
    assert ns["SOURCE"] == F.source_digest(F.frozen_sources()) and re.fullmatch(r"[0-9a-f]{64}", ns["SOURCE"])
    assert ns["MODULES"] == len(F.frozen_sources())
    board = f"knip-frozen {ns['FIRMWARE']} {ns['SOURCE']} {ns['MICROPYTHON']}\n"
    assert F.parse_marker("noise\n" + board) == {"firmware": ns["FIRMWARE"], "source": ns["SOURCE"],
                                                 "micropython": ns["MICROPYTHON"]}
    assert F.parse_marker("knip-frozen - - -\n") is None and F.parse_marker("") is None


def test_build_script_says_what_to_do_without_a_container_engine(tmp_path):
    env = dict(os.environ, PATH="/usr/bin:/bin", ENGINE="")
    env.pop("ENGINE")
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("bash", "sed", "dirname", "mkdir", "cat", "id", "wc"):
        for d in ("/usr/bin", "/bin"):
            if os.path.exists(f"{d}/{tool}"):
                os.symlink(f"{d}/{tool}", fake / tool)
                break
    env["PATH"] = str(fake)
    p = subprocess.run(["bash", str(ROOT / "tools" / "build-frozen.sh"), str(tmp_path / "out")],
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 2
    assert "neither docker nor podman" in p.stderr and "FROZEN_MANIFEST=" in p.stderr
