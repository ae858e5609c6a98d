# The block path of the 1 kHz EMG chain (knip.kernels, EmgChain.feed,
# Coach.samples, SampleBlock.add_run, LiveEncoder.take) against one sample
# at a time: the same integers, the same events at the same samples, on
# CPython and on MicroPython (where the kernels are viper machine code).
import math
from array import array

from knip import kernels as K
from knip.chain import EmgChain, PressureChain
from knip.coach import Coach
from knip.filters import design_highpass, design_lowpass, design_notch
from knip.samples import SampleBlock, LiveEncoder, BLOCK
from signals import Lcg, emg_track, collect


def _emg(seed=3, n=24000, artefacts=True):
    """Raw EMG counts at 1 kHz around an offset: 5 s of rest, then bursts
    (held and quick) every 4 s; with artefacts, an electrode pop, a stretch
    at the rail, a stuck stretch and a time gap. int32 arrays t, x, a."""
    g = Lcg(seed)
    ts = array("i", bytes(4 * n))
    xs = array("i", bytes(4 * n))
    ab = array("i", bytes(4 * n))
    t = 0
    for i in range(n):
        ph = (i - 5000) % 4000 if i >= 5000 else -1
        amp = 300 if 500 <= ph < 2500 else (150 if 3000 <= ph < 3300 else 8)
        x = 2048 + int(2 * amp * g.uniform())
        if artefacts:
            if i == 13800:
                x += 5000                     # a pop
            if 16200 <= i < 16260:
                x = 20000                     # at the rail
            if 17600 <= i < 18900:
                x = 2050                      # stuck
            if i == 20200:
                t += 400                      # samples lost
        ts[i] = t
        xs[i] = x
        ab[i] = -300 + int(2 * (60 if 600 <= ph < 900 else 6) * g.uniform())
        t += 1
    return ts, xs, ab


def _one_by_one(chain, ts, xs, ab):
    collect()
    out = []
    for i in range(len(xs)):
        fl = chain.push(ts[i], xs[i], ab[i])
        if fl:
            out.append((i, fl, list(chain.det.cur), list(chain.det.done)))
    return out, chain.level, chain.alevel


def _in_runs(chain, ts, xs, ab, wake):
    collect()
    out = []
    i = 0
    n = len(xs)
    while i < n:
        end = i + wake if i + wake < n else n
        while i < end:
            m = chain.feed(ts, xs, ab, i, end - i)
            assert 1 <= m <= end - i
            i += m
            if chain.flags:
                out.append((i - 1, chain.flags, list(chain.det.cur), list(chain.det.done)))
    return out, chain.level, chain.alevel


def _reference(bq, xs):
    """The biquad recurrence written out (the test's own oracle)."""
    b0, b1, b2, a1, a2 = bq.coefficients()
    x1 = x2 = y1 = y2 = e = 0
    out = []
    for x in xs:
        x = max(-16383, min(16383, x))
        acc = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2 + e
        y = acc >> 12
        e = acc - (y << 12)
        y = max(-16383, min(16383, y))
        x2, x1, y2, y1 = x1, x, y1, y
        out.append(y)
    return out


def test_biquad_is_the_recurrence():
    g = Lcg(5)
    xs = [int(60000 * g.uniform()) for _ in range(700)]       # beyond the clamp too
    for bq in (design_highpass(1000, 40, 0.5412), design_lowpass(100, 5), design_notch(1000, 50)):
        bq.reset(0)
        assert [bq.step(x) for x in xs] == _reference(bq, xs)


