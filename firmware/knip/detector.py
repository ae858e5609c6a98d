# SqueezeDetector: a causal rest/squeeze state machine on a conditioned signal
# (pressure, or an EMG envelope). Integer-only per sample; results live in
# preallocated records so that steady state allocates nothing.
#
#   REST --(above onset threshold)--> RISING --(held confirm_ms)--> HOLDING
#   HOLDING --(below release level)--> RELEASING --(stopped falling)--> RECOVERING
#   RECOVERING --(relax_ms, relaxation verdict)--> REST
#
# Onsets are back-tracked through a short history to where the rise left the
# noise band, so the reported onset is earlier than the decision; all reported
# times have the conditioning filter's delay (delay_ms) removed.
#
# The state machine is here; its parts are modules: records and event flags
# (knip.record), settings (knip.thresholds), walks back over the history
# (knip.history), onset and rise (knip.onset), relaxation (knip.relax), her
# tone and recovery (knip.tone), kinds and technique (knip.kinds), abdomen (knip.strain).
from array import array
from knip.fixed import const, shift_for
from knip.filters import BaselineTracker
from knip.thresholds import DetectorConfig, margin
from knip.history import older, slope, since, settled, fell, mean
from knip.onset import backtrack, fit_onset, refit_onset, rise_start, rise_point, reached, coarse_add, COARSE
from knip.tone import (follow, recover, verdict, at_rest, transmission, climb, window_add, relearn, rest_known,
                       warmed, onset_floor, rest_moved)
from knip.kinds import kind_of, technique, moved, short_spike, spiked, unusable, blank, climbed, surged, shifted
from knip.strain import abdominal
from knip.record import (EV_START, EV_PEAK, EV_END, KIND_SQUEEZE, KIND_COUGH, KIND_BEARING_DOWN, KIND_ARTEFACT,
                         TECH_PUSH, R_KIND, R_ONSET, R_PEAK_T, R_PEAK, R_BASE, R_REST, R_OFFSET, R_ENDED, R_MEAN_HOLD,
                         R_HOLD_MS, R_RISE_MS, R_RELEASE_MS, R_AREA_HI, R_AREA_LO, R_REST_BEFORE, R_REST_OK,
                         R_ABD_RISE, R_TECH, R_NOISE, R_MARKS, R_SEQ, N_REC, M_QUICK, M_PLATEAU, M_CUT, M_MOTION,
                         M_SATURATED, M_SPIKE, M_FLAT, begin)

ST_REST = const(0)
ST_RISING = const(1)
ST_HOLDING = const(2)
ST_RELEASING = const(3)
ST_RECOVERING = const(4)
STATE_NAMES = ("rest", "rising", "holding", "releasing", "recovering")

_HIST = const(64)          # samples of history kept (for onsets, offsets, slopes)
_RISE_N = const(32)        # (level, time) points of the rise, for t50 / t90
_FIT_N = const(48)         # samples in the onset fit (rest before + the rise)
_AREA_SPILL = const(1 << 20)
_RAMP_MS = const(300)      # cut: a squeeze begun this (+ a sample) before a rail, pop or stuck value is its ramp


