# Her resting tone and what happens around it (pressure mostly): the tone
# follows the breathing cycle's mean, holds on a residual plateau, follows a
# deep dip slowly; after an event (or at the start, or while the tone falls)
# she is recovering, and a dip then is that recovery, not a movement; the
# relaxation verdict leaves an unrelaxed squeeze's plateau. Functions over
# the detector's fields (knip.detector), as knip.onset and knip.relax are.
from knip.relax import judge, rest_of, relaxed_below
from knip.record import EV_NOT_RELAXED, R_PEAK, R_RESIDUAL
from knip.history import lowest


def relearn(d, v):
    # The warm-up learns her rest afresh: at the start, and after a gap, an
    # artefact her level did not come back from, a hum found. What noise was
    # learnt before bounds what the warm-up may learn (warmed): a squeeze
    # begun in those 1.5 s was learnt as noise, and its margin then hid her
    # squeezes for minutes. A warm-up cut short keeps the bound it had.
    if d.learnt and not d.lvl.learn:
        d.was_n = d.lvl.noise()
        d.was_tn = d.tone.noise()
    if d.cfg.breath_ms:
        # her first rest, or her first rest again: 1.5 s of a slow breath
        # hold less than its swing (onset_floor)
        d.early, d.early_t, d.early_lo = True, 0, v
    d.lvl.reset(v)
    d.tone.reset(v)


def rest_known(d, level, noise):
    # A calibration: her rest and noise are known; no warm-up, nothing to bound.
    d.lvl.reset(level, noise)
    d.tone.reset(level, noise)
    d.lvl.learn = d.tone.learn = d.abd_lvl.learn = False
    d.learnt = True
    d.was_n = d.was_tn = 0
    d.early = False


def rest_moved(d, level, noise):
    # A level shift: her rest is at `level` now (the fast level, the tone and
    # the smoothed level all start there).
    d.lvl.reset(level, noise)
    d.tone.reset(level, noise)
    d.sm_q = level << 4


def onset_floor(d, dt, v, th):
    # The threshold a rise must cross. In her first rest, until she has been
    # seen at rest for one slow breath, the noise does not hold her
    # breathing's swing yet: a rise must also pass the largest swing a probe
    # sees, from the lowest point seen (the level may sit on a crest). What
    # lies between the two is not learnt as rest (the detector): a breath's
    # crest is learnt from its flanks, and a weak squeeze taken for one
    # does not raise the noise over the squeezes after it. Called only while
    # d.early: the rest of a session pays no call a sample.
    d.early_t += dt
    b = d.cfg.breath_ms
    if d.early_t < b or v >= th and d.early_t < 2 * b:     # (it ends at rest)
        if v < d.early_lo:
            d.early_lo = v
        f = d.early_lo + d.min_on * d.cfg.breath_pct // 100
        return f if f > th else th
    d.early = False
    if v >= th:
        # 20 s of rest with her level between the two (a probe that
        # moved and stayed): that is her rest now
        d.lvl.reset(v, d.lvl.noise())
        d.tone.reset(v, d.tone.noise())
        return v + 1
    return th


def warmed(d):
    # The warm-up is over: from here the trackers learn slowly. If her level
    # moved in it by more than the onset margin of the noise it learnt (a
    # rise or a release; a sensor that is noisier now, or one noisy first
    # sample, moves it less), that noise is at most relearn_x times what it
    # was before.
    d.lvl.learn = d.tone.learn = d.abd_lvl.learn = False
    d.learnt = True
    x = d.cfg.relearn_x
    lv = d.lvl.level()
    n = d.lvl.noise()
    if not x or not d.was_n or (lv - d.v0 if lv > d.v0 else d.v0 - lv) * 10 <= n * d.cfg.on_k10:
        return
    if n > x * d.was_n:
        d.lvl.reset(lv, x * d.was_n)
    if d.tone.noise() > x * d.was_tn:
        d.tone.reset(d.tone.level(), x * d.was_tn)


