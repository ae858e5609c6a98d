# Compact integer packing shared by the live stream and the session file.
#
# Samples: first differences, zigzag-mapped, Rice-coded with one parameter k
# per block (q = u >> k ones, a zero, then the k low bits). A quotient of
# _ESC or more is sent as _ESC ones followed by u in _RAW_BITS bits, so one
# spike costs 5 bytes instead of thousands of ones. The last byte is padded
# with ones: an unfinished unary run can never be taken for a sample.
#
# Records (detector events, cues): zigzag LEB128 varints.
#
# Everything is small ints over preallocated buffers: nothing here allocates.
from knip.fixed import const

_ESC = const(16)
_RAW_BITS = const(28)
_U_MAX = const(0xFFFFFFF)    # largest zigzag value after an escape (|delta| < 2**27)


def zigzag(v):
    return (v << 1) if v >= 0 else ((-v << 1) - 1)


def unzigzag(u):
    return (u >> 1) if not (u & 1) else -((u + 1) >> 1)


def rice_k(src, i0, n, prev):
    """Best-guess Rice parameter for src[i0:i0+n] after `prev`."""
    s = 0
    for i in range(i0, i0 + n):
        v = src[i]
        d = v - prev
        prev = v
        s += (d << 1) if d >= 0 else ((-d << 1) - 1)
        if s > 0x3FFFFFF:     # stay a small int; k saturates anyway
            s = 0x3FFFFFF
    m = s // n if n else 0
    k = 0
    while (m >> k) > 1 and k < 15:
        k += 1
    return k


def rice_pack(src, i0, n, prev, k, out, pos):
    """Append n samples of src from i0 (differences from prev) at byte pos of
    out; return the byte position after them (last byte padded with ones)."""
    acc = 0
    nb = 0
    mask = (1 << k) - 1
    for i in range(i0, i0 + n):
        v = src[i]
        d = v - prev
        prev = v
        u = (d << 1) if d >= 0 else ((-d << 1) - 1)
        q = u >> k
        if q >= _ESC:
            # escape: _ESC ones, then the raw value
            acc = (acc << _ESC) | 0xFFFF
            nb += _ESC
            while nb >= 8:
                nb -= 8
                out[pos] = (acc >> nb) & 0xFF
                pos += 1
            if u > _U_MAX:
                u = _U_MAX
            # 28 raw bits: 4 then 8, 8, 8 (acc stays below 2**16)
            acc = ((acc & 0xFF) << 4) | (u >> 24)
            nb += 4
            if nb >= 8:
                nb -= 8
                out[pos] = (acc >> nb) & 0xFF
                pos += 1
            for sh in (16, 8, 0):
                acc = ((acc & 0xFF) << 8) | ((u >> sh) & 0xFF)
                out[pos] = (acc >> nb) & 0xFF
                pos += 1
            acc &= 0xFF
            continue
        # q ones and a zero, then k bits
        acc = (acc << (q + 1)) | (((1 << q) - 1) << 1)
        nb += q + 1
        while nb >= 8:
            nb -= 8
            out[pos] = (acc >> nb) & 0xFF
            pos += 1
        acc &= 0xFF             # keep it a small int before the next shift
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


def rice_unpack(buf, pos, end, prev, k, dst, j0, n_max):
    """Decode samples from buf[pos:end] into dst from j0 (at most n_max);
    return (how many were decoded, byte position after them). Stops at the
    padding or after n_max samples. Host side: this allocates."""
    j = j0
    stop = j0 + n_max
    bit = pos * 8
    last = end * 8
    while j < stop:
        # unary part
        q = 0
        while bit < last and (buf[bit >> 3] >> (7 - (bit & 7))) & 1:
            q += 1
            bit += 1
            if q == _ESC:
                break
        if q == _ESC:
            if bit + _RAW_BITS > last:
                break
            u = 0
            for _ in range(_RAW_BITS):
                u = (u << 1) | ((buf[bit >> 3] >> (7 - (bit & 7))) & 1)
                bit += 1
        else:
            if bit >= last:
                break           # padding: an unfinished run of ones
            bit += 1            # the terminating zero
            if bit + k > last:
                break
            u = 0
            for _ in range(k):
                u = (u << 1) | ((buf[bit >> 3] >> (7 - (bit & 7))) & 1)
                bit += 1
            u |= q << k
        prev += (u >> 1) if not (u & 1) else -((u + 1) >> 1)
        dst[j] = prev
        j += 1
    return j - j0, (bit + 7) >> 3


def put_varint(out, pos, v):
    """Zigzag LEB128; return the position after it."""
    u = (v << 1) if v >= 0 else ((-v << 1) - 1)
    while u >= 0x80:
        out[pos] = (u & 0x7F) | 0x80
        u >>= 7
        pos += 1
    out[pos] = u
    return pos + 1


def get_varint(buf, pos, end):
    """Return (value, next position); raises ValueError past end."""
    u = 0
    sh = 0
    while True:
        if pos >= end or sh > 35:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        u |= (b & 0x7F) << sh
        sh += 7
        if not (b & 0x80):
            break
    return ((u >> 1) if not (u & 1) else -((u + 1) >> 1)), pos
