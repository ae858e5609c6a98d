# The hardware-in-the-loop rig's "user": the DAC (GPIO25) wired to the
# sensor's ADC pin plays a woman who follows the coach's cues exactly, so
# the board measures squeezes it knows the timing of (hardware/HIL.md).
# step() runs in the sampler's soft IRQ just before the ADC is read, so it
# uses small ints only: a first-order ramp in 1/256 DAC codes.
from micropython import const

_SHIFT = const(3)          # ramp time constant: 8 samples (80 ms at 100 Hz)
_CUE_SQUEEZE = const(1)    # knip.programs.CUE_SQUEEZE
_CUE_HOLD = const(4)       # knip.programs.CUE_HOLD


class DacUser:
    def __init__(self, machine, cfg):
        self.dac = machine.DAC(machine.Pin(cfg["dac_pin"]))
        self.rest = cfg["rest_code"] << 8
        self.squeeze = cfg["squeeze_code"] << 8
        self.level = self.rest
        self.target = self.rest
        self.cues = 0
        self.dac.write(self.rest >> 8)

    def cue(self, cue):
        self.cues += 1
        self.target = self.squeeze if cue in (_CUE_SQUEEZE, _CUE_HOLD) else self.rest

    def step(self, t):
        lv = self.level
        lv += (self.target - lv) >> _SHIFT
        if lv != self.level:
            self.level = lv
            self.dac.write(lv >> 8)

    def info(self):
        return {"rest_code": self.rest >> 8, "squeeze_code": self.squeeze >> 8, "cues": self.cues,
                "code": self.level >> 8}
