"""A simulated ESP32 `machine` for the driver tests (CPython and the
MicroPython unix port, whose built-in `machine` cannot be replaced).

Pass the module itself where firmware takes `machine`:
    sim = machine_sim.fresh()             # clears all state, returns the module
    hx = sim.HX710BModel(dout=19, sck=18) # a chip on those pins
    drv = open_sensor(cfg, 40, sim)

What is simulated, and how faithfully:
* Virtual time (`sim.vtime`): ticks_ms/us and sleep_ms/us. Drivers wait
  through it (drivers.clock), so waiting costs no real time and is
  deterministic. Sleeping or `vtime.advance_us()` runs the chip models'
  events (conversions, data-ready edges) and the hardware timers in time
  order, then the scheduled callbacks.
* Soft IRQs as on the ESP32 port: Timer alarms and Pin edges are *scheduled*
  into an 8-entry queue (full = dropped silently, counted in `sched_dropped`)
  and run after the current Python code returns, never inside it. Pin edges
  while `disable_irq()` is in force latch and raise one interrupt at
  `enable_irq()`, as the GPIO interrupt status does.
  `stall_us(n)` lets time pass while Python is busy (the queue fills);
  `irq_off_us(n)` lets time pass with interrupts masked (flash writes): a
  timer alarm raised then is delivered once, afterwards.
* Pin (levels, pulls, edges), ADC (read_uv with the ESP32's calibrated dead
  zone near 0 V and flattening near full scale per attenuation; the level is
  set by the test), Timer, I2C/SoftI2C, SPI/SoftSPI.
* Chip models are *behavioural models written from the datasheets*, not the
  chips: HX710B (SCK-driven shifting, pulse count -> next rate, power-down
  when SCK stays high > 60 us), Honeywell MPRLS (command, busy/EOC, status
  bits, 10-90 % transfer function, NACK when absent), TI ADS1292R
  (power-up in RDATAC, SDATAC/RREG/WREG/START/RDATAC, ID 0x73, CONFIG1 rate,
  CHnSET gain, DRDY, 72-bit frames, garbled data in the wrong SPI mode),
  MPU-6050 and LSM6DS3 accelerometers (WHO_AM_I, sleep/power-down, data
  registers). They check what a driver does wrong that the datasheet
  forbids; they cannot show analog or timing behaviour of real parts.
Hot paths (pin writes/reads, ADC, I2C/SPI transfers, events) allocate
nothing, so gc.mem_alloc() measures the driver and the sampler alone.
"""
from array import array

_MASK = 0x3FFFFFFF
_NEVER = 1 << 60
_QLEN = 8                    # the ESP32 port's scheduler queue depth
_ENODEV = 19


# ---------------------------------------------------------------- time ----

