# Calibration: her resting level and noise from a rest period, and her MVC
# from the strongest squeezes (or given by a physiotherapist). Streaming and
# integer-only, so the device can run it while she lies still.
from array import array
from knip.fixed import const

_TOP = const(3)


class Calibration:
    def __init__(self):
        self.n = 0
        self.sum = 0
        self.dev = 0          # running mean |v - mean| << 4
        self.peaks = array('i', [0] * _TOP)
        self.npeaks = 0
        self.mvc_given = 0

    def add_rest(self, v):
        self.n += 1
        self.sum += v
        if self.n >= 4096:     # keep the sum a small int; the mean is unchanged
            self.sum >>= 1
            self.n >>= 1
        d = v - self.sum // self.n
        if d < 0:
            d = -d
        # EMA over ~16 samples once the mean has settled a little
        self.dev += ((d << 4) - self.dev) >> (4 if self.n > 16 else 1)

    def add_peak(self, level):
        """A squeeze's peak level; the three strongest are kept."""
        p = self.peaks
        if self.npeaks < _TOP:
            p[self.npeaks] = level
            self.npeaks += 1
        else:
            lo = 0
            for i in range(1, _TOP):
                if p[i] < p[lo]:
                    lo = i
            if level > p[lo]:
                p[lo] = level

    def set_mvc(self, level):
        self.mvc_given = level

    def ready(self):
        return self.n > 0

    def rest_level(self):
        return self.sum // self.n if self.n else 0

    def noise(self):
        return self.dev >> 4

    def mvc(self):
        """Given MVC, else the mean of the two strongest squeezes (0 if none)."""
        if self.mvc_given:
            return self.mvc_given
        k = self.npeaks
        if k == 0:
            return 0
        p = sorted(self.peaks[:k])
        if k == 1:
            return p[0]
        return (p[-1] + p[-2]) // 2

    def apply(self, det):
        det.calibrate(self.rest_level(), self.noise(), self.mvc())
