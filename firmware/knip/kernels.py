# Block kernels for the 1 kHz EMG path, compiled by MicroPython's viper
# emitter to machine code (docs/FROZEN.md, CPU budget): a chain of biquad
# sections over a run of samples with the input guard's checks and the RMS
# envelope's sums of squares, a copy, the Rice coder's two passes, COBS
# framing and the ADC readings' conversion. Each is the only implementation
# of its arithmetic: the per-sample callers (Biquad.step, rice_pack) go
# through them too. A Python call costs more than a short loop here, so
# each kernel does a whole run in one call. Under CPython (the host
# tool) the decorator is a no-op and the same code runs as plain Python on
# the same integers.
#
# Viper rules kept here: at most 4 arguments (more state travels in an
# int32 array), no allocation, no division. A ptr32 load is zero-extended
# on a 64-bit port (the unix port of the tests) and a plain signed word on
# the ESP32's 32-bit one: every signed load is `(p[i] << sx) >> sx` with
# sx = SX (32 or 0), which gives the signed value on both.
import sys
from array import array

from knip.fixed import const

try:
    import micropython
except ImportError:                 # CPython: the same code, plain Python
    class micropython:              # noqa: N801  (stands in for the module)
        @staticmethod
        def viper(f):
            return f

        native = viper              # (simboard's synthetic woman)

    def ptr32(a):
        return a

    def ptr8(a):
        return a

# (CPython's arrays give signed values already: no shift there)
SX = 32 if sys.maxsize > 0x7FFFFFFF and sys.implementation.name == "micropython" else 0

# A chain of biquad sections over one or two channels (int32 array): a
# header, then 10 words per section (coefficients b0 b1 b2 a1 a2 in Q12,
# then x1 x2 y1 y2 and the rounding error fed back), the main channel's
# sections first, then room for CH_CAP samples per channel. chain_run is
# the only biquad arithmetic there is: a Biquad (knip.filters) is a
# one-section chain.
CH_SX = 0
CH_FROM = 1          # first sample of the run
CH_N = 2             # samples in the run (at most CH_CAP)
CH_NX = 3            # sections on the main channel
CH_NA = 4            # sections on the second channel (0: none)
CH_SQX = 5           # out: sum of min(|y|, 4095)**2 over the run, main channel
CH_SQA = 6           # ... second channel
CH_GUARD = 7         # 1: stop before the first sample the input guard would not pass
CH_OUT = 8           # bit 0: write the main channel's output over its input;
                     # bit 1: the hum template is held, not learnt
CH_LAST_X = 9        # the input guard's running values (knip.chain.InputGuard)
CH_LAST_T = 10
CH_SAME = 11
CH_FLAT_N = 12
CH_LO = 13
CH_HI = 14
CH_JUMP = 15
CH_GAP_MS = 16
CH_CAP = 17          # samples a run may hold
CH_HUM = 18          # samples per mains cycle: hum subtracted (< 0: only learnt; 0: off)
CH_PHASE = 19        # ... the next sample's place in the cycle
CH_HEAD = 20
SEC_LEN = 10         # b0 b1 b2 a1 a2 x1 x2 y1 y2 e
HUM_K = const(4)     # the hum's template follows over 2**HUM_K cycles
# CH_OUT bit 1: the filters restarted after an artefact ring meanwhile; a
# template learnt on it would take hum "off" that is not there for a third
# of a second (knip.chain.EmgChain.push)


def new_chain(coefs, nx, cap, hum=0):
    """A chain array for chain_run: the sections' (b0, b1, b2, a1, a2) in
    order, the first nx on the main channel and the rest on the second,
    room for a run of cap samples, and with hum (samples per mains cycle)
    one cycle's template per channel after it (learnt, not yet taken
    off: CH_HUM < 0); state zero
    (knip.filters.start_section starts a section steady)."""
    k = array("i", bytes(4 * (CH_HEAD + SEC_LEN * len(coefs) + 2 * cap + 2 * hum)))
    k[CH_SX] = SX
    k[CH_CAP] = cap
    k[CH_HUM] = -hum
    k[CH_NX] = nx
    k[CH_NA] = len(coefs) - nx
    for j in range(len(coefs)):
        o = CH_HEAD + SEC_LEN * j
        for q in range(5):
            k[o + q] = coefs[j][q]
    return k


