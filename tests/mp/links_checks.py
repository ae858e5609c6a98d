# Portable tests of the link plumbing (CPython and MicroPython run the same
# bodies): the BLE notify chunker with ENOMEM back-off, the RX ring,
# MultiLink over two simulated links, and their heap use under MicroPython.
#
# Tests whose names end in _mp need the MicroPython unix port: they measure
# gc.mem_alloc(), or drive BleLink (firmware/links/ble_link.py) against a
# *simulated radio*: stand-ins for `bluetooth` and aioble that model what
# NimBLE does on the ESP32 (handles, append-mode RX buffer, encrypted-write
# flags, ENOMEM from gatts_notify, the GET/SET_SECRET store IRQs, MTU
# exchange) and a laptop (connect, encrypt with a stored key or pair, write
# in MTU - 3 chunks). No radio runs here; the model is what is tested against.
import sys
import asyncio
import time
from links.chunker import Chunker, RxRing
from links.multi_link import MultiLink
from knip import protocol as P
from signals import Lcg

MP = sys.implementation.name == "micropython"
if MP:
    import gc

_ENOMEM = 12


def _sleep0():
    return asyncio.sleep_ms(0) if MP else asyncio.sleep(0)


def _sleep(ms):
    return asyncio.sleep_ms(ms) if MP else asyncio.sleep(ms / 1000)


def _now_ms():
    return time.ticks_ms() if MP else int(time.monotonic() * 1000)


async def _until(cond, ms=3000):
    t0 = _now_ms()
    while not cond():
        if _now_ms() - t0 > ms:
            raise AssertionError("condition not met within %d ms" % ms)
        await _sleep(5)


def _noise(n, seed):
    g = Lcg(seed)
    b = bytearray(n)
    for i in range(n):
        b[i] = int((g.uniform() + 0.5) * 256) & 0xFF
    return b


class _Sink:
    """notify() stand-in: checks each chunk's size and appends it."""

    def __init__(self, payload, cap=4096):
        self.payload = payload
        self.buf = bytearray(cap)
        self.n = 0
        self.sizes = []
        self.bad = 0

    def __call__(self, chunk):
        k = len(chunk)
        if k < 1 or k > self.payload:
            self.bad += 1
        self.buf[self.n:self.n + k] = chunk
        self.n += k
        self.sizes.append(k)


# ---- chunker -----------------------------------------------------------------

def test_chunker_cuts_frames_into_mtu_chunks_in_order():
    src = _noise(3000, 11)
    lengths = list(range(1, 600)) + list(range(600, 3001, 7)) + [3000]
    for mtu in (23, 185, 247, 527):
        pay = mtu - 3
        ch = Chunker()
        total = 0
        for n in lengths:
            sink = _Sink(pay)
            asyncio.run(ch.send(memoryview(src)[:n], pay, sink))
            assert sink.bad == 0 and sink.n == n
            assert bytes(sink.buf[:n]) == bytes(src[:n])
            assert len(sink.sizes) == (n + pay - 1) // pay
            assert all(s == pay for s in sink.sizes[:-1]) and sink.sizes[-1] == n - pay * (len(sink.sizes) - 1)
            total += len(sink.sizes)
        assert ch.chunks == total and ch.retries == 0


class _Flaky:
    """A stack that is out of buffers at random (seeded) moments."""

    def __init__(self, sink, seed, p):
        self.sink = sink
        self.g = Lcg(seed)
        self.p = p
        self.fails = 0
        self.run = 0             # failures in a row right now
        self.longest = 0

    def __call__(self, chunk):
        if self.g.uniform() + 0.5 < self.p:
            self.fails += 1
            self.run += 1
            self.longest = max(self.longest, self.run)
            raise OSError(_ENOMEM)
        self.run = 0
        self.sink(chunk)


def test_chunker_retries_enomem_without_losing_or_reordering_bytes():
    src = _noise(3000, 5)
    clock = [0]
    waits = []

    async def vsleep(ms):        # virtual time: the test does not wait for real
        clock[0] += ms
        waits.append(ms)
        await _sleep0()

    for mtu, seed in ((23, 1), (185, 2), (247, 3), (527, 4)):
        pay = mtu - 3
        sink = _Sink(pay)
        flaky = _Flaky(sink, seed, 0.35)
        ch = Chunker(sleep_ms=vsleep)
        del waits[:]
        asyncio.run(ch.send(src, pay, flaky))
        assert flaky.fails > 0 and ch.retries == flaky.fails
        assert sink.n == 3000 and bytes(sink.buf[:3000]) == bytes(src) and sink.bad == 0
        assert ch.chunks == (3000 + pay - 1) // pay
        assert sum(waits) == ch.waited_ms and set(waits) <= {15, 30, 60, 120}
    # back-off doubles within one chunk's retries: 15, 30, 60, 120, 120 ...
    fails = [0]

    def five_then_ok(chunk):
        if fails[0] < 5:
            fails[0] += 1
            raise OSError(_ENOMEM)
    del waits[:]
    asyncio.run(Chunker(sleep_ms=vsleep).send(b"x" * 10, 20, five_then_ok))
    assert waits == [15, 30, 60, 120, 120]


