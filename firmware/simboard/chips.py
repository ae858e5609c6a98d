# Chip models for the simulated ESP32 (simboard/esp32_machine.py), written
# from the datasheets: HX710B (SCK-driven shifting, pulse count -> next rate,
# power-down when SCK stays high > 60 us), Honeywell MPRLS (command,
# busy/EOC, status bits, 10-90 % transfer function, NACK when absent), TI
# ADS1292R (power-up in RDATAC, SDATAC/RREG/WREG/START/RDATAC, ID 0x73,
# CONFIG1 rate, CHnSET gain, DRDY, 72-bit frames, garbled data in the wrong
# SPI mode), MPU-6050 and LSM6DS3 accelerometers (WHO_AM_I, sleep/power-down,
# data registers). They check what a driver does wrong that the datasheet
# forbids; they cannot show analog or timing behaviour of real parts.
# They live in virtual time (esp32_machine.fresh()): a model is attached to
# the machine's pins and buses when it is made, and its events (conversions,
# data-ready edges) run as the clock advances. Events allocate nothing.
#     sim = esp32_machine.fresh()
#     hx = chips.HX710BModel(dout=19, sck=18)    # a chip on those pins
from simboard import esp32_machine as M
from simboard.esp32_buses import i2c_devs, spi_devs
from simboard.vclock import NEVER


class _I2CModel:
    present = True

    def attach(self, scl, sda, addr):
        self.clock = M.virtual_time()
        key = (scl, sda)
        d = i2c_devs.get(key)
        if d is None:
            d = i2c_devs[key] = {}
        d[addr] = self


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
        self.clock = M.virtual_time()
        self.dout = M.line(dout)
        self.sck = M.line(sck)
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
        self.due = self.clock.now + 4 * self._PERIOD[25]
        self.dout.drive(1)
        self.sck.listeners.append(self._sck)
        self.clock.add(self)

    def set_raw(self, code):
        self.code = code

    def set_uv(self, diff_uv):
        # full scale is +-0.5 * AVDD / 128 (PGA gain 128); beyond it the output clips
        c = diff_uv * 128 * (1 << 24) // self.avdd_uv
        self.code = 0x7FFFFF if c > 0x7FFFFF else (-0x800000 if c < -0x800000 else c)

    def rate_hz(self):
        return 1000000 // self._PERIOD[self.sel]

    def event(self):
        now = self.clock.now
        if self.high_at >= 0 and now - self.high_at > 60:
            # SCK has stayed high: powered down, no more conversions
            self.powered = False
            self.power_downs += 1
            self.ready = False
            self.pulses = 0
            self.due = NEVER
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
        now = self.clock.now
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
        self.eoc = M.line(eoc) if eoc is not None else None
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
        self.due = NEVER
        self.set_gauge_cmh2o(0)
        if self.eoc is not None:
            self.eoc.drive(0)
        self.clock.add(self)

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
            self.due = self.clock.now + self.conv_us
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
        self.due = NEVER
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
        self.clock = M.virtual_time()
        self.miso = miso
        self.mosi = mosi
        self.cs = M.line(cs)
        self.drdy = M.line(drdy)
        self.start = M.line(start)
        self.reset = M.line(reset)
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
        self.due = NEVER
        self._reset_state()
        ds = spi_devs.get(sclk)
        if ds is None:
            ds = spi_devs[sclk] = []
        ds.append(self)
        self.cs.listeners.append(self._cs_edge)
        self.start.listeners.append(self._start_edge)
        self.reset.listeners.append(self._reset_edge)
        self.drdy.drive(1)
        self.clock.add(self)

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
            self.due = NEVER
            return
        self.due = self.clock.now + 1000000 // self.rate()
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
        if v and self.running() and self.due == NEVER:
            self.due = self.clock.now + 1000000 // self.rate() + 4 * 1000000 // self.rate()
        elif not v and not self.cmd_running:
            self.due = NEVER

    def _reset_edge(self, v):
        if not v:
            self._reset_state()
            self.due = NEVER
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
                self.due = NEVER
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
