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
# every wake_n samples (30 ms worth at 1 kHz), not every sample: a task
# switch per sample would cost more than the sample's processing, and each
# wake has its fixed cost (at 100 Hz and below it is woken for every sample).
import time
from array import array

try:
    import micropython
except ImportError:                 # CPython (tests): the kernels' stand-ins
    from knip.kernels import micropython, ptr32
from knip.kernels import SX

try:
    from asyncio import ThreadSafeFlag
except ImportError:                 # CPython (tests): a plain flag with the same calls
    ThreadSafeFlag = None

_KICK_HZ = 4                        # data-ready mode: a slow timer rereads a stuck data-ready line
_WAKE_MS = 30                       # at high rates the application is woken this often
_BATCH_FROM_HZ = 500                # ... from this rate up


# The callback's running state (int32 array, _timing below): kept in one
# array, not attributes, so the interrupt does little but C.
_S_LAST = 0          # ticks_us of the previous sample, -1 = none yet
_S_LATE_MAX = 1      # longest interval between two samples (us)
_S_OWED = 2          # periods passed minus callbacks come (timer mode), not yet missed
_S_ACC = 3           # us since the last whole period (timer mode)
_S_TICKS = 4         # samples put (or offered, when the ring was full)
_S_QUIET = 5         # samples put since the flag was last set
_S_PERIOD = 6
_S_HALF = 7
_S_LATE = 8          # 1.5 periods: a data-ready wait this long lost samples
_S_WAKE_N = 9
_S_DRDY = 10         # 1: data-ready mode, 0: timer
_S_MISSED = 11       # missed samples found, for the caller to add to ring.missed
_S_SX = 12
_S_LEN = 13


@micropython.viper
def _timing(st: ptr32, now: int) -> int:
    """One sample came at `now` (ticks_us): the interval and missed-sample
    bookkeeping described at the top; 1 when the application is due a wake."""
    sx = st[12]
    last = (st[0] << sx) >> sx
    st[0] = now
    if last >= 0:
        el = (now - last) & 0x3FFFFFFF        # ticks_us wraps at 2**30 on the ESP32
        if el > st[1]:
            st[1] = el
        per = st[6]
        if st[10]:
            # each data-ready edge is a new conversion: a long wait lost some
            if el > st[8]:
                q = 0
                v = el + st[7]
                while v >= per:
                    v -= per
                    q += 1
                st[11] = st[11] + q - 1
        else:
            # timer: count the periods that passed against the callbacks
            # that came. Ticks queued during a stall run back to back (less
            # than half a period apart) right after it and pay the debt
            # back; so whatever is still owed when a callback comes at least
            # half a period after the previous one was dropped by the full
            # queue. (Settling only at an interval of about one period is
            # not enough: two stalls in a row can make the first queued tick
            # look on time.)
            owed = (st[2] << sx) >> sx
            if el >= st[7]:
                if owed > 0:
                    st[11] = st[11] + owed
                owed = 0
            acc = st[3] + el
            due = 0
            while acc >= per:
                acc -= per
                due += 1
            st[3] = acc
            owed += due - 1
            if owed < -1:
                owed = -1
            st[2] = owed
    st[4] = st[4] + 1
    q = st[5] + 1
    if q >= st[9]:
        st[5] = 0
        return 1
    st[5] = q
    return 0


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
        src = getattr(machine, "vtime", None) or time   # a simulated machine may keep virtual time
        self._clock = clock or src.ticks_ms
        self._us = src.ticks_us
        self._before = before
        self._drdy = getattr(main, "drdy", None)
        self._timer_id = timer_id
        self._tim = None
        self.flag = ThreadSafeFlag() if ThreadSafeFlag is not None else _Flag()
        # samples per wake: raw EMG rates wake it every 30 ms (a multiple of
        # the 10 ms envelope block: runs stay whole); slower ones every
        # sample (the pressure events' latency keeps its margin)
        self.wake_n = rate_hz * _WAKE_MS // 1000 if rate_hz >= _BATCH_FROM_HZ else 1
        self.spurious = 0           # data-ready callbacks that found no new data
        st = array("i", bytes(4 * _S_LEN))
        st[_S_LAST] = -1
        st[_S_PERIOD] = self.period_us
        st[_S_HALF] = self.period_us >> 1
        st[_S_LATE] = self.period_us + (self.period_us >> 1)        # 1.5 periods
        st[_S_WAKE_N] = self.wake_n
        st[_S_DRDY] = 1 if self._drdy is not None else 0
        st[_S_SX] = SX
        self._st = st
        self._cb = self._tick       # the bound method, made once
        self.running = False
        self._rx = None             # a driver's raw_reader (the ADC read in C), bound at start
        self._ra = None

    def start(self):
        if self.running:
            return
        m = self.machine
        st = self._st
        st[_S_LAST] = -1
        st[_S_OWED] = 0
        st[_S_ACC] = 0
        # Drivers that can convert a run of readings afterwards (counts_run)
        # give the interrupt their bare ADC read: nothing but C in it.
        self._rx = self._raw(self.main)
        self._ra = self._raw(self.abd)
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
        if self._rx is not None:
            self._convert(self.main, ring.x, start, end)
        if self._ra is not None:
            self._convert(self.abd, ring.a, start, end)

    def _convert(self, d, buf, start, end):
        if end >= start:
            d.counts_run(buf, start, end - start)
        else:
            d.counts_run(buf, start, self.ring.size - start)
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

    @property
    def ticks(self):
        """Samples put (or offered, when the ring was full)."""
        return self._st[_S_TICKS]

    @property
    def late_max_us(self):
        """The longest interval between two samples."""
        return self._st[_S_LATE_MAX]

    def _tick(self, _src):
        d = self._drdy
        if d is not None and d.value():
            # no data waiting: an edge from the HX710B's own data bits, the
            # kick timer, or an edge already served
            self.spurious += 1
            return
        now = self._us()
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
        ring = self.ring
        ring.put(t, x, a)
        st = self._st
        wake = _timing(st, now)
        if st[_S_MISSED]:
            ring.missed += st[_S_MISSED]
            st[_S_MISSED] = 0
        if wake:
            self.flag.set()

    def flush(self):
        """Add the samples still owed to ring.missed (e.g. before reading it at the end)."""
        st = self._st
        if st[_S_OWED] > 0:
            self.ring.missed += st[_S_OWED]
            st[_S_OWED] = 0