def follow(d, v, gate):
    # The resting tone follows the signal smoothed over ~0.5 s: a tracker
    # that falls faster than it rises would sit in the dips of a noisy
    # envelope, not at its resting level.
    q = d.sm_q
    q += ((v << 4) - q) >> d.smshift
    d.sm_q = q
    at = d.abd_tone
    if at is not None:
        # the abdomen read the same way (its breathing is taken off the
        # verdict's residual, against this level)
        d.asm_q += ((d.abd_cur << 4) - d.asm_q) >> d.smshift
        at.update(d.asm_q >> 4, 1 << 20)
    if d.plateau and d.cfg.band_k10 and d.steady < d.cfg.plateau_hold_ms:
        return      # pressure: on a residual plateau the tone holds (until steady)
    if d.cfg.dip_pct and d.quiet_t <= d.last_t:
        # pressure, not recovering: a dip well below her tone (a
        # movement's, a slow one) is followed 4x slower, or climbing
        # back to her rest would read as a squeeze
        g = 3 * d.tone.noise()
        if (q >> 4) < d.tone.level() - (g if g > gate else gate):
            d.slow_n = (d.slow_n + 1) & 3
            if d.slow_n:
                return
    d.tone.update(q >> 4, gate)


def recovering(d, t, v, m):
    # Pressure, at rest: is she still recovering? Over once the signal is
    # back within a movement's margin of her tone (or recover_ms after the
    # event), and while her tone falls (a settling probe or tone: the
    # tone lags it) she is settling. The tone's fall is read every 2 s
    # over the 2 s before the last reading (a dip in the last 2 s before
    # a rise, a movement's own, must not count as settling): a 4 s tone
    # lags a steady fall by twice that.
    tone = d.tone.level()
    g = 3 * d.tone.noise()
    if g < m:
        g = m
    if t - d.tk_t >= 2000:
        d.tk_t = t
        d.tk_f0 = d.tk_f1
        d.tk_f1 = d.tk_a - tone
        d.tk_a = tone
        sm = d.sm_q >> 4
        if d.plateau:
            ch = sm - d.tk_s
            d.steady = d.steady + 2000 if -(g >> 1) <= ch <= g >> 1 else 0
        d.tk_s = sm
    if 2 * d.tk_f0 >= g:
        recover(d, t, 1 << 21 if d.tk_f0 == 1 << 20 else 1 << 20)   # (1 << 21: not read yet)
    elif d.quiet_t > t:
        if v < tone - g:
            d.back_t = t         # not back yet
        elif t - d.back_t >= 500 or t - d.rec_from >= d.cfg.recover_ms:
            d.quiet_t = t        # back for 0.5 s (not a rise passing through)
    return g


def recover(d, t, amp):
    # An event ended (or the session began, or her tone falls): until
    # her pressure is back at her rest, a dip below it by up to amp is
    # that recovery, not a movement.
    d.quiet_t = (1 << 30) - 1    # (later than any time)
    d.rec_from = t
    d.back_t = t
    d.rec_amp = amp


def window_add(d, t, v, a):
    # Recovering: sum the verdict window's samples (both channels).
    if not d.rec_half and t - d.rec_t >= d.cfg.relax_ms >> 1:
        # judge on the second half: the release's last tail settles
        d.rec_half = True
        d.rec_sum = d.rec_asum = d.rec_n = 0
    d.rec_sum += v
    d.rec_asum += a
    d.rec_n += 1
    if d.rec_n >= 2048:      # keep the sums small
        d.rec_sum >>= 1
        d.rec_asum >>= 1
        d.rec_n >>= 1


