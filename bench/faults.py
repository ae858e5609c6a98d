"""Fault figures (issue 14, item 8): `make faults` -> a table and bench/faults.json.

1. sync cut after every DATA frame of one session, resumed from the offset
2. power cut after every flash write of a recorded session, recover() checked
3. fuzzed frames into the device's server (MicroPython) and the host's parsers
4. a soak of board hours on the virtual clock: programs back to back, live on,
   sync + ACK between them, free heap over time

The device-side parts run tests/mp/faults_app.py under the MicroPython unix
port; the host-side fuzz runs here (CPython).
    python bench/faults.py [--quick] [--soak-hours H] [--fuzz N] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "firmware"))
sys.path.insert(0, str(ROOT / "host"))

from knip import protocol as P  # noqa: E402


def micropython() -> str:
    exe = ROOT / ".venv" / "bin" / "micropython"
    return str(exe) if exe.exists() else "micropython"


def mp(*args: str, heap: str = "16m", timeout: float = 3600) -> dict[str, Any]:
    env = dict(os.environ, MICROPYPATH=f"{ROOT / 'firmware'}:{ROOT / 'tests' / 'mp'}:.frozen")
    t = time.monotonic()
    proc = subprocess.run([micropython(), "-X", f"heapsize={heap}", str(ROOT / "tests" / "mp" / "faults_app.py"),
                           *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"faults_app.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    r = json.loads(line[7:])
    r["wall_s"] = round(time.monotonic() - t, 1)
    return r


# ---- host side fuzz (CPython) ---------------------------------------------

class _FuzzSerial:
    """pyserial's surface; answers each request with one fuzzed frame."""

    def __init__(self, rnd: random.Random, make):
        self.rnd = rnd
        self.make = make        # (request type, seq) -> bytes the 'device' sends
        self.out = b""
        self.is_open = True
        self.rx = P.FrameReader()

    @property
    def in_waiting(self) -> int:
        return len(self.out)

    def reset_input_buffer(self) -> None:
        self.out = b""

    def write(self, data: bytes) -> int:
        pos = 0
        while pos < len(data):
            st, pos = self.rx.feed(data, pos, len(data))
            if st == P.R_FRAME:
                self.out += self.make(self.rx.mtype, self.rx.seq)
        return len(data)

    def flush(self) -> None:
        pass

    def read(self, n: int) -> bytes:
        d, self.out = self.out[:n], self.out[n:]
        return d

    def close(self) -> None:
        self.is_open = False


def _mutate(rnd: random.Random, p: bytes) -> bytes:
    b = bytearray(p)
    for _ in range(rnd.randint(1, 4)):
        m = rnd.randrange(5)
        if m == 0 and b:
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        elif m == 1 and b:
            del b[rnd.randrange(len(b)):]
        elif m == 2:
            b += rnd.randbytes(rnd.randrange(16))
        elif m == 3 and b:
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif b:
            i = rnd.randrange(len(b))
            b[i:i] = rnd.randbytes(rnd.randrange(8))
    return bytes(b)


