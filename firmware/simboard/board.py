# The virtual trainer's board: a synthetic user instead of a probe, a disk
# image holding real littlefs instead of flash, a pseudo-terminal instead of
# USB serial. Implements the board interface of docs/BOARD.md.
#
# Time: the board's clock runs `speed` times faster than the wall clock, and
# the sampler produces every sample that is due on that clock, so a session
# recorded at speed 20 is the same session as at speed 1, only sooner. With
# clock="virtual" the wall clock plays no part: board time is the samples
# taken, the sampler takes the next few whenever the application has drained
# the ring, and what a task sees depends only on the seed and the script.
import sys
import gc
import time
import asyncio

from knip.ring import SampleRing
from knip import programs
from simboard.synth import SyntheticUser
from simboard.blockdev import mount, pin_store_id
from simboard.users import USERS

_MOUNT = "/flash"


def _round(v):
    return int(v + 0.5) if v >= 0 else -int(0.5 - v)


class SimBoard:
    name = "sim"

    def __init__(self, image, speed=1.0, seed=1, user="good", signal="pressure", rate_hz=None,
                 device_id="sim-0001", baud=115200, link=None, blocks=512, channels=0, clock="wall"):
        if clock not in ("wall", "virtual"):
            raise ValueError("clock must be 'wall' or 'virtual', not %r" % clock)
        self.virtual = clock == "virtual"
        self.signal = signal
        self.emg = signal == "emg"
        self.unit = "uV" if self.emg else "cmH2O"
        self.counts_per_unit = 1 if self.emg else 20
        self.rate_hz = rate_hz or (1000 if self.emg else 100)
        self.channels = channels or (1 if self.emg else 2)   # pressure: pelvic floor + abdominal
        self.device_id = device_id
        self.speed = speed
        self.user_kind = user
        traits = USERS.get(user)
        if traits is None:
            raise ValueError("unknown user %r: one of %s" % (user, ", ".join(sorted(USERS))))
        self.user = SyntheticUser(signal, self.rate_hz, seed=seed, user=traits,
                                  gain=self.counts_per_unit, keep_truth=False,
                                  abd=self.channels > 1)
        self.ring = SampleRing(512)
        mount(image, _MOUNT, 4096, blocks)   # littlefs, formatted only if blank
        self.fs_root = _MOUNT + "/sessions"
        if self.virtual:
            pin_store_id(self.fs_root, seed)
        self.link = link
        self._t0 = time.ticks_ms()
        self._n = 0                     # samples taken
        self._fresh = asyncio.Event()
        self._tick = asyncio.Event()     # virtual clock: set whenever time moves
        self._task = None
        self.stepped = False            # True: step() is called from outside, no sampler task
        self.cue_now = "rest"
        self.cues = 0
        self._jumped = False            # short_rest: already squeezing before the cue
        self._presses = []              # (board ms, 1 short / 2 long) of the pain buttons
        self.alerts = []
        self.image = image
        self.report_heap = True         # INFO's heap_free (the golden run turns it off: it varies)

    # ---- clock ---------------------------------------------------------

    def _wall_ms(self):
        return int(time.ticks_diff(time.ticks_ms(), self._t0) * self.speed)

    def ticks_ms(self):
        if self.virtual:
            return self._n * 1000 // self.rate_hz
        # The board clock never runs ahead of the samples taken: when the
        # host CPU cannot keep up with `speed`, simulated time slows down
        # instead of losing samples, so cues and samples stay in step.
        wall = self._wall_ms()
        ahead = self._n * 1000 // self.rate_hz + 10
        return wall if wall < ahead else ahead

    async def sleep_ms(self, ms):
        if self.stepped:
            # the host clock's sleep parks the task on board time and wakes it
            # when due (hostclock.py), not at every 10 ms step as _tick would
            # (6 % of the trainer's CPU; the bytes of every run the same)
            await asyncio.sleep_ms(ms)
            return
        # sleep on the board clock, waking early enough not to overshoot
        end = self.ticks_ms() + ms
        while True:
            left = end - self.ticks_ms()
            if left <= 0:
                return
            if self.virtual:
                await self._tick.wait()     # the sampler moved the clock on
            else:
                await asyncio.sleep_ms(max(1, int(left / self.speed)))

    # ---- sampler -------------------------------------------------------

    def start(self):
        # App collects after every 64 KB allocated, which keeps a board's GC
        # pauses short. Here nothing samples in real time, and the synthetic
        # user's floats make that a collection every few hundred samples: a
        # third of the trainer's CPU. Collect when the heap is full.
        if hasattr(gc, "threshold"):
            gc.threshold(-1)
        self._t0 = time.ticks_ms()      # the board clock starts with the sampler
        if not self.stepped:
            self._task = asyncio.create_task(self._sampler())

    def stop(self):
        if self._task is not None:
            self._task.cancel()

    async def wait_samples(self):
        # like the ESP32's ThreadSafeFlag from the timer: wake when samples come
        await self._fresh.wait()
        self._fresh.clear()

    async def _sampler(self):
        if self.virtual:
            await self._virtual_sampler()
            return
        ring = self.ring
        user = self.user
        rate = self.rate_hz
        # never more than ~200 ms ahead of the application: when the host CPU
        # cannot process `speed` x real time, the board clock waits for it
        # (as a real board's app keeps up with its sampler)
        room = min(ring.size - 8, max(8, rate // 5))
        while True:
            now = self._wall_ms()
            n = self._n
            while n * 1000 // rate <= now and ring.count() < room:
                x, a = user.step()
                ring.put(n * 1000 // rate, _round(x), 0 if a is None else _round(a))
                n += 1
                self._n = n
            if ring.count():
                self._fresh.set()
            await asyncio.sleep_ms(2)

    async def _virtual_sampler(self):
        # 10 ms of samples whenever the application has taken the last ones:
        # the clock never runs ahead of the processing, whatever the CPU
        ring = self.ring
        while True:
            if ring.count() == 0:
                self.step()
            await asyncio.sleep_ms(0)

    def step(self):
        """Virtual clock: 10 ms of samples now (the host-owned clock,
        simboard/hostclock.py, calls this instead of running the sampler)."""
        ring = self.ring
        user = self.user
        rate = self.rate_hz
        n = self._n
        for _ in range(max(1, rate // 100)):
            x, a = user.step()
            ring.put(n * 1000 // rate, _round(x), 0 if a is None else _round(a))
            n += 1
        self._n = n
        self._fresh.set()
        self._tick.set()
        self._tick.clear()

    # ---- user interface ------------------------------------------------

    def cue(self, cue, dur_ms, target):
        # LED/buzzer on a real board; here the synthetic user follows it
        self.cues += 1
        self.cue_now = programs.CUE_NAMES[cue]
        u = self.user
        tr = u.traits
        if cue == programs.CUE_SQUEEZE:
            if self._jumped:
                self._jumped = False    # she is squeezing already
            else:
                # a quick squeeze is planned as one (it peaks by ~0.5 s); a hold
                # lasts until the relax cue
                u.cue("squeeze", dur_ms / 1000 if dur_ms <= 2000 else None)
        elif cue == programs.CUE_RELAX:
            u.cue("relax")
            early = tr["early_s"]
            if early and dur_ms / 1000 > early:
                # she does not wait for the next cue
                u.cue("squeeze", at=u.t + dur_ms / 1000 - early)
                self._jumped = True
        elif cue in (programs.CUE_REST, programs.CUE_DONE, programs.CUE_PAIN):
            if self._jumped:
                self._jumped = False
            u.cue("relax")
            if cue == programs.CUE_PAIN:
                score = tr["pain_after" if target else "pain_before"]
                if score is not None:
                    # one short press per point, then a long press to confirm
                    t = self.ticks_ms() + 1500
                    self._presses = [(t + 400 * i, 1) for i in range(score)] + [(t + 400 * score, 2)]

    def read_button(self):
        """0 nothing, 1 a short press, 2 a long press (one per call)."""
        p = self._presses
        if p and p[0][0] <= self.ticks_ms():
            return p.pop(0)[1]
        return 0

    def alert(self, text):
        self.alerts.append(text)
        sys.stderr.write("knip-sim: %s\n" % text)

    def battery(self):
        # a LiPo slowly discharging over 8 h of board time
        pct = 100 - self.ticks_ms() // 288000
        pct = 5 if pct < 5 else pct
        return pct, 3300 + pct * 9

    def extra_info(self):
        d = {"sim": {"speed": self.speed, "user": self.user_kind, "cue": self.cue_now,
                     "clock": "virtual" if self.virtual else "wall",
                     "t0_ns": None if self.virtual else self._t0_ns()}}
        if self.report_heap and hasattr(gc, "mem_free"):
            gc.collect()
            d["heap_free"] = gc.mem_free()      # as the ESP32 board reports it
        return d

    def _t0_ns(self):
        # wall-clock time of board tick 0, for latency measurements
        return time.time_ns() - int(self.ticks_ms() / self.speed * 1000000)
