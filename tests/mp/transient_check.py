# Heap allocated per sample, even when it is freed at once.
#   micropython transient_check.py SIGNAL RATE_HZ SECONDS one|two [once]
# Prints: "transient <bytes> samples <n> events <k>" over the samples after
# the warm-up (0: under one GC block; with `once`, a block for "one or more").
#
# alloc_check.py nets allocations out with gc.mem_alloc(); this one does not.
# A bytecode function whose locals and stack need more than 11 words gets
# its frame from the GC heap on every call and frees it on return
# (py/objfun.c), so a per-sample path made of such functions nets 0 bytes
# while it churns the heap: a collection every gc.threshold() bytes and a
# walk of the allocation table per call. Native code keeps its frames on
# the C stack. The GC counts every allocation towards gc.threshold(), freed
# or not: garbage left before the run shows whether a collection ran, and
# a binary search over the threshold gives the bytes.
import gc
import sys
from knip.chain import PressureChain, EmgChain
from alloc_check import make_input

_WAKE = 10          # samples per feed, as the sampler wakes the chain


def _block():
    # bytes in a GC block: gc.threshold counts whole blocks and reads back
    # what it kept (16 on the ESP32 and the 32-bit port, 32 on 64-bit)
    b = 8
    while b < 256:
        gc.threshold(b)
        if gc.threshold() == b:
            break
        b <<= 1
    gc.threshold(-1)
    return b


_BLOCK = _block()


# what count_from() left for counted(): module globals, so that nothing is
# allocated (not even a tuple to return them) once the count has started
_before = 0
_size = 0


def count_from(threshold):
    # Start counting: garbage larger than the threshold (repeated
    # collections cannot hide the first one behind garbage made after it),
    # made before the collection that restarts the GC's count.
    global _before, _size
    _size = (2 * threshold + 65536) // 1024 * 1000
    litter = [bytearray(1000) for _ in range(_size // 1000)]
    gc.collect()
    litter = None       # garbage now, allocated before the count restarts
    _before = gc.mem_alloc()
    gc.threshold(threshold)


def counted():
    # True if what ran since count_from(threshold) allocated threshold
    # bytes or more. The GC checks its count when it allocates: one more
    # allocation collects if the run reached it. When no collection ran,
    # the instrument is checked: one now must free the garbage, or a stale
    # pointer kept it.
    object()            # one allocation: the GC looks at the count first
    gc.threshold(-1)
    if gc.mem_alloc() < _before - _size // 2:
        return True
    gc.collect()
    if gc.mem_alloc() >= _before - _size // 2:
        raise RuntimeError("the garbage was not freed: the measurement cannot see collections")
    return False


def _collected(cls, rate, two, ts, xs, ab, warm, n, threshold):
    # True if the samples [warm, n) allocated `threshold` bytes or more
    chain = cls(rate, two_channel=two)
    i = 0
    while i < warm:
        i += chain.feed(ts, xs, ab, i, _WAKE if warm - i > _WAKE else warm - i)
    count_from(threshold)
    events = 0
    while i < n:
        # a method call, as knip.app makes it (a bound method kept in a
        # local and called with 5 arguments puts them on the heap)
        i += chain.feed(ts, xs, ab, i, _WAKE if n - i > _WAKE else n - i)
        if chain.flags:
            events += 1
    return counted(), events


def main(argv):
    signal = argv[1]
    rate = float(argv[2])
    seconds = float(argv[3])
    two = len(argv) > 4 and argv[4] == "two"
    once = len(argv) > 5 and argv[5] == "once"
    ts, xs, ab = make_input(signal, rate, seconds, two)
    cls = EmgChain if signal == "emg" else PressureChain
    n = len(xs)
    warm = int(rate * 12)
    hit, events = _collected(cls, rate, two, ts, xs, ab, warm, n, _BLOCK)
    lo = _BLOCK if hit and once else 0
    if hit and not once:
        hi = 1 << 23
        while hi - lo > _BLOCK:
            mid = (lo + hi) >> 1
            if _collected(cls, rate, two, ts, xs, ab, warm, n, mid)[0]:
                lo = mid
            else:
                hi = mid
    print("transient", lo, "samples", n - warm, "events", events)


if __name__ == "__main__":
    main(sys.argv)
