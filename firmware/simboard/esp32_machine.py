"""The simulated ESP32 `machine`: one module for the virtual trainer
(simboard/esp32_main.py runs firmware/espboard on it) and for the chip,
driver and board tests (tests/mp), under the MicroPython unix port, whose
built-in `machine` cannot be replaced, and CPython. Pass the module itself
where firmware takes `machine`.

The clock is chosen by fresh():
    sim = esp32_machine.fresh()               # virtual time (the tests)
    sim = esp32_machine.fresh(virtual=False)  # the wall clock (the trainer)
* Virtual (`sim.vtime`, simboard/vclock.py): time moves only when the test
  sleeps or calls vtime.advance_us(); chip events and timer alarms then run
  in time order. Drivers and the sampler wait through it (drivers.clock), so
  a test is decided by simulated time, never by how fast the host is.
* Wall (`sim.vtime` is None, as after import): `time` and asyncio; a Timer
  is an asyncio task that queues the alarms due by now.
Either way Timer alarms and Pin edges are soft IRQs as on the ESP32 port:
queued in 8 slots (simboard/softirq.py; full = dropped, `sched.dropped`)
and run after the current Python code returns. Edges while disable_irq() is
in force latch and raise one interrupt at enable_irq(). Virtual time also
has stall_us(n) (Python busy: the queue fills) and irq_off_us(n) (a flash
write: a timer alarm raised meanwhile is delivered once, afterwards).

Modelled: Pin (levels, pulls, edges; press()/release() a button), ADC
(read_uv with the ESP32's calibrated dead zone near 0 V and flattening near
full scale per attenuation; the level set by set_adc/set_adc_wave, or a DAC
wired to the pin), DAC, PWM, Timer, I2C/SPI (simboard/esp32_buses.py, for
the chip models of simboard/chips.py). Hot paths allocate nothing, so
gc.mem_alloc() measures the firmware alone.
"""
import sys
import time

from simboard import const
from simboard.softirq import SoftIrq
from simboard.vclock import VClock, NEVER
from simboard import esp32_buses
from simboard.esp32_buses import I2C, SoftI2C, SPI, SoftSPI  # noqa: F401  (machine's API)

_UV_PER_CODE = const(12941)      # 8-bit DAC, 0-3.3 V: 3300000 // 255
_LATE_US = const(500)            # wall Timer: an alarm this close is due now

sched = SoftIrq()
vtime = None                     # a VClock, or None: the wall clock
irq_nesting = 0
timers = {}                      # id -> Timer
_lines = {}                      # pin -> _Line
_irq_lines = []                  # lines that have had an IRQ handler
_adc_src = {}                    # pin -> [uv, wave or None, index, noise, seed, DAC pin or -1]
_dac = {}                        # DAC pin -> code


def fresh(virtual=True):
    """Clear every pin, chip, bus, timer and queued callback and restart the
    clock: virtual time from 0, or the wall clock. Returns this module."""
    global vtime, irq_nesting
    for t in list(timers.values()):
        t.deinit()
    timers.clear()
    sched.clear()
    vtime = VClock(sched) if virtual else None
    _cpu_hz[0] = 160000000
    irq_nesting = 0
    _lines.clear()
    del _irq_lines[:]
    _adc_src.clear()
    _dac.clear()
    esp32_buses.clear()
    # the drivers remember which pins took which I2C bus; start clean
    drv = sys.modules.get("drivers")
    if drv is not None and hasattr(drv, "_i2c_ids"):
        drv._i2c_ids.clear()
    return sys.modules[__name__]


_cpu_hz = [160000000]           # the ESP32 port's default


def freq(hz=None):
    if hz is None:
        return _cpu_hz[0]
    if hz not in (20000000, 40000000, 80000000, 160000000, 240000000):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    _cpu_hz[0] = hz


def unique_id():
    return b"\x5e\x1f\x00\x00\x0a\x01"


def reset():
    # the board restarts: here the process ends, as power does
    raise SystemExit(3)


def _settle():
    # the world changed a pin while the firmware idles: its IRQ runs now
    if vtime is None or not vtime.busy:
        sched.run()


def virtual_time():
    """The VClock (chip models and stalls need it): fresh(), not fresh(virtual=False)."""
    if vtime is None:
        raise RuntimeError("needs virtual time: esp32_machine.fresh()")
    return vtime


# ---------------------------------------------------------------- IRQs ----

def disable_irq():
    global irq_nesting
    irq_nesting += 1
    return 1


