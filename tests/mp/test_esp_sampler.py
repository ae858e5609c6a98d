# Portable tests of the ESP32 sampler (firmware/espboard/sampler.py): timer
# and data-ready pacing, gaps counted after stalls, a full soft-IRQ queue and
# masked interrupts, no heap per tick. Run by pytest under CPython and by
# tests/mp/run_tests.py under the MicroPython unix port, on the simulated
# ESP32 in virtual time with the chip models (see test_esp_drivers.py).
from test_esp_drivers import ADS, ANALOG, _ads, _cfg, _hx, _no_alloc   # first: puts firmware/ on the path
from espboard.sampler import Sampler
from knip.ring import SampleRing
from drivers import open_sensor
from simboard import esp32_machine


class _Counter:
    """A sensor stand-in for sampler tests: returns 0, 1, 2, ..."""
    drdy = None
    saturated = 0

    def __init__(self):
        self.n = 0

    def read(self):
        self.n += 1
        return self.n


def _timer_sampler(rate=100, size=512, main=None, abd=None, before=None, clock=None):
    sim = esp32_machine.fresh()
    ring = SampleRing(size)
    s = Sampler(ring, main or _Counter(), abd, rate, clock=clock, machine=sim, before=before)
    return sim, ring, s


def _drain(ring):
    out = []
    while ring.count():
        out.append((ring.t[ring.tail], ring.x[ring.tail], ring.a[ring.tail]))
        ring.skip(1)
    return out


def test_sampler_timer_fills_ring_with_timestamps():
    seen = []
    sim, ring, s = _timer_sampler(100, abd=_Counter(), before=seen.append)
    s.start()
    tim = sim.timers[0]
    assert tim.period_us == 10000 and tim.mode == sim.Timer.PERIODIC
    sim.vtime.advance_us(1000000)
    got = _drain(ring)
    assert len(got) == 100 and s.ticks == 100
    assert [g[0] for g in got] == [10 * (i + 1) for i in range(100)]
    assert [g[1] for g in got] == list(range(1, 101)) and got[-1][2] == 100
    assert seen == [g[0] for g in got]               # before(t) ran first, with the sample's t
    assert ring.missed == 0 and s.late_max_us == 10000
    assert s.flag.state == 1
    s.stop()
    sim.vtime.advance_us(100000)
    assert ring.count() == 0 and s.ticks == 100 and tim.callback is None


def test_sampler_counts_gap_when_clock_jumps_three_periods():
    sim, ring, s = _timer_sampler(100)
    s.start()
    tim = sim.timers[0]
    tim.fire()
    sim.vtime.jump_us(10000)
    tim.fire()
    sim.vtime.jump_us(30000)                         # two ticks never came
    tim.fire()
    assert s.late_max_us == 30000
    sim.vtime.jump_us(10000)
    tim.fire()                                       # on time again: the gap is settled
    assert ring.missed == 2 and s.ticks == 4 and ring.count() == 4


def test_sampler_gap_after_scheduler_queue_overflow():
    # a 100 ms stall at 100 Hz: 10 alarms, the queue keeps 8, drops 2; the 8
    # then run back to back and must not be counted as lost
    sim, ring, s = _timer_sampler(100)
    s.start()
    sim.vtime.advance_us(200000)
    sim.stall_us(100000)
    assert sim.sched.dropped == 2
    sim.vtime.advance_us(100000)
    assert ring.missed == 2
    tim = sim.timers[0]
    assert s.ticks + ring.missed == tim.alarms
    assert ring.count() == s.ticks


def test_sampler_short_stall_drained_from_the_queue_loses_nothing():
    # a 35 ms stall at 100 Hz: the three ticks due meanwhile wait in the
    # queue and run back to back; the next tick is on time. Nothing is lost
    # (an interval rule alone would count 3.5 periods as 3 lost, then 1).
    sim, ring, s = _timer_sampler(100)
    s.start()
    tim = sim.timers[0]
    tim.fire()
    sim.vtime.jump_us(35000)
    for _ in range(3):
        tim.fire()                                   # due at 10, 20 and 30 ms
    sim.vtime.jump_us(5000)
    tim.fire()                                       # due at 40 ms, on time
    sim.vtime.jump_us(10000)
    tim.fire()
    assert ring.missed == 0 and s.ticks == 6, (ring.missed, s.ticks)


def test_sampler_two_stalls_in_a_row_lose_nothing():
    # GC-length stalls back to back (13 ms, then 13.4 ms, at 100 Hz): the
    # first queued tick after the second one comes 13.4 ms after the
    # previous callback, like an on-time tick, with a second queued tick
    # right behind it. Nothing was dropped, so nothing may be counted.
    sim, ring, s = _timer_sampler(100)
    s.start()
    sim.vtime.advance_us(105000)
    sim.stall_us(13000)                              # the 110 ms tick waits, runs at 118 ms
    sim.stall_us(13400)                              # the 120 and 130 ms ticks wait, run at 131.4 ms
    sim.vtime.advance_us(100000)
    tim = sim.timers[0]
    assert sim.sched.dropped == 0
    assert ring.missed == 0, ring.missed
    assert s.ticks == tim.alarms


def test_sampler_gap_after_interrupts_masked():
    # a flash write masks interrupts for 52 ms: one latched alarm comes after
    sim, ring, s = _timer_sampler(100)
    s.start()
    sim.vtime.advance_us(105000)
    sim.irq_off_us(52000)
    sim.vtime.advance_us(100000)
    tim = sim.timers[0]
    assert ring.missed == 4, ring.missed
    assert s.ticks + ring.missed == tim.alarms
    assert s.late_max_us >= 50000