def test_chunker_bounded_wait_raises_and_other_errors_pass_at_once():
    clock = [0]

    async def vsleep(ms):
        clock[0] += ms
        await _sleep0()

    def full(chunk):
        raise OSError(_ENOMEM)
    ch = Chunker(sleep_ms=vsleep)
    try:
        asyncio.run(ch.send(b"\x01" * 100, 20, full))
        raise AssertionError("no OSError after the stall")
    except OSError as e:
        assert e.args[0] == _ENOMEM
    assert 2000 <= clock[0] <= 2000 + 120 and ch.chunks == 0
    # progress resets the bound: 60 chunks each needing a 15 ms retry take 900 ms
    clock[0] = 0
    state = [0]

    def every_other(chunk):
        state[0] ^= 1
        if state[0]:
            raise OSError(_ENOMEM)
    sink = bytearray()
    ch = Chunker(sleep_ms=vsleep)
    asyncio.run(ch.send(b"\x02" * 1200, 20, lambda c: (every_other(c), sink.extend(c))))
    assert len(sink) == 1200 and clock[0] == 60 * 15
    # a disconnect (ENOTCONN) is not retried
    clock[0] = 0
    calls = [0]

    def gone(chunk):
        calls[0] += 1
        raise OSError(107)
    try:
        asyncio.run(Chunker(sleep_ms=vsleep).send(b"\x03" * 50, 20, gone))
        raise AssertionError("no OSError")
    except OSError as e:
        assert e.args[0] == 107
    assert calls[0] == 1 and clock[0] == 0


def test_chunker_really_sleeps_between_retries():
    fails = [0]
    got = bytearray()

    def twice(chunk):
        if fails[0] < 2:
            fails[0] += 1
            raise OSError(_ENOMEM)
        got.extend(chunk)
    t0 = _now_ms()
    asyncio.run(Chunker().send(b"abc", 20, twice))
    dt = _now_ms() - t0
    assert got == b"abc" and 40 <= dt < 1000, dt      # 15 + 30 ms


# ---- RX ring -------------------------------------------------------------------

def test_rx_ring_wraps_keeps_order_and_counts_overflow():
    r = RxRing(64)
    src = _noise(5000, 9)
    out = bytearray()
    dst = bytearray(23)
    g = Lcg(4)
    pos = 0
    while pos < len(src):
        k = 1 + int((g.uniform() + 0.5) * 20)
        pos += r.put(memoryview(src)[pos:pos + k]) if r.count() + k < 64 else 0
        if g.uniform() > -0.1 or r.count() > 40:
            n = r.take(dst)
            out += dst[:n]
    while r.count():
        out += dst[:r.take(dst)]
    assert bytes(out) == bytes(src) and r.lost == 0
    # more than fits: the rest is counted, what fits is kept in order
    r = RxRing(16)
    assert r.put(b"0123456789") == 10 and r.put(b"abcdefghij") == 5 and r.lost == 5
    big = bytearray(32)
    assert r.take(big) == 15 and bytes(big[:15]) == b"0123456789abcde" and r.take(big) == 0
    r.put(b"xyz")
    r.clear()
    assert r.count() == 0


# ---- MultiLink ---------------------------------------------------------------

class SimLink:
    """A link with the interface of docs/BOARD.md: bytes fed by the test
    arrive in readinto in the chunks given; writes are collected."""

    def __init__(self, name):
        self.name = name
        self.inq = []
        self.ev = asyncio.Event()
        self.out = bytearray()
        self.fail = False

    def feed(self, data):
        self.inq.append(bytes(data))
        self.ev.set()

    async def readinto(self, buf):
        while not self.inq:
            self.ev.clear()
            await self.ev.wait()
        d = self.inq[0]
        n = min(len(buf), len(d))
        buf[0:n] = d[:n]
        if n < len(d):
            self.inq[0] = d[n:]
        else:
            self.inq.pop(0)
        return n

    async def write(self, data):
        if self.fail:
            raise OSError(11)
        self.out += data


def _decode(wire):
    r = P.FrameReader()
    out = []
    pos = 0
    while pos < len(wire):
        st, pos = r.feed(wire, pos, len(wire))
        if st == P.R_FRAME:
            out.append((r.mtype, r.seq, bytes(r.payload)))
        elif st != P.R_NONE:
            out.append(("bad", st, b""))
    return out


class _Echo:
    """The application's serve loop in miniature: PING -> reply PING."""

    def __init__(self, link):
        self.link = link
        self.rx = P.FrameReader()
        self.w = P.FrameWriter()
        self.got = []
        self.bad = 0

    async def run(self):
        buf = bytearray(256)
        while True:
            n = await self.link.readinto(buf)
            pos = 0
            while pos < n:
                st, pos = self.rx.feed(buf, pos, n)
                if st == P.R_FRAME:
                    self.got.append(bytes(self.rx.payload))
                    try:
                        await self.link.write(self.w.message(P.PING, self.rx.seq, self.rx.payload))
                    except OSError as e:
                        self.got.append(("write failed " + str(e.args[0])).encode())
                elif st != P.R_NONE:
                    self.bad += 1


