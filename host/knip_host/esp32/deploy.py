"""`knip deploy`: put the Knip firmware and a board profile on an ESP32 that
runs MicroPython, in seven steps (docs/DEPLOY.md): check the profile, build,
get the board's REPL, check its MicroPython and its heap (a WROOM without
the frozen build is refused), copy the build with mpremote, install
aioble with mip, restart and check that the app reports what was built.
Sessions and /lib on the board are kept."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

from ..simulator import data_dir
from ..usage import UsageError
from . import build as B
from . import module as M
from . import frozen as F
from . import release as R
from .app import knip_app_info, request_repl, wait_for_app
from .board_port import check_port
from .mpremote import (VERSION_CODE, copy_args, mpremote_failure, parse_device_version, prepare_code,
                       run_mpremote)
from .tools import FirmwareError, say

STEPS = 7


def deploy(port: str, profile: str, *, mip: bool = True, native: bool = True,
           build_dir: str | os.PathLike[str] | None = None, wait_s: float = 20.0,
           march: str = R.MARCH, small_heap: bool = False, frozen: bool = True) -> dict:
    """Validate, build, copy and check (docs/DEPLOY.md). Returns the board's INFO.
    `march` is for boards that are not an ESP32 (a simulated one in tests);
    `small_heap` deploys to a board whose heap is too small (a WROOM) anyway.
    A board whose firmware has this tree frozen in (docs/FROZEN.md) gets only
    the profile; `frozen=False` copies the .mpy tree even then."""
    t0 = time.monotonic()
    _step(1, f"checking the profile {profile}")
    prof = _check_profile(profile)
    safe_pin = prof.get("safe_mode_pin", (prof.get("ui") or {}).get("button"))
    check_port(port)

    _step(2, f"building for the ESP32 (mpy-cross, -march={march})")
    out = Path(build_dir) if build_dir else deploy_build_dir()
    built = _build(out, profile, native, march)
    manifest = B.read_manifest(out)

    _step(3, "getting the board's REPL")
    _get_repl(port)

    _step(4, "checking MicroPython and the heap on the board")
    board = _check_micropython(port, manifest, safe_pin)
    if frozen and _frozen_on_board(port, safe_pin):
        _step(5, "copying the profile only: Knip is frozen in the board's firmware")
        _copy_profile(port, out, manifest, safe_pin)
        _step(6, "aioble: frozen in the firmware, nothing to install")
        _step(7, "restarting the board and waiting for the app")
        got = _restart(port, wait_s, safe_pin)
        _check_app(got, built, port, profile)
        say(f"deploy: done in {time.monotonic() - t0:.0f} s: profile {got.get('profile')} on the frozen "
            f"firmware {got.get('firmware')} on {port}; try: knip info --port {port}")
        return got
    _check_heap(board, prof, port, profile, small_heap)

    files = manifest["files"]
    total = sum(f["size"] for f in files)
    _step(5, f"copying {len(files)} files ({total / 1024:.0f} KB); unchanged files are skipped")
    _copy(port, out, manifest, safe_pin)

    _step(6, "installing aioble (BLE) with mip")
    _install_aioble(port, mip, board["aioble"])

    _step(7, "restarting the board and waiting for the app")
    got = _restart(port, wait_s, safe_pin)
    _check_app(got, built, port, profile)
    say(f"deploy: done in {time.monotonic() - t0:.0f} s: firmware {got.get('firmware')}, profile "
        f"{got.get('profile')} on {port} ({got.get('signal')}, {got.get('rate_hz')} Hz); "
        f"try: knip info --port {port}")
    return got


def deploy_build_dir() -> Path:
    return data_dir() / "build" / "esp32"


def _step(n: int, text: str) -> None:
    say(f"deploy: [{n}/{STEPS}] {text}")


def _check_profile(profile: str) -> dict:
    """The checked profile (exit 2 naming each wrong field)."""
    try:
        return B.check_profile(profile)
    except B.ProfileInvalid as exc:
        raise UsageError(str(exc)) from None


def _build(out: Path, profile: str, native: bool, march: str) -> B.BuildResult:
    try:
        res = B.build(out, profile, native=native, march=march)
    except B.BuildError as exc:
        raise FirmwareError(str(exc)) from None
    say(f"deploy: built {res.summary()}")
    for note in res.native_fallback:
        say(f"deploy: note: bytecode instead of native code for {note}")
    return res


def _get_repl(port: str) -> None:
    """A running Knip app is asked to leave; else the board is at its REPL."""
    info = knip_app_info(port, timeout=1.5)
    if info is None:
        say("deploy: no Knip app answered: the board is at its REPL (or just flashed)")
        return
    say(f"deploy: the Knip app answered (firmware {info.get('firmware')}, profile "
        f"{info.get('profile', '?')}, state {info.get('state')}); asking it for the REPL"
        + ("; the running session is ended and kept" if info.get("state") == "session" else ""))
    request_repl(port)
    time.sleep(0.8)                  # main.py returns and the REPL prompt comes up


def _check_micropython(port: str, manifest: dict, safe_pin: int | None) -> dict:
    """The board's MicroPython (parse_device_version), when the build fits it."""
    rc, text = run_mpremote(port, "exec", VERSION_CODE, echo=False, timeout=60)
    if rc != 0:
        raise mpremote_failure(text, port, "checking the version", safe_pin)
    board = parse_device_version(text)
    notes = check_compatible(board, manifest, port)
    say(f"deploy: the board runs MicroPython {board['version']} ({board['machine'] or 'unknown board'}), "
        f".mpy {board['mpy_version']}.{board['mpy_sub']} {board['arch']}: the build fits")
    for n in notes:
        say(f"deploy: note: {n}")
    return board


