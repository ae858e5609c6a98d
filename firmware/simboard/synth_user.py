# The synthetic user herself (simboard/synth.py describes the model): a
# seeded PRNG that gives the same stream on CPython and MicroPython, her
# traits, and SyntheticUser, who follows cues one sample at a time.
import math

from simboard.synth_shapes import TWO_PI as _TWO_PI, BandNoise, Event, micropython

_M32 = 0xFFFFFFFF
_INV24 = 1.0 / 16777216.0

# PRNG streams drawn from one seed, so that e.g. the sample rate never
# changes the events and the abdominal channel never changes the main one.
S_TRAITS, S_EVENTS, S_PLAN, S_NOISE, S_ABD_NOISE, S_EMG, S_ABD_EMG, S_MOTION = range(1, 9)
# EMG holds' slow wander: only EMG sessions draw from it and only pressure
# sessions from S_MOTION, so the two share a number (each keeps the draws it
# was tuned on)
S_WANDER = S_MOTION


def _mix32(x):
    x &= _M32
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & _M32
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & _M32
    return x ^ (x >> 16)


class Rng:
    """xorshift32 with explicit masks; uniforms carry 24 bits (exact floats)."""

    def __init__(self, seed=0, stream=0):
        self.state = _mix32(_mix32(seed) + stream * 0x9E3779B9) or 0x6D2B79F5
        self._spare = None

    @micropython.native
    def next32(self):
        x = self.state
        x ^= (x << 13) & _M32
        x ^= x >> 17
        x ^= (x << 5) & _M32
        self.state = x
        return x

    @micropython.native
    def random(self):
        """Uniform in [0, 1)."""
        return (self.next32() >> 8) * _INV24

    def uniform(self, a, b):
        return a + (b - a) * self.random()

    @micropython.native
    def gauss(self):
        """Standard normal (Box-Muller; the second value is kept for the next call)."""
        g = self._spare
        if g is not None:
            self._spare = None
            return g
        u1 = ((self.next32() >> 8) + 1) * _INV24     # (0, 1]: log is finite
        a = _TWO_PI * self.random()
        r = math.sqrt(-2.0 * math.log(u1))
        self._spare = r * math.sin(a)
        return r * math.cos(a)


