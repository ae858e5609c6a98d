"""`knip flash`: erase the board and write MicroPython with esptool 5 (the
variant the module needs: SPIRAM for a WROVER, plain for a WROOM), check
what the board reports afterwards, and what esptool's failures mean."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

from ..ports import ports_listing
from ..usage import UsageError
from . import build as B
from . import module as M
from . import release as R
from .app import knip_app_info
from .board_port import busy_error, check_port
from .image import download_firmware, image_problem, image_variant, version_in_name
from .mpremote import VERSION_CODE, parse_device_version, run_mpremote
from .tools import FirmwareError, have, python_tool, say, stream


def flash(port: str, firmware: str | None = None, *, chip: str = R.CHIP, baud: int = 460800,
          erase: bool = True, force: bool = False, psram: bool | None = None, profile: str | None = None,
          check: bool = True) -> Path:
    """Erase the board and write MicroPython (the pinned release unless
    `firmware`): the SPIRAM image for a WROVER, the plain one for a WROOM,
    as `psram`, the profile's module or the board itself says (module.choose_variant).
    Then ask the fresh MicroPython for its heap and PSRAM, and warn when
    the image does not fit the board."""
    if chip not in R.FLASH_OFFSET:
        raise UsageError(f"--chip {chip}: use one of {', '.join(R.FLASH_OFFSET)}")
    module = _profile_module(profile)
    check_port(port)
    info = knip_app_info(port)
    variant, why = M.choose_variant(psram, module, info) if chip == R.CHIP else ("", "")
    image, variant = _image(firmware, chip, variant, declared=psram is not None or module is not None)
    if chip == R.CHIP:
        say(f"flash: image {M.variant_name(variant) if variant is not None else image.name}"
            + (f": {why}" if why else ""))
    if erase:
        _refuse_unsynced(info, port, force)
    if not have("esptool"):
        raise FirmwareError("esptool is not installed: pip install 'esptool>=5' (make setup does)")
    base = python_tool("esptool") + ["--chip", chip, "--port", port, "--baud", str(baud)]
    steps = (["erase-flash"], ["write-flash", "-z", hex(R.FLASH_OFFSET[chip]), str(image)])
    if not erase:
        steps = steps[1:]
    seen = None
    for i, step in enumerate(steps, 1):
        what = ("erasing the whole flash (MicroPython, files and sessions)" if step[0] == "erase-flash"
                else f"writing {image.name} at {hex(R.FLASH_OFFSET[chip])}")
        say(f"flash: [{i}/{len(steps)}] {what}")
        rc, out = stream(base + step)
        if rc != 0:
            raise esptool_failure(out, port, rc, baud)
        seen = seen or M.parse_chip(out)
    warning = M.chip_mismatch(seen, variant, port)
    if warning:
        say(f"flash: warning: {warning}")
    if check and chip == R.CHIP:
        check_after_flash(port, variant)
    say(f"flash: done: MicroPython on {port}; next: make deploy PORT={port} PROFILE=hardware/profiles/NAME.json")
    return image


def _profile_module(profile: str | None) -> str | None:
    """The module a profile names (it is checked first; "wrover" when it does not say)."""
    if profile is None:
        return None
    try:
        prof = B.check_profile(profile)
    except B.ProfileInvalid as exc:
        raise UsageError(str(exc)) from None
    return prof.get("module", "wrover")


def _image(firmware: str | None, chip: str, variant: str,
           declared: bool = False) -> tuple[Path, str | None]:
    """The image to write, checked, and its variant: `firmware`, else the
    pinned release of `variant`. A given file's own variant wins over a
    guess; against a declared one (--psram, a profile) it is a warning."""
    page = f"https://micropython.org/download/{R.BOARDS[chip]}/"
    if firmware:
        image = Path(firmware)
        if not image.is_file():
            raise UsageError(f"--firmware {firmware}: no such file; download it from {page}")
    else:
        image = download_firmware(chip, variant=variant)
    problem = image_problem(image)
    if problem:
        raise UsageError(f"--firmware {image}: {problem}; download the .bin for {R.BOARDS[chip]} from {page}")
    ver = version_in_name(image)
    if ver and not ver.startswith(R.MICROPYTHON_VERSION.rsplit(".", 1)[0]):
        say(f"flash: warning: {image.name} looks like MicroPython v{ver}; Knip's files are built for "
            f"v{R.MICROPYTHON_VERSION} and `knip deploy` will refuse another .mpy format")
    if not firmware or chip != R.CHIP:
        return image, variant
    got = image_variant(image)
    if got is not None and got != variant and declared:
        say(f"flash: warning: {image.name} is the {M.variant_name(got)} image, but this board wants "
            f"{M.variant_name(variant)}: "
            + ("without PSRAM a WROOM gets no more heap from it and runs slower (the PSRAM cache workaround)"
               if got == R.SPIRAM else "the plain image leaves the WROVER's PSRAM unused (about 110 KB of heap)")
            + f"; the pinned one is {R.firmware_file(variant)} (leave out --firmware to download it)")
    return image, got


def check_after_flash(port: str, variant: str | None) -> dict | None:
    """Ask the freshly flashed MicroPython for its heap and PSRAM (esptool's
    hard reset has just restarted it) and warn when the image does not fit
    the board. A board that does not answer only gets a note."""
    time.sleep(1.0)                             # the boot messages pass
    rc, text = run_mpremote(port, "exec", VERSION_CODE, echo=False, timeout=30)
    try:
        if rc != 0:
            raise FirmwareError(" | ".join(text.strip().splitlines()[-2:]))
        dev = parse_device_version(text)
    except FirmwareError as exc:
        say(f"flash: note: could not ask the board for its heap ({exc}); `knip deploy` checks it")
        return None
    say(f"flash: the board runs MicroPython {dev['version']} ({dev['machine']}): "
        + M.describe(dev["heap"], dev["heap_free"], dev["psram"], M.is_spiram(dev["machine"])))
    for w in M.after_flash(dev, variant, port):
        say(f"flash: warning: {w}")
    return dev


def _refuse_unsynced(info: dict | None, port: str, force: bool) -> None:
    """Erasing deletes her sessions: unless `force`, refuse while the app
    (its INFO) reports unsynced ones."""
    if info is not None and info.get("unsynced") and not force:
        n = info["unsynced"]
        raise FirmwareError(f"the trainer on {port} holds {n} session{'s' if n != 1 else ''} not yet "
                            f"synced, and flashing erases them: run `knip sync --port {port}` first "
                            "(or add --force, FORCE=1 with make, to erase them anyway)")


def esptool_failure(text: str, port: str, rc: int, baud: int) -> FirmwareError:
    """What to do about esptool's output `text` after it exited with `rc`."""
    if "Permission denied" in text:
        return FirmwareError(f"permission denied on {port}: add yourself to the 'dialout' group "
                             "(sudo usermod -aG dialout $USER, then log in again)")
    if re.search(r"Could not (exclusively lock|open)|busy or doesn't exist|Resource busy", text):
        if not os.path.exists(port):
            return FirmwareError(f"{port} went away: is the board still plugged in? {ports_listing()}")
        return busy_error(port)
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
