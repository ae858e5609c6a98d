# Analog gauge pressure sensor (e.g. XGZP6847A, 0.5-4.5 V for 0-40 kPa, via a
# 2/3 divider) on an ADC1 pin, read with the ESP32's calibrated read_uv().
#   counts = (uv - zero_uv) * counts_per_unit / uv_per_unit
# in integer fixed point (drivers.scaler), so read() allocates nothing.
from knip.fixed import const
from drivers import SensorError, open_adc, scaler, survey, volts, clock

_RAIL = const(16383)           # a reading at a rail: the chain's saturation (drivers/__init__.py)

_PART = "analog pressure sensor"
_FLOAT_UV = const(400000)      # spread of boot reads that means an open (floating) input


class AnalogPressure:
    unit = "cmH2O"

    def __init__(self, cfg, rate_hz, machine):
        self.pin = cfg["pin"]
        self._adc, self._lo, self._hi = open_adc(machine, _PART, self.pin, cfg.get("atten_db", 11))
        self._rd = self._adc.read_uv            # bound once: read() makes no bound method
        self._t = clock(machine)
        self.rate_hz = rate_hz
        self.counts_per_unit = cfg.get("counts_per_unit", 20)
        self.uv_per_unit = cfg["uv_per_unit"]
        self.zero_uv = int(cfg.get("zero_uv", 0))
        self._m, self._sh, self._r = scaler(self.counts_per_unit, self.uv_per_unit)
        self.saturated = 0
        self.drdy = None

    def read(self):
        uv = self._rd()
        if uv < self._lo:
            self.saturated += 1
            return -_RAIL
        if uv > self._hi:
            self.saturated += 1
            return _RAIL
        d = uv - self.zero_uv
        m = self._m
        return ((d >> 12) * m + (((d & 0xFFF) * m) >> 12) + self._r) >> self._sh

    def check(self):
        mean, lo, hi = survey(self._rd, 64, self._t)
        where = "%s on GPIO%d" % (_PART, self.pin)
        if mean < self._lo:
            raise SensorError("%s reads %s, at the bottom rail: no sensor output reaches the pin; check "
                              "the sensor's 5 V supply, its output wire and the divider (expect about "
                              "%s at 0 cmH2O)" % (where, volts(mean), volts(self.zero_uv or 333000)))
        if mean > self._hi:
            raise SensorError("%s reads %s, at the top rail: the divider is missing or wrong (the pin "
                              "must stay below %s); check the 10k/20k divider" % (where, volts(mean),
                                                                                  volts(self._hi)))
        if hi - lo > _FLOAT_UV:
            raise SensorError("%s is floating (reads spread over %s): the sensor output is not "
                              "connected; check the output wire and the divider's ground"
                              % (where, volts(hi - lo)))
        return mean

    def zero(self, n=32):
        """Average n reads as the new zero (probe in place, relaxed). Call with the sampler stopped."""
        self.zero_uv = survey(self._rd, n, self._t, 1000)[0]
        return self.zero_uv
