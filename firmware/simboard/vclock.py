# Virtual ESP32 time for the simulated machine (esp32_machine): the `time`
# functions the drivers wait with (drivers.clock), moving only when the
# simulation says so, so waiting costs no real time and every run is the
# same. advance_us() runs what falls due meanwhile (chip events, timer
# alarms) in time order, each followed by the scheduled soft-IRQ callbacks
# unless Python is busy. Allocates nothing.
from simboard import const

_MASK = const(0x3FFFFFFF)        # ticks wrap at 2**30, as on the ESP32
NEVER = 1 << 60                  # a `due` that never comes


class VClock:
    def __init__(self, sched):
        self.sched = sched            # the machine's SoftIrq
        self.now = 0                  # microseconds since the clock was made
        self.busy = 0                 # > 0: Python is busy, scheduled callbacks wait
        self.masked = 0               # > 0: interrupts masked, alarms only latch
        self.clocked = []             # chip models and timers: a `due` time and an event()

    def add(self, m):
        if m not in self.clocked:
            self.clocked.append(m)

    def remove(self, m):
        if m in self.clocked:
            self.clocked.remove(m)

    def ticks_us(self):
        return self.now & _MASK

    def ticks_ms(self):
        return (self.now // 1000) & _MASK

    def ticks_diff(self, a, b):
        d = (a - b) & _MASK
        return d - (_MASK + 1) if d > (_MASK >> 1) else d

    def ticks_add(self, a, b):
        return (a + b) & _MASK

    def sleep_us(self, n):
        self.advance_us(n)

    def sleep_ms(self, n):
        self.advance_us(n * 1000)

    def jump_us(self, n):
        """Move the clock with nothing happening in between (the world paused:
        chips and timers resume where they were)."""
        self.now += n
        for m in self.clocked:
            if m.due < NEVER:
                m.due += n

    def advance_us(self, n):
        """Let n us pass: chip events and timer alarms in time order, each
        followed (unless Python is busy) by the scheduled callbacks."""
        end = self.now + n
        while True:
            best = end
            who = None
            for m in self.clocked:
                d = m.due
                if d <= best:
                    best = d
                    who = m
            if who is None:
                break
            if best > self.now:
                self.now = best
            who.event()
            if not self.busy:
                self.sched.run()
        self.now = end
        if not self.busy:
            self.sched.run()