def enable_irq(state=1):
    """Interrupts back on: a pin edge that came while they were off was
    latched in the GPIO status register and raises its interrupt once now."""
    global irq_nesting
    irq_nesting -= 1
    if irq_nesting == 0:
        for ln in _irq_lines:
            if ln.latched:
                ln.latched = False
                if ln.handler is not None:
                    sched.schedule(ln.handler, ln.pin)


def stall_us(n):
    """Python busy in C for n us (GC, a long write): IRQs queue, then drain."""
    vt = virtual_time()
    vt.busy += 1
    vt.advance_us(n)
    vt.busy -= 1
    sched.run()


def irq_off_us(n):
    """Interrupts masked for n us (flash erase/program): alarms latch once."""
    vt = virtual_time()
    vt.masked += 1
    vt.busy += 1
    vt.advance_us(n)
    vt.masked -= 1
    vt.busy -= 1
    for t in vt.clocked:
        if isinstance(t, Timer) and t.latched:
            t.latched = False
            sched.schedule(t.callback, t)
    sched.run()


# ---------------------------------------------------------------- pins ----

class _Line:
    """One GPIO: who drives it and what it reads."""

    def __init__(self, n):
        self.n = n
        self.mode = -1
        self.pull = -1
        self.out = 0              # MCU output latch
        self.ext = -1             # level driven from outside (-1 = not driven)
        self.last = self.level()
        self.listeners = []       # chip models told of every level change
        self.handler = None
        self.trigger = 0
        self.pin = None           # Pin object passed to the handler
        self.latched = False      # an edge while interrupts were disabled

    def level(self):
        if self.mode == Pin.OUT:
            return self.out
        if self.mode == Pin.OPEN_DRAIN and self.out == 0:
            return 0
        if self.ext >= 0:
            return self.ext
        return 1 if self.pull == Pin.PULL_UP else 0

    def changed(self):
        v = self.level()
        old = self.last
        if v == old:
            return
        self.last = v
        for fn in self.listeners:
            fn(v)
        h = self.handler
        if h is not None:
            if (old and not v and self.trigger & Pin.IRQ_FALLING) or \
                    (v and not old and self.trigger & Pin.IRQ_RISING):
                if irq_nesting:
                    self.latched = True
                else:
                    sched.schedule(h, self.pin)

    def drive(self, v):
        """A chip (or the test) drives the line; -1 releases it."""
        self.ext = v
        self.changed()


def line(n):
    ln = _lines.get(n)
    if ln is None:
        ln = _lines[n] = _Line(n)
    return ln


def press(pin):
    """Hold GPIO `pin` low from outside (a pressed button)."""
    line(pin).drive(0)
    _settle()


def release(pin):
    line(pin).drive(-1)
    _settle()


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_DOWN = 1
    PULL_UP = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, n, mode=-1, pull=-1, value=None):
        self.n = n
        self._l = line(n)
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        ln = self._l
        if value is not None:
            ln.out = 1 if value else 0
        if mode != -1:
            ln.mode = mode
        if pull != -1:
            ln.pull = pull
        ln.changed()

    def value(self, v=None):
        ln = self._l
        if v is None:
            return ln.level()
        ln.out = 1 if v else 0
        ln.changed()

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        ln = self._l
        ln.out = 1
        ln.changed()

    def off(self):
        ln = self._l
        ln.out = 0
        ln.changed()

    def irq(self, handler=None, trigger=3, hard=False):
        ln = self._l
        ln.handler = handler
        ln.trigger = trigger
        ln.pin = self
        ln.latched = False
        if ln not in _irq_lines:
            _irq_lines.append(ln)
        return self

    def mode(self):
        return self._l.mode


# ------------------------------------------------------------ ADC, DAC ----

# atten constant -> (lowest read_uv: the dead zone near 0 V, highest read_uv)
_ADC_RANGE = ((75000, 1100000), (80000, 1450000), (120000, 2200000), (142000, 3160000))


def set_adc(pin, uv, noise=0):
    """The voltage at an ADC pin (uV), with +-noise uV of deterministic noise."""
    _adc_src[pin] = [uv, None, 0, noise, 12345 + pin, -1]


def set_adc_wave(pin, wave, noise=0):
    """A waveform (array('i') of uV) read cyclically, one value per read."""
    _adc_src[pin] = [0, wave, 0, noise, 12345 + pin, -1]


