# Accelerometer for telling a lift from a push: MPU-6050 (0x68/0x69) or
# LSM6DS3 (0x6A/0x6B) on the I2C bus the sensor may share. Only the
# accelerometer is used, at +-2 g. tilt() is the gravity component along the
# probe axis (mg) relative to zero(): a correct squeeze lifts the probe and
# tips its outer end one way, bearing down pushes it the other. Read at a low
# rate from a task, not by the sampler; reads still allocate nothing.
from knip.fixed import const
from drivers import SensorError, clock, i2c_bus

# driver -> (default addr, WHO_AM_I reg, accepted ids, first data reg, big-endian)
_CHIPS = {
    "mpu6050": (0x68, 0x75, {0x68: "MPU-6050"}, 0x3B, True),
    "lsm6ds3": (0x6A, 0x0F, {0x69: "LSM6DS3", 0x6A: "LSM6DS3TR-C", 0x6C: "LSM6DSO"}, 0x28, False),
}
_MPU_PWR = const(0x6B)
_MPU_ACCEL_CFG = const(0x1C)
_LSM_CTRL1_XL = const(0x10)
_LSM_CTRL3_C = const(0x12)
_AXES = {"x": 0, "y": 1, "z": 2}


class Imu:
    def __init__(self, cfg, machine):
        self.driver = cfg["driver"]
        addr, self._who, self._ids, self._data, self._be = _CHIPS[self.driver]
        self.addr = cfg.get("addr", addr)
        self.sda, self.scl = cfg.get("sda", 21), cfg.get("scl", 22)
        axis = cfg.get("axis", "x")
        self._sign = -1 if axis[:1] == "-" else 1
        self._axis = _AXES.get(axis[-1:])
        if self._axis is None:
            raise SensorError("IMU: axis %r: use x, y, z, -x, -y or -z (the probe's long axis on the "
                              "board)" % (axis,))
        self._i2c = i2c_bus(machine, "IMU", self.scl, self.sda)
        self._t = clock(machine)
        self._buf = bytearray(6)
        self._one = bytearray(1)
        self.x = self.y = self.z = 0       # mg
        self.base = 0
        self.chip = None

    def _where(self):
        return "%s at I2C 0x%02x on SDA GPIO%d/SCL GPIO%d" % (self.driver, self.addr, self.sda, self.scl)

    def _w(self, reg, val):
        self._one[0] = val
        self._i2c.writeto_mem(self.addr, reg, self._one)

    def check(self):
        try:
            self._i2c.readfrom_mem_into(self.addr, self._who, self._one)
        except OSError:
            raise SensorError("IMU: no answer from the %s at I2C 0x%02x on SDA GPIO%d/SCL GPIO%d: check "
                              "the wiring, its 3.3 V supply and its address pin, or set imu to null"
                              % (self.driver, self.addr, self.sda, self.scl))
        who = self._one[0]
        self.chip = self._ids.get(who)
        if self.chip is None:
            raise SensorError("%s: WHO_AM_I reads 0x%02x, not %s: another chip answers there; set the "
                              "profile's imu.driver to match the board"
                              % (self._where(), who, " or ".join("0x%02x" % k for k in sorted(self._ids))))
        if self._be:
            self._w(_MPU_PWR, 0x00)          # wake (it powers up asleep), internal clock
            self._w(_MPU_ACCEL_CFG, 0x00)    # +-2 g: 16384 LSB/g
        else:
            self._w(_LSM_CTRL3_C, 0x04)      # register auto-increment (the default)
            self._w(_LSM_CTRL1_XL, 0x40)     # 104 Hz, +-2 g: 0.061 mg/LSB
        self._t.sleep_ms(20)
        self.read()
        return self.chip

    def read(self):
        """Update x, y, z (mg)."""
        b = self._buf
        self._i2c.readfrom_mem_into(self.addr, self._data, b)
        if self._be:
            x, y, z = (b[0] << 8) | b[1], (b[2] << 8) | b[3], (b[4] << 8) | b[5]
        else:
            x, y, z = (b[1] << 8) | b[0], (b[3] << 8) | b[2], (b[5] << 8) | b[4]
        self.x = self._mg(x)
        self.y = self._mg(y)
        self.z = self._mg(z)

    def _mg(self, v):
        if v & 0x8000:
            v -= 0x10000
        return (v * 125) >> 11 if self._be else (v * 61) // 1000

    def _along(self):
        a = self._axis
        v = self.x if a == 0 else (self.y if a == 1 else self.z)
        return v * self._sign

    def zero(self, n=8):
        """The probe-axis component at rest (inserted, relaxed) as the tilt baseline."""
        tot = 0
        for _ in range(n):
            self.read()
            tot += self._along()
            self._t.sleep_ms(10)
        self.base = tot // n
        return self.base

    def tilt(self):
        """mg along the probe axis relative to zero(): its sign tells lift from push."""
        self.read()
        return self._along() - self.base
