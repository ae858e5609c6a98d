# Device <-> host byte protocol (docs/PROTOCOL.md): COBS-framed messages,
# each body = type u8 | seq u8 | payload | crc32 u32 LE, ended by a 0x00.
# Transport independent: the same frames go over USB serial and BLE.
# Used by the firmware and imported by the host; buffers are allocated once.
import binascii
import struct
from knip.fixed import const
from knip.packing import put_varint, get_varint
from knip.kernels import cobs_run

VERSION = const(1)
MAX_PAYLOAD = const(1024)
_OVERHEAD = const(6)                     # type, seq, crc32
MAX_BODY = const(1030)                   # MAX_PAYLOAD + _OVERHEAD
MAX_WIRE = const(1036)                   # COBS: MAX_BODY + MAX_BODY // 254 + 1, then 0x00

# host -> device
HELLO = const(0x01)        # u8 version            -> INFO or ERROR(E_VERSION)
GET_INFO = const(0x02)     #                       -> INFO
SET_CLOCK = const(0x03)    # u64 Unix milliseconds -> OK
LIVE = const(0x04)         # u8 on, u16 batch_ms   -> OK
LIST = const(0x05)         # [u32 first id]        -> SESSIONS (at most 16, ids >= first)
FETCH = const(0x06)        # u32 id, u32 offset, u32 length -> DATA..., DONE
ACK = const(0x07)          # u32 id, u32 size, u32 crc32    -> OK (deleted) or ERROR
START = const(0x08)        # utf-8 program name    -> OK
STOP = const(0x09)         #                       -> OK
REPL = const(0x0A)         #                       -> OK, then the REPL has the port
PING = const(0x0B)         # any bytes             -> PONG (same bytes)
CANCEL = const(0x0C)       # stop a running FETCH  -> OK
SET = const(0x0D)          # JSON settings         -> OK
PAIN = const(0x0E)         # u8 when (0 before, 1 after), u8 score 0-10 -> OK
PROGRAM = const(0x0F)      # JSON program, or {"remove": name} -> OK + utf-8 name

# device -> host, replies (seq = the request's seq)
OK = const(0x40)           # u8 request type
INFO = const(0x41)         # JSON object
SESSIONS = const(0x42)     # JSON list
DATA = const(0x43)         # u32 id, u32 offset, bytes
DONE = const(0x44)         # u32 id, u32 end offset, u32 file size, u32 file crc32
ERROR = const(0x45)        # u8 code, u8 request type, utf-8 message
PONG = const(0x46)

# device -> host, unsolicited (seq = the device's own stream counter)
SAMPLES = const(0x50)      # u8 count, u8 k (low nibble ch0, high ch1), Rice deltas per channel
SAMPLES_KEY = const(0x51)  # as SAMPLES, plus a varint absolute start value per channel first
EVENT = const(0x52)        # same payload as a session file event record
CUE = const(0x53)          # same payload as a session file cue record
NOTICE = const(0x54)       # u8 code, utf-8 text (session started/ended, storage full, gap)
VERDICT = const(0x55)      # same payload as a session file verdict record

# error codes
E_CRC = const(1)           # the frame's CRC does not match
E_FRAME = const(2)         # not a frame: too short, too long or bad COBS
E_UNKNOWN = const(3)       # unknown message type
E_VERSION = const(4)       # the host speaks another protocol version
E_ARG = const(5)           # payload malformed or out of range
E_NOT_FOUND = const(6)     # no such session or program
E_BUSY = const(7)          # not now (session running, fetch running)
E_FULL = const(8)          # storage full
E_MISMATCH = const(9)      # ACK size/crc differ from the stored file
E_INTERNAL = const(10)     # a bug: the message says where

# notice codes
N_SESSION_STARTED = const(1)
N_SESSION_ENDED = const(2)
N_STORAGE_FULL = const(3)
N_GAP = const(4)
N_STORAGE_LOW = const(5)
N_PROGRAM_DONE = const(6)
N_NO_CALIBRATION = const(7)
N_CALIBRATED = const(8)     # text: "<mvc counts> <rest level counts>"
N_PAIN = const(9)           # text: "before 3" / "after 4" / "before skipped"

ERROR_NAMES = {E_CRC: "crc", E_FRAME: "frame", E_UNKNOWN: "unknown message", E_VERSION: "version",
               E_ARG: "bad argument", E_NOT_FOUND: "not found", E_BUSY: "busy", E_FULL: "storage full",
               E_MISMATCH: "mismatch", E_INTERNAL: "internal"}

# reader statuses
R_NONE = const(0)          # need more bytes
R_FRAME = const(1)         # a good frame: .mtype, .seq, .payload (memoryview), .plen
R_BAD_CRC = const(2)
R_BAD_FRAME = const(3)

_crc = binascii.crc32


def cobs_encode(src, n, dst):
    """COBS-encode src[:n] into dst; append the 0x00 delimiter; return length
    (knip.kernels.cobs_run: machine code on the device)."""
    return cobs_run(src, n, dst)


def cobs_decode(buf, n):
    """Decode buf[:n] (no delimiter) in place; return the body length or -1."""
    i = 0
    o = 0
    while i < n:
        code = buf[i]
        if code == 0:
            return -1
        i += 1
        end = i + code - 1
        if end > n:
            return -1
        while i < end:
            buf[o] = buf[i]
            o += 1
            i += 1
        if code != 0xFF and i < n:
            buf[o] = 0
            o += 1
    return o


