# What the synthetic user's signals are made of (simboard/synth.py): the
# band-passed noise of a working muscle and the shape of one contraction.
# Plain floats, the same on CPython and MicroPython. On MicroPython the
# per-sample methods are machine code (the native emitter: the same float
# operations as bytecode, so the same bits; 30,000 pressure samples of the
# woman alone in 0.6 s instead of 1.0-1.3 s on the unix port, the virtual
# trainer as a whole 7-9 % less CPU); the decorator does nothing on CPython.
import math

try:
    import micropython
except ImportError:                 # CPython: the kernels' stand-in
    from knip.kernels import micropython

TWO_PI = 2.0 * math.pi
_HALF_PI = 0.5 * math.pi
_PEAK_SCAN_S = 0.002    # resolution of the peak search over a hold


class Biquad:
    """RBJ 2nd-order low/high-pass in float, transposed direct form II."""

    def __init__(self, highpass, f, fs, q=0.7071067811865476):
        w = TWO_PI * f / fs
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

    @micropython.native
    def run(self, x):
        y = self.b0 * x + self.z1
        self.z1 = self.b1 * x - self.a1 * y + self.z2
        self.z2 = self.b2 * x - self.a2 * y
        return y


class BandNoise:
    """White Gaussian noise through a 20-450 Hz band-pass, scaled to unit RMS."""

    def __init__(self, rng, fs):
        lo_hz = min(450.0, 0.45 * fs)      # keep the corners below Nyquist
        hi_hz = min(20.0, 0.2 * lo_hz)
        self.rng = rng
        self.hp = Biquad(True, hi_hz, fs)
        self.lp = Biquad(False, lo_hz, fs)
        # output power for unit white input = energy of the impulse response
        energy = 0.0
        x = 1.0
        for _ in range(int(5.0 * fs / hi_hz) + 64):
            y = self.lp.run(self.hp.run(x))
            energy += y * y
            x = 0.0
        self.hp.z1 = self.hp.z2 = self.lp.z1 = self.lp.z2 = 0.0
        self.scale = 1.0 / math.sqrt(energy)

    @micropython.native
    def next(self):
        return self.scale * self.lp.run(self.hp.run(self.rng.gauss()))


class Event:
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
        self.w1 = TWO_PI * trem_hz[0]
        self.w2 = TWO_PI * trem_hz[1]
        self.p1 = trem_ph[0]
        self.p2 = trem_ph[1]
        self.end = end
        self.s_rise = False
        self.wander = None      # EMG: [(w, phase, weight)] of the slow wander
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

    @micropython.native
    def _hold_level(self, s):
        g = math.exp(-self.k * s) if self.k else 1.0
        if self.wander is not None:
            # EMG: the hold's amplitude wanders (recruitment and firing rates
            # change): a sum of slow sines, trem its standard deviation
            # (a coefficient of variation), fading in like the tremor; it
            # never drops below a fifth of the level
            w = 0.0
            for a, p, x in self.wander:
                w += x * math.sin(a * s + p)
            g *= max(0.2, 1.0 + self.trem * (1.0 - math.exp(-s / 0.3)) * w)
        elif self.trem:
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
            top = self.trem if self.wander is None else self.trem * sum(x for _, _, x in self.wander)
            if self.k:
                smax = min(smax, math.log(1.0 + top) / self.k + 0.01)
            for i in range(1, int(smax / _PEAK_SCAN_S) + 1):
                g = self._hold_level(i * _PEAK_SCAN_S)
                if g > best:
                    best, best_s = g, i * _PEAK_SCAN_S
        return self.t1 + best_s, best

    @micropython.native
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
