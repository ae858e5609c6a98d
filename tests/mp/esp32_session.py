# The whole trainer on the virtual ESP32 board, in virtual time, for the
# memory, GC and lost-sample figures of `make bench` (bench/esp32_memory.py):
# the real Esp32Board from a board profile on the simulated `machine`, its
# timer sampler fed by a synthetic user through the ADC pins, the links as
# boot.py makes them (USB serial + the BLE link on the real aioble against
# a stand-in `bluetooth`: sim_bluetooth), and a scripted laptop that pairs
# over BLE, turns the live stream on, runs calibrate and daily, then syncs
# (LIST, FETCH, ACK) every session.
#   micropython -X heapsize=110k esp32_session.py PROFILE IMAGE [key value]...
# keys: ble 1|0 (0: the laptop talks over a plain link, no BLE modules),
#       rate HZ, abd 1 (a second channel on the abdominal pin), programs calibrate,daily,
#       probe_ms N (heap probe every N board ms; 0: none), stall_us N (after every
#       garbage collection Python stays busy N us of board time: IRQs queue),
#       stall_every_ms N (a stall of stall_us every N board ms as well, whatever the heap does;
#       with gc_us_per_kb, of the longest modelled pause so far),
#       gc_us_per_kb N, gc_base_us N (the ESP32's GC pauses, class GcModel: every collection
#       stalls gc_base_us + N us per KB of heap in use just before it, every gc.mem_free() or
#       gc.mem_alloc() the firmware makes N us per KB of the whole heap),
#       frag 1 (the largest free block at every probe, not only at a new peak),
#       map 1 (the heap's block map at the end: micropython.mem_info(1)),
#       max_board_s N (stop with "stopped ..." after this much board time: never hang),
#       seed N, limit_ms N (the first program only, stopped after N board ms, no sync: the
#       firmware's time per sample), mode sim (no firmware: the simulation's own time per sample),
#       profile 1|2|3 (with limit_ms: time what the simulation does inside the window, class
#       Prof; 2: the firmware's per-sample stages as well; 3: every asyncio task and the
#       scheduler's IO wait), pystone N (with limit_ms: pystone_lowmem, N passes, just before
#       and after the window; on MICROPYPATH), events 1 (the flags are asyncio Events:
#       faster on the host, a few bytes more heap), tape FILE with tape_mode record|play
#       (record: the pin values she produced, saved at the end; play: those values instead
#       of running her: the CPU runs replay a recorded session, so the synthetic user's
#       own time and garbage are not in the window at all)
# Prints "key value" lines; "mem_info" is followed by micropython.mem_info()'s.
# Heap figures are relative to a baseline taken after the simulation itself
# (machine, flash, synthetic user, radio) is set up and before the firmware
# is imported: what remains is what the firmware holds on a board.
import gc
import sys
import time
import asyncio
import micropython
from array import array
from micropython import const

from simboard import esp32_machine
from simboard.hostclock import EventFlag
from simboard.esp32_rig import rig, at_rest
from simboard.blockdev import mount
from simboard.synth import SyntheticUser
from simboard.users import USERS

_O = {"ble": "1", "rate": "0", "abd": "0", "programs": "calibrate,daily", "probe_ms": "1000",
      "stall_us": "0", "stall_every_ms": "0", "seed": "7", "user": "typical", "limit_ms": "0",
      "mode": "app", "frag": "0", "map": "0", "max_board_s": "3600", "profile": "0", "pystone": "0",
      "gc_us_per_kb": "0", "gc_base_us": "0", "events": "0", "tape": "", "tape_mode": "record"}


def _opts(argv):
    o = dict(_O)
    for i in range(0, len(argv) - 1, 2):
        o[argv[i]] = argv[i + 1]
    return o


PHASES = ("boot", "hello", "calibrate", "daily", "sync", "repl", "end")
_PAUSES = const(2048)          # probing collections whose pause is kept (the max is kept always)


