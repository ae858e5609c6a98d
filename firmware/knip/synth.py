"""Synthetic pelvic floor user with ground truth: vaginal pressure or surface EMG.

Runs unchanged on CPython and MicroPython: a home-made xorshift32 PRNG gives
the same integer stream everywhere, so one seed gives the same session on both.

Streaming core: `SyntheticUser.cue(action, dur, at)` plans what the user does
(after a reaction time) and returns the event's ground truth; `step()` returns
the next `(value, abd_value)` sample without building lists. `render(plan)` and
the `*_session()` generators run it over a whole plan and return lists (or feed
a `sink`, which MicroPython prefers: long float lists fragment its heap).

Pressure (cmH2O): baseline 5-15 + drift (<= 2, periods of minutes) + breathing
(0.2-0.3 Hz, 0.2-1 on the probe, 1-3 on the abdomen) + residual tone + events
+ sensor noise (sigma 0.1-0.4). Squeeze: MVC 20-60 x effort 0.7-1.0, quarter-
sine or (half the users) S-shaped half-cosine rise 0.3-1.5 s, hold losing 5-30 %
per 10 s with 0.5-2 % tremor, half-cosine release 0.3-1.0 s down to the residual.
EMG (uV): white noise through a 20-450 Hz band-pass, scaled by an activation
envelope (rest 2-6 uV RMS + tone + events; squeezes mvc_uv 15-90 x effort, rise
50-200 ms (holds 0.2-1.5 s), release 50-300 ms; holds unsteady by 10-30 % at
0.5-3 Hz) + white
background noise set by snr_db + for half the users the heart's QRS complexes
(R wave 10-150 uV, twice that on the abdominal channel, 55-100 bpm).
Residual tone: relaxed squeezes leave <= 4 % (tau 0.5-1.5 s), others 20-50 %
(25-50 % on EMG; tau 3-6 s); tone is held while any event is in progress.
Technique: lift (abdomen <= 0.2 A), co-contraction (abdomen 0.6-0.9 A), push
(abdomen 20-60 cmH2O, probe 0.8-1.0 x that). Cough: both channels, 30-100
cmH2O on the probe, peak 0.1-0.25 s, total 0.3-0.7 s (EMG bursts < 0.4 s).

Ground truth per event (dict):
  kind        "squeeze" | "cough" | "bearing_down"
  technique   "lift" | "co_contraction" | "push" (None for coughs)
  cue_s       when the user was cued
  onset_s     activation starts to rise
  peak_s      max of the event's own noise-free contribution (excludes
              baseline, drift, respiration, tone from earlier events, noise)
  offset_s    release ends: the signal is back at its post-event level
  amplitude   peak above the pre-event level (cmH2O, or uV RMS for EMG)
  abd_amplitude  the same on the abdominal channel
  relaxed     squeezes: True if the user let go fully (None otherwise)
  residual    level above the pre-squeeze level right after the release
              (relaxed <= 4 % of amplitude, not relaxed 20-50 %; 0 otherwise)
  rise_s, hold_s, release_s   phase durations (offset = onset + their sum)
"""
import math

_M32 = 0xFFFFFFFF
_TWO_PI = 2.0 * math.pi
_HALF_PI = 0.5 * math.pi
_INV24 = 1.0 / 16777216.0
_COUGH_SLOT_S = 1.5     # time a ("cough",) action takes in a plan
_PEAK_SCAN_S = 0.002    # resolution of the peak search over a hold

