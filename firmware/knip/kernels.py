# Block kernels for the 1 kHz EMG path, compiled by MicroPython's viper
# emitter to machine code (docs/FROZEN.md, CPU budget): a biquad section over
# a run of samples, the sum of squares of the RMS envelope, the input
# guard's scan for a clean run, a copy, and the Rice coder's two passes.
# Each is the only implementation of its arithmetic: the per-sample callers
# (Biquad.step, rice_pack) go through them too. Under CPython (the host
# tool) the decorator is a no-op and the same code runs as plain Python on
# the same integers.
#
# Viper rules kept here: at most 4 arguments (more state travels in an
# int32 array), no allocation, no division. A ptr32 load is zero-extended
# on a 64-bit port (the unix port of the tests) and a plain signed word on
# the ESP32's 32-bit one: every signed load is `(p[i] << sx) >> sx` with
# sx = SX (32 or 0), which gives the signed value on both.
import sys

try:
    import micropython
except ImportError:                 # CPython: the same code, plain Python
    class micropython:              # noqa: N801  (stands in for the module)
        @staticmethod
        def viper(f):
            return f

    def ptr32(a):
        return a

    def ptr8(a):
        return a

SX = 32 if sys.maxsize > 0x7FFFFFFF else 0

# Biquad state array (int32): coefficients, history, error feedback, and the
# run's offsets into its source and destination.
BQ_B0 = 0
BQ_B1 = 1
BQ_B2 = 2
BQ_A1 = 3
BQ_A2 = 4
BQ_X1 = 5
BQ_X2 = 6
BQ_Y1 = 7
BQ_Y2 = 8
BQ_E = 9
BQ_SX = 10
BQ_SRC = 11          # first sample in the source
BQ_LEN = 12


@micropython.viper
def biquad_run(st: ptr32, src: ptr32, dst: ptr32, n: int):
    """dst[0:n] = the section over src[st[BQ_SRC]:+n] (x clamped to
    +-16383, Q12 coefficients, first-order error feedback); the state is
    kept in st. dst may be src when the source offset is 0."""
    sx = st[10]
    b0 = (st[0] << sx) >> sx
    b1 = (st[1] << sx) >> sx
    b2 = (st[2] << sx) >> sx
    a1 = (st[3] << sx) >> sx
    a2 = (st[4] << sx) >> sx
    x1 = (st[5] << sx) >> sx
    x2 = (st[6] << sx) >> sx
    y1 = (st[7] << sx) >> sx
    y2 = (st[8] << sx) >> sx
    e = (st[9] << sx) >> sx
    j = st[11]
    i = 0
    while i < n:
        x = (src[j] << sx) >> sx
        if x > 16383:
            x = 16383
        elif x < -16383:
            x = -16383
        acc = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2 + e
        y = acc >> 12
        e = acc - (y << 12)
        if y > 16383:
            y = 16383
        elif y < -16383:
            y = -16383
        x2 = x1
        x1 = x
        y2 = y1
        y1 = y
        dst[i] = y
        i += 1
        j += 1
    st[5] = x1
    st[6] = x2
    st[7] = y1
    st[8] = y2
    st[9] = e


@micropython.viper
def sum_squares(src: ptr32, n: int) -> int:
    """Sum of min(|x|, 4095)**2 over src[0:n] (n <= 64 stays below 2**30)."""
    sx = int(SX)
    s = 0
    i = 0
    while i < n:
        x = (src[i] << sx) >> sx
        if x < 0:
            x = 0 - x
        if x > 4095:
            x = 4095
        s += x * x
        i += 1
    return s


# Guard scan state (int32), the InputGuard's running values around the run
GS_LAST_X = 0
GS_LAST_T = 1
GS_SAME = 2
GS_FLAT_N = 3
GS_LO = 4
GS_HI = 5
GS_JUMP = 6
GS_GAP_MS = 7
GS_FROM = 8          # first ring slot of the run
GS_N = 9             # samples in the run
GS_LEN = 10


@micropython.viper
def guard_clean(g: ptr32, ts: ptr32, xs: ptr32, out: ptr32) -> int:
    """How many samples from ts/xs[g[GS_FROM]:+g[GS_N]] in a row the input
    guard passes as they are (none stuck, at the rail, jumping or after a
    gap); their x go to out[0:], the guard's last x, last t and repeat
    count move past them. Stops before the first that is not clean, so the
    guard's own check() then takes it from the same state."""
    sx = int(SX)
    last_x = (g[0] << sx) >> sx
    last_t = (g[1] << sx) >> sx
    same = g[2]
    flat_n = g[3]
    lo = (g[4] << sx) >> sx
    hi = (g[5] << sx) >> sx
    jump = g[6]
    gap = g[7]
    j = g[8]
    n = g[9]
    i = 0
    while i < n:
        x = (xs[j] << sx) >> sx
        t = (ts[j] << sx) >> sx
        s = 0
        if x == last_x:
            s = same + 1
            if s >= flat_n:
                break
        if x >= hi or x <= lo:
            break
        if jump and (x - last_x > jump or last_x - x > jump):
            break
        if t - last_t > gap or t <= last_t:
            break
        same = s
        last_x = x
        last_t = t
        out[i] = x
        i += 1
        j += 1
    g[0] = last_x
    g[1] = last_t
    g[2] = same
    return i


@micropython.viper
def copy_run(dst: ptr32, j: int, src: ptr32, st: ptr32):
    """dst[j:j+st[1]] = src[st[0]:+st[1]]."""
    i = st[0]
    end = i + st[1]
    while i < end:
        dst[j] = src[i]
        i += 1
        j += 1


