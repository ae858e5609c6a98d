# On-device session store: one append-only file of CRC-checked records per
# session (format and rules: docs/STORE.md). Records go into one preallocated
# block buffer that is written and synced only when it fills, at a littlefs
# block boundary: syncing a partial block makes littlefs copy it on the next
# write, so per-record flushing would multiply flash wear.
# Portable: parsing runs on CPython (host) and MicroPython; the store uses
# only os, struct and binascii.crc32, which both have.
import os
import struct
from binascii import crc32
from knip.fixed import const

REC_HEADER = const(0x01)     # b"KNIP", version u8, header body (JSON)
REC_SAMPLES = const(0x02)
REC_EVENT = const(0x03)
REC_CUE = const(0x04)
REC_GAP = const(0x05)
REC_END = const(0x06)        # summary body; marks a closed session
REC_PAIN = const(0x07)
REC_RECOVERED = const(0x08)  # u32 valid length, u32 bytes discarded
REC_VERDICT = const(0x09)    # coach verdict (protocol.pack_verdict)
MAX_PAYLOAD = const(1024)
MAGIC = b"KNIP"
VERSION = const(1)

_OVH = const(7)              # rtype u8 + length u16 + crc32 u32
_MAX_REC = const(1031)       # _OVH + MAX_PAYLOAD
_RBUF = const(1040)          # read buffer: holds the largest record (_MAX_REC), 16-byte blocks
_RECHECK = const(64)         # write-outs between statvfs calls far from full
_SUFFIX = ".kss"
_HEX = "0123456789abcdef"


class StoreError(Exception):
    pass


class StoreFull(StoreError):
    pass


def _rec_len(mv, i, end):
    # Size of the good record at mv[i], 0 if it runs past end,
    # -1 if its length field is impossible, -2 if its CRC is wrong.
    if end - i < _OVH:
        return 0
    n = mv[i + 1] | (mv[i + 2] << 8)
    if n > MAX_PAYLOAD:
        return -1
    e = i + 3 + n
    if e + 4 > end:
        return 0
    if crc32(mv[i:e]) != struct.unpack_from("<I", mv, e)[0]:
        return -2
    return n + _OVH


def _is_header(mv, i, n):
    if mv[i] != REC_HEADER or n < _OVH + 5 or mv[i + 7] != VERSION:
        return False
    for k in range(4):
        if mv[i + 3 + k] != MAGIC[k]:
            return False
    return True


def _what(n, i, mv):
    if n == 0:
        return "truncated record at byte %d" % i
    if n == -1:
        return "record length %d > %d at byte %d" % (mv[i + 1] | (mv[i + 2] << 8), MAX_PAYLOAD, i)
    return "CRC mismatch at byte %d" % i


def iter_records(buf, start=0):
    """(rtype, payload memoryview, offset) for each good record from `start`,
    stopping at the first incomplete or bad one."""
    mv = memoryview(buf)
    end = len(mv)
    i = start
    while True:
        n = _rec_len(mv, i, end)
        if n <= 0:
            return
        yield mv[i], mv[i + 3:i + n - 4], i
        i += n


def scan(buf):
    """(valid_length, n_records, closed, error or None) for a whole session file.
    closed: the last good record is REC_END or REC_RECOVERED."""
    mv = memoryview(buf)
    end = len(mv)
    i = k = 0
    last = -1
    n = 0
    while True:
        n = _rec_len(mv, i, end)
        if n <= 0:
            break
        if k == 0 and not _is_header(mv, 0, n):
            return 0, 0, False, "no KNIP v%d header record at byte 0 (type 0x%02x)" % (VERSION, mv[0])
        last = mv[i]
        k += 1
        i += n
    if k == 0:
        return 0, 0, False, ("empty file" if end == 0 else "no header record: " + _what(n, 0, mv))
    return i, k, last == REC_END or last == REC_RECOVERED, (None if i == end else _what(n, i, mv))


