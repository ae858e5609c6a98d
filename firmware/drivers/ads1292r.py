# TI ADS1292R (or ADS1292) two-channel 24-bit biopotential front end, SPI
# mode 1 at 1 MHz. check() resets it, stops continuous mode (SDATAC: it
# powers up in RDATAC and ignores register commands there), verifies the ID
# register (0x73 ADS1292R, 0x53 ADS1292), writes the rate, gain and bias
# registers and reads them back, then starts conversions in RDATAC mode.
# Each conversion pulls DRDY low; read() then clocks out 9 bytes: 24-bit
# status (1100 + lead-off bits + GPIO) and two 24-bit two's complement
# channels. LSB = 2 * Vref / gain / 2**24 with Vref = 2.42 V:
#   counts = raw * counts_per_unit * 4840000 / (gain * 2**24)   (uV at the electrodes)
from knip.fixed import const
from drivers import SensorError, scaler, clock

_RAIL = const(16383)           # a reading at a rail: the chain's saturation (drivers/__init__.py)

_SDATAC = const(0x11)
_RDATAC = const(0x10)
_RREG = const(0x20)
_WREG = const(0x40)
_IDS = {0x73: "ADS1292R", 0x53: "ADS1292"}
_RATES = {125: 0, 250: 1, 500: 2, 1000: 3, 2000: 4, 4000: 5, 8000: 6}     # CONFIG1 bits 2:0
_GAINS = {6: 0, 1: 1, 2: 2, 3: 3, 4: 4, 8: 5, 12: 6}                     # CHnSET bits 6:4
_VREF2_UV = const(4840000)     # 2 * 2.42 V
_SAT_HI = const(0x7FFFFF)
_SAT_LO = const(-0x800000)
_CH_OFF = const(0x81)          # channel powered down, input shorted


