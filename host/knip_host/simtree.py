"""The firmware the virtual trainer runs: `knip build`'s tree, compiled
for this machine's MicroPython unix port instead of the ESP32, so the
per-sample modules run as native code as they do on the board. The
end-to-end tests then exercise the build, and it gives the same bytes as
the sources (tests/test_golden.py); it is also 14-17 % less CPU a sample.

Kept in a cache ($XDG_CACHE_HOME/knip/simtree, else ~/.cache/knip/simtree)
under a key over the firmware's text, `knip build`'s own code, mpy-cross's
version and the architecture: built once (0.4-0.6 s) into a temporary
folder and renamed into place, so processes building at once never see
half a tree, and nothing is left in /tmp. Host-only modules
(`knip/replay.py`) are copied in as sources; the board's main.py and
profile.json are left out.

The sources run instead with KNIP_SIM_CODE=source (a traceback then names
source lines), and on a unix port that cannot load this mpy-cross's native
code (another architecture, or another .mpy version). A firmware that
`knip build` refuses stops the trainer with the build's message."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .device import DeviceError

KEEP = 8                        # trees kept; older ones go when unused for a week
_LOCK = threading.Lock()
_PORT: dict[str, tuple[int, int, str | None]] = {}
_EMITS: list[str] = []              # mpy-cross --version


def cache_root() -> Path:
    """Absolute: the trainer runs in firmware/ (a relative XDG_CACHE_HOME is
    ignored, as the XDG spec says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home().absolute() / ".cache")
        except (KeyError, RuntimeError):          # no home folder
            base = os.path.join(tempfile.gettempdir(), f"knip-cache-{os.getuid()}")
    return Path(base).absolute() / "knip" / "simtree"


def _port_mpy(exe: str) -> tuple[int, int, str | None]:
    """(.mpy version, sub-version, native architecture) the port loads."""
    if exe not in _PORT:
        from .esp32 import release as R
        try:
            out = subprocess.run([exe, "-c", "import sys; print(sys.implementation._mpy)"], capture_output=True,
                                 text=True, check=True, timeout=60).stdout
            version, sub, arch = R.decode_sys_mpy(int(out))
        except (OSError, subprocess.SubprocessError, ValueError):
            version, sub, arch = 0, 0, None
        _PORT[exe] = (version, sub, arch if arch in R.MPY_ARCHES else None)
    return _PORT[exe]


def _port_arch(exe: str, emits: str = "") -> str | None:
    """The port's native architecture, if it loads the native code of the
    mpy-cross whose --version is `emits` ("... emitting mpy v6.3"; default:
    the pinned .mpy version), else None."""
    from .esp32 import release as R
    version, sub, arch = _port_mpy(exe)
    want = f"{R.MPY_VERSION}.{R.MPY_SUB_VERSION}"
    if "emitting mpy v" in emits:
        want = emits.rsplit("emitting mpy v", 1)[1].strip()
    return arch if arch is not None and f"{version}.{sub}" == want else None


def firmware_path(firmware_dir: Path, exe: str) -> Path | None:
    """The built tree to put before firmware_dir on MICROPYPATH, or None
    (run the sources). DeviceError when `knip build` refuses the firmware."""
    code = os.environ.get("KNIP_SIM_CODE", "native")
    if code not in ("native", "source"):
        raise DeviceError(f"KNIP_SIM_CODE={code!r}: say 'native' (the built firmware, the default) or 'source'")
    if code == "source" or _port_mpy(exe)[2] is None:      # a port without native code: no mpy-cross asked
        return None
    from .esp32 import build as B
    from .esp32.mp32 import tree_digest
    if not _EMITS:                                          # once per process, not per trainer
        try:
            _EMITS.append(B.mpy_cross_version())
        except (B.BuildError, OSError, subprocess.SubprocessError) as exc:
            raise DeviceError(f"the virtual trainer runs the firmware as knip build makes it: {exc}") from None
    emits = _EMITS[0]
    arch = _port_arch(exe, emits)
    if arch is None:                                        # this mpy-cross's code would not load
        return None
    h = hashlib.sha256(f"{arch}\0{emits}\0".encode())
    h.update(Path(__file__).read_bytes())                  # how the tree is made from the build
    h.update(tree_digest(Path(B.__file__).parent, ".py"))   # knip build itself
    h.update(B.DEFAULT_PROFILE.read_bytes())               # the profile it validates
    h.update(tree_digest(firmware_dir, ".py") + tree_digest(firmware_dir, ".json"))
    top = cache_root()
    entry = top / h.hexdigest()[:24]
    with _LOCK:
        try:
            if not entry.is_dir():
                _build(firmware_dir, arch, top, entry)
            os.utime(entry)                                 # in use: kept
        except OSError:                                     # no cache to write: the sources
            return None
    try:
        _prune(top, entry)
    except OSError:                                         # another process pruning or building: next time
        pass
    return entry


def _build(firmware_dir: Path, arch: str, top: Path, entry: Path) -> None:
    from .esp32 import build as B
    top.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=top))
    try:
        try:
            B.build(tmp, B.DEFAULT_PROFILE, firmware_dir=firmware_dir, march=arch)
        except (B.BuildError, subprocess.SubprocessError) as exc:
            raise DeviceError(f"the virtual trainer runs the firmware as knip build makes it, and the build "
                              f"failed: {exc} (KNIP_SIM_CODE=source runs the sources)") from None
        for name in (B.MANIFEST, B.PROFILE, "main.py"):      # the board's files, not modules
            (tmp / name).unlink(missing_ok=True)
        _mods, held = B.collect_sources(firmware_dir)
        for src in held.values():
            dest = tmp / src.rel
            if not dest.with_suffix(".mpy").exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src.path, dest)
        try:
            tmp.rename(entry)
        except OSError:
            if not entry.is_dir():                          # not another process's tree: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prune(top: Path, keep: Path) -> None:
    # Best effort: other processes build and prune here too. A trainer reads
    # modules as it goes (some only when a program starts), so a tree is
    # removed only when 8 newer ones exist and none started from it for a week.
    now = time.time()
    trees = []
    for p in top.iterdir():
        try:
            age = now - p.stat().st_mtime
        except FileNotFoundError:                           # renamed or removed meanwhile
            continue
        if p.name.startswith(".building-"):
            if age > 3600:                                  # left by a build that was killed
                shutil.rmtree(p, ignore_errors=True)
        elif p.is_dir():
            trees.append((age, p))
    trees.sort()
    for age, p in trees[KEEP:]:
        if p != keep and age > 7 * 86400:
            shutil.rmtree(p, ignore_errors=True)
