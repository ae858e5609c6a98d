"""The fault-figure machinery (bench/faults.py, tests/mp/faults_app.py), reduced:
a short session's every sync cut, every 4th flash write of it as a power cut,
2,000 fuzzed frames into each side, a short soak. `make faults` runs the full one.

The soak is 6 board minutes of 2-minute programs: three programs back to
back, each synced and ACKed before the next, as in the 24 h one (its cost
is board time: about 1.3 s of CPU a board minute; 12 minutes of 3-minute
programs, four of them, cost twice as much and checked the same)."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _faults():
    spec = importlib.util.spec_from_file_location("bench_faults", ROOT / "bench" / "faults.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fault_figures_reduced(tmp_path):
    out = tmp_path / "faults.json"
    r = _faults().main(["--quick", "--soak-hours", "0.1", "--program-min", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(r))
    s = r["sync_cut"]
    assert s["boundaries"] >= 5 and s["mismatched"] == 0 and s["lost_bytes"] == 0 and s["duplicated_bytes"] == 0
    p = r["power_cut"]
    assert p["cuts_tried"] >= 10 and p["cuts_failed"] == 0, p["failures"]
    assert r["fuzz_device"]["frames"] == 2000 and r["fuzz_device"]["internal_errors"] == 0, r["fuzz_device"]["examples"]
    assert r["fuzz_host"]["inputs"] == 2000 and r["fuzz_host"]["undocumented_exceptions"] == 0, r["fuzz_host"]["examples"]
    k = r["soak"]
    assert k["board_hours"] >= 0.1 and k["programs"] >= 3 and k["synced_acked"] >= 3
    assert k["internal_errors"] == 0 and k["heap_flat"]
    assert isinstance(k["info_heap_free"], int) and k["info_heap_free"] > 0