class VTime:
    """Virtual ESP32 time (the `time` functions drivers use)."""

    def __init__(self):
        self.now = 0                  # microseconds since fresh()
        self.busy = 0                 # > 0: Python is busy, scheduled callbacks wait
        self.masked = 0               # > 0: interrupts masked, alarms only latch

    def ticks_us(self):
        return self.now & _MASK

    def ticks_ms(self):
        return (self.now // 1000) & _MASK

    def ticks_diff(self, a, b):
        d = (a - b) & _MASK
        return d - (_MASK + 1) if d > (_MASK >> 1) else d

    def ticks_add(self, a, b):
        return (a + b) & _MASK

    def sleep_us(self, n):
        self.advance_us(n)

    def sleep_ms(self, n):
        self.advance_us(n * 1000)

    def jump_us(self, n):
        """Move the clock with nothing happening in between (the world paused:
        chips and timers resume where they were)."""
        self.now += n
        for m in _clocked:
            if m.due < _NEVER:
                m.due += n

    def advance_us(self, n):
        """Let n us pass: chip events and timer alarms in time order, each
        followed (unless Python is busy) by the scheduled callbacks."""
        end = self.now + n
        while True:
            best = end
            who = None
            for m in _clocked:
                d = m.due
                if d <= best:
                    best = d
                    who = m
            if who is None:
                break
            if best > self.now:
                self.now = best
            who.event()
            if not self.busy:
                run_pending()
        self.now = end
        if not self.busy:
            run_pending()


vtime = VTime()
_clocked = []                 # models and timers with a `due` time and an event()
_q_fn = [None] * _QLEN
_q_arg = [None] * _QLEN
_q = [0, 0, False]            # head, count, running
sched_dropped = 0
irq_nesting = 0


def schedule(fn, arg):
    """What mp_sched_schedule does: queue, or drop when the 8 slots are full."""
    global sched_dropped
    if _q[1] >= _QLEN:
        sched_dropped += 1
        return False
    i = (_q[0] + _q[1]) % _QLEN
    _q_fn[i] = fn
    _q_arg[i] = arg
    _q[1] += 1
    return True


def run_pending():
    if _q[2]:
        return                # already draining (a callback slept)
    _q[2] = True
    while _q[1]:
        i = _q[0]
        fn = _q_fn[i]
        arg = _q_arg[i]
        _q_fn[i] = None
        _q_arg[i] = None
        _q[0] = (i + 1) % _QLEN
        _q[1] -= 1
        fn(arg)
    _q[2] = False


def stall_us(n):
    """Python busy in C for n us (GC, a long write): IRQs queue, then drain."""
    vtime.busy += 1
    vtime.advance_us(n)
    vtime.busy -= 1
    run_pending()


def irq_off_us(n):
    """Interrupts masked for n us (flash erase/program): alarms latch once."""
    vtime.masked += 1
    vtime.busy += 1
    vtime.advance_us(n)
    vtime.masked -= 1
    vtime.busy -= 1
    for m in _clocked:
        if isinstance(m, Timer) and m.latched:
            m.latched = False
            schedule(m.callback, m)
    run_pending()


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
                    schedule(ln.handler, ln.pin)


def unique_id():
    return b"\x5e\x1f\x00\x00\x0a\x02"


def fresh():
    """Clear every pin, device, timer and the clock; returns this module."""
    global sched_dropped, irq_nesting
    import sys
    vtime.__init__()
    _clocked.clear()
    _lines.clear()
    _irq_lines.clear()
    _adc_src.clear()
    _i2c_devs.clear()
    _spi_devs.clear()
    timers.clear()
    _q[0] = _q[1] = 0
    _q[2] = False
    for i in range(_QLEN):
        _q_fn[i] = _q_arg[i] = None
    sched_dropped = 0
    irq_nesting = 0
    # the drivers remember which pins took which I2C bus; start clean
    drv = sys.modules.get("drivers")
    if drv is not None and hasattr(drv, "_i2c_ids"):
        drv._i2c_ids.clear()
    return sys.modules[__name__]


# ---------------------------------------------------------------- pins ----

class _Line:
    """One GPIO: who drives it and what it reads."""

    def __init__(self, n):
        self.n = n
        self.mode = -1
        self.pull = -1
        self.out = 0              # MCU output latch
        self.ext = -1             # level driven by a chip (-1 = not driven)
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
                    schedule(h, self.pin)

    def drive(self, v):
        """A chip drives the line (-1 releases it)."""
        self.ext = v
        self.changed()


_lines = {}
_irq_lines = []               # lines that have had an IRQ handler


def line(n):
    ln = _lines.get(n)
    if ln is None:
        ln = _lines[n] = _Line(n)
    return ln


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


# ----------------------------------------------------------------- ADC ----

_adc_src = {}                 # pin -> [uv or -1, wave array or None, index, noise, seed]
# atten constant -> (lowest read_uv: the dead zone near 0 V, highest read_uv)
_ADC_RANGE = ((75000, 1100000), (80000, 1450000), (120000, 2200000), (142000, 3160000))


def set_adc(pin, uv, noise=0):
    """The voltage at an ADC pin (uV), with +-noise uV of deterministic noise."""
    _adc_src[pin] = [uv, None, 0, noise, 12345 + pin]


def set_adc_wave(pin, wave, noise=0):
    """A waveform (array('i') of uV) read cyclically, one value per read."""
    _adc_src[pin] = [0, wave, 0, noise, 12345 + pin]


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
            if w is None:
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


# --------------------------------------------------------------- Timer ----

timers = {}


class Timer:
    """A hardware timer: alarms every period of virtual time, delivered as
    scheduled (soft) callbacks. fire() delivers one alarm by hand."""
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, tid, **kw):
        self.id = tid
        self.due = _NEVER
        self.callback = None
        self.period_us = 0
        self.alarms = 0
        self.latched = False
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
        self.due = vtime.now + self.period_us
        if self not in _clocked:
            _clocked.append(self)

    def deinit(self):
        self.due = _NEVER
        self.callback = None
        if self in _clocked:
            _clocked.remove(self)

    def event(self):
        self.alarms += 1
        cb = self.callback
        self.due = self.due + self.period_us if self.mode == Timer.PERIODIC else _NEVER
        if cb is None:
            return
        if vtime.masked:
            self.latched = True
        else:
            schedule(cb, self)

    def fire(self):
        """One alarm now, by hand (the clock does not move)."""
        if self.callback is not None:
            schedule(self.callback, self)
            run_pending()


