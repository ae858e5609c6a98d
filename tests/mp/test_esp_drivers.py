# Portable tests of the ESP32 sensor drivers (firmware/drivers): run by
# pytest under CPython and by tests/mp/run_tests.py under the MicroPython
# unix port. The sampler's: test_esp_sampler.py.
#
# No ESP32 and no sensor chips are involved: the drivers run against the
# simulated ESP32 (firmware/simboard/esp32_machine.py) in virtual time, with
# chips that are behavioural models written from the datasheets
# (simboard/chips.py: HX710B, MPRLS, ADS1292R, MPU-6050, LSM6DS3) and an ADC
# that models the ESP32's read_uv range. These tests show the drivers follow
# those datasheets and the arithmetic is right;
# they cannot show that real parts behave like the models.
import sys
import gc

try:
    import drivers
except ImportError:     # CPython under pytest: firmware/ is not installed as a package
    import os
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "firmware"))
    import drivers
from array import array
from drivers import SensorError, open_sensor, open_imu, scaler
from knip.filters import X_MAX as RAIL          # a reading at a rail, as the drivers give it
from simboard import esp32_machine, chips

MICROPYTHON = sys.implementation.name == "micropython"
ANALOG = {"driver": "analog_pressure", "pin": 34, "atten_db": 11, "zero_uv": 333000,
          "uv_per_unit": 6538, "counts_per_unit": 20}
HX = {"driver": "hx710b", "dout": 19, "sck": 18, "rate": 40, "raw_per_unit": 1000,
      "counts_per_unit": 20}
MPRLS = {"driver": "mprls", "sda": 21, "scl": 22, "addr": 0x18, "eoc": None, "counts_per_unit": 20}
ENV = {"driver": "myoware", "pin": 34, "atten_db": 11, "mode": "envelope", "uv_per_unit": 3000,
       "counts_per_unit": 1}
RAW = {"driver": "myoware", "pin": 34, "atten_db": 11, "mode": "raw", "uv_per_unit": 200,
       "counts_per_unit": 1}
ADS = {"driver": "ads1292r", "sclk": 18, "mosi": 23, "miso": 19, "cs": 5, "drdy": 4, "start": 16,
       "reset": 17, "spi_id": 2, "gain": 12, "channel": 1, "counts_per_unit": 1}


def _cfg(base, **kw):
    d = dict(base)
    d.update(kw)
    return d


def _raises(fn, *words):
    """fn() raises SensorError whose message has every word; returns the text."""
    try:
        fn()
    except SensorError as e:
        msg = str(e)
        for w in words:
            assert w in msg, (w, msg)
        return msg
    raise AssertionError("no SensorError, expected one mentioning %r" % (words,))


def alloc_bytes(fn, n=200):
    """Heap bytes allocated by n calls of fn after one warm-up call
    (MicroPython; under CPython the calls run and the result is None)."""
    if not MICROPYTHON:
        for _ in range(n + 1):
            fn()
        return None
    fn()
    gc.collect()
    gc.disable()
    m0 = gc.mem_alloc()
    for _ in range(n):
        fn()
    m1 = gc.mem_alloc()
    gc.enable()
    return m1 - m0


def _no_alloc(fn, n=200):
    a = alloc_bytes(fn, n)
    assert a is None or a == 0, "%d bytes allocated over %d calls" % (a, n)


# ---------------------------------------------------------------- common --

def test_scaler_is_exact_and_small_int_safe():
    seed = 7
    for num, den in ((20, 6538), (20 * 25 * 70307, 13421772 * 1000), (1, 200), (20, 1000),
                     (4840000, 12 << 24), (1, 3.3e6), (15, 1)):
        m, sh, r = scaler(num, den)
        assert 1 <= m < 65536
        for _ in range(400):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            d = (seed & 0xFFFFFF) - 0x800000
            d = d * 2 if seed & 1 else d          # up to +-2**24
            if d >= 1 << 24:
                d = (1 << 24) - 1
            hi = (d >> 12) * m + (((d & 0xFFF) * m) >> 12) + r
            assert -(1 << 30) < hi < (1 << 30)
            y = hi >> sh
            exact = d * num / den
            assert abs(y - exact) <= 1 + abs(exact) / 32768, (num, den, d, y, exact)
    _raises(lambda: scaler(40, 1), "too large")


