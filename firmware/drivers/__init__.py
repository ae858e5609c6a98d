# Sensor drivers for the ESP32 board (docs/DRIVERS.md). open_sensor() imports
# only the driver a profile names, so the others cost no RAM. The hardware is
# reached only through the `machine` object passed in (the real module on the
# device, a simulated one in tests), never by a module-level `import machine`.
import time

# driver name -> class name in drivers/<name>.py
_CLASSES = {
    "analog_pressure": "AnalogPressure",
    "hx710b": "HX710B",
    "mprls": "MPRLS",
    "myoware": "MyoWare",
    "ads1292r": "ADS1292R",
}
_IMUS = ("mpu6050", "lsm6ds3")
ADC1_PINS = (32, 33, 34, 35, 36, 37, 38, 39)
# A reading at the sensor's rail is given as +-16383 counts (each driver's
# _RAIL, knip.filters.X_MAX), which the chain's input guard reads as
# saturation: what the sensor saw there is unknown, and a swing into the
# rail must not count as a squeeze.


class SensorError(Exception):
    """A sensor that is missing, miswired or out of range; the text names the
    part, the pin and what to do."""


def open_sensor(cfg, rate_hz, machine):
    """The driver for a profile's sensor/abdominal section (a dict)."""
    name = cfg.get("driver")
    cls = _CLASSES.get(name)
    if cls is None:
        raise SensorError("sensor driver %r is unknown: use one of %s in the profile"
                          % (name, ", ".join(sorted(_CLASSES))))
    mod = getattr(__import__("drivers." + name), name)
    return getattr(mod, cls)(cfg, rate_hz, machine)


def open_imu(cfg, machine):
    """The accelerometer of a profile's imu section (mpu6050 or lsm6ds3)."""
    if cfg.get("driver") not in _IMUS:
        raise SensorError("imu driver %r is unknown: use mpu6050 or lsm6ds3, or set imu to null"
                          % (cfg.get("driver"),))
    from drivers.imu import Imu
    return Imu(cfg, machine)


def clock(machine):
    """The time functions to wait with: a simulated machine may keep virtual
    time (`machine.vtime`); the real one has none, so this is `time`."""
    return getattr(machine, "vtime", None) or time


def scaler(num, den):
    """(m, sh, r) so that scale(d) = ((d >> 12) * m + (((d & 0xFFF) * m) >> 12) + r) >> sh
    is d * num / den to within one count plus 2**-15 of the result, for
    |d| < 2**24, with every intermediate below 2**30 (small ints on the
    ESP32: nothing allocates). m is kept in [2**15, 2**16) where it can be."""
    if num <= 0 or den <= 0:
        raise SensorError("a conversion factor must be above 0 (got %r / %r): fix the profile's "
                          "counts_per_unit and *_per_unit" % (num, den))
    if num * 4096 >= den * 65536:
        raise SensorError("counts_per_unit / *_per_unit = %r is too large (at most 16 counts per "
                          "input step): lower counts_per_unit in the profile" % (num / den,))
    s = 12
    # num/den may be float (profile numbers); this runs once at init.
    # s <= 40 keeps sh <= 28, so the rounding term r stays below 2**27.
    while s < 40 and num * (1 << (s + 1)) < den * 65536:
        s += 1
    m = int(num * (1 << s) / den + 0.5)
    if m >= 65536:
        m = 65535
    if m < 1:
        raise SensorError("counts_per_unit / *_per_unit = %r is too small (every sample would be 0): "
                          "raise counts_per_unit in the profile" % (num / den,))
    sh = s - 12
    return m, sh, (1 << (sh - 1)) if sh else 0


def adc1_pin(part, field, pin):
    if pin not in ADC1_PINS:
        raise SensorError("%s: %s GPIO%s is not an ADC1 pin (ADC2 fails while Bluetooth runs): "
                          "wire the sensor to GPIO32-39 and set %s in the profile"
                          % (part, field, pin, field))
    return pin


# attenuation (dB) -> (ADC constant, bottom and top of the usable read_uv range, uV).
# Calibrated read_uv() never reads 0: an input at 0 V reads ~60-150 mV (the
# ESP32's dead zone, ~142 mV at 11 dB), and the top flattens near full scale.
_ATTEN = {0: ("ATTN_0DB", 100000, 1050000), 2.5: ("ATTN_2_5DB", 100000, 1400000),
          6: ("ATTN_6DB", 170000, 2100000), 11: ("ATTN_11DB", 170000, 3100000)}


def open_adc(machine, part, pin, atten_db):
    """ADC1 on `pin` with explicit attenuation -> (adc, bottom rail, top rail) in uV."""
    adc1_pin(part, "pin", pin)
    a = _ATTEN.get(atten_db)
    if a is None:
        raise SensorError("%s: atten_db %r is not an ESP32 attenuation: use 0, 2.5, 6 or 11 (11 reads "
                          "up to ~3.1 V)" % (part, atten_db))
    adc = machine.ADC(machine.Pin(pin), atten=getattr(machine.ADC, a[0]))
    return adc, a[1], a[2]


def survey(read, n, t, gap_us=500):
    """Mean, min and max of n reads `gap_us` apart (boot-time checks only)."""
    lo = hi = tot = read()
    for _ in range(n - 1):
        t.sleep_us(gap_us)
        v = read()
        tot += v
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return (tot + n // 2) // n, lo, hi


def volts(uv):
    return "%.2f V" % (uv / 1e6)


# I2C bus ids by pin pair: the main sensor and the IMU share one (SDA21/SCL22);
# a second pair (e.g. an abdominal MPRLS, which has the same address) gets bus 1.
_i2c_ids = {}


def i2c_bus(machine, part, scl, sda, freq=400000):
    key = (scl, sda)
    bus = _i2c_ids.get(key)
    if bus is None:
        if len(_i2c_ids) >= 2:
            raise SensorError("%s: the ESP32 has two I2C buses and both are in use; put SDA GPIO%s/"
                              "SCL GPIO%s on the pins of one of them" % (part, sda, scl))
        bus = _i2c_ids[key] = len(_i2c_ids)
    return machine.I2C(bus, scl=machine.Pin(scl), sda=machine.Pin(sda), freq=freq)
