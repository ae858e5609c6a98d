"""Bad payloads with good CRCs: every parser on the host answers them with
one DeviceError or SessionFileError line, never struct.error or IndexError.

The device side is a scripted peer on a real pseudo-terminal that speaks the
real framing (knip.protocol) and answers with whatever a test gives it, as a
broken or mismatched firmware would. Session files are written by the real
store (knip.store under CPython) with the real sample codec, then given
records whose CRC holds but whose payload does not decode, or damaged."""
from __future__ import annotations

import binascii
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest

from knip import protocol as P
from knip import store as S
from knip.samples import SampleBlock
from knip_host import cli, salvage
from knip_host.device import Device, DeviceError
from knip_host.live import run_live
from knip_host.ports import default_port
from knip_host.sessionfile import SessionFileError, decode
from knip_host.sync import sync

INFO = {"protocol": 1, "device": "bad-0001", "store": "0badf00d", "signal": "pressure", "unit": "cmH2O",
        "counts_per_unit": 20, "rate_hz": 100, "channels": 1, "mvc": 0}


class Peer:
    """A trainer that answers each request type with the frames in `script`
    ((type, payload), a list of them, or a function of the request's payload
    that gives them), OK(type) otherwise."""

    def __init__(self, script: dict[int, object]):
        self.script = script
        master, slave = os.openpty()
        tty.setraw(slave)
        self.master, self.slave = master, slave
        self.port = os.ttyname(slave)
        self.requests: list[int] = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        rx, w = P.FrameReader(), P.FrameWriter()
        while self.running:
            if not select.select([self.master], [], [], 0.02)[0]:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            pos = 0
            while pos < len(data):
                st, pos = rx.feed(data, pos, len(data))
                if st != P.R_FRAME:
                    continue
                self.requests.append(rx.mtype)
                answer = self.script.get(rx.mtype, (P.OK, bytes((rx.mtype,)) + bytes(6)))
                if callable(answer):
                    answer = answer(bytes(rx.payload))
                for mtype, payload in (answer if isinstance(answer, list) else [answer]):
                    os.write(self.master, bytes(w.message(mtype, rx.seq if mtype < P.SAMPLES else 1, payload)))

    def close(self) -> None:
        # The thread ends before the descriptors close: closed under it, their
        # numbers are reused by the next open() in this process (a later test's
        # session file, its database), and a late answer went into that file.
        self.running = False
        self.thread.join(5)
        assert not self.thread.is_alive(), "the scripted peer did not stop"
        os.close(self.slave)
        os.close(self.master)


def info(**changes) -> tuple[int, bytes]:
    return P.INFO, json.dumps(dict(INFO, **changes)).encode()


@pytest.fixture
def peer():
    made = []

    def make(script: dict[int, object]) -> Device:
        p = Peer({P.HELLO: info(), **script})
        d = Device(p.port, timeout=0.5)
        made.append((p, d))
        return d
    yield make
    for p, d in made:
        d.close()
        p.close()


def one_line_error(call, exc=DeviceError) -> str:
    with pytest.raises(exc) as err:
        call()
    text = str(err.value)
    assert "\n" not in text and text, text
    return text


@pytest.mark.parametrize("request_type, reply, call", [
    (P.LIVE, (P.OK, b"\x04"), lambda d: d.live(True)),
    (P.START, (P.OK, b"\x08\x01"), lambda d: d.start("daily")),
    (P.STOP, (P.OK, b""), lambda d: d.stop()),
    (P.HELLO, (P.INFO, b"\xff not json"), lambda d: d.hello()),
    (P.HELLO, (P.INFO, b"[1, 2]"), lambda d: d.hello()),
    (P.LIST, (P.SESSIONS, b'[{"id": "x", "size": 3}]'), lambda d: d.sessions()),
    (P.LIST, (P.SESSIONS, b'{"id": 1}'), lambda d: d.sessions()),
    (P.LIST, (P.SESSIONS, b'[7]'), lambda d: d.sessions()),
    (P.FETCH, (P.DATA, b"\x00\x00"), lambda d: d.fetch(0, 0, lambda o, b: None)),
    (P.FETCH, (P.DONE, b"\x00" * 8), lambda d: d.fetch(0, 0, lambda o, b: None)),
    (P.FETCH, (P.DONE, struct.pack("<IIII", 5, 0, 0, 0)), lambda d: d.fetch(0, 0, lambda o, b: None)),
])
def test_short_or_wrong_replies_are_one_device_error(peer, request_type, reply, call):
    text = one_line_error(lambda: call(peer({request_type: reply})))
    assert "struct" not in text and "index" not in text.lower()