# Rice coder state (int32): the run, the previous value, k, the byte position
RC_FROM = 0
RC_N = 1
RC_PREV = 2
RC_K = 3
RC_POS = 4
RC_LEN = 5


@micropython.viper
def zigzag_sum(src: ptr32, i0: int, n: int, prev: int) -> int:
    """Sum of the zigzag-mapped differences of src[i0:i0+n] after prev,
    saturating at 0x3FFFFFF (Rice parameter guess)."""
    sx = int(SX)
    s = 0
    i = i0
    end = i0 + n
    while i < end:
        v = (src[i] << sx) >> sx
        d = v - prev
        prev = v
        if d >= 0:
            s += d << 1
        else:
            s += ((0 - d) << 1) - 1
        if s > 0x3FFFFFF:
            s = 0x3FFFFFF
        i += 1
    return s


@micropython.viper
def rice_run(src: ptr32, out: ptr8, st: ptr32) -> int:
    """Rice-code src[st[RC_FROM]:+st[RC_N]] (differences from st[RC_PREV],
    parameter st[RC_K]) into out from byte st[RC_POS]; returns the byte
    position after them, the last byte padded with ones. A quotient of 16
    or more: 16 ones, then the zigzag value in 28 bits (clamped)."""
    sx = int(SX)
    i = st[0]
    end = i + st[1]
    prev = (st[2] << sx) >> sx
    k = st[3]
    pos = st[4]
    acc = 0
    nb = 0
    mask = (1 << k) - 1
    while i < end:
        v = (src[i] << sx) >> sx
        i += 1
        d = v - prev
        prev = v
        u = d << 1
        if d < 0:
            u = ((0 - d) << 1) - 1
        q = u >> k
        if q >= 16:
            acc = (acc << 16) | 0xFFFF
            nb += 16
            while nb >= 8:
                nb -= 8
                out[pos] = (acc >> nb) & 0xFF
                pos += 1
            if u > 0xFFFFFFF:
                u = 0xFFFFFFF
            acc = ((acc & 0xFF) << 4) | (u >> 24)
            nb += 4
            if nb >= 8:
                nb -= 8
                out[pos] = (acc >> nb) & 0xFF
                pos += 1
            acc = ((acc & 0xFF) << 8) | ((u >> 16) & 0xFF)
            out[pos] = (acc >> nb) & 0xFF
            pos += 1
            acc = ((acc & 0xFF) << 8) | ((u >> 8) & 0xFF)
            out[pos] = (acc >> nb) & 0xFF
            pos += 1
            acc = ((acc & 0xFF) << 8) | (u & 0xFF)
            out[pos] = (acc >> nb) & 0xFF
            pos += 1
            acc &= 0xFF
            continue
        acc = (acc << (q + 1)) | (((1 << q) - 1) << 1)
        nb += q + 1
        while nb >= 8:
            nb -= 8
            out[pos] = (acc >> nb) & 0xFF
            pos += 1
        acc &= 0xFF
        acc = (acc << k) | (u & mask)
        nb += k
        while nb >= 8:
            nb -= 8
            out[pos] = (acc >> nb) & 0xFF
            pos += 1
        acc &= 0xFF
    if nb:
        out[pos] = ((acc << (8 - nb)) | ((1 << (8 - nb)) - 1)) & 0xFF
        pos += 1
    return pos


@micropython.viper
def cobs_run(src: ptr8, n: int, dst: ptr8) -> int:
    """COBS-encode src[0:n] into dst, then the 0x00 delimiter; returns the
    length. dst may be the same buffer ahead of src (knip.protocol's
    FrameWriter): byte o is written only after input byte i with o <= i +
    the lead has been read."""
    code_at = 0
    code = 1
    o = 1
    i = 0
    while i < n:
        b = src[i]
        i += 1
        if b:
            dst[o] = b
            o += 1
            code += 1
            if code == 0xFF:
                dst[code_at] = code
                code_at = o
                o += 1
                code = 1
        else:
            dst[code_at] = code
            code_at = o
            o += 1
            code = 1
    dst[code_at] = code
    dst[o] = 0
    return o + 1


# ADC run conversion state (int32): the run, then the driver's scaling
AC_FROM = 0
AC_N = 1
AC_OFFSET = 2        # uV subtracted first
AC_M = 3             # counts = ((d >> 12) * m + (((d & 0xFFF) * m) >> 12) + r) >> sh
AC_SH = 4
AC_R = 5
AC_LO = 6            # uV outside lo..hi: at a rail (counted)
AC_HI = 7
AC_FLOOR = 8         # uV at or below: 0 counts
AC_LEN = 9


@micropython.viper
def adc_counts(buf: ptr32, st: ptr32) -> int:
    """Turn the ADC readings (uV) in buf[st[AC_FROM]:+st[AC_N]] into counts
    in place, as drivers.myoware.MyoWare.read does one at a time; returns
    how many were at a rail."""
    sx = int(SX)
    i = st[0]
    end = i + st[1]
    off = (st[2] << sx) >> sx
    m = st[3]
    sh = st[4]
    r = st[5]
    lo = (st[6] << sx) >> sx
    hi = (st[7] << sx) >> sx
    floor = (st[8] << sx) >> sx
    sat = 0
    while i < end:
        uv = (buf[i] << sx) >> sx
        if uv < lo or uv > hi:
            sat += 1
        if uv <= floor:
            buf[i] = 0
        else:
            d = uv - off
            buf[i] = ((d >> 12) * m + (((d & 0xFFF) * m) >> 12) + r) >> sh
        i += 1
    return sat
