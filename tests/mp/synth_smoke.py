"""Render a synthetic session and print it as JSON (run on both interpreters).

usage: synth_smoke.py PLAN SIGNAL RATE_HZ SEED N_SAMPLES
PLAN: "mixed" (a 6-event mixed session) or "short" (one of each event, ~17 s).
Samples go through a sink (no long float lists: they fragment the MicroPython
heap); the first N_SAMPLES are kept along with running sums over all.
"""
import json
import sys

from simboard import synth

SHORT_PLAN = [("rest", 3.0), ("squeeze", 2.0), ("rest", 3.0), ("cough",),
              ("rest", 2.0), ("push", 3.0), ("rest", 3.0)]


class Tally:
    def __init__(self, keep):
        self.keep = keep
        self.head = []
        self.abd_head = []
        self.n = 0
        self.sum = 0.0
        self.sum_sq = 0.0
        self.abd_sum = 0.0

    def __call__(self, x, y):
        if self.n < self.keep:
            self.head.append(x)
            self.abd_head.append(y)
        self.n += 1
        self.sum += x
        self.sum_sq += x * x
        self.abd_sum += y


def run(plan, signal, rate_hz, seed, n_samples):
    tally = Tally(n_samples)
    if plan == "mixed":
        _, _, truth, info = synth.mixed_session(signal, rate_hz, seed, snr_db=15.0, events=6,
                                                abd=True, sink=tally)
    else:
        _, _, truth, info = synth.render(SHORT_PLAN, signal, rate_hz, seed, snr_db=15.0,
                                         abd=True, offset=2048.0, sink=tally)
    return {
        "n": tally.n, "head": tally.head, "abd_head": tally.abd_head,
        "sum": tally.sum, "sum_sq": tally.sum_sq, "abd_sum": tally.abd_sum,
        "truth": truth, "rests": info["rest_intervals"],
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(run(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))))
