# Conformance runner for the MicroPython unix port (and CPython):
#   micropython replay_ints.py SIGNAL RATE_HZ FILE [two]
# FILE: one sample per line, "t_ms x [abd]". Prints one line per event
# (t, flags, seq) as "E ..." and one per final record as "R ...".
import sys
from knip.chain import PressureChain, EmgChain
from knip import replay
from signals import collect


def main(argv):
    signal = argv[1]
    rate = float(argv[2])
    two = len(argv) > 4 and argv[4] == "two"
    ts = []
    xs = []
    ab = [] if two else None
    with open(argv[3]) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            ts.append(int(p[0]))
            xs.append(int(p[1]))
            if two:
                ab.append(int(p[2]))
    collect()            # the parse's garbage (signals.py says why)
    cls = EmgChain if signal == "emg" else PressureChain
    chain = cls(rate, two_channel=two)
    log = []
    recs = replay.run(chain, ts, xs, ab, log)
    for e in log:
        print("E", e[0], e[1], e[2])
    for r in recs:
        print("R", " ".join([str(x) for x in r]))


main(sys.argv)