class Stats:
    """Everything the probes keep, allocated before the baseline is taken:
    the figures then cost the heap nothing while the firmware runs."""

    def __init__(self):
        self.base = 0
        self.peak = 0              # live heap after a collection, above the baseline
        self.peak_at = "start"
        self.free_at_peak = 0      # largest free block then (bytes)
        self.min_free_block = 1 << 30
        self.min_free_at = ""
        self.pause_us = array("H", bytes(2 * _PAUSES))   # host us of the probing collections
        self.npause = 0
        self.pause_max = 0
        self.collections = 0       # collections seen (mem_alloc fell)
        self.phase = "boot"
        self.frag = False          # the largest free block at every probe, not only at a new peak
        self.phase_peak = {}       # phase -> peak live heap in it
        self.phase_free = {}       # phase -> smallest largest-free-block in it (frag)
        for p in PHASES:
            self.phase_peak[p] = 0
            self.phase_free[p] = 1 << 30
        self.steps = array("i", bytes(4 * 8))            # the heap after each start-up step
        self.error = None          # what stopped the session, when it did not end as scripted


_FIRMWARE_PKGS = ("asyncio", "knip", "espboard", "links", "drivers", "aioble", "json", "struct")
STEPS = ("imports", "board", "links", "app", "connected")


def largest_free():
    """Largest block the heap can give now (bytes): a binary search of
    allocations, each followed by a collection (the heap stays as it was)."""
    lo, hi = 0, gc.mem_free()
    while hi - lo > 64:
        mid = (lo + hi) // 2
        try:
            b = bytearray(mid)
            ok = True
        except MemoryError:
            ok = False
        b = None
        gc.collect()
        if ok:
            lo = mid
        else:
            hi = mid
    return lo


def live(st):
    gc.collect()
    return gc.mem_alloc() - st.base


def step(st, k):
    st.steps[k] = live(st)


def probe(st, where):
    t0 = time.ticks_us()
    gc.collect()
    t1 = time.ticks_us()
    gc.collect()
    t2 = time.ticks_us()
    us = min(time.ticks_diff(t1, t0), time.ticks_diff(t2, t1))
    if us > st.pause_max:
        st.pause_max = us
    if st.npause < _PAUSES:
        st.pause_us[st.npause] = us if us < 65535 else 65535
        st.npause += 1
    held = gc.mem_alloc() - st.base
    if where in st.phase_peak and held > st.phase_peak[where]:
        st.phase_peak[where] = held
    new_peak = held > st.peak
    if new_peak:
        st.peak = held
        st.peak_at = where
    if new_peak or st.frag:
        free = largest_free()
        if new_peak:
            st.free_at_peak = free
        if free < st.min_free_block:
            st.min_free_block = free
            st.min_free_at = where
        if where in st.phase_free and free < st.phase_free[where]:
            st.phase_free[where] = free


def median(a, n):
    """The median of a[:n] without sorting a copy (no heap)."""
    if n == 0:
        return 0
    lo, hi = 0, 65535
    while lo < hi:
        mid = (lo + hi) // 2
        c = 0
        for i in range(n):
            if a[i] <= mid:
                c += 1
        if 2 * c >= n:
            hi = mid
        else:
            lo = mid + 1
    return lo


class Tape:
    """What her sensors' ADC reads returned (uV), recorded from one run and
    played in the next: board time is virtual, so the firmware meets the
    very same input at the very same board times. Played back, each
    driver's read is an array iterator's __next__, a call in C like the
    ADC read it stands for: the synthetic user and the simulated ADC are
    not in the window at all."""

    def __init__(self, path, playing, reads=0, channels=1):
        self.path = path
        self.playing = playing
        self.ch = []
        self.n = 0                 # reads per channel on the tape
        if playing:
            import os
            size = os.stat(path)[6]
            with open(path, "rb") as f:
                hdr = array("i", bytes(8))
                f.readinto(hdr)
                self.n, channels = hdr[0], hdr[1]
                for _ in range(channels):
                    # past the end the reads give 0 V: counted by the caller (reads_over)
                    v = array("i", bytes(4 * (self.n + 4000)))
                    f.readinto(memoryview(v)[:self.n])
                    self.ch.append(v)
            if size != 8 + 4 * self.n * channels:
                raise ValueError("tape %s: %d bytes for %d reads of %d channels" % (path, size, self.n, channels))
        else:
            for _ in range(channels):
                self.ch.append(array("i", bytes(4 * reads)))
            self.i = [0] * channels

    def attach(self, drivers):
        """Record or play each driver's ADC reads (_rd), in drivers' order."""
        for k, d in enumerate(drivers):
            if self.playing:
                d._rd = iter(self.ch[k]).__next__
            else:
                d._rd = self._recorder(k, d._rd)

    def _recorder(self, k, rd):
        v = self.ch[k]
        idx = self.i

        def rec():
            uv = rd()
            j = idx[k]
            if j < len(v):
                v[j] = uv
                idx[k] = j + 1
            return uv
        return rec

    def save(self):
        n = min(self.i)
        with open(self.path, "wb") as f:
            f.write(array("i", [n, len(self.ch)]))
            for v in self.ch:
                f.write(memoryview(v)[:n])
        return n


