# What esp32_session.py puts around the firmware: the ESP32 board in virtual
# time (sleeps wait for board time; cues reach the synthetic user), the ADC
# feed from her, and the scripted laptop (over BLE through sim_bluetooth, or
# a plain link) that calibrates, trains and syncs. Its frame reader and
# writer are made once (Host.own: their bytes, taken off the firmware's).
import gc
import json
import struct
import asyncio

_ADDR = b"\x00\x11\x22\x33\x44\x55\x66"        # address type, then 6 bytes


def vboard(base, prof, machine, root, user):
    """An instance of a subclass of `base` (Esp32Board) that sleeps in board time."""

    class V(base):
        def __init__(self):
            base.__init__(self, prof, machine, root)
            self.vt = machine.vtime
            self.tick = asyncio.Event()   # set whenever board time moves
            self.user = user
            self._presses = []
            self._jumped = False
            self.cues = 0
            self.cue_now = "rest"
            self.backlog_max = 0
            self.sleepers = None    # CPU runs: [(end us, Event)], woken when due (wake())
            self.user_cues = True   # False: her input comes off a tape, she needs no cues

        async def sleep_ms(self, ms):
            end = self.vt.now + ms * 1000
            if self.sleepers is not None:
                # woken once, when due: a task asleep costs what an
                # asyncio.sleep_ms costs on the board, not a wake per tick
                if self.vt.now < end:
                    ev = asyncio.Event()
                    self.sleepers.append((end, ev))
                    await ev.wait()
                return
            while self.vt.now < end:
                await self.tick.wait()

        def wake(self):
            sl = self.sleepers
            now = self.vt.now
            i = 0
            while i < len(sl):
                if sl[i][0] <= now:
                    sl.pop(i)[1].set()
                else:
                    i += 1

        async def wait_samples(self):
            await base.wait_samples(self)
            c = self.ring.count()
            if c > self.backlog_max:
                self.backlog_max = c

        def fast_wait(self):
            """CPU runs: the board's own wait_samples, without the backlog
            figure's layer (a coroutine per wake the board does not have)."""
            self.wait_samples = lambda: base.wait_samples(self)

        def cue(self, cue, dur_ms, target):
            base.cue(self, cue, dur_ms, target)     # the LED, buzzer and vibration
            if self.user_cues:
                from simboard.board import SimBoard    # the synthetic user follows it, as on the virtual trainer
                SimBoard.cue(self, cue, dur_ms, target)

        def read_button(self):
            from simboard.board import SimBoard
            return SimBoard.read_button(self)

    return V()


def feeder(machine, prof, user):
    """The sampler's before-hook: her next sample onto the ADC pins (uV)."""
    src = machine._adc_src
    secs = [prof["sensor"]] + ([prof["abdominal"]] if prof.get("abdominal") else [])
    chans = []
    for s in secs:
        if "pin" not in s:
            raise ValueError("the ADC feed needs a sensor on an ADC pin, not %s" % s["driver"])
        mid = s.get("zero_uv", s.get("mid_uv", 1650000))
        chans.append((src[s["pin"]], mid, s.get("uv_per_unit", 1), s.get("counts_per_unit", 1)))
    m = chans[0]
    a = chans[1] if len(chans) > 1 else None

    def before(t):
        x, y = user.step()
        m[0][0] = m[1] + int(x * m[2] / m[3])
        if a is not None:
            a[0][0] = a[1] + int((y or 0) * a[2] / a[3])
    return before


class _PlainLink:
    """The device's side of a wire to the laptop (no BLE)."""

    def __init__(self, host, board):
        self.host = host
        self.board = board

    async def readinto(self, buf):
        h = self.host
        while not h.inbox:
            await self.board.sleep_ms(10)
        data = h.inbox.pop(0)
        buf[:len(data)] = data
        return len(data)

    async def write(self, data):
        self.host.feed(data)


