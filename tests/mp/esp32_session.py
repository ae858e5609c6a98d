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

from simboard import esp32_machine
from simboard.esp32_rig import rig, at_rest
from simboard.blockdev import mount
from simboard.synth import SyntheticUser
from simboard.users import USERS

_O = {"ble": "1", "rate": "0", "abd": "0", "programs": "calibrate,daily", "probe_ms": "1000",
      "stall_us": "0", "stall_every_ms": "0", "seed": "7", "user": "typical", "limit_ms": "0",
      "mode": "app"}


def _opts(argv):
    o = dict(_O)
    for i in range(0, len(argv) - 1, 2):
        o[argv[i]] = argv[i + 1]
    return o


class Stats:
    def __init__(self, base):
        self.base = base
        self.peak = 0              # live heap after a collection, above the baseline
        self.peak_at = "start"
        self.free_at_peak = 0      # largest free block then (bytes)
        self.min_free_block = 1 << 30
        self.min_free_at = ""
        self.pause_us = []         # host us of the probing collections
        self.collections = 0       # collections seen (mem_alloc fell)
        self.phase = "boot"


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


def probe(st, where):
    t0 = time.ticks_us()
    gc.collect()
    t1 = time.ticks_us()
    gc.collect()
    t2 = time.ticks_us()
    st.pause_us.append(min(time.ticks_diff(t1, t0), time.ticks_diff(t2, t1)))
    live = gc.mem_alloc() - st.base
    if live > st.peak:
        st.peak = live
        st.peak_at = where
        st.free_at_peak = largest_free()
        if st.free_at_peak < st.min_free_block:
            st.min_free_block = st.free_at_peak
            st.min_free_at = where


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
    gc.collect()
    st = Stats(gc.mem_alloc() - host.own)     # the laptop's reader/writer are not the firmware's

    from espboard.board import Esp32Board          # the firmware from here on
    from knip.app import App
    board = vboard(Esp32Board, prof, machine, "/flash/sessions", user)
    board.sampler._before = feeder(machine, prof, user)
    if ble:
        board.link, how = boot._links(board, prof)
    else:
        board.link, how = host.link(board), "plain"
    if o["mode"] == "sim":
        print("baseline", st.base)
        simulation_only(board, vt, int(o["limit_ms"]) or 10000)
        return
    app = App(board)
    board.idle = lambda: app.session is None
    host.limit_ms = int(o["limit_ms"])
    probe(st, "boot")
    stall = int(o["stall_us"])
    probe_us = int(o["probe_ms"]) * 1000

    async def clock():
        # board time moves 10 ms whenever the app has drained the ring
        ring = board.ring
        tick = board.tick
        last = gc.mem_alloc()
        next_probe = vt.now + probe_us
        every = int(o["stall_every_ms"]) * 1000
        next_stall = vt.now + every + 3333
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
            if probe_us and vt.now >= next_probe:
                next_probe = vt.now + probe_us
                probe(st, host.phase)
                last = gc.mem_alloc()

    async def run():
        t = asyncio.create_task(clock())
        s = asyncio.create_task(host.script(app, board, o["programs"].split(",")))
        try:
            await app.run()
        finally:
            t.cancel()
            s.cancel()

    t0 = time.ticks_ms()
    asyncio.run(run())
    wall = time.ticks_diff(time.ticks_ms(), t0)
    board.sampler.flush()
    probe(st, "end")
    ring = board.ring
    ps = sorted(st.pause_us)
    print("profile", prof["profile"], "rate", board.rate_hz, "channels", board.channels, "links", how.replace(" ", "_"))
    print("board_ms", vt.now // 1000, "samples", app.n, "ticks", board.sampler.ticks, "wall_ms", wall)
    print("sessions", host.ended, "synced", host.synced, "fetched_bytes", host.fetched, "errors", host.errors)
    print("lost", ring.missed + ring.dropped, "missed", ring.missed, "dropped", ring.dropped,
          "sched_dropped", esp32_machine.sched.dropped, "app_gaps", app.gaps, "late_max_us", board.sampler.late_max_us)
    print("ring", ring.size, "backlog_max", board.backlog_max)
    print("heap_peak", st.peak, "peak_at", st.peak_at, "free_block_at_peak", st.free_at_peak,
          "free_block_min", st.min_free_block, "free_block_min_at", st.min_free_at)
    print("gc_pause_max_us", ps[-1] if ps else 0, "gc_pause_p50_us", ps[len(ps) // 2] if ps else 0,
          "probes", len(ps), "collections", st.collections, "stall_us", stall)
    print("heap_total", gc.mem_free() + gc.mem_alloc(), "baseline", st.base, "app_collections", app.collections)
    if host.window:
        print("window_us", host.window[0], "window_samples", host.window[1])
    print("mem_info")
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