def test_sampler_tick_allocates_nothing():
    sim = esp32_machine.fresh()
    drv = open_sensor(ANALOG, 100, sim)
    sim.set_adc(34, 500000, noise=5000)
    ring = SampleRing(64)
    s = Sampler(ring, drv, open_sensor(_cfg(ANALOG, pin=36), 100, sim), 100, machine=sim,
                before=lambda t: None)
    s.start()
    tim = sim.timers[0]
    adv = sim.vtime.advance_us

    def one():
        adv(10000)               # one alarm -> scheduled callback -> both reads -> put
        ring.skip(1) if ring.count() else None
    _no_alloc(one, 300)

    def burst():
        tim.fire()               # back-to-back ticks (the burst path) too
        ring.skip(1)
    _no_alloc(burst, 100)
    assert ring.missed == 0 and ring.dropped == 0 and s.ticks == 402


def test_sampler_paced_by_hx710b_dout():
    sim, hx, drv = _hx(50000)
    drv.check()
    ring = SampleRing(256)
    s = Sampler(ring, drv, rate_hz=40, machine=sim)
    s.start()
    t0 = sim.vtime.now
    sim.vtime.advance_us(1000000)
    got = _drain(ring)
    assert 39 <= len(got) <= 41, len(got)
    dts = [got[i + 1][0] - got[i][0] for i in range(len(got) - 1)]
    assert min(dts) >= 24 and max(dts) <= 26, dts
    # DOUT's own data bits make edges while interrupts are off: they latch
    # into one interrupt per frame, which finds DOUT high and is skipped, as
    # do the 4 Hz kick ticks
    assert len(got) + 3 <= s.spurious <= len(got) + 6, (s.spurious, len(got))
    assert sim.sched.dropped == 0
    assert hx.bad_frames == 0 and hx.power_downs == 0 and ring.missed == 0
    assert drv.stale == 0                            # every read found a fresh conversion


def test_sampler_kick_timer_unsticks_a_waiting_conversion():
    # a conversion ready before start() makes no falling edge; nor does one
    # whose edge was dropped: the slow kick timer reads it
    sim, hx, drv = _hx(1234)
    drv.check()
    sim.vtime.advance_us(50000)                      # DOUT low, nobody reading
    ring = SampleRing(64)
    s = Sampler(ring, drv, rate_hz=40, machine=sim)
    s.start()
    assert ring.count() == 1                         # start() read the waiting one
    ln = sim.line(19)
    ln.handler = None                                # lose every edge from now on
    sim.vtime.advance_us(1000000)
    assert 3 <= ring.count() <= 6                    # the 4 Hz kick still samples
    assert ring.missed > 20


def test_sampler_paced_by_ads1292r_drdy_and_gap_in_a_stall():
    sim, m = _ads()
    drv = open_sensor(ADS, 500, sim)
    drv.check()
    ring = SampleRing(512)
    s = Sampler(ring, drv, rate_hz=500, machine=sim)
    s.start()
    sim.vtime.advance_us(100000)
    n = ring.count()
    assert 49 <= n <= 51 and ring.missed == 0
    sim.stall_us(30000)                              # 15 conversions while Python is busy
    sim.vtime.advance_us(20000)
    # the queued DRDY callbacks find the data read already: one sample, 14 lost
    assert ring.missed == 14, ring.missed
    assert s.spurious >= 7
    assert ring.count() + ring.missed == m.conversions - 1     # -1: check() read one itself


def test_sampler_drdy_tick_allocates_nothing():
    sim, m = _ads()
    drv = open_sensor(ADS, 1000, sim)
    drv.check()
    ring = SampleRing(64)
    s = Sampler(ring, drv, rate_hz=1000, machine=sim)
    s.start()
    adv = sim.vtime.advance_us

    def one():
        adv(1000)                # a conversion -> DRDY edge -> callback -> SPI frame -> put
        ring.skip(1) if ring.count() else None
    _no_alloc(one, 300)
    assert ring.missed == 0


def test_sampler_wakes_the_application_every_30_ms_at_1khz():
    sim, ring, s = _timer_sampler(1000)
    assert s.wake_n == 30
    s.start()
    sets = []
    for _ in range(95):
        s.flag.clear()
        sim.vtime.advance_us(1000)
        sets.append(s.flag.state)
    s.stop()
    assert ring.count() == 95 and sets == ([0] * 29 + [1]) * 3 + [0] * 5
    sim, ring, s = _timer_sampler(100)
    assert s.wake_n == 1                # 100 Hz: every sample
    sim, ring, s = _timer_sampler(500)
    assert s.wake_n == 15


def test_sampler_flag_wakes_a_waiting_task():
    import asyncio
    sim, ring, s = _timer_sampler(100)
    s.start()
    woke = []

    async def waiter():
        await s.flag.wait()
        woke.append(ring.count())

    async def main():
        task = asyncio.create_task(waiter())
        await asyncio.sleep_ms(5) if hasattr(asyncio, "sleep_ms") else await asyncio.sleep(0.005)
        assert not woke
        sim.vtime.advance_us(10000)
        for _ in range(50):
            if woke:
                break
            await asyncio.sleep(0.002)
        task.cancel()
    asyncio.run(main())