def test_multilink_replies_go_to_the_link_that_spoke_last():
    usb, ble = SimLink("usb"), SimLink("ble")
    ml = MultiLink(usb, ble)
    w = P.FrameWriter()

    async def main():
        app = _Echo(ml)
        task = asyncio.create_task(app.run())
        usb.feed(b"\x00" + bytes(w.message(P.PING, 1, b"from usb")))
        await _until(lambda: len(app.got) == 1)
        wire = b"\x00" + bytes(w.message(P.PING, 2, b"from ble " + b"x" * 300))
        for i in range(0, len(wire), 20):                 # MTU 23 writes
            ble.feed(wire[i:i + 20])
        await _until(lambda: len(app.got) == 2)
        usb.feed(bytes(w.message(P.PING, 3, b"usb again")))
        await _until(lambda: len(app.got) == 3)
        task.cancel()
        ml.stop()
        await _sleep0()
        return app
    app = asyncio.run(main())
    assert [f[2] for f in _decode(bytes(usb.out))] == [b"from usb", b"usb again"] and ml.active is usb
    assert [f[2] for f in _decode(bytes(ble.out))] == [b"from ble " + b"x" * 300]
    assert app.bad == 0 and ml.switches == 2 and ml.cut == 0


def test_multilink_does_not_mix_two_hosts_inside_a_frame():
    usb, ble = SimLink("usb"), SimLink("ble")
    ml = MultiLink(usb, ble, hold_ms=300)
    w = P.FrameWriter()
    a = bytes(w.message(P.PING, 7, b"A" * 120))
    b = bytes(w.message(P.PING, 8, b"B" * 40))

    async def main():
        app = _Echo(ml)
        task = asyncio.create_task(app.run())
        ble.feed(a[:50])                 # BLE host: half a frame ...
        await _sleep(20)
        usb.feed(b)                      # ... USB host: a whole one meanwhile
        await _sleep(60)
        ble.feed(a[50:])                 # ... BLE completes within the hold
        await _until(lambda: len(app.got) == 2)
        # now BLE stops in the middle of a frame for good
        ble.feed(a[:30])
        await _sleep(20)
        usb.feed(b)
        await _until(lambda: len(app.got) == 3, 2000)
        task.cancel()
        ml.stop()
        await _sleep0()
        return app
    app = asyncio.run(main())
    assert app.got[:2] == [b"A" * 120, b"B" * 40] and app.got[2] == b"B" * 40
    assert [f[2] for f in _decode(bytes(ble.out))] == [b"A" * 120]
    assert [f[2] for f in _decode(bytes(usb.out))] == [b"B" * 40, b"B" * 40]
    assert ml.cut == 1 and app.bad == 1      # the abandoned half frame, dropped as bad


def test_multilink_write_raises_oserror_of_the_current_link():
    usb, ble = SimLink("usb"), SimLink("ble")
    ml = MultiLink(usb, ble)
    w = P.FrameWriter()

    async def main():
        app = _Echo(ml)
        task = asyncio.create_task(app.run())
        ble.fail = True                  # the BLE host went away
        ble.feed(bytes(w.message(P.PING, 1, b"q")))
        await _until(lambda: len(app.got) == 2)
        usb.feed(bytes(w.message(P.PING, 2, b"r")))
        await _until(lambda: len(app.got) == 3)
        task.cancel()
        ml.stop()
        await _sleep0()
        return app
    app = asyncio.run(main())
    assert app.got == [b"q", b"write failed 11", b"r"]
    assert [f[2] for f in _decode(bytes(usb.out))] == [b"r"] and ble.out == b""


# ---- heap (MicroPython only) -------------------------------------------------

def _alloc(coro_fn):
    """Heap bytes allocated while the coroutine runs (GC off)."""
    out = [0]

    async def main():
        gc.collect()
        gc.disable()
        m0 = gc.mem_alloc()
        await coro_fn()
        out[0] = gc.mem_alloc() - m0
        gc.enable()
    asyncio.run(main())
    return out[0]


def test_chunker_allocates_only_a_memoryview_per_chunk_mp():
    frame = _noise(3000, 3)
    sink = bytearray(3100)
    pos = [0]

    def notify(chunk):
        k = len(chunk)
        sink[pos[0]:pos[0] + k] = chunk
        pos[0] += k
    ch = Chunker()
    one = _alloc(lambda: ch.send(frame, 3000, notify))     # 1 chunk
    pos[0] = 0
    many = _alloc(lambda: ch.send(frame, 20, notify))      # 150 chunks
    per_chunk = (many - one) / 149
    # a memoryview object is 4 words: one GC block (32 bytes here, 16 on the ESP32)
    print("chunker heap: 1 chunk", one, "B; 150 chunks", many, "B;", per_chunk, "B per chunk")
    assert one <= 512, one
    assert per_chunk <= 32, (one, many)
    assert bytes(sink[:3000]) == bytes(frame)


