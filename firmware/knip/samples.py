# Sample payloads, one codec for the device and the host: the live stream's
# SAMPLES / SAMPLES_KEY frames (docs/PROTOCOL.md section 5) and the session
# file's REC_SAMPLES records (section 6.5). Encoders fill buffers allocated
# once (device: nothing allocated per sample); decoders return lists (host,
# tests) and raise ValueError on a payload that does not decode.
import struct
from array import array

from knip.fixed import const
from knip import protocol as P
from knip.packing import rice_k, rice_pack, rice_unpack, put_varint, get_varint, NO_LIMIT
from knip.kernels import copy_run

MAX_BATCH = const(100)         # most samples in one live frame
_MAX_BATCH_TWO = const(90)     # two channels: 90 escapes each still fit MAX_PAYLOAD
BLOCK = const(200)             # samples per session file record
_KEY_EVERY = const(10)         # live frames between key frames (absolute values)
_HDR = "<IIHBB"                # first index, first t_ms, count, channels, k (ch0 | ch1 << 4)
HDR_SIZE = const(12)


class LiveEncoder:
    """Batches samples into SAMPLES frames (Rice-coded differences); every
    tenth frame is a key frame that carries absolute start values."""

    def __init__(self, channels):
        self.two = channels > 1
        self.xs = array("i", bytes(4 * MAX_BATCH))
        # one channel: no second array (add() writes a, then x over it)
        self.as_ = array("i", bytes(4 * MAX_BATCH)) if self.two else self.xs
        self.n = 0
        self.batch = 10
        self.on = False
        self.frames = 0
        self.px = 0
        self.pa = 0
        self.w = P.FrameWriter(16 + (12 if self.two else 6) * MAX_BATCH)  # every sample an escape
        self.cp = array("i", bytes(8))      # copy_run's source run

    def start(self, batch):
        top = _MAX_BATCH_TWO if self.two else MAX_BATCH
        self.batch = batch if 1 <= batch <= top else top
        self.n = 0
        self.frames = 0
        self.on = True

    def add(self, x, a):
        """Keep one sample; True when a frame is due."""
        n = self.n
        self.as_[n] = a
        self.xs[n] = x
        self.n = n + 1
        return self.n >= self.batch

    def take(self, xs, as_, i, m):
        """Keep samples from slot i of the int32 arrays xs, as_ (m in a
        row) until a frame is due; returns how many were kept."""
        n = self.n
        q = self.batch - n
        if q > m:
            q = m
        cp = self.cp
        cp[0] = i
        cp[1] = q
        copy_run(self.as_, n, as_, cp)
        copy_run(self.xs, n, xs, cp)
        self.n = n + q
        return q

    def frame(self, seq):
        n = self.n
        self.n = 0
        p = self.w.payload
        key = self.frames % _KEY_EVERY == 0
        self.frames += 1
        xs = self.xs
        px = xs[0] if key else self.px
        kx = rice_k(xs, 0, n, px)
        p[0] = n
        pos = 2
        if self.two:
            pa = self.as_[0] if key else self.pa
            ka = rice_k(self.as_, 0, n, pa)
            p[1] = kx | (ka << 4)
            if key:
                pos = put_varint(p, pos, px)
                pos = put_varint(p, pos, pa)
            pos = rice_pack(xs, 0, n, px, kx, p, pos)
            pos = rice_pack(self.as_, 0, n, pa, ka, p, pos)
            self.pa = self.as_[n - 1]
        else:
            p[1] = kx
            if key:
                pos = put_varint(p, pos, px)
            pos = rice_pack(xs, 0, n, px, kx, p, pos)
        self.px = xs[n - 1]
        return self.w.frame(P.SAMPLES_KEY if key else P.SAMPLES, seq, pos)


class LiveDecoder:
    """SAMPLES / SAMPLES_KEY payloads back into values. Differences need the
    previous frame: after a lost frame nothing decodes until the next key."""

    def __init__(self, channels):
        self.channels = channels
        self.prev = [0] * channels
        self.synced = False
        self.last_seq = None
        self.lost_frames = 0
        self.samples = 0

    def note_seq(self, seq):
        if self.last_seq is not None and seq != (self.last_seq + 1) & 0xFF:
            self.lost_frames += (seq - self.last_seq - 1) & 0xFF
            self.synced = False
        self.last_seq = seq

    def decode(self, mtype, p):
        """Per-channel sample lists, or None while waiting for a key frame."""
        end = len(p)
        if end < 2 or p[0] == 0:
            raise ValueError("a live samples frame of %d bytes holds no samples" % end)
        n = p[0]
        kb = p[1]
        pos = 2
        if mtype == P.SAMPLES_KEY:
            prev = [0] * self.channels
            for c in range(self.channels):
                prev[c], pos = get_varint(p, pos, end)
            self.prev = prev
            self.synced = True
        if not self.synced:
            return None
        out = []
        for c in range(self.channels):
            dst = [0] * n
            got, pos = rice_unpack(p, pos, end, self.prev[c], (kb >> (4 * c)) & 0xF, dst, 0, n)
            if got != n:
                self.synced = False
                raise ValueError("a live frame decoded to %d of %d samples" % (got, n))
            out.append(dst)
        for c in range(self.channels):
            self.prev[c] = out[c][-1]
        self.samples += n
        return out