def host_fuzz(n: int, seed_file: Path, seed_stream: list, seed: int = 1) -> dict[str, Any]:
    from knip_host import device as D
    from knip_host import live as L
    from knip_host import sessionfile as SF
    from knip_host.device import Device, DeviceError, Frame, LiveDecoder

    rnd = random.Random(seed)
    kss = seed_file.read_bytes()
    good = {   # plausible replies per request, then mutated
        P.HELLO: (P.INFO, json.dumps({"version": 1, "device_id": "sim", "rate_hz": 100, "channels": 2}).encode()),
        P.GET_INFO: (P.INFO, json.dumps({"version": 1, "rate_hz": 100}).encode()),
        P.LIST: (P.SESSIONS, json.dumps([{"id": 0, "size": 5460, "closed": True, "open": False, "bad": False}]).encode()),
        P.LIVE: (P.OK, struct.pack("<BIH", P.LIVE, 0, 10)),
        P.START: (P.OK, struct.pack("<BI", P.START, 3)),
        P.STOP: (P.OK, struct.pack("<Bi", P.STOP, 3)),
        P.PING: (P.PONG, b"knip"),
        P.PROGRAM: (P.OK, b"\x0fname"),
        P.FETCH: (P.DONE, struct.pack("<IIII", 0, 0, 0, 0)),
    }
    w = P.FrameWriter()
    state = {"want": None}

    def make(mtype: int, seq: int) -> bytes:
        r = rnd.random()
        if mtype == P.FETCH:
            out = b""
            off = 0
            for _ in range(rnd.randrange(3)):
                chunk = kss[off:off + 512]
                out += bytes(w.message(P.DATA, seq, _mutate(rnd, struct.pack("<II", 0, off) + chunk)
                                       if rnd.random() < 0.5 else struct.pack("<II", 0, off) + chunk))
                off += len(chunk)
            t, p = P.DONE, struct.pack("<IIII", 0, off, len(kss), 0)
            return out + bytes(w.message(t if r < 0.8 else rnd.randrange(256), seq, _mutate(rnd, p)))
        t, p = good.get(mtype, (P.OK, bytes((mtype,))))
        if r < 0.1:
            t, p = P.ERROR, bytes((rnd.randrange(12), mtype)) + rnd.randbytes(rnd.randrange(20))
        elif r < 0.2:
            t = rnd.randrange(256)
        p = _mutate(rnd, p) if rnd.random() < 0.9 else rnd.randbytes(rnd.randrange(64))
        raw = bytes(w.message(t, seq, p[:P.MAX_PAYLOAD]))
        if rnd.random() < 0.05:      # a torn or corrupted frame on the wire
            raw = _mutate(rnd, raw)
        return raw

    dev = Device("fuzz", ser=_FuzzSerial(rnd, make), timeout=0.0)
    calls = [lambda: dev.hello(), lambda: dev.get_info(), lambda: dev.sessions(), lambda: dev.live(True),
             lambda: dev.start("x"), lambda: dev.stop(), lambda: dev.ping(), lambda: dev.put_program({"a": 1}),
             lambda: dev.fetch(0, 0, lambda o, b: None)]
    parsers = [("event", P.unpack_event), ("cue", P.unpack_cue), ("verdict", P.unpack_verdict)]
    counts = {"device_replies": 0, "live_frames": 0, "stream_payloads": 0, "session_files": 0}
    undocumented: dict[str, int] = {}
    examples: list[str] = []

    def bad(where: str, exc: BaseException) -> None:
        k = f"{where}: {type(exc).__name__}"
        undocumented[k] = undocumented.get(k, 0) + 1
        if len(examples) < 5:
            examples.append(f"{k}: {exc}"[:200])

    stream_seeds = [(t, bytes.fromhex(h)) for t, h in seed_stream] or [(P.SAMPLES_KEY, b"\x01\x00\x00")]
    dec = LiveDecoder(2)
    for i in range(n):
        k = i % 4
        if k == 0:
            counts["device_replies"] += 1
            dev._buf, dev._pos = b"", 0
            dev.ser.out = b""
            try:
                rnd.choice(calls)()
            except DeviceError:
                pass
            except Exception as exc:  # noqa: BLE001 - counting what escapes
                bad("device", exc)
        elif k == 1:
            counts["live_frames"] += 1
            t, p = rnd.choice(stream_seeds)
            if t not in (P.SAMPLES, P.SAMPLES_KEY):
                t = rnd.choice((P.SAMPLES, P.SAMPLES_KEY))
            if rnd.random() < 0.1:
                dec = LiveDecoder(rnd.choice((1, 2)))
            try:
                dec.decode(Frame(t, 0, _mutate(rnd, p) if rnd.random() < 0.8 else rnd.randbytes(rnd.randrange(40)), 0.0))
            except DeviceError:
                pass
            except Exception as exc:  # noqa: BLE001
                bad("live", exc)
        elif k == 2:
            counts["stream_payloads"] += 1
            what, parse = rnd.choice(parsers)
            t, p = rnd.choice(stream_seeds)
            try:
                L.stream_payload(Frame(t, 0, _mutate(rnd, p), 0.0), what, parse)
            except DeviceError:
                pass
            except Exception as exc:  # noqa: BLE001
                bad(what, exc)
        else:
            counts["session_files"] += 1
            raw = kss if rnd.random() < 0.02 else _mutate(rnd, kss) if rnd.random() < 0.5 else \
                bytes(b ^ (rnd.randrange(256) if rnd.random() < 0.002 else 0) for b in kss)
            if rnd.random() < 0.3:
                raw = raw[:rnd.randrange(len(raw) + 1)]
            try:
                SF.decode(raw, "fuzz", 0)
            except SF.SessionFileError:
                pass
            except Exception as exc:  # noqa: BLE001
                bad("sessionfile", exc)
    del D
    return {"inputs": n, **counts, "undocumented_exceptions": sum(undocumented.values()),
            "by_kind": undocumented, "examples": examples}


