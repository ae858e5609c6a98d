"""`knip flash`: erase the board and write MicroPython with esptool 5, and
what esptool's failures mean."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..ports import ports_listing
from ..usage import UsageError
from . import release as R
from .app import knip_app_info
from .board_port import busy_error, check_port
from .image import download_firmware, image_problem, version_in_name
from .tools import FirmwareError, have, python_tool, say, stream


def flash(port: str, firmware: str | None = None, *, chip: str = R.CHIP, baud: int = 460800,
          erase: bool = True, force: bool = False) -> Path:
    """Erase the board and write MicroPython (the pinned release unless `firmware`)."""
    if chip not in R.FLASH_OFFSET:
        raise UsageError(f"--chip {chip}: use one of {', '.join(R.FLASH_OFFSET)}")
    check_port(port)
    image = _image(firmware, chip)
    if erase:
        _refuse_unsynced(port, force)
    if not have("esptool"):
        raise FirmwareError("esptool is not installed: pip install 'esptool>=5' (make setup does)")
    base = python_tool("esptool") + ["--chip", chip, "--port", port, "--baud", str(baud)]
    steps = (["erase-flash"], ["write-flash", "-z", hex(R.FLASH_OFFSET[chip]), str(image)])
    if not erase:
        steps = steps[1:]
    for i, step in enumerate(steps, 1):
        what = ("erasing the whole flash (MicroPython, files and sessions)" if step[0] == "erase-flash"
                else f"writing {image.name} at {hex(R.FLASH_OFFSET[chip])}")
        say(f"flash: [{i}/{len(steps)}] {what}")
        rc, out = stream(base + step)
        if rc != 0:
            raise esptool_failure(out, port, rc, baud)
    say(f"flash: done: MicroPython on {port}; next: make deploy PORT={port} PROFILE=hardware/profiles/NAME.json")
    return image


def _image(firmware: str | None, chip: str) -> Path:
    """The image to write: `firmware`, else the pinned release; checked."""
    if firmware:
        image = Path(firmware)
        if not image.is_file():
            raise UsageError(f"--firmware {firmware}: no such file; download it from "
                             f"https://micropython.org/download/{R.BOARDS[chip]}/")
    else:
        image = download_firmware(chip)
    problem = image_problem(image)
    if problem:
        raise UsageError(f"--firmware {image}: {problem}; download the .bin for {R.BOARDS[chip]} from "
                         f"https://micropython.org/download/{R.BOARDS[chip]}/")
    ver = version_in_name(image)
    if ver and not ver.startswith(R.MICROPYTHON_VERSION.rsplit(".", 1)[0]):
        say(f"flash: warning: {image.name} looks like MicroPython v{ver}; Knip's files are built for "
            f"v{R.MICROPYTHON_VERSION} and `knip deploy` will refuse another .mpy format")
    return image


def _refuse_unsynced(port: str, force: bool) -> None:
    """Erasing deletes her sessions: unless `force`, refuse while the app
    reports unsynced ones."""
    info = knip_app_info(port)
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