def test_open_sensor_names_unknown_driver():
    sim = esp32_machine.fresh()
    _raises(lambda: open_sensor({"driver": "bmp280"}, 100, sim), "bmp280", "analog_pressure", "mprls")


def test_open_sensor_imports_only_its_driver():
    sim = esp32_machine.fresh()
    for k in list(sys.modules):
        if k.startswith("drivers."):
            del sys.modules[k]
    sim.set_adc(34, 400000)
    drv = open_sensor(ANALOG, 100, sim)
    assert drv.__class__.__name__ == "AnalogPressure"
    loaded = sorted(k for k in sys.modules if k.startswith("drivers."))
    assert loaded == ["drivers.analog_pressure"], loaded


# ------------------------------------------------------- analog pressure --

def test_analog_pressure_converts_microvolts_to_counts():
    sim = esp32_machine.fresh()
    drv = open_sensor(ANALOG, 100, sim)
    assert drv.unit == "cmH2O" and drv.counts_per_unit == 20 and drv.rate_hz == 100
    assert drv.drdy is None
    adc = drv._adc
    assert adc.atten() == sim.ADC.ATTN_11DB           # attenuation set explicitly
    for cm, want in ((0, 0), (40, 800), (12.5, 250), (-5, -100), (300, 6000)):
        sim.set_adc(34, 333000 + int(cm * 6538))
        assert abs(drv.read() - want) <= 1, (cm, drv.read(), want)
    assert drv.saturated == 0


def test_analog_pressure_zero_after_insertion():
    sim = esp32_machine.fresh()
    drv = open_sensor(ANALOG, 100, sim)
    sim.set_adc(34, 351000, noise=3000)             # probe inserted: 2.75 cmH2O above the profile's zero
    z = drv.zero()
    assert abs(z - 351000) < 800 and drv.zero_uv == z
    sim.set_adc(34, 351000 + 40 * 6538)
    assert abs(drv.read() - 800) <= 3


def test_analog_pressure_refuses_adc2_pin():
    sim = esp32_machine.fresh()
    _raises(lambda: open_sensor(_cfg(ANALOG, pin=25), 100, sim), "GPIO25", "ADC1", "GPIO32-39")
    _raises(lambda: open_sensor(_cfg(ANALOG, atten_db=9), 100, sim), "atten_db", "11")


def test_analog_pressure_check_finds_rails_and_floating_input():
    sim = esp32_machine.fresh()
    drv = open_sensor(ANALOG, 100, sim)
    sim.set_adc(34, 0)                               # sensor unpowered / output wire off
    _raises(drv.check, "GPIO34", "bottom rail", "5 V supply")
    assert drv.read() == -RAIL                       # the ADC floor (~142 mV): saturation,
    assert drv.saturated == 1                        # as the chain's input guard reads it
    sim.set_adc(34, 3300000)                         # no divider: 5 V sensor straight to the pin
    _raises(drv.check, "top rail", "divider")
    sim.set_adc(34, 1600000, noise=700000)
    _raises(drv.check, "floating")
    sim.set_adc(34, 333000, noise=15000)             # a real sensor at rest: fine
    assert abs(drv.check() - 333000) < 5000


def test_analog_pressure_wrong_attenuation_saturates():
    # at 0 dB the ESP32 ADC flattens near 1.1 V: a 1.6 V squeeze would clip
    sim = esp32_machine.fresh()
    drv = open_sensor(_cfg(ANALOG, atten_db=0), 100, sim)
    sim.set_adc(34, 1600000)
    _raises(drv.check, "top rail")
    n = drv.saturated
    assert drv.read() == RAIL
    assert drv.saturated == n + 1


def test_analog_pressure_read_allocates_nothing():
    sim = esp32_machine.fresh()
    drv = open_sensor(ANALOG, 100, sim)
    wave = array("i", [333000 + (i * 997) % 300000 for i in range(64)])
    sim.set_adc_wave(34, wave, noise=2000)
    _no_alloc(drv.read, 500)


