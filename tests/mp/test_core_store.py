# Portable tests of the session store: run by pytest under CPython against a
# temp directory, and by tests/mp/run_tests.py under the MicroPython unix port
# against real littlefs on the simulated flash in RAM (firmware/simboard/blockdev.py).
import os
import struct
import sys
from binascii import crc32
from knip.store import (SessionStore, StoreError, StoreFull, iter_records, scan, MAX_PAYLOAD,
                        REC_HEADER, REC_SAMPLES, REC_EVENT, REC_CUE, REC_GAP, REC_END,
                        REC_PAIN, REC_RECOVERED)
from knip.recorder import Recorder
from knip.ring import SampleRing
from knip.samples import BLOCK, unpack_block
from signals import Lcg

MP = sys.implementation.name == "micropython"
_BS = 4096
_mounts = []     # MicroPython: mount points; CPython: temp dirs


def _unmount_all():
    import vfs
    while _mounts:
        try:
            vfs.umount(_mounts.pop())
        except OSError:
            pass


def _fresh(blocks=128):
    """(root, disk): an empty session dir on a new littlefs (MicroPython) or
    in a new temp dir (CPython, disk None)."""
    if MP:
        from simboard.blockdev import mount
        _unmount_all()
        point = "/t0"
        disk = mount(None, point, blocks=blocks)
        _mounts.append(point)
        return point + "/sessions", disk
    import shutil
    import tempfile
    while _mounts:                      # CPython: temp dirs of earlier tests
        shutil.rmtree(_mounts.pop(), ignore_errors=True)
    d = tempfile.mkdtemp(prefix="knipstore")
    _mounts.append(d)
    return d + "/sessions", None


class _QuotaStore(SessionStore):
    # CPython stand-in for a small littlefs: free = quota - blocks in use.
    quota = 64 * _BS

    def free(self):
        used = 2 * _BS      # littlefs superblock pair
        for name in os.listdir(self.root):
            used += (os.stat(self.root + "/" + name)[6] + _BS - 1) // _BS * _BS
        return self.quota - used if used < self.quota else 0


def _small_store(blocks=64):
    root, disk = _fresh(blocks)
    if MP:
        return SessionStore(root), disk
    s = _QuotaStore(root)
    s.quota = blocks * _BS
    return s, disk


def _power_cut(store, root, disk):
    """Stop recording as a power cut would (the block buffer is lost); returns
    the root at which the surviving flash is seen."""
    if MP:
        import vfs
        snap = disk.snapshot()          # flash right now, mid-session
        vfs.mount(vfs.VfsLfs2(snap), "/cut")
        _mounts.append("/cut")
        root = "/cut" + root[root.index("/", 1):]
    f = store._f                        # drop the session, not its buffer
    store._f = store._sid = None
    f.close()
    return root


def _payload(i, n):
    return bytes((i * 7 + k) & 0xFF for k in range(n))


def _read_all(store, sid, piece=1000):
    out = bytearray()
    buf = bytearray(piece)
    off = 0
    while True:
        n = store.read(sid, off, buf)
        if n == 0:
            return bytes(out)
        out += buf[:n]
        off += n


def _file(root, sid):
    with open(root + "/%08x.kss" % sid, "rb") as f:
        return f.read()


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return str(e)
    raise AssertionError("%s not raised" % exc.__name__)


def test_parse_records_and_scan_errors():
    def rec(t, p):
        b = bytes((t, len(p) & 0xFF, len(p) >> 8)) + p
        return b + struct.pack("<I", crc32(b))
    good = rec(REC_HEADER, b"KNIP\x01{}") + rec(REC_EVENT, b"abc") + rec(REC_END, b"")
    got = [(t, bytes(p), o) for t, p, o in iter_records(good)]
    assert got == [(REC_HEADER, b"KNIP\x01{}", 0), (REC_EVENT, b"abc", 14), (REC_END, b"", 24)]
    assert scan(good) == (len(good), 3, True, None)
    assert scan(good[:-1]) == (24, 2, False, "truncated record at byte 24")
    bad = bytearray(good)
    bad[18] ^= 1
    assert scan(bad) == (14, 1, False, "CRC mismatch at byte 14")
    assert scan(good[:14] + b"\x02\xff\xff" + bytes(10))[3] == "record length 65535 > 1024 at byte 14"
    assert scan(rec(REC_HEADER, b"KNAP\x01{}"))[:3] == (0, 0, False)
    assert scan(b"")[3] == "empty file"
    assert list(iter_records(good, 14))[0][0] == REC_EVENT


