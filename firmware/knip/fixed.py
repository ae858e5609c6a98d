# Integer helpers shared by the core. Everything here is small-int only so
# that nothing allocates on the ESP32 (small ints are < 2**30 there).
try:
    from micropython import const
except ImportError:  # CPython: const() is just the value
    def const(x):
        return x

Q = const(12)          # biquad coefficient fraction bits
Q_ONE = const(4096)
SMALL_MAX = const(0x3FFFFFFF)


def isqrt(n, guess=1):
    """floor(sqrt(n)) for 0 <= n < 2**30, Newton's method from `guess`."""
    if n <= 0:
        return 0
    x = guess if guess > 0 else 1
    while x * x < n:    # make sure we start at or above the root
        x <<= 1
    while True:
        y = (x + n // x) >> 1
        if y >= x:
            return x
        x = y


def shift_for(period_ms, tau_ms):
    """EMA shift s with 2**s samples nearest to tau: alpha = 2**-s (0..14)."""
    n = tau_ms // period_ms if period_ms > 0 else 1
    s = 0
    while s < 14 and (1 << (s + 1)) - n < n - (1 << s):
        s += 1
    return s


def clamp(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)
