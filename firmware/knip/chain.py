# Signal chains: raw integer samples in, detector events out.
#   pressure: low-pass biquad -> SqueezeDetector
#   EMG:      high-pass biquad (+ optional notch) -> RMS envelope (decimated)
#             -> SqueezeDetector at the envelope rate
from knip.filters import design_lowpass, design_highpass, design_notch, RmsEnvelope
from knip.detector import SqueezeDetector, DetectorConfig


def _period_ms(rate_hz):
    p = int(1000 / rate_hz + 0.5)
    return p if p > 0 else 1


class PressureChain:
    """Pressure counts (host scale: 20 counts per cmH2O) to squeeze events.

    min_rise: no rise smaller than this (counts; 40 = 2 cmH2O) starts a
    squeeze, so breathing and posture shifts are not counted.
    """

    signal = "pressure"

    def __init__(self, rate_hz, cfg=None, lowpass_hz=5.0, noise_floor=4, two_channel=False, min_rise=40):
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
        self.det = SqueezeDetector(_period_ms(rate_hz), cfg if cfg is not None else DetectorConfig("pressure"),
                                   noise_floor, delay, two_channel, min_rise)
        self.level = 0     # last conditioned value (for live displays)
        self.alevel = 0    # same for the abdominal channel
        self.started = False

    def push(self, t_ms, x, a=0):
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
        return self.det.update(t_ms, x, a)

    def finish(self, t_ms):
        return self.det.finish(t_ms)


class EmgChain:
    """Raw EMG counts (any DC offset) to squeeze events on the RMS envelope."""

    signal = "emg"

    def __init__(self, rate_hz, cfg=None, highpass_hz=20.0, notch_hz=0, block_ms=10, window_blocks=5,
                 noise_floor=8, two_channel=False):
        self.rate_hz = rate_hz
        self.two = two_channel
        self.hp = design_highpass(rate_hz, highpass_hz)
        self.hpa = design_highpass(rate_hz, highpass_hz) if two_channel else None
        self.notch = design_notch(rate_hz, notch_hz) if notch_hz and rate_hz > 2 * notch_hz else None
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
        self.level = 0
        self.alevel = 0
        self.started = False

    def push(self, t_ms, x, a=0):
        if not self.started:
            self.started = True
            self.hp.reset(x)
            if self.hpa is not None:
                self.hpa.reset(a)
            if self.notch is not None:
                self.notch.reset(0)
        y = self.hp.step(x)
        if self.notch is not None:
            y = self.notch.step(y)
        if self.enva is not None:
            e = self.enva.step(self.hpa.step(a))
            if e >= 0:
                self.alevel = e
        e = self.env.step(y)
        if e < 0:
            return 0
        self.level = e
        return self.det.update(t_ms, e, self.alevel)

    def finish(self, t_ms):
        return self.det.finish(t_ms)
