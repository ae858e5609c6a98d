"""The MicroPython image for the board: the pinned release, kept in the data
directory and downloaded once with mpflash, and the checks that a file is
an ESP32 application image of that release."""
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


def download_firmware(chip: str = R.CHIP, *, folder: Path | None = None) -> Path:
    """The pinned MicroPython release for `chip`, from the cache or downloaded with mpflash."""
    board = R.BOARDS[chip]
    folder = folder or firmware_cache()
    name = f"{board}-v{R.MICROPYTHON_VERSION}.bin"
    found = find_firmware(folder, name)
    if found:
        say(f"flash: MicroPython v{R.MICROPYTHON_VERSION} for {board} from the cache ({found})")
        return found
    offline = (f"download it yourself: open https://micropython.org/download/{board}/, take the "
               f"v{R.MICROPYTHON_VERSION} .bin (named like {board}-YYYYMMDD-v{R.MICROPYTHON_VERSION}.bin), "
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
    """A saved image of the pinned version (mpflash keeps it under PORT/NAME)."""
    if not folder.is_dir():
        return None
    stem = name[:-4]
    board, version = stem.split("-v", 1)
    for p in sorted(folder.rglob("*.bin")):
        n = p.name
        if n.startswith(board + "-") and n.endswith(f"-v{version}.bin") or n == name:
            if image_problem(p) is None:
                return p
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