# ------------------------------------------------------------- HX710B -----

def _hx(code=0, **kw):
    sim = esp32_machine.fresh()
    hx = chips.HX710BModel(dout=19, sck=18)
    hx.set_raw(code)
    return sim, hx, open_sensor(_cfg(HX, **kw), kw.get("rate", 40), sim)


def test_hx710b_counts_and_rate_selection():
    sim, hx, drv = _hx(123456)
    assert drv.drdy is not None and drv.rate_hz == 40
    drv.check()
    sim.vtime.advance_us(60000)
    assert hx.sel == 27 and hx.rate_hz() == 40       # 27 pulses chose differential 40 Hz
    assert hx.bad_frames == 0 and hx.power_downs == 0
    z = drv.zero(8)
    assert z == 123456
    hx.set_raw(123456 + 40 * 1000)                   # +40 cmH2O at 1000 raw per cmH2O
    sim.vtime.advance_us(26000)
    assert drv.read() == 800
    hx.set_raw(123456 - 2500)
    sim.vtime.advance_us(26000)
    assert drv.read() == -50
    # no new conversion: the last value again, counted as stale
    n = drv.stale
    assert drv.read() == -50 and drv.stale == n + 1
    hx.set_raw(-3000000)                             # two's complement below zero
    sim.vtime.advance_us(26000)
    drv.read()
    assert drv.raw == -3000000


def test_hx710b_10hz_uses_25_pulses():
    sim, hx, drv = _hx(1000, rate=10)
    drv.check()
    sim.vtime.advance_us(150000)
    assert hx.sel == 25 and hx.last_frame_pulses == 25 and drv.rate_hz == 10
    _raises(lambda: open_sensor(_cfg(HX, rate=80), 80, sim), "10 or 40")


def test_hx710b_never_powers_down_and_leaves_sck_low():
    sim, hx, drv = _hx(5000)
    drv.check()
    for _ in range(50):
        sim.vtime.advance_us(25000)
        drv.read()
    assert hx.power_downs == 0 and hx.bad_frames == 0 and hx.frames >= 50
    assert sim.line(18).level() == 0                 # SCK parked low = powered
    assert sim.irq_nesting == 0                      # interrupts re-enabled after every frame
    # the model does power down when SCK stays high > 60 us (so the check above means something)
    drv._sck.on()
    sim.vtime.advance_us(30000)
    drv._sck.off()
    assert hx.power_downs == 1 and hx.sel == 25


def test_hx710b_check_finds_missing_and_miswired_chip():
    sim = esp32_machine.fresh()                        # no chip: DOUT floats low, never clocks out
    drv = open_sensor(HX, 40, sim)
    _raises(drv.check, "DOUT GPIO19", "stayed low", "SCK")
    sim = esp32_machine.fresh()
    hx = chips.HX710BModel(dout=19, sck=18)
    hx.due = 1 << 60                                 # unpowered module: DOUT pulled high
    drv = open_sensor(HX, 40, sim)
    _raises(drv.check, "never went low", "VCC", "swapped")
    sim = esp32_machine.fresh()
    chips.HX710BModel(dout=19, sck=18)
    drv = open_sensor(_cfg(HX, sck=5), 40, sim)      # SCK on the wrong pin
    _raises(drv.check, "stayed low", "SCK GPIO5")


def test_hx710b_check_finds_full_scale():
    sim, hx, drv = _hx()
    hx.set_uv(20000)                                 # 20 mV: beyond +-12.9 mV full scale at 3.3 V
    _raises(drv.check, "full scale")
    sim.vtime.advance_us(26000)
    assert drv.read() == RAIL
    assert drv.saturated == 1 and drv.raw == 0x7FFFFF


def test_hx710b_read_allocates_nothing():
    sim, hx, drv = _hx(777)
    drv.check()
    adv = sim.vtime.advance_us

    def one():
        adv(25000)
        drv.read()
    _no_alloc(one, 100)


# --------------------------------------------------------------- MPRLS ----

