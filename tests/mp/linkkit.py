# What the link checks (links_checks.py, ble_checks.py) share: sleeps and
# waits that run on CPython and MicroPython, seeded noise, a frame decoder
# and the application's serve loop in miniature.
import sys
import asyncio
import time
from knip import protocol as P
from signals import Lcg

MP = sys.implementation.name == "micropython"


def sleep0():
    return asyncio.sleep_ms(0) if MP else asyncio.sleep(0)


def sleep(ms):
    return asyncio.sleep_ms(ms) if MP else asyncio.sleep(ms / 1000)


def now_ms():
    return time.ticks_ms() if MP else int(time.monotonic() * 1000)


async def until(cond, ms=3000):
    t0 = now_ms()
    while not cond():
        if now_ms() - t0 > ms:
            raise AssertionError("condition not met within %d ms" % ms)
        await sleep(5)


def noise(n, seed):
    g = Lcg(seed)
    b = bytearray(n)
    for i in range(n):
        b[i] = int((g.uniform() + 0.5) * 256) & 0xFF
    return b


def decode(wire):
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


class Echo:
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