# chain_run: samples through the sections; with CH_GUARD only those before
# the first the input guard would stop (it then sees that one from the same
# state). Per section: x clamped to +-16383, acc = b0 x + b1 x1 + b2 x2 -
# a1 y1 - a2 y2 + e, y = acc >> 12 clamped, e = acc - (y << 12); section by
# section over the whole run, the run held in the array's room. Then, with
# CH_HUM, mains hum off: a template of one mains cycle (<< 8), the mean of
# the filtered signal at each place in the cycle over about 2**HUM_K
# cycles, is learnt and, once the chain has found hum in it (CH_HUM > 0),
# taken from it. Hum repeats every cycle and the muscle's signal does not,
# so the template holds the hum and all its harmonics and little of her
# (narrow notches at 50, 100, 150 Hz...).
@micropython.viper
def chain_run(k: ptr32, ts: ptr32, xs: ptr32, as_: ptr32) -> int:
    """xs/as_[k[CH_FROM]:+k[CH_N]] through the chain: how many were taken."""
    sx = k[0]
    i0 = k[1]
    n = k[2]
    nx = k[3]
    na = k[4]
    scr = 20 + 10 * (nx + na)           # the run, main channel, then the second
    cap = k[17]
    m = 0
    if k[7]:                            # the input guard: how many in a row pass
        last_x = (k[9] << sx) >> sx
        last_t = (k[10] << sx) >> sx
        same = k[11]
        lo = (k[13] << sx) >> sx
        hi = (k[14] << sx) >> sx
        jump = k[15]
        while m < n:
            x = (xs[i0 + m] << sx) >> sx
            t = (ts[i0 + m] << sx) >> sx
            sm = 0
            if x == last_x:
                sm = same + 1
                if sm >= k[12]:         # CH_FLAT_N
                    break
            if x >= hi or x <= lo:
                break
            if na and ((as_[i0 + m] << sx) >> sx >= 16383 or (as_[i0 + m] << sx) >> sx <= -16383):
                break                   # the second channel at its rail (InputGuard.check)
            if jump and (x - last_x > jump or last_x - x > jump):
                break
            if t - last_t > k[16] or t <= last_t:     # CH_GAP_MS
                break
            same = sm
            last_x = x
            last_t = t
            m += 1
        k[9] = last_x
        k[10] = last_t
        k[11] = same
    else:
        m = n
    ch = 0
    o = 20
    while ch < 2:
        if ch == 1 and na == 0:
            k[6] = 0
            break
        base = scr + ch * cap
        src = xs
        if ch:
            src = as_
        j = 0
        while j < m:
            k[base + j] = src[i0 + j]
            j += 1
        ns = nx if ch == 0 else na
        q = 0
        while q < ns:
            b0 = (k[o] << sx) >> sx
            b1 = (k[o + 1] << sx) >> sx
            b2 = (k[o + 2] << sx) >> sx
            a1 = (k[o + 3] << sx) >> sx
            a2 = (k[o + 4] << sx) >> sx
            x1 = (k[o + 5] << sx) >> sx
            x2 = (k[o + 6] << sx) >> sx
            y1 = (k[o + 7] << sx) >> sx
            y2 = (k[o + 8] << sx) >> sx
            e = (k[o + 9] << sx) >> sx
            j = 0
            while j < m:
                x = (k[base + j] << sx) >> sx
                x = 16383 if x > 16383 else (-16383 if x < -16383 else x)
                acc = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2 + e
                y = acc >> 12
                e = acc - (y << 12)
                y = 16383 if y > 16383 else (-16383 if y < -16383 else y)
                x2 = x1
                x1 = x
                y2 = y1
                y1 = y
                k[base + j] = y
                j += 1
            k[o + 5] = x1
            k[o + 6] = x2
            k[o + 7] = y1
            k[o + 8] = y2
            k[o + 9] = e
            o += 10
            q += 1
        sub = (k[18] << sx) >> sx       # > 0: taken off; < 0: only learnt
        hum = sub if sub > 0 else 0 - sub
        learn = (k[8] & 2) == 0
        tb = scr + 2 * cap + ch * hum
        p = k[19]
        sq = 0
        j = 0
        while j < m:
            y = (k[base + j] << sx) >> sx
            if hum:
                h = (k[tb + p] << sx) >> sx
                if learn:
                    k[tb + p] = h + (((y << 8) - h) >> HUM_K)
                if sub > 0:
                    y = y - (h >> 8)
                p += 1
                if p >= hum:
                    p = 0
            if ch == 0 and (k[8] & 1):
                xs[i0 + j] = y
            if y < 0:
                y = 0 - y
            if y > 4095:
                y = 4095
            sq += y * y
            j += 1
        k[5 + ch] = sq
        ch += 1
    k[19] = p
    return m


@micropython.viper
def copy_run(dst: ptr32, j: int, src: ptr32, st: ptr32):
    """dst[j:j+st[1]] = src[st[0]:+st[1]]."""
    i = st[0]
    end = i + st[1]
    while i < end:
        dst[j] = src[i]
        i += 1
        j += 1


# Rice coder state (int32): the run, the previous value, k, the byte position,
# the position past which it stops
RC_FROM = 0
RC_N = 1
RC_PREV = 2
RC_K = 3
RC_POS = 4
RC_LIM = 5
RC_LEN = 6


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
    or more: 16 ones, then the zigzag value in 28 bits (clamped). Once past
    byte st[RC_LIM] it stops and returns where it is (past it): a sample
    adds at most 6 bytes and the padding 1, so it writes below RC_LIM + 7."""
    sx = int(SX)
    i = st[0]
    end = i + st[1]
    prev = (st[2] << sx) >> sx
    k = st[3]
    pos = st[4]
    lim = st[5]
    acc = 0
    nb = 0
    mask = (1 << k) - 1
    while i < end:
        if pos > lim:
            return pos
        v = (src[i] << sx) >> sx
        i += 1
        d = v - prev
        prev = v
        u = d << 1
        if d < 0:
            u = ((0 - d) << 1) - 1
        q = u >> k
        if q >= 16 or q < 0:        # (u < 0: a difference of 2^30 or more, on 32 bits)
            acc = (acc << 16) | 0xFFFF
            nb += 16
            while nb >= 8:
                nb -= 8
                out[pos] = (acc >> nb) & 0xFF
                pos += 1
            if u > 0xFFFFFFF or u < 0:
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
        if uv < lo:
            sat += 1
            buf[i] = -16383         # at a rail: the chain's saturation (drivers: _RAIL)
        elif uv > hi:
            sat += 1
            buf[i] = 16383
        elif uv <= floor:
            buf[i] = 0
        else:
            d = uv - off
            buf[i] = ((d >> 12) * m + (((d & 0xFFF) * m) >> 12) + r) >> sh
        i += 1
    return sat