def _mprls(eoc_model=None, **kw):
    sim = esp32_machine.fresh()
    m = chips.MPRLSModel(sda=21, scl=22, eoc=eoc_model)
    return sim, m, open_sensor(_cfg(MPRLS, **kw), 100, sim)


def test_mprls_reads_gauge_pressure_after_zero():
    sim, m, drv = _mprls()
    m.set_gauge_cmh2o(0)
    drv.check()
    z = drv.zero()
    assert abs(z - 9567549) < 3                      # one standard atmosphere
    m.set_gauge_cmh2o(40)
    drv.read()                                       # reads the zero's last conversion, starts one
    sim.vtime.advance_us(10000)
    y = drv.read()
    assert abs(y - 800) <= 1, y
    m.set_gauge_cmh2o(-3)
    sim.vtime.advance_us(10000)
    drv.read()
    sim.vtime.advance_us(10000)
    assert abs(drv.read() + 60) <= 1
    assert drv.saturated == 0 and drv.errors == 0


def test_mprls_read_is_pipelined_and_never_waits():
    sim, m, drv = _mprls()
    drv.check()
    t0 = sim.vtime.now
    cmds = m.commands
    drv.read()
    assert sim.vtime.now == t0                       # no waiting inside read()
    assert m.commands == cmds                        # still busy: no new command yet
    assert drv.stale == 1
    sim.vtime.advance_us(6000)
    drv.read()
    assert m.commands == cmds + 1 and m.busy         # read the result, started the next
    for _ in range(20):
        sim.vtime.advance_us(10000)
        drv.read()
    assert m.busy_reads == 1 and drv.stale == 1


def test_mprls_check_errors_name_the_fix():
    sim = esp32_machine.fresh()
    drv = open_sensor(MPRLS, 100, sim)
    _raises(drv.check, "MPRLS: no answer at I2C 0x18 on SDA GPIO21/SCL GPIO22", "wiring", "3.3 V")
    sim, m, drv = _mprls()
    m.integrity_error = True
    _raises(drv.check, "memory integrity", "replace")
    sim, m, drv = _mprls()
    m.set_psi(27)
    _raises(drv.check, "math saturation")
    sim, m, drv = _mprls()
    m.unpowered = True
    _raises(drv.check, "not powered")
    sim, m, drv = _mprls(eoc_model=15, eoc=4)        # EOC wired to GPIO15, profile says 4
    _raises(drv.check, "EOC GPIO4")
    _raises(lambda: open_sensor(MPRLS, 400, sim), "rate_hz", "10-100")


def test_mprls_with_eoc_and_overrange_and_unplugged():
    sim, m, drv = _mprls(eoc_model=4, eoc=4)
    drv.check()
    drv.zero(4)
    reads = m.reads
    drv.read()                                       # EOC still low: no I2C traffic at all
    assert m.reads == reads and drv.stale == 1
    sim.vtime.advance_us(10000)
    m.set_psi(26)
    drv.read()
    sim.vtime.advance_us(10000)
    assert drv.read() == RAIL                        # past 25 psi: the top rail
    assert drv.saturated == 1 and drv.status & 0x01
    last = drv.read()
    m.present = False                                # cable pulled mid-session
    sim.vtime.advance_us(10000)
    assert drv.read() == last and drv.errors == 1    # no exception in the sampler's callback


def test_mprls_read_allocates_nothing():
    sim, m, drv = _mprls()
    drv.check()
    adv = sim.vtime.advance_us

    def one():
        adv(10000)
        drv.read()
    _no_alloc(one, 200)
    m.present = False                                # the error path stays quiet too (OSError is
    drv.read()                                       # raised by the sim, so it is not measured)


# ------------------------------------------------------------- MyoWare ----

def test_myoware_envelope_counts_microvolts():
    sim = esp32_machine.fresh()
    drv = open_sensor(ENV, 100, sim)
    assert drv.unit == "uV" and drv.zero() is None
    sim.set_adc(34, 0)                               # at rest: the ADC floor
    drv.check()
    assert 142000 <= drv.floor_uv < 150000
    assert drv.read() == 0
    sim.set_adc(34, 300 * 3000)                      # 300 uV envelope at gain 3000
    assert drv.read() == 300
    sim.set_adc(34, 3300000)
    assert drv.read() == RAIL
    assert drv.saturated == 1
    _raises(drv.check, "top rail", "3.3 V")


