# Coach: a verdict for every cued squeeze and every rest window, the way a
# physiotherapist would give it (docs/COACHING.md): squeezed on cue, reached
# the target, held, relaxed fully, rested at least as long as she squeezed,
# technique (two channels only), and for rest windows a low, steady level.
#
# The app feeds it: sample(level) per sample (integers only, nothing
# allocated), event() with detector records, and the cue calls from the
# program task. Finished verdicts (tuples, V_* fields) wait in .ready.
from array import array
from knip.fixed import const
from knip import programs as PG
from knip.detector import ST_REST
from knip.record import (EV_START, EV_END, EV_RELAXED, EV_NOT_RELAXED, EV_ABD_END,
                         KIND_SQUEEZE, KIND_COUGH, KIND_BEARING_DOWN, TECH_LIFT, TECH_PUSH,
                         R_SEQ, R_KIND, R_ONSET, R_PEAK, R_PEAK_T, R_BASE, R_OFFSET, R_HOLD_MS,
                         R_RELEASE_MS, R_RESIDUAL, R_RELAXED, R_TECH, R_ABD_RISE, N_REC)

NA = const(-999999)

# checks: bit i is CHECK_NAMES[i]
C_ON_CUE = const(1)
C_TARGET = const(2)
C_HELD = const(4)
C_RELAXED = const(8)
C_RESTED = const(16)
C_TECHNIQUE = const(32)
C_STEADY = const(64)
C_LOW = const(128)
CHECK_NAMES = ("on_cue", "target", "held", "relaxed", "rested", "technique", "steady", "low")

# flags
F_PROVISIONAL = const(1)    # no calibrated MVC: % of her best squeeze so far
F_PUSHED = const(2)         # bore down instead of lifting
F_EXTRA = const(4)          # squeezes in a rest window
F_STOPPED = const(8)        # the session ended during this rep
F_COUGH = const(16)         # the rep's squeeze looked like a cough (kept as her answer)

# verdict fields (all ints; NA where unknown). Times in ms, levels in counts.
V_T = const(0)              # when judged (board ms)
V_PHASE = const(1)
V_KIND = const(2)           # programs.K_*
V_REP = const(3)
V_REPS = const(4)
V_PASSED = const(5)         # check bits passed
V_JUDGED = const(6)         # check bits judged
V_FLAGS = const(7)
V_SEQ = const(8)            # detector squeeze number, NA if none
V_CUE_T = const(9)
V_ON = const(10)            # cued squeeze ms (0 in rest windows)
V_OFF = const(11)           # cued rest ms
V_TARGET = const(12)        # % MVC
V_MVC = const(13)           # reference amplitude used (counts)
V_REACTION = const(14)      # onset - cue
V_AMP = const(15)           # peak above the pre-squeeze level
V_HOLD = const(16)          # time at >= 50 % of its own rise
V_ENDURANCE = const(17)     # longest time at >= 50 % MVC
V_SQUEEZE = const(18)       # onset to the start of the release
V_REST = const(19)          # start of the release to the next onset (or the next cue)
V_RESIDUAL = const(20)      # level after the release minus the resting level
V_TECH = const(21)          # detector TECH_*, NA with one channel
V_RISE = const(22)          # onset to peak
V_RELEASE = const(23)
V_MEAN = const(24)          # rest windows: mean level; squeezes: level before it
V_SD = const(25)            # rest windows: standard deviation
V_BASELINE = const(26)      # the session's resting level it is compared with
V_REST_MEAN = const(27)     # squeezes: level in the rest after it (from 1 s after the relax cue)
V_REST_SD = const(28)
N_V = const(29)
V_NAMES = ("t", "phase", "kind", "rep", "reps", "passed", "judged", "flags", "seq", "cue_t", "on_ms",
           "off_ms", "target_pct", "mvc", "reaction_ms", "amp", "hold_ms", "endurance_ms", "squeeze_ms",
           "rest_ms", "residual", "tech", "rise_ms", "release_ms", "mean", "sd", "baseline", "rest_mean",
           "rest_sd")

