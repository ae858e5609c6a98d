# Heap bytes and time of a chain over samples [start, stop), GC disabled so
# gc.mem_alloc() sees every allocation. Shared by tests/mp/alloc_check.py
# and bench/mp_perf.py (MicroPython only: gc.mem_alloc, time.ticks_us).
import gc
import time


def measure(chain, ts, xs, ab, start, stop):
    push = chain.push
    events = 0
    gc.collect()
    gc.disable()
    m0 = gc.mem_alloc()
    t0 = time.ticks_us()
    for i in range(start, stop):
        if push(ts[i], xs[i], ab[i]):
            events += 1
    t1 = time.ticks_us()
    m1 = gc.mem_alloc()
    gc.enable()
    return m1 - m0, events, time.ticks_diff(t1, t0)
