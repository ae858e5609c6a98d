# The abdominal channel of SqueezeDetector d (two channels): its resting
# level, and straining seen on it alone: a sustained abdominal rise while the
# pelvic floor rests (bearing down without a lift), reported in d.abd
# (R_CHANNEL 1): EV_ABD_START once it has lasted abd_min_ms, EV_ABD_END when
# it is halfway back down. A function of the detector, not a class: its state
# is the detector's abd_* fields, and it replaces a method one for one.
# Per sample: small ints only.
from knip.record import EV_ABD_START, EV_ABD_END, KIND_BEARING_DOWN, TECH_PUSH, R_TECH, R_CHANNEL, \
    R_BASE, R_OFFSET, R_ENDED, R_PEAK, R_ABD_RISE, begin
from knip.thresholds import margin


def abdominal(d, t, a, rest, active):
    # One abdominal sample a; rest: the detector is at rest; active: it is
    # past a confirmed start (holding, releasing or recovering).
    c = d.cfg
    lv = d.abd_lvl
    base = lv.level()
    noise = lv.noise()
    on = noise * c.on_k10 // 10
    th = base + margin(noise, c.on_k10, d.ref_amp, c.abd_pct, d.min_abd)
    if not d.abd_on:
        if rest and a >= th:
            d.abd_on = True
            d.abd_t = t
            d.abd_peak = a
            d.abd_ref = base
            d.abd_sent = False
            d.abd_squeezed = False
        elif rest:
            lv.update(a, on)
        return 0
    if a > d.abd_peak:
        d.abd_peak = a
    if active:
        d.abd_squeezed = True
    ev = 0
    if not d.abd_sent and not d.abd_squeezed and t - d.abd_t >= c.abd_min_ms:
        d.abd_sent = True
        ev = EV_ABD_START
        x = d.abd
        d.seq += 1
        begin(x, d.seq, KIND_BEARING_DOWN, d.abd_t - d.delay, t)
        x[R_TECH] = TECH_PUSH
        x[R_CHANNEL] = 1
        x[R_BASE] = d.abd_ref
    if a * 2 < d.abd_ref + d.abd_peak:
        d.abd_on = False
        if d.abd_sent and not d.abd_squeezed:
            x = d.abd
            x[R_OFFSET] = t - d.delay
            x[R_ENDED] = t
            x[R_PEAK] = d.abd_peak
            x[R_ABD_RISE] = d.abd_peak - d.abd_ref
            ev |= EV_ABD_END
        # halfway down: pressure's level is where it was before the strain
        # (the halfway level left it high for seconds); EMG's is here
        lv.reset(d.abd_ref if c.band_k10 else a, lv.noise())
    return ev
