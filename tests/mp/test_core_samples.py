# Portable round-trip tests of the sample codec (knip.samples): what the
# device encodes for the live stream and the session file, the host decodes
# back exactly, on CPython and on MicroPython. Damaged payloads raise
# ValueError, never IndexError or a wrong answer.
from array import array

from knip import protocol as P
from knip.samples import LiveEncoder, LiveDecoder, SampleBlock, unpack_block, BLOCK
from knip.packing import rice_pack, unzigzag
from knip.store import MAX_PAYLOAD
from signals import Lcg


def _signal(seed, n, spikes=False):
    g = Lcg(seed)
    xs = []
    v = 1000
    for i in range(n):
        v += int(g.uniform() * 40)
        if spikes and i % 37 == 5:
            v += 2000000 if i % 2 else -3000000      # escapes in the Rice code
        xs.append(v)
    return xs


def _payload(frame):
    r = P.FrameReader()
    st, _ = r.feed(frame, 0, len(frame))
    assert st == P.R_FRAME
    return r.mtype, r.seq, bytes(r.payload)


def _live_round_trip(channels, spikes):
    xs = _signal(1, 1000, spikes)
    as_ = _signal(2, 1000, spikes)
    enc = LiveEncoder(channels)
    enc.start(25)
    dec = LiveDecoder(channels)
    got = [[] for _ in range(channels)]
    seq = 0
    keys = 0
    for i in range(len(xs)):
        if enc.add(xs[i], as_[i]):
            mtype, s, p = _payload(enc.frame(seq))
            keys += mtype == P.SAMPLES_KEY
            dec.note_seq(s)
            out = dec.decode(mtype, p)
            for c in range(channels):
                got[c].extend(out[c])
            seq = (seq + 1) & 0xFF
    assert got[0] == xs
    if channels > 1:
        assert got[1] == as_
    assert keys == 4             # 40 frames, a key frame every 10
    assert dec.samples == 1000 and dec.lost_frames == 0


def test_live_frames_round_trip_one_and_two_channels():
    _live_round_trip(1, False)
    _live_round_trip(2, False)


def test_live_frames_round_trip_with_escapes():
    _live_round_trip(1, True)
    _live_round_trip(2, True)