def test_a_chain_of_sections_in_runs_is_the_sections_one_after_another():
    g = Lcg(6)
    n = 500
    xs = array("i", [int(3000 * g.uniform()) for _ in range(n)])
    ab = array("i", [int(900 * g.uniform()) for _ in range(n)])
    secs = (design_highpass(1000, 40, 0.5412), design_highpass(1000, 40, 1.3066), design_notch(1000, 50),
            design_highpass(1000, 40, 0.5412))                 # 3 on x, 1 on a
    k = K.new_chain([bq.coefficients() for bq in secs], 3, 7)
    assert k[K.CH_NA] == 1 and k[K.CH_CAP] == 7
    ys = xs
    for bq in secs[:3]:
        bq.reset(0)
        ys = _reference(bq, ys)
    ya = _reference(secs[3], ab)
    sq = lambda v: min(abs(v), 4095) ** 2
    i = 0
    while i < n:
        m = 7 if i + 7 <= n else n - i
        k[K.CH_FROM] = i
        k[K.CH_N] = m
        assert K.chain_run(k, xs, xs, ab) == m
        assert k[K.CH_SQX] == sum(sq(v) for v in ys[i:i + m])
        assert k[K.CH_SQA] == sum(sq(v) for v in ya[i:i + m])
        i += m
    assert list(xs[:3]) != ys[:3]                              # CH_OUT 0: the input is left alone


def test_emg_runs_give_the_events_of_one_sample_at_a_time():
    for two in (False, True):
        ts, xs, ab = _emg()
        ref = _one_by_one(EmgChain(1000, two_channel=two), ts, xs, ab)
        assert len(ref[0]) >= 6, ref[0]          # squeezes and artefacts happened
        for wake in (10, 7, 13, 64):
            got = _in_runs(EmgChain(1000, two_channel=two), ts, xs, ab, wake)
            assert got == ref, (two, wake)


def test_emg_runs_with_mains_hum_give_the_events_of_one_sample_at_a_time():
    # the hum is found at the same sample on both paths (the detector's
    # warm-up restarts there), and an electrode pop after it keeps it off
    bursts = [(8.0, 0.1, 2.0, 0.1, 40), (14.0, 0.15, 1.0, 0.1, 25), (19.0, 0.1, 3.0, 0.2, 30)]
    t, x = emg_track(1000, 24, bursts, hum=(60.0, 50))
    for i in range(400):
        x[11500 + i] += int(3000 * math.exp(-i / 80.0))
    ts, xs, ab = array("i", t), array("i", x), array("i", [5 * (i % 7) for i in range(len(x))])
    for two in (False, True):
        ref = _one_by_one(EmgChain(1000, two_channel=two), ts, xs, ab)
        assert len(ref[0]) >= 4, ref[0]
        for wake in (10, 7, 30):
            got = _in_runs(EmgChain(1000, two_channel=two), ts, xs, ab, wake)
            assert got == ref, (two, wake)


def test_emg_runs_with_a_notch_and_second_order():
    ts, xs, ab = _emg(seed=11, n=14000)
    for kw in ({"notch_hz": 50}, {"hp_order": 2, "highpass_hz": 20}):
        ref = _one_by_one(EmgChain(1000, two_channel=True, **kw), ts, xs, ab)
        got = _in_runs(EmgChain(1000, two_channel=True, **kw), ts, xs, ab, 10)
        assert got == ref and ref[0], kw


def test_pressure_feed_is_push():
    ts = array("i", [10 * i for i in range(3000)])
    xs = array("i", [200 + (600 if 800 <= i % 1500 < 1100 else 0) for i in range(3000)])
    ab = array("i", [100] * 3000)
    ref = _one_by_one(PressureChain(100), ts, xs, ab)
    got = _in_runs(PressureChain(100), ts, xs, ab, 10)
    assert got == ref and ref[0]


def _coach_state(c):
    return (c.s1, c.s2, c.k, c.n, c.f1, c.f2, c.run, c.run_best)