def _clamp(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


def make_user(seed=0, **traits):
    """User traits drawn from the seed; keyword arguments override any of them.

    All draws happen whatever is overridden, so overriding one trait never
    changes the others.
    """
    r = Rng(seed, S_TRAITS)
    u = {
        # cmH2O, maximal squeeze: 8-90, log-uniform (mean ~34; REFERENCE 3:
        # 35 +- 23, "very weak" 7.5-14.5, "strong" above 60.6)
        "mvc": 8.0 * math.exp(2.42 * r.random()),
        "mvc_uv": r.uniform(15.0, 90.0),       # uV RMS, maximal squeeze (Glazer: 50 +- 26)
        "rest_uv": r.uniform(2.0, 6.0),        # uV RMS, relaxed pelvic floor
        "abd_rest_uv": r.uniform(3.0, 8.0),    # uV RMS, relaxed abdominals
        "effort": r.uniform(0.7, 1.0),         # fraction of MVC used per squeeze
        "fatigue": r.uniform(0.05, 0.3),       # pressure lost over a 10 s hold
        "relaxes": r.random() < 0.65,          # bool, or probability per squeeze
        "residual": r.uniform(0.25, 0.45),     # non-relaxed: residual / amplitude
        "relax_tau_s": r.uniform(0.5, 1.5),    # decay of a relaxed residual
        "tone_tau_s": r.uniform(3.0, 6.0),     # decay of a non-relaxed residual
        "p_co": r.uniform(0.0, 0.3),           # squeeze done as co-contraction
        "p_push": r.uniform(0.0, 0.1),         # squeeze cue answered by bearing down
        "reaction_s": r.uniform(0.2, 0.5),     # cue to movement
        "rest_jitter": r.uniform(0.1, 0.3),    # relative spread of rest lengths
        "rise_s": r.uniform(0.4, 1.2),         # pressure rise of a slow squeeze
        "release_s": r.uniform(0.3, 0.8),      # pressure release
        "emg_rise_s": r.uniform(0.05, 0.2),
        "emg_release_s": r.uniform(0.05, 0.3),
        "tremor": r.uniform(0.005, 0.02),      # hold tremor / amplitude
        "baseline": r.uniform(5.0, 15.0),      # cmH2O at rest
        "abd_baseline": r.uniform(8.0, 20.0),
        # breathing: 6-24 breaths a minute (quiet adults breathe 12-20; slow
        # and deep during relaxation practice); intra-abdominal pressure
        # swings a few cmH2O with each breath, deeper in some women, and the
        # probe sees most of it: 0.5-3 cmH2O peak to peak on it
        "resp_hz": r.uniform(0.1, 0.4),
        "resp_amp": r.uniform(0.25, 1.5),      # cmH2O on the vaginal channel (half p-p)
        "abd_resp_amp": r.uniform(1.0, 3.0),   # cmH2O on the abdominal channel
        "noise": r.uniform(0.1, 0.4),          # pressure sensor noise sigma
        "drift": r.uniform(0.0, 2.0),          # cmH2O, slow baseline wander
        # phases and periods of the slow processes
        "_ph": [r.uniform(0.0, _TWO_PI) for _ in range(6)],
        "_per": [r.uniform(120.0, 400.0), r.uniform(50.0, 150.0),
                 r.uniform(20.0, 60.0), r.uniform(90.0, 300.0)],
        # rises start gently (S-shaped, as force builds up) or at once
        "s_rise": r.random() < 0.5,
        # EMG: the heart's QRS picked up by the electrodes (half the users),
        # R wave amplitude uV, heart rate (both draws happen either way)
        "ecg_uv": r.uniform(10.0, 150.0) * (r.random() < 0.5),
        "hr_bpm": r.uniform(55.0, 100.0),
        # pressure: an air-filled probe warms to body temperature after
        # insertion (or slowly leaks): a drift of -2..+5 cmH2O settling with
        # a time constant of 1-3 minutes; breath-to-breath depth varies by
        # 10-40 %; movements while she rests (bumps per minute of long rest
        # when a session asks for them). Drawn last: older draws stay.
        "warm": r.uniform(-2.0, 5.0),
        "warm_tau_s": r.uniform(60.0, 200.0),
        "resp_var": r.uniform(0.1, 0.4),
        # habits with fixed defaults (no draws: older seeds stay the same)
        "max_hold_s": None,                    # lets go after this long, whatever the cue
        "early_s": 0.0,                        # squeezes again this long before the cue
        "pain_before": None,                   # 0-10 entered at the pain check-ins
        "pain_after": None,
    }
    for k in traits:
        if k not in u:
            raise ValueError("unknown user trait: " + k)
        u[k] = traits[k]
    return u


class SyntheticUser:
    """A user who follows cues, sampled one step at a time.

    signal: "pressure" (cmH2O) or "emg" (uV at the electrodes).
    rate_hz: default 50 (pressure) or 1000 (EMG).
    user: trait overrides (see make_user), or a full trait dict.
    snr_db: EMG only; 20*log10(plateau RMS / background noise RMS) where the
            plateau RMS is the nominal squeeze level rest_uv + mvc_uv*effort.
            None turns the background noise off.
    abd: simulate the abdominal channel (default: on for pressure, off for EMG).
    offset, gain: output = gain * signal + offset (e.g. 2048 for ADC counts).

    After each step, `level` holds the noise-free pressure or the EMG
    activation envelope (uV RMS) and `clean` the signal without sensor or
    background noise (both before gain and offset); `abd_level`, `abd_clean`
    likewise.
    """

    def __init__(self, signal="pressure", rate_hz=None, seed=0, user=None,
                 snr_db=20.0, abd=None, offset=0.0, gain=1.0, keep_truth=True):
        if signal not in ("pressure", "emg"):
            raise ValueError("signal must be 'pressure' or 'emg'")
        self.signal = signal
        self.emg = signal == "emg"
        if rate_hz is None:
            rate_hz = 1000 if self.emg else 50
        self.rate = rate_hz
        self.seed = seed
        if user is not None and "_ph" in user:
            self.traits = user
        else:
            self.traits = make_user(seed, **(user or {}))
        self.abd_on = (not self.emg) if abd is None else bool(abd)
        self.offset = offset
        self.gain = gain
        self.keep_truth = keep_truth
        self.truth = []
        self.n = 0
        self._events = []
        self._rng = Rng(seed, S_EVENTS)
        self._noise = Rng(seed, S_NOISE)
        self._abd_noise = Rng(seed, S_ABD_NOISE)
        self._wander = Rng(seed, S_WANDER)     # EMG holds' slow wander (own stream:
                                               # the other draws stay as they were)
        tr = self.traits
        dt = 1.0 / rate_hz
        # residual tone: fast part from relaxed squeezes, slow from the others
        self.tone_fast = 0.0
        self.tone_slow = 0.0
        self._decay_fast = math.exp(-dt / tr["relax_tau_s"])
        self._decay_slow = math.exp(-dt / tr["tone_tau_s"])
        self.snr_db = snr_db
        if self.emg:
            self._muscle = BandNoise(Rng(seed, S_EMG), rate_hz)
            self._abd_muscle = BandNoise(Rng(seed, S_ABD_EMG), rate_hz) if self.abd_on else None
            ref = tr["rest_uv"] + tr["mvc_uv"] * tr["effort"]
            self.noise_rms = 0.0 if snr_db is None else ref / 10.0 ** (snr_db / 20.0)
        else:
            self.noise_rms = tr["noise"]
            # _pressure_sample's constants, each the float it computed per
            # sample (a session stays the same to the last bit)
            per = tr["_per"]
            self._resp_w = _TWO_PI * tr["resp_hz"]
            self._var_per = 0.7 * per[2]
            self._abd_d = 0.5 * tr["drift"]
            self._abd_resp = tr["abd_resp_amp"] if tr["abd_resp_amp"] > 1.2 * tr["resp_amp"] else 1.2 * tr["resp_amp"]
        self.level = self.clean = 0.0
        self.abd_level = self.abd_clean = 0.0
        self._moves = []            # pressure: movements planned (move())
        self.moves = []             # ... and their truth: {kind, start_s, end_s}

    @property
    def t(self):
        """Time (s) of the next sample."""
        return self.n / self.rate

    @property
    def busy(self):
        """True while an event is planned or in progress."""
        return len(self._events) > 0

    # ---- planning -------------------------------------------------------

    def _reaction(self):
        return self.traits["reaction_s"] * self._rng.uniform(0.7, 1.3)

    def _jit(self, x, lo, hi):
        return _clamp(x * self._rng.uniform(0.8, 1.25), lo, hi)

    def cue(self, action, dur=None, at=None):
        """Tell the user what to do now (or at time `at`, s).

        action: "squeeze" (dur = seconds until the relax cue; None waits for
        cue("relax")), "relax", "cough", "push" (dur = seconds of straining,
        onset to offset; None draws 2-6 s), "rest" (nothing to do).
        Returns the event's truth dict (filled in when its timing is known).
        """
        if at is None:
            at = self.t
        if action == "rest":
            return None
        if action == "relax":
            return self._relax(at)
        if action == "squeeze":
            ev = self._squeeze(at, dur)
        elif action == "cough":
            ev = self._cough(at)
        elif action == "push":
            ev = self._push(at, at + self._reaction(), dur, None)
        else:
            raise ValueError("unknown action: " + str(action))
        ev.truth = {
            "kind": ev.kind, "technique": ev.technique, "cue_s": at,
            "onset_s": ev.t0, "peak_s": None, "offset_s": None,
            "amplitude": None, "abd_amplitude": None, "relaxed": ev.relaxed,
            "residual": 0.0, "rise_s": ev.rise, "hold_s": None,
            "release_s": ev.release,
        }
        if ev.kind == "squeeze":
            self._tone_at_onset(ev)
        ev.finish_truth()
        self._events.append(ev)
        if self.keep_truth:
            self.truth.append(ev.truth)
        return ev.truth

    def _tone_at_onset(self, ev):
        # The tone earlier squeezes left, still there when this one starts.
        tr = self.traits
        dt = ev.t0 - self.t
        tone = (self.tone_fast * math.exp(-dt / tr["relax_tau_s"])
                + self.tone_slow * math.exp(-dt / tr["tone_tau_s"]))
        ev.truth["tone_before"] = round(tone, 1)    # the same at any sample rate

    def _relax(self, at):
        tr = None
        for ev in self._events:
            if ev.t2 is None:
                release_at = at + self._reaction()
                ev.set_hold(max(0.0, release_at - ev.t1))
                tr = ev.finish_truth()
        return tr

    def _hold_for(self, t0, rise, at, hold_cue):
        """Plateau length when the relax cue comes hold_cue s after `at`."""
        if hold_cue is None:
            return None
        return max(0.0, at + hold_cue + self._reaction() - (t0 + rise))

    def _squeeze(self, at, hold_cue):
        tr = self.traits
        r = self._rng
        t0 = at + self._reaction()
        u = r.random()
        if u < tr["p_push"]:
            return self._push(at, t0, None, hold_cue, True)
        technique = "co_contraction" if u < tr["p_push"] + tr["p_co"] else "lift"
        abd_ratio = r.uniform(0.6, 0.9) if technique == "co_contraction" else r.uniform(0.0, 0.2)
        p_relax = tr["relaxes"]
        relaxed = r.random() < (1.0 if p_relax is True else (0.0 if p_relax is False else p_relax))
        if relaxed:
            end = r.uniform(0.0, 0.04)
        elif self.emg:
            end = _clamp(tr["residual"] + r.uniform(-0.05, 0.05), 0.25, 0.5)
        else:
            # incomplete relaxation of varied depth: 20-60 % of the squeeze
            end = _clamp(tr["residual"] + r.uniform(-0.2, 0.2), 0.22, 0.6)
        spread = r.uniform(-0.1, 0.1)          # squeeze-to-squeeze effort
        fatigue = self._jit(tr["fatigue"], 0.05, 0.3)
        built = False
        if self.emg:
            # half the spread keeps each plateau's RMS near the nominal level
            # that sets the SNR; a hold's EMG is unsteady (Glazer's hold
            # variability: 10-30 % over seconds) and fades with fatigue
            amp = tr["mvc_uv"] * tr["effort"] * (1.0 + 0.5 * spread)
            rise = self._jit(tr["emg_rise_s"], 0.05, 0.2)
            slow = r.uniform(0.2, 1.5)   # REFERENCE 3: a full squeeze rises in ~1-1.5 s
            if hold_cue is None or hold_cue > 2.0:
                rise = slow             # a hold is built up, a flick snapped
                built = True            # ... smoothly: S-shaped whoever she is
            release = self._jit(tr["emg_release_s"], 0.05, 0.3)
            fatigue *= 0.7
            trem = r.uniform(0.1, 0.3)
        else:
            amp = tr["mvc"] * tr["effort"] * (1.0 + spread)
            rise = self._jit(tr["rise_s"], 0.3, 1.5)
            if r.random() < 0.15:
                # a slow build-up: 1.5-2.5 s (REFERENCE 3: a full squeeze
                # rises in ~1-1.5 s; a weak or tired one takes longer)
                rise = r.uniform(1.5, 2.5)
            if hold_cue is not None:
                rise = min(rise, max(0.3, 0.5 * hold_cue))   # quick squeezes peak by ~0.5 s
            release = self._jit(tr["release_s"], 0.3, 1.0)
            trem = tr["tremor"] * r.uniform(0.7, 1.3)
        trem_hz = (r.uniform(2.0, 4.0), r.uniform(4.0, 7.0))
        if self.emg:
            trem_hz = (trem_hz[0] * 0.25, trem_hz[1] * 0.4)     # 0.5-1 Hz and 1.6-2.8 Hz
        trem_ph = (r.uniform(0.0, _TWO_PI), r.uniform(0.0, _TWO_PI))
        k = -math.log(1.0 - fatigue) / 10.0
        hold = self._hold_for(t0, rise, at, hold_cue)
        if tr["max_hold_s"] is not None:
            # she gives up early: the plateau ends after max_hold_s, cue or not
            mh = max(0.0, tr["max_hold_s"] - rise)
            hold = mh if hold is None else min(hold, mh)
        ev = Event("squeeze", technique, t0, rise, hold, release, amp,
                    abd_ratio * amp, k, trem, trem_hz, trem_ph, end)
        ev.relaxed = relaxed
        if self.emg:
            # A held contraction's EMG amplitude wanders slowly: motor units
            # are recruited and dropped, firing rates drift (0.3-2 Hz, a
            # coefficient of variation of 10-30 % over a hold; Glazer's hold
            # variability), on top of the fatigue trend. Three sines, one
            # per band, weights giving trem as the standard deviation.
            w = self._wander
            x = math.sqrt(2.0 / 3.0)
            ev.wander = [(_TWO_PI * w.uniform(lo, hi), w.uniform(0.0, _TWO_PI), x)
                         for lo, hi in ((0.3, 0.6), (0.6, 1.2), (1.2, 2.0))]
        # A slow voluntary build-up starts gently whoever she is: force (and
        # EMG) rises along a smooth S from zero rate (minimum-jerk profiles of
        # voluntary movement and force); only a snapped flick may start at
        # its steepest.
        ev.s_rise = tr["s_rise"] or built
        return ev

    def _cough(self, at):
        r = self._rng
        t0 = at + self._reaction()
        if self.emg:
            amp = self.traits["mvc_uv"] * r.uniform(0.4, 1.0)  # reflex burst
            abd_amp = r.uniform(40.0, 100.0)
            rise = r.uniform(0.04, 0.1)
            total = r.uniform(0.15, 0.35)
        else:
            amp = r.uniform(30.0, 100.0)
            abd_amp = amp * r.uniform(1.0, 1.25)   # vaginal sensor sees 0.8-1.0x
            rise = r.uniform(0.1, 0.25)
            total = r.uniform(max(0.3, rise + 0.15), 0.7)
        return Event("cough", None, t0, rise, 0.0, total - rise, amp, abd_amp)

    def _push(self, at, t0, dur, hold_cue, from_squeeze=False):
        """Bearing down: the abdominal channel leads, the vaginal one follows."""
        r = self._rng
        if self.emg:
            abd_amp = r.uniform(30.0, 80.0)
            amp = self.traits["mvc_uv"] * r.uniform(0.1, 0.3)
            rise = r.uniform(0.1, 0.3)
            release = r.uniform(0.1, 0.3)
            trem = 0.0
        else:
            abd_amp = r.uniform(20.0, 60.0)
            amp = abd_amp * r.uniform(0.8, 1.0)
            rise = r.uniform(0.4, 1.0)
            release = r.uniform(0.4, 1.0)
            trem = r.uniform(0.03, 0.06)         # strain wobble
        trem_hz = (r.uniform(0.4, 0.8), r.uniform(0.8, 1.2))
        trem_ph = (r.uniform(0.0, _TWO_PI), r.uniform(0.0, _TWO_PI))
        if from_squeeze:
            hold = self._hold_for(t0, rise, at, hold_cue)   # None: wait for relax
        else:
            if dur is None:
                dur = r.uniform(2.0, 6.0)
            hold = max(0.0, dur - rise - release)
        return Event("bearing_down", "push", t0, rise, hold, release, amp,
                      abd_amp, 0.0, trem, trem_hz, trem_ph, 0.0)

    def move(self, at, rng):
        """A movement while she rests (pressure only), at time `at`: a wobble
        as she shifts or reaches (pressure swings up and down, 0.5-2.5 Hz) or
        a lean that presses on the abdomen (one hump); 3-15 cmH2O over
        0.5-3 s on the probe, 0.5-1 of it on the abdominal channel (it is
        abdominal pressure moving the probe). Returns its end time."""
        dur = rng.uniform(0.5, 3.0)
        amp = rng.uniform(3.0, 15.0)
        hump = rng.random() < 0.3
        f = (rng.uniform(0.5, 2.5), rng.uniform(0.5, 2.5))
        ph = (rng.uniform(0.0, _TWO_PI), rng.uniform(0.0, _TWO_PI))
        abd = rng.uniform(0.5, 1.0)
        if not hump:
            # the wobble's largest excursion, for scaling it to amp
            top = 1e-9
            for i in range(1, 200):
                top = max(top, abs(self._wobble(i * dur / 200, dur, f, ph)))
            amp /= top
        self._moves.append((at, dur, amp, hump, f, ph, abd))
        self.moves.append({"kind": "motion", "start_s": at, "end_s": at + dur})
        return at + dur

    @staticmethod
    def _wobble(u, dur, f, ph):
        w = 0.5 - 0.5 * math.cos(_TWO_PI * u / dur)
        return w * (math.sin(_TWO_PI * f[0] * u + ph[0]) + math.sin(_TWO_PI * f[1] * u + ph[1]))

    def _motion(self, t):
        # (probe, abdomen) contributions of movements in progress
        pf = ab = 0.0
        for m in self._moves:
            u = t - m[0]
            if u <= 0.0 or u >= m[1]:
                continue
            if m[3]:
                g = m[2] * (0.5 - 0.5 * math.cos(_TWO_PI * u / m[1]))
            else:
                g = m[2] * self._wobble(u, m[1], m[4], m[5])
            pf += g
            ab += g * m[6]
        return pf, ab

    # ---- sampling -------------------------------------------------------

    @micropython.native
    def step(self):
        """Next sample: (value, abd_value); abd_value is None without that channel."""
        t = self.n / self.rate
        self.n += 1
        pf = 0.0
        ab = 0.0
        busy = False
        evs = self._events
        i = 0
        while i < len(evs):
            ev = evs[i]
            if ev.t3 is not None and t >= ev.t3:
                # the release is over: its residual becomes resting tone
                if ev.kind == "squeeze":
                    if ev.relaxed:
                        self.tone_fast += ev.end * ev.amp
                    else:
                        self.tone_slow += ev.end * ev.amp
                evs.pop(i)
                continue
            ev.eval(t)
            pf += ev.pf
            ab += ev.abd
            if t > ev.t0:
                busy = True
            i += 1
        tone = self.tone_fast + self.tone_slow
        if not busy:
            # tone holds during events so that amplitude and residual are
            # exactly the rise and the step above the pre-event level (0.0
            # stays 0.0: no float made for it)
            if self.tone_fast:
                self.tone_fast *= self._decay_fast
            if self.tone_slow:
                self.tone_slow *= self._decay_slow
        if self.emg:
            return self._emg_sample(pf + tone, ab)
        return self._pressure_sample(t, pf + tone, ab)

    @micropython.native
    def _pressure_sample(self, t, pf, ab):
        tr = self.traits
        ph = tr["_ph"]
        per = tr["_per"]
        w = _TWO_PI * t
        sin = math.sin
        # breathing: slightly irregular rate, uneven (inspiration is shorter
        # than expiration) and of varying depth; abdomen and probe move together
        a = self._resp_w * t + ph[0] + 0.6 * sin(w / per[2] + ph[1])
        breath = (sin(a) + 0.25 * sin(2.0 * a)) * (1.0 + tr["resp_var"] * sin(w / self._var_per + ph[5]))
        drift = tr["drift"] * (0.6 * sin(w / per[0] + ph[2]) + 0.4 * sin(w / per[1] + ph[3]))
        drift += tr["warm"] * (1.0 - math.exp(-t / tr["warm_tau_s"]))
        mv = ma = 0.0
        if self._moves:
            mv, ma = self._motion(t)
        level = tr["baseline"] + drift + tr["resp_amp"] * breath + pf + mv
        self.level = self.clean = level
        x = self.gain * (level + self.noise_rms * self._noise.gauss()) + self.offset
        if not self.abd_on:
            return x, None
        abd_drift = self._abd_d * sin(w / per[3] + ph[4])
        abd_level = tr["abd_baseline"] + abd_drift + self._abd_resp * breath + ab + ma
        self.abd_level = self.abd_clean = abd_level
        y = self.gain * (abd_level + self.noise_rms * self._abd_noise.gauss()) + self.offset
        return x, y

    @micropython.native
    def _ecg(self):
        # One QRS complex per beat (Q, R, S as Gaussians, uV): contamination,
        # not muscle, so it is left out of `clean` and of the SNR.
        tr = self.traits
        a = tr["ecg_uv"]
        if not a:
            return 0.0
        per = 60.0 / tr["hr_bpm"]
        u = ((self.n - 1) / self.rate + tr["_ph"][5] * per) % per - 0.05
        if u > 0.06:
            return 0.0
        return a * (math.exp(-(u / 0.010) ** 2) - 0.35 * math.exp(-((u - 0.025) / 0.012) ** 2)
                    - 0.15 * math.exp(-((u + 0.02) / 0.008) ** 2))

    @micropython.native
    def _emg_sample(self, env, ab):
        tr = self.traits
        env += tr["rest_uv"]
        self.level = env
        self.clean = env * self._muscle.next()
        ecg = self._ecg()
        x = self.gain * (self.clean + ecg + self.noise_rms * self._noise.gauss()) + self.offset
        if not self.abd_on:
            return x, None
        abd_env = tr["abd_rest_uv"] + ab
        self.abd_level = abd_env
        self.abd_clean = abd_env * self._abd_muscle.next()
        # the abdominal electrodes sit nearer the heart
        y = self.gain * (self.abd_clean + 2.0 * ecg + self.noise_rms * self._abd_noise.gauss()) + self.offset
        return x, y