# PRNG streams drawn from one seed, so that e.g. the sample rate never
# changes the events and the abdominal channel never changes the main one.
_S_TRAITS, _S_EVENTS, _S_PLAN, _S_NOISE, _S_ABD_NOISE, _S_EMG, _S_ABD_EMG = range(1, 8)


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

    def next32(self):
        x = self.state
        x ^= (x << 13) & _M32
        x ^= x >> 17
        x ^= (x << 5) & _M32
        self.state = x
        return x

    def random(self):
        """Uniform in [0, 1)."""
        return (self.next32() >> 8) * _INV24

    def uniform(self, a, b):
        return a + (b - a) * self.random()

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
    r = Rng(seed, _S_TRAITS)
    u = {
        "mvc": r.uniform(20.0, 60.0),          # cmH2O, maximal squeeze
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
        "resp_hz": r.uniform(0.2, 0.3),
        "resp_amp": r.uniform(0.2, 1.0),       # cmH2O on the vaginal channel
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


class _Biquad:
    """RBJ 2nd-order low/high-pass in float, transposed direct form II."""

    def __init__(self, highpass, f, fs, q=0.7071067811865476):
        w = _TWO_PI * f / fs
        c = math.cos(w)
        al = math.sin(w) / (2.0 * q)
        if highpass:
            b0 = 0.5 * (1.0 + c)
            b1 = -(1.0 + c)
        else:
            b0 = 0.5 * (1.0 - c)
            b1 = 1.0 - c
        a0 = 1.0 + al
        self.b0 = b0 / a0
        self.b1 = b1 / a0
        self.b2 = b0 / a0
        self.a1 = -2.0 * c / a0
        self.a2 = (1.0 - al) / a0
        self.z1 = 0.0
        self.z2 = 0.0

    def run(self, x):
        y = self.b0 * x + self.z1
        self.z1 = self.b1 * x - self.a1 * y + self.z2
        self.z2 = self.b2 * x - self.a2 * y
        return y


class _BandNoise:
    """White Gaussian noise through a 20-450 Hz band-pass, scaled to unit RMS."""

    def __init__(self, rng, fs):
        lo_hz = min(450.0, 0.45 * fs)      # keep the corners below Nyquist
        hi_hz = min(20.0, 0.2 * lo_hz)
        self.rng = rng
        self.hp = _Biquad(True, hi_hz, fs)
        self.lp = _Biquad(False, lo_hz, fs)
        # output power for unit white input = energy of the impulse response
        energy = 0.0
        x = 1.0
        for _ in range(int(5.0 * fs / hi_hz) + 64):
            y = self.lp.run(self.hp.run(x))
            energy += y * y
            x = 0.0
        self.hp.z1 = self.hp.z2 = self.lp.z1 = self.lp.z2 = 0.0
        self.scale = 1.0 / math.sqrt(energy)

    def next(self):
        return self.scale * self.lp.run(self.hp.run(self.rng.gauss()))


class _Event:
    """One contraction: quarter-sine rise, hold with fatigue and tremor,
    half-cosine release to a residual fraction (vaginal channel only).

    Shape is normalised (1 at the end of the rise); `amp` and `abd_amp` scale it.
    t2 (release start) is None while a hold waits for a "relax" cue.
    """

    def __init__(self, kind, technique, t0, rise, hold, release, amp, abd_amp,
                 k=0.0, trem=0.0, trem_hz=(0.0, 0.0), trem_ph=(0.0, 0.0), end=0.0):
        self.kind = kind
        self.technique = technique
        self.t0 = t0
        self.rise = rise
        self.release = release
        self.t1 = t0 + rise
        self.amp = amp
        self.abd_amp = abd_amp
        self.k = k
        self.trem = trem
        self.w1 = _TWO_PI * trem_hz[0]
        self.w2 = _TWO_PI * trem_hz[1]
        self.p1 = trem_ph[0]
        self.p2 = trem_ph[1]
        self.end = end
        self.s_rise = False
        self.relaxed = None
        self.pf = 0.0
        self.abd = 0.0
        self.truth = None
        self.set_hold(hold)

    def set_hold(self, hold):
        if hold is None:
            self.t2 = self.t3 = None
            return
        self.hold = hold
        self.t2 = self.t1 + hold
        self.t3 = self.t2 + self.release
        self.l2 = self._hold_level(hold)

    def _hold_level(self, s):
        g = math.exp(-self.k * s) if self.k else 1.0
        if self.trem:
            # tremor fades in so the hold starts exactly at the rise's end
            g *= 1.0 + self.trem * (1.0 - math.exp(-s / 0.3)) * 0.5 * (
                math.sin(self.w1 * s + self.p1) + math.sin(self.w2 * s + self.p2))
        return g

    def peak(self):
        """(time, normalised level) of the maximum; scans only where the
        tremor can lift the hold above its starting level."""
        best, best_s = 1.0, 0.0
        if self.trem and self.hold > 0.0:
            smax = self.hold
            if self.k:
                smax = min(smax, math.log(1.0 + self.trem) / self.k + 0.01)
            for i in range(1, int(smax / _PEAK_SCAN_S) + 1):
                g = self._hold_level(i * _PEAK_SCAN_S)
                if g > best:
                    best, best_s = g, i * _PEAK_SCAN_S
        return self.t1 + best_s, best

    def eval(self, t):
        """Sets self.pf, self.abd: the contribution of this event at time t."""
        if t <= self.t0:
            self.pf = self.abd = 0.0
            return
        if t < self.t1:
            u = (t - self.t0) / self.rise
            g = 0.5 - 0.5 * math.cos(math.pi * u) if self.s_rise else math.sin(_HALF_PI * u)
            self.pf = g * self.amp
            self.abd = g * self.abd_amp
        elif self.t2 is None or t < self.t2:
            g = self._hold_level(t - self.t1)
            self.pf = g * self.amp
            self.abd = g * self.abd_amp
        elif t < self.t3:
            h = 0.5 + 0.5 * math.cos(math.pi * (t - self.t2) / self.release)
            self.pf = (self.end + (self.l2 - self.end) * h) * self.amp
            self.abd = self.l2 * h * self.abd_amp
        else:
            self.pf = self.end * self.amp
            self.abd = 0.0

    def finish_truth(self):
        tr = self.truth
        if self.t3 is None:
            return tr
        peak_s, g = self.peak()
        tr["peak_s"] = peak_s
        tr["offset_s"] = self.t3
        tr["amplitude"] = g * self.amp
        tr["abd_amplitude"] = g * self.abd_amp
        tr["residual"] = self.end * self.amp
        tr["hold_s"] = self.hold
        if self.kind == "squeeze":
            # relaxed fully means back at her resting level, not at the
            # plateau an earlier squeeze left: its tone counts too
            left = tr["tone_before"] + tr["residual"]
            amp = tr["amplitude"]
            if left > 0.15 * amp:
                tr["relaxed"] = False
            elif left > 0.06 * amp:
                tr["relaxed"] = None        # in between: not scored
            else:
                tr["relaxed"] = self.relaxed
        return tr


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
        self._rng = Rng(seed, _S_EVENTS)
        self._noise = Rng(seed, _S_NOISE)
        self._abd_noise = Rng(seed, _S_ABD_NOISE)
        tr = self.traits
        dt = 1.0 / rate_hz
        # residual tone: fast part from relaxed squeezes, slow from the others
        self.tone_fast = 0.0
        self.tone_slow = 0.0
        self._decay_fast = math.exp(-dt / tr["relax_tau_s"])
        self._decay_slow = math.exp(-dt / tr["tone_tau_s"])
        self.snr_db = snr_db
        if self.emg:
            self._muscle = _BandNoise(Rng(seed, _S_EMG), rate_hz)
            self._abd_muscle = _BandNoise(Rng(seed, _S_ABD_EMG), rate_hz) if self.abd_on else None
            ref = tr["rest_uv"] + tr["mvc_uv"] * tr["effort"]
            self.noise_rms = 0.0 if snr_db is None else ref / 10.0 ** (snr_db / 20.0)
        else:
            self.noise_rms = tr["noise"]
        self.level = self.clean = 0.0
        self.abd_level = self.abd_clean = 0.0

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
        else:
            lo = 0.25 if self.emg else 0.2
            end = _clamp(tr["residual"] + r.uniform(-0.05, 0.05), lo, 0.5)
        spread = r.uniform(-0.1, 0.1)          # squeeze-to-squeeze effort
        fatigue = self._jit(tr["fatigue"], 0.05, 0.3)
        if self.emg:
            # half the spread keeps each plateau's RMS near the nominal level
            # that sets the SNR; a hold's EMG is unsteady (Glazer's hold
            # variability: 10-30 % over seconds) and fades with fatigue
            amp = tr["mvc_uv"] * tr["effort"] * (1.0 + 0.5 * spread)
            rise = self._jit(tr["emg_rise_s"], 0.05, 0.2)
            slow = r.uniform(0.2, 1.5)   # REFERENCE 3: a full squeeze rises in ~1-1.5 s
            if hold_cue is None or hold_cue > 2.0:
                rise = slow             # a hold is built up, a flick snapped
            release = self._jit(tr["emg_release_s"], 0.05, 0.3)
            fatigue *= 0.7
            trem = r.uniform(0.1, 0.3)
        else:
            amp = tr["mvc"] * tr["effort"] * (1.0 + spread)
            rise = self._jit(tr["rise_s"], 0.3, 1.5)
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
        ev = _Event("squeeze", technique, t0, rise, hold, release, amp,
                    abd_ratio * amp, k, trem, trem_hz, trem_ph, end)
        ev.relaxed = relaxed
        ev.s_rise = tr["s_rise"]
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
        return _Event("cough", None, t0, rise, 0.0, total - rise, amp, abd_amp)

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
        return _Event("bearing_down", "push", t0, rise, hold, release, amp,
                      abd_amp, 0.0, trem, trem_hz, trem_ph, 0.0)

    # ---- sampling -------------------------------------------------------

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
            # exactly the rise and the step above the pre-event level
            self.tone_fast *= self._decay_fast
            self.tone_slow *= self._decay_slow
        if self.emg:
            return self._emg_sample(pf + tone, ab)
        return self._pressure_sample(t, pf + tone, ab)

    def _pressure_sample(self, t, pf, ab):
        tr = self.traits
        ph = tr["_ph"]
        per = tr["_per"]
        # breathing: slightly irregular rate; abdomen and probe move together
        breath = math.sin(_TWO_PI * tr["resp_hz"] * t + ph[0]
                          + 0.6 * math.sin(_TWO_PI * t / per[2] + ph[1]))
        d = tr["drift"]
        drift = d * (0.6 * math.sin(_TWO_PI * t / per[0] + ph[2])
                     + 0.4 * math.sin(_TWO_PI * t / per[1] + ph[3]))
        level = tr["baseline"] + drift + tr["resp_amp"] * breath + pf
        self.level = self.clean = level
        x = self.gain * (level + self.noise_rms * self._noise.gauss()) + self.offset
        if not self.abd_on:
            return x, None
        abd_drift = 0.5 * d * math.sin(_TWO_PI * t / per[3] + ph[4])
        abd_level = tr["abd_baseline"] + abd_drift + tr["abd_resp_amp"] * breath + ab
        self.abd_level = self.abd_clean = abd_level
        y = self.gain * (abd_level + self.noise_rms * self._abd_noise.gauss()) + self.offset
        return x, y

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


# ---- whole sessions -----------------------------------------------------

def plan_cues(plan):
    """[(t_s, action, dur)] for a plan, and its total length in seconds.

    A plan is a list of actions: ("rest", s), ("squeeze", s until relax),
    ("cough",), ("push", s). Actions follow one another; a cough takes 1.5 s.
    """
    cues = []
    t = 0.0
    for a in plan:
        name = a[0]
        dur = a[1] if len(a) > 1 else None
        if name != "rest":
            cues.append((t, name, dur))
        if name == "cough":
            t += _COUGH_SLOT_S
        elif dur is not None:
            t += dur
    return cues, t


def rest_intervals(truth, duration_s, guard_s=0.5, min_s=1.0):
    """Stretches with no event in progress, trimmed by guard_s at both ends."""
    spans = sorted((e["onset_s"], e["offset_s"]) for e in truth if e["offset_s"] is not None)
    out = []
    start = 0.0
    for on, off in spans:
        if on - guard_s - start >= min_s:
            out.append([start, on - guard_s])
        start = max(start, off + guard_s)
    if duration_s - start >= min_s:
        out.append([start, duration_s])
    return out


def render(plan, signal="pressure", rate_hz=None, seed=0, snr_db=20.0, user=None,
           abd=None, offset=0.0, gain=1.0, keep_clean=False, sink=None):
    """Run a user through a plan. Returns (values, abd_values or None, truth, info).

    keep_clean adds info["clean"] (and "abd_clean"): the samples without noise.
    sink: if given, called as sink(value, abd_value) per sample instead of
    storing (values are then None). Use it on MicroPython, where long lists of
    floats fragment the heap.
    """
    su = SyntheticUser(signal, rate_hz, seed, user, snr_db, abd, offset, gain)
    cues, duration = plan_cues(plan)
    rate = su.rate
    n = int(duration * rate + 0.5)
    store = sink is None
    # preallocated: growing lists amid per-sample float garbage fragments
    # the MicroPython heap until a large realloc fails
    values = [0.0] * n if store else None
    abd_values = [0.0] * n if store and su.abd_on else None
    clean = [0.0] * n if keep_clean and store else None
    abd_clean = [0.0] * n if keep_clean and store and su.abd_on else None
    ci = 0
    for i in range(n):
        t = i / rate
        while ci < len(cues) and cues[ci][0] <= t:
            c = cues[ci]
            su.cue(c[1], c[2], at=c[0])
            ci += 1
        x, y = su.step()
        if not store:
            sink(x, y)
            continue
        values[i] = x
        if abd_values is not None:
            abd_values[i] = y
        if clean is not None:
            clean[i] = su.clean
            if abd_clean is not None:
                abd_clean[i] = su.abd_clean
    duration = n / rate
    rests = rest_intervals(su.truth, duration)
    units = "uV" if su.emg else "cmH2O"
    info = {
        "signal": signal, "rate_hz": rate, "units": units,
        "abd_units": units if su.abd_on else None,
        "n": n, "duration_s": duration, "seed": seed,
        "snr_db": snr_db if su.emg else None, "noise_rms": su.noise_rms,
        "offset": offset, "gain": gain,
        "rest_intervals": rests, "rest_s": sum(b - a for a, b in rests),
        "cues": cues, "user": su.traits,
    }
    if clean is not None:
        info["clean"] = clean
        info["abd_clean"] = abd_clean
    return values, abd_values, su.truth, info


def _session_user(seed, user):
    if user is not None and "_ph" in user:
        return user
    return make_user(seed, **(user or {}))


def _rest(rng, nominal, jitter, at_least):
    return max(at_least, nominal * (1.0 + jitter * rng.uniform(-1.0, 1.0)))


def _plan_start(seed, user):
    # The plan's random stream, the user's rest jitter, and 10-15 s of
    # settling rest before the first cue.
    r = Rng(seed, _S_PLAN)
    plan = [("rest", r.uniform(10.0, 15.0))]
    return r, _session_user(seed, user)["rest_jitter"], plan


def sprint_plan(seed=0, user=None, sets=3, reps=10):
    """Fast-fibre training: sets of quick ~1 s squeezes with 2.5-4.5 s rests."""
    r, j, plan = _plan_start(seed, user)
    for s in range(sets):
        for _ in range(reps):
            hold = r.uniform(0.8, 1.2)
            plan.append(("squeeze", hold))
            plan.append(("rest", _rest(r, 3.5, j, 2.5)))
        plan.append(("rest", r.uniform(20.0, 40.0) if s < sets - 1 else 8.0))
    return plan


def marathon_plan(seed=0, user=None, reps=5, hold_s=10.0):
    """Slow-fibre training: long holds, each followed by a rest at least as long."""
    r, j, plan = _plan_start(seed, user)
    for _ in range(reps):
        plan.append(("squeeze", hold_s))
        plan.append(("rest", hold_s * (1.0 + j * r.random()) + 1.0))
    plan.append(("rest", 8.0))
    return plan


def flicks_plan(seed=0, user=None, sets=2, reps=12):
    """Quick flicks (0.2-0.9 s squeezes) with short, uneven rests: the sprint
    set as she really does it, often squeezing again before she let go."""
    r, j, plan = _plan_start(seed, user)
    for s in range(sets):
        for _ in range(reps):
            plan.append(("squeeze", r.uniform(0.0, 0.5)))
            plan.append(("rest", _rest(r, 2.5, j, 1.2)))
        plan.append(("rest", r.uniform(15.0, 25.0) if s < sets - 1 else 8.0))
    return plan


def mixed_plan(seed=0, user=None, events=16):
    """Squeezes (quick and long), coughs (some double), pushes and long rests."""
    tr = _session_user(seed, user)
    r = Rng(seed, _S_PLAN)
    j = tr["rest_jitter"]
    n_sq = (events + 1) // 2
    n_cough = events // 4
    kinds = ["squeeze"] * n_sq + ["cough"] * n_cough + ["push"] * (events - n_sq - n_cough)
    for i in range(len(kinds) - 1, 0, -1):       # Fisher-Yates
        k = r.next32() % (i + 1)
        kinds[i], kinds[k] = kinds[k], kinds[i]
    plan = [("rest", r.uniform(10.0, 15.0))]
    for kind in kinds:
        if kind == "squeeze":
            dur = r.uniform(0.8, 1.5) if r.random() < 0.5 else r.uniform(3.0, 10.0)
            plan.append(("squeeze", dur))
        elif kind == "push":
            dur = r.uniform(2.0, 6.0)
            plan.append(("push", dur))
        else:
            dur = _COUGH_SLOT_S
            plan.append(("cough",))
            if r.random() < 0.3:
                plan.append(("cough",))
                dur += _COUGH_SLOT_S
        if r.random() < 0.25:
            rest = r.uniform(20.0, 45.0)           # long stretch for false alarms
        else:
            rest = _rest(r, 7.0, j, 4.0)
        plan.append(("rest", max(rest, dur + 1.5)))
    plan.append(("rest", 8.0))
    return plan


def _defaults(signal, rate_hz):
    if rate_hz is None:
        return 1000 if signal == "emg" else 50
    return rate_hz


def sprint_session(signal="pressure", rate_hz=None, seed=0, snr_db=20.0, user=None,
                   sets=3, reps=10, abd=None, offset=0.0, gain=1.0, keep_clean=False,
                   sink=None):
    """(values, abd_values or None, truth, info) for a sprint session."""
    tr = _session_user(seed, user)
    return render(sprint_plan(seed, tr, sets, reps), signal, _defaults(signal, rate_hz),
                  seed, snr_db, tr, abd, offset, gain, keep_clean, sink)


def marathon_session(signal="pressure", rate_hz=None, seed=0, snr_db=20.0, user=None,
                     reps=5, hold_s=10.0, abd=None, offset=0.0, gain=1.0,
                     keep_clean=False, sink=None):
    """(values, abd_values or None, truth, info) for a marathon session."""
    tr = _session_user(seed, user)
    return render(marathon_plan(seed, tr, reps, hold_s), signal, _defaults(signal, rate_hz),
                  seed, snr_db, tr, abd, offset, gain, keep_clean, sink)


def mixed_session(signal="pressure", rate_hz=None, seed=0, snr_db=20.0, user=None,
                  events=16, abd=None, offset=0.0, gain=1.0, keep_clean=False,
                  sink=None):
    """(values, abd_values or None, truth, info) with squeezes, coughs, pushes, rests."""
    tr = _session_user(seed, user)
    return render(mixed_plan(seed, tr, events), signal, _defaults(signal, rate_hz),
                  seed, snr_db, tr, abd, offset, gain, keep_clean, sink)
