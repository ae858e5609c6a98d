"""The application's bytes, pinned: a scripted host drives the virtual trainer
on its virtual clock (tests/mp/golden_app.py) and every byte the device sends
and every file it keeps must match tests/golden/app.json. A refactor of the
firmware that changes none of its behaviour leaves them all unchanged.

After a deliberate change of behaviour: KNIP_GOLDEN_UPDATE=1 pytest tests/test_golden.py,
and say in the commit why the bytes changed."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from conftest import FIRMWARE, ROOT, micropython_path
from knip_host.simtree import firmware_path

GOLDEN = ROOT / "tests" / "golden" / "app.json"
SCRIPT = ROOT / "tests" / "mp" / "golden_app.py"


def _digest(folder: Path) -> dict[str, list]:
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".img"):
        data = path.read_bytes()
        out[path.relative_to(folder).as_posix()] = [len(data), hashlib.sha256(data).hexdigest()]
    return out


@pytest.mark.parametrize("code", ["source", "built"])
@pytest.mark.parametrize("signal", ["pressure", "emg"])
def test_device_bytes_match_the_golden_run(signal, code, tmp_path, mpy):
    # "built": the tree the virtual trainer runs (knip_host.simtree: `knip
    # build` for this port, the per-sample modules native code as on the
    # board) gives the sources' bytes, so the end-to-end tests on it test them
    first = None
    if code == "built":
        first = firmware_path(FIRMWARE, micropython_path() or "micropython")
        if first is None:
            pytest.skip("the virtual trainer runs the sources here (KNIP_SIM_CODE=source, or a unix port "
                        "that cannot load this mpy-cross's native code)")
    out = tmp_path / "out"
    out.mkdir()
    mpy(SCRIPT, str(tmp_path / "flash.img"), str(out), signal, first=first)
    got = _digest(out)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("KNIP_GOLDEN_UPDATE") and code == "source":
        golden[signal] = got
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    assert signal in golden, "no golden run yet: KNIP_GOLDEN_UPDATE=1 pytest tests/test_golden.py"
    # the script must have exercised a whole session and its sync
    assert "wire.bin" in got and got["wire.bin"][0] > 20000
    assert any(name.startswith("sessions/") and name.endswith(".kss") for name in got)
    assert got == golden[signal]
