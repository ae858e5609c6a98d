# HX710B 24-bit bridge ADC (the cheap 0-40 kPa pressure modules), bit-banged:
# PD_SCK out, DOUT in. DOUT goes low when a conversion is ready; 24 SCK pulses
# shift it out MSB first (two's complement), and the total number of pulses
# picks the next conversion: 25 = differential input at 10 Hz, 26 = DVDD-AVDD
# (not used), 27 = differential input at 40 Hz. SCK held high > 60 us powers
# the chip down (and it wakes at 10 Hz), so the read runs with interrupts off.
#   counts = (raw - zero_raw) * counts_per_unit / raw_per_unit
from knip.fixed import const
from drivers import SensorError, scaler, clock

_RAIL = const(16383)           # a reading at a rail: the chain's saturation (drivers/__init__.py)

_SAT_HI = const(0x7FFFFF)
_SAT_LO = const(-0x800000)
_PULSES = {10: 25, 40: 27}


class HX710B:
    unit = "cmH2O"

    def __init__(self, cfg, rate_hz, machine):
        rate = cfg.get("rate", rate_hz)
        if rate not in _PULSES:
            raise SensorError("HX710B: rate %r Hz is not one it converts at: set the profile's rate "
                              "(and rate_hz) to 10 or 40" % (rate,))
        Pin = machine.Pin
        self.dout_pin, self.sck_pin = cfg["dout"], cfg["sck"]
        self._sck = Pin(self.sck_pin, Pin.OUT, value=0)
        self._dout = Pin(self.dout_pin, Pin.IN)
        self._off = machine.disable_irq
        self._on = machine.enable_irq
        self._t = clock(machine)
        self._extra = _PULSES[rate] - 24
        self.rate_hz = rate
        self.counts_per_unit = cfg.get("counts_per_unit", 20)
        self.raw_per_unit = cfg["raw_per_unit"]
        self._m, self._sh, self._r = scaler(self.counts_per_unit, self.raw_per_unit)
        self.zero_raw = 0
        self.raw = 0            # last raw conversion
        self._last = 0          # last counts, repeated when no conversion is ready
        self.saturated = 0
        self.stale = 0          # read() calls that found no new conversion
        self.drdy = self._dout  # the sampler paces on DOUT's falling edge

    def _shift(self):
        # one frame: 24 data bits then 1 or 3 pulses for the next conversion
        sck = self._sck
        dout = self._dout
        st = self._off()
        v = 0
        for _ in range(24):
            sck.on()
            sck.off()
            v = (v << 1) | dout.value()
        for _ in range(self._extra):
            sck.on()
            sck.off()
        self._on(st)
        if v & 0x800000:
            v -= 0x1000000
        return v

    def read(self):
        if self._dout.value():              # no conversion ready: hold the last value
            self.stale += 1
            return self._last
        v = self._shift()
        self.raw = v
        if v == _SAT_HI or v == _SAT_LO:
            self.saturated += 1
            self._last = _RAIL if v > 0 else -_RAIL
            return self._last
        d = v - self.zero_raw
        m = self._m
        y = ((d >> 12) * m + (((d & 0xFFF) * m) >> 12) + self._r) >> self._sh
        self._last = y
        return y

    def _wait_ready(self, ms):
        t = self._t
        for _ in range(ms):
            if not self._dout.value():
                return True
            t.sleep_ms(1)
        return not self._dout.value()

    def _where(self):
        return "HX710B (DOUT GPIO%d, SCK GPIO%d)" % (self.dout_pin, self.sck_pin)

    def _frame(self, ms):
        if not self._wait_ready(ms):
            raise SensorError("%s: DOUT never went low in %d ms (no conversion ready): check the "
                              "module's VCC and GND, and that DOUT and SCK are not swapped"
                              % (self._where(), ms))
        v = self._shift()
        if not self._dout.value():
            raise SensorError("%s: DOUT stayed low after %d SCK pulses: no HX710B is clocking out "
                              "data (module missing or unpowered, SCK wire not reaching the chip, or "
                              "DOUT shorted to GND); check VCC/GND and the SCK wire"
                              % (self._where(), 24 + self._extra))
        return v

    def check(self):
        self._sck.off()                     # SCK low = powered up
        # after power-up the chip converts at 10 Hz; this frame selects our rate,
        # then a few frames let the digital filter settle (400 ms at 10 Hz)
        self._frame(600)
        vals = [self._frame(300) for _ in range(4)]
        if all(v == _SAT_HI or v == _SAT_LO for v in vals):
            raise SensorError("%s: reads at full scale (%d): the pressure sensor's bridge is open or "
                              "over range; check the sensor's connection to the module and that the "
                              "port is not blocked" % (self._where(), vals[-1]))
        self.raw = vals[-1]
        return vals[-1]

    def zero(self, n=32):
        """Average n conversions as the new zero (probe in place, relaxed). Sampler stopped."""
        wait = 3000 // self.rate_hz
        tot = 0
        for _ in range(n):
            tot += self._frame(wait)
        self.zero_raw = (tot + n // 2) // n
        return self.zero_raw
