"""Wire figures of the device protocol, measured against the virtual trainer
(the real firmware under MicroPython, on a pty paced like 115 200 baud):

- bytes on the wire per sample, live and sync;
- sync throughput as a fraction of the link's byte rate;
- latency from a sample entering the firmware (its nominal sampling time on
  the board clock, real time at speed 1) to the host having decoded it;
- hours of sessions that fit the 2 MiB filesystem.

Run alone: python bench/wire.py   (prints JSON)."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from knip import protocol as P
from knip_host.device import Device, LiveDecoder, iter_stream
from knip_host.simulator import FIRMWARE_DIR, VirtualTrainer, micropython_binary

BAUD = 115200
LINK_BYTES_PER_S = BAUD / 10          # 8N1: 10 bits per byte


def live_figures(work: Path, rate: int, channels: int, seconds: float = 8.0, batch_ms: int = 100) -> dict:
    """Real-time live streaming: bytes per sample and decode latency."""
    with VirtualTrainer(work / f"live{rate}_{channels}.img", speed=1.0, rate_hz=rate, channels=channels,
                        baud=BAUD) as vt:
        dev = Device(vt.port)
        info = dev.hello()
        t0_ns = info["sim"]["t0_ns"]
        first, batch = dev.live(True, batch_ms)
        dec = LiveDecoder(channels)
        index = first
        lat: list[float] = []
        n = 0
        bytes0 = dev.bytes_in
        for f in iter_stream(dev, time.monotonic() + seconds):
            now = time.time_ns()
            dec.note_seq(f.seq)
            if f.mtype in (P.SAMPLES, P.SAMPLES_KEY):
                vals = dec.decode(f)
                k = len(vals[0]) if vals else f.payload[0]
                for j in range(k):
                    tick_ms = (index + j) * 1000 // rate
                    lat.append((now - (t0_ns + tick_ms * 1_000_000)) / 1e6)
                index += k
                n += k
        wire = dev.bytes_in - bytes0
        dev.live(False)
        dev.close()
    return {"rate_hz": rate, "channels": channels, "batch_ms": batch_ms, "samples_per_frame": batch,
            "samples": n, "bytes": wire, "bytes_per_sample": round(wire / n, 3),
            "bytes_per_channel_sample": round(wire / n / channels, 3),
            "latency_median_ms": round(statistics.median(lat), 1),
            "latency_p95_ms": round(sorted(lat)[int(0.95 * len(lat))], 1),
            "lost_frames": dec.lost_frames}


def sync_figures(work: Path, rate: int, channels: int, program: str = "daily") -> dict:
    """Record a session (fast), then fetch it at 115 200 baud pacing."""
    with VirtualTrainer(work / f"sync{rate}_{channels}.img", speed=25.0, rate_hz=rate, channels=channels,
                        baud=BAUD) as vt:
        dev = Device(vt.port, timeout=10.0)
        info = dev.hello()
        sid = dev.start(program)
        while True:
            time.sleep(0.5)
            if dev.get_info()["state"] == "idle":
                break
        size = next(s["size"] for s in dev.sessions() if s["id"] == sid)
        got = bytearray()
        b0 = dev.bytes_in
        t0 = time.monotonic()
        _end, fsize, _crc = dev.fetch(sid, 0, lambda off, b: got.extend(b))
        secs = time.monotonic() - t0
        wire = dev.bytes_in - b0
        from knip_host.sessionfile import decode
        s = decode(bytes(got), info["device"], sid)
        samples = len(s.values)
        dur_h = s.duration_s / 3600
        free_empty = info["storage_free"]
        dev.close()
    usable = free_empty - 8192          # SessionStore keeps 8 KiB back so a session can always close
    return {"rate_hz": rate, "channels": channels, "program": program, "samples": samples,
            "file_bytes": fsize, "wire_bytes": wire,
            "file_bytes_per_sample": round(fsize / samples, 3),
            "wire_bytes_per_sample": round(wire / samples, 3),
            "seconds": round(secs, 2), "throughput_bytes_per_s": round(fsize / secs),
            "link_fraction": round(fsize / secs / LINK_BYTES_PER_S, 3),
            "storage_free_bytes": free_empty,
            "hours_in_storage": round(usable / (fsize / dur_h), 1)}


def app_heap(seconds: int = 120) -> list[dict]:
    """Heap the firmware application allocates on MicroPython, amortised per
    sample, with and without live streaming and recording (tests/mp/app_heap.py)."""
    mp = FIRMWARE_DIR.parent / "tests" / "mp"
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE_DIR}:{mp}:.frozen")
    out = []
    for mode in ("idle", "live", "record"):
        r = subprocess.run([micropython_binary(), "-X", "heapsize=64m", str(mp / "app_heap.py"), mode, str(seconds)],
                           capture_output=True, text=True, env=env, cwd=str(mp), timeout=300)
        f = r.stdout.split()
        if r.returncode or len(f) < 8:
            out.append({"mode": mode, "error": (r.stderr or r.stdout)[-300:]})
            continue
        b, n = int(f[3]), int(f[5])
        out.append({"mode": mode, "heap_bytes": b, "samples": n, "heap_bytes_per_sample": round(b / n, 2)})
    return out


def _threshold_search(cmd: list[str], env: dict, ok: str, hi: int = 1 << 23) -> tuple[int, int]:
    """Bytes allocated by the run (to 256 B): the largest gc.threshold() at
    which `cmd` (given the threshold as its last argument) still collects;
    and the samples the run measured ("samples N" in its output)."""
    lo = 0
    n = 0
    while hi - lo > 256:
        mid = (lo + hi) // 2
        r = subprocess.run(cmd + [str(mid)], capture_output=True, text=True, env=env, timeout=300)
        if r.returncode or ok not in r.stdout:
            raise RuntimeError((r.stderr or r.stdout)[-300:])
        f = r.stdout.split()
        n = int(f[f.index("samples") + 1])
        if "collected True" in r.stdout:
            lo = mid
        else:
            hi = mid
    return lo, n


def heap_churn(seconds: int = 60) -> dict:
    """Heap allocated per sample counting what is freed at once (a bytecode
    frame over 11 words comes from the heap on every call), on the tree
    `knip build` deploys, built for this unix port (tests/mp/app_transient.py
    and transient_check.py; docs/DEPLOY.md), and for the chain also from
    source, all bytecode, as the frozen build runs it."""
    from knip_host.esp32 import build as B
    exe = micropython_binary()
    mp = FIRMWARE_DIR.parent / "tests" / "mp"
    arch = B.port_arch(exe)
    if arch not in ("x64", "x86"):
        return {"error": f"the unix port runs {arch} code: no native tree for it"}
    out: dict = {"arch": arch, "seconds": seconds, "app": [], "chain": []}
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        B.build(tree, B.DEFAULT_PROFILE, march=arch)
        env = dict(os.environ, MICROPYPATH=f"{tree}:{mp}:{FIRMWARE_DIR}:.frozen")
        for mode in ("idle", "live", "session", "record"):
            cmd = [exe, "-X", "heapsize=64m", str(mp / "app_transient.py"), mode, str(seconds)]
            b, n = _threshold_search(cmd, env, "collected")
            out["app"].append({"mode": mode, "bytes": b, "samples": n, "bytes_per_sample": round(b / n, 1)})
        for name, path in (("deployed", f"{tree}:{mp}"), ("bytecode", f"{FIRMWARE_DIR}:{mp}")):
            r = subprocess.run([exe, "-X", "heapsize=64m", str(mp / "transient_check.py"), "pressure", "100",
                                str(seconds), "two"], capture_output=True, text=True, timeout=900,
                               env=dict(os.environ, MICROPYPATH=path))
            f = r.stdout.split()
            if r.returncode or len(f) < 6:
                out["chain"].append({"tree": name, "error": (r.stderr or r.stdout)[-300:]})
                continue
            out["chain"].append({"tree": name, "signal": "pressure 100 Hz 2ch", "bytes": int(f[1]),
                                 "samples": int(f[3]), "bytes_per_sample": round(int(f[1]) / int(f[3]), 1)})
    return out


def run() -> dict:
    heap = app_heap()
    try:
        churn = heap_churn()
    except Exception as e:      # a figure missing, not the whole section
        churn = {"error": str(e)[-300:]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        live = [live_figures(work, 100, 1), live_figures(work, 50, 1), live_figures(work, 100, 2),
                live_figures(work, 50, 1, batch_ms=200)]
        sync = [sync_figures(work, 100, 1), sync_figures(work, 50, 1), sync_figures(work, 100, 2)]
    return {"live": live, "sync": sync, "app_heap": heap, "heap_churn": churn}


if __name__ == "__main__":
    json.dump(run(), sys.stdout, indent=2)
    print()