class Host:
    def __init__(self, ble, stack):
        from knip import protocol as P
        self.P = P
        self.ble = ble
        self.stack = stack
        gc.collect()
        m0 = gc.mem_alloc()
        self.rx = P.FrameReader()
        self.w = P.FrameWriter()
        gc.collect()
        self.own = gc.mem_alloc() - m0
        self.inbox = []
        self.seq = 0
        self.central = None
        self.phase = "boot"
        self.finished = False
        self.ended = 0
        self.synced = 0
        self.fetched = 0
        self.errors = 0
        self.error_text = ""
        self.ended_reasons = []    # "id reason" of each session-ended notice
        self.oks = 0
        self.sessions = None
        self.done = None
        self.limit_ms = 0          # > 0: stop the first program after this much board time, no sync
        self.window = None         # (wall us, samples) from the start to the stop of that program
        self.pystone = 0           # > 0: pystone_lowmem with this many passes around the window
        self.prof = None           # esp32_session.Prof, switched on for the window
        self.extra = {}            # more "key value" figures to print

    def link(self, board):
        return _PlainLink(self, board)

    def request(self, mtype, data=b""):
        self.seq = (self.seq + 1) & 0xFF
        frame = bytes(self.w.message(mtype, self.seq, data))
        if self.central is not None:
            self.central.write(frame)
        else:
            self.inbox.append(frame)

    def feed(self, data):
        P = self.P
        rx = self.rx
        pos = 0
        n = len(data)
        while pos < n:
            st, pos = rx.feed(data, pos, n)
            if st != P.R_FRAME:
                continue
            t = rx.mtype
            if t == P.NOTICE and rx.payload[0] == P.N_SESSION_ENDED:
                self.ended += 1
                if len(self.ended_reasons) < 8:
                    self.ended_reasons.append(bytes(rx.payload[1:]).decode())
            elif t == P.SESSIONS:
                # only the ids: the laptop's copy is not the firmware's heap
                self.sessions = [s["id"] for s in json.loads(bytes(rx.payload))]
            elif t == P.DATA:
                self.fetched += rx.plen - 8
            elif t == P.DONE:
                self.done = struct.unpack("<IIII", bytes(rx.payload))
            elif t == P.ERROR:
                self.errors += 1
                self.error_text = bytes(rx.payload[2:82]).decode()
            elif t == P.OK:
                self.oks += 1

    async def _until(self, board, cond, step=10):
        while not cond():
            await board.sleep_ms(step)

    async def script(self, app, board, programs):
        P = self.P
        if self.ble:
            import sim_bluetooth
            board.ble.pairing(60)               # the long press
            await self._until(board, lambda: self.stack.advertising)
            self.central = sim_bluetooth.Central(self.stack, _ADDR, self.feed, mtu=247)
            self.central.connect()
            await self._until(board, lambda: board.ble.trusted)
        self.phase = "hello"
        self.request(P.HELLO, bytes((P.VERSION,)))
        self.request(P.SET_CLOCK, struct.pack("<Q", 1767225600000))
        self.request(P.LIVE, bytes((1, 100, 0)))
        if self.limit_ms:
            import time
            self.phase = programs[0]
            self.request(P.START, programs[0].encode())
            await board.sleep_ms(2000)
            if self.pystone:
                from esp32_session import pystone
                self.extra["pystone_before"] = pystone(self.pystone)
            if self.prof is not None:
                if self.prof.staged:
                    self.prof.stages(app)
                self.prof.on = True
            t0, n0 = time.ticks_us(), app.n
            await board.sleep_ms(self.limit_ms)
            self.window = (time.ticks_diff(time.ticks_us(), t0), app.n - n0)
            if self.prof is not None:
                self.prof.on = False
            if self.pystone:
                self.extra["pystone_after"] = pystone(self.pystone)
            self.request(P.STOP)
            await self._until(board, lambda: self.ended > 0, 100)
            programs = []
        for k, name in enumerate(programs):
            self.phase = name
            self.request(P.START, name.encode())
            await self._until(board, lambda: self.ended > k, 100)
            await board.sleep_ms(500)
        self.phase = "sync"
        self.request(P.LIVE, bytes((0, 100, 0)))
        self.request(P.LIST)
        await self._until(board, lambda: self.sessions is not None)
        for s in (self.sessions if not self.limit_ms else ()):
            self.done = None
            self.request(P.FETCH, struct.pack("<III", s, 0, 0))
            await self._until(board, lambda: self.done is not None)
            sid, _end, size, crc = self.done
            ok = self.oks
            self.request(P.ACK, struct.pack("<III", sid, size, crc))
            await self._until(board, lambda: self.oks > ok or self.errors)
            self.synced += 1
        self.phase = "repl"
        self.request(P.REPL)
        await board.sleep_ms(200)
        self.finished = True
