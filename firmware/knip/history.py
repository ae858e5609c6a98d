# Walks back over SqueezeDetector d's history ring: its last len(d.hv) samples
# as (level hv, time ht), newest at hpos - 1, hcount of them kept. A decision
# comes late, so what happened is read back off it. The detector writes the
# ring inline in update() (no call per sample); older() and slope() also run
# per sample while it releases or its peak grows, so the ring's size is only
# looked up when a walk wraps round.
from knip.thresholds import margin


def older(d, ms):
    # Index of the newest sample at least `ms` old (or the oldest kept).
    i = d.hpos - 1 if d.hpos else len(d.hv) - 1
    t = d.ht[i] - ms
    k = 1
    while k < d.hcount:
        i = i - 1 if i > 0 else len(d.hv) - 1
        if d.ht[i] <= t:
            break
        k += 1
    return i


def slope(d, ms):
    # Rise over the last `ms` (or the nearest older sample), counts per s.
    i = d.hpos - 1 if d.hpos else len(d.hv) - 1
    j = older(d, ms)
    dt = d.ht[i] - d.ht[j]
    return (d.hv[i] - d.hv[j]) * 1000 // dt if dt > 0 else 0


def mean(d, ms):
    # Mean level over the last `ms` (at least the newest sample).
    i = d.hpos - 1 if d.hpos else len(d.hv) - 1
    t = d.ht[i] - ms
    s = 0
    k = 0
    while k < d.hcount and (k == 0 or d.ht[i] > t):
        s += d.hv[i]
        k += 1
        i = i - 1 if i > 0 else len(d.hv) - 1
    return s // k


def since(d, level, after):
    # The time of the newest sample at or above `level` (later than `after`).
    i = d.hpos - 1 if d.hpos else len(d.hv) - 1
    k = 0
    while k < d.hcount and d.ht[i] > after:
        if d.hv[i] >= level:
            return d.ht[i]
        i = i - 1 if i > 0 else len(d.hv) - 1
        k += 1
    return d.ht[i]


def lowest(d, t0):
    # The lowest level since t0 (the newest sample's at least).
    last = d.hpos - 1 if d.hpos else len(d.hv) - 1
    lo = d.hv[last]
    i = last
    k = 1
    while k < d.hcount and d.ht[i] >= t0:
        if d.hv[i] < lo:
            lo = d.hv[i]
        i = i - 1 if i > 0 else len(d.hv) - 1
        k += 1
    return lo


def settled(d, t0, noise, hi):
    # Where a release ended: when the signal came within end_k10 noise (or
    # end_pct of the fall from the peak hi) of the lowest level it reached
    # since t0: walk back from now while within that band.
    c = d.cfg
    last = d.hpos - 1 if d.hpos else len(d.hv) - 1
    lo = lowest(d, t0)
    lim = lo + margin(noise, c.end_k10, hi - lo, c.end_pct, 0)
    i = last
    t_in = d.ht[last]
    k = 1
    while k < d.hcount and d.hv[i] <= lim and d.ht[i] >= t0:
        t_in = d.ht[i]
        i = i - 1 if i > 0 else len(d.hv) - 1
        k += 1
    return t_in


def fell(d, v, ramp, least):
    # Pressure, holding: did it fall drop_pct of the rise (ramp), and at
    # least `least`, within fall_ms, measured from where it was then (the
    # recent hold level lags a fall of 0.3-0.5 s)? The level a release
    # must stay under to be one, or 0.
    c = d.cfg
    was = d.hv[older(d, c.fall_ms)]
    if (was - v) * 100 >= ramp * c.drop_pct and was - v >= least:
        return was - ramp * c.drop_pct // 200
    return 0