# ---- the run ------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a reduced run (the test's)")
    ap.add_argument("--session-s", type=int, default=None)
    ap.add_argument("--fuzz", type=int, default=None)
    ap.add_argument("--soak-hours", type=float, default=None)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--program-min", type=int, default=10, help="soak: minutes per program")
    ap.add_argument("--out", default=str(ROOT / "bench" / "faults.json"))
    a = ap.parse_args(argv)
    q = a.quick
    session_s = a.session_s or (15 if q else 300)
    fuzz_n = a.fuzz or (2000 if q else 100000)
    hours = a.soak_hours or (1.0 if q else 24.0)
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed"
        res["sync_cut"] = mp("sync", str(session_s), str(seed))
        res["power_cut"] = mp("power", str(min(session_s, 120) if not q else session_s),
                              str(a.stride if not q else 4))
        res["fuzz_device"] = mp("fuzz", str(fuzz_n), "1")
        t = time.monotonic()
        res["fuzz_host"] = host_fuzz(fuzz_n, seed.with_suffix(".kss"),
                                     json.loads(seed.with_suffix(".json").read_text()))
        res["fuzz_host"]["wall_s"] = round(time.monotonic() - t, 1)
    res["soak"] = mp("soak", str(hours), str(a.program_min))
    s = res["soak"]
    s["heap_flat"] = s["heap_last_hour_min"] >= s["heap_first_hour_min"] - 16384
    table(res)
    if not q or a.out != str(ROOT / "bench" / "faults.json"):
        Path(a.out).write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
        print(f"saved {os.path.relpath(a.out)}")
    return res


def table(r: dict[str, Any]) -> None:
    s, p, fd, fh, k = r["sync_cut"], r["power_cut"], r["fuzz_device"], r["fuzz_host"], r["soak"]
    rows = [
        ("sync cut", f"{s['boundaries']} boundaries of a {s['session_bytes']} B session "
                     f"({s['data_frames']} DATA frames)",
         f"{s['mismatched']} mismatched, {s['lost_bytes']} lost B, {s['duplicated_bytes']} duplicated B"),
        ("power cut", f"{p['cuts_tried']} cuts over {p['flash_writes']} flash writes (stride {p['stride']}), "
                      f"{p['session_bytes']} B session",
         f"{p['cuts_failed']} failed; loss max {p['max_lost_bytes']} B / {p['max_lost_ms']} ms, "
         f"mean {p['mean_lost_bytes']} B"),
        ("fuzz device", f"{fd['frames']} frames into FrameReader + server",
         f"{fd['internal_errors']} E_INTERNAL"),
        ("fuzz host", f"{fh['inputs']} inputs (replies, live, stream payloads, session files)",
         f"{fh['undocumented_exceptions']} undocumented exceptions"),
        ("soak", f"{k['board_hours']:.1f} board h, {k['programs']} programs, {k['synced_acked']} synced",
         f"heap free min first h {k['heap_first_hour_min']} / last h {k['heap_last_hour_min']} B "
         f"({'flat' if k['heap_flat'] else 'NOT flat'})"),
    ]
    w0 = max(len(x[0]) for x in rows)
    w1 = max(len(x[1]) for x in rows)
    for a, b, c in rows:
        print(f"{a:<{w0}}  {b:<{w1}}  {c}")


if __name__ == "__main__":
    main()
