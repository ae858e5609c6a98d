# The relaxation verdict on a finished squeeze (record r): is the level she
# settled at after it (averaged over the recovery window) back within a
# tolerance of her resting level? EMG compares in power: a residual
# contraction adds to the background noise as a sum of squares.
from knip.fixed import isqrt
from knip.record import EV_RELAXED, EV_NOT_RELAXED, R_PEAK, R_BASE, R_REST, R_NOISE, R_RESIDUAL, \
    R_RELAXED, R_VERDICT_T
from knip.thresholds import margin


def _above(a, b):
    # sqrt(a*a - b*b) (0 when a <= b), scaled so the squares stay small ints:
    # what a level adds to a background that it sums with in power (EMG).
    if a <= b:
        return 0
    sh = 0
    while a > 16383:
        a >>= 1
        b >>= 1
        sh += 1
    return isqrt(a * a - b * b, a) << sh


def _hyp(a, b):
    # sqrt(a*a + b*b) for a, b >= 0, scaled like _above.
    sh = 0
    while a > 16383 or b > 16383:
        a >>= 1
        b >>= 1
        sh += 1
    return isqrt(a * a + b * b, a + b) << sh


def rest_of(r):
    # The resting level a residual is read against: her tone, or the level
    # before the squeeze when that was lower.
    return r[R_REST] if r[R_REST] < r[R_BASE] else r[R_BASE]


def _tolerance(r, rest, c, band=0):
    # The largest residual that still reads as relaxed: relax_k10/10 noise
    # (in power: what that error in the level would read as) or relax_pct
    # of the squeeze's rise, or `band`: how far her rest swings slowly
    # about its level (pressure: breathing; knip.detector).
    if c.relax_power:
        amp = _above(r[R_PEAK], rest)
        return margin(0, 0, amp, c.relax_pct, _above(rest + r[R_NOISE] * c.relax_k10 // 10, rest))
    return margin(r[R_NOISE], c.relax_k10, r[R_PEAK] - rest, c.relax_pct, band)


def judge(r, level, t, c, band=0):
    # The verdict at t into r (R_RESIDUAL, R_RELAXED, R_VERDICT_T): EV_RELAXED
    # or EV_NOT_RELAXED.
    rest = rest_of(r)
    res = _above(level, rest) if c.relax_power else level - rest
    r[R_RESIDUAL] = res
    r[R_VERDICT_T] = t
    if res <= _tolerance(r, rest, c, band):
        r[R_RELAXED] = 1
        return EV_RELAXED
    r[R_RELAXED] = 0
    return EV_NOT_RELAXED


def relaxed_below(r, c, band=0):
    # The level at which the residual reads as the tolerance: below it she
    # is relaxed again (the end of an unrelaxed squeeze's plateau).
    rest = rest_of(r)
    tol = _tolerance(r, rest, c, band)
    return _hyp(rest, tol) if c.relax_power else rest + tol
