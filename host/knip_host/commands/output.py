"""What the commands write: JSON on stdout, and files at paths the user
gives (checked before any work, so a bad path is one clear line, exit 2)."""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..usage import UsageError


def plain(x: Any) -> Any:
    """JSON-safe copy: numpy values to Python, NaN and inf to null."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def print_json(doc: Any) -> None:
    print(json.dumps(plain(doc), indent=2))


def writable_folder(folder: Path, what: str) -> None:
    """`folder` exists and can be written in; `what` names the option in the error."""
    if not folder.is_dir():
        raise UsageError(f"{what}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{what}: cannot write in {folder}; choose another place")


def output_file(path: str | Path, opt: str = "-o") -> Path:
    """A file `opt` may write: not a folder, in a folder that can be written in."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{opt} {path} is a folder; give a file name, e.g. {p / 'session.png'}")
    writable_folder(p.resolve().parent, f"{opt} {path}")
    return p


_IMAGES = {".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".svg", ".pdf", ".eps"}


def png_name(path: str | Path, opt: str) -> None:
    """Plots are PNG: a name that says another picture format is refused."""
    suffix = Path(path).suffix.lower()
    if suffix in _IMAGES:
        raise UsageError(f"{opt} {path}: plots are written as PNG; give the file a .png name")


def cannot_write(what: str, exc: OSError) -> UsageError:
    """Writing failed after all (disk full, permissions changed)."""
    return UsageError(f"{what}: cannot write ({exc.strerror or exc})")


def file_part(text: str) -> str:
    """A device id made safe for a file name (a MAC's colons become dashes)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "device"


def default_name(session_key: tuple[str, int], suffix: str) -> str:
    device, n = session_key
    return f"knip-{file_part(device)}-{n}{suffix}"
