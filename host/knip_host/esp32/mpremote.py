"""mpremote on the board's port: running it, what its failures mean, and the
code deploy runs on the board with it (the version report, the clean-up of
old files)."""
from __future__ import annotations

import os
import re

from ..ports import ports_listing
from . import release as R
from .board_port import busy_error
from .tools import FirmwareError, have, python_tool, stream

# run on the board: its MicroPython, .mpy format and machine, whether aioble
# is installed, its heap (gc.mem_free() on the ESP32 counts the IDF heap it
# may still grow into), the PSRAM in the IDF heap (-1: no esp32 module), and
# whether the Knip modules are frozen into the firmware
VERSION_CODE = ("import sys,os,gc\ni=sys.implementation\nprint('knip-impl',repr(i))\n"
                "print('knip-mpy',getattr(i,'_mpy',0),'ver',*i.version[:3])\n"
                "try:\n os.stat('%s')\n print('knip-aioble 1')\nexcept OSError:\n print('knip-aioble 0')\n"
                "gc.collect()\nprint('knip-heap',gc.mem_free()+gc.mem_alloc(),gc.mem_free())\n"
                "try:\n import esp32\n print('knip-psram',sum(r[0] for r in esp32.idf_heap_info(esp32.HEAP_DATA)"
                " if r[0]>=%d))\nexcept (ImportError,AttributeError):\n print('knip-psram -1')\n"
                "p=sys.path[:]\nsys.path[:]=['.frozen']\n"
                "try:\n import knip\n print('knip-frozen 1')\nexcept ImportError:\n print('knip-frozen 0')\n"
                "sys.path[:]=p\n"
                % (R.MIP_CHECK, R.PSRAM_REGION))


def run_mpremote(port: str, *args: str, echo: bool = True, cwd: str | os.PathLike[str] | None = None,
                 timeout: float | None = 600) -> tuple[int, str]:
    """`mpremote connect PORT ARGS...`: (exit code, output)."""
    if not have("mpremote"):
        raise FirmwareError("mpremote is not installed: pip install 'mpremote>=1.29' (make setup does)")
    return stream(python_tool("mpremote") + ["connect", port, *args], echo=echo, cwd=cwd, timeout=timeout)


def mpremote_failure(text: str, port: str, doing: str, safe_pin: int | None) -> FirmwareError:
    """What to do about mpremote's `text`, when it failed while `doing`."""
    if "failed to access" in text or "in use by another program" in text:
        if not os.path.exists(port):
            return FirmwareError(f"{port} went away while {doing}: plug the board in again and run "
                                 f"again. {ports_listing()}")
        return busy_error(port)
    if "could not enter raw repl" in text or "timeout waiting for" in text:
        pin = f"GPIO{safe_pin}" if safe_pin is not None else "the safe-mode pin"
        return FirmwareError(f"the board on {port} does not give its REPL while {doing}: hold the button "
                             f"on {pin} (safe mode) while pressing and releasing EN, let go, and run the "
                             "deploy again; if the board was just flashed, press EN once")
    if re.search(r"No space left|ENOSPC|errno 28", text, re.IGNORECASE):
        return FirmwareError(f"the board's filesystem is full while {doing}: run `knip sync --port {port}` "
                             "to move sessions off it, then deploy again")
    tail = " | ".join(line.strip() for line in text.strip().splitlines()[-3:])
    return FirmwareError(f"mpremote failed while {doing}: {tail}")


def parse_device_version(text: str) -> dict:
    """What the VERSION_CODE run on the board printed: version, .mpy format,
    machine, aioble, heap (None if not reported), PSRAM (None: not an ESP32),
    frozen Knip modules."""
    m = re.search(r"knip-mpy (\d+) ver (\d+) (\d+) (\d+)", text)
    if not m:
        raise FirmwareError("the board did not report its MicroPython version (is it running "
                            f"MicroPython?): {' | '.join(text.strip().splitlines()[-3:])}")
    sys_mpy = int(m.group(1))
    v, sub, arch = R.decode_sys_mpy(sys_mpy)
    mach = re.search(r"_machine='([^']*)'", text)
    heap = re.search(r"knip-heap (\d+) (\d+)", text)
    psram = re.search(r"knip-psram (-?\d+)", text)
    return {"version": ".".join(m.group(i) for i in (2, 3, 4)), "sys_mpy": sys_mpy, "mpy_version": v,
            "mpy_sub": sub, "arch": arch, "machine": mach.group(1) if mach else "",
            "aioble": "knip-aioble 1" in text,
            "heap": int(heap.group(1)) if heap else None, "heap_free": int(heap.group(2)) if heap else None,
            "psram": int(psram.group(1)) if psram and int(psram.group(1)) >= 0 else None,
            "frozen": "knip-frozen 1" in text}


def prepare_code(manifest: dict) -> str:
    """Remove files of ours the new build does not have (and any .py that
    would shadow a .mpy), make the folders; never touches /lib, /sessions or
    anything outside our packages."""
    keep = sorted(f["path"] for f in manifest["files"])
    dirs = sorted({"/".join(p.split("/")[:i]) for p in keep for i in range(1, p.count("/") + 1)})
    return ("import os\nK=set(%r)\nD=%r\nP=%r\n"
            "def w(d):\n"
            " try:\n  es=list(os.ilistdir(d))\n except OSError:\n  return\n"
            " for e in es:\n"
            "  p=d+'/'+e[0]\n"
            "  if e[1]&0x4000:\n   w(p)\n   if p not in D:\n    os.rmdir(p);print('removed',p)\n"
            "  elif p not in K:\n   os.remove(p);print('removed',p)\n"
            "for d in P:\n w(d)\n"
            "for d in D:\n try:\n  os.mkdir(d)\n except OSError:\n  pass\n"
            "print('knip-prepared')\n") % (keep, dirs, [d for d in manifest["packages"]])


def copy_args(paths: list[str]) -> list[str]:
    """mpremote arguments that copy `paths` (relative to the build folder) to
    the same places on the board, main.py last: until it is there the board
    boots to its REPL."""
    order = sorted(paths, key=lambda p: (p == "main.py", p))
    cp: list[str] = []
    for p in order:
        cp += ["+"] if cp else []
        cp += ["fs", "cp", p, ":" + p]
    return cp