def wire(pin, dac_pin, noise=0):
    """A DAC drives the ADC pin (through a low-pass that settles between
    reads, as the HIL rig's 1 kOhm / 100 nF does)."""
    _adc_src[pin] = [0, None, 0, noise, 12345 + pin, dac_pin]


def wired(pin):
    """The DAC pin wired to ADC `pin`, or None."""
    s = _adc_src.get(pin)
    return s[5] if s is not None and s[5] >= 0 else None


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3

    def __init__(self, pin, atten=0):      # the ESP32's default is 0 dB (~1 V full scale)
        self.n = pin.n if isinstance(pin, Pin) else pin
        self._atten = atten
        self.reads = 0

    def atten(self, a=None):
        if a is None:
            return self._atten
        self._atten = a

    def read_uv(self):
        self.reads += 1
        s = _adc_src.get(self.n)
        if s is None:
            uv = 0                         # nothing wired: the pin is pulled to 0 V
        else:
            w = s[1]
            if s[5] >= 0:
                uv = _dac.get(s[5], 0) * _UV_PER_CODE
            elif w is None:
                uv = s[0]
            else:
                i = s[2]
                uv = w[i]
                i += 1
                s[2] = 0 if i == len(w) else i
            nz = s[3]
            if nz:
                r = (s[4] * 1103515245 + 12345) & 0x3FFFFFFF
                s[4] = r
                uv += (r >> 8) % (2 * nz + 1) - nz
        lo, hi = _ADC_RANGE[self._atten]
        return lo if uv < lo else (hi if uv > hi else uv)

    def read_u16(self):
        lo, hi = _ADC_RANGE[self._atten]
        return (self.read_uv() - lo) * 65535 // (hi - lo)


class DAC:
    def __init__(self, pin):
        self.pin = pin.n
        _dac[self.pin] = 0

    def write(self, code):
        _dac[self.pin] = code


class PWM:
    def __init__(self, pin, freq=1000, duty_u16=0):
        self.pin = pin.n
        self._f = freq
        self._d = duty_u16

    def freq(self, f=None):
        if f is None:
            return self._f
        self._f = f

    def duty_u16(self, d=None):
        if d is None:
            return self._d
        self._d = d


# --------------------------------------------------------------- Timer ----

class Timer:
    """A hardware timer: an alarm every period, delivered as a scheduled
    (soft) callback; in virtual time or, on the wall clock, from an asyncio
    task. fire() delivers one alarm by hand."""
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, tid, **kw):
        self.id = tid
        self.due = NEVER
        self.callback = None
        self.period_us = 0
        self.alarms = 0
        self.latched = False
        self._task = None
        timers[tid] = self
        if kw:
            self.init(**kw)

    def init(self, mode=1, freq=None, period=None, callback=None, hard=False):
        if hard:
            raise ValueError("hard Timers are not implemented")      # as on the ESP32 port
        self.deinit()
        self.mode = mode
        self.period_us = 1000000 // freq if freq is not None else period * 1000
        self.callback = callback
        if vtime is None:
            import asyncio
            self._task = asyncio.create_task(self._wall())
        else:
            self.due = vtime.now + self.period_us
            vtime.add(self)

    def deinit(self):
        self.due = NEVER
        self.callback = None
        if vtime is not None:
            vtime.remove(self)
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def event(self):
        # virtual time: the alarm fell due
        self.due = self.due + self.period_us if self.mode == Timer.PERIODIC else NEVER
        self._alarm()

    def _alarm(self):
        self.alarms += 1
        cb = self.callback
        if cb is None:
            return
        if vtime is not None and vtime.masked:
            self.latched = True
        else:
            sched.schedule(cb, self)

    async def _wall(self):
        # Alarms due by now are queued at once: the ESP32 runs late soft-IRQ
        # callbacks back to back and drops those beyond the 8 slots.
        import asyncio
        p = self.period_us
        due = time.ticks_add(time.ticks_us(), p)
        while True:
            wait = time.ticks_diff(due, time.ticks_us())
            if wait > _LATE_US:
                await asyncio.sleep_ms(wait // 1000 or 1)
                continue
            if self.mode != Timer.PERIODIC:
                self._task = None
                self._alarm()
                sched.run()
                return
            n = -wait // p + 1 if wait <= 0 else 1      # alarms due by now
            for _ in range(n):
                self._alarm()
            due = time.ticks_add(due, n * p)
            sched.run()

    def fire(self):
        """One alarm now, by hand (the clock does not move)."""
        if self.callback is not None:
            sched.schedule(self.callback, self)
            sched.run()
