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
# The encoder's loops are viper kernels (knip.kernels): sources are int32
# arrays, outputs bytearrays or memoryviews of them.
from array import array

from knip.fixed import const
from knip.kernels import zigzag_sum, rice_run, RC_FROM, RC_N, RC_PREV, RC_K, RC_POS, RC_LIM, RC_LEN

NO_LIMIT = const(0x3FFFFFFF)  # rice_pack into a buffer sized for the worst case
_ESC = const(16)
_RAW_BITS = const(28)


def zigzag(v):
    return (v << 1) if v >= 0 else ((-v << 1) - 1)


def unzigzag(u):
    return (u >> 1) if not (u & 1) else -((u + 1) >> 1)


def rice_k(src, i0, n, prev):
    """Best-guess Rice parameter for src[i0:i0+n] after `prev`."""
    s = zigzag_sum(src, i0, n, prev)
    m = s // n if n else 0
    k = 0
    while (m >> k) > 1 and k < 15:
        k += 1
    return k


_RC = array("i", bytes(4 * RC_LEN))     # rice_pack's arguments to the kernel


def rice_pack(src, i0, n, prev, k, out, pos, lim=NO_LIMIT):
    """Append n samples of src (an int32 array) from i0 (differences from
    prev) at byte pos of out; return the byte position after them (last
    byte padded with ones), or, once past lim, a position up to 7 bytes
    beyond it (out then holds lim + 7 bytes at least). knip.kernels.rice_run
    does the coding."""
    rc = _RC
    rc[RC_FROM] = i0
    rc[RC_N] = n
    rc[RC_PREV] = prev
    rc[RC_K] = k
    rc[RC_POS] = pos
    rc[RC_LIM] = lim
    return rice_run(src, out, rc)


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