class _QuietLink:
    """A link that allocates nothing itself but its coroutine: `reads`
    reads of `size` bytes, then it waits for ever."""

    def __init__(self, size, reads):
        self.src = memoryview(bytearray(b"\x01" * size))
        self.size = size
        self.left = reads
        self.never = asyncio.Event()

    async def readinto(self, buf):
        if self.left <= 0:
            await self.never.wait()
        self.left -= 1
        buf[0:self.size] = self.src
        return self.size

    async def write(self, data):
        pass


def test_rx_ring_and_multilink_allocate_nothing_per_byte_mp():
    dst = bytearray(256)
    per = []
    for size in (10, 200):
        r = RxRing(1024)
        data = _noise(size, 8)

        async def ring():
            for _ in range(100):
                r.put(data)
                r.take(dst)
        per.append(_alloc(ring) / 100)
    print("ring heap per put + take of 10 B / 200 B:", per)
    # a memoryview object or two per call (one more when the ring wraps), none per byte
    assert per[0] <= 2 * 32 and per[1] <= per[0] + 2 * 32, per
    per = []
    for size in (16, 256):
        quiet = _QuietLink(size, 60)
        ml = MultiLink(quiet, _QuietLink(size, 0))

        async def reads():
            for _ in range(50):
                await ml.readinto(dst)
        _alloc(reads)                            # warm up: pump tasks
        quiet.left = 60
        alone = _QuietLink(size, 10 ** 6)

        async def direct():
            for _ in range(50):
                await alone.readinto(dst)
        own = _alloc(direct)                     # the link's own coroutine
        per.append((_alloc(reads) - own) / 50)
        ml.stop()
    print("multilink heap per read of 16 B / 256 B (beyond the link's own):", per)
    assert per[0] == per[1] <= 512, per


# ---- BleLink against the simulated radio (MicroPython only) -------------------

class _Mod:
    pass


_ADDR_A = b"\x00\x11\x22\x33\x44\x55\x66"      # NimBLE keys: ble_addr_t (type + 6 bytes)
_ADDR_B = b"\x00\x99\x88\x77\x66\x55\x44"
_ADDR_D = b"\x01\xc0\xff\xee\x00\x00\x01"
_NUS_RX = "6E400002-B5A3-F393-E0A9-E50E24DCCA9E"
_NUS_TX = "6E400003-B5A3-F393-E0A9-E50E24DCCA9E"
_NUS = "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"


class SimStack:
    """The NimBLE side of MicroPython's bluetooth.BLE, as much as BleLink uses."""

    def __init__(self):
        self.irq_cb = None
        self.reset()

    def reset(self):              # (the IRQ callback stays registered, as on a real board)
        self.on = False
        self.cfg = {}
        self.attrs = {}          # handle -> (uuid, flags)
        self.values = {}
        self.buffers = {}
        self.notified = []       # (conn, handle, bytes)
        self.updates = []        # gatts_write(send_update=True)
        self.full = None         # callable: True -> gatts_notify raises ENOMEM
        self.conns = {}          # conn handle -> SimLaptop
        self.next = 0
        self.adv = []
        self.advertising = False
        self.no_pairing = False  # a MicroPython build without pairing/bonding

    def active(self, v=None):
        if v is not None:
            self.on = v
        return self.on

    def config(self, *a, **kw):
        if a:
            return self.cfg.get(a[0])
        self.cfg.update(kw)

    def irq(self, cb):
        self.irq_cb = cb

    def gatts_register_services(self, defs):
        out = []
        h = 10
        for _uuid, chars in defs:
            hs = []
            for c in chars:
                h += 1
                self.attrs[h] = (c[0], c[1])
                self.values[h] = b""
                hs.append(h)
            out.append(tuple(hs))
        return tuple(out)

    def handle_of(self, uuid):
        for h, (u, _f) in self.attrs.items():
            if u.v == uuid:
                return h
        raise KeyError(uuid)

    def gatts_read(self, h):
        v = self.values.get(h, b"")
        if self.buffers.get(h, (0, False))[1]:
            self.values[h] = b""          # append mode: reading clears
        return v

    def gatts_write(self, h, data, send_update=False):
        self.values[h] = data.encode() if isinstance(data, str) else bytes(data)
        if send_update:
            self.updates.append((h, bytes(data)))

    def gatts_set_buffer(self, h, n, append=False):
        self.buffers[h] = (n, append)

    def gatts_notify(self, conn, h, data):
        if conn not in self.conns:
            raise OSError(107)
        if self.full is not None and self.full():
            raise OSError(_ENOMEM)
        self.notified.append((conn, h, bytes(data)))
        self.conns[conn].on_notify(h, bytes(data))

    def gap_disconnect(self, conn):
        c = self.conns.get(conn)
        if c is None:
            return False
        c.drop()
        return True

    def gap_pair(self, conn):
        c = self.conns.get(conn)
        if c is None:
            raise OSError(107)
        c.security_request()

    def gap_advertise(self, interval_us, adv_data=None, resp_data=None, connectable=True):
        self.advertising = interval_us is not None


