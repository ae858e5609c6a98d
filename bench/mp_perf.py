# Heap and speed of a whole chain under the MicroPython unix port, on
# synthetic integer input written by bench/run.py (generated in CPython).
#   micropython bench/mp_perf.py SIGNAL RATE_HZ FILE WARM_S [two]
# FILE: int32 little-endian: n, then n times (ms), n samples, n abdominal.
# The input is read into array('i') before anything is measured; the loop
# runs with the GC disabled so gc.mem_alloc() shows every allocation.
# Prints: "alloc <bytes> samples <n> events <k> us <elapsed_us> warm_alloc <b>"
import sys
import struct
from array import array
from knip.chain import PressureChain, EmgChain
from heapmeter import measure


def load(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<i', f.read(4))[0]
        ts = array('i', bytearray(4 * n))
        xs = array('i', bytearray(4 * n))
        ab = array('i', bytearray(4 * n))
        f.readinto(ts)
        f.readinto(xs)
        f.readinto(ab)
    return ts, xs, ab


def main(argv):
    signal = argv[1]
    rate = float(argv[2])
    ts, xs, ab = load(argv[3])
    warm_s = float(argv[4])
    two = len(argv) > 5 and argv[5] == "two"
    cls = EmgChain if signal == "emg" else PressureChain
    chain = cls(rate, two_channel=two)
    n = len(xs)
    warm = int(rate * warm_s)
    if warm >= n:
        warm = n // 4
    # Warm-up: detector learning, first squeeze, first use of every path.
    wa, _, _ = measure(chain, ts, xs, ab, 0, warm)
    alloc, events, us = measure(chain, ts, xs, ab, warm, n)
    print("alloc", alloc, "samples", n - warm, "events", events, "us", us, "warm_alloc", wa)


main(sys.argv)