def test_round_trip_and_read_in_pieces():
    root, disk = _fresh()
    s = SessionStore(root)
    assert s.open_id is None
    sid = s.begin(b'{"signal":"emg"}')
    assert s.open_id == sid
    types = (REC_SAMPLES, REC_EVENT, REC_CUE, REC_GAP, REC_PAIN)
    sent = []
    for i in range(300):
        p = _payload(i, (i * 37) % 300)
        s.append(types[i % 5], p)
        sent.append((types[i % 5], p))
    big = bytearray(MAX_PAYLOAD + 100)
    s.append(REC_SAMPLES, big, MAX_PAYLOAD)          # n: only the first n bytes
    sent.append((REC_SAMPLES, bytes(MAX_PAYLOAD)))
    _raises(StoreError, s.append, REC_SAMPLES, big)   # payload too long
    _raises(StoreError, s.read, sid, 0, bytearray(10))  # still recording
    _raises(StoreError, s.begin, b"{}")             # one session at a time
    assert s.end(b'{"reps":3}') == sid and s.open_id is None
    data = _read_all(s, sid, 777)
    assert data == _file(root, sid) and len(data) == s.size(sid)
    assert scan(data) == (len(data), len(sent) + 2, True, None)
    recs = [(t, bytes(p)) for t, p, o in iter_records(data)]
    assert recs[0] == (REC_HEADER, b'KNIP\x01{"signal":"emg"}')
    assert recs[1:-1] == sent
    assert recs[-1] == (REC_END, b'{"reps":3}')
    assert s.crc(sid) == crc32(data)
    assert s.read(sid, len(data), bytearray(10)) == 0
    assert s.list() == [{"id": sid, "size": len(data), "closed": True, "open": False, "bad": False}]