def _check_heap(board: dict, prof: dict, port: str, profile: str, small_heap: bool) -> None:
    """Knip loaded from files needs the heap of a WROVER's PSRAM (or the frozen
    build): refuse a board short of it, saying what to do, unless `small_heap`."""
    if board.get("heap") is not None:
        say(f"deploy: {M.describe(board['heap'], board['heap_free'], board['psram'], M.is_spiram(board['machine']))}"
            + ("; the Knip modules are frozen into the firmware" if board.get("frozen") else ""))
    problem = M.deploy_problem(board, prof, port, profile)
    if problem and small_heap and "GPIO16/17" not in problem:
        say(f"deploy: warning (--small-heap): {problem}")
    elif problem:
        raise FirmwareError(problem)


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
                            "pins are for the classic ESP32 (an ESP32-WROVER-E board such as the ESP32-DevKitC-VE; "
                            "a WROOM-32E with the frozen build)")
    if not dev["version"].startswith(R.MICROPYTHON_VERSION.rsplit(".", 1)[0] + "."):
        notes.append(f"the board runs MicroPython {dev['version']}: its .mpy format fits, but Knip is "
                     f"tested on v{R.MICROPYTHON_VERSION} (`make flash PORT={port}` installs it)")
    return notes


def _copy(port: str, out: Path, manifest: dict, safe_pin: int | None) -> None:
    """Remove old files of ours, then copy the build (mpremote skips unchanged files)."""
    rc, text = run_mpremote(port, "exec", prepare_code(manifest), echo=False)
    if rc != 0 or "knip-prepared" not in text:
        raise mpremote_failure(text, port, "removing old files", safe_pin)
    for line in text.splitlines():
        if line.startswith("removed"):
            say(f"deploy: {line} (not in this build)")
    rc, text = run_mpremote(port, *copy_args([f["path"] for f in manifest["files"]]), cwd=out)
    if rc != 0:
        raise mpremote_failure(text, port, "copying files", safe_pin)