class Prof:
    """Host us spent in the simulation inside the CPU window, so that what
    is left is the firmware's: the synthetic user and the ADC feed (the
    sampler's before-hook), the simulated ADC reads, the stand-in radio with
    the laptop behind it (gatts_notify), the virtual clock and soft-IRQ
    queue (advance_us less the timer callbacks it runs) and this script's
    clock task. Each timed call costs a wrapper; that is measured and
    taken off too."""

    def __init__(self):
        self.us = {"user": 0, "adc": 0, "radio": 0, "clock": 0, "tick": 0, "loop": 0, "flash": 0}
        self.n = {"user": 0, "adc": 0, "radio": 0, "clock": 0, "tick": 0, "loop": 0, "flash": 0}
        self.on = False
        self.staged = False

    def wrap(self, key, fn, nargs=-1):
        """fn timed under key. With nargs 0, 1 or 3 the wrapper takes that
        many arguments: no tuple per call (garbage the firmware would be
        charged for when it starts a collection)."""
        us, n = self.us, self.n
        tu, td = time.ticks_us, time.ticks_diff
        me = self

        def timed(*a):
            t0 = tu()
            r = fn(*a)
            if me.on:
                us[key] += td(tu(), t0)
                n[key] += 1
            return r

        def timed0():
            t0 = tu()
            r = fn()
            if me.on:
                us[key] += td(tu(), t0)
                n[key] += 1
            return r

        def timed1(a):
            t0 = tu()
            r = fn(a)
            if me.on:
                us[key] += td(tu(), t0)
                n[key] += 1
            return r

        def timed3(a, b, c):
            t0 = tu()
            r = fn(a, b, c)
            if me.on:
                us[key] += td(tu(), t0)
                n[key] += 1
            return r
        return {0: timed0, 1: timed1, 3: timed3}.get(nargs, timed)

    def stages(self, app):
        """Time the firmware's per-sample stages too (reported, not taken off)."""
        for k in ("rec", "coach", "live"):
            self.us[k] = self.n[k] = 0
        app.recorder.samples = self.wrap("rec", app.recorder.samples)
        c = app.runner.coach
        if c is not None:
            c.sample = self.wrap("coach", c.sample)
            c.samples = self.wrap("coach", c.samples)
        live = app.stream.samples
        live.take = self.wrap("live", live.take)
        live.frame = self.wrap("live", live.frame, 1)
        live.add = self.wrap("live", live.add)

    def timed_coro(self, key, coro):
        """coro's resumptions timed under key (a generator around it)."""
        us, n = self.us, self.n
        us[key] = n[key] = 0
        tu, td = time.ticks_us, time.ticks_diff
        me = self
        v = None
        exc = None
        while True:
            was_on = me.on          # a resumption counts when the window is open throughout
            t0 = tu()               # (the laptop's pystone runs just outside it)
            try:
                y = coro.throw(exc) if exc is not None else coro.send(v)
            except StopIteration as e:
                return e.value
            finally:
                if was_on and me.on:
                    us[key] += td(tu(), t0)
                    n[key] += 1
            exc = None
            try:
                v = yield y
            except BaseException as e:      # cancelled: pass it on
                exc = e

    def sched_us(self):
        """What one soft IRQ's scheduling and dispatch costs on this port
        (micropython.schedule, then the VM runs it): added per tick, as the
        virtual machine's own queue is simulation and taken off."""
        cnt = [0]

        def cb(_):
            cnt[0] += 1
        sch = micropython.schedule
        tu, td = time.ticks_us, time.ticks_diff
        best = 1 << 30
        for _ in range(5):
            t0 = tu()
            for i in range(2000):
                sch(cb, None)
            outer = td(tu(), t0)
            t0 = tu()
            for i in range(2000):
                cb(None)
            best = min(best, outer - td(tu(), t0))
        return max(0, best) / 2000

    def tasks(self):
        """Time every asyncio task by what its coroutine's resumptions take."""
        orig = asyncio.create_task
        me = self

        def create_task(coro):
            key = "task_" + str(coro).split("'")[1] if "'" in str(coro) else "task_?"
            return orig(me.timed_coro(key, coro))
        asyncio.create_task = create_task
        from asyncio import core
        q = core._io_queue
        q.wait_io_event = self.wrap("io_wait", q.wait_io_event)
        self.us["io_wait"] = self.n["io_wait"] = 0

    def wrapper_us(self):
        """What one wrapped call adds around the call itself (host us)."""
        f = self.wrap("cal", lambda x: x)
        self.us["cal"] = self.n["cal"] = 0
        tu, td = time.ticks_us, time.ticks_diff
        best = 1 << 30
        for _ in range(5):
            t0 = tu()
            for i in range(2000):
                f(i)
            outer = td(tu(), t0)
            t0 = tu()
            for i in range(2000):
                (lambda x: x)(i)
            bare = td(tu(), t0)
            best = min(best, outer - bare)
        del self.us["cal"], self.n["cal"]
        return best / 2000

    def report(self):
        w = self.wrapper_us()
        n_wrapped = sum(self.n[k] for k in ("user", "adc", "radio", "clock", "tick", "flash"))
        # inside the timer callback: the user, the ADC reads; the callback
        # itself (the sampler) is firmware
        tick_fw = self.us["tick"] - self.us["user"] - self.us["adc"]
        sim = (self.us["clock"] - self.us["tick"]) + self.us["user"] + self.us["adc"] + self.us["radio"] + \
            self.us["loop"] + self.us["flash"] + self.us.get("laptop", 0)
        n_stage = sum(self.n.get(k, 0) for k in ("push", "rec", "coach", "live"))
        print("prof_sched_ns", int(self.sched_us() * 1000), "prof_wrapper_ns", int(w * 1000), "prof_wrapped_calls", n_wrapped, "prof_stage_calls", n_stage,
              "prof_sim_us", sim, "prof_tick_fw_us", tick_fw,
              " ".join("prof_%s_us %d prof_%s_n %d" % (k, self.us[k], k, self.n[k]) for k in self.us))