# ----------------------------------------------------------------- I2C ----

_i2c_devs = {}                # (scl, sda) -> {addr: model}


class I2C:
    def __init__(self, bus_id=0, scl=None, sda=None, freq=400000, timeout=50000):
        self.id = bus_id
        self.scl = scl.n if isinstance(scl, Pin) else scl
        self.sda = sda.n if isinstance(sda, Pin) else sda
        self.freq = freq
        key = (self.scl, self.sda)
        d = _i2c_devs.get(key)
        if d is None:
            d = _i2c_devs[key] = {}
        self._devs = d

    def _dev(self, addr):
        m = self._devs.get(addr)
        if m is None or not m.present:
            raise OSError(_ENODEV)         # NACK on the address byte
        return m

    def scan(self):
        return sorted(a for a, m in self._devs.items() if m.present)

    def writeto(self, addr, buf, stop=True):
        self._dev(addr).write(buf)
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        self._dev(addr).read_into(buf)

    def readfrom(self, addr, n, stop=True):
        b = bytearray(n)
        self.readfrom_into(addr, b)
        return bytes(b)

    def writeto_mem(self, addr, reg, buf, addrsize=8):
        self._dev(addr).mem_write(reg, buf)

    def readfrom_mem_into(self, addr, reg, buf, addrsize=8):
        self._dev(addr).mem_read(reg, buf)

    def readfrom_mem(self, addr, reg, n, addrsize=8):
        b = bytearray(n)
        self.readfrom_mem_into(addr, reg, b)
        return bytes(b)


class SoftI2C(I2C):
    def __init__(self, scl, sda, freq=400000, timeout=50000):
        I2C.__init__(self, -1, scl, sda, freq, timeout)


class _I2CModel:
    present = True

    def attach(self, scl, sda, addr):
        key = (scl, sda)
        d = _i2c_devs.get(key)
        if d is None:
            d = _i2c_devs[key] = {}
        d[addr] = self


# ---------------------------------------------------------------- SPI -----

_spi_devs = {}                # sck pin -> [models]


class SPI:
    MSB = 0
    LSB = 1

    def __init__(self, bus_id=2, baudrate=1000000, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=None, mosi=None, miso=None):
        self.id = bus_id
        self.baudrate = baudrate
        self.polarity = polarity
        self.phase = phase
        self.sck = sck.n if isinstance(sck, Pin) else sck
        self.mosi = mosi.n if isinstance(mosi, Pin) else mosi
        self.miso = miso.n if isinstance(miso, Pin) else miso
        d = _spi_devs.get(self.sck)
        if d is None:
            d = _spi_devs[self.sck] = []
        self._devs = d

    def _xfer(self, b):
        out = 0xFF                          # MISO idles high with nobody driving it
        for m in self._devs:
            if m.selected():
                # a chip whose DIN is not on our MOSI pin sees a low line
                r = m.xfer(b if m.mosi == self.mosi else 0, self)
                if m.miso == self.miso:
                    out = r
        return out

    def write(self, buf):
        for i in range(len(buf)):
            self._xfer(buf[i])

    def readinto(self, buf, write=0):
        for i in range(len(buf)):
            buf[i] = self._xfer(write)

    def read(self, n, write=0):
        b = bytearray(n)
        self.readinto(b, write)
        return bytes(b)

    def write_readinto(self, wbuf, rbuf):
        for i in range(len(wbuf)):
            rbuf[i] = self._xfer(wbuf[i])

    def deinit(self):
        pass


