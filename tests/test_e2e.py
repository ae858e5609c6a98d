"""End to end: the host tool against the real firmware application running
under the MicroPython unix port (the virtual trainer) over a real
pseudo-terminal, with real littlefs on a disk image and a real SQLite file.
The trainer runs on the virtual clock (knip_host/simclock.py): the host's
waits let board time pass, FAST x the host seconds they ask for, so every
count below is exact and the same on every run."""
from __future__ import annotations

import binascii
import json
import os
import struct
import time

import pytest

from knip import protocol as P
from knip import store as S
from knip_host import cli
from knip_host.database import SessionDatabase
from knip_host.device import Device, DeviceRefused, LinkLost, LiveDecoder, iter_stream
from knip_host.sessionfile import decode
from knip_host.simulator import VirtualTrainer, wait_for
from knip_host.sync import sync

pytestmark = pytest.mark.micropython

FAST = 25.0        # board-clock speed for whole sessions


@pytest.fixture
def trainer(tmp_path):
    vt = VirtualTrainer(tmp_path / "flash.img", speed=FAST, seed=3, clock="virtual").start()
    yield vt
    vt.stop()


@pytest.fixture
def dev(trainer):
    d = Device(trainer.port)
    yield d
    d.close()


def run_program(dev: Device, name: str, timeout: float = 60.0) -> tuple[int, list, list]:
    """Start a program with live streaming on; return (session id, events, cues) once it ends."""
    dev.hello()
    dev.live(True, 100)
    sid = dev.start(name)
    events, cues = [], []
    for f in iter_stream(dev, time.monotonic() + timeout):
        if f.mtype == P.EVENT:
            events.append(P.unpack_event(f.payload, 0, len(f.payload)))
        elif f.mtype == P.CUE:
            cues.append(P.unpack_cue(f.payload, 0, len(f.payload)))
        elif f.mtype == P.NOTICE and f.payload[0] == P.N_SESSION_ENDED:
            dev.live(False)
            return sid, events, cues
    raise AssertionError(f"program {name} did not end within {timeout} s")


def test_info_and_clock(dev):
    info = dev.hello()
    assert info["protocol"] == P.VERSION and info["device"] == "sim-0001"
    assert info["signal"] == "pressure" and info["unit"] == "cmH2O" and info["rate_hz"] == 100
    assert info["storage_total"] == 2 * 1024 * 1024 and 0 < info["storage_free"] <= info["storage_total"]
    assert info["clock_ms"] is None and 0 <= info["battery_pct"] <= 100
    now = int(dev.clock.time() * 1000)
    dev.set_clock(now)
    clock = dev.get_info()["clock_ms"]
    assert abs(clock - int(dev.clock.time() * 1000)) < 2000      # the board clock keeps the time set
    assert dev.ping(b"\x00\x01knip\x00") == b"\x00\x01knip\x00"


def test_live_stream_decodes_every_sample(trainer, dev):
    info = dev.hello()
    first, batch = dev.live(True, 100)
    assert batch == 10
    dec = LiveDecoder(2)
    values, abd = [], []
    t_end = time.monotonic() + 1.5
    for f in iter_stream(dev, t_end):
        dec.note_seq(f.seq)
        if f.mtype in (P.SAMPLES, P.SAMPLES_KEY):
            out = dec.decode(f)
            assert out is not None, "the first live frame must be a key frame"
            values += out[0]
            abd += out[1]
    dev.live(False)
    assert dec.lost_frames == 0
    # 1.5 s at 25x real time and 100 Hz: 3750 samples
    assert len(values) == 3750, len(values)
    cmh2o = [v / info["counts_per_unit"] for v in values]
    assert 2 < min(cmh2o) and max(cmh2o) < 25          # a resting pelvic floor, 5-15 cmH2O baseline
    assert 4 < sum(a / 20 for a in abd) / len(abd) < 25


def test_whole_session_sync_and_idempotence(tmp_path, dev):
    sid, events, cues = run_program(dev, "daily")
    assert [c[1] for c in cues].count(1) == 15               # 10 fast + 5 holds cued
    db = SessionDatabase.open(str(tmp_path / "knip.sqlite3"))
    rep = sync(dev, db, show_progress=False)
    assert rep.fetched == [sid] and rep.bytes > 5000
    assert dev.sessions() == []                               # acknowledged, so deleted on the device
    s = db.load(f"sim-0001/{sid}", lambda raw, d: decode(raw, d, sid))
    assert s.complete and s.program == "daily" and s.summary["reason"] == "done"
    assert len(s.values) == s.summary["samples"] and s.abd is not None and s.summary["gaps"] == 0
    assert len(s.cues) == 40       # pain, rest, 10 x (squeeze, relax), rest, 5 x (squeeze, hold, relax), pain, done
    squeezes = [e for e in s.events if e["kind"] == "squeeze"]
    assert len(squeezes) == 15, [e["onset_s"] for e in squeezes]      # every cued one
    # the live events and the stored ones describe the same squeezes
    live_ends = [rec for fl, _t, rec in events if fl & 4]
    assert len(live_ends) == len([e for e in s.events if e["channel"] == "pelvic_floor"])
    # a second sync finds nothing new and stores nothing twice
    rep2 = sync(dev, db, show_progress=False)
    assert rep2.fetched == [] and len(db.list()) == 1