def test_info_values_that_make_no_sense_are_dropped_and_named(peer):
    d = peer({P.HELLO: info(clock_ms=2 ** 64 - 1, channels="two", storage_free=-5)})
    got = d.hello()
    assert got["clock_ms"] is None and got["channels"] is None and got["storage_free"] is None
    assert len(d.info_problems) == 3 and any("clock_ms" in p for p in d.info_problems)


def test_sync_of_a_trainer_with_short_frames_reports_and_goes_on(peer, tmp_path):
    from knip_host.database import SessionDatabase
    listing = (b'[{"id": 0, "size": 40, "closed": true}, {"id": 1, "size": 9, "closed": true}]')
    d = peer({P.LIST: lambda p: (P.SESSIONS, listing if not any(p) else b"[]"),
              P.FETCH: (P.DONE, b"\x00\x00\x00")})
    with SessionDatabase.open(tmp_path / "k.sqlite3") as db:
        rep = sync(d, db, show_progress=False)
    assert sorted(rep.failed) == [0, 1] and rep.fetched == []
    assert all("\n" not in why and "DONE" in why for why in rep.failed.values()), rep.failed


def test_sync_refuses_a_device_id_that_cannot_key_sessions(peer, tmp_path):
    from knip_host.database import SessionDatabase
    d = peer({P.HELLO: info(device="a/b")})
    with SessionDatabase.open(tmp_path / "k.sqlite3") as db:
        assert "cannot key" in one_line_error(lambda: sync(d, db, show_progress=False))


@pytest.mark.parametrize("frame", [
    (P.EVENT, b"\x01"), (P.EVENT, b"\x04\x00\x02\x00\x00"), (P.CUE, b"\x01\x02"), (P.NOTICE, b""),
    (P.VERDICT, b"\x05\x01"),
])
def test_live_stream_frames_that_do_not_parse_are_one_device_error(peer, frame):
    d = peer({P.LIVE: [(P.OK, b"\x04" + bytes(6)), frame]})
    d.hello()
    out = open(os.devnull, "w")
    text = one_line_error(lambda: run_live(d, seconds=2.0, out=out, plain=True))
    assert "live" in text and "firmware and this knip disagree" in text


# ---------------------------------------------------------------- session files

def session_file(tmp_path: Path, blocks: int = 6) -> bytes:
    """A real session file from the store and the sample codec (one channel, 100 Hz)."""
    st = S.SessionStore(str(tmp_path / "sessions"))
    hdr = {"v": 1, "id": 0, "store": st.store_id, "device": "t-1", "signal": "pressure", "unit": "cmH2O",
           "counts_per_unit": 20, "rate_hz": 100, "channels": 1, "t0_ms": 1000,
           "epoch_ms": 1767225600000, "program": "test"}
    sid = st.begin(json.dumps(hdr).encode())
    blk = SampleBlock(1, 100)
    for i in range(200 * blocks):
        if blk.add(i, 1000 + 10 * i, 200 + (i * 7) % 50, 0):
            st.append(S.REC_SAMPLES, blk.buf, blk.pack(0, blk.n))
            blk.n = 0
    st.end(json.dumps({"reason": "done", "samples": 200 * blocks}).encode())
    return (tmp_path / "sessions" / f"{sid:08x}.kss").read_bytes()


def rec(rtype: int, payload: bytes) -> bytes:
    head = struct.pack("<BH", rtype, len(payload)) + payload
    return head + struct.pack("<I", binascii.crc32(head))


def test_an_intact_file_decodes_without_damage(tmp_path):
    raw = session_file(tmp_path)
    s = decode(raw)
    assert len(s.values) == 1200 and not s.damage and s.problems == [] and s.store_id
    assert s.start_epoch == 1767225600 and s.complete


def test_records_with_good_crcs_that_do_not_decode_are_noted_not_fatal(tmp_path):
    raw = session_file(tmp_path)
    end = S.scan(raw)[0] - len(rec(S.REC_END, b"")) - len(json.dumps({"reason": "done", "samples": 1200}))
    bad = (rec(S.REC_GAP, b"\x01\x02\x03") + rec(S.REC_CUE, b"\x05") + rec(S.REC_EVENT, b"\x04")
           + rec(S.REC_VERDICT, b"") + rec(S.REC_SAMPLES, b"\x00" * 5) + rec(S.REC_END, b"{not json"))
    s = decode(raw[:end] + bad)
    assert len(s.values) == 1200
    assert [u.split()[0] for u in s.damage["undecodable"]] == ["gap", "cue", "event", "verdict", "samples",
                                                               "end"]


