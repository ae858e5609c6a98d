# Run a chain over a whole recording and collect finished records. Used by
# the host (knip analyze), the tests and the CPython/MicroPython conformance
# check, so both sides share one loop. Allocates per event, not per sample.
from knip.record import (EV_START, EV_PEAK, EV_END, EV_RELAXED, EV_NOT_RELAXED,
                         EV_ABD_START, EV_ABD_END, R_SEQ)


def run(chain, times_ms, xs, abd=None, log=None):
    """Feed samples; return final records (tuples) in the order they ended.

    log, if a list, receives (t_ms, flags, seq) for every emitted event so that
    decision latencies can be measured.
    """
    det = chain.det
    by_seq = {}
    order = []
    push = chain.push
    n = len(xs)
    for i in range(n):
        t = times_ms[i]
        x = xs[i]
        if x is None:
            continue        # missing: the chain sees the gap in the times
        a = abd[i] if abd is not None else 0
        ev = push(t, x, 0 if a is None else a)
        if ev:
            _collect(det, ev, by_seq, order, log, t)
    if n:
        ev = chain.finish(times_ms[n - 1])
        if ev:
            _collect(det, ev, by_seq, order, log, times_ms[n - 1])
    return [by_seq[s] for s in order]


def _collect(det, ev, by_seq, order, log, t):
    if log is not None:
        # START and PEAK describe the squeeze in progress (cur); the rest
        # describe the one that just finished (done) or the abdominal event.
        live = ev & (EV_START | EV_PEAK)
        if live:
            log.append((t, live, det.cur[R_SEQ]))
        fin = ev & (EV_END | EV_RELAXED | EV_NOT_RELAXED)
        if fin:
            log.append((t, fin, det.done[R_SEQ]))
        if ev & EV_ABD_START:
            log.append((t, EV_ABD_START, det.abd[R_SEQ]))
        if ev & EV_ABD_END:
            log.append((t, EV_ABD_END, det.abd[R_SEQ]))
    if ev & (EV_END | EV_RELAXED | EV_NOT_RELAXED):
        rec = det.snapshot(det.done)
        s = rec[R_SEQ]
        if s not in by_seq:
            order.append(s)
        by_seq[s] = rec
    if ev & EV_ABD_END:
        rec = det.snapshot(det.abd)
        s = rec[R_SEQ]
        if s not in by_seq:
            order.append(s)
        by_seq[s] = rec
