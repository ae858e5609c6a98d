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
  with the ESP32's GC pauses injected (GC_MODEL below; esp32_session's
  GcModel: every collection stalls Python for the heap in use before it,
  every gc.mem_free()/mem_alloc() the firmware makes for the whole heap;
  the timer's soft IRQs queue in 8 slots, the rest are lost and counted by
  the sampler), and once more with the longest of those pauses at every
  200-sample block besides. EMG at 1 kHz on the same board, for the record.
- cpu: EMG 1 kHz, two channels, BLE live streaming, 20 s of board time; the
  simulation inside that window (the synthetic user, the simulated ADC,
  flash and radio with the laptop, the virtual clock, the script's clock
  task) timed and taken off; scaled to the ESP32 by pystone_lowmem (PyPI
  micropython-pystone-lowmem) run in the same process just before and after
  the window, against the published ESP32 score (ESP32_PYSTONES).
--plain: the plain run only (python bench/esp32_memory.py --plain).
Host times on a shared machine are noisy; the estimates say so."""
from __future__ import annotations

import json
import os
import re
import shutil
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
MEASURE_MANIFEST = ROOT / "tests" / "mp" / "manifest_measure.py"
PSRAM_HEAP = "4m"
PROFILE_PLAIN = ROOT / "hardware" / "profiles" / "pressure-analog-2ch.json"
PROFILE_EMG = ROOT / "hardware" / "profiles" / "emg-myoware-raw.json"
SCHED_SLOTS = 8                      # the ESP32 port's soft-IRQ queue (MICROPY_SCHEDULER_DEPTH)
# pystone_lowmem on an ESP32 at 240 MHz, MicroPython v1.12's official firmware:
# 1661/s (micropython/micropython#5673) and 1602/s (#6565); the firmware runs
# the ESP32 at its default 160 MHz: 1661 x 160/240. Later releases are faster
# (#7850, v1.18: VM in IRAM, -O2), so this errs on the slow side.
ESP32_PYSTONES_240 = 1661
ESP32_MHZ = 160
ESP32_PYSTONES = ESP32_PYSTONES_240 * ESP32_MHZ // 240
PYSTONE_SOURCE = ("https://github.com/micropython/micropython/issues/5673 (1661/s at 240 MHz), "
                  "https://github.com/micropython/micropython/issues/6565 (1602/s)")
PYSTONE_PKG = ("micropython-pystone-lowmem", "3.4.2-4")
PYSTONE_SHA256 = "3d5cd43a7b21539d55ad5de85a273c4c4025296a78525774b1583e22b6cd1c5c"
PYSTONE_LOOPS = 5000
ADC_READ_US = 10                     # one ADC read in C on the ESP32 (../shared/REFERENCE.md section 7)
# The ESP32's GC pauses (docs/FROZEN.md): us per KB of heap the collector goes
# through. Published, for the ESP32 with SPIRAM (4 MB heap): ~100 ms
# (micropython#8428) and 286 ms (peterhinch/micropython-micro-gui#10) for
# collections that, before v1.20's high-watermark sweep, went through the
# whole 4 MB: 24 and 70 us/KB. Without SPIRAM ~1.8-2.0 ms for ~110 KB
# (the same two): 18 us/KB. v1.29 sweeps up to the highest block in use; a
# gc.mem_free() still walks the whole heap. The injected pauses use the
# worst figure.
GC_MODEL = {"psram_us_per_kb": 70, "psram_us_per_kb_low": 24, "internal_us_per_kb": 18,
            "sources": ["https://github.com/micropython/micropython/issues/8428",
                        "https://github.com/peterhinch/micropython-micro-gui/issues/10",
                        "https://github.com/micropython/micropython/pull/10235"]}
BLOCK_SAMPLES = 200                  # samples per REC_SAMPLES block (knip/recorder.py)
TARGETS = {"plain_heap_peak_kb": 82, "plain_free_block_kb": 8, "cpu_load_pct": 50}


def measure_sources() -> list[Path]:
    """What tests/mp/manifest_measure.py freezes besides firmware/manifest.py
    (for the port's cache key): the simboard package and its SIMULATION
    modules, read from the manifest so the two cannot drift apart."""
    import ast
    names = None
    for node in ast.parse(MEASURE_MANIFEST.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SIMULATION" for t in node.targets):
            names = ast.literal_eval(node.value)
    if not names:
        raise RuntimeError(f"{MEASURE_MANIFEST}: no SIMULATION = (...) list of the modules it freezes")
    return [ROOT / "firmware" / "simboard", *(MEASURE_MANIFEST.parent / n for n in names)]


def measure_port(say=print) -> Path | None:
    """The 32-bit port with the firmware and the simulation frozen in
    (knip_host.esp32.mp32: built when what it is built from changed, else
    from the cache make test's port is kept in)."""
    from knip_host.esp32 import mp32 as P
    if not P.MP32.exists():
        return None
    out = WORK / "mp32-measure"
    if out.exists() and not (out / "key").exists():
        shutil.rmtree(out)                    # an older layout of this folder (with a copy of the source)
    say("esp32-memory: the 32-bit port with the firmware and the simulation frozen in "
        "(shared/tools/mp32: ~1-3 min to build, or from the cache)")
    rc, log = P.build(out, MEASURE_MANIFEST, measure_sources(), timeout=3000)
    if rc != 0:
        raise RuntimeError("mp32 failed: " + log[-1500:])
    if log.startswith(P.CACHE_HIT):
        say("esp32-memory: " + log.strip())
    return out / "port" / "micropython"


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
    tgz = WORK / "pystone.tar.gz"
    try:
        # `pip download` refuses this sdist (it has no setup.py), so the one file
        # comes from PyPI's JSON API, checked against its published sha256
        if not tgz.exists():
            with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=30) as r:
                rel = json.load(r)["releases"][ver]
            url = next(u["url"] for u in rel if u["url"].endswith(".tar.gz"))
            with urllib.request.urlopen(url, timeout=60) as r:
                data = r.read()
            import hashlib
            if hashlib.sha256(data).hexdigest() != PYSTONE_SHA256:
                return None
            tgz.write_bytes(data)
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
        return {"skipped": "../shared/tools/mp32 not found (the 32-bit port comes from ../shared)"}
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
    out["gc_model"] = GC_MODEL
    worst = str(GC_MODEL["psram_us_per_kb"])
    rate = _rate(PROFILE_PLAIN)
    say(f"esp32-memory: PSRAM board with the ESP32's GC pauses injected ({worst} us/KB)")
    out["runs"]["psram_gc_injected"] = session(exe, PSRAM_HEAP, PROFILE_PLAIN, fs_path, "ble", "1", "programs", progs,
                                               "probe_ms", "0", "gc_us_per_kb", worst, "events", "1")
    out["runs"]["psram_gc_every_block"] = session(
        exe, PSRAM_HEAP, PROFILE_PLAIN, fs_path, "ble", "1", "programs", progs, "probe_ms", "0",
        "gc_us_per_kb", worst, "stall_every_ms", str(BLOCK_SAMPLES * 1000 // rate), "events", "1")
    say("esp32-memory: PSRAM board, EMG 1 kHz two channels, GC pauses injected (for the record)")
    for name, kb in (("psram_emg_1khz_gc", worst), ("psram_emg_1khz_gc_low", str(GC_MODEL["psram_us_per_kb_low"]))):
        out["runs"][name] = session(exe, PSRAM_HEAP, PROFILE_EMG, fs_path, "ble", "1", "abd", "1", "limit_ms", "20000",
                                    "programs", "daily", "probe_ms", "0", "gc_us_per_kb", kb, "events", "1")

    say("esp32-memory: CPU: EMG 1 kHz, two channels, BLE live, 20 s, the simulation timed and taken off")
    # twice for the figure (a shared machine is noisy: their mean), once more
    # with the per-sample stages timed too (more timing wrappers: only the breakdown)
    out["runs"].update(cpu_runs(exe, fs_path))
    out["targets"] = targets(out, ratio, pause_host)
    return out


CPU_ARGS = ("ble", "1", "abd", "1", "limit_ms", "20000", "programs", "daily", "probe_ms", "0", "events", "1")


def cpu_runs(exe: Path, fs_path: str) -> dict:
    """The CPU runs: her session recorded once (the synthetic user is run
    then, and the pin values she produced kept on a tape), then played back
    in the timed runs, so her own time and garbage are not in the window:
    twice for the figure (a shared machine is noisy: their mean), once more
    with the per-sample stages timed too (more timing wrappers: only the
    breakdown)."""
    tape = WORK / "cpu_emg_tape.bin"
    path = f"{fs_path}:{WORK}"
    runs = {"cpu_emg_1khz_2ch_record": session(exe, PSRAM_HEAP, PROFILE_EMG, path, *CPU_ARGS, "tape", str(tape),
                                               "tape_mode", "record")}
    for name, prof in (("cpu_emg_1khz_2ch_1", "1"), ("cpu_emg_1khz_2ch_2", "1"), ("cpu_emg_1khz_2ch_stages", "2")):
        runs[name] = session(exe, PSRAM_HEAP, PROFILE_EMG, path, *CPU_ARGS, "profile", prof, "tape", str(tape),
                             "tape_mode", "play", "pystone", str(PYSTONE_LOOPS) if pystone_file() else "0")
    return runs


def targets(res: dict, ratio: float | None, pause_host: int) -> dict:
    r = res["runs"]
    plain, psram = r.get("plain_frozen_ble", {}), r.get("psram_fs_ble", {})
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
    # PSRAM: runs, the modelled pause vs what the sampler absorbs, nothing lost with the pauses
    rate = _rate(PROFILE_PLAIN)
    t["psram_session_runs"] = {"met": bool(psram.get("completed")) and psram.get("synced", 0) >= psram.get("sessions", 1)}
    inj, blk = r.get("psram_gc_injected", {}), r.get("psram_gc_every_block", {})
    if inj.get("completed"):
        period = 1_000_000 // rate
        ring_room = (inj.get("ring", 256) - 1 - inj.get("backlog_max", 0)) * period
        absorb = min(SCHED_SLOTS * period, ring_room)
        est = inj.get("gc_model_pause_max_us", 0)
        t["psram_gc_pause_us"] = {"value": est, "limit": absorb // 2, "absorb_us": absorb, "rate_hz": rate,
                                  "heap_in_use_kb": round(inj.get("gc_span_max", 0) / 1024, 1),
                                  "us_per_kb": GC_MODEL["psram_us_per_kb"], "met": est <= absorb // 2,
                                  "why": "absorbed = min(8 soft-IRQ slots, free ring slots) x period"}
    for name, d in (("psram_lost_samples", inj), ("psram_lost_samples_every_block", blk)):
        if d:
            t[name] = {"value": d.get("lost"), "pause_us": d.get("gc_model_pause_max_us"),
                       "walks_us": d.get("gc_walk_us"), "walks": d.get("gc_walks"),
                       "met": bool(d.get("completed")) and d.get("lost") == 0 and d.get("synced", 0) >= 1}
    # EMG at 1 kHz on the PSRAM board: 8 soft-IRQ slots are 8 ms (not a target)
    for name in ("psram_emg_1khz_gc", "psram_emg_1khz_gc_low"):
        d = r.get(name, {})
        if d.get("completed"):
            t[name] = {"lost": d.get("lost"), "samples": d.get("samples"), "pause_us": d.get("gc_model_pause_max_us"),
                       "limit": SCHED_SLOTS * 1000 // 2, "met": d.get("lost") == 0 and
                       d.get("gc_model_pause_max_us", 0) <= SCHED_SLOTS * 1000 // 2, "note": "for the record"}
    # CPU
    cpus = [r.get(k, {}) for k in ("cpu_emg_1khz_2ch_1", "cpu_emg_1khz_2ch_2")]
    cpus = [d for d in cpus if d.get("window_samples")]
    if cpus:
        est = [cpu_estimate(d) for d in cpus]
        if all("value" in e for e in est):
            st = r.get("cpu_emg_1khz_2ch_stages", {})
            if st.get("window_samples"):
                est[0]["host_us_per_sample_by_stage"] = cpu_estimate(st).get("host_us_per_sample_by_stage")
            t["cpu_load_pct"] = dict(est[0], value=round(sum(e["value"] for e in est) / len(est), 1),
                                     runs=[e["value"] for e in est],
                                     met=sum(e["value"] for e in est) / len(est) <= TARGETS["cpu_load_pct"])
            t["cpu_load_pct"]["margin_pct"] = round(TARGETS["cpu_load_pct"] - t["cpu_load_pct"]["value"], 1)
        else:
            t["cpu_load_pct"] = est[0]
    return t


def _rate(profile: Path) -> int:
    try:
        return json.loads(profile.read_text())["rate_hz"]
    except (OSError, ValueError, KeyError):
        return 100


def _fw_us(d: dict) -> float:
    """Host us per sample the firmware took inside the CPU window: the
    window less the simulation (esp32_session.Prof) and the timing wrappers."""
    wrapped = d.get("prof_wrapped_calls", 0) + d.get("prof_stage_calls", 0)
    fw = d["window_us"] - d.get("prof_sim_us", 0) - wrapped * d.get("prof_wrapper_ns", 0) / 1000
    return fw / d["window_samples"]


def cpu_estimate(d: dict) -> dict:
    # the soft IRQ's scheduling and dispatch, one per sample (the virtual
    # machine's queue is simulation and taken off): this port's cost
    sched = d.get("prof_sched_ns", 0) / 1000
    host_us = _fw_us(d) + sched
    ps = [v for v in (d.get("pystone_before"), d.get("pystone_after")) if v]
    if not ps:
        return {"met": False, "why": "no pystone figure (pystone_lowmem not downloaded)",
                "host_us_per_sample": round(host_us, 2)}
    host_ps = sum(ps) / len(ps)
    # the board's clock: raw EMG runs the ESP32 at 240 MHz (espboard/board.py)
    mhz = d.get("cpu_mhz") or ESP32_MHZ
    rate = _rate(PROFILE_EMG)
    chans = d.get("channels", 2)

    def esp_us_at(mhz_):        # ESP32 us per sample at that clock, the ADC reads included
        return host_us * host_ps / (ESP32_PYSTONES_240 * mhz_ / 240) + chans * ADC_READ_US

    def load_at(mhz_):
        return esp_us_at(mhz_) * rate / 1e4
    ratio = host_ps / (ESP32_PYSTONES_240 * mhz / 240)
    esp_us = esp_us_at(mhz)
    load = load_at(mhz)
    n = d["window_samples"]
    w = d.get("prof_wrapper_ns", 0) / 1000

    def stage(k):
        us = d.get(f"prof_{k}_us")
        return None if us is None else round(max(0, us - d.get(f"prof_{k}_n", 0) * w) / n, 2)
    rec = stage("rec")
    if rec is not None:         # the simulated flash under littlefs is taken off the recorder too
        rec = round(max(0.0, rec - d.get("prof_flash_us", 0) / n), 2)
    stages = {"chain (filters, envelope, detector)": stage("push"), "recorder (littlefs in C included)": rec,
              "coach": stage("coach"), "live encoder": stage("live"),
              "sampler callback and driver reads": round(max(0.0, d.get("prof_tick_fw_us", 0) - (
                  d.get("prof_user_n", 0) + d.get("prof_adc_n", 0)) * w) / n, 2),
              "soft IRQ scheduling and dispatch": round(sched, 2)}
    if stages["chain (filters, envelope, detector)"] is None:
        stages = {k: stages[k] for k in ("sampler callback and driver reads", "soft IRQ scheduling and dispatch")}
    known = sum(v for v in stages.values() if v)
    stages["the rest (sample loop, asyncio, links, BLE, server)"] = round(host_us - known, 2)
    return {"value": round(load, 1), "limit": TARGETS["cpu_load_pct"], "met": load <= TARGETS["cpu_load_pct"],
            "host_us_per_sample": round(host_us, 2), "host_pystones": int(host_ps),
            "esp32_pystones": int(ESP32_PYSTONES_240 * mhz / 240), "esp32_mhz": mhz,
            "esp32_slower_by": round(ratio, 1),
            "esp32_us_per_sample": round(esp_us, 1), "esp32_cycles_per_sample": int(esp_us * mhz),
            "adc_us_per_sample": chans * ADC_READ_US, "margin_pct": round(TARGETS["cpu_load_pct"] - load, 1),
            "at_160mhz_pct": round(load_at(160), 1), "at_240mhz_pct": round(load_at(240), 1),
            "host_us_per_sample_by_stage": stages,
            "simulation_taken_off_us_per_sample": round(d.get("prof_sim_us", 0) / n, 2),
            "build": "filesystem .mpy for x86 (the per-sample modules native, the block kernels viper)",
            "source": PYSTONE_SOURCE}


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
            "firmware_heap_peak", "heap_peak", "peak_at", "free_block_min", "free_block_min_at", "gc_pause_max_us",
            "lost", "sessions", "synced", "gc_model_pause_max_us", "gc_span_max", "gc_walks", "window_us",
            "window_samples", "prof_sim_us", "pystone_before", "pystone_after") if k in d))
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