class SimLaptop:
    """A central: connects, encrypts with the key it holds (the trainer looks
    its LTK up: GET_SECRET type 1) or pairs afresh (a repeat pairing first
    deletes what the trainer holds for its address), writes in MTU-3 chunks."""

    def __init__(self, stack, addr, ltk=None, mtu=247, pairs=True, encrypts=True, greet=None):
        self.s = stack
        self.greet = greet       # bytes it writes as soon as its link is encrypted
        self.addr = addr
        self.ltk = ltk           # what this laptop remembers of a bond
        self.mtu = mtu
        self.pairs = pairs
        self.encrypts = encrypts
        self.h = None
        self.encrypted = False
        self.rx = bytearray()    # reassembled notifications
        self.sizes = []
        self.store_failed = 0

    def irq(self, ev, data):
        return self.s.irq_cb(ev, data)

    def connect(self):
        assert self.s.advertising, "the trainer is not advertising"
        self.s.advertising = False
        self.s.next += 1
        self.h = self.s.next
        self.s.conns[self.h] = self
        self.irq(1, (self.h, self.addr[0], memoryview(self.addr[1:])))

    def exchange_mtu(self, ours):
        self.irq(21, (self.h, min(ours, self.mtu)))

    def security_request(self):
        if not self.encrypts or self.h is None:
            return
        if self.ltk is not None:
            v = self.irq(29, (1, 0, memoryview(self.addr)))
            if v is None or bytes(v) != self.ltk:
                self.drop()              # key missing on the trainer: encryption fails
                return
            self.encrypted = True
            self.irq(28, (self.h, 1, 0, 1, 16))
        elif self.pairs:
            if self.irq(29, (2, 0, memoryview(self.addr))) is not None:   # repeat pairing
                for t in (1, 2):
                    n = 0
                    while self.irq(30, (t, memoryview(self.addr), None)):
                        n += 1
                        assert n < 10, "delete never reports 'gone': NimBLE would loop"
            self.encrypted = True
            self.irq(28, (self.h, 1, 0, 1, 16))
            ours = b"LTK-" + self.addr
            for t, v in ((1, ours), (2, b"IRK-" + self.addr)):
                if not self.irq(30, (t, memoryview(self.addr), memoryview(v))):
                    self.store_failed += 1   # NimBLE would now unpair its oldest peers
            self.ltk = ours
        if self.greet is not None and self.h is not None:
            self.write(self.greet)

    def write(self, data):
        rx = self.s.handle_of(_NUS_RX)
        if self.s.attrs[rx][1] & 0x1000 and not self.encrypted:
            return False                 # the stack drops an unencrypted write
        pay = self.mtu - 3
        for i in range(0, len(data), pay):
            chunk = data[i:i + pay]
            cap = self.s.buffers.get(rx, (20, False))[0]
            self.s.values[rx] = (self.s.values[rx] + chunk)[:cap]
            self.irq(3, (self.h, rx))
        return True

    def on_notify(self, h, data):
        if h == self.s.handle_of(_NUS_TX):
            self.rx += data
            self.sizes.append(len(data))

    def drop(self):
        if self.h is None:
            return
        h = self.h
        self.h = None
        self.encrypted = False
        del self.s.conns[h]
        self.irq(2, (h, self.addr[0], memoryview(self.addr[1:])))


_FAKE = []