SoftSPI = SPI


# ----------------------------------------------------------- HX710B -------

class HX710BModel:
    """HX710B from its datasheet: conversions every 100 ms (10 Hz) or 25 ms
    (40 Hz); DOUT low = a conversion is ready; each SCK rising edge shifts out
    the next bit, MSB first; pulse 25 pulls DOUT high; 25/26/27 pulses in the
    frame select differential 10 Hz / DVDD-AVDD 40 Hz / differential 40 Hz for
    the following conversions (4 conversion times to settle after a change or
    at power-up). SCK high for more than 60 us powers it down; SCK low again
    resets it to differential 10 Hz. Data not read is replaced silently."""
    _PERIOD = {25: 100000, 26: 25000, 27: 25000}

    def __init__(self, dout, sck, avdd_uv=3300000):
        self.dout = line(dout)
        self.sck = line(sck)
        self.avdd_uv = avdd_uv
        self.code = 0                 # the differential input as a 24-bit code
        self.sel = 25                 # pulse count selecting the current conversions
        self.pulses = 0               # SCK pulses in the current frame
        self.frame = 0                # the word being shifted out
        self.ready = False
        self.powered = True
        self.high_at = -1
        self.power_downs = 0
        self.conversions = 0
        self.frames = 0               # frames read
        self.bad_frames = 0           # frames of fewer than 25 or more than 27 pulses
        self.last_frame_pulses = 0
        self.due = vtime.now + 4 * self._PERIOD[25]
        self.dout.drive(1)
        self.sck.listeners.append(self._sck)
        _clocked.append(self)

    def set_raw(self, code):
        self.code = code

    def set_uv(self, diff_uv):
        # full scale is +-0.5 * AVDD / 128 (PGA gain 128); beyond it the output clips
        c = diff_uv * 128 * (1 << 24) // self.avdd_uv
        self.code = 0x7FFFFF if c > 0x7FFFFF else (-0x800000 if c < -0x800000 else c)

    def rate_hz(self):
        return 1000000 // self._PERIOD[self.sel]

    def event(self):
        now = vtime.now
        if self.high_at >= 0 and now - self.high_at > 60:
            # SCK has stayed high: powered down, no more conversions
            self.powered = False
            self.power_downs += 1
            self.ready = False
            self.pulses = 0
            self.due = _NEVER
            self.dout.drive(1)
            return
        k = self.pulses
        if 0 < k < 25:                  # mid-read: the shift register is kept
            self.due = now + self._PERIOD[self.sel]
            return
        if k:                           # the frame before this conversion ended
            self.pulses = 0
            self.frames += 1
            self.last_frame_pulses = k
            if k > 27:
                self.bad_frames += 1
            elif k != self.sel:
                self.sel = k
                self.due = now + 4 * self._PERIOD[k]
                return
        self.conversions += 1
        self.frame = (self.code if self.sel != 26 else 0x012345) & 0xFFFFFF
        self.due = now + self._PERIOD[self.sel]
        self.ready = True
        self.dout.drive(0)

    def _sck(self, v):
        now = vtime.now
        if v:
            self.high_at = now
            if not self.powered or not (self.ready or self.pulses):
                return
            self.pulses += 1
            k = self.pulses
            if k <= 24:
                self.dout.drive((self.frame >> (24 - k)) & 1)
            elif k == 25:
                self.ready = False
                self.dout.drive(1)
            return
        high = now - self.high_at if self.high_at >= 0 else 0
        self.high_at = -1
        if high > 60 or not self.powered:
            # back from power-down: reset to differential 10 Hz, settle again
            if self.powered:
                self.power_downs += 1
            self.powered = True
            self.sel = 25
            self.pulses = 0
            self.ready = False
            self.dout.drive(1)
            self.due = now + 4 * self._PERIOD[25]


# ------------------------------------------------------------ MPRLS -------