def test_sync_cut_at_several_points_resumes_to_identical_bytes(tmp_path, trainer):
    d = Device(trainer.port)
    sid, _e, _c = run_program(d, "sprint")
    size = d.sessions()[0]["size"]
    store = d.info["store"]                  # a partial download is kept under the store's id
    ref = bytearray()
    _end, fsize, crc = d.fetch(sid, 0, lambda off, b: ref.extend(b))
    assert fsize == size == len(ref) and binascii.crc32(ref) == crc
    d.close()
    db = SessionDatabase.open(str(tmp_path / "k.sqlite3"))
    cuts = [int(size * f) for f in (0.05, 0.4, 0.75, 0.97)]
    resumed_from = []
    for cut in cuts:
        d = Device(trainer.port)
        part = db.partial_get("sim-0001", sid, store)
        resumed_from.append(len(part[0]) if part else 0)

        def drop(_sid, have, d=d, cut=cut):
            if have >= cut:
                d.ser.close()            # the cable is pulled
        with pytest.raises(LinkLost):
            sync(d, db, show_progress=False, on_chunk=drop)
        d.close()
    assert resumed_from[0] == 0 and all(b > a for a, b in zip(resumed_from, resumed_from[1:]))
    d = Device(trainer.port)
    rep = sync(d, db, show_progress=False)
    assert rep.fetched == [sid] and rep.resumed == [sid]
    assert db.raw("sim-0001", sid) == bytes(ref)
    assert d.sessions() == []
    d.close()


def test_power_cut_mid_session_recovers_up_to_last_complete_record(tmp_path):
    img = tmp_path / "flash.img"
    vt = VirtualTrainer(img, speed=FAST, seed=5, clock="virtual").start()
    try:
        d = Device(vt.port)
        d.hello()
        d.live(True, 100)
        sid = d.start("marathon")                 # 5 s settle + 5 x (10 s + 10 s)
        ends = 0
        for f in iter_stream(d, time.monotonic() + 30):
            if f.mtype == P.EVENT and f.payload[0] & 4:
                ends += 1
                if ends == 3:
                    break
        d.close()
        vt.kill()                                  # power cut: nothing flushed after this
    finally:
        vt.stop()
    vt = VirtualTrainer(img, speed=FAST, seed=5, clock="virtual").start()
    try:
        assert any("recovered" in line for line in vt.log)
        d = Device(vt.port)
        info = d.hello()
        assert info["recovered"] == [sid]
        db = SessionDatabase.open(str(tmp_path / "k.sqlite3"))
        rep = sync(d, db, show_progress=False)
        assert rep.fetched == [sid]
        s = db.load(f"sim-0001/{sid}", lambda raw, dv: decode(raw, dv, sid))
        assert not s.complete
        # flushed every 15 s of board time: the recording reaches the last
        # flush before the cut (the third hold ended just after the one at 60 s)
        assert s.duration_s == 60.0, s.duration_s
        assert len(s.values) == len(s.t_ms)
        assert s.t_ms[-1] + 1000.0 / s.rate_hz == pytest.approx(s.duration_s * 1000)
        assert sum(1 for e in s.events if e["kind"] == "squeeze") == 2     # the holds that ended by then
        raw = db.raw("sim-0001", sid)
        valid, _n, closed, err = S.scan(raw)
        assert valid == len(raw) and closed and err is None
        d.close()
    finally:
        vt.stop()