def test_writes_only_when_the_block_buffer_fills():
    root, disk = _fresh()
    s = SessionStore(root)
    sid = s.begin(b"{}")
    path = root + "/%08x.kss" % sid
    head = os.stat(path)[6]
    assert head == 7 + 5 + 2                     # the header is on flash at once
    progs = disk.prog_bytes if disk else 0
    for i in range((_BS - head - 200) // 107):   # 107-byte records, short of a block
        s.append(REC_SAMPLES, _payload(i, 100))
    assert os.stat(path)[6] == head
    if disk:
        assert disk.prog_bytes == progs          # nothing reached the flash
    i = 0
    while os.stat(path)[6] == head:
        s.append(REC_SAMPLES, _payload(i, 100))
        i += 1
        assert i < 10
    assert os.stat(path)[6] == _BS               # one whole block, not per record
    if disk:
        assert disk.prog_bytes - progs < _BS + 1024
    s.flush()
    assert os.stat(path)[6] == s.size(sid)
    s.end(b"{}")


def test_write_amplification_is_about_one():
    # A long session costs about its own size in flash programming: the
    # buffer is synced only at littlefs block ends (no partial-block copies).
    root, disk = _fresh(256)
    s = SessionStore(root)
    sid = s.begin(b"{}")
    p0 = disk.prog_bytes if disk else 0
    p = bytearray(64)
    for i in range(8000):
        s.append(REC_SAMPLES, p, 20 + i % 40)
    s.end(b"{}")
    if disk:
        amp = (disk.prog_bytes - p0) / s.size(sid)
        assert amp < 1.05, amp


def test_power_cut_keeps_every_complete_record():
    root, disk = _fresh()
    s = SessionStore(root)
    sid = s.begin(b'{"n":1}')
    sent = []
    for i in range(200):
        p = _payload(i, 50 + i % 90)
        s.append(REC_SAMPLES, p)
        sent.append(p)
    on_flash = s._base                      # written out; the buffer is lost
    assert 0 < on_flash < s.size(sid)
    # a second session, cut right after a flush: ends on a record boundary
    cut = _power_cut(s, root, disk)
    s2 = SessionStore(cut)
    sid2 = s2.begin(b"{}")
    for i in range(5):
        s2.append(REC_EVENT, _payload(i, 30))
    s2.flush()
    f = s2._f
    s2._f = s2._sid = None
    f.close()
    # a third one with a torn record at the end (partial write, garbage)
    s3 = SessionStore(cut)
    sid3 = s3.begin(b"{}")
    s3.append(REC_CUE, b"go")
    s3.flush()
    f = s3._f
    s3._f = s3._sid = None
    f.close()
    with open(cut + "/%08x.kss" % sid3, "ab") as f:
        f.write(b"\x02\x40\x00partial")
    before = len(_file(cut, sid))
    assert before == on_flash
    st = SessionStore(cut)                  # boot
    assert [x["closed"] for x in st.list()] == [False, False, False]
    done = st.recover()
    keep = 0
    n = 0
    hdr = 7 + 5 + 7
    for p in sent:                          # complete records on flash
        if hdr + keep + len(p) + 7 > before:
            break
        keep += len(p) + 7
        n += 1
    assert n > 10
    assert done == [(sid, hdr + keep, before - hdr - keep), (sid2, 7 + 7 + 5 * 37, 0), (sid3, 14 + 9, 10)]
    data = _file(cut, sid)
    assert scan(data) == (len(data), n + 2, True, None)
    recs = list(iter_records(data))
    assert [bytes(p) for t, p, o in recs[1:-1]] == sent[:n]
    t, p, o = recs[-1]
    assert t == REC_RECOVERED and struct.unpack("<II", p) == (hdr + keep, before - hdr - keep)
    assert scan(_file(cut, sid2))[1:3] == (7, True)
    assert scan(_file(cut, sid3))[1:3] == (3, True)
    assert all(x["closed"] for x in st.list())
    assert st.recover() == []               # idempotent
    assert not [n for n in os.listdir(cut) if n.endswith(".tmp")]


def test_recover_without_room_leaves_session_readable():
    # Rewriting needs room for a copy; without it the session stays as it
    # is (not closed): the host still fetches its good prefix and acks it.
    s, disk = _small_store(64)
    sid = s.begin(b"{}")
    i = 0
    while s.size(sid) < 150000:
        s.append(REC_SAMPLES, _payload(i, 200))
        i += 1
    cut = _power_cut(s, s.root, disk)
    before = _file(cut, sid)
    st = SessionStore(cut) if MP else _QuotaStore(cut)
    assert st.recover() == []
    assert _file(cut, sid) == before
    assert st.list() == [{"id": sid, "size": len(before), "closed": False, "open": False, "bad": False}]
    data = _read_all(st, sid)
    valid, n, closed, err = scan(data)
    assert data == before and not closed and n > 500 and err == "truncated record at byte %d" % valid
    st.delete(sid, len(data), crc32(data))
    assert st.list() == []


def test_recover_removes_stray_tmp_and_leaves_bad_files():
    root, disk = _fresh()
    s = SessionStore(root)
    junk = b"not a session, but maybe someone's data"
    with open(root + "/00000063.kss", "wb") as f:
        f.write(junk)
    with open(root + "/00000001.tmp", "wb") as f:
        f.write(b"half a recovery")
    s = SessionStore(root)
    assert s.recover() == []
    assert sorted(os.listdir(root)) == ["00000063.kss", "store"]
    assert _file(root, 0x63) == junk
    assert s.list() == [{"id": 0x63, "size": len(junk), "closed": False, "open": False, "bad": True}]
    assert s.begin(b"{}") == 0x64           # ids stay above every file


def test_delete_needs_matching_size_and_crc():
    root, disk = _fresh()
    s = SessionStore(root)
    sid = s.begin(b"{}")
    s.append(REC_EVENT, b"x" * 100)
    _raises(StoreError, s.delete, sid, 0, 0)            # being recorded
    s.end(b"{}")
    size, c = s.size(sid), s.crc(sid)
    msg = _raises(StoreError, s.delete, sid, size - 1, c)
    assert "bytes" in msg and "fetch it again" in msg
    msg = _raises(StoreError, s.delete, sid, size, c ^ 1)
    assert "crc32" in msg
    assert s.list()[0]["id"] == sid
    s.delete(sid, size, c)
    assert s.list() == []
    assert "no session" in _raises(StoreError, s.delete, sid, size, c)
    assert "no session" in _raises(StoreError, s.read, sid, 0, bytearray(4))


def test_ids_never_repeat_after_deletes():
    root, disk = _fresh()
    s = SessionStore(root)
    ids = []
    for k in range(3):
        ids.append(s.begin(b"{}"))
        s.end(b"{}")
    for sid in ids[::-1]:                   # delete all, newest first
        s.delete(sid, s.size(sid), s.crc(sid))
    s = SessionStore(root)                  # reboot
    new = s.begin(b"{}")
    assert new > max(ids) and new == ids[-1] + 1
    assert os.listdir(root).count("next") == 1


def test_store_id_is_drawn_once_and_a_new_store_gets_another():
    root, disk = _fresh()
    s = SessionStore(root)
    sid = s.store_id
    assert len(sid) == 8 and int(sid, 16) >= 0 and sid == sid.lower()
    s.begin(b"{}")
    s.end(b"{}")
    assert SessionStore(root).store_id == sid           # a reboot keeps it
    assert SessionStore(root).recover() == [] and SessionStore(root).store_id == sid
    with open(root + "/store", "wb") as f:              # unreadable: drawn anew
        f.write(b"zz")
    again = SessionStore(root).store_id
    assert again != "zz" and len(again) == 8 and SessionStore(root).store_id == again
    # a reflash: the same device, a blank flash, the counter from 0 again
    ids = set()
    for _ in range(4):
        root, disk = _fresh()
        s = SessionStore(root)
        assert s.begin(b"{}") == 0
        ids.add(s.store_id)
        s.end(b"{}")
    assert len(ids) == 4


def test_storage_full_then_end_still_closes():
    for size, every in ((40, 0), (700, 0), (MAX_PAYLOAD, 0), (300, 7)):
        s, disk = _small_store(64)
        sid = s.begin(b'{"x":1}')
        sent = 0
        try:
            while True:
                s.append(REC_SAMPLES, _payload(sent, size))
                sent += 1
                if every and sent % every == 0:
                    s.flush()               # never raises StoreFull
        except StoreFull as e:
            msg = str(e)
        assert "storage full" in msg and "acknowledge" in msg
        assert sent * size > 100000
        path = s.root + "/%08x.kss" % sid
        on_flash = os.stat(path)[6]
        s.flush()                           # no room: stays buffered for end()
        assert os.stat(path)[6] == on_flash
        _raises(StoreFull, s.append, REC_SAMPLES, _payload(sent, size))   # still full
        s.end(b"s" * MAX_PAYLOAD)           # the biggest summary fits the reserve
        data = _file(s.root, sid)
        assert scan(data) == (len(data), sent + 2, True, None)
        recs = list(iter_records(data))
        assert bytes(recs[-2][1]) == _payload(sent - 1, size)
        assert recs[-1][0] == REC_END
        assert s.list()[0]["closed"]
        assert "storage full" in _raises(StoreFull, s.begin, b"{}")
        s.delete(sid, len(data), crc32(data))
        s.begin(b"{}")                      # room again after the ack
        s.end(b"{}")


def test_file_block_device_keeps_data_across_remount():
    from simboard.blockdev import BlockDev, mount
    path = "/tmp/knip_blockdev_%s.img" % "".join("%02x" % b for b in os.urandom(4))
    try:
        dev = BlockDev(path, 4096, 32)
        assert os.stat(path)[6] == 4096 * 32
        buf = bytearray(16)
        dev.readblocks(3, buf, 100)
        assert buf == b"\xff" * 16              # erased flash
        dev.writeblocks(3, b"knip", 100)
        dev.close()
        dev = BlockDev(path, 4096, 32)
        dev.readblocks(3, buf, 96)
        assert buf[4:8] == b"knip"
        dev.ioctl(6, 3)
        dev.readblocks(3, buf, 96)
        assert buf == b"\xff" * 16
        dev.close()
        if not MP:
            return
        _unmount_all()
        with open(path, "r+b") as f:
            f.write(b"someone's data")
        try:
            mount(path, "/img", 4096, 32)
            raise AssertionError("formatted a non-blank image")
        except OSError as e:
            assert "not formatting" in str(e)
        with open(path, "r+b") as f:
            assert f.read(14) == b"someone's data"
            f.seek(0)
            f.write(b"\xff" * 14)
        dev = mount(path, "/img", 4096, 32)    # formats the blank image
        _mounts.append("/img")
        s = SessionStore("/img/sessions")
        sid = s.begin(b"{}")
        s.append(REC_EVENT, b"kept")
        s.end(b"{}")
        _unmount_all()
        dev.close()
        dev = mount(path, "/img", 4096, 32)    # remount: nothing formatted
        _mounts.append("/img")
        s = SessionStore("/img/sessions")
        data = _file("/img/sessions", sid)
        assert scan(data)[1:] == (3, True, None)
        assert bytes(list(iter_records(data))[1][1]) == b"kept"
        assert s.begin(b"{}") == sid + 1
        s.end(b"{}")
        _unmount_all()
        dev.close()
    finally:
        os.remove(path)


class _Board:
    # what a Recorder asks of the board
    def __init__(self, channels, rate_hz):
        self.channels = channels
        self.rate_hz = rate_hz


def test_a_block_too_noisy_for_one_record_is_halved_and_each_part_timed_as_read():
    # Recorder.write_block into the store: samples whose every difference is
    # an escape outgrow MAX_PAYLOAD (the store refuses more); the block goes
    # out in halves, numbered on from the one before, every value kept, each
    # part timed where a reader of the whole block puts its first sample
    rnd = Lcg(11)
    for channels, rate, parts in ((2, 80, 4), (2, 1000, 4), (1, 30, 2)):
        root, disk = _fresh()
        st = SessionStore(root)
        rec = Recorder(st, _Board(channels, rate))
        sid = rec.begin({"v": 1}, 0)
        ring = SampleRing(BLOCK + 1)
        for j in range(BLOCK):
            ring.put(5000 + j * 1000 // rate + (3 if j % 7 == 0 else 0),     # stamps jitter
                     int(rnd.uniform() * (1 << 26)),       # every difference an escape
                     int(rnd.uniform() * (1 << 26)))       # (and under 2^27: none clamped)
        i = 0
        while i < BLOCK:
            m = 30 if i + 30 <= BLOCK else BLOCK - i
            rec.samples(ring, i, m)
            i += m
        rec.flush(0)
        st.end(b"{}")
        recs = [bytes(p) for t, p, o in iter_records(_file(root, sid)) if t == REC_SAMPLES]
        assert rec.stored == BLOCK and len(recs) == parts, (rate, len(recs))
        xs, ab, nxt = [], [], 0
        for p in recs:
            first, t_first, chans = unpack_block(p)
            assert first == nxt and t_first == ring.t[0] + round(first * 1000 / rate), (rate, first, t_first)
            nxt = first + len(chans[0])
            xs.extend(chans[0])
            if channels > 1:
                ab.extend(chans[1])
        assert xs == list(ring.x[:BLOCK]) and (channels == 1 or ab == list(ring.a[:BLOCK]))
