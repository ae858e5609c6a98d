"""ESP32 figures for `make bench`: the deployed size and the RAM the trainer
holds after start-up.

- Size: `knip build` for the ESP32 (mpy-cross -march=xtensawin, native code
  for the per-sample modules): bytes of every file in the tree, split into
  bytecode, native code and source/data, and the largest modules.
- RAM: tests/mp/esp32_heap.py builds the real Esp32Board from a board profile
  (its ring size, rate, channels and drivers) on the simulated `machine`,
  the USB link and App(board), and reports gc.mem_alloc() after
  gc.collect() before the imports, after them, and after App(board):
  * under the MicroPython unix port (64-bit) with the tree built for x64
    (native modules' machine code lives outside the GC heap, as in the
    ESP32's IRAM) and again all-bytecode (the `--no-native` layout);
  * (the MicroPython WebAssembly port, 32-bit, used to be run here too; it
    has no native emitter for the viper kernels, so the 32-bit heap now
    comes from the mp32 port in bench/esp32_memory.py).
  Compared with the ~110 KB GC heap of an ESP32 without SPIRAM (REFERENCE 7).
  Not measured here: aioble and the BLE link (aioble does not run off the
  board) and anything the ESP-IDF allocates outside the MicroPython heap.

Run alone: python bench/esp32.py   (prints the table and JSON)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "host", ROOT / "firmware"):
    if str(_p) not in sys.path:
        sys.path.insert(1, str(_p))

from knip_host.esp32 import build as B  # noqa: E402
from knip_host.esp32 import release as R  # noqa: E402

WORK = ROOT / "bench" / "work"
MICROPYTHON = Path(sys.executable).parent / "micropython"
ESP32_HEAP = 110 * 1024
PROFILES = ("pressure-analog", "pressure-analog-2ch", "emg-myoware-raw")
TOP = 8


def size_figures(tree: B.BuildResult) -> dict:
    kinds = tree.bytes_by_kind()
    largest = sorted(tree.files, key=lambda f: -f.size)[:TOP]
    return {"files": len(tree.files), "total_bytes": tree.total_bytes,
            "bytecode_bytes": kinds.get("bytecode", 0), "native_bytes": kinds.get("native", 0),
            "source_bytes": kinds.get("source", 0) + kinds.get("data", 0),
            "largest": [{"path": f.path, "kind": f.kind, "bytes": f.size} for f in largest],
            "native_fallback": tree.native_fallback, "firmware": tree.firmware,
            "micropython": R.MICROPYTHON_VERSION, "mpy": f"{R.MPY_VERSION}.{R.MPY_SUB_VERSION} {R.MARCH}"}


def _parse(out: str) -> dict:
    tok = out.split()
    d = {}
    for i in range(0, len(tok) - 1, 2):
        v = tok[i + 1]
        d[tok[i]] = int(v) if v.lstrip("-").isdigit() else v
    return d


def unix_heap(tree_dir: Path, profile: Path) -> dict:
    env = dict(os.environ, MICROPYPATH=f"{tree_dir}:{ROOT / 'firmware'}:{ROOT / 'tests' / 'mp'}:.frozen")
    p = subprocess.run([str(MICROPYTHON), "-X", "heapsize=8m", str(ROOT / "tests" / "mp" / "esp32_heap.py"),
                        str(profile)], capture_output=True, text=True, env=env, timeout=120)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip()[-400:]}
    return _parse(p.stdout)


def run() -> dict:
    WORK.mkdir(parents=True, exist_ok=True)
    tree = B.build(WORK / "esp32", B.DEFAULT_PROFILE)
    out: dict = {"size": size_figures(tree), "heap_limit_bytes": ESP32_HEAP, "ram": {}}
    if not MICROPYTHON.exists():
        out["ram"]["skipped"] = f"{MICROPYTHON} not found (make setup)"
        return out
    x64 = WORK / "esp32_x64"
    bc = WORK / "esp32_bytecode"
    B.build(x64, B.DEFAULT_PROFILE, march="x64")
    B.build(bc, B.DEFAULT_PROFILE, native=False, march="x64")      # (the viper kernels: x64 code)
    for name in PROFILES:
        prof = ROOT / "hardware" / "profiles" / f"{name}.json"
        if not prof.exists():
            continue
        row = {"unix64_native": unix_heap(x64, prof), "unix64_bytecode": unix_heap(bc, prof)}
        out["ram"][name] = row
    return out


def _kb(n) -> str:
    return f"{n / 1024:.1f} KB" if isinstance(n, int) else "n/a"


def print_esp32(res: dict) -> None:
    s = res["size"]
    print(f"\nESP32 build (MicroPython v{s['micropython']}, .mpy {s['mpy']}, firmware {s['firmware']})")
    print(f"  deployed: {s['files']} files, {_kb(s['total_bytes'])}: bytecode {_kb(s['bytecode_bytes'])}, "
          f"native {_kb(s['native_bytes'])}, source+data {_kb(s['source_bytes'])}")
    print("  largest: " + ", ".join(f"{f['path']} {_kb(f['bytes'])} ({f['kind']})" for f in s["largest"]))
    if s["native_fallback"]:
        print("  native fell back to bytecode: " + "; ".join(s["native_fallback"]))
    ram = res["ram"]
    if "skipped" in ram:
        print("  RAM: skipped:", ram["skipped"])
        return
    lim = res["heap_limit_bytes"]
    print(f"  RAM after start-up (gc.mem_alloc after gc.collect; ESP32 heap without SPIRAM ~{_kb(lim)}):")
    print(f"    {'profile':<22}{'port / layout':<22}{'code':>10}{'board+app':>11}{'total':>10}  vs heap")
    for name, row in ram.items():
        for key, label in (("unix64_native", "unix 64-bit, native"), ("unix64_bytecode", "unix 64-bit, bytecode")):
            d = row.get(key, {})
            if "total" not in d:
                why = d.get("skipped") or d.get("error", "?")
                print(f"    {name:<22}{label:<22}  {why[:70]}")
                continue
            fit = "fits" if d["total"] <= lim else "OVER"
            print(f"    {name:<22}{label:<22}{_kb(d['code']):>10}{_kb(d['app']):>11}{_kb(d['total']):>10}  "
                  f"{100 * d['total'] / lim:.0f}% {fit}")
    print("    not included: aioble/BLE (off the board) and ESP-IDF allocations outside the MicroPython heap;")
    print("    the 32-bit heap as on the board: the esp32-memory section")


if __name__ == "__main__":
    r = run()
    print_esp32(r)
    print(json.dumps(r, indent=1))