def test_coach_samples_is_sample_n_times():
    a = Coach(1, 0, 20)
    b = Coach(1, 0, 20)
    for c in (a, b):
        c.window_start(1000, 0, 0, 1, 1, 5000, 40)      # sums once settled (w_from)
        c.sq_on = True
        c.sq_thr = 60
    ts = array("i", range(1000, 4000))
    g = Lcg(2)
    i = 0
    while i < len(ts):
        n = 1 + int(20 * (g.uniform() + 0.5))
        if i + n > len(ts):
            n = len(ts) - i
        level = 40 + int(60 * g.uniform()) * 30       # runs above and below the threshold
        for j in range(n):
            a.sample(ts[i + j], level)
        b.samples(ts, i, n, level)
        assert _coach_state(a) == _coach_state(b), i
        i += n
    assert 1000 < a.w_from < 4000 and a.n + a.k == 4000 - a.w_from and a.run_best > 0   # every sample from w_from on
    c = Coach(1, 0, 20)                 # sample_run: all but the last at one level, the last at another
    c.window_start(1000, 0, 0, 1, 1, 5000, 40)
    c.sq_on = True
    c.sq_thr = 60
    i = 0
    while i < 3000:
        c.sample_run(ts, i, 10, 70, 90)
        i += 10
    ref = Coach(1, 0, 20)
    ref.window_start(1000, 0, 0, 1, 1, 5000, 40)
    ref.sq_on = True
    ref.sq_thr = 60
    for j in range(3000):
        ref.sample(ts[j], 70 if j % 10 < 9 else 90)
    assert _coach_state(c) == _coach_state(ref) and ref.k + ref.n > 0


class _Ring:
    # what SampleBlock.add_run reads from the sample ring
    def __init__(self, t, x, a):
        self.t = t
        self.x = x
        self.a = a


def test_block_and_live_runs_hold_what_add_holds():
    ts, xs, ab = _emg(n=1000, artefacts=False)
    for ch in (1, 2):
        b1, b2 = SampleBlock(ch, 1000), SampleBlock(ch, 1000)
        for i in range(BLOCK):
            b1.add(7 + i, ts[i], xs[i], ab[i])
        i = 0
        while i < BLOCK:
            q = 9 if i + 9 <= BLOCK else BLOCK - i
            assert q <= b2.room()
            full = b2.add_run(7 + i, _Ring(ts, xs, ab), i, q)
            i += q
            assert full == (i == BLOCK)
        assert b1.first == b2.first == 7
        n1 = b1.pack(0, BLOCK)
        n2 = b2.pack(0, BLOCK)
        assert b1.buf[:n1] == b2.buf[:n2]
        l1, l2 = LiveEncoder(ch), LiveEncoder(ch)
        l1.start(25)
        l2.start(25)
        f1, f2 = [], []
        for i in range(300):
            if l1.add(xs[i], ab[i]):
                f1.append(bytes(l1.frame(i & 0xFF)))
        i = 0
        while i < 300:
            i += l2.take(xs, ab, i, 300 - i if 300 - i < 11 else 11)
            if l2.n >= l2.batch:
                f2.append(bytes(l2.frame((i - 1) & 0xFF)))
        assert f1 == f2 and len(f1) == 12


def test_the_block_path_allocates_nothing():
    import gc
    if not hasattr(gc, "mem_alloc"):
        return                          # CPython: the heap is MicroPython's question
    ts, xs, ab = _emg(n=10000, artefacts=False)
    ch = EmgChain(1000, two_channel=True)
    blk = SampleBlock(2, 1000)
    ring = _Ring(ts, xs, ab)
    live = LiveEncoder(2)
    live.start(90)
    for rnd in range(2):                # the first round warms up
        gc.collect()
        gc.disable()
        m0 = gc.mem_alloc()
        i = 0
        while i < 2000:
            j = 6000 + 2000 * rnd + i         # a burst and rest after it
            m = ch.feed(ts, xs, ab, j, 10 - i % 10)
            q = m if m <= blk.room() else blk.room()
            if blk.add_run(0, ring, j, q):
                blk.n = 0
            live.take(xs, ab, j, m if m <= live.batch - live.n else live.batch - live.n)
            if live.n >= live.batch:
                live.n = 0
            i += m
        used = gc.mem_alloc() - m0
        gc.enable()
    assert used == 0, used
