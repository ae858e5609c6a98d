# Integer fixed-point signal conditioning: biquads, EMG RMS envelope,
# resting-level tracker. Coefficients are designed in float once, at start-up;
# per-sample work is small-int only (no heap).
import math
from array import array
from knip.fixed import const, Q_ONE, isqrt, shift_for, clamp
from knip import kernels as K

X_MAX = const(16383)   # biquad input domain: |x| < 2**14 keeps sums < 2**30
_RMS_MAX = const(4095)  # envelope input clamp: x*x < 2**24
_ENV_FRAC = const(4)   # envelope output in 1/16 of input counts
_BASE_FRAC = const(8)  # baseline/noise trackers keep 8 fraction bits


class Biquad:
    """Direct form I biquad with Q12 coefficients and integer state.

    The rounding error of each output is fed into the next one (first-order
    error feedback): without it a low cut-off (20 Hz at 1 kHz) amplifies the
    rounding noise ~70x at DC and the output wanders by tens of counts.
    The arithmetic is knip.kernels.chain_run's: a one-section chain, whose
    section a longer chain (knip.chain.EmgChain) may copy into its own.
    """

    def __init__(self, b0, b1, b2, a1, a2):
        k = K.new_chain(((b0, b1, b2, a1, a2),), 1, 1)
        k[K.CH_N] = 1
        k[K.CH_OUT] = 1
        self.k = k
        self.one = array("i", bytes(4))     # step()'s sample

    def coefficients(self):
        o = K.CH_HEAD
        return tuple(self.k[o:o + 5])

    def reset(self, x):
        start_section(self.k, K.CH_HEAD, x)

    def step(self, x):
        one = self.one
        one[0] = x
        K.chain_run(self.k, one, one, one)
        return one[0]


def start_section(k, o, x):
    """The section at k[o:] of a chain (knip.kernels.chain_run) in its
    steady state for a constant input x: no start-up transient."""
    x = clamp(x, -X_MAX, X_MAX)
    den = Q_ONE + k[o + 3] + k[o + 4]
    y = (x * (k[o] + k[o + 1] + k[o + 2])) // den if den else 0
    y = clamp(y, -X_MAX, X_MAX)
    k[o + 5] = k[o + 6] = x          # x1 x2
    k[o + 7] = k[o + 8] = y          # y1 y2
    k[o + 9] = 0                     # rounding error


def _quantise(b0, b1, b2, a1, a2, dc_gain):
    # Round to Q12, then fix b1 so the quantised DC gain is exact (0 or 1).
    qa1 = round(a1 * Q_ONE)
    qa2 = round(a2 * Q_ONE)
    qb0 = round(b0 * Q_ONE)
    qb2 = round(b2 * Q_ONE)
    if dc_gain is None:
        qb1 = round(b1 * Q_ONE)
    else:
        qb1 = round(dc_gain * (Q_ONE + qa1 + qa2)) - qb0 - qb2
    return Biquad(qb0, qb1, qb2, qa1, qa2)


def _prewarp(fs, fc, q):
    w = 2 * math.pi * fc / fs
    alpha = math.sin(w) / (2 * q)
    return math.cos(w), alpha


def design_lowpass(fs, fc, q=0.7071):
    """RBJ low-pass; unity DC gain."""
    c, alpha = _prewarp(fs, fc, q)
    a0 = 1 + alpha
    b = (1 - c) / 2 / a0
    return _quantise(b, 2 * b, b, -2 * c / a0, (1 - alpha) / a0, 1)


def design_highpass(fs, fc, q=0.7071):
    """RBJ high-pass; zero DC gain (a constant offset is removed exactly)."""
    c, alpha = _prewarp(fs, fc, q)
    a0 = 1 + alpha
    b = (1 + c) / 2 / a0
    return _quantise(b, -2 * b, b, -2 * c / a0, (1 - alpha) / a0, 0)


def design_notch(fs, fc, q=30.0):
    """RBJ notch at fc (mains hum); unity DC gain."""
    c, alpha = _prewarp(fs, fc, q)
    a0 = 1 + alpha
    return _quantise(1 / a0, -2 * c / a0, 1 / a0, -2 * c / a0, (1 - alpha) / a0, 1)


class RmsEnvelope:
    """Moving RMS of a zero-mean signal, decimated by `decim`.

    Mean square per block of `decim` samples, then the mean of the last
    `blocks` block values: window = decim * blocks samples. step() returns
    the new envelope (in 1/16 input counts) at the end of a block, else -1.
    """

    def __init__(self, decim, blocks):
        self.decim = decim
        self.blocks = blocks
        self.ring = array('i', [0] * blocks)
        self.pos = 0
        self.total = 0      # sum of ring, < blocks * 2**24
        self.acc = 0
        self.n = 0
        self.env = 0

    def step(self, x):
        if x < 0:
            x = -x
        if x > _RMS_MAX:
            x = _RMS_MAX
        return self.add(x * x, 1)

    def add(self, sq, n):
        """n more samples whose squares (clamped as in step) sum to sq; they
        must not go past the block's end. The envelope when the block is
        complete, else -1."""
        self.acc += sq
        self.n += n
        if self.n < self.decim:
            return -1
        ms = self.acc // self.decim
        self.acc = 0
        self.n = 0
        ring = self.ring
        p = self.pos
        self.total += ms - ring[p]
        ring[p] = ms
        p += 1
        self.pos = 0 if p >= self.blocks else p
        mean = self.total // self.blocks
        if mean < (1 << 22):
            self.env = isqrt(mean << 8, self.env)
        else:
            self.env = isqrt(mean, self.env >> _ENV_FRAC) << _ENV_FRAC
        return self.env


class BaselineTracker:
    """Resting level: rises slowly, falls faster, frozen while `hold` is set.

    A relaxed pelvic floor sits at its lowest level, so upward moves (tone
    creeping up, residual after a squeeze) are followed more slowly than
    downward ones. Also tracks the mean absolute deviation at rest (noise).
    """

    def __init__(self, period_ms, up_ms=6000, down_ms=1500, noise_ms=3000, noise_floor=1):
        self.up = shift_for(period_ms, up_ms)
        self.down = shift_for(period_ms, down_ms)
        self.nshift = shift_for(period_ms, noise_ms)
        self.floor = noise_floor
        self.level_q = 0     # baseline << 8
        self.noise_q = noise_floor << _BASE_FRAC
        self.learn = False   # while learning: fast, symmetric

    def reset(self, level, noise=0):
        self.level_q = level << _BASE_FRAC
        n = noise if noise > self.floor else self.floor
        self.noise_q = n << _BASE_FRAC

    def level(self):
        return self.level_q >> _BASE_FRAC

    def noise(self):
        n = self.noise_q >> _BASE_FRAC
        return n if n > self.floor else self.floor

    def update(self, v, gate):
        # gate: deviation beyond which a sample is not rest (kept out of noise).
        d = (v << _BASE_FRAC) - self.level_q
        if self.learn:
            # fast, but over enough samples that the noise estimate the
            # warm-up ends with is not the last handful's
            up = down = 3
            ns = 5 if self.nshift > 5 else self.nshift
        else:
            up = self.up
            down = self.down
            ns = self.nshift
        if d > 0:
            self.level_q += d >> up
        else:
            self.level_q -= (-d) >> down
        a = d if d >= 0 else -d
        g = gate << _BASE_FRAC
        if a > g and not self.learn:
            # clipped, not left out: leaving out what crosses the gate makes
            # a low estimate lower still (the gate is a multiple of it)
            a = g
        self.noise_q += (a - self.noise_q) >> ns