@pytest.mark.parametrize("where, what", [("payload", 0x20), ("length", 0x01), ("type", 0x0C),
                                         ("crc", 0x80)])
def test_salvage_steps_over_a_damaged_record(tmp_path, where, what):
    raw = bytearray(session_file(tmp_path))
    good, lost = salvage.records(raw)
    assert lost == [] and [r[2] for r in good] == [r[2] for r in S.iter_records(raw)]
    victim = good[3]                                  # the third sample block
    off, n = victim[2], len(victim[1])
    raw[{"payload": off + 3 + n // 2, "length": off + 1, "type": off, "crc": off + 3 + n}[where]] ^= what
    got, lost = salvage.records(raw)
    assert [r[2] for r in got] == [r[2] for r in good if r[2] != off]
    assert lost == [(off, n + 7)]
    s = decode(bytes(raw))
    assert s.damage["samples_lost"] == 200 and len(s.values) == 1000 and not s.damage["end_lost"]


def with_header(raw: bytes, **changes) -> bytes:
    """The file with its header record rebuilt around changed header keys."""
    _t, payload, _o = next(S.iter_records(raw))
    body = json.loads(bytes(payload[5:]))
    body.update(changes)
    head = rec(S.REC_HEADER, S.MAGIC + bytes((S.VERSION,)) + json.dumps(body).encode())
    return head + raw[7 + len(payload):]


def test_salvage_of_a_torn_tail_and_of_a_bad_header(tmp_path):
    raw = session_file(tmp_path)
    s = decode(raw[:-20])
    assert s.damage["end_lost"] and s.damage["bytes_lost"] > 0 and not s.complete
    broken = bytearray(raw)
    broken[5] ^= 0xFF
    assert "header" in one_line_error(lambda: decode(bytes(broken)), SessionFileError)
    for key, value in (("rate_hz", 0), ("rate_hz", "fast"), ("channels", 3), ("counts_per_unit", -1)):
        assert key in one_line_error(lambda: decode(with_header(raw, **{key: value})), SessionFileError)
    s = decode(with_header(raw, epoch_ms=2 ** 64 - 1, t0_ms="x", mvc="y", phases=7))
    assert s.start_epoch is None and "not a time from 2020 to 2100" in s.problems[0]


# ---------------------------------------------------------------- the database and the ports

def test_a_locked_database_is_named_at_once_with_who_holds_it(tmp_path, capsys):
    db = tmp_path / "k.sqlite3"
    assert cli.main(["sessions", "--db", str(db)]) == 0          # no file yet: nothing to lock
    from knip_host.database import SessionDatabase
    SessionDatabase.open(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        capsys.readouterr()
        t0 = time.monotonic()
        code = cli.main(["sessions", "--db", str(db)])
        took = time.monotonic() - t0
        err = capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert code == 1 and took < 3.0, took
    assert "locked" in err and f"pid {holder.pid}" in err and "not a Knip database" not in err
    assert "run the command again" in err
    print(f"locked database answered in {took:.2f} s")


class _Port:
    def __init__(self, device: str, description: str, vid: int | None = None, pid: int | None = None):
        self.device, self.description, self.vid, self.pid, self.hwid = device, description, vid, pid, "n/a"


def test_one_serial_port_that_is_not_a_trainer_is_named_as_such(monkeypatch):
    from serial.tools import list_ports
    monkeypatch.delenv("KNIP_PORT", raising=False)
    monkeypatch.setattr(list_ports, "comports", lambda: [_Port("/dev/ttyS0", "ttyS0")])
    text = one_line_error(default_port)
    assert "more than one" not in text and "/dev/ttyS0" in text and "does not look like an ESP32" in text
    monkeypatch.setattr(list_ports, "comports", lambda: [_Port("/dev/ttyS0", "ttyS0"),
                                                         _Port("/dev/ttyUSB0", "CP2102", 0x10C4, 0xEA60)])
    assert default_port() == "/dev/ttyUSB0"
    monkeypatch.setattr(list_ports, "comports", lambda: [_Port("/dev/ttyUSB0", "a", 0x10C4, 0xEA60),
                                                         _Port("/dev/ttyUSB1", "b", 0x1A86, 0x7523)])
    assert "more than one possible trainer" in one_line_error(default_port)
