# MyoWare 2.0 muscle sensor, analog, on an ADC1 pin. Two outputs:
#   mode "envelope": ENV (rectified, smoothed), ~0 V at rest, sampled ~100 Hz.
#                    The ESP32 ADC cannot see the bottom ~0.15 V (its calibrated
#                    read_uv gives a fixed floor, ~142 mV at 11 dB, for anything
#                    below): check() measures that floor at rest, and readings
#                    at the floor count as 0.
#   mode "raw":      RAW (amplified EMG) centred at Vs/2, sampled ~1000 Hz;
#                    the mid-rail offset is measured in check() and subtracted.
#   counts = (uv - offset_uv) * counts_per_unit / uv_per_unit
# uv_per_unit is the board's gain: uV at the pin per uV at the skin.
from array import array

from knip.fixed import const
from drivers import SensorError, open_adc, scaler, survey, volts, clock

_RAIL = const(16383)           # a reading at a rail: the chain's saturation (drivers/__init__.py)

_MID_LO = const(1200000)       # a 3.3 V MyoWare's RAW rests at ~1.65 V
_MID_HI = const(2100000)
_FLOAT_UV = const(1500000)     # ENV spread at rest that means an open input
_FLOOR_MAX = const(250000)     # a resting ENV minimum below this is the ADC's floor
_FLOOR_MARGIN = const(3000)


class MyoWare:
    unit = "uV"

    def __init__(self, cfg, rate_hz, machine):
        self.mode = cfg.get("mode", "envelope")
        if self.mode not in ("envelope", "raw"):
            raise SensorError("MyoWare: mode %r: use \"envelope\" (ENV output) or \"raw\" (RAW output) "
                              "in the profile" % (self.mode,))
        self.pin = cfg["pin"]
        self._adc, lo, self._hi = open_adc(machine, "MyoWare", self.pin, cfg.get("atten_db", 11))
        self._rd = self._adc.read_uv
        # ENV rests at 0 V, so only the top rail means saturation there
        self._lo = lo if self.mode == "raw" else -1
        self._t = clock(machine)
        self.rate_hz = rate_hz
        self.counts_per_unit = cfg.get("counts_per_unit", 1)
        self.uv_per_unit = cfg["uv_per_unit"]
        self._m, self._sh, self._r = scaler(self.counts_per_unit, self.uv_per_unit)
        self.offset_uv = int(cfg.get("offset_uv", 1650000 if self.mode == "raw" else 0))
        self.floor_uv = -1          # envelope: reads at or below this are 0 uV
        self.saturated = 0
        self.drdy = None
        self._ac = None             # counts_run's kernel state, made on first use

    def raw_reader(self):
        """The ADC read alone (uV), for the sampler's interrupt at high rates;
        counts_run() then converts a run of them in one go, as read() would."""
        return self._rd

    def counts_run(self, buf, i, n):
        """buf[i:i+n]: readings from raw_reader() -> counts, in place."""
        st = self._ac
        if st is None or st[2] != self.offset_uv or st[8] != self.floor_uv:
            # the scaling, set once (and again after check() or zero() moved the offset or floor)
            from knip import kernels as K
            st = self._ac = array("i", bytes(4 * K.AC_LEN))
            self._adc_counts = K.adc_counts
            st[2] = self.offset_uv
            st[3] = self._m
            st[4] = self._sh
            st[5] = self._r
            st[6] = self._lo
            st[7] = self._hi
            st[8] = self.floor_uv
        st[0] = i
        st[1] = n
        self.saturated += self._adc_counts(buf, st)

    def read(self):
        uv = self._rd()
        if uv < self._lo:
            self.saturated += 1
            return -_RAIL
        if uv > self._hi:
            self.saturated += 1
            return _RAIL
        if uv <= self.floor_uv:
            return 0
        d = uv - self.offset_uv
        m = self._m
        return ((d >> 12) * m + (((d & 0xFFF) * m) >> 12) + self._r) >> self._sh

    def _where(self):
        return "MyoWare %s on GPIO%d" % ("RAW" if self.mode == "raw" else "ENV", self.pin)

    def check(self):
        mean, lo, hi = survey(self._rd, 128, self._t, 200)
        if mean > self._hi:
            raise SensorError("%s reads %s, at the top rail: power the MyoWare from 3.3 V (not 5 V), "
                              "and turn its gain down if ENV is used" % (self._where(), volts(mean)))
        if self.mode == "raw":
            if not _MID_LO <= mean <= _MID_HI:
                raise SensorError("%s rests at %s, not mid-rail (~1.65 V): check the MyoWare's 3.3 V "
                                  "and GND, and that its RAW pad (not ENV) goes to GPIO%d"
                                  % (self._where(), volts(mean), self.pin))
            self.offset_uv = mean
        else:
            if hi - lo > _FLOAT_UV:
                raise SensorError("%s is floating (reads spread over %s): the ENV wire is not "
                                  "connected; check it and the MyoWare's GND" % (self._where(), volts(hi - lo)))
            if lo < _FLOOR_MAX:
                self.floor_uv = lo + _FLOOR_MARGIN
        return mean

    def zero(self, n=32):
        """EMG has no zero; in raw mode this re-measures the mid-rail offset. Returns None."""
        if self.mode == "raw":
            self.offset_uv = survey(self._rd, n, self._t, 1000)[0]
