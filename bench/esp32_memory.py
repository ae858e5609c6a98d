"""ESP32 memory, GC and CPU figures on 32-bit MicroPython, and the targets of
issue 13 (docs/FROZEN.md), for `make bench` (bench/run.py --esp32-memory) or
alone: python bench/esp32_memory.py [--quick] [--plain].

The port: shared/tools/mp32 builds a 32-bit unix MicroPython (object sizes as
on the ESP32) with tests/mp/manifest_measure.py frozen in: firmware/manifest.py
(the firmware and aioble, as in the ESP32 image) plus the simulation around it.
tests/mp/esp32_session.py runs the whole trainer on the virtual ESP32 board in
virtual time: the real aioble and BLE link against a stand-in `bluetooth`, a
laptop that pairs, streams live, runs calibrate + daily and syncs every session.

Runs:
- plain: -X heapsize=110k (a WROOM's GC heap), code frozen ("in flash"), BLE:
  live heap peak above the simulation's baseline, largest free block at the
  peak and at its smallest, the longest collection (host us).
- psram: -X heapsize=4m, the filesystem deploy (the .mpy tree of `knip build`
  for x86 first on the path: code in the heap), BLE; then the same session
  again with every collection, and one every second besides, followed by a
  stall of the estimated ESP32 pause (esp32_machine.stall_us: the timer's soft
  IRQs queue in 8 slots, the rest are lost and counted by the sampler).
- cpu: EMG 1 kHz, two channels, BLE live streaming, 20 s of board time, minus
  the simulation alone; scaled to the ESP32 by pystone: MicroPython's author
  gives the ESP32 at 160 MHz "a score of about 1800" (micropython/micropython
  issue 5673), and the same pystone_lowmem (PyPI micropython-pystone-lowmem)
  runs here on the same port, at the same time.
--plain: the plain run only (python bench/esp32_memory.py --plain).
Host times on a shared machine are noisy; the estimates say so."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "host", ROOT / "firmware"):
    if str(_p) not in sys.path:
        sys.path.insert(1, str(_p))

from knip_host.esp32 import build as B  # noqa: E402

WORK = ROOT / "bench" / "work"
MP32 = ROOT.parent / "shared" / "tools" / "mp32"
MEASURE_MANIFEST = ROOT / "tests" / "mp" / "manifest_measure.py"
PSRAM_HEAP = "4m"
PROFILE_PLAIN = ROOT / "hardware" / "profiles" / "pressure-analog-2ch.json"
PROFILE_EMG = ROOT / "hardware" / "profiles" / "emg-myoware-raw.json"
SCHED_SLOTS = 8                      # the ESP32 port's soft-IRQ queue
ESP32_PYSTONES = 1800                # ESP32 @ 160 MHz (micropython/micropython#5673, D. George)
PYSTONE_SOURCE = "https://github.com/micropython/micropython/issues/5673"
PYSTONE_PKG = ("micropython-pystone-lowmem", "3.4.2-4")
PYSTONE_LOOPS = 20000
TARGETS = {"plain_heap_peak_kb": 82, "plain_free_block_kb": 8, "cpu_load_pct": 50}


def _inputs_digest() -> str:
    import hashlib
    h = hashlib.sha256()
    for base in (ROOT / "firmware", ROOT / "tests" / "mp", ROOT / "host" / "knip_host" / "esp32"):
        for p in sorted(base.rglob("*.py")):
            h.update(p.as_posix().encode() + p.read_bytes())
    return h.hexdigest()[:16]


def measure_port(say=print) -> Path | None:
    """The 32-bit port with the firmware and the simulation frozen in (rebuilt when they change)."""
    if not MP32.exists():
        return None
    out = WORK / "mp32-measure"
    exe = out / "micropython"
    stamp = out / "inputs.txt"
    digest = _inputs_digest()
    if exe.exists() and stamp.exists() and stamp.read_text() == digest:
        return exe
    say("esp32-memory: building the 32-bit port with the firmware frozen in (shared/tools/mp32, ~1-3 min)")
    p = subprocess.run(["bash", str(MP32), str(out), str(MEASURE_MANIFEST)], capture_output=True, text=True,
                       timeout=3000)
    if p.returncode != 0 or not exe.exists():
        raise RuntimeError("mp32 failed: " + p.stderr[-1500:])
    stamp.write_text(digest)
    return exe


def _parse(text: str) -> dict:
    d: dict = {}
    for line in text.splitlines():
        if line.startswith(("mem:", "stack:", "GC:", " No.")):
            m = re.search(r"max free sz: (\d+)", line)
            if m:
                d["mem_info_max_free_bytes"] = int(m.group(1)) * 16      # 16-byte blocks on 32-bit
            continue
        tok = line.split()
        for i in range(0, len(tok) - 1, 2):
            v = tok[i + 1]
            d[tok[i]] = int(v) if v.lstrip("-").isdigit() else v
    return d


def session(exe: Path, heap: str, profile: Path, path: str, *args: str, timeout: float = 3000) -> dict:
    img = WORK / f"session-{os.getpid()}.img"
    env = dict(os.environ, MICROPYPATH=path)
    p = subprocess.run([str(exe), "-X", f"heapsize={heap}", "-c",
                        "import sys, esp32_session\nesp32_session.main(sys.argv[1:])", str(profile), str(img),
                        *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=str(ROOT),
                       stdin=subprocess.DEVNULL)
    try:
        img.unlink()
    except FileNotFoundError:
        pass
    if p.returncode != 0 or "heap_peak" not in p.stdout and "sim_us" not in p.stdout:
        return {"error": (p.stdout + p.stderr).strip()[-1200:], "completed": False}
    d = _parse(p.stdout)
    d["completed"] = d.get("sessions", 0) >= 1 or "sim_us" in d
    return d


def import_cost(exe: Path, modules: list[str]) -> int:
    """Heap that importing `modules` takes on a bare interpreter of the port (bytes)."""
    if not modules:
        return 0
    code = ("import gc\ngc.collect()\na = gc.mem_alloc()\n" + "".join(f"import {m}\n" for m in modules)
            + "gc.collect()\nprint(gc.mem_alloc() - a)\n")
    p = subprocess.run([str(exe), "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MICROPYPATH=".frozen"), cwd=str(ROOT))
    try:
        return int(p.stdout.strip())
    except ValueError:
        raise RuntimeError("import_cost: " + (p.stdout + p.stderr)[-500:])


def pystone_file() -> Path | None:
    """pystone_lowmem.py from PyPI (micropython-pystone-lowmem), kept in bench/work."""
    dest = WORK / "pystone_lowmem.py"
    if dest.exists():
        return dest
    name, ver = PYSTONE_PKG
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/{ver}/json", timeout=30) as r:
            urls = [u["url"] for u in json.load(r)["urls"] if u["url"].endswith(".tar.gz")]
        tgz = WORK / "pystone.tar.gz"
        with urllib.request.urlopen(urls[0], timeout=60) as r:
            tgz.write_bytes(r.read())
        with tarfile.open(tgz) as t:
            member = next(m for m in t.getmembers() if m.name.endswith("/pystone_lowmem.py"))
            dest.write_bytes(t.extractfile(member).read())
        return dest
    except Exception:
        return None


def pystones(exe: Path, repeats: int = 5) -> int | None:
    f = pystone_file()
    if f is None:
        return None
    best = 0
    for _ in range(repeats):
        p = subprocess.run([str(exe), "-c", f"import pystone_lowmem\npystone_lowmem.main({PYSTONE_LOOPS})"],
                           capture_output=True, text=True, env=dict(os.environ, MICROPYPATH=str(f.parent)),
                           timeout=300)
        m = re.search(r"benchmarks at (\d+) pystones", p.stdout)
        if m:
            best = max(best, int(m.group(1)))
    return best or None


def run(quick: bool = False, say=print, plain_only: bool = False) -> dict:
    WORK.mkdir(parents=True, exist_ok=True)
    exe = measure_port(say)
    if exe is None:
        return {"skipped": f"{MP32} not found (the 32-bit port comes from ../shared)"}
    out: dict = {"port": "mp32 (32-bit unix, MicroPython v1.29 source in shared/vendor)", "runs": {}}
    progs = "calibrate" if quick else "calibrate,daily"
    ratio = None
    ps = None if plain_only else pystones(exe)
    if ps:
        ratio = ps / ESP32_PYSTONES
    out["speed"] = {"host_pystones": ps, "esp32_pystones": ESP32_PYSTONES, "source": PYSTONE_SOURCE,
                    "esp32_slower_by": round(ratio, 1) if ratio else None,
                    "note": "pystone_lowmem on this port, best of 5, against the ESP32 at 160 MHz"}

    # The simulation (machine, flash, user, radio) takes heap of its own before the
    # firmware starts; the plain run gets 110 KB on top of it, less what a bare
    # interpreter holds (the board's MicroPython holds that too). Firmware modules
    # the simulation itself imported before the baseline (asyncio, knip.protocol,
    # ...) are the firmware's heap on a board: measured alone on the same port,
    # they come out of the 110 KB and are added to the peak.
    sim = session(exe, PSRAM_HEAP, PROFILE_PLAIN, ".frozen", "ble", "1", "mode", "sim", "limit_ms", "100")
    bare = subprocess.run([str(exe), "-c", "import gc\ngc.collect()\nprint(gc.mem_alloc())"], capture_output=True,
                          text=True, timeout=60)
    preloaded = [m for m in str(sim.get("preloaded", "")).split(",") if m]
    shared = import_cost(exe, preloaded)
    extra = max(0, sim.get("baseline", 0) - int(bare.stdout.strip() or 0) - shared)
    heap = f"{(110 * 1024 + extra + 1023) // 1024}k"
    out["plain_heap"] = {"esp32_kb": 110, "simulation_bytes": extra, "heapsize": heap,
                         "preloaded": preloaded, "preloaded_bytes": shared}
    say(f"esp32-memory: plain ESP32: frozen build, 110 KB heap (+{extra} B of simulation), BLE, {progs} + sync")
    plain = session(exe, heap, PROFILE_PLAIN, ".frozen", "ble", "1", "programs", progs, "probe_ms", "500",
                    "frag", "1", "max_board_s", "1800")
    n_progs = len(progs.split(","))
    plain["completed"] = (plain.get("finished") == 1 and plain.get("sessions") == n_progs
                          and plain.get("synced") == n_progs)
    if "heap_peak" in plain:
        plain["preloaded_bytes"] = shared
        plain["firmware_heap_peak"] = plain["heap_peak"] + shared
    out["runs"]["plain_frozen_ble"] = plain
    if plain_only:
        out["targets"] = {k: v for k, v in targets(out, ratio, 0).items() if k.startswith("plain")}
        return out

    say("esp32-memory: PSRAM board: .mpy tree on the filesystem, 4 MB heap, BLE")
    tree = WORK / "esp32_x86"
    B.build(tree, PROFILE_PLAIN, march="x86")
    fs_path = f"{tree}:.frozen"
    psram = session(exe, PSRAM_HEAP, PROFILE_PLAIN, fs_path, "ble", "1", "programs", progs, "probe_ms", "2000")
    out["runs"]["psram_fs_ble"] = psram
    pause_host = max(plain.get("gc_pause_max_us", 0), psram.get("gc_pause_max_us", 0))
    pause_psram = psram.get("gc_pause_max_us", 0)
    if ratio:
        est = int(pause_psram * ratio)
        stalls = session(exe, PSRAM_HEAP, PROFILE_PLAIN, fs_path, "ble", "1", "programs", progs, "probe_ms", "0",
                         "stall_us", str(est), "stall_every_ms", "1000")
        stalls["stall_us"] = est
        out["runs"]["psram_fs_ble_stalls"] = stalls

    say("esp32-memory: CPU: EMG 1 kHz, two channels, BLE live, 20 s")
    cpu_app = session(exe, PSRAM_HEAP, PROFILE_EMG, fs_path, "ble", "1", "abd", "1", "limit_ms", "20000",
                      "programs", "daily", "probe_ms", "0")
    cpu_sim = session(exe, PSRAM_HEAP, PROFILE_EMG, fs_path, "ble", "1", "abd", "1", "limit_ms", "20000",
                      "mode", "sim")
    out["runs"]["cpu_emg_1khz_2ch"] = cpu_app
    out["runs"]["cpu_simulation_only"] = cpu_sim
    out["targets"] = targets(out, ratio, pause_host)
    return out


def targets(res: dict, ratio: float | None, pause_host: int) -> dict:
    r = res["runs"]
    plain, psram, stalls = r.get("plain_frozen_ble", {}), r.get("psram_fs_ble", {}), r.get("psram_fs_ble_stalls", {})
    t: dict = {}
    # plain ESP32, frozen: heap and fragmentation
    if plain.get("completed"):
        peak = plain["firmware_heap_peak"] / 1024
        free = plain["free_block_min"] / 1024
        t["plain_heap_peak_kb"] = {"value": round(peak, 1), "limit": TARGETS["plain_heap_peak_kb"],
                                   "met": peak <= TARGETS["plain_heap_peak_kb"], "at": plain.get("peak_at"),
                                   "measured_bytes": plain["heap_peak"],
                                   "preloaded_bytes": plain.get("preloaded_bytes", 0)}
        t["plain_free_block_kb"] = {"value": round(free, 1), "min": TARGETS["plain_free_block_kb"],
                                    "met": free >= TARGETS["plain_free_block_kb"],
                                    "at": plain.get("free_block_min_at"),
                                    "why": "smallest largest-free-block over every probe (every 500 board ms)"}
    else:
        t["plain_runs"] = {"met": False, "why": str(plain.get("stopped") or plain.get("error")
                                                    or "did not complete")[-300:]}
    # PSRAM: runs, pause vs what the sampler absorbs, nothing lost with the pauses
    rate = 100
    try:
        rate = json.loads(PROFILE_PLAIN.read_text())["rate_hz"]
    except (OSError, ValueError):
        pass
    t["psram_session_runs"] = {"met": bool(psram.get("completed")) and psram.get("synced", 0) >= psram.get("sessions", 1)}
    if ratio and psram.get("completed"):
        period = 1_000_000 // rate
        ring_room = (psram.get("ring", 256) - 1 - psram.get("backlog_max", 0)) * period
        absorb = min(SCHED_SLOTS * period, ring_room)
        est = int(psram.get("gc_pause_max_us", 0) * ratio)
        t["psram_gc_pause_us"] = {"value": est, "limit": absorb // 2, "absorb_us": absorb,
                                  "rate_hz": rate, "met": est <= absorb // 2,
                                  "why": "absorbed = min(8 soft-IRQ slots, free ring slots) x period"}
        # the same at 1 kHz (EMG): only 8 ms absorbed
        t["psram_gc_pause_1khz"] = {"value": est, "limit": SCHED_SLOTS * 1000 // 2, "met": est <= 4000}
    if stalls:
        t["psram_lost_samples"] = {"value": stalls.get("lost"), "stall_us": stalls.get("stall_us"),
                                   "met": stalls.get("completed") and stalls.get("lost") == 0}
    # CPU
    app, sim = r.get("cpu_emg_1khz_2ch", {}), r.get("cpu_simulation_only", {})
    if ratio and app.get("window_samples") and sim.get("sim_samples"):
        host_us = app["window_us"] / app["window_samples"] - sim["sim_us"] / sim["sim_samples"]
        esp_us = host_us * ratio
        load = esp_us * 1000 / 1e6 * 100
        t["cpu_load_pct"] = {"value": round(load, 1), "limit": TARGETS["cpu_load_pct"], "met": load <= 50,
                             "host_us_per_sample": round(host_us, 2), "esp32_us_per_sample": round(esp_us, 1),
                             "esp32_cycles_per_sample": int(esp_us * 160), "margin_pct": round(100 - load, 1),
                             "build": "filesystem .mpy (native per-sample modules)",
                             "source": PYSTONE_SOURCE}
    return t


def print_esp32_memory(res: dict) -> None:
    print("\nESP32 memory, GC and CPU on 32-bit MicroPython (bench/esp32_memory.py)")
    if "skipped" in res:
        print("  skipped:", res["skipped"])
        return
    sp = res.get("speed", {})
    if sp.get("host_pystones"):
        print(f"  speed: this port {sp.get('host_pystones')} pystones/s vs ESP32 @160 MHz {ESP32_PYSTONES} "
              f"({sp.get('source')}): ESP32 slower by {sp.get('esp32_slower_by')}x")
    for name, d in res["runs"].items():
        if not d.get("completed"):
            print(f"  {name}: FAILED: {d.get('error', '')[-300:]}")
            continue
        print(f"  {name}: " + ", ".join(f"{k} {d[k]}" for k in (
            "firmware_heap_peak", "heap_peak", "peak_at", "free_block_min", "free_block_min_at", "gc_pause_max_us", "lost",
            "sessions", "synced", "window_us", "window_samples", "sim_us", "sim_samples") if k in d))
    p = res["runs"].get("plain_frozen_ble", {})
    if "heap_after_app" in p:
        print("  plain: the heap above the simulation's (B): start-up " + ", ".join(
            f"{k[11:]} {p[k]}" for k in ("heap_after_imports", "heap_after_board", "heap_after_links",
                                         "heap_after_app", "heap_after_connected") if k in p)
              + "; peak by phase " + ", ".join(f"{k[10:]} {p[k]}" for k in p if k.startswith("heap_peak_"))
              + "; largest free block by phase " + ", ".join(
                  f"{k[15:]} {p[k]}" for k in p if k.startswith("free_block_min_") and k != "free_block_min_at")
              + f"; preloaded by the simulation {p.get('preloaded_bytes', 0)}")
    print("  targets:")
    for k, v in res.get("targets", {}).items():
        print(f"    {k:<22} {'met ' if v.get('met') else 'MISSED'} {json.dumps({a: b for a, b in v.items() if a != 'met'})}")


if __name__ == "__main__":
    r = run(quick="--quick" in sys.argv, plain_only="--plain" in sys.argv)
    print_esp32_memory(r)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / ("esp32_memory_plain.json" if "--plain" in sys.argv else "esp32_memory.json")).write_text(
        json.dumps(r, indent=1))
