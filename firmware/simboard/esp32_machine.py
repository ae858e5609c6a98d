# A simulated ESP32 `machine` module for the virtual trainer: just enough of
# Pin, ADC, DAC, PWM and Timer for firmware/espboard to run unchanged under
# the MicroPython unix port. The HIL rig's wire is simulated too: DAC1
# (GPIO25) drives ADC1 GPIO34 through the rig's 1 kOhm / 100 nF low-pass,
# read with ADC-like noise. Timers fire from an asyncio task and, like the
# ESP32's soft-IRQ queue, run up to 8 late ticks back to back and drop the
# rest.
import time
import asyncio

_UV_PER_CODE = 3300000 // 255          # 8-bit DAC, 0-3.3 V
_NOISE_UV = 6000                       # +- ADC noise (a quiet ESP32 ADC reads a few mV)
_wires = {34: 25}                      # ADC pin -> DAC pin (hardware/HIL.md)
_dac = {}                              # DAC pin -> code
_QUEUE = 8                             # ESP32 soft-IRQ scheduler queue
_levels = {35: 1950000}                # other ADC pins: microvolts (battery: 3.9 V / 2)
_held = set()                          # pins held low (a pressed button)
resets = 0


def unique_id():
    return b"\x5e\x1f\x00\x00\x0a\x01"


def reset():
    # the board restarts: here the process ends, as power does
    raise SystemExit(3)


def hold_low(pin):
    _held.add(pin)


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    IRQ_FALLING = 2
    IRQ_RISING = 1

    def __init__(self, n, mode=-1, pull=-1, value=None):
        self.n = n
        self.mode = mode
        self.pull = pull
        self._v = 0 if value is None else value
        self.handler = None

    def value(self, v=None):
        if v is None:
            if self.mode == Pin.OUT:
                return self._v
            return 0 if self.n in _held else 1
        self._v = 1 if v else 0

    def irq(self, handler=None, trigger=3):
        self.handler = handler


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3

    def __init__(self, pin, atten=3):
        self.pin = pin.n
        self.atten = atten
        self._seed = 12345 + pin.n

    def read_uv(self):
        src = _wires.get(self.pin)
        if src is None:
            return _levels.get(self.pin, 142000)
        # the rig's 1 kOhm / 100 nF low-pass (0.1 ms) has settled by every sample
        target = _dac.get(src, 0) * _UV_PER_CODE
        # xorshift noise, small ints only
        s = self._seed
        s ^= (s << 7) & 0x3FFFFFFF
        s ^= s >> 9
        self._seed = s
        return target + (s % (2 * _NOISE_UV + 1)) - _NOISE_UV


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


class Timer:
    PERIODIC = 1
    ONE_SHOT = 0

    def __init__(self, tid=0, **kw):
        self.id = tid
        self.task = None
        if kw:
            self.init(**kw)

    def init(self, mode=1, freq=100, period=None, callback=None):
        self.deinit()
        self.period_us = 1000000 // freq if period is None else period * 1000
        self.cb = callback
        self.fired = self.dropped = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self):
        # The ESP32 queues a late soft-IRQ callback (the scheduler holds 8)
        # and runs the queued ones back to back; beyond 8 they are lost.
        due = time.ticks_add(time.ticks_us(), self.period_us)
        p = self.period_us
        while True:
            wait = time.ticks_diff(due, time.ticks_us())
            if wait > 500:
                await asyncio.sleep_ms(wait // 1000 or 1)
                continue
            over = -wait // p + 1 if wait <= 0 else 1     # ticks due by now
            if over > _QUEUE:
                self.dropped += over - _QUEUE
                due = time.ticks_add(due, (over - _QUEUE) * p)
            self.cb(self)
            self.fired += 1
            due = time.ticks_add(due, p)

    def deinit(self):
        if self.task is not None:
            self.task.cancel()
            self.task = None