def test_garbage_and_corrupt_frames_get_errors_and_the_link_recovers(dev):
    dev.hello()
    # bytes without a delimiter, then random frames with delimiters
    dev.write_raw(bytes(range(1, 256)) * 6 + b"\x00" + b"\x11\x22\x00\x7f\x00")
    seq = dev.send(P.PING, b"after garbage")
    replies = []
    for _ in range(10):
        f = dev.read_frame(2.0)
        assert f is not None
        replies.append(f)
        if f.mtype == P.PONG:
            break
    assert replies[-1].payload == b"after garbage" and replies[-1].seq == seq
    errors = [f for f in replies if f.mtype == P.ERROR]
    assert errors and errors[0].payload[0] == P.E_FRAME
    # a frame with one flipped bit: E_CRC, then the next good frame works
    # (after the garbage's E_FRAME: the device answers bad frames at most
    # once per 100 ms of board time, server._ERR_GAP_MS)
    dev.clock.sleep(0.2 / FAST)
    good = bytearray(dev.writer.message(P.PING, 77, b"flip me"))
    good[good.find(b"flip") + 1] ^= 0x01
    dev.write_raw(bytes(good))
    f = dev.read_frame(2.0)
    assert f.mtype == P.ERROR and f.payload[0] == P.E_CRC and f.seq == 77
    assert dev.ping(b"ok") == b"ok"
    # unknown message, wrong protocol version, unknown program, bad ack
    with pytest.raises(DeviceRefused) as e:
        dev.request(0x3E)
    assert e.value.code == P.E_UNKNOWN
    with pytest.raises(DeviceRefused) as e:
        dev.request(P.HELLO, bytes([P.VERSION + 1]))
    assert e.value.code == P.E_VERSION and "update" in str(e.value)
    with pytest.raises(DeviceRefused) as e:
        dev.start("yoga")
    assert e.value.code == P.E_NOT_FOUND and "sprint" in str(e.value)
    with pytest.raises(DeviceRefused) as e:
        dev.ack(99, 10, 1234)
    assert e.value.code == P.E_NOT_FOUND
    assert dev.hello()["protocol"] == P.VERSION


def test_over_long_frame_gets_e_frame_and_the_next_request_is_served(dev):
    # a PING body one byte over MAX_BODY (docs/PROTOCOL.md 2.3): a bad frame,
    # not a request the device then fails to answer (it used to get E_INTERNAL)
    dev.hello()
    dev.write_raw(bytes(P.FrameWriter(P.MAX_PAYLOAD + 1).message(P.PING, 42, b"\x41" * (P.MAX_PAYLOAD + 1))))
    f = dev.read_frame(2.0)
    assert f is not None and f.mtype == P.ERROR and f.payload[0] == P.E_FRAME and f.seq == 0, f
    assert dev.ping(b"next") == b"next"


def test_ack_and_program_error_codes(dev):
    # the codes docs/PROTOCOL.md 4.2 and 7 promise, one by one
    dev.hello()
    sid = dev.start("daily")
    for call in (lambda: dev.ack(sid, 10, 1234), lambda: dev.fetch(sid, 0, lambda o, b: None)):
        with pytest.raises(DeviceRefused) as e:
            call()
        assert e.value.code == P.E_BUSY and "recording" in str(e.value)
    assert dev.stop() == sid
    _end, size, crc = dev.fetch(sid, size_of(dev, sid), lambda o, b: None)
    with pytest.raises(DeviceRefused) as e:
        dev.ack(sid, size, crc ^ 1)
    assert e.value.code == P.E_MISMATCH
    dev.ack(sid, size, crc)
    with pytest.raises(DeviceRefused) as e:        # a retried ACK whose OK was lost
        dev.ack(sid, size, crc)
    assert e.value.code == P.E_NOT_FOUND
    with pytest.raises(DeviceRefused) as e:
        dev.fetch(sid, 0, lambda o, b: None)
    assert e.value.code == P.E_NOT_FOUND
    with pytest.raises(DeviceRefused) as e:
        dev.remove_program("nosuch")
    assert e.value.code == P.E_NOT_FOUND


def size_of(dev: Device, sid: int) -> int:
    return next(int(s["size"]) for s in dev.sessions() if s["id"] == sid)


def test_full_storage_ends_the_session_and_keeps_everything(tmp_path):
    # 20 blocks of 4 KiB (about 56 KiB free after littlefs): one daily session fits, two do not
    vt = VirtualTrainer(tmp_path / "small.img", speed=40.0, seed=2, blocks=20, clock="virtual").start()
    try:
        d = Device(vt.port)
        first, _e, _c = run_program(d, "daily")
        second = None
        notices = []
        d.live(True, 100)
        try:
            second = d.start("daily")
        except DeviceRefused as e:
            assert e.code == P.E_FULL and "sync" in str(e)
        if second is not None:
            for f in iter_stream(d, time.monotonic() + 60):
                if f.mtype == P.NOTICE:
                    notices.append(f.payload[1:].decode())
                    if f.payload[0] == P.N_SESSION_ENDED:
                        break
            assert any("full" in n for n in notices), notices
        info = d.get_info()
        assert info["storage_full"]
        with pytest.raises(DeviceRefused) as e:
            d.start("sprint")
        assert e.value.code == P.E_FULL
        db = SessionDatabase.open(str(tmp_path / "k.sqlite3"))
        rep = sync(d, db, show_progress=False)
        assert rep.fetched == [first] + ([second] if second is not None else [])
        if second is not None:
            s2 = db.load(f"sim-0001/{second}", lambda raw, dv: decode(raw, dv, second))
            assert s2.summary["reason"] == "full" and len(s2.values) == s2.summary["samples"] > 0
        assert not d.get_info()["storage_full"]
        assert d.start("sprint") >= 0                          # room again after the sync
        d.stop()
        d.close()
    finally:
        vt.stop()


