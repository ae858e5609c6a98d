# Byte link over a stream pair: USB serial (sys.stdin/sys.stdout) on a board,
# a pseudo-terminal in the virtual trainer. Frames from several tasks must
# not interleave, so writes take a lock. baud > 0 paces writes like a UART
# of that speed (the virtual trainer uses it to behave like 115 200 baud).
import sys
import time
import select
import asyncio
from knip.fixed import const

_STALL_MS = const(2000)     # give up on a write the host does not drain


class SerialLink:
    def __init__(self, rx=None, tx=None, baud=0):
        self.rx = rx if rx is not None else sys.stdin.buffer
        self.tx = tx if tx is not None else sys.stdout.buffer
        self.reader = asyncio.StreamReader(self.rx)
        self.poll = select.poll()
        self.poll.register(self.rx, select.POLLIN)
        self.wpoll = select.poll()
        self.wpoll.register(self.tx, select.POLLOUT)
        self.one = bytearray(1)
        self.lock = asyncio.Lock()
        self.byte_us = 10000000 // baud if baud else 0    # start + 8 data + stop bits
        self.free_at = time.ticks_us()
        self.sent = 0
        self.received = 0

    def _ready(self):
        for _, ev in self.poll.ipoll(0):
            return ev & select.POLLIN
        return 0

    async def readinto(self, buf):
        """Wait for at least one byte; return how many were put in buf."""
        while True:
            try:
                first = await self.reader.read(1)
            except OSError:
                first = b""
            if first:
                break
            await asyncio.sleep_ms(100)      # no host on the line (hang-up): wait
        buf[0] = first[0]
        n = 1
        cap = len(buf)
        one = self.one
        while n < cap and self._ready():
            if not self.rx.readinto(one):
                break
            buf[n] = one[0]
            n += 1
        self.received += n
        return n

    async def write(self, data):
        async with self.lock:
            if self.byte_us:
                wait = time.ticks_diff(self.free_at, time.ticks_us())
                if wait > 0:
                    await asyncio.sleep_ms((wait + 999) // 1000)
            waited = 0
            while True:
                ok = 0
                for _, ev in self.wpoll.ipoll(0):
                    ok = ev & select.POLLOUT
                if ok:
                    break
                if waited >= _STALL_MS:
                    raise OSError(11)        # EAGAIN: nobody reads the port
                await asyncio.sleep_ms(10)
                waited += 10
            self.tx.write(data)
            self.sent += len(data)
            if self.byte_us:
                now = time.ticks_us()
                start = self.free_at if time.ticks_diff(self.free_at, now) > 0 else now
                self.free_at = time.ticks_add(start, len(data) * self.byte_us)