class GcModel:
    """The firmware's `gc`, with the ESP32's pauses: installed as sys.modules
    ["gc"] before the firmware is imported, it passes every call on to the
    real collector and then, with gc_us_per_kb set, keeps Python busy in
    virtual time (esp32_machine.stall_us: the timer's soft IRQs queue in
    the scheduler's 8 slots, the rest are lost and the sampler counts them)
    for as long as the call would take on the board: a collection for the
    heap in use just before it (the collector marks what is live and sweeps
    up to the highest block in use), mem_free()/mem_alloc() for the whole
    heap (they walk every block's entry in the allocation table).
    Collections the allocator starts itself (gc.threshold, a full heap) are
    seen by the clock task and stalled there."""

    def __init__(self, real, machine, base, per_kb, base_us):
        self._gc = real
        self._m = machine
        self.base = base
        self.per_kb = per_kb
        self.base_us = base_us
        self.heap_kb = (real.mem_free() + real.mem_alloc()) // 1024
        self.span_max = 0          # the most heap in use at a collection (bytes above the baseline)
        self.pause_max = 0         # the longest modelled collection (us)
        self.walk_us = self.heap_kb * per_kb
        self.walks = 0             # mem_free()/mem_alloc() calls by the firmware
        self.pauses = 0            # collections stalled

    def pause_for(self, in_use):
        span = in_use - self.base
        if span < 0:
            span = 0
        if span > self.span_max:
            self.span_max = span
        us = self.base_us + self.per_kb * span // 1024
        if us > self.pause_max:
            self.pause_max = us
        return us

    def stall(self, us):
        if self.per_kb and us:
            self._m.stall_us(us)

    def collect(self):
        before = self._gc.mem_alloc()
        r = self._gc.collect()
        self.pauses += 1
        self.stall(self.pause_for(before))
        return r

    def mem_free(self):
        self.walks += 1
        self.stall(self.walk_us)
        return self._gc.mem_free()

    def mem_alloc(self):
        self.walks += 1
        self.stall(self.walk_us)
        return self._gc.mem_alloc()

    def threshold(self, *a):
        return self._gc.threshold(*a)

    def enable(self):
        self._gc.enable()

    def disable(self):
        self._gc.disable()

    def isenabled(self):
        return self._gc.isenabled()


