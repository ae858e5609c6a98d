"""Sync that never stalls, against the real firmware on the virtual trainer
(MicroPython unix port, real littlefs image, real pseudo-terminal, on the
virtual clock) and a real SQLite file: a byte flipped on the flash, a header
destroyed, a reflash that restarts the numbers, a start time that is no date.
The faults are put into the flash image while the trainer is off, as a bad
flash cell would leave it (tests/mp/flash_files.py)."""
from __future__ import annotations

import binascii
import json
import sqlite3
import struct
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_micropython
from knip import store as S
from knip_host import cli
from knip_host.database import SessionDatabase
from knip_host.device import Device
from knip_host.simulator import VirtualTrainer
from knip_host.sync import sync

pytestmark = pytest.mark.micropython

FAST = 25.0
FLASH = ROOT / "tests" / "mp" / "flash_files.py"


def trainer(img: Path, seed: int) -> VirtualTrainer:
    """The virtual trainer on the virtual clock (docs/TESTING.md): what a test
    sees depends on the seed and the test, never on how busy the machine is."""
    return VirtualTrainer(img, speed=FAST, seed=seed, clock="virtual")


def record(port: str, n: int, seconds: float = 0.8) -> tuple[dict, list[int]]:
    """n short sessions ('daily', stopped after `seconds` x FAST of board time); (INFO, ids)."""
    d = Device(port)
    try:
        info = d.hello()
        d.set_clock()
        ids = []
        for _ in range(n):
            ids.append(d.start("daily"))
            d.clock.sleep(seconds)
            d.stop()
        return info, ids
    finally:
        d.close()


