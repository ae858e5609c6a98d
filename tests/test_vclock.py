"""The virtual trainer on the virtual clock (knip_host/simclock.py,
firmware/simboard/hostclock.py): board time passes only when the host's
waits grant it, so the same seed and the same host give the same bytes, on
the simulated board and on the ESP32 board code alike, however busy the
machine is."""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import pytest

from knip import protocol as P
from knip_host.database import SessionDatabase
from knip_host.device import Device, iter_stream
from knip_host.simclock import WALL
from knip_host.simulator import VirtualTrainer
from knip_host.sync import sync

sys.path.insert(0, str(Path(__file__).resolve().parent / "hil"))
from rig import HIL_PROFILE, play_hil, start_hil  # noqa: E402

pytestmark = pytest.mark.micropython


def record(tmp: Path, name: str, seed: int) -> tuple[str, str, int]:
    """Play the HIL program (any trainer plays it) with the live stream on,
    then sync: (hash of every frame the host read, hash of the stored
    session, board ms at the end)."""
    vt = VirtualTrainer(tmp / f"{name}.img", speed=20, seed=seed, user="typical", clock="virtual").start()
    try:
        dev = Device(vt.port)
        sid = start_hil(dev)
        wire = hashlib.sha256()
        for f in iter_stream(dev, time.monotonic() + 10):
            wire.update(bytes((f.mtype, f.seq)) + len(f.payload).to_bytes(2, "little") + f.payload)
            if f.mtype == P.NOTICE and f.payload[0] == P.N_SESSION_ENDED:
                break
        else:
            raise AssertionError("the hil program did not end")
        dev.live(False)
        db = SessionDatabase.open(str(tmp / f"{name}.sqlite3"))
        assert sync(dev, db, show_progress=False).fetched == [sid]
        raw = db.raw("sim-0001", sid)
        dev.close()
        return wire.hexdigest(), hashlib.sha256(raw).hexdigest(), vt.clock.t_ms
    finally:
        vt.stop()


def test_same_seed_same_bytes_different_seed_different_bytes(tmp_path):
    a = record(tmp_path, "a", 7)
    b = record(tmp_path, "b", 7)
    assert a == b                 # live frames, session file and board time, byte for byte
    c = record(tmp_path, "c", 8)
    assert c[0] != a[0] and c[1] != a[1]


def test_the_esp32_board_code_is_deterministic_too(tmp_path):
    runs = []
    for name in ("a", "b"):
        vt = VirtualTrainer(tmp_path / f"{name}.img", profile=HIL_PROFILE, clock="virtual").start()
        try:
            dev = Device(vt.port)
            sid, live_ends, _rep, db, s = play_hil(dev, tmp_path / f"{name}.sqlite3", "virtual trainer")
            raw = db.raw(dev.info["device"], sid)
            runs.append((live_ends, len(s.values), hashlib.sha256(raw).hexdigest(), vt.clock.t_ms))
            dev.close()
        finally:
            vt.stop()
    assert runs[0] == runs[1] and runs[0][0] == 7


def test_waits_are_board_time_and_the_wall_clock_stays_for_people(tmp_path):
    vt = VirtualTrainer(tmp_path / "w.img", speed=10, clock="virtual").start()
    try:
        dev = Device(vt.port)
        assert dev.clock is vt.clock and dev.clock.virtual
        info = dev.hello()
        assert info["sim"]["clock"] == "virtual"
        t0 = dev.clock.monotonic()
        # a reply costs no board time; silence for 2 host seconds is 20 s of board time
        assert dev.ping(b"x") == b"x" and dev.clock.monotonic() == t0
        assert dev.read_frame(2.0) is None
        waited = dev.clock.monotonic() - t0
        assert 2.0 <= waited < 2.0 + 0.05 + 1e-9          # one pyserial-sized step at most past it
        assert dev.get_info()["ticks_ms"] == info["ticks_ms"] + round(waited * 10 * 1000)
        dev.clock.sleep(1.0)
        assert dev.get_info()["samples"] - info["samples"] == round((waited + 1.0) * 10 * 100)
        dev.close()
    finally:
        vt.stop()
    with VirtualTrainer(tmp_path / "w.img", speed=10) as wall:
        dev = Device(wall.port)
        assert dev.clock is WALL and dev.hello()["sim"]["clock"] == "wall"
        dev.close()