class ADS1292R:
    unit = "uV"

    def __init__(self, cfg, rate_hz, machine):
        if rate_hz not in _RATES:
            raise SensorError("ADS1292R: rate_hz %r is not a data rate it has: use 500 or 1000 (or 125, "
                              "250, 2000, 4000, 8000)" % (rate_hz,))
        self.gain = cfg.get("gain", 6)
        if self.gain not in _GAINS:
            raise SensorError("ADS1292R: gain %r: use 1, 2, 3, 4, 6, 8 or 12 in the profile" % (self.gain,))
        self.channel = cfg.get("channel", 1)
        if self.channel not in (1, 2):
            raise SensorError("ADS1292R: channel %r: use 1 or 2 in the profile" % (self.channel,))
        Pin = machine.Pin
        self.pins = cfg
        self._cs = Pin(cfg["cs"], Pin.OUT, value=1)
        self._start = Pin(cfg["start"], Pin.OUT, value=0)
        self._reset = Pin(cfg["reset"], Pin.OUT, value=1)
        self.drdy = Pin(cfg["drdy"], Pin.IN, Pin.PULL_UP)
        self._spi = machine.SPI(cfg.get("spi_id", 2), baudrate=cfg.get("baud", 1000000), polarity=0,
                                phase=1, sck=Pin(cfg["sclk"]), mosi=Pin(cfg["mosi"]),
                                miso=Pin(cfg["miso"]))
        self._readinto = self._spi.readinto      # bound once for the hot path
        self._buf = bytearray(9)
        self._one = bytearray(1)
        self._o = 3 if self.channel == 1 else 6  # channel offset in the frame
        self._t = clock(machine)
        self.rate_hz = rate_hz
        self.counts_per_unit = cfg.get("counts_per_unit", 1)
        self._m, self._sh, self._r = scaler(self.counts_per_unit * _VREF2_UV, self.gain << 24)
        self.saturated = 0
        self.status = 0         # last 24-bit status word (bits 19-15: lead-off)
        self.chip = None

    def read(self):
        b = self._buf
        cs = self._cs
        cs.off()
        self._readinto(b, 0)
        cs.on()
        o = self._o
        v = (b[o] << 16) | (b[o + 1] << 8) | b[o + 2]
        if v & 0x800000:
            v -= 0x1000000
        self.status = (b[0] << 16) | (b[1] << 8) | b[2]
        if v == _SAT_HI or v == _SAT_LO:
            self.saturated += 1
            return _RAIL if v > 0 else -_RAIL
        m = self._m
        return ((v >> 12) * m + (((v & 0xFFF) * m) >> 12) + self._r) >> self._sh

    # ---- set-up (boot only: may wait and allocate) ---------------------

    def _byte(self, v):
        # one byte per transfer, 10 us apart: the chip needs 4 tCLK (~8 us)
        # to decode each byte of a multi-byte command
        self._one[0] = v
        self._spi.write(self._one)
        self._t.sleep_us(10)

    def _cmd(self, c):
        self._cs.off()
        self._byte(c)
        self._cs.on()

    def _wreg(self, reg, val):
        self._cs.off()
        self._byte(_WREG | reg)
        self._byte(0)
        self._byte(val)
        self._cs.on()

    def _rreg(self, reg):
        self._cs.off()
        self._byte(_RREG | reg)
        self._byte(0)
        self._spi.readinto(self._one, 0)
        self._cs.on()
        return self._one[0]

    def _where(self):
        p = self.pins
        return ("ADS1292R on SPI (SCLK GPIO%d, MOSI GPIO%d, MISO GPIO%d, CS GPIO%d)"
                % (p["sclk"], p["mosi"], p["miso"], p["cs"]))

    def check(self):
        t = self._t
        self._start.off()
        self._reset.off()                   # RESET/PWDN pulse
        t.sleep_ms(1)
        self._reset.on()
        t.sleep_ms(100)                     # oscillator and reference settle
        self._cmd(_SDATAC)
        ident = self._rreg(0)
        self.chip = _IDS.get(ident)
        if self.chip is None:
            if ident in (0x00, 0xFF):
                raise SensorError("%s: no answer (ID register reads 0x%02x): check MISO, MOSI, SCLK and "
                                  "CS, the 3.3 V supply, and that RESET/PWDN GPIO%d is wired (it must be high)"
                                  % (self._where(), ident, self.pins["reset"]))
            raise SensorError("%s: ID register reads 0x%02x, not 0x73 (ADS1292R) or 0x53 (ADS1292): "
                              "another chip, or SPI mode/clock wrong (it needs mode 1); check the module "
                              "and the SCLK wire" % (self._where(), ident))
        gain = _GAINS[self.gain] << 4
        regs = ((1, _RATES[self.rate_hz]),              # CONFIG1: continuous, data rate
                (2, 0xA0),                              # CONFIG2: reference buffer on, 2.42 V
                (3, 0x10),                              # LOFF: defaults (lead-off off)
                (4, gain if self.channel == 1 else _CH_OFF),
                (5, gain if self.channel == 2 else _CH_OFF),
                (6, 0x23 if self.channel == 1 else 0x2C),  # RLD_SENS: bias drive from our channel
                (7, 0x00),                              # LOFF_SENS: no lead-off current
                (9, 0x02),                              # RESP1: respiration off
                (10, 0x03))                             # RESP2: RLDREF internal (AVDD/2)
        for reg, val in regs:
            self._wreg(reg, val)
        for reg, val in regs:
            if reg not in (1, 4, 5, 6):             # only registers with no fixed/reserved bits
                continue
            got = self._rreg(reg)
            if got != val:
                raise SensorError("%s: register 0x%02x reads 0x%02x after writing 0x%02x: MOSI "
                                  "GPIO%d does not reach the chip; check that wire"
                                  % (self._where(), reg, got, val, self.pins["mosi"]))
        self._cmd(_RDATAC)
        self._start.on()
        # the digital filter needs a few periods before the first sample
        wait = 100 + 4000 // self.rate_hz
        for _ in range(wait):
            if not self.drdy.value():
                break
            t.sleep_ms(1)
        else:
            raise SensorError("%s: DRDY GPIO%d never went low after START: check the DRDY and START "
                              "GPIO%d wires" % (self._where(), self.pins["drdy"], self.pins["start"]))
        sat = self.saturated
        self.read()
        if (self.status >> 20) != 0xC:
            raise SensorError("%s: data frame status 0x%06x does not start with 1100: SPI data is "
                              "garbled; check SCLK/MISO and keep the wires short" % (self._where(), self.status))
        if self.saturated != sat:
            raise SensorError("%s: channel %d is at full scale (input beyond +-%d mV at gain %d): "
                              "electrodes off or unconnected; attach the electrodes and the reference "
                              "(RLD) and try again" % (self._where(), self.channel, 2420 // self.gain,
                                                       self.gain))
        return self.chip

    def zero(self, n=32):
        """EMG has no zero (the chain removes offsets)."""
        return None