class SampleBlock:
    """Collects samples for one REC_SAMPLES record of the session file."""

    def __init__(self, channels, rate_hz, most=0):
        self.two = channels > 1
        self.rate = rate_hz     # a whole number of Hz (knip.profile checks it)
        self.xs = array("i", bytes(4 * BLOCK))
        # one channel: no second array (add() writes a, then x over it)
        self.as_ = array("i", bytes(4 * BLOCK)) if self.two else self.xs
        if most:
            # records of at most `most` bytes (the recorder halves a larger
            # one): pack() stops past lim, and the coder writes 7 bytes past
            # it at most (knip.kernels.rice_run)
            self.lim = most + 8
            self.buf = bytearray(most + 16)
        else:
            # the worst case (every sample an escape, 44 bits): 12 + channels * (5 + 6 * BLOCK) bytes
            self.lim = NO_LIMIT
            self.buf = bytearray(HDR_SIZE + (2 if self.two else 1) * (5 + 6 * BLOCK))
        self.n = 0
        self.first = 0      # session sample index of xs[0]
        self.t0 = 0         # ... and its time (ms ticks); none per sample: a
        # record's samples are read at its first one's time + the period
        # (docs/PROTOCOL.md 6.5), so a record halved out of it is timed so too
        self.cp = array("i", bytes(8))      # copy_run's source run

    def add(self, index, t, x, a):
        """Keep one sample; True when the block is full."""
        n = self.n
        if n == 0:
            self.first = index
            self.t0 = t
        self.as_[n] = a
        self.xs[n] = x
        self.n = n + 1
        return self.n >= BLOCK

    def room(self):
        return BLOCK - self.n

    def add_run(self, index, ring, i, m):
        """Keep m samples from slot i of a ring's int32 arrays ring.t, .x
        and .a (m <= room()); index: the session's index of the first. True
        when the block is full."""
        # It runs per sample while she records, as bytecode: at most 11
        # words of arguments, locals and stack, or MicroPython takes the
        # frame from the heap on every call (tests/mp/app_transient.py).
        n = self.n
        if n == 0:
            self.first = index
            self.t0 = ring.t[i]
        self.cp[0] = i
        self.cp[1] = m
        copy_run(self.as_, n, ring.a, self.cp)
        copy_run(self.xs, n, ring.x, self.cp)
        self.n = n + m
        return self.n >= BLOCK

    def pack(self, i0, n):
        """Encode samples i0..i0+n-1; return the payload length in .buf, or,
        with `most` given, more than it when they do not fit (the code is
        then cut short). A record from within the block (one too big,
        halved) is timed where a reader puts its first sample: the block's
        start + i0 periods, rounded half to even as the host's numpy does."""
        b = self.buf
        xs = self.xs
        kx = rice_k(xs, i0, n, xs[i0])
        ka = rice_k(self.as_, i0, n, self.as_[i0]) if self.two else 0
        rate = self.rate
        dt = i0 * 1000 // rate
        half = 2 * (i0 * 1000 - dt * rate)
        if half > rate or (half == rate and dt & 1):
            dt += 1
        struct.pack_into(_HDR, b, 0, self.first + i0, self.t0 + dt, n, 2 if self.two else 1, kx | (ka << 4))
        lim = self.lim
        pos = put_varint(b, HDR_SIZE, xs[i0])
        pos = rice_pack(xs, i0, n, xs[i0], kx, b, pos, lim)
        if self.two and pos <= lim:
            pos = put_varint(b, pos, self.as_[i0])
            pos = rice_pack(self.as_, i0, n, self.as_[i0], ka, b, pos, lim)
        return pos


def unpack_block(p):
    """A REC_SAMPLES payload -> (first sample index, its t_ms, [values per channel])."""
    end = len(p)
    if end < HDR_SIZE:
        raise ValueError("a sample record of %d bytes (the header alone is %d)" % (end, HDR_SIZE))
    first, t_first, n, ch, kb = struct.unpack_from(_HDR, p, 0)
    if not 1 <= ch <= 2:
        raise ValueError("a sample record at sample %d says %d channels" % (first, ch))
    pos = HDR_SIZE
    chans = []
    for c in range(ch):
        start, pos = get_varint(p, pos, end)
        dst = [0] * n
        got, pos = rice_unpack(p, pos, end, start, (kb >> (4 * c)) & 0xF, dst, 0, n)
        if got != n:
            raise ValueError("the sample record at sample %d decodes to %d of %d samples" % (first, got, n))
        chans.append(dst)
    return first, t_first, chans