def test_myoware_raw_subtracts_mid_rail():
    sim = esp32_machine.fresh()
    drv = open_sensor(RAW, 1000, sim)
    sim.set_adc(34, 1662000, noise=4000)
    drv.check()
    assert abs(drv.offset_uv - 1662000) < 1500
    sim.set_adc(34, drv.offset_uv + 200 * 150)       # +150 uV at the skin, gain 200
    assert drv.read() == 150
    sim.set_adc(34, drv.offset_uv - 200 * 80)
    assert drv.read() == -80
    sim.set_adc(34, 3300000)                         # a lead tugged: both rails are saturation
    assert drv.read() == RAIL
    sim.set_adc(34, 0)                               # RAW pad not wired
    assert drv.read() == -RAIL
    _raises(drv.check, "not mid-rail", "RAW pad")


def test_myoware_read_allocates_nothing():
    sim = esp32_machine.fresh()
    drv = open_sensor(RAW, 1000, sim)
    sim.set_adc_wave(34, array("i", [1650000 + ((i * 7919) % 40000) - 20000 for i in range(50)]))
    _no_alloc(drv.read, 500)


# ----------------------------------------------------------- ADS1292R -----

def _ads(**kw):
    sim = esp32_machine.fresh()
    model = chips.ADS1292RModel(**kw)
    return sim, model


def test_ads1292r_configures_and_converts_to_microvolts():
    sim, m = _ads()
    drv = open_sensor(ADS, 500, sim)
    assert drv.check() == "ADS1292R"
    assert m.rdatac and m.running()
    assert m.regs[1] == 0x02 and m.regs[4] == 0x60 and m.regs[5] == 0x81   # 500 SPS, gain 12, ch2 off
    assert m.rate() == 500
    for uv in (100, -250, 2000, 0):
        m.set_input(1, uv)
        sim.vtime.advance_us(2000)
        assert not drv.drdy.value()
        y = drv.read()
        assert abs(y - uv) <= 1, (uv, y)
        assert drv.drdy.value()                      # data clocked out: DRDY back high
    assert drv.status >> 20 == 0xC and drv.saturated == 0
    for uv, rail in ((400000, RAIL), (-400000, -RAIL)):   # beyond full scale: clipped codes
        m.set_input(1, uv)
        sim.vtime.advance_us(2000)
        assert drv.read() == rail
    assert drv.saturated == 2


