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
#       stall_every_ms N (a stall of stall_us every N board ms as well, whatever the heap does),
#       frag 1 (the largest free block at every probe, not only at a new peak),
#       map 1 (the heap's block map at the end: micropython.mem_info(1)),
#       max_board_s N (stop with "stopped ..." after this much board time: never hang),
#       seed N, limit_ms N (the first program only, stopped after N board ms, no sync: the
#       firmware's time per sample), mode sim (no firmware: the simulation's own time per sample)
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
from simboard.esp32_rig import rig, at_rest
from simboard.blockdev import mount
from simboard.synth import SyntheticUser
from simboard.users import USERS

_O = {"ble": "1", "rate": "0", "abd": "0", "programs": "calibrate,daily", "probe_ms": "1000",
      "stall_us": "0", "stall_every_ms": "0", "seed": "7", "user": "typical", "limit_ms": "0",
      "mode": "app", "frag": "0", "map": "0", "max_board_s": "3600"}


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


def main(argv):
    o = _opts(argv[2:])
    prof_path, image = argv[0], argv[1]
    ble = o["ble"] == "1"
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
    host = Host(ble, stack)
    st = Stats()
    st.frag = o["frag"] == "1"
    max_us = int(o["max_board_s"]) * 1000000
    gc.collect()
    st.base = gc.mem_alloc() - host.own     # the laptop's reader/writer are not the firmware's
    # firmware modules the simulation imported before the baseline: their
    # heap is the firmware's on a board (bench/esp32_memory.py adds it back)
    pre = [m for m in sys.modules if m.split(".")[0] in _FIRMWARE_PKGS]
    print("preloaded", ",".join(sorted(pre)))
    pre = None

    from espboard.board import Esp32Board          # the firmware from here on
    from knip.app import App
    step(st, 0)
    board = vboard(Esp32Board, prof, machine, "/flash/sessions", user)
    board.sampler._before = feeder(machine, prof, user)
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
        # board time moves 10 ms whenever the app has drained the ring
        ring = board.ring
        tick = board.tick
        last = gc.mem_alloc()
        next_probe = vt.now + probe_us
        every = int(o["stall_every_ms"]) * 1000
        next_stall = vt.now + every + 3333
        started = False
        try:
            while not host.finished:
                if ring.count() == 0:
                    vt.advance_us(10000)
                    tick.set()
                    tick.clear()
                await asyncio.sleep_ms(0)
                now = gc.mem_alloc()
                if now < last:
                    st.collections += 1
                    if stall:
                        machine.stall_us(stall)
                last = now
                if every and vt.now >= next_stall:
                    next_stall = vt.now + every + 3333      # wandering against the sampler's period
                    machine.stall_us(stall)
                if not started and host.phase != "boot":
                    started = True
                    step(st, 4)                 # running, the laptop connected (and paired)
                if probe_us and vt.now >= next_probe:
                    next_probe = vt.now + probe_us
                    probe(st, host.phase)
                    last = gc.mem_alloc()
                if vt.now > max_us:
                    stop("stuck in %s: %d s of board time" % (host.phase, vt.now // 1000000))
        except MemoryError:
            stop("MemoryError in the simulation's clock (%s)" % host.phase)

    async def script():
        try:
            await host.script(app, board, o["programs"].split(","))
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
    board.sampler.flush()
    probe(st, "end")
    ring = board.ring
    print("profile", prof["profile"], "rate", board.rate_hz, "channels", board.channels, "links", how.replace(" ", "_"))
    print("board_ms", vt.now // 1000, "samples", app.n, "ticks", board.sampler.ticks, "wall_ms", wall)
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
    print("heap_total", gc.mem_free() + gc.mem_alloc(), "baseline", st.base, "app_collections", app.collections)
    if host.window:
        print("window_us", host.window[0], "window_samples", host.window[1])
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
