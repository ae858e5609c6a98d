# Heap bytes the firmware application allocates per sample, on MicroPython:
# the real App (chain, live stream, session recording on real littlefs in
# RAM) fed from its ring by a board that produces samples as fast as they
# are processed. gc is disabled; gc.mem_alloc() deltas count every byte.
#   micropython app_heap.py MODE SECONDS     MODE: idle | live | record | session
import gc
import sys
import asyncio
from array import array

from knip.ring import SampleRing
from knip.app import App
from simboard.blockdev import mount
from signals import pressure_track

RATE = 100


class NullLink:
    def __init__(self):
        self.sent = 0

    async def readinto(self, buf):
        await asyncio.sleep_ms(1000000)

    async def write(self, data):
        self.sent += len(data)


class BenchBoard:
    name = "bench"
    device_id = "bench"
    signal = "pressure"
    unit = "cmH2O"
    counts_per_unit = 20
    rate_hz = RATE
    channels = 2
    fs_root = "/lfs/sessions"

    def __init__(self, xs, ts):
        self.ring = SampleRing(512)
        self.link = NullLink()
        self.xs = xs
        self.ts = ts
        self.i = 0
        self.t = 0
        self.done = asyncio.Event()

    def start(self):
        pass

    def stop(self):
        pass

    def ticks_ms(self):
        return self.t

    async def sleep_ms(self, ms):
        end = self.t + ms
        while self.t < end and not self.done.is_set():
            await asyncio.sleep_ms(0)

    async def wait_samples(self):
        # the "sampler": refill the ring with the next 100 samples
        await asyncio.sleep_ms(0)
        if self.i >= len(self.xs):
            self.done.set()
            await asyncio.sleep_ms(1000000)
        ring = self.ring
        n = 0
        while n < 100 and self.i < len(self.xs):
            i = self.i
            ring.put(self.ts[i], self.xs[i], 300)
            self.t = self.ts[i]
            self.i = i + 1
            n += 1

    def cue(self, cue, dur_ms, target):
        pass

    def alert(self, text):
        pass

    def battery(self):
        return -1, -1

    def extra_info(self):
        return {}


def make_app(mode, seconds):
    # the App on a bench board with `seconds` of samples, in MODE
    mount(None, "/lfs")              # littlefs on the ESP32's 2 MiB data partition, in RAM
    n = RATE * seconds
    squeezes = [(3.0 + 8.0 * k, 0.6, 3.0, 0.6, 40, 0) for k in range(seconds // 8)]
    ts, xs, _ = pressure_track(RATE, seconds + 2, squeezes)
    ts = array("i", ts[:n])
    xs = array("i", xs[:n])
    board = BenchBoard(xs, ts)
    app = App(board)
    if mode in ("live", "record"):
        app.stream.samples.start(10)
    if mode in ("record", "session"):       # session: recording, live stream off
        app.start_session("marathon")
    return app, board


async def run(mode, seconds):
    gc.collect()
    app, board = make_app(mode, seconds)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    proc = asyncio.create_task(app.process())
    await board.done.wait()
    after = gc.mem_alloc()
    gc.enable()
    proc.cancel()
    if app.session is not None:
        app.end_session("stopped")
    print("mode", mode, "bytes", after - before, "samples", app.n, "per_sample",
          (after - before) * 100 // max(1, app.n), "/100 link_bytes", board.link.sent)


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], int(sys.argv[2])))