class MPRLSModel(_I2CModel):
    """Honeywell MPRLS0025PA00001A from its datasheet: I2C address 0x18; the
    command AA 00 00 starts a conversion (busy, EOC low) that ends after
    `conv_us` (EOC high); a 4-byte read returns status (bit 6 powered, bit 5
    busy, bit 2 memory integrity error, bit 0 math saturation) and the 24-bit
    output: 10 % of 2**24 at 0 psi to 90 % at 25 psi (absolute). Reading
    while busy returns the busy status and the previous output."""
    OUT_MIN = 0x19999A
    SPAN = 13421772

    def __init__(self, sda=21, scl=22, addr=0x18, eoc=None, conv_us=5000):
        self.attach(scl, sda, addr)
        self.eoc = line(eoc) if eoc is not None else None
        self.conv_us = conv_us
        self.integrity_error = False
        self.unpowered = False
        self.busy = False
        self.out = 0
        self.sat = False
        self.code = 0
        self.code_sat = False
        self.commands = 0
        self.reads = 0
        self.busy_reads = 0
        self.due = _NEVER
        self.set_gauge_cmh2o(0)
        if self.eoc is not None:
            self.eoc.drive(0)
        _clocked.append(self)

    def set_psi(self, psi):
        c = self.OUT_MIN + int(psi * self.SPAN / 25 + 0.5)
        self.code_sat = not 0 <= psi <= 25
        self.code = max(0, min(0xFFFFFF, c))

    def set_gauge_cmh2o(self, cmh2o, atm_pa=101325):
        self.set_psi(atm_pa / 6894.757 + cmh2o / 70.307)

    def status(self):
        s = 0 if self.unpowered else 0x40
        if self.busy:
            s |= 0x20
        if self.integrity_error:
            s |= 0x04
        if self.sat:
            s |= 0x01
        return s

    def write(self, buf):
        if len(buf) == 3 and buf[0] == 0xAA:
            self.commands += 1
            self.busy = True
            self.due = vtime.now + self.conv_us
            if self.eoc is not None:
                self.eoc.drive(0)

    def read_into(self, buf):
        self.reads += 1
        if self.busy:
            self.busy_reads += 1
        o = self.out
        n = len(buf)
        if n > 0:
            buf[0] = self.status()
        if n > 3:
            buf[1] = (o >> 16) & 0xFF
            buf[2] = (o >> 8) & 0xFF
            buf[3] = o & 0xFF

    def event(self):
        self.due = _NEVER
        self.busy = False
        self.out = self.code
        self.sat = self.code_sat
        if self.eoc is not None:
            self.eoc.drive(1)


# ---------------------------------------------------------- ADS1292R ------