def test_cli_info_sync_sessions_show_plot_with_port_sim(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KNIP_DATA", str(tmp_path / "data"))
    img = str(tmp_path / "cli.img")
    sim = ["--port", "sim", "--sim-image", img, "--sim-clock", "virtual"]
    assert cli.main(["info", *sim]) == 0
    out = capsys.readouterr().out
    assert "sim-0001" in out and "protocol 1" in out and "KiB free" in out
    assert cli.main(["live", *sim, "--sim-speed", "40", "--program", "marathon", "--plain"]) == 0
    out = capsys.readouterr().out
    assert "SQUEEZE 5/5" in out and "session ended (done)" in out
    # --seconds ends a program still running: stopped, not left busy on the trainer
    assert cli.main(["live", *sim, "--sim-speed", "40", "--program", "sprint", "--seconds", "2", "--plain"]) == 0
    out = capsys.readouterr().out
    assert "stopped after 2 s (--seconds)" in out and "session ended" not in out
    assert cli.main(["info", *sim]) == 0
    assert "idle" in capsys.readouterr().out
    assert cli.main(["sync", *sim]) == 0
    assert "2 new sessions" in capsys.readouterr().out
    assert cli.main(["sessions"]) == 0
    out = capsys.readouterr().out
    assert "marathon" in out and "sprint" in out and "power cut" not in out
    assert cli.main(["show", "last"]) == 0
    assert "squeeze" in capsys.readouterr().out.lower()
    png = tmp_path / "s.png"
    assert cli.main(["plot", "last", "-o", str(png)]) == 0
    assert png.stat().st_size > 10000
    capsys.readouterr()
    # a name that says another format than the one written is refused, nothing written
    assert cli.main(["plot", "last", "-o", str(tmp_path / "s.jpg")]) == 2
    assert cli.main(["export", "last", "--format", "csv", "-o", str(tmp_path / "s.edf")]) == 2
    err = capsys.readouterr().err
    assert "plots are written as PNG; give the file a .png name" in err
    assert "names a .edf file but --format csv writes CSV" in err
    assert not (tmp_path / "s.jpg").exists() and not (tmp_path / "s.edf").exists()
    assert cli.main(["info", "--port", str(tmp_path / "no-such-port")]) == 1
    assert "knip devices" in capsys.readouterr().err


def test_replies_always_fit_one_frame_and_bad_values_are_refused(dev):
    """INFO with sixteen long custom programs, LIST over many sessions, a huge
    or non-numeric mvc and a remove of a name that is not text: each gets a
    reply the host can read, never E_INTERNAL."""
    dev.hello()
    names = [f"custom-program-number-{i:02d}" for i in range(16)]
    for name in names:
        dev.put_program({"name": name, "phases": [{"kind": "rest", "seconds": 5}]})
    info = dev.get_info()
    assert info["custom_count"] == 16 and 5 <= len(info["custom_programs"]) < 16
    assert set(info["custom_programs"]) <= set(names)
    assert set(info["programs"]) >= {"calibrate", "sprint"}
    for _ in range(17):             # 17 short sessions: more than one LIST page
        dev.start(names[0])
        dev.stop()
    listed = dev.sessions()
    assert [s["id"] for s in listed] == list(range(17))
    for body in (b'{"mvc": 1e400}', b'{"mvc": 5000000}', b'{"mvc": "x"}'):
        with pytest.raises(DeviceRefused) as err:
            dev.request(P.SET, body)
        assert err.value.code == P.E_ARG, body
    with pytest.raises(DeviceRefused) as err:
        dev.request(P.PROGRAM, b'{"remove": ["x"]}')
    assert err.value.code == P.E_ARG
    assert dev.ping(b"still here") == b"still here"


def test_set_clock_refuses_times_outside_2020_to_2100(dev):
    dev.hello()
    for ms in (0, 2**64 - 1, 4102444800000 + 1):
        with pytest.raises(DeviceRefused) as err:
            dev.set_clock(ms)
        assert err.value.code == P.E_ARG
    assert dev.get_info()["clock_ms"] is None          # nothing was taken
    dev.set_clock(1767225600000)                        # 2026-01-01
    assert dev.get_info()["clock_ms"] >= 1767225600000
