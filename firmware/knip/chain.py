# Signal chains: raw integer samples in, detector events out.
#   pressure: low-pass biquad -> SqueezeDetector
#   EMG:      high-pass biquad (+ optional notch) -> RMS envelope (decimated)
#             -> SqueezeDetector at the envelope rate
from array import array

from knip.fixed import const
from knip.filters import design_lowpass, design_highpass, design_notch, RmsEnvelope, X_MAX, start_section
from knip.detector import SqueezeDetector, DetectorConfig, ST_REST
from knip import kernels as K
from knip.kernels import (chain_run, CH_FROM, CH_N, CH_GUARD, CH_LAST_X, CH_LAST_T, CH_SAME, CH_SQX,
                          CH_SQA)
from knip.record import M_GAP, M_SATURATED, M_FLAT, M_SPIKE

_GAP_PERIODS = const(5)     # a time step this many periods long is a gap,
_GAP_MS = const(250)        # ... and at least this (a GC pause's few lost
                            # samples at 1 kHz are not worth cutting a squeeze)
_SETTLE_MS = const(250)     # after an artefact: filters settle before detecting
_FLAT_MS = const(1000)      # the very same value this long (and 8 samples): stuck
_RUN_MAX = const(64)        # EMG: most raw samples in one run of the block path
_HUM_MAX = const(64)        # EMG: most samples in a mains cycle (hum template)
_HUM_LOOKS = const(3)       # ... hum found at rest this many seconds in a row: taken off
_HUM_COPY_MS = const(100)   # ... its template copied this often, and after an
_HUM_CLEAN_MS = const(50)   # artefact restored from a copy this much older (a
                            # swing into the rail takes 20-40 ms; hum wanders)
_NO_COPY = const(-(1 << 30))  # ... no copy taken yet
_NO_BAD = const(-(1 << 30))   # InputGuard: no artefact (times may be negative: knip_host.limits, +-12 days)
_GLITCH_MIN = const(200)    # pressure: a lone glitch jumps at least this (10 cmH2O at 20 counts/cmH2O)


class InputGuard:
    """Watches the raw input for what no muscle makes: samples at the rail
    (saturation), jumps larger than `jump` counts in one sample (an electrode
    pop), the very same value for a second (a stuck sensor: a live one always
    has some noise), time gaps. While it lasts, and for settle_ms after, the
    detector is not fed; it then gets one artefact record for the whole
    stretch, and an open squeeze is ended where the trouble began
    (knip.detector cut)."""

    def __init__(self, det, period_ms, lo=-X_MAX, hi=X_MAX, jump=0):
        self.det = det
        self.period = period_ms
        self.lo = lo
        self.hi = hi
        self.jump = jump
        self.last_x = 0
        self.last_t = None
        self.same = 0           # samples equal to the one before
        self.flat_n = _FLAT_MS // period_ms if _FLAT_MS // period_ms > 8 else 8
        g = _GAP_PERIODS * period_ms + _GAP_PERIODS
        self.gap_ms = g if g > _GAP_MS else _GAP_MS
        self.bad_from = _NO_BAD  # start of the current artefact (_NO_BAD: none)
        self.bad_to = 0         # last bad sample
        self.marks = 0
        self.fresh = False      # the first good sample after bad ones: restart filters
        self.events = 0         # flags from cut() waiting for the next push

    def check(self, t, x, a):
        """True when the sample at t (main channel x, second a) may be used;
        records a bad one. Either channel at its rail is saturation."""
        lt = self.last_t
        bad = 0
        start = t
        if x == self.last_x and lt is not None:
            self.same += 1
            if self.same >= self.flat_n:
                bad = M_FLAT
                start = t - self.same * self.period
        else:
            self.same = 0
        if x >= self.hi or x <= self.lo or a >= X_MAX or a <= -X_MAX:
            bad = M_SATURATED
        elif self.jump and lt is not None and (x - self.last_x > self.jump or self.last_x - x > self.jump):
            bad = M_SPIKE
        if lt is not None and (t - lt > self.gap_ms or t <= lt):
            bad |= M_GAP
            start = lt if t > lt else t
        self.last_t = t
        self.last_x = x
        if bad:
            if self.bad_from == _NO_BAD:
                self.bad_from = start
                self.marks = 0
                self.events |= self.det.cut(start, bad)
            self.marks |= bad
            self.bad_to = t
            self.fresh = True
            return False
        return self.bad_from == _NO_BAD

    def skipped(self, chain, t, x, a):
        """The sample at t is not fed to the detector. While the input is
        bad, nothing else; once it is good again the chain's filters restart
        on it and run unseen until the artefact is reported (settled).
        Returns event flags."""
        ev = self.take()
        if self.bad_to < t:
            if self.fresh:
                self.fresh = False
                chain.started = False
            chain.condition(x, a)
            ev |= self.settled(t)
        return ev

    def settled(self, t):
        """After an artefact: once the filters had settle_ms of good input,
        report it and resume. Returns event flags for the artefact record."""
        if t - self.bad_to < _SETTLE_MS:
            return 0
        return self._report()

    def finish(self, t):
        """End of the recording: report an artefact still open (what it cut
        was already ended), or close what the detector has open."""
        if self.bad_from != _NO_BAD:
            return self._report()
        return self.det.finish(t)

    def _report(self):
        # the whole bad stretch as one artefact record; detection resumes
        ev = self.det.artefact(self.bad_from, self.bad_to, self.marks)
        self.bad_from = _NO_BAD
        return ev

    def take(self):
        ev = self.events
        self.events = 0
        return ev