def pystone(n):
    try:
        import pystone_lowmem
    except ImportError:
        return 0
    gc.collect()
    return int(pystone_lowmem.pystones(n)[1])


def main(argv):
    o = _opts(argv[2:])
    prof_path, image = argv[0], argv[1]
    ble = o["ble"] == "1"
    if o["events"] == "1":
        # The timer's and the radio's "interrupts" run inside the event loop
        # here, so their flags (the sampler's, aioble's) can be Events, as on
        # the virtual trainer (simboard/esp32_main.py): a ThreadSafeFlag in the
        # unix port's poll makes every poll, even poll(0), sleep 1 ms of wall
        # time (the CPU figure needs them gone; an Event holds a few more
        # bytes than a ThreadSafeFlag, so the heap runs keep the real ones).
        asyncio.ThreadSafeFlag = EventFlag
    machine = rig(esp32_machine.fresh(virtual=True))
    vt = machine.vtime
    stack = None
    if ble:
        import sim_bluetooth
        stack = sim_bluetooth.install()
    try:
        import os
        os.remove(image)
    except OSError:
        pass
    pf = Prof() if o["profile"] in ("1", "2", "3") else None
    if pf is not None:
        pf.staged = o["profile"] == "2"
        if o["profile"] == "3":
            pf.tasks()
    if pf is not None:
        from simboard.blockdev import BlockDev     # the simulated flash behind littlefs
        for m in ("readblocks", "writeblocks", "ioctl"):
            setattr(BlockDev, m, pf.wrap("flash", getattr(BlockDev, m)))
    mount(image, "/flash", 4096, 512)
    from espboard import boot                       # loads the profile as the board does
    prof = boot._load_profile(prof_path)
    if int(o["rate"]):
        prof["rate_hz"] = int(o["rate"])
    if o["abd"] == "1" and prof.get("abdominal") is None:
        sec = dict(prof["sensor"])
        sec["pin"] = 36
        prof["abdominal"] = sec
    at_rest(machine, prof)
    two = prof.get("abdominal") is not None
    sens = prof["sensor"]
    user = SyntheticUser(prof["signal"], prof["rate_hz"], seed=int(o["seed"]), user=USERS[o["user"]],
                         gain=sens.get("counts_per_unit", 20), keep_truth=False, abd=two)
    from session_host import Host, vboard, feeder
    tape = None                                   # before the baseline: simulation
    if o["tape"]:
        tape = Tape(o["tape"], o["tape_mode"] == "play", (int(o["limit_ms"]) + 60000) * prof["rate_hz"] // 1000,
                    2 if two else 1)
    host = Host(ble, stack)
    model = GcModel(gc, machine, 0, int(o["gc_us_per_kb"]), int(o["gc_base_us"]))   # simulation: before the baseline
    st = Stats()
    st.frag = o["frag"] == "1"
    max_us = int(o["max_board_s"]) * 1000000
    gc.collect()
    st.base = gc.mem_alloc() - host.own     # the laptop's reader/writer are not the firmware's
    model.base = st.base
    # firmware modules the simulation imported before the baseline: their
    # heap is the firmware's on a board (bench/esp32_memory.py adds it back)
    pre = [m for m in sys.modules if m.split(".")[0] in _FIRMWARE_PKGS]
    print("preloaded", ",".join(sorted(pre)))
    pre = None

    sys.modules["gc"] = model                      # what the firmware imports as `gc`
    from espboard.board import Esp32Board          # the firmware from here on
    from knip.app import App
    step(st, 0)
    board = vboard(Esp32Board, prof, machine, "/flash/sessions", user)
    board.sampler._before = feeder(machine, prof, user)
    if tape is not None:
        tape.attach([d for d in (board.sensor, board.abd) if d is not None])
        if tape.playing:
            board.sampler._before = None            # no user: the reads come off the tape
            board.user_cues = False
    step(st, 1)
    if ble:
        board.link, how = boot._links(board, prof)
    else:
        board.link, how = host.link(board), "plain"
    step(st, 2)
    if o["mode"] == "sim":
        print("baseline", st.base)
        simulation_only(board, vt, int(o["limit_ms"]) or 10000)
        return
    app = App(board)
    boot.wire(board, app)                          # as boot.run: low heap and MemoryError end the session
    step(st, 3)
    host.limit_ms = int(o["limit_ms"])
    host.pystone = int(o["pystone"])
    if pf is not None:
        host.prof = pf
        board.sleepers = []             # tasks asleep wake once, when due (board.wake)
        board.fast_wait()
        if board.sampler._before is not None:
            board.sampler._before = pf.wrap("user", board.sampler._before, 1)
        for d in (board.sensor, board.abd):
            if d is not None and hasattr(d, "_rd") and (tape is None or not tape.playing):
                d._rd = pf.wrap("adc", d._rd, 0)
        if stack is not None:
            stack.gatts_notify = pf.wrap("radio", stack.gatts_notify)
    if pf is not None and pf.staged:
        pf.us["push"] = pf.n["push"] = 0
        app.chain.feed = pf.wrap("push", app.chain.feed)     # before process() binds it
    probe(st, "boot")
    stall = int(o["stall_us"])
    probe_us = int(o["probe_ms"]) * 1000
    main_task = []

    def stop(why):
        # the session did not end as scripted: say why and stop, never wait for ever
        if st.error is None:
            st.error = why
        host.finished = True
        if main_task:
            main_task[0].cancel()

    async def clock():
        # board time moves 10 ms whenever the app has drained the ring (all
        # but what has not yet made the sampler wake it)
        ring = board.ring
        wake_n = board.sampler.wake_n
        tick = board.tick
        last = gc.mem_alloc()
        next_probe = vt.now + probe_us
        every = int(o["stall_every_ms"]) * 1000
        next_stall = vt.now + every + 3333
        adv = vt.advance_us
        tu, td = time.ticks_us, time.ticks_diff
        if pf is not None:
            adv = pf.wrap("clock", adv, 1)
            pf.us["loop"] = 0
        patched = False
        watch = stall or model.per_kb or every or probe_us    # collections to see (the CPU run: none)
        started = False
        t0 = tu()
        try:
            while not host.finished:
                if pf is not None and not patched and board.sampler._tim is not None:
                    tim = board.sampler._tim
                    tim.callback = pf.wrap("tick", tim.callback, 1)
                    patched = True
                c0 = pf.us["clock"] if pf is not None else 0
                if ring.count() < wake_n:
                    adv(10000)
                    tick.set()
                    tick.clear()
                    if board.sleepers:
                        board.wake()
                if pf is not None and pf.on:
                    pf.us["loop"] += td(tu(), t0) - (pf.us["clock"] - c0)
                    pf.n["loop"] += 1
                await asyncio.sleep_ms(0)
                t0 = tu()
                if vt.now > max_us:
                    stop("stuck in %s: %d s of board time" % (host.phase, vt.now // 1000000))
                if not started and host.phase != "boot":
                    started = True
                    step(st, 4)                 # running, the laptop connected (and paired)
                if not watch:
                    continue
                now = gc.mem_alloc()                        # a walk of the whole heap: only when needed
                if now < last:
                    st.collections += 1
                    if stall:
                        machine.stall_us(stall)
                    else:
                        model.stall(model.pause_for(last))      # the allocator collected
                last = now
                if every and vt.now >= next_stall:
                    next_stall = vt.now + every + 3333      # wandering against the sampler's period
                    machine.stall_us(stall or model.pause_max)
                if probe_us and vt.now >= next_probe:
                    next_probe = vt.now + probe_us
                    probe(st, host.phase)
                    last = gc.mem_alloc()
        except MemoryError:
            stop("MemoryError in the simulation's clock (%s)" % host.phase)
        except Exception as e:          # never wait for ever on a dead clock
            stop("the simulation's clock failed (%s): %s: %s" % (host.phase, type(e).__name__, e))

    async def script():
        try:
            co = host.script(app, board, o["programs"].split(","))
            if pf is not None:
                co = pf.timed_coro("laptop", co)        # the laptop: simulation
            await co
        except MemoryError:
            stop("MemoryError in the laptop's script (%s)" % host.phase)

    async def run():
        main_task.append(asyncio.current_task())
        t = asyncio.create_task(clock())
        s = asyncio.create_task(script())
        try:
            await app.run()
        finally:
            t.cancel()
            s.cancel()

    t0 = time.ticks_ms()
    try:
        asyncio.run(run())
    except asyncio.CancelledError:
        pass
    except SystemExit:
        # machine.reset(): the board restarted itself (after a task died of MemoryError)
        st.error = (st.error or "") + "; the board reset itself"
    except MemoryError:
        if st.error is None:
            st.error = "MemoryError out of the application (%s)" % host.phase
    wall = time.ticks_diff(time.ticks_ms(), t0)
    if tape is not None:
        if tape.playing:
            print("tape_reads", tape.n, "tape_ticks", board.sampler.ticks)
        else:
            print("tape_recorded", tape.save())
    board.sampler.flush()
    probe(st, "end")
    ring = board.ring
    print("profile", prof["profile"], "rate", board.rate_hz, "channels", board.channels, "links", how.replace(" ", "_"))
    print("board_ms", vt.now // 1000, "samples", app.n, "ticks", board.sampler.ticks, "wall_ms", wall,
          "cpu_mhz", board.cpu_mhz)
    print("sessions", host.ended, "synced", host.synced, "fetched_bytes", host.fetched, "errors", host.errors,
          "programs", len(o["programs"].split(",")), "finished", int(st.error is None and host.phase == "repl"))
    if host.ended_reasons:
        print("ended", ",".join(host.ended_reasons).replace(" ", "_"))
    if host.error_text:
        print("error_text", host.error_text.replace(" ", "_"))
    if st.error:
        print("stopped", st.error.replace(" ", "_"))
    if board.alerts:
        print("alerts", "|".join(board.alerts).replace(" ", "_"))
    print("lost", ring.missed + ring.dropped, "missed", ring.missed, "dropped", ring.dropped,
          "sched_dropped", esp32_machine.sched.dropped, "app_gaps", app.gaps, "late_max_us", board.sampler.late_max_us)
    print("ring", ring.size, "backlog_max", board.backlog_max)
    print("heap_peak", st.peak, "peak_at", st.peak_at, "free_block_at_peak", st.free_at_peak,
          "free_block_min", st.min_free_block, "free_block_min_at", st.min_free_at)
    for i in range(len(STEPS)):
        print("heap_after_" + STEPS[i], st.steps[i])
    for p in PHASES:
        if st.phase_peak[p]:
            print("heap_peak_" + p, st.phase_peak[p])
        if st.phase_free[p] < 1 << 30:
            print("free_block_min_" + p, st.phase_free[p])
    print("gc_pause_max_us", st.pause_max, "gc_pause_p50_us", median(st.pause_us, st.npause),
          "probes", st.npause, "collections", st.collections, "stall_us", stall)
    print("heap_total", gc.mem_free() + gc.mem_alloc(), "baseline", st.base)
    if model.per_kb:
        print("gc_span_max", model.span_max, "gc_model_pause_max_us", model.pause_max, "gc_walk_us",
              model.walk_us, "gc_walks", model.walks, "gc_model_pauses", model.pauses, "heap_kb", model.heap_kb)
    if host.window:
        print("window_us", host.window[0], "window_samples", host.window[1])
    if pf is not None:
        pf.report()
    for k, v in host.extra.items():
        print(k, v)
    print("mem_info")
    if o["map"] == "1":
        micropython.mem_info(1)
    else:
        micropython.mem_info()


def simulation_only(board, vt, ms):
    """The sampler, the synthetic user and the clock without the firmware
    behind the ring: wall us per sample of the simulation itself."""
    ring = board.ring
    board.sampler.start()
    n0 = board.sampler.ticks
    t0 = time.ticks_us()
    end = vt.now + ms * 1000
    while vt.now < end:
        vt.advance_us(10000)
        ring.tail = ring.head
    us = time.ticks_diff(time.ticks_us(), t0)
    print("sim_us", us, "sim_samples", board.sampler.ticks - n0)


if __name__ == "__main__":
    main(sys.argv[1:])
