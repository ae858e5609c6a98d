# Portable tests of the protocol codec and the sample packing (CPython and
# MicroPython run the same bodies).
from array import array
from knip import protocol as P
from knip.packing import rice_k, rice_pack, rice_unpack, put_varint, get_varint
from signals import Lcg


def _frames(wire):
    """Feed wire bytes through a reader; return the list of (status, type, seq, payload)."""
    r = P.FrameReader()
    out = []
    pos = 0
    while pos < len(wire):
        st, pos = r.feed(wire, pos, len(wire))
        if st != P.R_NONE:
            out.append((st, r.mtype, r.seq, bytes(r.payload) if st == P.R_FRAME else b""))
    return out


def test_cobs_round_trip_all_lengths_and_zero_runs():
    g = Lcg(3)
    src = bytearray(700)
    dst = bytearray(720)
    for n in (0, 1, 2, 253, 254, 255, 256, 508, 700):
        for zeros in (0, 1, 3):   # none, some, many zero bytes
            for i in range(n):
                v = int(g.uniform() * 256) & 0xFF
                src[i] = 0 if zeros and (i % (4 - zeros) == 0) else (v or 1)
            m = P.cobs_encode(src, n, dst)
            assert dst[m - 1] == 0
            for i in range(m - 1):
                assert dst[i] != 0
            k = P.cobs_decode(dst, m - 1)
            assert k == n
            assert bytes(dst[:n]) == bytes(src[:n])


def test_frame_round_trip_and_crc_rejection():
    w = P.FrameWriter()
    wire = bytes(w.message(P.PING, 7, b"\x00hello\x00\x00"))
    got = _frames(wire)
    assert got == [(P.R_FRAME, P.PING, 7, b"\x00hello\x00\x00")]
    bad = bytearray(wire)
    bad[wire.find(b"hello") + 1] ^= 0x10     # one flipped bit inside the payload
    assert _frames(bytes(bad))[0][0] == P.R_BAD_CRC


def test_reader_resynchronises_after_garbage():
    w = P.FrameWriter()
    a = bytes(w.message(P.GET_INFO, 1))
    b = bytes(w.message(P.LIST, 2))
    junk = b"\x13\x37garbage\x00\xff\x00"
    got = _frames(junk + a + b"\x05\x06" + b + b"\x00" * 3)
    kinds = [g[0] for g in got]
    assert kinds.count(P.R_FRAME) == 1     # b is glued to the junk before it
    assert got[-1][0] in (P.R_BAD_CRC, P.R_BAD_FRAME)
    got = _frames(junk + a + b"\x00" + b)
    frames = [g for g in got if g[0] == P.R_FRAME]
    assert [(f[1], f[2]) for f in frames] == [(P.GET_INFO, 1), (P.LIST, 2)]
    assert len(got) == 4                   # two bad frames, then both good ones


def test_oversized_frame_is_dropped_then_next_frame_reads():
    w = P.FrameWriter()
    good = bytes(w.message(P.PING, 9, b"ok"))
    flood = b"\x01" * (P.MAX_WIRE + 300) + b"\x00"
    got = _frames(flood + good)
    assert got[0][0] == P.R_BAD_FRAME
    assert got[1] == (P.R_FRAME, P.PING, 9, b"ok")


def _payload(n, zeros):
    # n bytes, every 7th one 0x00 if zeros (COBS then needs no extra codes)
    b = bytearray(n)
    for i in range(n):
        b[i] = i % 7 if zeros else 0x41
    return bytes(b)


def test_body_longer_than_max_body_is_a_bad_frame_and_the_reader_resynchronises():
    # A body of MAX_BODY + 1 bytes without 0x00 is one COBS byte too long for
    # the reader's buffer; with 0x00 bytes in it, even a longer body encodes
    # short enough to fit. Either way it is a bad frame (the device answers
    # E_FRAME), and the frame after it reads normally.
    big = P.FrameWriter(P.MAX_PAYLOAD + 8)
    w = P.FrameWriter()
    good = bytes(w.message(P.PING, 9, b"ok"))
    for extra in (1, 4):
        for zeros in (False, True):
            wire = bytes(big.message(P.PING, 5, _payload(P.MAX_PAYLOAD + extra, zeros)))
            assert (len(wire) <= P.MAX_WIRE) == zeros    # both of the reader's checks are used
            got = _frames(wire + good)
            assert got == [(P.R_BAD_FRAME, got[0][1], got[0][2], b""), (P.R_FRAME, P.PING, 9, b"ok")], got
    # the largest frame still reads, with and without 0x00 bytes
    for zeros in (False, True):
        data = _payload(P.MAX_PAYLOAD, zeros)
        wire = bytes(w.message(P.PING, 6, data))
        assert len(wire) <= P.MAX_WIRE
        assert _frames(wire) == [(P.R_FRAME, P.PING, 6, data)]


def _rice_round_trip(xs, prev):
    n = len(xs)
    src = array("i", xs)
    k = rice_k(src, 0, n, prev)
    out = bytearray(8 * n + 8)
    end = rice_pack(src, 0, n, prev, k, out, 0)
    dst = array("i", bytes(4 * n))
    got, pos = rice_unpack(out, 0, end, prev, k, dst, 0, n)
    assert got == n and pos == end
    assert list(dst) == xs
    return end


def test_rice_round_trip_quiet_busy_and_spikes():
    g = Lcg(11)
    quiet = [300 + int(4 * g.uniform()) for _ in range(200)]
    busy = [int(800 * g.uniform()) - 400 for _ in range(200)]
    spikes = [0, 30000, -30000, 5, 16383, -16383, 0, 1 << 25, -(1 << 25), 7]   # 24-bit ADC range
    assert _rice_round_trip(quiet, 300) < 200 * 3 // 8 + 2    # about 2-3 bits per quiet sample
    _rice_round_trip(busy, 0)
    _rice_round_trip(spikes, 0)
    _rice_round_trip([7], 7)


def test_varints_and_event_and_cue_payloads():
    buf = bytearray(200)
    for v in (0, 1, -1, 63, -64, 64, 1 << 20, -(1 << 29)):
        end = put_varint(buf, 0, v)
        assert get_varint(buf, 0, end) == (v, end)
    rec = array("i", [3, 0, 1000, 1200, -1, 5, 7, -9])
    end = P.pack_event(buf, 0, 9, 123456, rec)
    flags, t, back = P.unpack_event(buf, 0, end)
    assert (flags, t, back) == (9, 123456, list(rec))
    end = P.pack_cue(buf, 0, 5000, 1, 2, 3, 10, 1000, 80)
    assert P.unpack_cue(buf, 0, end) == (5000, 1, 2, 3, 10, 1000, 80)