def _period_ms(rate_hz):
    p = int(1000 / rate_hz + 0.5)
    return p if p > 0 else 1


class PressureChain:
    """Pressure counts (host scale: 20 counts per cmH2O) to squeeze events.

    min_rise: no rise smaller than this (counts; 40 = 2 cmH2O) starts a
    squeeze, so breathing and posture shifts are not counted.
    cough_rate: with one channel, a brief rise faster than this (counts/s;
    15000 = 750 cmH2O/s on the 5 Hz low-passed signal) is a cough: faster than
    any voluntary squeeze rises (docs/DETECTOR.md).
    glitch_rate: at 40 Hz or more, a raw sample that jumps from a quiet one
    before it (which moved under a quarter of that from its own) by more
    than this x the period (counts/s; 10000 = 500 cmH2O/s, and at least 200
    counts) is held back one sample; if the next is back within half that
    threshold of the one before it, it was a lone glitch (a cough lasts
    0.2-0.5 s, 8 samples and more there) and is fed as the mean of its
    neighbours (counted in .glitches, the first at .glitch_t), else as it
    was, a sample late (0: off). Scale all three with the counts per cmH2O
    when they differ from 20.
    """

    signal = "pressure"

    def __init__(self, rate_hz, cfg=None, lowpass_hz=5.0, noise_floor=4, two_channel=False, min_rise=40,
                 cough_rate=15000, glitch_rate=10000):
        self.rate_hz = rate_hz
        self.two = two_channel
        self.lp = None
        self.lpa = None
        delay = 0
        if rate_hz >= 4 * lowpass_hz:
            self.lp = design_lowpass(rate_hz, lowpass_hz)
            self.lpa = design_lowpass(rate_hz, lowpass_hz) if two_channel else None
            # Group delay of a 2nd-order Butterworth well below fc: sqrt(2)/(2 pi fc).
            delay = int(225 / lowpass_hz + 0.5)
        self.delay_ms = delay
        if cfg is None:
            cfg = DetectorConfig("pressure")
            cfg.cough_rate = cough_rate
        self.det = SqueezeDetector(_period_ms(rate_hz), cfg, noise_floor, delay, two_channel, min_rise)
        self.guard = InputGuard(self.det, _period_ms(rate_hz))
        j = glitch_rate * _period_ms(rate_hz) // 1000
        self.jump = (j if j > _GLITCH_MIN else _GLITCH_MIN) if rate_hz >= 40 and glitch_rate else 0
        self.held = False      # a sample held back (it jumped): t, x, a
        self.ht = self.hx = self.ha = self.px = self.ppx = 0   # ... and the last two fed
        self.glitches = self.glitch_t = 0
        self.level = 0     # last conditioned value (for live displays)
        self.alevel = 0    # same for the abdominal channel
        self.started = False
        self.flags = 0         # event flags of the last feed()

    def push(self, t_ms, x, a=0):
        g = self.guard
        if not g.check(t_ms, x, a):
            self.held = False   # (at the edge of bad input: it goes with it)
            self.px = self.ppx = x
            return g.skipped(self, t_ms, x, a)
        j = self.jump
        ev = 0
        if j and self.started:
            px = self.px
            if self.held:
                self.held = False
                hx = self.hx
                if (x - px if x > px else px - x) * 2 < j:
                    hx = (px + x) >> 1      # a lone glitch: her signal went on
                    if not self.glitches:
                        self.glitch_t = self.ht
                    self.glitches += 1
                self.condition(hx, self.ha)
                ev = self.det.update(self.ht, self.level, self.alevel)
                self.ppx = px
                self.px = px = hx
            d = self.ppx - px
            if (x - px > j or px - x > j) and -j <= d * 4 <= j:
                self.held = True        # a jump out of a quiet stretch: wait a sample
                self.ht, self.hx, self.ha = t_ms, x, a
                return ev
        self.ppx = self.px
        self.px = x
        self.condition(x, a)
        return ev | self.det.update(t_ms, self.level, self.alevel)

    def feed(self, ts, xs, as_, i, k):
        """The sample in ring slot i (of k in a row): 1 consumed, event
        flags in .flags. (At 100 Hz one at a time costs little.)"""
        self.flags = self.push(ts[i], xs[i], as_[i])
        return 1

    def condition(self, x, a):
        # the low-pass (a steady start on the first sample) into level/alevel;
        # no tuple returned: that would allocate per sample
        lp = self.lp
        if lp is not None:
            if not self.started:
                lp.reset(x)
                if self.lpa is not None:
                    self.lpa.reset(a)
            x = lp.step(x)
            if self.lpa is not None:
                a = self.lpa.step(a)
        self.started = True
        self.level = x
        self.alevel = a

    def finish(self, t_ms):
        ev = 0
        if self.held:           # the last sample, held back: as it was
            self.held = False
            self.condition(self.hx, self.ha)
            ev = self.det.update(self.ht, self.level, self.alevel)
        return ev | self.guard.finish(t_ms)