class FrameWriter:
    """Builds frames in one preallocated buffer: write the payload into
    .payload, then frame(mtype, seq, n) returns a memoryview of the wire bytes
    (valid until the next call). One per task that sends.

    The body sits `lead` bytes into the buffer and is COBS-encoded in place
    towards its start: the encoder writes output byte o only after it has
    read input byte i with o <= lead + i (the output runs ahead of the input
    by one code byte plus one per 254 bytes, at most lead), so no second
    buffer is needed. The payload's bytes are gone once framed."""

    def __init__(self, max_payload=MAX_PAYLOAD):
        body = max_payload + _OVERHEAD
        lead = 2 + body // 254
        self.wire = bytearray(lead + body + 1)
        self._wmv = memoryview(self.wire)
        self._bmv = self._wmv[lead:lead + body]
        self.payload = self._bmv[2:2 + max_payload]
        self.max_payload = max_payload

    def frame(self, mtype, seq, n):
        b = self._bmv
        b[0] = mtype
        b[1] = seq & 0xFF
        end = 2 + n
        struct.pack_into("<I", b, end, _crc(b[:end]) & 0xFFFFFFFF)
        m = cobs_encode(b, end + 4, self.wire)
        return self._wmv[:m]

    def message(self, mtype, seq, data=b""):
        """Frame a payload given as bytes (control messages, not the hot path)."""
        n = len(data)
        if n > self.max_payload:
            raise ValueError("payload too long")
        self.payload[:n] = data
        return self.frame(mtype, seq, n)


class FrameReader:
    """Collects bytes up to each 0x00 and checks the frame. feed() one chunk
    at a time; it stops after each complete frame so the caller can act.
    A frame whose body decodes to more than max_body bytes is a bad frame,
    like one whose COBS text alone is longer than any body of max_body
    bytes can encode to (max_body + max_body // 254 + 1: the buffer)."""

    def __init__(self, max_body=MAX_BODY):
        self.max_body = max_body
        self.buf = bytearray(max_body + max_body // 254 + 1)
        self.mv = memoryview(self.buf)
        self.n = 0
        self.over = False
        self.mtype = 0
        self.seq = 0
        self.plen = 0
        self.payload = self.mv[2:2]
        self.bad = 0         # frames rejected so far
        self.skipped = 0     # bytes dropped while resynchronising

    def feed(self, data, pos, end):
        """Consume data[pos:end] up to and including the next delimiter.
        Return (status, next position)."""
        buf = self.buf
        cap = len(buf)
        n = self.n
        while pos < end:
            b = data[pos]
            pos += 1
            if b:
                if n < cap:
                    buf[n] = b
                    n += 1
                else:
                    self.over = True
                    self.skipped += 1
                continue
            # delimiter
            if self.over:
                self.over = False
                self.n = 0
                self.bad += 1
                return R_BAD_FRAME, pos
            if n == 0:
                continue       # idle delimiters between frames
            self.n = 0
            return self._check(n), pos
        self.n = n
        return R_NONE, pos

    def _check(self, n):
        m = cobs_decode(self.buf, n)
        if m < _OVERHEAD or m > self.max_body:
            # bad COBS, too short, or a body longer than any frame may be
            # (COBS text with 0x00 bytes in the body can be short enough to
            # fit the buffer and still decode to more than max_body)
            self.bad += 1
            return R_BAD_FRAME
        buf = self.buf
        self.mtype = buf[0]
        self.seq = buf[1]
        got = buf[m - 4] | (buf[m - 3] << 8) | (buf[m - 2] << 16) | (buf[m - 1] << 24)
        if (_crc(self.mv[:m - 4]) & 0xFFFFFFFF) != got:
            self.bad += 1
            return R_BAD_CRC
        self.plen = m - _OVERHEAD
        self.payload = self.mv[2:m - 4]
        return R_FRAME


# ---- record payloads shared by the live stream and the session file -------

def _put_fields(out, pos, rec):
    # u8 field count, then one zigzag varint per field
    n = len(rec)
    out[pos] = n
    pos += 1
    for i in range(n):
        pos = put_varint(out, pos, rec[i])
    return pos


def _get_fields(buf, pos, end):
    n = buf[pos]
    pos += 1
    rec = []
    for _ in range(n):
        v, pos = get_varint(buf, pos, end)
        rec.append(v)
    return rec


def pack_event(out, pos, flags, t_ms, rec):
    """Event: u8 flags, varint t_ms, u8 field count, varint fields."""
    out[pos] = flags & 0xFF
    return _put_fields(out, put_varint(out, pos + 1, t_ms), rec)


def unpack_event(buf, pos, end):
    if pos >= end:
        raise ValueError("empty event")
    flags = buf[pos]
    t, pos = get_varint(buf, pos + 1, end)
    if pos >= end:
        raise ValueError("truncated event")
    return flags, t, _get_fields(buf, pos, end)


_CUE_FMT = "<IBBBBIB"      # t_ms, cue, phase, rep, reps, dur_ms, target %MVC
CUE_SIZE = const(13)


def pack_cue(out, pos, t_ms, cue, phase, rep, reps, dur_ms, target):
    struct.pack_into(_CUE_FMT, out, pos, t_ms, cue, phase, rep, reps, dur_ms, target)
    return pos + CUE_SIZE


def unpack_cue(buf, pos, end):
    if end - pos < CUE_SIZE:
        raise ValueError("truncated cue")
    return struct.unpack_from(_CUE_FMT, buf, pos)


def pack_verdict(out, pos, v):
    """Verdict: u8 field count, zigzag varint fields (knip.coach V_*)."""
    return _put_fields(out, pos, v)


def unpack_verdict(buf, pos, end):
    if pos >= end:
        raise ValueError("empty verdict")
    return _get_fields(buf, pos, end)
