"""The 32-bit MicroPython unix port with Knip frozen in (../shared/tools/mp32):
object sizes on its heap are the ESP32's. `make test` runs firmware/manifest.py
in it (tests/mp32_prebuild.py, tests/test_frozen.py); `make bench` measures
the ESP32's heap with tests/mp/manifest_measure.py (bench/esp32_memory.py).

A build costs about 70 s of CPU. Each port is kept in a cache, like pip's
wheels ($KNIP_MP32_CACHE, else $XDG_CACHE_HOME/knip/mp32, else
~/.cache/knip/mp32; the CACHE_KEEP used last stay), under a key over all it
is built from: the mp32 tool, the manifest, the firmware it freezes (the
marker holds the frozen sources' digest), the host code the manifest runs,
the extra files a manifest freezes besides, the vendored MicroPython source
and the compiler. The build runs without the caller's make flags and
compiler settings (build_env), so a port is the same whoever builds it: two
builds of one tree gave byte-identical binaries. KNIP_MP32_CACHE=off always
builds.

Standard library only: make test runs it before the venv exists."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from . import frozen as F

ROOT = Path(__file__).resolve().parents[3]
FIRMWARE_MANIFEST = ROOT / "firmware" / "manifest.py"
MP32 = ROOT.parent / "shared" / "tools" / "mp32"
VENDOR = ROOT.parent / "shared" / "vendor"
PORT_FILES = ("micropython", "mpy-cross")
CACHE_KEEP = 6                # make test's port and make bench's, for a few trees
CACHE_HIT = "mp32: the port from the cache"    # how build()'s log starts when it copied one
# what firmware/manifest.py runs to list, place and mark the frozen modules
MANIFEST_HOST = tuple(Path(__file__).resolve().parent / f for f in ("frozen.py", "build.py", "release.py"))
# make and compiler settings MicroPython's makefiles would take from the caller
_BUILD_VARS = frozenset(("MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKELEVEL", "CC", "CXX", "CPP", "LD", "AS",
                         "CFLAGS", "CPPFLAGS", "LDFLAGS", "COPT", "DEBUG", "CROSS_COMPILE", "STRIP", "BUILD",
                         "VARIANT", "CFLAGS_EXTRA", "LDFLAGS_EXTRA", "USER_C_MODULES", "FROZEN_MANIFEST",
                         "V", "BUILD_VERBOSE"))


def tree_digest(top: Path, suffix: str = "") -> bytes:
    """sha256 over every file under top whose name ends in suffix (path and
    bytes), Python's __pycache__ folders left out: the vendored MicroPython
    and micropython-lib take 0.3-1 s."""
    h = hashlib.sha256()
    for d, dirs, files in os.walk(top):
        dirs[:] = sorted(n for n in dirs if n != "__pycache__")
        for name in sorted(n for n in files if n.endswith(suffix)):
            p = Path(d, name)
            h.update(p.relative_to(top).as_posix().encode() + b"\0")
            try:
                h.update(hashlib.sha256(p.read_bytes()).digest())
            except OSError:                   # a dangling link: its name alone
                h.update(b"?")
    return h.digest()


def _compiler() -> bytes:
    try:
        return subprocess.run(["gcc", "--version"], capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return b"no gcc"


def _firmware() -> list[bytes]:
    """firmware/manifest.py's part of the key: the manifest, the flags its
    native code is compiled with, the marker (it names the firmware version
    and holds the frozen sources' digest), the host code the manifest runs."""
    return [FIRMWARE_MANIFEST.read_bytes(), F.MP32_MPY_CROSS_FLAGS.encode(), F.marker_source().encode(),
            *(p.read_bytes() for p in MANIFEST_HOST)]


def _where(p: Path) -> bytes:
    # a path in the checkout relative to it: every clone of one tree has one key
    p = p.resolve()
    return (p.relative_to(ROOT) if p.is_relative_to(ROOT) else p).as_posix().encode()


def key(manifest: Path = FIRMWARE_MANIFEST, extra: Sequence[Path] = ()) -> str:
    """What the port is built from: the tool, the firmware (every manifest
    here includes firmware/manifest.py), `manifest` itself (where it is, as
    it includes by relative paths, and what it says), the `extra` files and
    folders of .py files it freezes besides, the vendored source and the
    compiler (build_env() keeps the caller's make and compiler settings out
    of the build)."""
    h = hashlib.sha256()
    parts = [MP32.read_bytes(), *_firmware(), _where(manifest), manifest.read_bytes()]
    for p in extra:
        parts.append(_where(p))
        parts.append(tree_digest(p, ".py") if p.is_dir() else p.read_bytes())
    for part in (*parts, tree_digest(VENDOR), _compiler()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def build_env() -> dict[str, str]:
    """The environment mp32 runs in: without make's flags from a calling
    make (`make test DEBUG=1` would reach MicroPython's makefiles) or the
    compiler settings its makefiles read, so the port is the one the key
    describes, whoever builds it."""
    env = F.mp32_env()
    for name in list(env):
        if name in _BUILD_VARS or name.startswith("MICROPY_"):
            del env[name]
    return env


def cache_dir() -> Path | None:
    """Where built ports are kept, or None (KNIP_MP32_CACHE=off)."""
    env = os.environ.get("KNIP_MP32_CACHE", "")
    if env.lower() in ("off", "0", "no", "false", "none"):
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (KeyError, RuntimeError):      # no home folder: nothing kept
            return None
    return Path(base) / "knip" / "mp32"


def _sums(folder: Path) -> bytes:
    return "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n"
                   for n in PORT_FILES).encode()


def from_cache(k: str, port: Path) -> str | None:
    """Copy the cached port of key k into port; the log line to show, or
    None. An entry whose files are missing or differ from their checksums
    goes; one that cannot be copied (a full disk) stays, and is a miss."""
    top = cache_dir()
    if top is None or not (top / k).is_dir():
        return None
    entry = top / k
    try:
        sound = (entry / "sums").read_bytes() == _sums(entry)
        built = (entry / "built").read_bytes().decode("ascii").strip()
    except (OSError, ValueError):
        sound = False
    if not sound:
        shutil.rmtree(entry, ignore_errors=True)
        return None
    try:
        port.mkdir(parents=True, exist_ok=True)
        for n in PORT_FILES:
            shutil.copy2(entry / n, port / n)
    except OSError:
        return None
    try:
        os.utime(entry)                       # used now: kept longest
    except OSError:                           # a cache that is only read
        pass
    return (f"{CACHE_HIT} {entry} (built {built}); "
            f"KNIP_MP32_CACHE=off builds it again\n")


def to_cache(k: str, port: Path) -> None:
    """Keep a port just built under key k; the oldest entries beyond
    CACHE_KEEP go, and folders left half written an hour ago. A cache that
    cannot be written is only not used."""
    top = cache_dir()
    if top is None:
        return
    tmp = None
    try:
        top.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=top, prefix=".new-"))
        for n in PORT_FILES:
            shutil.copy2(port / n, tmp / n)
        (tmp / "sums").write_bytes(_sums(tmp))
        (tmp / "built").write_text(time.strftime("%Y-%m-%d %H:%M:%S") + "\n")
        try:
            os.rename(tmp, top / k)
            tmp = None
        except OSError:                       # another run kept the same port first
            pass
        now = time.time()
        entries = []
        for e in top.iterdir():
            if not e.is_dir():
                continue
            if not e.name.startswith("."):
                entries.append(e)
            elif e.name.startswith(".new-") and now - e.stat().st_mtime > 3600:
                shutil.rmtree(e, ignore_errors=True)
        entries.sort(key=lambda e: e.stat().st_mtime, reverse=True)
        for old in entries[CACHE_KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def build(out: Path, manifest: Path = FIRMWARE_MANIFEST, extra: Sequence[Path] = (), timeout: float = 1500,
          own_group: bool = False) -> tuple[int, str]:
    """The port with `manifest` frozen in, in out/port; returns (exit
    status, output). Writes out/key first and out/rc last, so a waiting
    reader sees a finished build. A port cached under the same key is
    copied; else out/port is built afresh (mp32 would reuse a copy of the
    vendored source left there by an earlier build) and cached when
    nothing it was built from changed meanwhile. With own_group (make
    test's background build) the compilers run in a process group of
    their own, which goes when this process is told to stop."""
    out.mkdir(parents=True, exist_ok=True)
    for n in ("rc", "log"):
        (out / n).unlink(missing_ok=True)
    k = key(manifest, extra)
    (out / "key").write_text(k)
    cached = from_cache(k, out / "port")
    if cached is not None:
        (out / "log").write_text(cached)
        write_rc(out, 0)
        return 0, cached
    if (out / "port").exists():
        _remove(out / "port")
    proc = subprocess.Popen(["bash", str(MP32), str(out / "port"), str(manifest)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=build_env(), start_new_session=own_group)

    def stop(signum, _frame):                  # make test ended early: the compilers go too
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:            # they had ended
            pass
        raise SystemExit(128 + signum)
    if own_group:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        (os.killpg if own_group else os.kill)(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        log += f"\nmp32: no port after {timeout:g} s"
    if proc.returncode == 0 and key(manifest, extra) == k:
        to_cache(k, out / "port")
    (out / "log").write_text(log)
    write_rc(out, proc.returncode)
    return proc.returncode, log


def write_rc(out: Path, rc: int) -> None:
    """out/rc, the last file a build writes: whole or not there at all for
    a reader waiting on it."""
    (out / "rc.new").write_text(str(rc))
    os.replace(out / "rc.new", out / "rc")


def _remove(folder: Path) -> None:
    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=_writable_then_retry)
    else:
        shutil.rmtree(folder, onerror=_writable_then_retry)


def _writable_then_retry(func, path, _exc) -> None:
    # the copy of the vendored source mp32 makes is read-only where
    # ../shared is: make its folder writable and try once more
    os.chmod(os.path.dirname(path), 0o755)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o755)
    func(path)
