# Onset estimation for SqueezeDetector d, once it has confirmed a rise: where
# the rise began (walking back down it, or a flat+ramp fit for EMG), and the
# rise table (level, first time reached) its rise time and hold are read
# from. Functions of the detector, not classes: the arrays they work on (the
# history ring, rl/rt, the fit's sums f1/f2/fi) live in it, preallocated, and
# their sizes are its; no object or call layer is added. Per event, except
# rise_point: per sample that raises the peak.
from knip.fixed import const

COARSE = const(64)         # points of the coarse history (EMG onset refit) ...
_COARSE_K = const(4)       # ... each the mean of this many samples

_FIT_TOP = const(63)       # fit levels scaled to 0..63: its sums stay small ints
_FIT_N = const(48)         # points at most in the refit of a slow rise


def backtrack(d, k10, noise):
    # Where did the rise begin? The floor is the lowest sample in the
    # history before the threshold crossing (a lagging level would put a
    # breath or drift inside the squeeze); walk back down the rise while
    # above floor + k10/10 noise and still steep, then interpolate.
    n = d.hcount
    ht = d.ht
    hv = d.hv
    wrap = len(hv) - 1
    i = d.hpos - 1 if d.hpos else wrap
    lo = hv[i]
    fl = lo
    j = i
    k = 0
    while k < n:
        tj = ht[j]
        if tj <= d.prev_off:
            break
        if tj < d.cross_t and hv[j] < lo:
            lo = hv[j]
            if tj >= d.cross_t - 2000 and (tj >= d.quiet_t or d.rise_rec):
                fl = lo
        j = j - 1 if j > 0 else wrap
        k += 1
    # the lowest point the walk saw in the 2 s before the rise (the history
    # holds 64 samples: 0.64 s at 100 Hz), after the
    # recovery from the last event if it rose after it (knip.kinds moved)
    d.floor = fl
    band = lo + noise * k10 // 10
    wiggle = noise >> 1
    t_in = ht[i]
    v_in = hv[i]
    t_top = t_in
    v_top = v_in
    # the foot is in the lower half: a rise that slows near the decision
    # (its shoulder, reached late on a slow climb) is not where it began
    mid = (band + v_in) >> 1
    steep = 0
    k = 1
    while k < n:
        j = i - 1 if i > 0 else wrap
        vj = hv[j]
        tj = ht[j]
        if vj > v_in + wiggle or tj <= d.prev_off:
            return t_in
        # Before the onset: rising slower than one noise unit per 100 ms,
        # or at under steep_pct % of the squeeze's steepest rise so far.
        rise = (v_in - vj) * 100
        dt = t_in - tj if t_in > tj else 1
        if rise > steep * dt:
            steep = rise // dt
        if vj < band:
            # Crossed the band between j and in: interpolate, then follow
            # the chord from the decision through that point down to the
            # floor (the band is 1.5 noise units up a gentle foot: a slow
            # rise left the floor well before it).
            tb = t_in
            if v_in > vj:
                tb = tj + (t_in - tj) * (band - vj) // (v_in - vj)
            if d.cfg.chord_ms and v_top > band and band > lo:
                back = (band - lo) * (t_top - tb) // (v_top - band)
                if back > d.cfg.chord_ms:
                    back = d.cfg.chord_ms
                tb -= back
                if tb <= d.prev_off:
                    tb = d.prev_off + 1
            return tb
        if vj < mid and (rise * 10 < noise * dt * d.cfg.flat_k10 or rise * 100 < steep * dt * d.cfg.steep_pct):
            return t_in     # flat before the rise: it began here
        t_in = tj
        v_in = vj
        i = j
        k += 1
    return t_in