def flash(cmd: str, image: Path, path: str, host_file: Path) -> None:
    proc = run_micropython(FLASH, cmd, str(image), path, str(host_file), timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()


def edit_session(image: Path, sid: int, tmp: Path, change) -> bytes:
    """Apply change(bytearray) to session `sid`'s file on the flash; the new bytes."""
    name = f"sessions/{sid:08x}.kss"
    local = tmp / f"{sid}.kss"
    flash("get", image, name, local)
    data = bytearray(local.read_bytes())
    change(data)
    local.write_bytes(bytes(data))
    flash("put", image, name, local)
    return bytes(data)


def record_at(raw: bytes | bytearray, rtype: int, nth: int = 0) -> tuple[int, int]:
    """(offset, payload length) of the nth good record of a type."""
    hits = [(off, len(p)) for t, p, off in S.iter_records(memoryview(bytes(raw))) if t == rtype]
    return hits[nth]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_flipped_byte_is_salvaged_and_every_later_session_still_syncs(tmp_path, capsys):
    img = tmp_path / "flash.img"
    with trainer(img, 3) as vt:
        info, ids = record(vt.port, 3)
    assert ids == [0, 1, 2]
    offset = {}

    def flip(data: bytearray) -> None:
        off, n = record_at(data, S.REC_SAMPLES, 2)       # a byte inside the third sample block
        offset["record"] = off
        data[off + 3 + n // 2] ^= 0x10

    damaged = edit_session(img, 1, tmp_path, flip)
    db_path = tmp_path / "k.sqlite3"
    with trainer(img, 3) as vt:
        d = Device(vt.port)
        sizes = {s["id"]: s["size"] for s in d.sessions()}
        t0 = time.monotonic()
        with SessionDatabase.open(db_path) as db:
            rep = sync(d, db, show_progress=False)
        took = time.monotonic() - t0
        assert rep.fetched == [0, 1, 2] and rep.failed == {} and list(rep.damaged) == [1]
        assert d.sessions() == []                         # all acknowledged: the trainer has room again
        d.close()
    # the damaged session was fetched twice (the same damage both times), the others once
    assert rep.bytes == sizes[0] + 2 * sizes[1] + sizes[2]
    assert "samples lost" in rep.damaged[1] and f"at byte {offset['record']}" in rep.damaged[1]
    with SessionDatabase.open(db_path) as db:
        assert db.raw("sim-0001", 1) == damaged             # kept byte for byte
        row = db.get("sim-0001", 1)
        assert row.damage["ranges"][0][0] == offset["record"]
        assert 0 < row.damage["samples_lost"] <= 200 and not row.damage["end_lost"]
        assert row.store_id == info["store"] and row.complete
        assert not db.get("sim-0001", 0).damage and not db.get("sim-0001", 2).damage
    code, out, _ = run(capsys, "sessions", "--db", str(db_path))
    assert code == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("sim-0001/")}
    assert "DAMAGED" in lines["sim-0001/1"] and "DAMAGED" not in lines["sim-0001/0"]
    code, out, _ = run(capsys, "show", "sim-0001/1", "--db", str(db_path))
    assert code == 0 and "damaged" in out and "samples lost" in out and "salvaged" in out
    print(f"salvage: session sizes {sizes}, fetched {rep.bytes} bytes in {took:.2f} s, "
          f"{rep.damaged[1]}")


def test_an_unreadable_header_stays_on_the_trainer_until_she_says_discard(tmp_path, capsys):
    img = tmp_path / "flash.img"
    with trainer(img, 4) as vt:
        _info, ids = record(vt.port, 3, seconds=0.4)

    def smash_header(data: bytearray) -> None:
        data[10] ^= 0xFF                                  # inside the header JSON: its CRC fails
    edit_session(img, 0, tmp_path, smash_header)
    db = str(tmp_path / "k.sqlite3")
    with trainer(img, 4) as vt:
        code, out, _ = run(capsys, "sync", "--port", vt.port, "--db", db, "--discard", "1")
        assert code == 0 and "2 new sessions" in out
        assert "session 0 on the trainer is unreadable" in out and "--discard" in out
        assert "--discard 1: session 1 copied, so it was stored and deleted from the trainer as usual" in out
        d = Device(vt.port)
        assert [s["id"] for s in d.sessions()] == [0]        # left there, the later ones synced
        d.close()
        code, out, _ = run(capsys, "sync", "--port", vt.port, "--db", db, "--discard", "0", "--discard", "7")
        assert code == 0 and "session 0 deleted from the trainer without a copy" in out
        assert "--discard 7: there is no session 7 on the trainer" in out
        d = Device(vt.port)
        assert d.sessions() == []
        d.close()
    code, out, _ = run(capsys, "sessions", "--db", db)
    assert "sim-0001/1" in out and "sim-0001/2" in out and "sim-0001/0 " not in out


def test_a_reflash_restarts_the_numbers_and_the_database_keeps_both(tmp_path, capsys):
    db = str(tmp_path / "k.sqlite3")
    stores = []
    for flash_no in (1, 2):              # the same board (device id) on a freshly erased flash
        img = tmp_path / f"flash{flash_no}.img"
        with trainer(img, flash_no) as vt:
            info, ids = record(vt.port, 2, seconds=0.4)
            assert ids == [0, 1] and info["device"] == "sim-0001"
            stores.append(info["store"])
            code, out, _ = run(capsys, "sync", "--port", vt.port, "--db", db)
            assert code == 0 and "2 new sessions" in out, out
    assert stores[0] != stores[1]
    with SessionDatabase.open(db) as d:
        rows = sorted(d.list(), key=lambda r: r.key)     # (the virtual clocks run 25 times fast)
        assert [r.key for r in rows] == ["sim-0001/0", "sim-0001/1", "sim-0001~2/0", "sim-0001~2/1"]
        assert [r.store_id for r in rows] == [stores[0]] * 2 + [stores[1]] * 2
        assert d.raw("sim-0001", 0) != d.raw("sim-0001~2", 0)
    code, out, _ = run(capsys, "show", "sim-0001~2/1", "--db", db)
    assert code == 0 and "sim-0001~2/1" in out
    code, _out, err = run(capsys, "show", "0", "--db", db)
    assert code == 1 and "sim-0001/0, sim-0001~2/0" in err


def _set_epoch(data: bytearray, epoch_ms: int) -> None:
    """Rewrite the header record with another epoch_ms (its length and CRC follow)."""
    off, n = record_at(data, S.REC_HEADER)
    body = json.loads(bytes(data[off + 8:off + 3 + n]))
    body["epoch_ms"] = epoch_ms
    payload = S.MAGIC + bytes((S.VERSION,)) + json.dumps(body).encode()
    head = struct.pack("<BH", S.REC_HEADER, len(payload)) + payload
    data[off:off + 7 + n] = head + struct.pack("<I", binascii.crc32(head))


def test_a_start_time_that_is_no_date_breaks_no_read(tmp_path, capsys):
    img = tmp_path / "flash.img"
    with trainer(img, 6) as vt:
        record(vt.port, 2, seconds=0.4)
    edit_session(img, 1, tmp_path, lambda data: _set_epoch(data, 2 ** 64 - 1))
    db = str(tmp_path / "k.sqlite3")
    with trainer(img, 6) as vt:
        code, out, _ = run(capsys, "sync", "--port", vt.port, "--db", db)
        assert code == 0 and "2 new sessions" in out
    con = sqlite3.connect(db)
    assert con.execute("SELECT start_epoch FROM sessions WHERE session_id = 1").fetchone() == (None,)
    con.close()
    code, out, err = run(capsys, "sessions", "--db", db)
    row = next(ln for ln in out.splitlines() if ln.startswith("sim-0001/1"))
    assert code == 0 and "date unknown" in row and "warning: sim-0001/1" in err
    code, out, _ = run(capsys, "show", "sim-0001/1", "--db", db)
    assert code == 0 and "date unknown" in out and "warning" in out
    assert run(capsys, "report", "--html", str(tmp_path / "r.html"), "--db", db)[0] == 0
    assert run(capsys, "progress", "-o", str(tmp_path), "--db", db)[0] == 0


def test_a_schema_1_database_with_a_bad_start_time_is_migrated_and_reads(tmp_path, capsys):
    """The state the issue found: an older knip stored year 584556019; every
    read crashed. Opening migrates the file (schema 2) and clears that time."""
    img = tmp_path / "flash.img"
    db = str(tmp_path / "k.sqlite3")
    with trainer(img, 7) as vt:
        record(vt.port, 2, seconds=0.4)
        assert run(capsys, "sync", "--port", vt.port, "--db", db)[0] == 0
    con = sqlite3.connect(db, isolation_level=None)
    cols = ("device_id, session_id, start_epoch, signal, unit, rate_hz, program, duration_s, n_squeezes, "
            "complete, size, crc32, raw, synced_at, summary_json")
    con.executescript(f"""
        CREATE TABLE v1 AS SELECT {cols} FROM sessions;
        DROP TABLE sessions; DROP TABLE partial; DROP TABLE stores;
        CREATE TABLE sessions (device_id TEXT NOT NULL, session_id INTEGER NOT NULL, start_epoch INTEGER,
            signal TEXT NOT NULL, unit TEXT NOT NULL, rate_hz REAL NOT NULL, program TEXT NOT NULL DEFAULT '',
            duration_s REAL NOT NULL, n_squeezes INTEGER NOT NULL, complete INTEGER NOT NULL,
            size INTEGER NOT NULL, crc32 INTEGER NOT NULL, raw BLOB NOT NULL, synced_at INTEGER NOT NULL,
            summary_json TEXT NOT NULL, PRIMARY KEY (device_id, session_id));
        CREATE TABLE partial (device_id TEXT NOT NULL, session_id INTEGER NOT NULL,
            expected_size INTEGER NOT NULL, expected_crc INTEGER NOT NULL, data BLOB NOT NULL,
            updated_at INTEGER NOT NULL, PRIMARY KEY (device_id, session_id));
        INSERT INTO sessions SELECT * FROM v1; DROP TABLE v1;
        UPDATE sessions SET start_epoch = 18446744073709551 WHERE session_id = 1;
        PRAGMA user_version = 1;""")
    con.close()
    code, out, err = run(capsys, "sessions", "--db", db)
    assert code == 0 and "date unknown" in next(ln for ln in out.splitlines() if ln.startswith("sim-0001/1"))
    assert "warning: sim-0001/1" in err
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert con.execute("SELECT store_id, start_epoch FROM sessions WHERE session_id = 1").fetchone() == ("", None)
    con.close()
    assert run(capsys, "show", "sim-0001/1", "--db", db)[0] == 0
    assert run(capsys, "report", "--html", str(tmp_path / "r.html"), "--db", db)[0] == 0
    assert run(capsys, "progress", "-o", str(tmp_path), "--db", db)[0] == 0
    # the board's sessions were acknowledged before: a new sync finds nothing
    with trainer(img, 7) as vt:
        code, out, _ = run(capsys, "sync", "--port", vt.port, "--db", db)
        assert code == 0 and "0 new sessions" in out


def test_info_on_the_virtual_trainer_names_its_micropython(tmp_path, capsys):
    code, out, _ = run(capsys, "info", "--port", "sim", "--sim-image", str(tmp_path / "i.img"))
    assert code == 0 and "MicroPython 1." in out and "virtual trainer" in out and "session store" in out


@pytest.mark.parametrize("stored_store", ["device's", "none (schema 1)"])
def test_a_lost_ack_is_acknowledged_again_whatever_store_the_copy_has(tmp_path, stored_store):
    """The copy reached the database but the ACK never reached the trainer: the
    next sync finds the same file stored (size and CRC) and acknowledges it
    without fetching it again, also for a copy a schema-1 database keeps
    under no store."""
    from knip_host.sessionfile import decode
    img = tmp_path / "flash.img"
    with trainer(img, 8) as vt:
        info, (sid,) = record(vt.port, 1, seconds=0.4)
        d = Device(vt.port)
        raw = bytearray()
        _end, size, crc = d.fetch(sid, 0, lambda o, b: raw.extend(b))
        session = decode(bytes(raw), "sim-0001", sid, store_id=info["store"])
        if stored_store != "device's":
            session.store_id = ""
        with SessionDatabase.open(tmp_path / "k.sqlite3") as db:
            assert db.add(session, bytes(raw), crc)        # stored; the ACK is "lost"
            rep = sync(d, db, show_progress=False)
            assert rep.already == [sid] and rep.fetched == [] and rep.bytes == 0
            assert db.count() == 1
        assert d.sessions() == []
        d.close()