def verdict(d, t):
    # The relaxation verdict on the squeeze in done, from the recovery
    # window's mean; an unrelaxed one leaves her on its plateau.
    r = d.done
    level = d.rec_sum // d.rec_n if d.rec_n else d.rel_min
    if t - d.rec_t < d.cfg.relax_ms and not d.cfg.relax_power:
        # cut short by a new squeeze: she was down at the window's lowest
        # point (its mean holds the release's tail and the new rise's foot)
        lo = lowest(d, d.rec_t)
        if lo < level:
            level = lo
    if d.two and d.cfg.abd_comp and d.rec_n:
        # what the abdomen moved since the squeeze began (a breath) reaches
        # the probe too: that share of the level is not her pelvic floor
        level -= d.tx_q * (d.rec_asum // d.rec_n - d.abd_rest) >> 8
    band = d.tone.noise() * d.cfg.band_k10 // 10
    ev = judge(r, level, t, d.cfg, band)
    if ev == EV_NOT_RELAXED:
        # She stays on a plateau: it belongs to this squeeze until she is
        # back within the tolerance of her resting level. Its size is the
        # rise above rest (not above this squeeze's own base, which may be
        # a plateau already: a wobble on it must not start a chain of
        # squeezes).
        d.plateau = r[R_PEAK] - rest_of(r)
        # pressure: or a multiple of the plateau's own height, if less (a
        # low plateau left by a strong squeeze hid moderate ones from it)
        k = d.cfg.plateau_res * r[R_RESIDUAL]
        if 0 < k < d.plateau:
            d.plateau = k
        d.plateau_end = relaxed_below(r, d.cfg, band)
        d.sm_q = level << 4
        if d.cfg.band_k10:
            d.tk_t = t       # steady from here? (read every 2 s at rest)
            d.tk_s = level
    else:
        d.steady = 0
    return ev


def at_rest(d, t, v, base, on_th):
    """The onset threshold at rest (REST, RISING), raised where her tone says
    a rise is no new squeeze."""
    c = d.cfg
    if c.dip_pct:
        m = on_th - base
        g = recovering(d, t, v, m)
        tl = d.tone.level()
        if base < tl - 3 * d.tone.noise() and tl + g + m > on_th:
            # pressure: her level is below her tone (a slow dip, an
            # undershoot): climbing back to her rest is no squeeze
            # (nor a breath above a tone the dip dragged down)
            on_th = tl + g + m
    if d.plateau:
        # On the plateau of a squeeze she did not let go of: only a new
        # rise of plateau_pct of that squeeze is a new one.
        if d.sm_q >> 4 <= d.plateau_end:
            d.plateau = 0        # back at rest (judged smoothed, ~0.5 s)
            d.steady = 0
        else:
            p = d.plateau * c.plateau_pct // 100
            if base + p > on_th:
                on_th = base + p
    return on_th


def transmission(d, t, v, a):
    # Pressure, two channels, at rest, every 500 ms: how much of the
    # abdomen's change reaches the probe (a vaginal probe mostly tracks
    # abdominal pressure: breathing moves both), a regression of the
    # probe's 500 ms changes on the abdomen's (slope, /256, 0..1; the
    # sums are kept x256 so a slow breath's small steps still count).
    if t - d.tx_t < 1000 and not d.abd_on and d.quiet_t <= d.tx_t:   # quiet: no recovery
        dx = v - d.tx_x
        da = a - d.tx_a
        if -1024 < dx < 1024 and -1024 < da < 1024:     # small ints (x256 below)
            d.sxa += ((dx * da << 8) - d.sxa) >> 5
            d.saa += ((da * da << 8) - d.saa) >> 5
            s = d.saa >> 8
            if s > 4:               # the abdomen swings visibly
                k = d.sxa // s
                d.tx_q = 0 if k < 0 else (256 if k > 256 else k)
    d.tx_t = t
    d.tx_x = v
    d.tx_a = a


def climb(d, t, v, base, on_th):
    # At rest (REST, RISING): a rise building up below the threshold lifts
    # the level and the noise it is measured by (a squeeze rising over 1-2 s
    # lifts it as fast as it climbs). For up to climb_ms (then it is a
    # drift) the level counts as risen by at most climb_pct of the noise
    # margin since the climb began (not held flat: the slow half of a deep
    # breath would then cross), and the noise margin as it was. Returns the
    # threshold; the level to measure from is left in d.cbase.
    c = d.cfg
    m = on_th - base
    h = m * c.climb_pct // 100
    d.cbase = base
    if v - base <= h:
        d.climb_t = t
        d.climb_th = base + h
        d.climb_m = m
    elif t - d.climb_t < c.climb_ms:
        if base > d.climb_th:
            d.cbase = base = d.climb_th
        on_th = base + (m if m < d.climb_m else d.climb_m)
    return on_th
