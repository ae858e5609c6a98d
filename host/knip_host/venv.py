"""Commands installed beside this interpreter: the venv `make setup` made."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path


def venv_tool(name: str) -> str | None:
    """A command installed next to this interpreter (the venv), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)