def test_ads1292r_rate_codes_and_channel_2():
    for rate, code in ((125, 0), (1000, 3), (8000, 6)):
        sim, m = _ads()
        drv = open_sensor(_cfg(ADS, channel=2, gain=6), rate, sim)
        drv.check()
        assert m.regs[1] == code and m.regs[5] == 0x00 and m.regs[4] == 0x81 and m.rate() == rate
        m.set_input(2, -500)
        sim.vtime.advance_us(1000000 // rate + 10)
        assert abs(drv.read() + 500) <= 1
    _raises(lambda: open_sensor(ADS, 600, sim), "600", "500 or 1000")


def test_ads1292r_check_errors_name_the_fix():
    sim = esp32_machine.fresh()
    drv = open_sensor(ADS, 500, sim)                 # nothing on the bus
    _raises(drv.check, "no answer", "0xff", "RESET/PWDN GPIO17")
    sim, m = _ads(ident=0x52)                        # an ADS1291
    _raises(open_sensor(ADS, 500, sim).check, "0x52", "0x73")
    sim, m = _ads(mosi=13)                           # DIN not on our MOSI: commands never arrive
    _raises(open_sensor(ADS, 500, sim).check, "no answer", "MOSI")
    sim, m = _ads(drdy=15)
    _raises(open_sensor(ADS, 500, sim).check, "DRDY GPIO4 never went low", "START GPIO16")
    sim, m = _ads()
    m.set_input(1, 400000)                           # electrodes off: input far beyond 2.42 V / 12
    _raises(open_sensor(ADS, 500, sim).check, "full scale", "electrodes")
    sim, m = _ads(ident=0x53)                        # the ADS1292 (no respiration) works the same
    assert open_sensor(ADS, 500, sim).check() == "ADS1292"


def test_ads1292r_wrong_spi_mode_is_garbled_in_the_model():
    # the model answers a mode-0 master one bit late, as the chip would
    sim, m = _ads()
    spi = sim.SPI(2, polarity=0, phase=0, sck=18, mosi=23, miso=19)
    cs = sim.Pin(5, sim.Pin.OUT, value=1)
    sim.Pin(17, sim.Pin.OUT, value=1)
    buf = bytearray(1)
    cs.off()
    spi.write(b"\x11")
    cs.on()
    cs.off()
    spi.write(b"\x20")
    spi.write(b"\x00")
    spi.readinto(buf)
    cs.on()
    assert buf[0] != 0x73


def test_ads1292r_read_allocates_nothing():
    sim, m = _ads()
    drv = open_sensor(ADS, 1000, sim)
    drv.check()
    m.set_wave(1, array("i", [(i * 37) % 400 - 200 for i in range(40)]))
    adv = sim.vtime.advance_us

    def one():
        adv(1000)
        drv.read()
    _no_alloc(one, 300)


# ---------------------------------------------------------------- IMU -----

def test_imu_mpu6050_tilt_along_probe_axis():
    sim = esp32_machine.fresh()
    m = chips.MPU6050Model()
    imu = open_imu({"driver": "mpu6050", "sda": 21, "scl": 22, "addr": 0x68, "axis": "y"}, sim)
    assert imu.check() == "MPU-6050"
    assert m.regs[0x6B] == 0                         # woken from sleep
    m.set_accel_mg(0, 500, 866)
    assert abs(imu.zero() - 500) <= 1
    m.set_accel_mg(0, 700, 714)
    assert abs(imu.tilt() - 200) <= 1
    m.set_accel_mg(0, 300, 954)
    assert abs(imu.tilt() + 200) <= 1
    _no_alloc(imu.tilt, 100)


def test_imu_lsm6ds3_and_errors():
    sim = esp32_machine.fresh()
    m = chips.LSM6DS3Model()
    imu = open_imu({"driver": "lsm6ds3", "sda": 21, "scl": 22, "addr": 0x6A, "axis": "-x"}, sim)
    assert imu.check() == "LSM6DS3" and m.regs[0x10] == 0x40
    m.set_accel_mg(-250, 0, 968)
    assert abs(imu.zero() - 250) <= 1
    m.set_accel_mg(-100, 0, 995)
    assert abs(imu.tilt() + 150) <= 1
    sim = esp32_machine.fresh()
    _raises(open_imu({"driver": "mpu6050", "sda": 21, "scl": 22}, sim).check, "no answer", "0x68")
    sim = esp32_machine.fresh()
    chips.LSM6DS3Model(addr=0x68)                      # an LSM6DS3 where the profile says MPU-6050
    _raises(open_imu({"driver": "mpu6050", "sda": 21, "scl": 22}, sim).check, "WHO_AM_I", "imu.driver")
    _raises(lambda: open_imu({"driver": "bno055"}, sim), "mpu6050 or lsm6ds3")


def test_mprls_and_imu_share_the_bus_and_a_second_pair_gets_bus_1():
    sim = esp32_machine.fresh()
    chips.MPRLSModel(sda=21, scl=22)
    chips.MPU6050Model(sda=21, scl=22)
    chips.MPRLSModel(sda=25, scl=26)
    a = open_sensor(MPRLS, 100, sim)
    b = open_sensor(_cfg(MPRLS, sda=25, scl=26), 100, sim)
    imu = open_imu({"driver": "mpu6050", "sda": 21, "scl": 22}, sim)
    assert a._i2c.id == 0 and imu._i2c.id == 0 and b._i2c.id == 1
    a.check()
    b.check()
    imu.check()