_EARLY_MS = const(300)      # onset this long before the cue still counts as on cue
_LATE_MS = const(1500)      # ... and this long after it
_REST_TOL_MS = const(500)   # rest may fall this much (or 10 %) short of the squeeze
_TARGET_TOL = const(5)      # % MVC below the target still counts
_SETTLE_MS = const(1000)    # rest windows: skip the first second
_RELAX_WAIT_MS = const(3000)  # a rep waits this long for its relaxation verdict
_FOLD = const(32)           # samples per fold of the window sums


class Coach:
    def __init__(self, period_ms, mvc=0, floor=20, baseline=NA):
        self.period = period_ms
        self.mvc = mvc              # calibrated amplitude (counts), 0 if none
        self.best = 0               # strongest rise this session
        self.floor = floor          # smallest tolerance for rest levels (counts)
        self.baseline = baseline    # resting level (counts) once known
        self.ready = []             # finished verdicts (tuples)
        self.v = array('i', [NA] * N_V)       # the rep in progress
        self.c = array('i', [NA] * N_V)       # a rep waiting for its relaxation verdict
        self.last = array('i', [0] * N_REC)   # last finished squeeze record
        self.open = False
        self.closing = False
        self.close_by = 0
        self.window = False         # in a rest window
        self.acc = False            # summing levels (rest windows, rests after squeezes)
        self.in_squeeze_win = False
        self.rule = 0
        # squeeze in progress (from EV_START to EV_END)
        self.sq_seq = NA
        self.sq_on = False
        self.sq_onset = 0
        self.sq_thr = 0
        self.run = 0
        self.run_best = 0
        self.pending = NA           # seq of a squeeze that started in a rest window
        self.pending_onset = 0
        self.det_state = ST_REST
        # rest window sums
        self.wref = 0
        self.s1 = 0
        self.s2 = 0
        self.k = 0
        self.n = 0
        self.f1 = 0.0
        self.f2 = 0.0
        self.w_from = 0

    def ref(self):
        return self.mvc if self.mvc > 0 else self.best

    # ---- per sample (hot path: small ints only) --------------------------

    def sample(self, t, level):
        if self.sq_on:
            if level >= self.sq_thr:
                self.run += self.period
                if self.run > self.run_best:
                    self.run_best = self.run
            else:
                self.run = 0
        if self.acc and t >= self.w_from:
            d = level - self.wref
            self.s1 += d
            self.s2 += d * d
            self.k += 1
            if self.k >= _FOLD:
                self._fold()

    def sample_run(self, ts, i, n, before, level):
        """A run of n samples from ts[i]: all but the last at `before` (the
        level until the chain's last update), the last at `level`."""
        if n > 1:
            self.samples(ts, i, n - 1, before)
        self.sample(ts[i + n - 1], level)

    def samples(self, ts, i, n, level):
        """As n calls of sample(ts[j], level) for j from i, the same level
        throughout (EMG: the envelope between two of its blocks), times
        rising. The window sums fold at the same samples as sample()'s."""
        if self.sq_on:
            if level >= self.sq_thr:
                self.run += self.period * n
                if self.run > self.run_best:
                    self.run_best = self.run
            else:
                self.run = 0
        if not self.acc:
            return
        w = self.w_from
        if ts[i] < w:
            if ts[i + n - 1] < w:
                return              # the whole run before the window opens
            while ts[i] < w:
                i += 1
                n -= 1
        d = level - self.wref
        while n:
            c = _FOLD - self.k
            if c > n:
                c = n
            self.s1 += d * c
            self.s2 += d * d * c
            self.k += c
            n -= c
            if self.k >= _FOLD:
                self._fold()

    def _fold(self):
        self.f1 += self.s1
        self.f2 += self.s2
        self.n += self.k
        self.s1 = self.s2 = self.k = 0

    # ---- detector events ---------------------------------------------------

    def event(self, flags, t, rec, det_state):
        self.det_state = det_state
        seq = rec[R_SEQ]
        if flags & EV_START:
            self._started(t, rec)
        if flags & EV_END:
            if seq == self.sq_seq:
                self.sq_on = False
            self._keep(rec)
            if rec[R_KIND] == KIND_SQUEEZE:
                amp = rec[R_PEAK] - rec[R_BASE]
                if amp > self.best:
                    self.best = amp
            if self.open and self.v[V_SEQ] == seq:
                self._fill(self.v, rec)
            elif seq == self.pending and rec[R_KIND] != KIND_SQUEEZE:
                self.pending = NA
        if flags & (EV_RELAXED | EV_NOT_RELAXED):
            self._keep(rec)
            for v in (self.v, self.c):
                if v[V_SEQ] == seq and v[V_KIND] >= PG.K_MVC:
                    v[V_JUDGED] |= C_RELAXED
                    if rec[R_RELAXED] == 1:
                        v[V_PASSED] |= C_RELAXED
                    v[V_RESIDUAL] = rec[R_RESIDUAL]
            if self.closing and self.c[V_SEQ] == seq:
                self._release(t)
        if flags & EV_ABD_END and self.open and self.in_squeeze_win and self.v[V_SEQ] == NA:
            # the abdomen strained while the pelvic floor stayed quiet: a push
            if rec[R_ONSET] >= self.v[V_CUE_T] - _EARLY_MS:
                self.v[V_FLAGS] |= F_PUSHED
                self.v[V_TECH] = TECH_PUSH

    def _keep(self, rec):
        for i in range(N_REC):
            self.last[i] = rec[i]

    def _started(self, t, rec):
        # (its start again: the detector re-timed it, knip.kinds shifted)
        again = self.sq_on and rec[R_SEQ] == self.sq_seq
        self.sq_seq = rec[R_SEQ]
        self.sq_on = True
        self.sq_onset = rec[R_ONSET]
        ref = self.mvc
        # endurance: time above half her MVC (or half this squeeze's rise)
        self.sq_thr = rec[R_BASE] + (ref >> 1 if ref > 0 else (1 << 29))
        self.run = 0
        self.run_best = 0
        v = self.v
        if again:
            if v[V_SEQ] == self.sq_seq:
                v[V_PASSED] &= ~C_ON_CUE        # her reaction judged from the new onset
                self._attach(v, self.sq_seq, rec[R_ONSET])
                return
            if self.pending == self.sq_seq:
                self.pending = NA               # (for this rep or the next, afresh)
        elif self.window:
            v[V_FLAGS] |= F_EXTRA
        if self.open and v[V_SEQ] == NA and v[V_KIND] >= PG.K_MVC and \
                (self.in_squeeze_win or rec[R_ONSET] - v[V_CUE_T] <= v[V_ON] + _LATE_MS):
            self._attach(v, rec[R_SEQ], rec[R_ONSET])
        elif self.pending == NA:
            self.pending = rec[R_SEQ]        # before its cue: for the next rep
            self.pending_onset = rec[R_ONSET]

    def _attach(self, v, seq, onset):
        v[V_SEQ] = seq
        v[V_REACTION] = onset - v[V_CUE_T]
        v[V_JUDGED] |= C_ON_CUE
        if -_EARLY_MS <= v[V_REACTION] <= _LATE_MS:
            v[V_PASSED] |= C_ON_CUE

    def _fill(self, v, rec):
        """A finished detector record of the rep's squeeze."""
        kind = rec[R_KIND]
        if kind == KIND_COUGH:
            # it started on her squeeze cue: her answer to it, whatever its
            # speed; noted, never thrown away
            v[V_FLAGS] |= F_COUGH
            kind = KIND_SQUEEZE
        if kind != KIND_SQUEEZE:
            v[V_SEQ] = NA
            v[V_JUDGED] &= ~C_ON_CUE
            v[V_PASSED] &= ~C_ON_CUE
            v[V_REACTION] = NA
            if kind == KIND_BEARING_DOWN:
                v[V_FLAGS] |= F_PUSHED
                v[V_TECH] = TECH_PUSH
            return                      # an artefact (cut short): not her answer
        amp = rec[R_PEAK] - rec[R_BASE]
        v[V_AMP] = amp
        v[V_MEAN] = rec[R_BASE]
        v[V_HOLD] = rec[R_HOLD_MS]
        v[V_RISE] = rec[R_PEAK_T] - rec[R_ONSET]      # onset to peak
        v[V_RELEASE] = rec[R_RELEASE_MS]
        v[V_SQUEEZE] = rec[R_OFFSET] - rec[R_RELEASE_MS] - rec[R_ONSET]
        v[V_ENDURANCE] = self.run_best if self.mvc > 0 and rec[R_SEQ] == self.sq_seq else rec[R_HOLD_MS]
        if rec[R_ABD_RISE] >= 0:
            v[V_TECH] = rec[R_TECH]
        if rec[R_RELAXED] >= 0 and not v[V_JUDGED] & C_RELAXED:
            v[V_JUDGED] |= C_RELAXED
            if rec[R_RELAXED] == 1:
                v[V_PASSED] |= C_RELAXED
            v[V_RESIDUAL] = rec[R_RESIDUAL]

    # ---- the program's cues -----------------------------------------------

    def _begin(self, t, phase, kind, rep, reps, on, off, tgt):
        v = self.v
        for i in range(N_V):
            v[i] = NA
        v[V_PHASE] = phase
        v[V_KIND] = kind
        v[V_REP] = rep
        v[V_REPS] = reps
        v[V_PASSED] = 0
        v[V_JUDGED] = 0
        v[V_FLAGS] = 0 if self.mvc > 0 else F_PROVISIONAL
        v[V_CUE_T] = t
        v[V_ON] = on
        v[V_OFF] = off
        v[V_TARGET] = tgt
        v[V_BASELINE] = self.baseline
        self.open = True

    def squeeze(self, t, phase, kind, rep, reps, on, off, tgt, rule):
        """Squeeze cue of a rep (finish the previous rep first)."""
        self._begin(t, phase, kind, rep, reps, on, off, tgt)
        self.rule = rule
        self.in_squeeze_win = True
        if self.pending != NA:
            # she started before the cue: that squeeze is this rep's
            seq = self.pending
            self.pending = NA
            self._attach(self.v, seq, self.pending_onset)
            if self.last[R_SEQ] == seq:
                self._fill(self.v, self.last)
        elif self.sq_on and self.v[V_SEQ] == NA:
            self._attach(self.v, self.sq_seq, self.sq_onset)

    def relax(self, t, level):
        """Relax cue: the squeeze window is over; measure the rest."""
        self.in_squeeze_win = False
        self._acc_start(t, level, _SETTLE_MS)

    def _acc_start(self, t, level, settle):
        self.acc = True
        self.w_from = t + settle
        self.wref = level
        self.s1 = self.s2 = self.k = self.n = 0
        self.f1 = self.f2 = 0.0

    def _acc_end(self):
        """(mean, sd) of the summed levels, or (NA, NA)."""
        self.acc = False
        self._fold()
        n = self.n
        if not n:
            return NA, NA
        m = self.f1 / n
        var = self.f2 / n - m * m
        return self.wref + int(m + 0.5 if m >= 0 else m - 0.5), int(var ** 0.5 + 0.5) if var > 0 else 0

    def rest_more(self, t):
        """ms the rest rule still wants after the nominal rest (0: go on)."""
        v = self.v
        if not self.open or self.rule == PG.RULE_FIXED or self.pending != NA:
            return 0
        if v[V_SEQ] == NA:
            return 0                      # nothing squeezed: nothing to rest from
        if self.sq_on and self.sq_seq == v[V_SEQ] or v[V_SQUEEZE] == NA:
            return 200                    # still squeezing
        rel = v[V_CUE_T] + v[V_REACTION] + v[V_SQUEEZE]     # start of her release
        left = v[V_SQUEEZE] - (t - rel)
        if self.rule == PG.RULE_RELAXED and self.det_state != ST_REST:
            left = left if left > 200 else 200
        return left if left > 0 else 0

    def finish(self, t, stopped=False):
        """End of the rep's rest: judge it (the relaxation verdict may follow)."""
        if not self.open:
            return
        self.in_squeeze_win = False
        v = self._close(t, stopped)
        if self.acc:
            v[V_REST_MEAN], v[V_REST_SD] = self._acc_end()
        ref = v[V_MVC]
        if v[V_FLAGS] & F_PUSHED:
            v[V_JUDGED] |= C_TECHNIQUE
        if v[V_SEQ] == NA:
            self._emit(v)
            return
        kind = v[V_KIND]
        amp = v[V_AMP]
        if amp != NA:
            if v[V_TARGET] > 0 and kind != PG.K_MVC and ref > 0:
                v[V_JUDGED] |= C_TARGET
                if amp * 100 >= (v[V_TARGET] - _TARGET_TOL) * ref:
                    v[V_PASSED] |= C_TARGET
            on = v[V_ON]
            need = on // 2 if kind == PG.K_FAST else on - (on // 5 if on // 5 > 1000 else 1000)
            v[V_JUDGED] |= C_HELD
            if v[V_HOLD] >= need:
                v[V_PASSED] |= C_HELD
            if v[V_TECH] != NA:
                v[V_JUDGED] |= C_TECHNIQUE
                if v[V_TECH] == TECH_LIFT:
                    v[V_PASSED] |= C_TECHNIQUE
            # rest: from the start of her release to the next onset (or now)
            rel = v[V_CUE_T] + (v[V_REACTION] if v[V_REACTION] != NA else 0) + v[V_SQUEEZE]
            nxt = self.pending_onset if self.pending != NA else t
            v[V_REST] = nxt - rel
            # she must rest as long as she squeezed (at most as long as the cue
            # asked: a late release under fixed timing is not her cutting the rest)
            sq = v[V_SQUEEZE] if v[V_SQUEEZE] < v[V_ON] else v[V_ON]
            tol = v[V_ON] // 10 if v[V_ON] // 10 > _REST_TOL_MS else _REST_TOL_MS
            v[V_JUDGED] |= C_RESTED
            if self.rule == PG.RULE_FIXED:
                # fixed timing (Glazer): she rested if she waited for the next cue
                if self.pending == NA or self.pending_onset >= t - _EARLY_MS:
                    v[V_PASSED] |= C_RESTED
            elif v[V_REST] >= sq - tol:
                v[V_PASSED] |= C_RESTED
        else:
            # still squeezing at the end of her rest: she never let go
            v[V_JUDGED] |= C_RELAXED | C_RESTED
            v[V_REST] = 0
        if not v[V_JUDGED] & C_RELAXED and not stopped:
            # wait a little for the detector's relaxation verdict
            for i in range(N_V):
                self.c[i] = v[i]
            self.closing = True
            self.close_by = t + _RELAX_WAIT_MS
            return
        self._emit(v)

    def _close(self, t, stopped):
        """The rep or window in progress ends now; its reference MVC is fixed."""
        self.open = False
        v = self.v
        v[V_T] = t
        if stopped:
            v[V_FLAGS] |= F_STOPPED
        v[V_MVC] = self.ref()
        return v

    def _release(self, t):
        self.closing = False
        self._emit(self.c)

    def poll(self, t):
        if self.closing and t >= self.close_by:
            self._release(t)

    def _emit(self, v):
        self.ready.append(tuple(v))

    # ---- rest and relax windows --------------------------------------------

    def window_start(self, t, phase, kind, rep, reps, dur, level):
        self._begin(t, phase, kind, rep, reps, 0, dur, 0)
        self.rule = PG.RULE_FIXED
        self.window = True
        self._acc_start(t, level, _SETTLE_MS if dur > 2 * _SETTLE_MS else 0)

    def window_end(self, t, stopped=False):
        if not self.window:
            return
        self.window = False
        v = self._close(t, stopped)
        v[V_MEAN], v[V_SD] = self._acc_end()
        if v[V_MEAN] != NA:
            ref = v[V_MVC]
            tol = ref * 8 // 100
            if tol < self.floor:
                tol = self.floor
            v[V_JUDGED] |= C_STEADY
            if v[V_SD] <= tol:
                v[V_PASSED] |= C_STEADY
            if self.baseline == NA:
                self.baseline = v[V_MEAN]      # the session's first rest sets it
            elif v[V_KIND] == PG.K_RELAX or v[V_PHASE] > 0:
                v[V_JUDGED] |= C_LOW
                if v[V_MEAN] - self.baseline <= tol:
                    v[V_PASSED] |= C_LOW
            v[V_BASELINE] = self.baseline
        self._emit(v)

    def stop(self, t):
        """The session ends: judge what is open now."""
        if self.window:
            self.window_end(t, True)
        elif self.open:
            self.finish(t, True)
        if self.closing:
            self._release(t)