class ADS1292RModel:
    """TI ADS1292R from its datasheet: SPI mode 1 (CPOL 0, CPHA 1; in another
    mode the bits read back shifted by one); powers up (and resets) into
    RDATAC with registers at their defaults (ID 0x73, CONFIG1 0x02 = 500 SPS);
    in RDATAC only SDATAC/START/STOP/RESET are decoded; SDATAC mode decodes
    RREG/WREG (opcode, count-1, data), RDATA, RDATAC. Converting (START pin
    high or the START command) at the CONFIG1 rate, each conversion pulls DRDY
    low (pulsing it high first if the last one was not read); clocking data
    out sets DRDY high. Frame: status 1100 + LOFF_STAT + GPIO + 13 zeros, then
    CH1 and CH2, 24-bit two's complement, code = uV * gain * 2**23 / 2420000,
    clipped to 0x7FFFFF / 0x800000. Channels powered down (CHnSET bit 7) or
    shorted (MUX 1) read 0."""
    DEFAULTS = (0x73, 0x02, 0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x0C)
    _RATES = (125, 250, 500, 1000, 2000, 4000, 8000, 8000)
    _GAINS = (6, 1, 2, 3, 4, 8, 12, 6)

    def __init__(self, sclk=18, mosi=23, miso=19, cs=5, drdy=4, start=16, reset=17, ident=0x73):
        self.miso = miso
        self.mosi = mosi
        self.cs = line(cs)
        self.drdy = line(drdy)
        self.start = line(start)
        self.reset = line(reset)
        self.ident = ident
        self.regs = bytearray(12)
        self.frame = bytearray(9)
        self.uv = [0, 0]                   # input per channel, uV
        self.waves = [None, None]
        self.wi = [0, 0]
        self.loff = 0                      # lead-off bits to report in the status
        self.conversions = 0
        self.frames_read = 0
        self.unread = 0                    # conversions never clocked out
        self.due = _NEVER
        self._reset_state()
        ds = _spi_devs.get(sclk)
        if ds is None:
            ds = _spi_devs[sclk] = []
        ds.append(self)
        self.cs.listeners.append(self._cs_edge)
        self.start.listeners.append(self._start_edge)
        self.reset.listeners.append(self._reset_edge)
        self.drdy.drive(1)
        _clocked.append(self)

    def _reset_state(self):
        for i in range(12):
            self.regs[i] = self.DEFAULTS[i]
        self.regs[0] = self.ident
        self.rdatac = True
        self.cmd_running = False           # START command given
        self.op = 0                        # multi-byte command in progress
        self.op_stage = 0
        self.op_reg = 0
        self.op_left = 0
        self.out_idx = 9                   # frame bytes left to clock out: none
        self.fresh = False
        self.pending_out = 0

    def running(self):
        return (self.start.level() or self.cmd_running) and self.reset.level()

    def rate(self):
        return self._RATES[self.regs[1] & 7]

    def set_input(self, ch, uv):
        self.uv[ch - 1] = uv
        self.waves[ch - 1] = None

    def set_wave(self, ch, wave):
        self.waves[ch - 1] = wave
        self.wi[ch - 1] = 0

    def selected(self):
        return self.cs.level() == 0

    def _code(self, ch):
        w = self.waves[ch]
        if w is not None:
            i = self.wi[ch]
            uv = w[i]
            i += 1
            self.wi[ch] = 0 if i == len(w) else i
        else:
            uv = self.uv[ch]
        r = self.regs[4 + ch]
        if r & 0x80 or r & 0x0F == 1:
            return 0
        c = uv * self._GAINS[(r >> 4) & 7] * (1 << 23) // 2420000
        return 0x7FFFFF if c > 0x7FFFFF else (-0x800000 if c < -0x800000 else c)

    def event(self):
        if not self.running():
            self.due = _NEVER
            return
        self.due = vtime.now + 1000000 // self.rate()
        f = self.frame
        f[0] = 0xC0 | ((self.loff >> 1) & 0x0F)
        f[1] = (self.loff & 1) << 7
        f[2] = 0
        for ch in (0, 1):
            c = self._code(ch) & 0xFFFFFF
            o = 3 + 3 * ch
            f[o] = c >> 16
            f[o + 1] = (c >> 8) & 0xFF
            f[o + 2] = c & 0xFF
        self.conversions += 1
        if self.fresh:
            self.unread += 1
            self.drdy.drive(1)             # the short high pulse before new data
        self.fresh = True
        self.out_idx = 0
        self.drdy.drive(0)

    def _start_edge(self, v):
        if v and self.running() and self.due == _NEVER:
            self.due = vtime.now + 1000000 // self.rate() + 4 * 1000000 // self.rate()
        elif not v and not self.cmd_running:
            self.due = _NEVER

    def _reset_edge(self, v):
        if not v:
            self._reset_state()
            self.due = _NEVER
            self.drdy.drive(1)
        elif self.start.level():
            self._start_edge(1)

    def _cs_edge(self, v):
        if not v:
            self.op = 0                    # a new transaction starts a new command
            if self.rdatac:
                self.out_idx = 0           # and clocks the latest frame out again

    def xfer(self, b, bus):
        bad = bus.polarity != 0 or bus.phase != 1
        out = self._xfer(b)
        if bad:                            # sampled on the wrong edge: one bit late
            carry = self.pending_out
            self.pending_out = out & 1
            out = (out >> 1) | (carry << 7)
        return out

    def _xfer(self, b):
        # data out first: the frame in RDATAC / after RDATA, register bytes after RREG
        out = 0x00
        if self.op == 0x20 and self.op_stage == 2:
            out = self.regs[self.op_reg] if self.op_reg < 12 else 0
            self.op_reg += 1
            self.op_left -= 1
            if self.op_left == 0:
                self.op = 0
            return out
        if self.out_idx < 9 and (self.rdatac or self.op == 0x12):
            out = self.frame[self.out_idx]
            self.out_idx += 1
            if self.fresh:
                self.fresh = False
                self.frames_read += 1
                self.drdy.drive(1)
            if self.out_idx == 9 and self.op == 0x12:
                self.op = 0
            if b == 0:
                return out
        if self.op in (0x20, 0x40):
            if self.op_stage == 0:
                self.op_left = (b & 0x1F) + 1
                self.op_stage = 2
            elif self.op == 0x40:
                if 1 <= self.op_reg <= 11 and self.op_reg != 8:
                    self.regs[self.op_reg] = b
                self.op_reg += 1
                self.op_left -= 1
                if self.op_left == 0:
                    self.op = 0
            return out
        self._command(b)
        return out

    def _command(self, b):
        if b == 0x11:
            self.rdatac = False
        elif b == 0x10:
            self.rdatac = True
        elif b == 0x08:
            self.cmd_running = True
            self._start_edge(1)
        elif b == 0x0A:
            self.cmd_running = False
            if not self.start.level():
                self.due = _NEVER
        elif b == 0x06:
            self._reset_state()
        elif self.rdatac:
            return                          # RREG/WREG/RDATA are ignored in RDATAC
        elif b == 0x12:
            self.op = 0x12
            self.out_idx = 0
        elif b & 0xE0 == 0x20 or b & 0xE0 == 0x40:
            self.op = b & 0xE0
            self.op_reg = b & 0x1F
            self.op_stage = 0


