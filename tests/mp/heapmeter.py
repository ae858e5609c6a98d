# Heap bytes and time of a chain over samples [start, stop), GC disabled so
# gc.mem_alloc() sees every allocation. Shared by tests/mp/alloc_check.py
# and bench/mp_perf.py (MicroPython only: gc.mem_alloc, time.ticks_us).
import gc
import time


def measure(chain, ts, xs, ab, start, stop, wake=10):
    """As the application feeds it: chain.feed over the samples that came
    since its last wake (`wake` at a time, as the sampler wakes it), the
    chain taking as many in a row as it can (ts, xs, ab: int32 arrays)."""
    events = 0
    gc.collect()
    gc.disable()
    m0 = gc.mem_alloc()
    t0 = time.ticks_us()
    i = start
    while i < stop:
        end = i + wake if i + wake < stop else stop
        while i < end:
            # as knip.app calls it: a bound method kept in a local and
            # called with over 4 arguments puts them on the heap
            i += chain.feed(ts, xs, ab, i, end - i)
            if chain.flags:
                events += 1
    t1 = time.ticks_us()
    m1 = gc.mem_alloc()
    gc.enable()
    return m1 - m0, events, time.ticks_diff(t1, t0)