class SqueezeDetector:
    def __init__(self, period_ms, cfg=None, noise_floor=1, delay_ms=0, two_channel=False, min_on=0):
        c = cfg if cfg is not None else DetectorConfig()
        self.min_on = min_on     # smallest rise that can be a squeeze, counts
        self.min_abd = 3 * min_on  # ... and an abdominal strain (breathing is larger there)
        self.cfg = c
        self.period_ms = period_ms
        self.delay = delay_ms
        self.two = two_channel
        # Fast level (onset reference + noise) and slow resting tone.
        self.lvl = BaselineTracker(period_ms, c.level_ms, c.level_ms, c.noise_ms, noise_floor)
        self.tone = BaselineTracker(period_ms, c.rest_up_ms, c.rest_down_ms, c.noise_ms, noise_floor)
        self.abd_lvl = BaselineTracker(period_ms, c.level_ms, c.level_ms, c.noise_ms, noise_floor)
        # the abdomen's resting level as the tone reads the probe's (pressure, two channels)
        self.abd_tone = BaselineTracker(period_ms, c.rest_up_ms, c.rest_down_ms, c.noise_ms, noise_floor) \
            if two_channel and c.abd_comp else None
        self.asm_q = self.abd_rest = 0
        self.hshift = shift_for(period_ms, c.hold_ms)     # the hold level falls slowly
        self.hshift_up = shift_for(period_ms, c.hold_up_ms)  # ... and follows a rise fast
        self.dshift = shift_for(period_ms, c.drop_ms) if c.drop_ms else 0
        self.smshift = shift_for(period_ms, 500)
        self.spshift = shift_for(period_ms, 8000)     # spikes forgotten over ~8 s
        self.sm_q = 0
        self.warm_shift = 2
        self.hv = array('i', [0] * _HIST)
        self.ht = array('i', [0] * _HIST)
        self.hpos = self.hcount = 0
        # The rise as (level, first time reached) points, so t50 and t90 are
        # read against the final peak, not a running one.
        self.rl = array('i', [0] * _RISE_N)
        self.rt = array('i', [0] * _RISE_N)
        self.rn = 0
        # Prefix sums for the onset fit (count is the index).
        self.f1 = array('i', [0] * (_FIT_N + 1))
        self.f2 = array('i', [0] * (_FIT_N + 1))
        self.fi = array('i', [0] * (_FIT_N + 1))
        # EMG: a coarser, longer history (64 x 4 samples) for refitting the
        # onset of a slow rise once the rise is over (knip.onset refit_onset)
        m = COARSE if c.refit_pre_ms else 1
        self.cv = array('i', [0] * m)
        self.ct = array('i', [0] * m)
        self.cpos = self.cn = self.csum = self.ck = 0
        self.cur = array('i', [0] * N_REC)
        self.done = array('i', [0] * N_REC)
        self.abd = array('i', [0] * N_REC)
        self.ref_amp = 0         # MVC amplitude if known, else strongest seen
        self.mvc_given, self.seq = False, 0
        self.learnt, self.was_n, self.was_tn = False, 0, 0   # noise learnt before a re-learn (knip.tone.relearn)
        self.early, self.early_t, self.early_lo = False, 0, 0   # her first rest (knip.tone.onset_floor)
        self.rearm_t = 0         # after an artefact: no squeeze before a rest sample (or this time)
        self.reset_state()

    # -- set-up ---------------------------------------------------------------
    def reset_state(self):
        self.state = ST_REST
        self.rec_asum = 0        # abdominal sum over the verdict window
        self.tx_q = 0            # abdominal pressure's transmission to the probe (/256),
        self.tx_t = -(1 << 29)   # learnt from their changes at rest (knip.tone.transmission)
        self.tx_x = self.tx_a = self.sxa = self.saa = self.v0 = 0
        self.climb_t = -(1 << 29)  # a climb below the threshold (knip.tone.climb)
        self.climb_th = self.climb_m = self.cbase = 0
        self.t0 = self.last_t = self.cross_t = self.cross_max = 0
        self.started = self.peak_sent = self.rec_half = self.surge_up = self.surging = False
        self.surge_pk = self.surge_lo = self.surge_t = self.surge_on = self.surge_hi = self.surge_sl = 0  # (kinds)
        self.stand_v = self.stand_t = self.surge_abd = self.surge_amax = self.surge_seen = 0
        self.last50 = self.last90 = self.hold_sum = self.hold_n = self.area_acc = 0  # (no dict growth later)
        self.prev_off = -(1 << 30)   # no squeeze yet (before any time: clocks may start < 0)
        self.prev_dur = 0
        self.abd_on = self.abd_sent = self.abd_squeezed = False
        self.abd_t = self.abd_max = self.abd_base = 0
        self.abd_cur = self.abd_peak = self.abd_ref = 0
        self.rel_min = self.rel_t = self.rel_start = 0
        self.rel_said = self.rel_fall = self.rel_back = 0
        self.rec_t = self.rec_sum = self.rec_n = 0
        self.hold_q = self.now_q = 0   # the hold level; the signal smoothed over drop_ms (both << 4)
        self.max_slope = self.marks = 0
        # an unrelaxed squeeze's residual plateau: its rise (0: none), where she is relaxed again
        self.plateau = self.plateau_end = 0
        # Pressure: how long (ms, at rest) the level has stayed steady on a
        # plateau; once plateau_hold_ms, the tone follows her level again,
        # unrelaxed verdicts in a row or not: a residual decays, a probe
        # shift or a tone that stays raised does not (it is her rest now)
        self.steady = 0
        self.floor = 0           # lowest level just before the last rise (onset walk)
        self.rise_rec = False    # it rose in the recovery from an event ...
        self.rise_amp = 0        # ... which explains a dip this deep
        self.rec_amp = 0
        self.slow_n = 0          # the tone's updates skipped in a dip
        # Pressure: a dip counts as a movement's only from quiet_t on: after
        # an event (or the start) her pressure recovers (an undershoot, a
        # filter's ring, a settling tone) until it is back at her rest.
        self.quiet_t = (1 << 30) - 1     # (later than any time)
        self.rec_from = self.back_t = 0
        self.tk_t = 0            # ... and while her tone falls: read every 2 s
        self.tk_a = 0            # (its level then, its fall over the last two)
        self.tk_f0 = self.tk_f1 = 1 << 20
        self.tk_s = 0            # the smoothed level then (plateau steady?)
        self.spike_q = self.spike_t = 0  # recent brief spikes at rest, above the level (<< 4); the last's time

    def calibrate(self, rest_level, noise, mvc=0):
        """Seed from a calibration: resting level, noise (mean abs dev), MVC level."""
        rest_known(self, rest_level, noise)
        self.sm_q = rest_level << 4
        if mvc > rest_level:
            self.ref_amp = mvc - rest_level
            self.mvc_given = True
        self.started = True
        self.t0 = -(1 << 29)     # no warm-up needed
        self.quiet_t = self.t0   # her rest is known: nothing to recover from
        self.tk_f0 = self.tk_f1 = self.rearm_t = 0
        self.tk_a = rest_level

    def decision_delay_ms(self):
        """Worst-case delay from crossing the onset threshold to EV_START."""
        return self.delay + self.cfg.confirm_ms + self.period_ms

    def state_name(self):
        return STATE_NAMES[self.state]

    # -- per sample -----------------------------------------------------------
    def update(self, t, v, a=0):
        c = self.cfg
        h = self.hpos
        self.hv[h] = v
        self.ht[h] = t
        self.hpos = h + 1 if h + 1 < _HIST else 0
        if self.hcount < _HIST:
            self.hcount += 1
        if not self.started:
            self.started = True
            self.rearm_t = 0
            self.t0 = t
            relearn(self, v)
            self.sm_q = v << 4
            self.abd_lvl.reset(a)
            self.lvl.learn = self.tone.learn = self.abd_lvl.learn = True
            if self.abd_tone is not None:
                self.abd_tone.reset(a)
                self.asm_q = a << 4
            recover(self, t, 1 << 21)    # the probe settles in (1 << 21: knip.kinds moved)
            self.tk_t, self.tk_a, self.v0 = t, v, v
            self.spike_t = t - (1 << 20)     # (no spike yet: the next is a lone one)
            self.tk_f0 = self.tk_f1 = 1 << 20
            if self.tx_t == -(1 << 29):  # first start: "long ago" is before t, however early
                self.tx_t = self.climb_t = t - (1 << 20)
        dt = t - self.last_t
        self.last_t = t
        self.abd_cur = a
        ev = 0
        st = self.state
        if c.refit_pre_ms and (st < ST_HOLDING or st > ST_RELEASING or t - self.cross_t < c.refit_keep_ms):
            coarse_add(self, t, v)      # EMG: kept at rest and for refit_keep_ms into a squeeze
        base = self.lvl.level()
        noise = self.lvl.noise()
        if st == ST_REST or st == ST_RISING:
            on_th = base + self._on_delta(noise)
            if t - self.t0 < c.warmup_ms:
                # Learn the resting level and noise fast; no detection yet.
                self.lvl.update(v, on_th - base)
                follow(self, v, on_th - base)
                if self.two:
                    self.abd_lvl.update(a, self.abd_lvl.noise() * c.on_k10 // 10)
                return 0
            if self.lvl.learn:
                warmed(self)
            if c.climb_ms:
                on_th = climb(self, t, v, base, on_th)
                base = self.cbase
            on_th = at_rest(self, t, v, base, on_th)
            th = onset_floor(self, dt, v, on_th) if self.early else on_th
            if v >= on_th and self.rearm_t:
                # after an artefact, above the threshold before she was back
                # at rest: its tail (a pop's return, a filter's ring). Not
                # gone in 2 s: her level moved; it is learnt afresh
                if t >= self.rearm_t:
                    self.rearm_t = 0
                    self.started = False
                return ev
            if v >= th:
                if st == ST_REST:
                    self.state = ST_RISING
                    self.cross_t = t
                    self.cross_max = v
                elif v > self.cross_max:
                    self.cross_max = v
                if t - self.cross_t >= c.confirm_ms:
                    self._start(t, base, noise)
                    ev |= EV_START
            else:
                if st == ST_RISING:
                    ev |= short_spike(self, t, v, base, noise, on_th)
                if self.rearm_t and v - base < (on_th - base) >> 1:
                    self.rearm_t = 0    # back to rest (well under: a tail hovers)
                self.state = ST_REST
                if v < on_th or not self.early:     # (knip.tone.onset_floor)
                    self.lvl.update(v, on_th - base)
                    follow(self, v, on_th - base)
                self.spike_q -= self.spike_q >> self.spshift
                if self.two and c.abd_comp and t - self.tx_t >= 500 and (self.climb_t == t or not c.climb_ms):
                    transmission(self, t, v, a)     # (not while it climbs: a rise's start)
        elif st == ST_HOLDING or st == ST_RELEASING:
            ev |= self._squeeze_sample(t, v, dt, noise)
        else:  # ST_RECOVERING
            window_add(self, t, v, a)
            if t - self.rec_t >= c.relax_ms:
                ev |= self._verdict(t)
                self.state = ST_REST
                # Re-zero the fast level where the signal now rests (its mean
                # over the window: one sample of a noisy envelope may be a dip).
                self.lvl.reset(self.rec_sum // self.rec_n if self.rec_n else v, noise)
            elif v >= self.rel_min + self._again_delta(noise):
                # A new squeeze before the window closed: judge on what we have.
                ev |= self._rise_again(t, v, noise)
        if self.two:
            st = self.state
            ev |= abdominal(self, t, a, st == ST_REST, st != ST_REST and st != ST_RISING)
        return ev

    # -- helpers (called on transitions, or per sample while squeezing) ------
    def _on_delta(self, noise):
        # Onset margin above the level: noise multiples or % of the reference,
        # and a quarter above the brief spikes seen at rest lately (the
        # heart's QRS in an EMG: periodic, not noise-like, so the noise
        # estimate, which leaves out what crosses the threshold, misses it).
        c = self.cfg
        m = margin(noise, c.on_k10, self.ref_amp, c.on_pct, self.min_on)
        sp = (self.spike_q >> 4) * 5 >> 2
        if self.ref_amp and sp > self.ref_amp >> 1:
            sp = self.ref_amp >> 1          # never above half her best squeeze
        return sp if sp > m else m

    def _again_delta(self, noise):
        # A new squeeze during the recovery window rises the onset margin,
        # or plateau_pct of the squeeze just ended, whichever is larger.
        r = self.done
        m = self._on_delta(noise)
        p = (r[R_PEAK] - r[R_BASE]) * self.cfg.plateau_pct // 100
        return m if m > p else p

    def _start(self, t, base, noise):
        c = self.cfg
        r = self.cur
        self.seq += 1
        self.rise_rec = self.quiet_t > self.cross_t   # it rose while she was recovering
        self.rise_amp = self.rec_amp
        onset = backtrack(self, c.onset_k10, noise)
        if c.onset_fit:
            onset = fit_onset(self, onset)
        begin(r, self.seq, KIND_SQUEEZE, onset, t)
        r[R_BASE] = base
        r[R_REST] = self.tone.level()
        r[R_NOISE] = noise
        r[R_PEAK] = self.cross_max
        r[R_PEAK_T] = t
        r[R_ABD_RISE] = -1
        self.marks = M_PLATEAU if self.plateau else 0
        self.plateau = 0
        self.peak_sent = self.surge_up = self.surging = False
        self.stand_v, self.stand_t = self.cross_max, t
        rise_start(self, onset, base)
        self.max_slope = slope(self, 100)
        self.last50 = t
        self.last90 = t
        self.hold_sum = self.hold_n = 0
        self.hold_q = self.hv[self.hpos - 1 if self.hpos else _HIST - 1] << 4
        self.now_q = self.hold_q
        self.abd_base = self.abd_lvl.level()
        if self.abd_tone is not None:
            self.abd_rest = self.abd_tone.level()
        self.abd_max = self.abd_base
        self.abd_squeezed = True
        self.state = ST_HOLDING
        # Area of the samples already above base since the onset.
        self.area_acc = 0
        r[R_AREA_HI] = 0

    def _squeeze_sample(self, t, v, dt, noise):
        c = self.cfg
        r = self.cur
        base = r[R_BASE]
        ev = 0
        pk = r[R_PEAK]
        if v > pk:
            if c.surge_ms and self.state == ST_HOLDING:
                climbed(self, t, v, noise)      # past a level that stood?
            pk = v
            r[R_PEAK] = v
            r[R_PEAK_T] = t
            rise_point(self, v, t, base)
            s = slope(self, 100)
            if s > self.max_slope:
                self.max_slope = s
        amp = pk - base
        # Release: she lets go of her hold level (a fatiguing hold sags well below its peak).
        mh = self.hold_sum // self.hold_n if self.hold_n else pk
        if v * 10 >= base * 10 + (mh - base) * 9:
            self.last90 = t
        if v * 2 >= base * 2 + amp:
            self.last50 = t
            self.hold_sum += v
            self.hold_n += 1
            if self.hold_n >= 4096:
                self.hold_sum >>= 1
                self.hold_n >>= 1
        a = self.area_acc + (v - base) * dt
        if a >= _AREA_SPILL or a <= -_AREA_SPILL:
            r[R_AREA_HI] += a >> 10
            a &= 1023
        self.area_acc = a
        if self.two and self.abd_cur > self.abd_max:
            self.abd_max = self.abd_cur
        drop = amp * c.peak_drop_pct // 100
        if not self.peak_sent and v <= pk - drop and v < pk - noise:
            self.peak_sent = True
            ev |= EV_PEAK
        # (against her hold level: the running maximum of a noisy envelope sits well above it)
        ramp = mh - base if mh > base else amp
        if self.state == ST_HOLDING:
            if self.surging and surged(self, t, v, base, noise):
                return ev | shifted(self, t, noise)
            hq = self.hold_q
            d = (v << 4) - hq
            hq += d >> self.hshift_up if d > 0 else -((-d) >> self.hshift)
            self.hold_q = hq
            hl = hq >> 4
            nq = self.now_q
            nq += ((v << 4) - nq) >> self.dshift
            self.now_q = nq
            back = 0
            nv = nq >> 4 if c.drop_ms else v
            if v * 100 < base * 100 + ramp * c.release_pct:
                back = base + ramp * c.release_pct // 100
            elif (hl - nv) * 100 >= (hl - base) * c.drop_pct:
                # a fast fall to a residual plateau: released, not relaxed
                back = hl - (hl - base) * c.drop_pct // 200
            elif c.fall_ms and (hl - nv) * 200 >= (hl - base) * c.drop_pct:
                back = fell(self, v, ramp, self._on_delta(noise))    # pressure: a fall within fall_ms
            if back:
                self.state = ST_RELEASING
                self.rel_min = v
                self.rel_t = t
                # the release began when she was last at her hold level
                self.rel_start = since(self, hl - ((hl - base) >> 3), r[R_ONSET]) if c.drop_ms else t
                self.rel_said = t
                self.rel_fall = 0
                self.rel_back = back
            elif t - r[R_ONSET] > c.max_squeeze_ms:
                self.rel_min = v
                self.rel_t = t
                self.marks |= M_CUT
                ev |= self._end(t)
            return ev
        # RELEASING: over when back at the level, when it stops falling (or
        # falls at under a quarter of its fastest release rate: a residual
        # that only creeps down), or when it rises again (a new squeeze).
        tol = margin(noise, c.settle_k10, amp, c.settle_pct, 0)
        s = c.settle_ms
        dip = s
        if c.dip_ms and self.rel_said - r[R_ONSET] >= c.dip_hold_ms:
            dip = c.dip_ms      # a long hold: its level wanders; a dip may last
        if v >= self.rel_back and (t - self.rel_said < s or t - self.rel_said < dip and
                                   v * 4 >= 3 * self.rel_back + (self.hold_q >> 4)):
            # a brief dip (noisy envelope), or after a long hold a longer
            # one back a quarter of the way to the hold (its level wanders):
            # still holding
            self.state = ST_HOLDING
            return ev
        if dip > s and t - self.rel_said < dip and \
                (v > base + noise or (c.drop_ms and mean(self, c.drop_ms) > base + noise)):
            # too soon to say it was a release (unless back at rest; EMG: over
            # its last drop_ms, as a noisy envelope touches it for a moment):
            # keep the lowest point
            if v < self.rel_min - tol or v <= base:
                self.rel_min = v
                self.rel_t = t
            return ev
        if v < self.rel_min - tol or v <= base:
            self.rel_min = v
            self.rel_t = t
        elif v >= self.rel_min + self._on_delta(noise) and \
                v * 100 >= self.rel_min * 100 + amp * c.reclimb_pct:
            ev |= self._end(t)
            return ev | self._rise_again(t, v, noise)
        fall = self.hv[older(self, s)] - v
        if fall > self.rel_fall:
            self.rel_fall = fall
        if (v <= base + noise and (not c.dip_pct or -slope(self, 100) * 6 // 10 <= fall)) \
                or t - self.rel_t >= s:
            # pressure: reaching the level while still falling at more than
            # half the pace of the last settle_ms is a swing through it (a
            # movement), not the end of a release: see where it goes
            ev |= self._end(t)
        elif t - self.rel_start >= s and fall * 4 <= self.rel_fall and 2 * (t - self.rel_t) >= s:
            self.rel_t = t - s
            ev |= self._end(t)
        return ev

    def _rise_again(self, t, v, noise):
        # She squeezes again from where the last one left her: give the
        # verdict on what was seen, then take that low point as the level.
        ev = self._verdict(t)
        r = self.done
        lo = self.rel_min
        if self.cfg.dip_pct:
            # pressure: never from below her rest (a movement's trough)
            if lo < self.tone.level():
                lo = self.tone.level()
            if r[R_KIND] == KIND_ARTEFACT or v < lo + self._on_delta(noise):
                self.lvl.reset(lo, noise)
                self.state = ST_REST
                return ev
        self.lvl.reset(lo, noise)
        self.state = ST_RISING
        self.cross_t = t
        self.cross_max = v
        return ev

    def _end(self, t):
        c = self.cfg
        r = self.cur
        d = self.delay
        base = r[R_BASE]
        amp = r[R_PEAK] - base
        off = settled(self, self.rel_start, r[R_NOISE], r[R_PEAK]) if self.state == ST_RELEASING else self.rel_t
        if c.refit_pre_ms:
            # a slow rise in full view now: where did it begin? (EMG)
            r[R_ONSET] = refit_onset(self, r[R_ONSET], base, r[R_PEAK] if not self.hold_n
                                     else self.hold_sum // self.hold_n)
        r[R_OFFSET] = off
        r[R_ENDED] = t
        r[R_RISE_MS] = reached(self, base + amp * 9 // 10) - r[R_ONSET]
        r[R_HOLD_MS] = (self.last50 if self.last50 < off else off) - reached(self, base + (amp >> 1))
        r[R_RELEASE_MS] = off - self.last90 if off > self.last90 else 0
        r[R_MEAN_HOLD] = self.hold_sum // self.hold_n if self.hold_n else r[R_PEAK]
        r[R_AREA_LO] = self.area_acc
        dur = off - r[R_ONSET]
        ev = EV_END
        if not self.peak_sent:
            ev |= EV_PEAK
        ar = self.abd_max - self.abd_base
        k = kind_of(r[R_PEAK_T] - r[R_ONSET], dur, amp, ar, self.max_slope, self.two, c)
        if k == KIND_SQUEEZE and c.dip_pct and moved(self, amp):
            # a movement: her rest is where it was before it (the level
            # followed its dip down; the tone was held)
            k = KIND_ARTEFACT
            self.marks |= M_MOTION
            self.lvl.reset(self.tone.level(), r[R_NOISE])
        elif c.dip_pct:
            # not a movement: what follows is its recovery, which may dip
            # below her rest: a squeeze's undershoot by up to 2.5 dip_pct of
            # its rise (added to the one it rose in), a cough's or a spike's
            # filter ring by ring_pct
            recover(self, t, amp * (c.dip_pct * 5 >> 1 if k == KIND_SQUEEZE else c.ring_pct) // 100
                          + (self.rise_amp if self.rise_rec else 0))
        if k == KIND_ARTEFACT and not self.marks & M_MOTION:
            if dur < c.min_squeeze_ms:
                spiked(self, t, amp)    # too brief for any voluntary squeeze
            else:
                rest_moved(self, self.rel_min, r[R_NOISE])    # too long: a level shift
        if self.two:
            r[R_ABD_RISE] = ar if ar > 0 else 0
            r[R_TECH] = technique(ar, amp, c)
            if r[R_TECH] == TECH_PUSH and k == KIND_SQUEEZE:
                k = KIND_BEARING_DOWN
        r[R_KIND] = k
        if k == KIND_SQUEEZE:
            if dur <= c.quick_ms:
                self.marks |= M_QUICK
            if self.prev_off != -(1 << 30):
                rest = r[R_ONSET] - self.prev_off
                r[R_REST_BEFORE] = rest
                r[R_REST_OK] = 1 if rest >= self.prev_dur else 0
            self.prev_off = off
            self.prev_dur = dur
            if not self.mvc_given and amp > self.ref_amp:
                self.ref_amp = amp
        r[R_MARKS] = self.marks
        # Report times without the conditioning filter's delay.
        r[R_ONSET] -= d          # the rise shows through the filter late by its delay
        r[R_OFFSET] -= d
        r[R_PEAK_T] -= d
        for i in range(N_REC):
            self.done[i] = r[i]
        if r[R_KIND] == KIND_COUGH or r[R_KIND] == KIND_ARTEFACT:
            # Back to rest at the pre-cough level (frozen meanwhile): the
            # filter's undershoot after a spike is not a new resting level.
            self.state = ST_REST
        else:
            self.state = ST_RECOVERING
            self.rec_t = t
            self.rec_sum = 0
            self.rec_n = 0
            self.rec_half = False
        return ev

    def cut(self, t, marks):
        """The input stops being usable at t (marks: M_GAP, M_SATURATED...):
        end what is open there, unjudged (her release was not seen); one
        begun < _RAMP_MS before saturation or a pop rose into it (a lead
        tugged to the rail): an artefact record. Returns event flags."""
        ev = 0
        st = self.state
        on = self.cur[R_ONSET] - self.delay     # as the samples' times
        if marks & (M_SATURATED | M_SPIKE | M_FLAT) and (st == ST_HOLDING or st == ST_RELEASING) and \
                t - on < _RAMP_MS + self.period_ms:
            blank(self, KIND_ARTEFACT, on, t, t, self.cur[R_SEQ])[R_MARKS] = marks | M_CUT
            ev = EV_END
        elif st == ST_HOLDING or st == ST_RELEASING:
            if st == ST_HOLDING:
                self.rel_min = self.hv[self.hpos - 1 if self.hpos else _HIST - 1]
                self.rel_t = t
            self.marks |= M_CUT
            self.state = ST_HOLDING      # offset where it was cut, not settled
            ev = self._end(t)
            self.state = ST_REST
        if self.state == ST_RECOVERING:
            ev |= self._verdict(t)
        self.state = ST_REST
        self.abd_on = False
        return ev

    def artefact(self, t0, t1, marks):
        """Report the unusable stretch t0..t1 (M_GAP or M_SATURATED) as an
        artefact record in done; detection resumes after it, learning the
        level afresh when the stretch was long. Call cut(t0) first."""
        return unusable(self, t0, t1, marks)

    def _verdict(self, t):
        if self.state != ST_RECOVERING:
            return 0            # a cough: no verdict owed
        return verdict(self, t)

    def finish(self, t):
        """End of recording: close what is open. Returns event flags."""
        ev = 0
        if self.state == ST_HOLDING or self.state == ST_RELEASING:
            self.rel_min = self.hv[self.hpos - 1 if self.hpos else _HIST - 1]
            if self.state == ST_HOLDING:
                self.rel_t = t
            ev |= self._end(t)
        if self.state == ST_RECOVERING:
            ev |= self._verdict(t)
            self.state = ST_REST
        return ev

    @staticmethod
    def snapshot(rec):
        """Copy a record to a tuple (allocates: host and tests, not per sample)."""
        return tuple(rec)
