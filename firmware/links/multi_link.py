# Several links as one (USB serial and BLE at once), with the link interface
# of docs/BOARD.md. A pump task per link reads into that link's own
# preallocated buffer; readinto hands the waiting bytes on, one link at a
# time. Replies go to the link whose bytes the reader got last, so a host
# that talks over BLE gets its answers over BLE. Portable (no bluetooth).
#
# Two hosts may talk at once. So that their bytes do not mix inside one
# frame, a link that stopped in the middle of a frame (its last byte was
# not the 0x00 delimiter) keeps the floor for up to hold_ms; if it is still
# silent then, a lone 0x00 ends its half frame (the frame reader drops it as
# bad) and the other link's bytes follow cleanly.
import asyncio
import time
from knip.fixed import const

_PUMP_BUF = const(256)       # per link; the serve task reads 256 at a time too
_HOLD_MS = const(500)        # a BLE host sends a frame within a few intervals

try:
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
except AttributeError:       # CPython
    def _ticks_ms():
        return time.monotonic_ns() // 1000000

    def _ticks_diff(a, b):
        return a - b

try:
    _wait_for_ms = asyncio.wait_for_ms
except AttributeError:       # CPython
    def _wait_for_ms(aw, ms):
        return asyncio.wait_for(aw, ms / 1000)


class MultiLink:
    def __init__(self, *links, hold_ms=_HOLD_MS):
        if not links:
            raise ValueError("MultiLink needs at least one link")
        self.links = links
        self.hold_ms = hold_ms
        self.bufs = [bytearray(_PUMP_BUF) for _ in links]
        self.mvs = [memoryview(b) for b in self.bufs]
        self.n = [0] * len(links)      # bytes in bufs[i]
        self.pos = [0] * len(links)    # next of them to hand on
        self.free = [asyncio.Event() for _ in links]   # set: pump i may read again
        self.ready = asyncio.Event()   # a pump has put bytes in its buffer
        self.cur = 0                   # link the reader got bytes from last; writes go here
        self.mid = False               # cur stopped inside a frame
        self.since = 0                 # ticks_ms of the last hand-on
        self.tasks = None
        self.switches = 0              # times the talking link changed
        self.cut = 0                   # half frames ended by a switch

    @property
    def active(self):
        """The link that spoke last (replies and the live stream go there)."""
        return self.links[self.cur]

    def _start(self):
        self.tasks = [asyncio.create_task(self._pump(i)) for i in range(len(self.links))]

    def stop(self):
        """Cancel the pump tasks (e.g. before returning to the REPL)."""
        for t in self.tasks or ():
            t.cancel()
        self.tasks = None

    async def _pump(self, i):
        link = self.links[i]
        buf = self.bufs[i]
        free = self.free[i]
        while True:
            try:
                n = await link.readinto(buf)
            except Exception:        # a broken link must not stop the others
                await asyncio.sleep(0.1)
                continue
            self.pos[i] = 0
            self.n[i] = n
            self.ready.set()
            await free.wait()        # the reader took all of it
            free.clear()

    def _pick(self):
        """Link to read from, -1 for none waiting, -2 for 'hold: cur is mid-frame'."""
        c = self.cur
        if self.n[c] > self.pos[c]:
            return c
        k = len(self.links)
        for d in range(1, k):
            j = (c + d) % k
            if self.n[j] > self.pos[j]:
                if self.mid and _ticks_diff(_ticks_ms(), self.since) < self.hold_ms:
                    return -2
                return j
        return -1

    async def readinto(self, buf):
        """Wait for bytes on any link; put up to len(buf) into buf; return n >= 1."""
        if self.tasks is None:
            self._start()
        while True:
            self.ready.clear()
            i = self._pick()
            if i >= 0:
                return self._take(i, buf)
            if i == -1:
                await self.ready.wait()
                continue
            left = self.hold_ms - _ticks_diff(_ticks_ms(), self.since)
            try:
                await _wait_for_ms(self.ready.wait(), left if left > 1 else 1)
            except asyncio.TimeoutError:
                pass

    def _take(self, i, buf):
        if i != self.cur:
            self.switches += 1
            self.cur = i
            if self.mid:
                self.mid = False
                self.cut += 1
                buf[0] = 0           # end the other host's half frame
                return 1
        p = self.pos[i]
        k = self.n[i] - p
        if k > len(buf):
            k = len(buf)
        buf[0:k] = self.mvs[i][p:p + k]
        p += k
        self.pos[i] = p
        self.mid = self.bufs[i][p - 1] != 0
        self.since = _ticks_ms()
        if p >= self.n[i]:
            self.free[i].set()
        return k

    async def write(self, data):
        """Send one frame on the link that spoke last (OSError if it fails)."""
        await self.links[self.cur].write(data)
