"""The firmware the virtual trainer runs: the tree `knip build` makes for
the board, compiled for this machine's MicroPython unix port, so the
per-sample modules run as native code as they do on the ESP32 (and what
the end-to-end tests exercise is the build, byte for byte the same
sessions as the sources give: tests/test_golden.py). It is also 14-17 %
less CPU a sample.

Built once per process for each text of the firmware, into a temporary
folder removed at exit. Host-only modules (`knip/replay.py`) are copied in
as sources, so the tree holds every module of its packages. None, and the
trainer runs the sources, when the port's architecture has no native
emitter here, when mpy-cross is missing, or with KNIP_SIM_CODE=source (a
traceback then names source lines)."""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

_BUILT: dict[tuple[str, str], Path | None] = {}
_LOCK = threading.Lock()
_ARCH: dict[str, str | None] = {}


def _digest(firmware_dir: Path) -> str:
    h = hashlib.sha256()
    for d, dirs, files in os.walk(firmware_dir):
        dirs[:] = sorted(n for n in dirs if n != "__pycache__")
        for name in sorted(n for n in files if n.endswith((".py", ".json"))):
            p = Path(d, name)
            h.update(p.relative_to(firmware_dir).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _arch(exe: str) -> str | None:
    if exe not in _ARCH:
        from .esp32 import build as B
        try:
            _ARCH[exe] = B.port_arch(exe)
        except (OSError, subprocess.SubprocessError, ValueError):
            _ARCH[exe] = None
    return _ARCH[exe]


def firmware_path(firmware_dir: Path, exe: str) -> Path | None:
    """The built tree to put before firmware_dir on MICROPYPATH, or None."""
    if os.environ.get("KNIP_SIM_CODE", "native") == "source":
        return None
    arch = _arch(exe)
    if arch is None or arch.startswith("arch"):       # a bytecode-only port, or unknown here
        return None
    key = (str(firmware_dir), _digest(firmware_dir) + arch)
    with _LOCK:
        if key not in _BUILT:
            _BUILT[key] = _build(firmware_dir, arch)
        return _BUILT[key]


def _build(firmware_dir: Path, arch: str) -> Path | None:
    from .esp32 import build as B
    top = Path(tempfile.mkdtemp(prefix="knip-simtree-"))
    atexit.register(shutil.rmtree, top, True)
    out = top / "tree"
    try:
        B.build(out, B.DEFAULT_PROFILE, firmware_dir=firmware_dir, march=arch)
    except (B.BuildError, OSError):
        return None
    for name in (B.MANIFEST, B.PROFILE, "main.py"):      # the board's files, not modules
        (out / name).unlink(missing_ok=True)
    _mods, held = B.collect_sources(firmware_dir)
    for src in held.values():
        dest = out / src.rel
        if not dest.with_suffix(".mpy").exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src.path, dest)
    return out
