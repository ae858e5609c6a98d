# Honeywell MPRLS0025PA00001A (0-25 psi absolute) over I2C at 0x18. A
# measurement starts with the command AA 00 00 and takes ~5 ms; then four
# bytes read back: status (bit 6 powered, bit 5 busy, bit 2 memory integrity
# error, bit 0 math saturation) and a 24-bit output, 10 %..90 % of 2**24 over
# 0..25 psi. read() is pipelined so it never waits: it reads the conversion
# started on the previous tick, then starts the next one.
#   gauge counts = (raw - zero_raw) * counts_per_unit / raw_per_cmH2O
#   raw_per_cmH2O = (0.8 * 2**24 / 25 psi) / 70.307 cmH2O/psi  (~7636)
from knip.fixed import const
from drivers import SensorError, scaler, clock, i2c_bus

_RAIL = const(16383)           # a reading at a rail: the chain's saturation (drivers/__init__.py)

_CMD = b"\xaa\x00\x00"
_POWERED = const(0x40)
_BUSY = const(0x20)
_INTEGRITY = const(0x04)
_MATH_SAT = const(0x01)
_OUT_MIN = const(0x19999A)      # 10 % of 2**24 = 0 psi
_OUT_MAX = const(0xE66666)      # 90 % of 2**24 = 25 psi
_SPAN = const(13421772)         # _OUT_MAX - _OUT_MIN
_PSI_FS = const(25)
_CMH2O_PER_PSI_MILLI = const(70307)
_ATM_RAW = const(9567549)       # 101325 Pa (14.696 psi), used until check()/zero() measure the air
_WAIT_MS = const(20)


class MPRLS:
    unit = "cmH2O"

    def __init__(self, cfg, rate_hz, machine):
        if not 1 <= rate_hz <= 150:
            raise SensorError("MPRLS: rate_hz %r is too fast for its ~5 ms conversion: use 10-100 Hz "
                              "(100 is usual)" % (rate_hz,))
        self.addr = cfg.get("addr", 0x18)
        self.sda, self.scl = cfg.get("sda", 21), cfg.get("scl", 22)
        self._i2c = i2c_bus(machine, "MPRLS", self.scl, self.sda)
        self._rx = self._i2c.readfrom_into          # bound once for the hot path
        self._tx = self._i2c.writeto
        self._cmd = _CMD
        self._buf = bytearray(4)
        eoc = cfg.get("eoc")
        self.eoc_pin = eoc
        self._eoc = machine.Pin(eoc, machine.Pin.IN) if eoc is not None else None
        self._t = clock(machine)
        self.rate_hz = rate_hz
        self.counts_per_unit = cfg.get("counts_per_unit", 20)
        # counts per raw step = cpu / raw_per_cmH2O = cpu * 25 * 70.307 / 13421772
        self._m, self._sh, self._r = scaler(self.counts_per_unit * _PSI_FS * _CMH2O_PER_PSI_MILLI,
                                            _SPAN * 1000)
        self.zero_raw = _ATM_RAW
        self.raw = 0
        self.status = 0
        self._last = 0
        self._pending = False       # a conversion was started and not read yet
        self.saturated = 0
        self.errors = 0             # I2C failures and status errors in read()
        self.stale = 0              # ticks that found the conversion still busy
        self.drdy = None            # timer-paced: the MPRLS converts only on command

    def read(self):
        b = self._buf
        try:
            if self._pending:
                e = self._eoc
                if e is not None and not e.value():     # EOC low: still converting
                    self.stale += 1
                    return self._last
                self._rx(self.addr, b)
                st = b[0]
                if st & _BUSY:
                    self.stale += 1
                    return self._last
                self._pending = False
                self.status = st
                if st & _INTEGRITY or not st & _POWERED:
                    self.errors += 1
                raw = (b[1] << 16) | (b[2] << 8) | b[3]
                self.raw = raw
                if st & _MATH_SAT:
                    # outside 0-25 psi: the reading is the rail it went past
                    self.saturated += 1
                    self._last = _RAIL if raw > (_OUT_MIN + _OUT_MAX) >> 1 else -_RAIL
                else:
                    d = raw - self.zero_raw
                    m = self._m
                    self._last = ((d >> 12) * m + (((d & 0xFFF) * m) >> 12) + self._r) >> self._sh
            self._tx(self.addr, self._cmd)
            self._pending = True
        except OSError:
            self.errors += 1
        return self._last

    def _where(self):
        return "MPRLS at I2C 0x%02x on SDA GPIO%d/SCL GPIO%d" % (self.addr, self.sda, self.scl)

    def _measure(self):
        """One blocking conversion -> (status, raw). Boot and zero() only."""
        b = self._buf
        try:
            self._tx(self.addr, self._cmd)
        except OSError:
            raise SensorError("MPRLS: no answer at I2C 0x%02x on SDA GPIO%d/SCL GPIO%d: check the "
                              "wiring (SDA and SCL not swapped) and the 3.3 V supply"
                              % (self.addr, self.sda, self.scl))
        t = self._t
        t.sleep_ms(5)
        for _ in range(_WAIT_MS):
            if self._eoc is None or self._eoc.value():
                try:
                    self._rx(self.addr, b)
                except OSError:
                    raise SensorError("%s: stopped answering after a measurement command: check the "
                                      "wiring and the pull-ups on SDA/SCL" % self._where())
                if not b[0] & _BUSY:
                    self._pending = False
                    return b[0], (b[1] << 16) | (b[2] << 8) | b[3]
            t.sleep_ms(1)
        if self._eoc is not None and not self._eoc.value():
            raise SensorError("%s: EOC GPIO%d never went high after a measurement: check the EOC wire, "
                              "or set eoc to null in the profile" % (self._where(), self.eoc_pin))
        raise SensorError("%s: still busy %d ms after a measurement command: the sensor is faulty or "
                          "underpowered; check the 3.3 V supply" % (self._where(), _WAIT_MS + 5))

    def check(self):
        st, raw = self._measure()
        self.status = st
        if not st & _POWERED:
            raise SensorError("%s: status 0x%02x says it is not powered: check its VDD (3.3 V)"
                              % (self._where(), st))
        if st & _INTEGRITY:
            raise SensorError("%s: memory integrity error (status 0x%02x): its calibration memory "
                              "failed the check; replace the sensor" % (self._where(), st))
        if st & _MATH_SAT:
            raise SensorError("%s: pressure outside 0-25 psi (math saturation, status 0x%02x): check "
                              "that the port and tube are not blocked or pressurised" % (self._where(), st))
        self.zero_raw = raw           # the air now; zero() redoes it with the probe in place
        self._start()
        return raw

    def _start(self):
        try:
            self._tx(self.addr, self._cmd)
            self._pending = True
        except OSError:
            self.errors += 1

    def zero(self, n=32):
        """Average n conversions as the new zero (atmosphere, probe relaxed). Sampler stopped."""
        tot = 0
        for _ in range(n):
            tot += self._measure()[1]
        self.zero_raw = (tot + n // 2) // n
        self._start()
        return self.zero_raw
