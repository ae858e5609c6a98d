# Deterministic test signals for the portable core tests (CPython and
# MicroPython give the same integers: an LCG, no `random` module).
import gc
import math
import sys
from array import array


_MICROPYTHON = sys.implementation.name == "micropython"


def _ints(n):
    return array("i", bytes(4 * n))      # allocated once, half a list's size


def collect():
    """Call before a chain runs over a track. On MicroPython a function with
    more than 11 locals and stack slots gets its frame from the heap on every
    call; with megabytes of dead floats about (building a track leaves them),
    finding room for it took the detector 20-40 times as long: 1.3-1.7 s
    instead of 35-64 ms for 60 s at 50 Hz in an 8 MB heap. (CPython has no
    such cost, and a full collection in a pytest process is slow.)"""
    if _MICROPYTHON:
        gc.collect()


class Lcg:
    def __init__(self, seed=1):
        self.s = seed & 0x7FFFFFFF

    def uniform(self):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return ((self.s >> 7) & 0xFFFF) / 65536.0 - 0.5


def squeeze_shape(t, onset, rise, hold, release, amp, residual=0.0, gentle=False, under=None):
    """Quarter-sine rise (gentle: an S, half a cosine), flat hold,
    quarter-cosine release to `residual`; under: (fraction of amp, time
    constant s), the release undershoots that far below and recovers."""
    if t < onset:
        return 0.0
    u = t - onset
    if u < rise:
        if gentle:
            return amp * (0.5 - 0.5 * math.cos(math.pi * u / rise))
        return amp * math.sin(0.5 * math.pi * u / rise)
    u -= rise
    if u < hold:
        return amp
    u -= hold
    low = residual - under[0] * amp if under else residual
    if u < release:
        return low + (amp - low) * math.cos(0.5 * math.pi * u / release)
    if under:
        return residual - under[0] * amp * math.exp(-(u - release) / under[1])
    return residual


def _wobble(t, moves):
    # a movement (t0, seconds, cmH2O): one swing down, then as far up; or
    # (t0, seconds, cmH2O, Hz): swings at that rate in a Hann window
    v = 0.0
    for m in moves:
        u = t - m[0]
        if 0.0 < u < m[1]:
            if len(m) > 3:
                v += m[2] * (0.5 - 0.5 * math.cos(2 * math.pi * u / m[1])) * math.sin(2 * math.pi * m[3] * u)
            else:
                v -= m[2] * math.sin(2 * math.pi * u / m[1])
    return v


def pressure_track(rate, seconds, squeezes, base=10.0, noise=0.2, ripple=0.4, seed=3,
                   counts=20, abd=None, moves=(), breath_hz=0.25, warm=(0.0, 1.0), gentle=False,
                   under=None, coughs=(), dips=(), phase=0.0):
    """squeezes: list of (onset, rise, hold, release, amp, residual, abd_amp).
    ripple: breathing (cmH2O, half peak to peak, at breath_hz, from `phase`
    radians); moves: see _wobble;
    warm: (cmH2O, time constant s) the probe warming up (negative: settling
    down); gentle: S-shaped rises; under: (fraction, time constant s) each
    release undershoots her rest; coughs: (t0, cmH2O) half-sine spikes of 0.25 s;
    dips: (t0, seconds, cmH2O) half-sine dips below her rest.
    Returns (times_ms, pf_counts, abd_counts): int32 arrays (copy one with
    list() to put None in; MicroPython wraps values beyond int32 silently)."""
    g = Lcg(seed)
    n = int(rate * seconds)
    ts, xs, ab = _ints(n), _ints(n), _ints(n)
    for i in range(n):
        t = i / rate
        br = ripple * math.sin(2 * math.pi * breath_hz * t + phase)
        v = base + br + noise * 3.4 * g.uniform()
        if moves:
            v += _wobble(t, moves)
        if warm[0]:
            v += warm[0] * (1.0 - math.exp(-t / warm[1]))
        a = 20.0 + 2 * br + noise * 3.4 * g.uniform()
        for dp in dips:
            if dp[0] <= t < dp[0] + dp[1]:
                v -= dp[2] * math.sin(math.pi * (t - dp[0]) / dp[1])
        for cg in coughs:
            if cg[0] <= t < cg[0] + 0.25:
                v += cg[1] * math.sin(math.pi * (t - cg[0]) / 0.25)
        for s in squeezes:
            v += squeeze_shape(t, s[0], s[1], s[2], s[3], s[4], s[5], gentle, under)
            if len(s) > 6:
                a += squeeze_shape(t, s[0], s[1], s[2], s[3], s[6], 0.0)
        ts[i] = int(t * 1000 + 0.5)
        xs[i] = int(v * counts + 0.5)
        ab[i] = int(a * counts + 0.5)
    return ts, xs, ab


def emg_track(rate, seconds, bursts, rest_uv=4.0, seed=5, offset=2048, gentle=False, hum=None):
    """bursts: list of (onset, rise, hold, release, rms_uv[, residual_uv]).
    Raw counts around offset. gentle: S-shaped rises. hum: (uV, Hz) mains
    hum with a third harmonic of a fifth of it, its size swinging 30 %
    over 7 s. Returns (times_ms, counts): int32 arrays, as pressure_track."""
    g = Lcg(seed)
    n = int(rate * seconds)
    ts, xs = _ints(n), _ints(n)
    for i in range(n):
        t = i / rate
        level = rest_uv
        for b in bursts:
            level += squeeze_shape(t, b[0], b[1], b[2], b[3], b[4], b[5] if len(b) > 5 else 0.0, gentle)
        # uniform noise * sqrt(12) has unit variance
        v = level * 3.4641 * g.uniform()
        if hum:
            w = 2 * math.pi * hum[1] * t
            v += hum[0] * (1 + 0.3 * math.sin(0.9 * t)) * (math.sin(w + 0.4) + 0.2 * math.sin(3 * w + 1.1))
        ts[i] = int(t * 1000 + 0.5)
        xs[i] = offset + int(v)
    return ts, xs