class EmgChain:
    """Raw EMG counts (any DC offset) to squeeze events on the RMS envelope.

    The high-pass sections (and the notch) of both channels are one chain of
    sections in an int32 array (knip.kernels.chain_run): a run of clean raw
    samples up to the envelope block's end goes through it in one call
    (feed); a sample the input guard stops goes through check() and the
    same kernel one at a time (push)."""

    signal = "emg"

    def __init__(self, rate_hz, cfg=None, highpass_hz=40.0, notch_hz=0, block_ms=10, window_blocks=5,
                 noise_floor=8, two_channel=False, jump=2000, hp_order=4, mains_hz=50):
        self.rate_hz = rate_hz
        self.two = two_channel
        # 4th order (two sections with the Butterworth Qs) at 40 Hz by
        # default: the heart's QRS, which reaches pelvic-floor electrodes,
        # has most of its energy below 40 Hz, pelvic-floor EMG most above
        # (docs/DETECTOR.md); 2nd order at 20 Hz is SENIAM's plain band.
        q1, q2 = (0.5412, 1.3066) if hp_order == 4 else (0.7071, 0)
        secs = [design_highpass(rate_hz, highpass_hz, q1)]
        if q2:
            secs.append(design_highpass(rate_hz, highpass_hz, q2))
        if notch_hz and rate_hz > 2 * notch_hz:
            secs.append(design_notch(rate_hz, notch_hz))
        nx = len(secs)
        if two_channel:
            secs.append(design_highpass(rate_hz, highpass_hz, q1))
            if q2:
                secs.append(design_highpass(rate_hz, highpass_hz, q2))
        self._nx = nx
        self._nsec = len(secs)
        decim = int(rate_hz * block_ms / 1000 + 0.5)
        if decim < 1:
            decim = 1
        self.env = RmsEnvelope(decim, window_blocks)
        self.enva = RmsEnvelope(decim, window_blocks) if two_channel else None
        env_period = int(decim * 1000 / rate_hz + 0.5)
        # The moving window is centred half a window behind its newest sample.
        self.delay_ms = int(decim * window_blocks * 500 / rate_hz + 0.5)
        self.det = SqueezeDetector(env_period if env_period > 0 else 1,
                                   cfg if cfg is not None else DetectorConfig("emg"),
                                   noise_floor, self.delay_ms, two_channel)
        # jump: counts in one sample that no muscle makes (an electrode pop;
        # 2000 = 2 mV at the host scale of 1 count per uV)
        g = self.guard = InputGuard(self.det, _period_ms(rate_hz), jump=jump)
        # runs stay below 2**30 in their sums of squares up to 64 samples
        self.runs = decim <= _RUN_MAX
        # mains hum subtracted when a cycle is a whole number of samples
        # (50 Hz at 500 Hz or 1 kHz; 60 Hz at 1.2 kHz; kernels.chain_run)
        r = int(rate_hz)
        hum = r // mains_hz if mains_hz and r % mains_hz == 0 and r // mains_hz <= _HUM_MAX else 0
        self._hum = hum
        self._hum_wait = -1         # samples to the next look for hum (-1: none)
        self._hum_seen = 0          # looks in a row that found it
        self.t_in = 0               # the time of the sample push() has
        self._t_done = None         # the time of the last sample through chain_run
        # two copies of the hum's templates, taken _HUM_COPY_MS apart: after
        # an artefact the chain goes on from one taken before its ramp into
        # it (the ramp's filtered swing is thousands of counts: learnt, it
        # would be "hum" taken off for a third of a second)
        self._bk = array("i", bytes(16 * hum)) if hum else None
        self._bk_t = array("i", [0, 0, _NO_COPY, _NO_COPY]) if hum else None
        self._bk_wait = 0           # samples to the next copy (taken at an envelope block's end)
        k = K.new_chain([s.coefficients() for s in secs], nx, decim if self.runs else 1, hum)
        k[K.CH_FLAT_N] = g.flat_n
        k[K.CH_LO] = g.lo
        k[K.CH_HI] = g.hi
        k[K.CH_JUMP] = g.jump
        k[K.CH_GAP_MS] = g.gap_ms
        self.k = k
        self.bx = array("i", bytes(4))     # push()'s sample, one channel each
        self.ba = array("i", bytes(4))
        self.level = 0
        self.alevel = 0
        self.started = False
        self.flags = 0

    def push(self, t_ms, x, a=0):
        self.t_in = t_ms
        g = self.guard
        c = self.k
        if not g.check(t_ms, x, a):
            # the filters restart on what follows and ring while they
            # settle: the hum's template is held meanwhile
            c[K.CH_OUT] = 2
            return g.skipped(self, t_ms, x, a)
        if c[K.CH_OUT]:
            c[K.CH_OUT] = 0
        e = self.condition(x, a)
        if self._bk is not None:
            self._bk_wait -= 1
            if e >= 0 and self._bk_wait < 0:
                self._hum_copy(t_ms, False)
        if e < 0:
            return 0
        return self.det.update(t_ms, e, self.alevel)

    def _hum_copy(self, t, back):
        # copy the templates (at t) over the older copy, at the first
        # envelope block's end _HUM_COPY_MS of samples after the last (the
        # same sample on the block path); back, after an artefact: go on
        # from the newest copy taken at least _HUM_CLEAN_MS before it began
        c = self.k
        st = self._bk_t             # copy_run's run, then the copies' times
        h2 = 2 * self._hum
        j = len(c) - h2
        st[1] = h2
        if not back:
            o = 2 if st[2] <= st[3] else 3
            st[0] = j
            K.copy_run(self._bk, (o - 2) * h2, c, st)
            st[o] = t
            self._bk_wait = int(self.rate_hz) * _HUM_COPY_MS // 1000 - 1
            return
        t = self.guard.bad_from         # (where the artefact began, not a bounce off the rail)
        o = -1
        for i in (2, 3):
            if st[i] != _NO_COPY and t - st[i] >= _HUM_CLEAN_MS and (o < 0 or st[i] > st[o]):
                o = i
        if o >= 0:
            st[0] = (o - 2) * h2
            K.copy_run(c, j, self._bk, st)

    def feed(self, ts, xs, as_, i, k):
        """Raw samples from ring slot i (k of them in a row): processed as
        push() would, one after another, but a clean run up to the envelope
        block's end in one go. Returns how many were consumed; event flags
        (of the last of them: only a block's end makes any) in .flags."""
        env = self.env
        n = env.decim - env.n
        if n > k:
            n = k
        if 0 <= self._hum_wait < n - 1:
            n = self._hum_wait + 1      # the look at the very sample push() has it
        g = self.guard
        m = 0
        if self.runs and self.started and g.bad_from == _NO_BAD and g.last_t is not None:
            c = self.k
            c[CH_LAST_X] = g.last_x
            c[CH_LAST_T] = g.last_t
            c[CH_SAME] = g.same
            c[CH_FROM] = i
            c[CH_N] = n
            c[CH_GUARD] = 1
            c[K.CH_OUT] = 0
            m = chain_run(c, ts, xs, as_)
            if m:
                self._t_done = ts[i + m - 1]
        if m == 0:
            self.flags = self.push(ts[i], xs[i], as_[i])
            return 1
        c = self.k
        g.last_x = c[CH_LAST_X]
        g.last_t = c[CH_LAST_T]
        g.same = c[CH_SAME]
        if self.enva is not None:
            e = self.enva.add(c[CH_SQA], m)
            if e >= 0:
                self.alevel = e
        e = env.add(c[CH_SQX], m)
        if e >= 0:
            self.level = e
        if self._hum_wait >= 0:
            self._hum_wait -= m
            if self._hum_wait < 0:
                self._find_hum()
        if self._bk is not None:
            self._bk_wait -= m
            if e >= 0 and self._bk_wait < 0:
                self._hum_copy(ts[i + m - 1], False)
        fl = 0
        if e >= 0:
            fl = self.det.update(ts[i + m - 1], e, self.alevel)
        self.flags = fl
        return m

    def _find_hum(self):
        # Once a second until found: is there mains hum? At rest, the
        # template's power (the learnt cycle) against the signal's: over an
        # eighth of it, three times in a row, is hum (her EMG leaves ~1/31
        # in it, as it does not repeat, and once in a while more). From
        # then on it is taken off, for good.
        if self.det.state != ST_REST:
            self._hum_wait = int(self.rate_hz) >> 2     # her squeeze's EMG is in it too
            self._hum_seen = 0
            return
        c = self.k
        h = self._hum
        j = len(c) - 2 * h
        p = 0
        for q in range(h):
            v = c[j + q] >> 4               # 1/16 counts, as the envelope
            if v < 0:
                v = -v
            p += v * v if v < 2048 else 4194304     # sums stay small ints
        lv = self.level
        if lv > 2047:
            lv = 2047
        self._hum_wait = int(self.rate_hz)
        if lv > 0 and p > (lv * lv * h) >> 3:
            self._hum_seen += 1
            if self._hum_seen >= _HUM_LOOKS:
                c[K.CH_HUM] = h
                self._hum_wait = -1
                # her rest without the hum is new: the detector learns it
                # again (its warm-up), as after a long gap
                self.det.started = False
        else:
            self._hum_seen = 0

    def condition(self, x, a):
        # high-pass (+ notch) and RMS envelope for one sample; the envelope
        # or -1 mid-block
        c = self.k
        if not self.started:
            self.started = True
            # each channel's first section starts steady on its input, the rest on 0
            nx = self._nx
            for j in range(self._nsec):
                start_section(c, K.CH_HEAD + K.SEC_LEN * j, x if j == 0 else (a if j == nx else 0))
            # the hum's template is kept over an artefact or a gap: its
            # place in the mains cycle moves on by the samples' worth of
            # time since the last sample through the chain (a whole
            # second is whole cycles). A few samples lost without a
            # restart shift it until it is relearnt (~0.3 s).
            h = self._hum
            if h and self._t_done is not None:
                self._hum_copy(0, True)
                d = (self.t_in - self._t_done) % 1000
                c[K.CH_PHASE] = (c[K.CH_PHASE] - 1 + d * int(self.rate_hz) // 1000) % h
            self._hum_seen = 0
            if h and c[K.CH_HUM] < 0:
                self._hum_wait = 3 * int(self.rate_hz)  # once the filters have settled
        self.bx[0] = x
        self.ba[0] = a
        c[K.CH_FROM] = 0
        c[K.CH_N] = 1
        c[K.CH_GUARD] = 0
        K.chain_run(c, self.bx, self.bx, self.ba)
        self._t_done = self.t_in
        if self.enva is not None:
            e = self.enva.add(c[K.CH_SQA], 1)
            if e >= 0:
                self.alevel = e
        e = self.env.add(c[K.CH_SQX], 1)
        if e >= 0:
            self.level = e
        if self._hum_wait >= 0:
            self._hum_wait -= 1
            if self._hum_wait < 0:
                self._find_hum()
        return e

    def finish(self, t_ms):
        return self.guard.finish(t_ms)
