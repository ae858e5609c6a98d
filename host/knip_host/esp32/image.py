"""The MicroPython image for the board: the pinned release in the variant
the board needs (plain or SPIRAM), kept in the data directory and
downloaded once with mpflash, and the checks that a file is an ESP32
application image of that release, and of which variant."""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from ..simulator import data_dir
from . import release as R
from .tools import FirmwareError, have, say, stream


def firmware_cache() -> Path:
    return data_dir() / "firmware"


def download_firmware(chip: str = R.CHIP, *, variant: str = "", folder: Path | None = None) -> Path:
    """The pinned MicroPython release for `chip` (ESP32_GENERIC's `variant`,
    "" or "SPIRAM"), from the cache or downloaded with mpflash."""
    board = R.BOARDS[chip] + (f"-{variant}" if variant else "")
    page = f"https://micropython.org/download/{R.BOARDS[chip]}/"
    folder = folder or firmware_cache()
    name = f"{board}-v{R.MICROPYTHON_VERSION}.bin"
    found = find_firmware(folder, name)
    if found:
        say(f"flash: MicroPython v{R.MICROPYTHON_VERSION} for {board} from the cache ({found})")
        return found
    heading = f" under the heading \"Support for SPIRAM / WROVER\"" if variant == R.SPIRAM else ""
    offline = (f"download it yourself: open {page}, take the v{R.MICROPYTHON_VERSION} .bin{heading} "
               f"(named like {board}-YYYYMMDD-v{R.MICROPYTHON_VERSION}.bin), "
               f"then run `make flash PORT=... FIRMWARE=path/to/file.bin` "
               f"(or `knip flash --port PORT --firmware path/to/file.bin`)")
    exe = shutil.which("mpflash") or str(Path(sys.executable).parent / "mpflash")
    if not have("mpflash") or not os.path.exists(exe):
        raise FirmwareError(f"mpflash is not installed, so MicroPython v{R.MICROPYTHON_VERSION} cannot be "
                            f"downloaded: pip install 'mpflash>={R.MICROPYTHON_VERSION[:4]}' (make setup "
                            f"does), or {offline}")
    folder.mkdir(parents=True, exist_ok=True)
    say(f"flash: downloading MicroPython v{R.MICROPYTHON_VERSION} for {board} with mpflash into {folder}")
    env = dict(os.environ, MPFLASH_FIRMWARE=str(folder))
    rc, out = stream([exe, "--no-interactive", "--dir", str(folder), "download",
                      "--version", f"v{R.MICROPYTHON_VERSION}", "--board", board], env=env)
    found = find_firmware(folder, name)
    if found:
        return found
    # mpflash exits 0 when it cannot reach micropython.org: judge by the file
    reason = ("no connection to micropython.org" if re.search(
        r"Could not connect|NameResolution|Name or service not known|Max retries|Network is unreachable|"
        r"Temporary failure", out) else f"mpflash exited with {rc} and saved no file")
    raise FirmwareError(f"could not download MicroPython v{R.MICROPYTHON_VERSION} for {board} ({reason}); "
                        + offline)


def find_firmware(folder: Path, name: str) -> Path | None:
    """A saved image of the pinned version and variant (mpflash keeps it under
    PORT/NAME; a file from the download page has the build date in its name).
    ESP32_GENERIC-v1.29.0.bin is not ESP32_GENERIC-SPIRAM-v1.29.0.bin, nor the other way."""
    if not folder.is_dir():
        return None
    board, version = name[:-4].split("-v", 1)
    pattern = re.compile(rf"{re.escape(board)}(-\d{{8}})?-v{re.escape(version)}\.bin")
    for p in sorted(folder.rglob("*.bin")):
        if pattern.fullmatch(p.name) and image_problem(p) is None:
            return p
    return None


def image_variant(path: Path) -> str | None:
    """Which ESP32_GENERIC variant an image is: "SPIRAM" or "" (plain), by the
    machine name compiled into it (what sys.implementation._machine says on
    the board), else by its file name; None when neither tells (another
    board's image or a custom build)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    for variant in (R.SPIRAM, ""):
        if R.MACHINES[variant].encode() in data:
            return variant
    name = path.name.upper()
    if "SPIRAM" in name:                            # also esp32spiram-... of releases before 1.21
        return R.SPIRAM
    if name.startswith(R.BOARD + "-") and re.fullmatch(rf"{R.BOARD}(-\d{{8}})?-V[\d.]+\.BIN", name):
        return ""
    return None


def image_problem(path: Path) -> str | None:
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


def version_in_name(path: Path) -> str | None:
    m = re.search(r"v(\d+\.\d+(?:\.\d+)?)", path.name)
    return m.group(1) if m else None