def _frozen_on_board(port: str, safe_pin: int | None) -> bool:
    """True when the board's firmware has exactly this tree frozen in; an
    error when it has another one (its modules would run, not these)."""
    rc, text = run_mpremote(port, "exec", F.PROBE_CODE, echo=False, timeout=60)
    if rc != 0:
        raise mpremote_failure(text, port, "looking for a frozen firmware", safe_pin)
    mark = F.parse_marker(text)
    if mark is None:
        return False
    here = F.source_digest(F.frozen_sources())
    if mark["source"] != here:
        raise FirmwareError(
            f"the board's firmware has Knip {mark['firmware']} frozen in, built from other sources than "
            f"this tree's (source digest {mark['source'][:12]}, here {here[:12]}): build the frozen "
            f"firmware of this tree and flash it (tools/build-frozen.sh, then knip flash --port {port} "
            "--firmware FILE; docs/FROZEN.md), or deploy with --no-frozen to put the .mpy tree on its "
            "filesystem instead (those files then shadow the frozen modules and take heap)")
    say(f"deploy: the board's firmware has Knip {mark['firmware']} frozen in, built from these "
        "sources: only the profile goes onto its filesystem")
    return True


def _copy_profile(port: str, out: Path, manifest: dict, safe_pin: int | None) -> None:
    """Remove any .mpy tree of ours (on the filesystem it would shadow the
    frozen modules) and /main.py, then copy the profile."""
    only = {"files": [f for f in manifest["files"] if f["path"] == B.PROFILE], "packages": manifest["packages"]}
    # an empty /knip/ left behind would still shadow the frozen package ("" is first on sys.path)
    code = prepare_code(only) + ("for d in P+['main.py']:\n try:\n  (os.remove if d=='main.py' else os.rmdir)(d)\n"
                                 "  print('removed',d)\n except OSError:\n  pass\n")
    rc, text = run_mpremote(port, "exec", code, echo=False)
    if rc != 0 or "knip-prepared" not in text:
        raise mpremote_failure(text, port, "removing old files", safe_pin)
    for line in text.splitlines():
        if line.startswith("removed"):
            say(f"deploy: {line} (the firmware has it frozen)")
    rc, text = run_mpremote(port, *copy_args([B.PROFILE]), cwd=out)
    if rc != 0:
        raise mpremote_failure(text, port, "copying the profile", safe_pin)


def _install_aioble(port: str, mip: bool, installed: bool) -> None:
    """aioble with mip, unless it is there or --no-mip; offline it warns and goes on."""
    if not mip:
        say("deploy: skipped (--no-mip)" + ("" if installed else "; BLE stays off until aioble is installed"))
        return
    if installed:
        say(f"deploy: aioble is already on the board ({R.MIP_CHECK})")
        return
    rc, text = run_mpremote(port, "mip", "install", *R.MIP_PACKAGES, timeout=300)
    if rc != 0 or "Package may be partially installed" in text:
        offline = re.search(r"urlopen|Name or service|resolution|unreachable|timed out|URLError", text,
                            re.IGNORECASE)
        say("deploy: warning: aioble was not installed ("
            + ("no internet connection" if offline else " | ".join(text.strip().splitlines()[-2:]))
            + f"); BLE stays off until it is: run `mpremote connect {port} mip install {' '.join(R.MIP_PACKAGES)}` "
              f"when online, or `make deploy PORT={port}` again")


def _restart(port: str, wait_s: float, safe_pin: int | None) -> dict:
    """Reset the board; the app's INFO once it is up."""
    rc, text = run_mpremote(port, "reset", echo=False, timeout=30)
    if rc != 0 and "failed to access" in text:
        raise mpremote_failure(text, port, "restarting", safe_pin)
    return wait_for_app(port, wait_s, safe_pin)


def _check_app(got: dict, built: B.BuildResult, port: str, profile: str) -> None:
    """The app must report the firmware and profile just built."""
    problems = []
    if got.get("firmware") != built.firmware:
        problems.append(f"firmware {got.get('firmware')!r} (built {built.firmware!r})")
    if got.get("profile") != built.profile:
        problems.append(f"profile {got.get('profile')!r} (built {built.profile!r})")
    if problems:
        raise FirmwareError(f"the board came back with {' and '.join(problems)}: old files may be in the "
                            f"way; run `make deploy PORT={port} PROFILE={profile}` again, and if it "
                            "repeats, check `mpremote connect PORT fs tree`")
