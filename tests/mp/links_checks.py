# Portable checks of the link plumbing (CPython and MicroPython run the same
# bodies): the BLE notify chunker with ENOMEM back-off, the RX ring,
# MultiLink over two simulated links, and their heap use under MicroPython.
# Checks whose names end in _mp need the MicroPython unix port: they measure
# gc.mem_alloc(). BleLink against the simulated radio: ble_checks.py.
import asyncio
from links.chunker import Chunker, RxRing
from links.multi_link import MultiLink
from knip import protocol as P
from signals import Lcg
from linkkit import MP, Echo, decode, noise, now_ms, sleep, sleep0, until

if MP:
    import gc

_ENOMEM = 12


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
    src = noise(3000, 11)
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
    src = noise(3000, 5)
    clock = [0]
    waits = []

    async def vsleep(ms):        # virtual time: the test does not wait for real
        clock[0] += ms
        waits.append(ms)
        await sleep0()

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
        await sleep0()

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
    t0 = now_ms()
    asyncio.run(Chunker().send(b"abc", 20, twice))
    dt = now_ms() - t0
    assert got == b"abc" and 40 <= dt < 1000, dt      # 15 + 30 ms


# ---- RX ring -------------------------------------------------------------------

def test_rx_ring_wraps_keeps_order_and_counts_overflow():
    r = RxRing(64)
    src = noise(5000, 9)
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




def test_multilink_replies_go_to_the_link_that_spoke_last():
    usb, ble = SimLink("usb"), SimLink("ble")
    ml = MultiLink(usb, ble)
    w = P.FrameWriter()

    async def main():
        app = Echo(ml)
        task = asyncio.create_task(app.run())
        usb.feed(b"\x00" + bytes(w.message(P.PING, 1, b"from usb")))
        await until(lambda: len(app.got) == 1)
        wire = b"\x00" + bytes(w.message(P.PING, 2, b"from ble " + b"x" * 300))
        for i in range(0, len(wire), 20):                 # MTU 23 writes
            ble.feed(wire[i:i + 20])
        await until(lambda: len(app.got) == 2)
        usb.feed(bytes(w.message(P.PING, 3, b"usb again")))
        await until(lambda: len(app.got) == 3)
        task.cancel()
        ml.stop()
        await sleep0()
        return app
    app = asyncio.run(main())
    assert [f[2] for f in decode(bytes(usb.out))] == [b"from usb", b"usb again"] and ml.active is usb
    assert [f[2] for f in decode(bytes(ble.out))] == [b"from ble " + b"x" * 300]
    assert app.bad == 0 and ml.switches == 2 and ml.cut == 0


def test_multilink_does_not_mix_two_hosts_inside_a_frame():
    usb, ble = SimLink("usb"), SimLink("ble")
    ml = MultiLink(usb, ble, hold_ms=300)
    w = P.FrameWriter()
    a = bytes(w.message(P.PING, 7, b"A" * 120))
    b = bytes(w.message(P.PING, 8, b"B" * 40))

    async def main():
        app = Echo(ml)
        task = asyncio.create_task(app.run())
        ble.feed(a[:50])                 # BLE host: half a frame ...
        await sleep(20)
        usb.feed(b)                      # ... USB host: a whole one meanwhile
        await sleep(60)
        ble.feed(a[50:])                 # ... BLE completes within the hold
        await until(lambda: len(app.got) == 2)
        # now BLE stops in the middle of a frame for good
        ble.feed(a[:30])
        await sleep(20)
        usb.feed(b)
        await until(lambda: len(app.got) == 3, 2000)
        task.cancel()
        ml.stop()
        await sleep0()
        return app
    app = asyncio.run(main())
    assert app.got[:2] == [b"A" * 120, b"B" * 40] and app.got[2] == b"B" * 40
    assert [f[2] for f in decode(bytes(ble.out))] == [b"A" * 120]
    assert [f[2] for f in decode(bytes(usb.out))] == [b"B" * 40, b"B" * 40]
    assert ml.cut == 1 and app.bad == 1      # the abandoned half frame, dropped as bad


def test_multilink_write_raises_oserror_of_the_current_link():
    usb, ble = SimLink("usb"), SimLink("ble")
    ml = MultiLink(usb, ble)
    w = P.FrameWriter()

    async def main():
        app = Echo(ml)
        task = asyncio.create_task(app.run())
        ble.fail = True                  # the BLE host went away
        ble.feed(bytes(w.message(P.PING, 1, b"q")))
        await until(lambda: len(app.got) == 2)
        usb.feed(bytes(w.message(P.PING, 2, b"r")))
        await until(lambda: len(app.got) == 3)
        task.cancel()
        ml.stop()
        await sleep0()
        return app
    app = asyncio.run(main())
    assert app.got == [b"q", b"write failed 11", b"r"]
    assert [f[2] for f in decode(bytes(usb.out))] == [b"r"] and ble.out == b""


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
    frame = noise(3000, 3)
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
        data = noise(size, 8)

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