def _radio():
    """Install the simulated bluetooth/aioble modules once; reset per test."""
    if _FAKE:
        stack, ab = _FAKE[0]
        stack.reset()
        ab.reset()
        return stack, ab
    stack = SimStack()
    bt = _Mod()

    class UUID:
        def __init__(self, v):
            self.v = v

        def __eq__(self, o):
            return isinstance(o, UUID) and o.v == self.v

    bt.UUID = UUID
    core = _Mod()
    core.ble = stack
    core._irq_handlers = []

    def ble_irq(ev, data):
        for h in core._irq_handlers:
            r = h(ev, data)
            if r is not None:
                return r
    stack.irq(ble_irq)
    ab = _Mod()
    ab.core = core
    ab.security = _Mod()
    state = {}

    class Conn:
        def __init__(self, h):
            self._conn_handle = h
            self.encrypted = False
            self.mtu = None
            self._pair = None

        def is_connected(self):
            return self._conn_handle is not None

        async def exchange_mtu(self, mtu=None, timeout_ms=1000):
            if mtu:
                stack.cfg["mtu"] = mtu
            c = stack.conns.get(self._conn_handle)
            if c is None:
                raise ValueError("Not connected")
            c.exchange_mtu(stack.cfg.get("mtu", 23))
            return self.mtu

        async def pair(self, bond=True, le_secure=True, mitm=False, io=3, timeout_ms=20000):
            stack.cfg.update(bond=bond, le_secure=le_secure, mitm=mitm, io=io)
            self._pair = asyncio.ThreadSafeFlag()
            stack.gap_pair(self._conn_handle)
            if not self.encrypted:
                await asyncio.wait_for_ms(self._pair.wait(), timeout_ms)

        async def disconnect(self, timeout_ms=2000):
            if self._conn_handle is not None:
                stack.gap_disconnect(self._conn_handle)

    def handler(ev, data):           # aioble's peripheral/device/security handlers
        if ev == 1:
            c = Conn(data[0])
            state["conns"][data[0]] = c
            state["incoming"] = c
            state["flag"].set()
        elif ev == 2:
            c = state["conns"].pop(data[0], None)
            if c:
                c._conn_handle = None
        elif ev == 21:
            c = state["conns"].get(data[0])
            if c:
                c.mtu = data[1]
        elif ev == 28:
            c = state["conns"].get(data[0])
            if c:
                c.encrypted = bool(data[1])
                if c.encrypted and c._pair:
                    c._pair.set()

    class Service:
        def __init__(self, uuid):
            self.uuid = uuid
            self.characteristics = []

    class Characteristic:
        def __init__(self, service, uuid, read=False, write=False, write_no_response=False,
                     notify=False, indicate=False, initial=None, capture=False):
            service.characteristics.append(self)
            self.uuid = uuid
            self.flags = ((2 if read else 0) | (8 if write else 0) | (4 if write_no_response else 0)
                          | (0x10 if notify else 0) | (0x10000 if capture else 0))
            self._initial = initial
            self._value_handle = None

        def write(self, data, send_update=False):
            stack.gatts_write(self._value_handle, data, send_update)

    def register_services(*services):
        hs = stack.gatts_register_services(tuple((s.uuid, tuple((c.uuid, c.flags) for c in s.characteristics))
                                                 for s in services))
        for s, handles in zip(services, hs):
            for c, h in zip(s.characteristics, handles):
                c._value_handle = h
                if c._initial is not None:
                    stack.gatts_write(h, c._initial)

    def config(*a, **kw):
        stack.active(True)
        if "bond" in kw and stack.no_pairing:
            raise ValueError("unknown config param")
        return stack.config(*a, **kw)

    def stop():
        stack.active(False)

    async def advertise(interval_us, name=None, services=None, **kw):
        stack.adv.append((interval_us, name, [u.v for u in services or ()]))
        stack.gap_advertise(interval_us)
        state["flag"].clear()
        await state["flag"].wait()
        return state["incoming"]

    def reset():
        state["conns"] = {}
        state["incoming"] = None
        state["flag"] = asyncio.ThreadSafeFlag()
        del core._irq_handlers[:]
        core._irq_handlers.append(handler)
    ab.reset = reset
    ab.Service = Service
    ab.Characteristic = Characteristic
    ab.register_services = register_services
    ab.config = config
    ab.stop = stop
    ab.advertise = advertise
    ab.DeviceDisconnectedError = type("DeviceDisconnectedError", (Exception,), {})
    reset()
    sys.modules["bluetooth"] = bt
    sys.modules["aioble"] = ab
    sys.modules["aioble.core"] = core
    sys.modules["aioble.security"] = ab.security
    _FAKE.append((stack, ab))
    return stack, ab


def _tmp(name):
    import os
    d = os.getenv("KNIP_TMP") or "."
    p = d + "/" + name
    try:
        os.remove(p)
    except OSError:
        pass
    return p


def _bond_file(path, entries):
    import json
    import binascii
    with open(path, "w") as f:
        json.dump([(t, binascii.b2a_base64(k).decode().strip(), binascii.b2a_base64(v).decode().strip())
                   for t, k, v in entries], f)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _link(stack, path, **kw):
    from links.ble_link import BleLink
    kw.setdefault("grace_ms", 400)
    return BleLink(name="Knip", device_id="knip-0007", battery=kw.pop("battery", lambda: (77, 3990)),
                   bonds=path, **kw)