def _popc(x):
    c = 0
    while x:
        c += x & 1
        x >>= 1
    return c


def _random32():
    # os.urandom where the port has it (ESP32: the hardware RNG; unix), else
    # the random module (the WebAssembly port has no os.urandom)
    try:
        return struct.unpack("<I", os.urandom(4))[0]
    except (AttributeError, NotImplementedError, OSError):
        import random
        return random.getrandbits(32)


def _makedirs(path):
    p = ""
    for part in path.split("/"):
        if not part:
            continue
        p += "/" + part if (p or path[0] == "/") else part
        try:
            os.stat(p)
        except OSError:
            os.mkdir(p)


class SessionStore:
    """Session files under `root`; at most one open (being recorded) at a time.

    block: write buffer size = the filesystem block size (littlefs on the
    ESP32: 4096). reserve: free bytes kept back so end() always fits; at least
    2 * block (the buffer plus a closing record can touch two new blocks)."""

    def __init__(self, root, block=4096, reserve=8192):
        if block < 2 * _MAX_REC:
            raise ValueError("block must be at least %d bytes" % (2 * _MAX_REC))
        self.root = root.rstrip("/") or "/"
        _makedirs(self.root)
        self.block = block
        self.reserve = reserve if reserve > 2 * block else 2 * block
        self._buf = bytearray(block)
        self._mv = memoryview(self._buf)
        self._rbuf = bytearray(_RBUF)
        self._rmv = memoryview(self._rbuf)
        self._h = bytearray(_OVH)           # record head (3) + crc (4)
        self._hmv = memoryview(self._h)
        self._head = self._hmv[0:3]
        self._tail = self._hmv[3:7]
        self._f = None
        self._sid = None
        self._base = 0      # file offset of _buf[0] (bytes already written)
        self._pos = 0       # bytes in _buf
        self._cap = 0       # write out when _pos reaches this (block boundary)
        self._room = 0      # estimated free bytes above reserve
        self._since = 0     # write-outs since the last statvfs
        self._full = False  # a flush() found no room: refuse further records
        self._rf = None     # cached read handle for fetches
        self._rsid = None
        self._info = {}     # id -> (size, closed, bad), valid while size matches
        nxt = 0
        try:
            with open(self._p("next"), "rb") as f:
                nxt = int(f.read(8).decode(), 16)
        except (OSError, ValueError):
            pass
        for sid in self._ids(True):
            if sid >= nxt:
                nxt = sid + 1
        self._next = nxt
        self.store_id = self._own_id()

    def _own_id(self):
        # 8 hex digits drawn at random when the store is created (or found
        # without a readable id): a reflash erases it with the sessions and
        # restarts the counter, so the host keys a session by (device,
        # store_id, id) and a reused number never clashes.
        p = self._p("store")
        try:
            with open(p, "rb") as f:
                got = f.read(9).decode()
            if len(got) == 8 and all(c in _HEX for c in got):
                return got
        except (OSError, ValueError):
            pass
        # Written in place (no rename): a write cut short leaves no readable
        # id, and the next start draws another; no session header used it yet.
        sid = "%08x" % _random32()
        with open(p, "wb") as f:
            f.write(sid.encode())
        return sid

    # -- paths and ids
    def _p(self, name):
        return self.root + "/" + name

    def _path(self, sid):
        return self._p("%08x" % sid + _SUFFIX)

    def _ids(self, tmp=False):
        out = []
        for name in os.listdir(self.root):
            if len(name) == 12 and (name.endswith(_SUFFIX) or (tmp and name.endswith(".tmp"))):
                try:
                    out.append(int(name[:8], 16))
                except ValueError:
                    pass
        out.sort()
        return out

    def _stat_size(self, sid):
        try:
            return os.stat(self._path(sid))[6]
        except OSError:
            raise StoreError("no session %08x on the device" % sid)

    @property
    def open_id(self):
        return self._sid

    @property
    def next_id(self):
        """The id the next begin() gives (the header names its own session)."""
        return self._next

    # -- space
    def free(self):
        st = os.statvfs(self.root)
        return (st[1] or st[0]) * st[4]

    def total(self):
        st = os.statvfs(self.root)
        return (st[1] or st[0]) * st[2]

    def _full_error(self, free):
        return StoreFull("storage full: %d bytes free; sync and acknowledge sessions to free space" % free)

    def _check_room(self):
        # Before a write: each write can take one new block (littlefs copies
        # a partial last block), plus one block of margin for metadata. The
        # estimate is refreshed from statvfs (a littlefs traversal) near the
        # limit, and now and then for other files written meanwhile.
        need = 2 * self.block
        if self._room < 2 * need or self._since >= _RECHECK:
            free = self.free()
            self._room = free - self.reserve
            self._since = 0
            if self._room < need:
                raise self._full_error(free)

    def _boundary(self, off):
        # Smallest littlefs CTZ block end > off. Block i holds block - 4 *
        # (ctz(i) + 1) bytes (skip-list pointers), so block i ends at
        # block * (i + 1) - 8 * i + 4 * popcount(i).
        b = self.block
        i = (off - b) // (b - 8) - 1
        if i < 0:
            i = 0
        while b * (i + 1) - 8 * i + 4 * _popc(i) <= off:
            i += 1
        return b * (i + 1) - 8 * i + 4 * _popc(i) - off

    # -- writing
    def _write_out(self):
        if self._pos:
            self._f.write(self._mv[:self._pos])
            self._f.flush()
            self._base += self._pos
            self._pos = 0
            self._room -= self.block
            self._since += 1
        self._cap = self._boundary(self._base)

    def _put(self, src, n):
        o = 0
        while o < n:
            p = self._pos
            k = self._cap - p
            if k > n - o:
                k = n - o
            self._buf[p:p + k] = src[o:o + k]
            self._pos = p + k
            o += k
            if self._pos == self._cap:
                self._write_out()

    def _record(self, rtype, mv, n):
        h = self._h
        h[0] = rtype
        h[1] = n & 0xFF
        h[2] = n >> 8
        c = crc32(self._head)
        c = crc32(mv[:n] if n < len(mv) else mv, c)
        struct.pack_into("<I", h, 3, c)
        self._put(self._head, 3)
        self._put(mv, n)
        self._put(self._tail, 4)

    def _need_open(self):
        if self._f is None:
            raise StoreError("no session open: call begin() first")

    def begin(self, header_body):
        """Create a session file with its header record (synced at once);
        return the new session id."""
        if self._f is not None:
            raise StoreError("session %08x is still open: end() it first" % self._sid)
        body = bytes(header_body)
        if len(body) + 5 > MAX_PAYLOAD:
            raise StoreError("header body %d bytes > %d" % (len(body), MAX_PAYLOAD - 5))
        self._room = 0
        self._check_room()
        sid = self._next
        # Persist the next id first: a power cut in between skips an id,
        # it never reuses one.
        tmp = self._p("next.tmp")
        with open(tmp, "wb") as f:
            f.write(("%08x" % (sid + 1)).encode())
        os.rename(tmp, self._p("next"))
        self._next = sid + 1
        self._f = open(self._path(sid), "wb")
        self._sid = sid
        self._base = self._pos = 0
        self._cap = self._boundary(0)
        self._full = False
        p = MAGIC + bytes((VERSION,)) + body
        self._record(REC_HEADER, memoryview(p), len(p))
        self._write_out()
        return sid

    def append(self, rtype, payload, n=None):
        """Add one record. StoreFull (nothing of this record written, all
        earlier ones kept) when storage is down to the reserve: call end()."""
        if self._f is None:
            self._need_open()
        ln = len(payload)
        if n is None:
            n = ln
        elif n > ln:
            raise StoreError("n = %d but the payload has %d bytes" % (n, ln))
        if n > MAX_PAYLOAD:
            raise StoreError("record payload %d bytes > %d" % (n, MAX_PAYLOAD))
        if self._full:
            raise self._full_error(self.free())
        p = self._pos
        e = p + 3 + n
        if e + 4 < self._cap:
            # Fits before the next write-out: build it in place.
            b = self._buf
            struct.pack_into("<BH", b, p, rtype, n)
            b[p + 3:e] = payload if n == ln else memoryview(payload)[:n]
            struct.pack_into("<I", b, e, crc32(self._mv[p:e]))
            self._pos = e + 4
            return
        self._check_room()
        self._record(rtype, memoryview(payload), n)

    def flush(self):
        """Write out buffered records and sync (the app does this every few
        seconds: a power cut then loses at most that much). Never raises
        StoreFull: without room the records stay buffered for end(), and the
        next append() raises StoreFull."""
        self._need_open()
        if self._pos and not self._full:
            try:
                self._check_room()
            except StoreFull:
                self._full = True
                return
            self._write_out()

    def end(self, summary_body):
        """Append REC_END, sync and close; uses the reserve, so it works
        right after StoreFull. Returns the session id."""
        self._need_open()
        mv = memoryview(summary_body)
        if len(mv) > MAX_PAYLOAD:
            raise StoreError("summary %d bytes > %d" % (len(mv), MAX_PAYLOAD))
        sid = self._sid
        f = self._f
        err = None
        try:
            self._record(REC_END, mv, len(mv))
            self._write_out()
        except OSError as e:
            err = e
        self._f = None
        self._sid = None
        try:
            f.close()
        except OSError as e:
            err = err or e
        if err is not None:
            raise StoreError("could not close session %08x (%s); recover() closes it at next start" % (sid, err))
        self._info[sid] = (self._base, True, False)
        return sid

    # -- reading
    def _reader(self, sid):
        if sid == self._sid:
            raise StoreError("session %08x is being recorded; it can be read after it ends" % sid)
        if self._rsid != sid:
            self._drop_reader()
            try:
                self._rf = open(self._path(sid), "rb")
            except OSError:
                raise StoreError("no session %08x on the device" % sid)
            self._rsid = sid
        return self._rf

    def _drop_reader(self):
        if self._rf is not None:
            self._rf.close()
        self._rf = None
        self._rsid = None

    def read(self, sid, offset, buf):
        """Read into buf from `offset` of a closed session; bytes read, 0 at EOF."""
        f = self._reader(sid)
        f.seek(offset)
        return f.readinto(buf) or 0

    def size(self, sid):
        if sid == self._sid:
            return self._base + self._pos
        return self._stat_size(sid)

    def crc(self, sid):
        """crc32 of the whole file (what the host checks its copy against)."""
        f = self._reader(sid)
        f.seek(0)
        c = 0
        while True:
            m = f.readinto(self._rbuf)
            if not m:
                return c
            c = crc32(self._rmv[:m], c)

    def delete(self, sid, size, crc):
        """Delete a session the host holds a verified copy of (same size and
        crc32); anything else is refused with StoreError."""
        if sid == self._sid:
            raise StoreError("session %08x is being recorded; end it before deleting" % sid)
        have = self._stat_size(sid)
        if have != size:
            raise StoreError("not deleted: session %08x is %d bytes on the device, the host copy %d; fetch it again"
                             % (sid, have, size))
        c = self.crc(sid)
        if c != crc:
            raise StoreError("not deleted: session %08x has crc32 %08x on the device, the host copy %08x; fetch it again"
                             % (sid, c, crc))
        self._drop_reader()
        os.remove(self._path(sid))
        self._info.pop(sid, None)

    # -- listing and recovery
    def _head_ok(self, f, size):
        f.seek(0)
        m = f.readinto(self._rmv[:_MAX_REC if size > _MAX_REC else size]) or 0
        n = _rec_len(self._rmv, 0, m)
        return n > 0 and _is_header(self._rmv, 0, n)

    def _tail_closed(self, f, size):
        # Closed = the file ends with a good REC_END / REC_RECOVERED. Read
        # from the end, so a damaged middle never makes recover() cut a
        # closed session.
        t = _MAX_REC if size > _MAX_REC else size
        f.seek(size - t)
        mv = self._rmv
        t = f.readinto(mv[:t]) or 0
        i = t - _OVH
        while i >= 0:
            if (mv[i + 1] | (mv[i + 2] << 8)) == t - _OVH - i and (mv[i] == REC_END or mv[i] == REC_RECOVERED) \
                    and _rec_len(mv, i, t) > 0:
                return True
            i -= 1
        return False

    def _examine(self, sid):
        # (size, closed, bad) of a stored file, cached while its size holds.
        size = self._stat_size(sid)
        got = self._info.get(sid)
        if got is not None and got[0] == size:
            return got
        with open(self._path(sid), "rb") as f:
            bad = not self._head_ok(f, size)
            closed = (not bad) and self._tail_closed(f, size)
        got = (size, closed, bad)
        self._info[sid] = got
        return got

    def list(self):
        """[{"id", "size", "closed", "open", "bad"}] in ascending id order."""
        out = []
        for sid in self._ids():
            if sid == self._sid:
                out.append({"id": sid, "size": self._base + self._pos, "closed": False, "open": True, "bad": False})
                continue
            size, closed, bad = self._examine(sid)
            out.append({"id": sid, "size": size, "closed": closed, "open": False, "bad": bad})
        return out

    def _valid_prefix(self, f, size):
        # Length of the run of good records from the start (streamed).
        buf = self._rbuf
        mv = self._rmv
        pos = 0
        while pos < size:
            f.seek(pos)
            m = f.readinto(buf) or 0
            i = 0
            while True:
                n = _rec_len(mv, i, m)
                if n <= 0:
                    break
                i += n
            pos += i
            if n < 0 or i == 0 or pos + (m - i) >= size:
                break
        return pos

    def recover(self):
        """Close sessions cut short by a power loss: keep every complete good
        record, drop the torn tail, append REC_RECOVERED. Call at boot.
        Returns [(id, valid_length, discarded_bytes)]. Files without a good
        header are left as they are (list() marks them bad)."""
        self._drop_reader()
        for name in os.listdir(self.root):
            if name.endswith(".tmp"):
                os.remove(self._p(name))
        done = []
        for sid in self._ids():
            if sid == self._sid:
                continue
            size, closed, bad = self._examine(sid)
            if closed or bad:
                continue
            path = self._path(sid)
            with open(path, "rb") as f:
                valid = self._valid_prefix(f, size)
            r = bytearray(_OVH + 8)
            r[0] = REC_RECOVERED
            r[1] = 8
            struct.pack_into("<II", r, 3, valid, size - valid)
            struct.pack_into("<I", r, 11, crc32(memoryview(r)[:11]))
            if valid == size:
                # Ends on a record boundary: append in place, no copy.
                with open(path, "ab") as f:
                    f.write(r)
            else:
                # No truncate() on MicroPython: copy the good prefix, then
                # rename over the original (atomic on littlefs).
                if self.free() < valid + 2 * self.block:
                    continue    # no room to rewrite now; fetchable as is
                tmp = self._p("%08x.tmp" % sid)
                with open(path, "rb") as src, open(tmp, "wb") as dst:
                    left = valid
                    while left:
                        m = src.readinto(self._rmv[:_RBUF if left > _RBUF else left])
                        if not m:
                            raise StoreError("session %08x shrank while recovering it" % sid)
                        dst.write(self._rmv[:m])
                        left -= m
                    dst.write(r)
                    dst.flush()
                os.rename(tmp, path)
            self._info[sid] = (valid + _OVH + 8, True, False)
            done.append((sid, valid, size - valid))
        return done
