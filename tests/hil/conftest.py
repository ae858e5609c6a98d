from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rig import Rig  # noqa: E402


@pytest.fixture
def rig(request, tmp_path):
    port = request.config.getoption("--hil-port")
    r = Rig(port, tmp_path).start()
    yield r
    r.stop()
