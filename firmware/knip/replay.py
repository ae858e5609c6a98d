# Run a chain over a whole recording and collect finished records. Used by
# the host (knip analyze), the tests and the CPython/MicroPython conformance
# check, so both sides share one loop. Allocates per event, not per sample.
from array import array
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
    # The samples present go into int32 arrays a chunk at a time, as the
    # device's ring holds them, and the chain takes runs of them (feed), as
    # on the device; the chunks keep the memory this needs constant.
    ts = array("i", bytes(4 * _CHUNK))
    xv = array("i", bytes(4 * _CHUNK))
    av = array("i", bytes(4 * _CHUNK))
    feed = chain.feed
    n = len(xs)
    i = 0
    while i < n:
        c = 0
        while i < n and c < _CHUNK:
            x = xs[i]
            if x is not None:       # missing: the chain sees the gap in the times
                a = (abd[i] or 0) if abd is not None else 0
                try:
                    ts[c] = times_ms[i]
                    xv[c] = x
                    av[c] = a
                except OverflowError:
                    ts[c] = _i32(times_ms[i])
                    xv[c] = _i32(x)
                    av[c] = _i32(a)
                c += 1
            i += 1
        j = 0
        while j < c:
            j += feed(ts, xv, av, j, c - j)
            ev = chain.flags
            if ev:
                _collect(det, ev, by_seq, order, log, ts[j - 1])
    if n:
        ev = chain.finish(times_ms[n - 1])
        if ev:
            _collect(det, ev, by_seq, order, log, times_ms[n - 1])
    return [by_seq[s] for s in order]


_CHUNK = 1024


def _i32(v):
    # what a driver can give is far inside int32; beyond it is at a rail anyway
    return -0x7FFFFFFF if v < -0x7FFFFFFF else (0x7FFFFFFF if v > 0x7FFFFFFF else v)


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
