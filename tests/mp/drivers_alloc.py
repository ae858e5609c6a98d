# Heap bytes per driver read() and per sampler tick, measured with
# gc.mem_alloc() under MicroPython against the simulated machine
# (simboard/esp32_machine.py in virtual time, simboard/chips.py).
#   micropython drivers_alloc.py
# Prints one line per path: "alloc NAME BYTES CALLS ticks T" (T: samples the
# sampler took, "-" for a bare read), then a control that
# does allocate, so a reader (and tests/test_drivers.py) can see the meter works.
from array import array
from test_esp_drivers import (alloc_bytes, esp32_machine, chips, open_sensor, open_imu,
                              ANALOG, HX, MPRLS, ENV, RAW, ADS, _cfg)
from espboard.sampler import Sampler
from knip.ring import SampleRing

N = 500


def report(name, fn, n=N, sampler=None):
    a = alloc_bytes(fn, n)
    print("alloc", name, a, n, "ticks", sampler.ticks if sampler else "-")


def stepper(sim, drv, us):
    adv = sim.vtime.advance_us

    def one():
        adv(us)
        drv.read()
    return one


def sampled(sim, ring, us):
    adv = sim.vtime.advance_us

    def one():
        adv(us)
        while ring.count():
            ring.skip(1)
    return one


def main():
    sim = esp32_machine.fresh()
    sim.set_adc_wave(34, array("i", [333000 + (i * 997) % 300000 for i in range(64)]), noise=2000)
    report("analog_pressure.read", open_sensor(ANALOG, 100, sim).read)

    sim = esp32_machine.fresh()
    sim.set_adc(34, 0)
    drv = open_sensor(ENV, 100, sim)
    drv.check()
    sim.set_adc_wave(34, array("i", [(i * 7919) % 900000 for i in range(50)]))
    report("myoware_envelope.read", drv.read)

    sim = esp32_machine.fresh()
    sim.set_adc(34, 1650000, noise=20000)
    drv = open_sensor(RAW, 1000, sim)
    drv.check()
    report("myoware_raw.read", drv.read)

    sim = esp32_machine.fresh()
    hx = chips.HX710BModel(dout=19, sck=18)
    hx.set_raw(4321)
    drv = open_sensor(HX, 40, sim)
    drv.check()
    report("hx710b.read+25ms", stepper(sim, drv, 25000), 200)

    sim = esp32_machine.fresh()
    chips.MPRLSModel()
    drv = open_sensor(MPRLS, 100, sim)
    drv.check()
    report("mprls.read+10ms", stepper(sim, drv, 10000))

    sim = esp32_machine.fresh()
    m = chips.ADS1292RModel()
    drv = open_sensor(ADS, 1000, sim)
    drv.check()
    m.set_wave(1, array("i", [(i * 37) % 400 - 200 for i in range(40)]))
    report("ads1292r.read+1ms", stepper(sim, drv, 1000))

    sim = esp32_machine.fresh()
    chips.MPU6050Model()
    imu = open_imu({"driver": "mpu6050", "sda": 21, "scl": 22}, sim)
    imu.check()
    report("imu.tilt", imu.tilt, 200)

    # the sampler: timer-paced, two analog channels and a before() hook
    sim = esp32_machine.fresh()
    sim.set_adc(34, 500000, noise=5000)
    sim.set_adc(36, 400000, noise=5000)
    ring = SampleRing(64)
    s = Sampler(ring, open_sensor(ANALOG, 100, sim), open_sensor(_cfg(ANALOG, pin=36), 100, sim),
                100, machine=sim, before=lambda t: None)
    s.start()
    report("sampler_tick.timer_2ch", sampled(sim, ring, 10000), sampler=s)
    report("sim_only.advance_10ms_no_sampler", sampled(esp32_machine.fresh(), SampleRing(4), 10000))

    # the sampler paced by data-ready: ADS1292R at 1 kHz, HX710B at 40 Hz
    sim = esp32_machine.fresh()
    chips.ADS1292RModel()
    drv = open_sensor(ADS, 1000, sim)
    drv.check()
    ring = SampleRing(64)
    s = Sampler(ring, drv, rate_hz=1000, machine=sim)
    s.start()
    report("sampler_tick.ads1292r_drdy", sampled(sim, ring, 1000), sampler=s)

    sim = esp32_machine.fresh()
    chips.HX710BModel(dout=19, sck=18)
    drv = open_sensor(HX, 40, sim)
    drv.check()
    ring = SampleRing(64)
    s = Sampler(ring, drv, rate_hz=40, machine=sim)
    s.start()
    report("sampler_tick.hx710b_dout", sampled(sim, ring, 25000), 200, sampler=s)

    # control: a read that builds a float per call must show up
    drv = open_sensor(ANALOG, 100, esp32_machine.fresh())
    report("control_float_per_call", lambda: drv.read() * 0.05)


main()
