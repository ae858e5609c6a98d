# The byte pipe of a BLE link without the radio: frames out as notifications
# of at most MTU - 3 bytes, bytes in through a ring the write IRQ fills.
# Portable (no bluetooth import), so the unix port and CPython test it.
#
# notify has no queue in MicroPython's bluetooth module: when the stack is
# out of buffers gatts_notify raises OSError(ENOMEM). The chunk is then sent
# again after about one connection interval (15 ms, doubling to 120 ms), so
# no byte is lost or reordered; after 2 s without progress the host is taken
# to be gone and OSError(ENOMEM) propagates (as SerialLink's 2 s stall).
import asyncio
from knip.fixed import const

_ENOMEM = const(12)
_BACKOFF_MS = const(15)      # about one connection interval (7.5-50 ms)
_BACKOFF_MAX_MS = const(120)
_STALL_MS = const(2000)      # give up when no chunk got through for this long

try:
    _sleep_ms = asyncio.sleep_ms
except AttributeError:       # CPython
    def _sleep_ms(ms):
        return asyncio.sleep(ms / 1000)


class Chunker:
    """send(data, payload, notify): cut data into chunks of `payload` bytes
    (MTU - 3) and hand each, in order, to notify(chunk). notify raises
    OSError(ENOMEM) when the stack is full; other OSErrors (disconnected)
    propagate at once. Allocates one memoryview slice per chunk, nothing
    else (plus the coroutine per call)."""

    def __init__(self, sleep_ms=None):
        self.sleep_ms = sleep_ms or _sleep_ms
        self.chunks = 0          # notifications handed to the stack
        self.retries = 0         # chunks sent again after ENOMEM
        self.waited_ms = 0       # time spent backing off

    async def send(self, data, payload, notify):
        mv = memoryview(data)
        n = len(mv)
        if payload < 1:
            payload = 20
        pos = 0
        while pos < n:
            end = pos + payload
            if end > n:
                end = n
            chunk = mv[pos:end]
            back = _BACKOFF_MS
            stalled = 0
            while True:
                try:
                    notify(chunk)
                    break
                except OSError as e:
                    if e.args[0] != _ENOMEM:
                        raise
                    if stalled >= _STALL_MS:
                        raise
                    self.retries += 1
                    await self.sleep_ms(back)
                    stalled += back
                    self.waited_ms += back
                    back *= 2
                    if back > _BACKOFF_MAX_MS:
                        back = _BACKOFF_MAX_MS
            self.chunks += 1
            pos = end


class RxRing:
    """Preallocated byte ring. One producer (the characteristic-written IRQ:
    put), one consumer (readinto: take); no lock, each side moves only its
    own index. Holds size - 1 bytes; what does not fit is counted in `lost`
    (the frame reader's CRC then rejects the damaged frame)."""

    def __init__(self, size=1024):
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.size = size
        self.head = 0            # next byte to write (producer)
        self.tail = 0            # next byte to read (consumer)
        self.lost = 0

    def count(self):
        d = self.head - self.tail
        return d if d >= 0 else d + self.size

    def put(self, data):
        """Copy data in; return how many bytes were stored."""
        n = len(data)
        free = self.size - 1 - self.count()
        if n > free:
            self.lost += n - free
            n = free
        if n <= 0:
            return 0
        h = self.head
        first = self.size - h
        if first >= n and n == len(data):
            self.mv[h:h + n] = data              # the common case: no view needed
        else:
            src = memoryview(data)
            if first > n:
                first = n
            self.mv[h:h + first] = src[0:first]
            if n > first:
                self.mv[0:n - first] = src[first:n]
        h += n
        self.head = h - self.size if h >= self.size else h
        return n

    def take(self, dst):
        """Move up to len(dst) bytes into dst; return how many."""
        n = self.count()
        cap = len(dst)
        if n > cap:
            n = cap
        if n <= 0:
            return 0
        t = self.tail
        first = self.size - t
        if first > n:
            first = n
        dst[0:first] = self.mv[t:t + first]
        if n > first:
            dst[first:n] = self.mv[0:n - first]
        t += n
        self.tail = t - self.size if t >= self.size else t
        return n

    def clear(self):
        self.tail = self.head