def test_ble_link_services_and_advertising_mp():
    stack, _ = _radio()
    level = [77]
    link = _link(stack, _tmp("bonds0.json"), battery=lambda: (level[0], 3990), battery_ms=40)

    def val(uuid):
        return stack.values[stack.handle_of(uuid)]

    def flags(uuid):
        return stack.attrs[stack.handle_of(uuid)][1]
    assert val(0x2A26) == b"0.4.0" and val(0x2A25) == b"knip-0007" and val(0x2A29) and val(0x2A24)
    assert flags(0x2A25) & 0x0200                        # serial number: encrypted read only
    assert flags(_NUS_RX) & 0x1000 and flags(_NUS_RX) & 0x0C == 0x0C   # write + write-no-response, encrypted
    assert flags(_NUS_TX) & 0x10 and val(0x2A19) == bytes((77,))
    assert stack.buffers[stack.handle_of(_NUS_RX)] == (512, True)
    assert stack.cfg["bond"] and stack.cfg["le_secure"] and not stack.cfg["mitm"] and stack.cfg["io"] == 3
    assert stack.cfg["mtu"] == 247 and stack.cfg["gap_name"] == "Knip"

    async def main():
        link.start()
        await _until(lambda: stack.adv)
        level[0] = 55
        await _until(lambda: stack.updates)
        link.stop()
    asyncio.run(main())
    assert stack.adv[0][1] == "Knip" and stack.adv[0][2] == [_NUS]
    assert stack.updates[-1] == (stack.handle_of(0x2A19), bytes((55,))) and val(0x2A19) == bytes((55,))
    info = link.info()
    assert info["name"] == "Knip" and info["connected"] is False and info["bonds"] == 0
    assert info["pairing"] is False and not stack.advertising
    link.close()
    assert link._irq not in sys.modules["aioble.core"]._irq_handlers and not stack.on
    # a board that cannot measure its battery offers no Battery Service
    stack, _ = _radio()
    _link(stack, _tmp("bonds0b.json"), battery=lambda: (-1, 0))
    try:
        stack.handle_of(0x2A19)
        raise AssertionError("Battery Service registered without a battery reading")
    except KeyError:
        pass
    # a MicroPython without pairing support: no unprotected pipe, a clear error
    stack, _ = _radio()
    stack.no_pairing = True
    try:
        _link(stack, _tmp("bonds0c.json"))
        raise AssertionError("BleLink started without pairing support")
    except RuntimeError as e:
        assert "no BLE pairing support" in str(e)
    assert not sys.modules["aioble.core"]._irq_handlers[:-1]     # only aioble's own handler is left


def test_ble_link_bonded_laptop_talks_in_mtu_chunks_despite_enomem_mp():
    stack, _ = _radio()
    path = _tmp("bonds1.json")
    _bond_file(path, [(1, _ADDR_A, b"LTK-A"), (2, _ADDR_A, b"IRK-A")])
    link = _link(stack, path)
    w = P.FrameWriter()
    g = Lcg(21)
    stack.full = lambda: g.uniform() < -0.2         # 30 % of notifies hit ENOMEM

    async def main():
        app = _Echo(link)
        task = asyncio.create_task(app.run())
        await _until(lambda: stack.advertising)
        a = SimLaptop(stack, _ADDR_A, ltk=b"LTK-A", mtu=185)
        a.connect()
        await _until(lambda: link.trusted)
        hello = b"\x00" + bytes(w.message(P.PING, 1, _noise(600, 2)))
        assert a.write(hello)
        await _until(lambda: len(app.got) == 1)
        await _until(lambda: len(a.rx) >= 600)
        small = SimLaptop(stack, _ADDR_A, ltk=b"LTK-A", mtu=23)
        a.drop()                                        # she walks away ...
        await _until(lambda: stack.advertising)          # ... the trainer advertises again
        small.connect()
        await _until(lambda: link.trusted)
        assert small.write(bytes(w.message(P.PING, 2, b"again" * 40)))
        await _until(lambda: len(app.got) == 2)
        await _until(lambda: len(small.rx) >= 200)
        task.cancel()
        link.stop()
        await _sleep0()
        return app, a, small
    app, a, small = asyncio.run(main())
    assert app.got[0] == bytes(_noise(600, 2)) and app.got[1] == b"again" * 40
    assert [f[2] for f in _decode(bytes(a.rx))] == [bytes(_noise(600, 2))]
    assert max(a.sizes) == 182 and all(s == 182 for s in a.sizes[:-1])     # MTU 185
    assert [f[2] for f in _decode(bytes(small.rx))] == [b"again" * 40]
    assert max(small.sizes) == 20                                          # MTU 23
    assert link.chunker.retries > 0 and link.refusals == 0 and link.ignored == 0
    assert len(stack.adv) >= 2


def test_ble_link_refuses_a_stranger_and_keeps_her_bonds_mp():
    stack, _ = _radio()
    path = _tmp("bonds2.json")
    _bond_file(path, [(10, b"irk", b"OUR-IRK"), (1, _ADDR_A, b"LTK-A"), (2, _ADDR_A, b"IRK-A")])
    before = _read(path)
    link = _link(stack, path)
    w = P.FrameWriter()

    async def main():
        app = _Echo(link)
        task = asyncio.create_task(app.run())
        out = []
        knock = bytes(w.message(P.PING, 1, b"let me in"))
        for laptop in (SimLaptop(stack, _ADDR_B, greet=knock),          # a stranger pairs afresh
                       SimLaptop(stack, _ADDR_A, greet=knock),          # one spoofing her address
                       SimLaptop(stack, _ADDR_D, encrypts=False)):      # one that never encrypts
            await _until(lambda: stack.advertising)
            laptop.connect()
            t0 = _now_ms()
            assert not laptop.write(knock) or laptop.encrypted          # unencrypted: the stack drops it
            try:
                await link.write(bytes(w.message(P.PING, 9, b"secret")))
                out.append("wrote")
            except OSError:
                out.append("refused")
            await _until(lambda: laptop.h is None, 2000)
            out.append(_now_ms() - t0)
        # her own laptop still gets in, with the bond it always had
        await _until(lambda: stack.advertising)
        a = SimLaptop(stack, _ADDR_A, ltk=b"LTK-A")
        a.connect()
        await _until(lambda: link.trusted)
        a.write(bytes(w.message(P.PING, 2, b"me")))
        await _until(lambda: app.got)
        # a factory reset forgets every laptop, her own included
        link.forget_bonds()
        await _until(lambda: a.h is None, 2000)
        task.cancel()
        link.stop()
        await _sleep0()
        return out, app
    out, app = asyncio.run(main())
    assert out[0] == out[2] == out[4] == "refused"
    assert out[1] < 300 and out[3] < 300       # refused pairings: disconnected at once
    assert 350 <= out[5] < 1500                # the silent one: after the grace (400 ms)
    assert link.refusals == 3 and app.got == [b"me"]
    assert link.ignored > 0                    # the strangers' writes went nowhere
    assert link.bonds.get(2, 0, _ADDR_B) is None    # the strangers' keys were never kept
    assert link.bonds.peers() == 0 and link.bonds.get(10, 0, b"irk") == b"OUR-IRK"   # after the reset
    from links.ble_link import Bonds
    saved = Bonds(path)                        # what a reboot reads back
    assert _read(path) != before and saved.peers() == 0 and saved.get(10, 0, b"irk") == b"OUR-IRK"