def test_live_decoder_waits_for_a_key_frame_after_a_lost_frame():
    xs = _signal(3, 300)
    enc = LiveEncoder(1)
    enc.start(10)
    frames = []
    for i, x in enumerate(xs):
        if enc.add(x, 0):
            frames.append(_payload(enc.frame(i // 10)))
    dec = LiveDecoder(1)
    values = []
    for j, (mtype, seq, p) in enumerate(frames):
        if j == 3:
            continue                      # lost on the way
        dec.note_seq(seq)
        out = dec.decode(mtype, p)
        if 3 < j < 10:
            assert out is None, j         # differences need the lost frame
        else:
            values.extend(out[0])
    assert dec.lost_frames == 1
    assert values == xs[:30] + xs[100:]


def test_live_decoder_refuses_damaged_payloads():
    dec = LiveDecoder(2)
    for p in (b"", b"\x05", b"\x00\x00", b"\x0a\x22\x02"):
        try:
            dec.decode(P.SAMPLES_KEY, p)
        except ValueError:
            continue
        raise AssertionError("decoded %r" % p)


def test_session_blocks_round_trip():
    for channels in (1, 2):
        xs = _signal(4, 2 * BLOCK + 30, True)
        as_ = _signal(5, 2 * BLOCK + 30)
        blk = SampleBlock(channels, 100)
        got = [[] for _ in range(channels)]
        firsts = []

        def drain():
            n = blk.pack(0, blk.n)
            first, t0, chans = unpack_block(blk.buf[:n])
            firsts.append((first, t0))
            for c in range(channels):
                got[c].extend(chans[c])
            blk.n = 0
        for i in range(len(xs)):
            if blk.add(i, 10 * i, xs[i], as_[i]):
                drain()
        drain()
        assert got[0] == xs
        if channels > 1:
            assert got[1] == as_
        assert firsts == [(0, 0), (BLOCK, 10 * BLOCK), (2 * BLOCK, 20 * BLOCK)]


def test_a_record_halved_from_a_block_is_timed_where_a_reader_puts_it():
    # Recorder.write_block halves a record over MAX_PAYLOAD; the later part
    # carries the time a reader gives its first sample (the record's time +
    # round(j * 1000 / rate), host/knip_host/sessionfile.py): the block
    # keeps no time per sample
    # (30 Hz, sample 2: 66.7 ms, rounded up; 80 Hz, sample 1: 12.5 ms, a tie
    # numpy rounds to even)
    for rate, i0, dt in ((100, 100, 1000), (30, 1, 33), (30, 2, 67), (30, 3, 100), (80, 1, 12),
                         (80, 3, 38), (1000, 57, 57)):
        blk = SampleBlock(1, rate)
        for i in range(BLOCK):
            blk.add(5 + i, 7000 if i == 0 else 0, i, 0)     # (only the first sample's time is kept)
        n = blk.pack(i0, BLOCK - i0)
        first, t0, chans = unpack_block(blk.buf[:n])
        assert (first, t0, chans[0]) == (5 + i0, 7000 + dt, list(range(i0, BLOCK))), (rate, i0, t0)


def test_the_coder_stops_past_its_limit_and_writes_at_most_7_bytes_beyond():
    # A record's buffer holds MAX_PAYLOAD + 16 bytes, not the worst case of
    # 200 samples (2.4 KB for two channels): the coder stops once past its
    # limit. The most it writes beyond: a short sample leaves bits pending,
    # then an escape (6 bytes) starts at the limit and is the last sample
    # (the padding: one more). Every k, every short quotient, starts around
    # the limit: nothing at lim + 7 or after, and lim + 6 is reached.
    lim = 40
    top = 0
    for k in range(16):
        for q in range(16):
            d = unzigzag(q << k)                # the short sample
            for lead in range(3):
                src = array("i", [0] * lead + [d, d + (1 << 26)])
                for pos in range(lim - 12, lim + 2):
                    out = bytearray(b"\xaa" * (lim + 16))
                    end = rice_pack(src, 0, len(src), 0, k, out, pos, lim)
                    assert end <= lim + 7 and out[lim + 7:] == b"\xaa" * 9, (k, q, lead, pos, end)
                    top = end if end > top else top
    assert top == lim + 7
    # a difference of 2^30 or more (u wraps negative on 32 bits) is clamped
    # as an escape, not run away with
    out = bytearray(b"\xaa" * (lim + 16))
    src = array("i", [0, 0x40000000, -0x7FF7FFFD])
    assert rice_pack(src, 0, 3, 0, 0, out, 0, lim) <= 20 and out[20:] == b"\xaa" * (lim - 4)
    rnd = Lcg(5)
    blk = SampleBlock(2, 1000, MAX_PAYLOAD)
    assert blk.lim >= MAX_PAYLOAD and len(blk.buf) >= blk.lim + 7
    for i in range(BLOCK):
        blk.add(i, 0, int(rnd.uniform() * (1 << 26)), int(rnd.uniform() * (1 << 26)))
    assert blk.pack(0, BLOCK) > MAX_PAYLOAD
    n = blk.pack(0, 50)
    assert n <= MAX_PAYLOAD and unpack_block(blk.buf[:n])[2][0] == list(blk.xs[:50])


def test_session_block_refuses_damaged_payloads():
    blk = SampleBlock(2, 1000)
    for i in range(50):
        blk.add(i, i, i * 3, -i)
    n = blk.pack(0, 50)
    good = bytes(blk.buf[:n])
    for bad in (good[:5], good[:12], good[:n // 2], good[:10] + b"\x07" + good[11:]):
        try:
            unpack_block(bad)
        except ValueError:
            continue
        raise AssertionError("decoded %d damaged bytes" % len(bad))