# ------------------------------------------------------------- IMUs -------

class _AccelModel(_I2CModel):
    def __init__(self, sda, scl, addr):
        self.attach(scl, sda, addr)
        self.regs = bytearray(128)
        self.mg = [0, 0, 1000]

    def set_accel_mg(self, x, y, z):
        self.mg[0] = x
        self.mg[1] = y
        self.mg[2] = z

    def mem_write(self, reg, buf):
        for i in range(len(buf)):
            self.regs[(reg + i) & 0x7F] = buf[i]

    def mem_read(self, reg, buf):
        self._fill()
        for i in range(len(buf)):
            buf[i] = self.regs[(reg + i) & 0x7F]


class MPU6050Model(_AccelModel):
    """MPU-6050 from its register map: WHO_AM_I (0x75) = 0x68; powers up
    asleep (PWR_MGMT_1 0x6B = 0x40) with the data registers at 0; ACCEL_CONFIG
    (0x1C) bits 4:3 pick +-2/4/8/16 g; ACCEL_XOUT_H (0x3B) .. big-endian."""

    def __init__(self, sda=21, scl=22, addr=0x68):
        _AccelModel.__init__(self, sda, scl, addr)
        self.regs[0x75] = 0x68
        self.regs[0x6B] = 0x40

    def _fill(self):
        if self.regs[0x6B] & 0x40:
            return
        lsb_per_g = 16384 >> ((self.regs[0x1C] >> 3) & 3)
        for i in range(3):
            v = (self.mg[i] * lsb_per_g // 1000) & 0xFFFF
            self.regs[0x3B + 2 * i] = v >> 8
            self.regs[0x3C + 2 * i] = v & 0xFF


class LSM6DS3Model(_AccelModel):
    """LSM6DS3 from its register map: WHO_AM_I (0x0F) = 0x69; the
    accelerometer is powered down until CTRL1_XL (0x10) sets an ODR (bits
    7:4); FS bits 3:2 = 00 is +-2 g at 0.061 mg/LSB; OUTX_L_XL (0x28) ..
    little-endian."""

    def __init__(self, sda=21, scl=22, addr=0x6A, ident=0x69):
        _AccelModel.__init__(self, sda, scl, addr)
        self.regs[0x0F] = ident
        self.regs[0x12] = 0x04

    def _fill(self):
        if not self.regs[0x10] >> 4:
            return
        fs = (self.regs[0x10] >> 2) & 3
        mg_lsb_x1000 = (61, 488, 122, 244)[fs]
        for i in range(3):
            v = (self.mg[i] * 1000 // mg_lsb_x1000) & 0xFFFF
            self.regs[0x28 + 2 * i] = v & 0xFF
            self.regs[0x29 + 2 * i] = v >> 8