def fit_onset(d, fallback):
    # Least-squares fit of "flat, then a straight rise" to the samples
    # from fit_pre_ms before the crossing up to now; the onset is where
    # the rise starts. Averaging over the whole window makes it robust
    # to a noisy envelope and to a raised (plateau) level, where walking
    # back sample by sample stops at the first wiggle. Integer-only: the
    # levels are scaled to 0.._FIT_TOP so every sum stays a small int.
    ht = d.ht
    hv = d.hv
    f1 = d.f1
    f2 = d.f2
    fi = d.fi
    size = len(hv)
    most = len(f1) - 1        # samples in the fit (rest before + the rise)
    t_lo = d.cross_t - d.cfg.fit_pre_ms
    if t_lo < d.prev_off:
        t_lo = d.prev_off
    n = 0
    j = d.hpos - 1 if d.hpos else size - 1
    lo = hv[j]
    hi = lo
    while n < d.hcount and n < most and ht[j] > t_lo:
        if hv[j] < lo:
            lo = hv[j]
        elif hv[j] > hi:
            hi = hv[j]
        n += 1
        j = j - 1 if j > 0 else size - 1
    if n < 6:
        return fallback
    j = j + 1 if j + 1 < size else 0           # oldest sample in the window
    first = j
    sh = 0
    while (hi - lo) >> sh > _FIT_TOP:
        sh += 1
    # prefix sums of y, y*y and y*i (count is the index)
    c = n
    for i in range(n):
        y = (hv[j] - lo) >> sh
        f1[i + 1] = f1[i] + y
        f2[i + 1] = f2[i] + y * y
        fi[i + 1] = fi[i] + y * i
        if c == n and ht[j] >= d.cross_t:
            c = i
        j = j + 1 if j + 1 < size else 0
    best = -1
    best_k = -1
    for k in range(2, c + 1 if c < n - 2 else n - 2):
        s1 = f1[k]
        pre = f2[k] - s1 * s1 // k                 # spread about the flat mean
        b = n - k
        q1 = f1[n] - s1
        # spread of the rest about the flat mean, less what the rise explains
        e = (f2[n] - f2[k]) - 2 * s1 * q1 // k + (s1 * s1 // k) * b // k
        num = (fi[n] - fi[k]) - k * q1 - (s1 * (b * (b - 1) >> 1)) // k
        if num <= 0:
            continue                               # not rising after k
        den = (b - 1) * b * (2 * b - 1) // 6
        cost = pre + e - ((num * ((num << 4) // den)) >> 4)
        if best < 0 or cost < best:
            best = cost
            best_k = k
    if best_k < 0:
        return fallback
    j = first + best_k
    if j >= size:
        j -= size
    return ht[j]


def rise_start(d, onset, base):
    # The rise table from the history: the rise since the onset so far.
    d.rn = 0
    size = len(d.hv)
    n = d.hcount
    j = d.hpos - n
    if j < 0:
        j += size
    top = base
    for _ in range(n):
        if d.ht[j] >= onset and d.hv[j] > top:
            top = d.hv[j]
            rise_point(d, top, d.ht[j], base)
        j = j + 1 if j + 1 < size else 0


def rise_point(d, v, t, base):
    # Keep a point each time the peak grows by 1/32 of the rise so far;
    # when full, every other point goes (the spacing doubles).
    n = d.rn
    rl = d.rl
    if n and (v - rl[n - 1]) * 32 < v - base:
        return
    if n == len(rl):
        rt = d.rt
        n >>= 1
        for i in range(n):
            rl[i] = rl[2 * i]
            rt[i] = rt[2 * i]
    rl[n] = v
    d.rt[n] = t
    d.rn = n + 1


def reached(d, level):
    # First time the rise reached `level` (interpolated between points).
    rl = d.rl
    rt = d.rt
    for i in range(d.rn):
        if rl[i] >= level:
            if i and rl[i] > rl[i - 1]:
                return rt[i - 1] + (rt[i] - rt[i - 1]) * (level - rl[i - 1]) // (rl[i] - rl[i - 1])
            return rt[i]
    return rt[d.rn - 1] if d.rn else d.last_t



def refit_onset(d, onset, base, hold):
    # EMG, once a squeeze has ended: where did a slow rise begin? At the
    # decision only the first tens of ms of the rise are in view, and a
    # gentle (S-shaped) build-up has by then been rising unseen for a fifth
    # of its length: its start is flat (no rate at the onset) and the
    # envelope's noise hides it. Now the rise up to half her hold level is
    # in the coarse history (d.cv/d.ct: 40 ms points, kept from before the
    # crossing to refit_keep_ms after it), so fit "flat, then a parabola"
    # (an S's start) to it and take where the parabola leaves the flat.
    # Only for a slow rise (half the hold reached refit_min_ms or more after
    # the onset), only ever earlier than the onset found at the decision,
    # and by at most refit_back_pct % of that time. Integer-only: levels
    # scaled to 0.._FIT_TOP, the parabola's time axis by 1/8 (48 points at
    # most), so every sum stays a small int. Up to ~1,200 loop steps, once
    # per squeeze.
    c = d.cfg
    cv = d.cv
    ct = d.ct
    size = len(cv)
    n = d.cn
    if n < 8 or hold <= base:
        return onset
    half = base + ((hold - base) >> 1)
    t_lo = d.cross_t - c.refit_pre_ms
    if t_lo < d.prev_off:
        t_lo = d.prev_off
    # newest to oldest: hi = the oldest point at or above half after the
    # onset, lo_k = the oldest point of the window
    j = d.cpos - 1 if d.cpos else size - 1
    hi = -1
    lo_k = 0
    k = 0
    while k < n and ct[j] > t_lo:
        if ct[j] >= onset and cv[j] >= half:
            hi = k
        lo_k = k
        k += 1
        j = j - 1 if j > 0 else size - 1
    if lo_k - hi >= _FIT_N:
        lo_k = hi + _FIT_N - 1   # at most _FIT_N points: the newest rest
    m = lo_k - hi + 1            # points in the window, oldest first
    if hi < 0 or m < 8:
        return onset
    first = d.cpos - 1 - lo_k
    if first < 0:
        first += size
    t_half = ct[(first + m - 1) % size]
    if t_half - onset < c.refit_min_ms:
        return onset             # a quick rise: the decision saw it start
    t_min = onset - (t_half - onset) * c.refit_back_pct // 100
    lo = cv[first]
    top = lo
    for i in range(m):
        y = cv[(first + i) % size]
        if y < lo:
            lo = y
        elif y > top:
            top = y
    sh = 0
    while (top - lo) >> sh > _FIT_TOP:
        sh += 1
    sy = 0
    syy = 0
    for i in range(m):
        y = (cv[(first + i) % size] - lo) >> sh
        sy += y
        syy += y * y
    spread = syy - sy * sy // m
    best = -1
    best_t = onset
    for kk in range(2, m - 3):
        tk = ct[(first + kk) % size]
        if tk < t_min or tk > onset:
            continue
        # least squares of y = a + b s, s = 0 before the knee kk, (i - kk)^2 / 8 after
        ss = 0
        s2 = 0
        sys = 0
        for i in range(kk + 1, m):
            q = i - kk
            q = (q * q) >> 3
            ss += q
            s2 += q * q
            sys += ((cv[(first + i) % size] - lo) >> sh) * q
        den = s2 - ss * ss // m
        num = sys - sy * ss // m
        if den <= 0 or num <= 0:
            continue             # not rising after the knee
        cost = spread - ((num * ((num << 4) // den)) >> 4)
        if best < 0 or cost < best:
            best = cost
            best_t = tk
    return best_t


def coarse_add(d, t, v):
    # EMG: the coarse history for refit_onset, a mean of _COARSE_K samples
    # per point; the detector feeds it at rest and for refit_keep_ms into a
    # squeeze, then it stays frozen until the squeeze ends
    d.csum += v
    d.ck += 1
    if d.ck == _COARSE_K:
        p = d.cpos
        d.cv[p] = d.csum // _COARSE_K
        d.ct[p] = t - (d.period_ms * (_COARSE_K - 1) >> 1)
        d.cpos = p + 1 if p + 1 < COARSE else 0
        if d.cn < COARSE:
            d.cn += 1
        d.csum = 0
        d.ck = 0
