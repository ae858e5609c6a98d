# The ESP32 sampler: fills the SampleRing (knip/ring.py, docs/BOARD.md) from
# a hardware Timer at rate_hz, or from the sensor's data-ready pin when it
# paces itself (HX710B DOUT, ADS1292R DRDY: falling edge). ESP32 Timer and
# Pin callbacks are soft IRQs: scheduled, run between bytecodes, and dropped
# silently when the scheduler's 8-entry queue is full. So each callback
# measures the time since the previous one and counts the samples that never
# came in ring.missed. After a stall the ESP32 runs the queued timer
# callbacks back to back (the oldest 8 are kept, newer ones dropped), so in
# timer mode a long interval is only settled at the next callback that comes
# half a period or more after the one before, less the queued ticks that
# did arrive. The callback allocates nothing. It wakes the application
# every wake_n samples (10 ms worth at 1 kHz), not every sample: a task
# switch per sample would cost more than the sample's processing.
import time

try:
    from asyncio import ThreadSafeFlag
except ImportError:                 # CPython (tests): a plain flag with the same calls
    ThreadSafeFlag = None

_MASK = 0x3FFFFFFF                  # ticks_us differences modulo 2**30 (its period on the ESP32)
_KICK_HZ = 4                        # data-ready mode: a slow timer rereads a stuck data-ready line
_WAKE_HZ = 100                      # the application is woken at most this often


class _Flag:
    def __init__(self):
        self.state = 0

    def set(self):
        self.state = 1

    def clear(self):
        self.state = 0

    async def wait(self):
        import asyncio
        while not self.state:
            await asyncio.sleep(0.001)
        self.state = 0


class Sampler:
    def __init__(self, ring, main, abd=None, rate_hz=100, clock=None, machine=None, timer_id=0,
                 before=None):
        if machine is None:
            import machine
        self.machine = machine
        self.ring = ring
        self.main = main
        self.abd = abd
        self.rate_hz = rate_hz
        self.period_us = 1000000 // rate_hz
        self._half = self.period_us >> 1
        self._late = self.period_us + self._half        # 1.5 periods
        src = getattr(machine, "vtime", None) or time   # a simulated machine may keep virtual time
        self._clock = clock or src.ticks_ms
        self._us = src.ticks_us
        self._before = before
        self._drdy = getattr(main, "drdy", None)
        self._timer_id = timer_id
        self._tim = None
        self.flag = ThreadSafeFlag() if ThreadSafeFlag is not None else _Flag()
        self.wake_n = rate_hz // _WAKE_HZ if rate_hz > _WAKE_HZ else 1    # samples per wake
        self._quiet = 0             # samples put since the flag was last set
        self.ticks = 0              # samples put (or offered, when the ring was full)
        self.late_max_us = 0        # longest interval between two samples
        self.spurious = 0           # data-ready callbacks that found no new data
        self._last = -1             # ticks_us of the previous sample, -1 = none yet
        self._owed = 0              # periods passed minus callbacks come (timer mode), not yet missed
        self._acc = 0               # us since the last whole period (timer mode)
        self._cb = self._tick       # the bound method, made once
        self.running = False
        self._rx = None             # a driver's raw_reader (the ADC read in C), bound at start
        self._ra = None

    def start(self):
        if self.running:
            return
        m = self.machine
        # Drivers that can convert a run of readings afterwards (counts_run)
        # give the interrupt their bare ADC read: nothing but C in it.
        self._rx = self._raw(self.main)
        self._ra = self._raw(self.abd)
        self._last = -1
        self._owed = 0
        self._acc = 0
        self.running = True
        self._tim = m.Timer(self._timer_id)
        if self._drdy is not None:
            self._drdy.irq(handler=self._cb, trigger=m.Pin.IRQ_FALLING)
            # A conversion already waiting makes no new edge (the HX710B holds
            # DOUT low until read), and a dropped edge would stall it for good:
            # a slow timer rereads the line; the callback skips if nothing waits.
            self._tim.init(mode=m.Timer.PERIODIC, freq=_KICK_HZ, callback=self._cb)
            self._tick(None)
        else:
            self._tim.init(mode=m.Timer.PERIODIC, freq=self.rate_hz, callback=self._cb)

    @staticmethod
    def _raw(d):
        f = getattr(d, "raw_reader", None) if d is not None else None
        return f() if f is not None else None

    def convert(self, start, end):
        """Ring slots start..end (wrapping) hold raw readings from raw
        readers: to counts (call before the samples are used)."""
        ring = self.ring
        for d, r, buf in ((self.main, self._rx, ring.x), (self.abd, self._ra, ring.a)):
            if r is None:
                continue
            if end >= start:
                d.counts_run(buf, start, end - start)
            else:
                d.counts_run(buf, start, ring.size - start)
                d.counts_run(buf, 0, end)

    def stop(self):
        if not self.running:
            return
        self.running = False
        if self._drdy is not None:
            self._drdy.irq(handler=None)
        if self._tim is not None:
            self._tim.deinit()
            self._tim = None

    def _tick(self, _src):
        d = self._drdy
        if d is not None and d.value():
            # no data waiting: an edge from the HX710B's own data bits, the
            # kick timer, or an edge already served
            self.spurious += 1
            return
        now = self._us()
        last = self._last
        self._last = now
        if last >= 0:
            el = (now - last) & _MASK
            if el > self.late_max_us:
                self.late_max_us = el
            if self._drdy is not None:
                # each data-ready edge is a new conversion: a long wait lost some
                if el > self._late:
                    self.ring.missed += (el + self._half) // self.period_us - 1
            else:
                # timer: count the periods that passed against the callbacks
                # that came. Ticks queued during a stall run back to back
                # (less than half a period apart) right after it and pay the
                # debt back; so whatever is still owed when a callback comes
                # at least half a period after the previous one was dropped
                # by the full queue. (Settling only at an interval of about
                # one period is not enough: two stalls in a row can make the
                # first queued tick look on time.)
                owed = self._owed
                if el >= self._half:
                    if owed > 0:
                        self.ring.missed += owed
                    owed = 0
                acc = self._acc + el
                due = acc // self.period_us
                self._acc = acc - due * self.period_us
                owed += due - 1
                self._owed = owed if owed >= -1 else -1
        t = self._clock()
        b = self._before
        if b is not None:
            b(t)
        r = self._rx
        x = r() if r is not None else self.main.read()
        a = 0
        if self.abd is not None:
            r = self._ra
            a = r() if r is not None else self.abd.read()
        self.ring.put(t, x, a)
        self.ticks += 1
        q = self._quiet + 1
        if q >= self.wake_n:
            q = 0
            self.flag.set()
        self._quiet = q

    def flush(self):
        """Add the samples still owed to ring.missed (e.g. before reading it at the end)."""
        if self._owed > 0:
            self.ring.missed += self._owed
            self._owed = 0