def test_ble_link_pairing_mode_bonds_one_laptop_that_survives_a_reboot_mp():
    stack, _ = _radio()
    path = _tmp("bonds3.json")
    link = _link(stack, path)
    w = P.FrameWriter()

    async def main():
        app = _Echo(link)
        task = asyncio.create_task(app.run())
        link.pairing(30)                       # the long button press
        await _until(lambda: stack.advertising)
        d = SimLaptop(stack, _ADDR_D)
        d.connect()
        await _until(lambda: link.trusted)
        d.write(bytes(w.message(P.PING, 1, b"new laptop")))
        await _until(lambda: app.got)
        assert not link.pairing_open()         # one laptop per press
        await _until(lambda: not link.bonds.dirty)
        d.drop()
        await _until(lambda: stack.advertising)
        e = SimLaptop(stack, _ADDR_B)          # a second one is refused now
        e.connect()
        await _until(lambda: e.h is None, 2000)
        task.cancel()
        link.stop()
        await _sleep0()
        return d, e
    d, e = asyncio.run(main())
    assert d.store_failed == 0 and e.store_failed == 0 and link.bonded_now == 1
    assert link.bonds.peers() == 1
    # reboot: a new stack and link read the bonds back from flash
    stack, _ = _radio()
    link2 = _link(stack, path)
    assert link2.bonds.get(1, 0, _ADDR_D) == d.ltk

    async def again():
        app = _Echo(link2)
        task = asyncio.create_task(app.run())
        await _until(lambda: stack.advertising)
        d2 = SimLaptop(stack, _ADDR_D, ltk=d.ltk)
        d2.connect()
        await _until(lambda: link2.trusted)
        d2.write(bytes(w.message(P.PING, 3, b"after reboot")))
        await _until(lambda: app.got)
        await _until(lambda: d2.rx)
        task.cancel()
        link2.stop()
        await _sleep0()
        return app, d2
    app, d2 = asyncio.run(again())
    assert app.got == [b"after reboot"] and [f[2] for f in _decode(bytes(d2.rx))] == [b"after reboot"]


def test_ble_link_write_fails_with_oserror_when_the_host_goes_mid_frame_mp():
    stack, _ = _radio()
    path = _tmp("bonds4.json")
    _bond_file(path, [(1, _ADDR_A, b"LTK-A")])
    link = _link(stack, path)

    async def main():
        link.start()
        await _until(lambda: stack.advertising)
        a = SimLaptop(stack, _ADDR_A, ltk=b"LTK-A", mtu=23)
        a.connect()
        await _until(lambda: link.trusted)
        n = [0]

        def full():                            # the stack fills up; then she is gone
            n[0] += 1
            if n[0] == 10:
                a.drop()
            return n[0] > 5
        stack.full = full
        try:
            await link.write(bytes(3000))
            r = "sent"
        except OSError as e:
            r = e.args[0]
        link.stop()
        return r, a
    r, a = asyncio.run(main())
    assert r == 107 and 0 < len(a.rx) < 3000


def test_ble_link_pairing_window_expires_mp():
    stack, _ = _radio()
    path = _tmp("bonds5.json")
    _bond_file(path, [(1, _ADDR_A, b"LTK-A"), (2, _ADDR_A, b"IRK-A")])
    before = _read(path)
    link = _link(stack, path)

    async def main():
        link.start()
        link.pairing(1)
        assert link.pairing_open()
        await _sleep(1100)
        assert not link.pairing_open()
        await _until(lambda: stack.advertising)
        late = SimLaptop(stack, _ADDR_B)
        late.connect()
        await _until(lambda: late.h is None, 2000)
        link.pairing(30)
        link.pairing(0)                        # closed again by the board
        assert not link.pairing_open()
        link.stop()
    asyncio.run(main())
    assert link.refusals == 1 and link.bonded_now == 0 and _read(path) == before
