# Heap bytes allocated per sample by a whole chain in steady state, measured
# with gc.mem_alloc() under MicroPython (emlearn-micropython style).
#   micropython alloc_check.py SIGNAL RATE_HZ SECONDS [two]
# Prints: "alloc <bytes> samples <n> events <k> us <elapsed_us>"
import sys
import math
from array import array
from knip.chain import PressureChain, EmgChain
from heapmeter import measure


def make_input(signal, rate, seconds, two):
    # Deterministic test signal with squeezes every 10 s (built before measuring).
    n = int(rate * seconds)
    ts = array('i', [0] * n)
    xs = array('i', [0] * n)
    ab = array('i', [0] * n)
    seed = 12345
    for i in range(n):
        t = i / rate
        ts[i] = int(t * 1000)
        ph = t % 10.0
        act = 0.0
        if 3.0 <= ph < 3.5:
            act = (ph - 3.0) / 0.5
        elif 3.5 <= ph < 6.5:
            act = 1.0
        elif 6.5 <= ph < 7.0:
            act = (7.0 - ph) / 0.5
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        r = ((seed >> 8) & 0xFFFF) / 65536.0 - 0.5
        if signal == "emg":
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            s = 1 if seed & 0x100 else -1
            xs[i] = 2048 + int(s * (4 + 60 * act) * (0.5 + abs(r)))
            ab[i] = 2048 + int(s * 4 * (0.5 + abs(r)))
        else:
            v = 10 + 30 * act + 0.5 * math.sin(0.5 * math.pi * t) + r
            if t >= 70.0:
                v += 4.0 * min(1.0, (t - 70.0) / 0.5)   # her rest steps up, and a squeeze on it
            xs[i] = int(v * 20)
            ab[i] = int((20 + 3 * act + r) * 20)
    if signal != "emg":
        for g in (45.0, 48.0):                          # lone glitches, in a hold and at rest
            if g < seconds:
                xs[int(g * rate)] += 60 * 20
    return ts, xs, ab


def main(argv):
    signal = argv[1]
    rate = float(argv[2])
    seconds = float(argv[3])
    two = len(argv) > 4 and argv[4] == "two"
    ts, xs, ab = make_input(signal, rate, seconds, two)
    cls = EmgChain if signal == "emg" else PressureChain
    chain = cls(rate, two_channel=two)
    n = len(xs)
    warm = int(rate * 12)   # past warm-up and one full squeeze cycle
    measure(chain, ts, xs, ab, 0, warm)
    alloc, events, us = measure(chain, ts, xs, ab, warm, n)
    print("alloc", alloc, "samples", n - warm, "events", events, "us", us)


if __name__ == "__main__":
    main(sys.argv)
