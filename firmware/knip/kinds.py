# What a finished rise was (a squeeze, a cough or an artefact) and, with an
# abdominal channel, how it was done (lift, co-contraction, push). Judged
# once, when it ends; c is the DetectorConfig. Also the short records:
# artefacts and gaps (blank, unusable), a spike too brief for a squeeze (short_spike,
# spiked), and a held level that was her rest moving (climbed, surged, shifted).
from knip.record import (EV_START, EV_END, KIND_SQUEEZE, KIND_COUGH, KIND_ARTEFACT, TECH_LIFT, TECH_CO, TECH_PUSH,
                         R_REST, R_OFFSET, R_ENDED, R_ABD_RISE, R_BASE, R_NOISE, R_PEAK, R_PEAK_T, R_MARKS,
                         R_ONSET, M_PLATEAU, begin)
from knip.fixed import const
from knip.onset import backtrack, rise_start
from knip.history import slope, lowest
from knip.thresholds import margin
from knip.tone import recover, rest_moved

_LONE_MS = const(2000)     # a spike with none this long before it is a lone one (spiked)


def kind_of(rise_ms, dur, amp, abd_rise, slope, two, c):
    # A cough only on evidence: it peaked and ended fast, and the abdomen
    # rose with it, or (one pressure channel) it rose faster than a
    # voluntary squeeze can. A rise too brief for any voluntary squeeze, or
    # high for too long (a level shift: a probe that moved), is an artefact.
    if rise_ms <= c.cough_rise_ms and dur <= c.cough_dur_ms and \
            (abd_rise * 100 >= amp * c.cough_abd_pct if two else c.cough_rate and slope >= c.cough_rate):
        return KIND_COUGH
    if dur < c.min_squeeze_ms or dur > c.max_squeeze_ms:
        return KIND_ARTEFACT
    return KIND_SQUEEZE


def moved(d, amp):
    # Pressure: a muscle squeezes; it does not pull the pressure below its
    # rest. A rise with a dip below her resting tone just before it (the
    # lowest point the onset walk saw in the 2 s before it, within its
    # 64-sample history) deeper than dip_pct of the rise, or in its release
    # deeper than 2.5 x that (after a squeeze the tone undershoots its rest
    # for a while, the real manometry by up to a third of the squeeze, and
    # she may squeeze again from that trough), and deeper than 3 x her
    # rest's slow swing (the tone's deviation: breathing) and the onset
    # margin, is the probe moving with her body.
    rest = d.cur[R_REST]
    c = d.cfg
    # a rise in the recovery from an event: a dip before it and in its
    # release (still in that recovery: an undershoot adds to the last) by
    # what that recovery explains is not one (knip.detector _recover)
    allow = d.rise_amp if d.rise_rec else 0
    if allow >= 1 << 21:
        # the start, her tone's fall not read yet (knip.tone recovering): a
        # probe settling in explains a dip twice as deep as her tone fell
        # from the first sample to the rise, that pace carried on to now
        # (her tone is held while she squeezes), plus the undershoot of a
        # squeeze before in this recovery; a steady probe explains none
        allow -= 1 << 21
        f = d.v0 - rest
        if f > 0:
            allow += 2 * f * (d.last_t - d.t0) // (d.cross_t - d.t0 + 1)
    pre = rest - d.floor - allow
    post = rest - d.rel_min - allow
    dip = pre if pre * 100 >= amp * c.dip_pct else 0
    if post > dip and post * 40 >= amp * c.dip_pct:
        dip = post
    return dip > 3 * d.tone.noise() and dip > d._on_delta(d.lvl.noise())


def climbed(d, t, v, noise):
    # Pressure, holding, a new peak v. A level stands while no peak passes
    # its own by the onset margin (a breath's crest on it does not); the
    # first that does after it stood surge_ms starts a climb, if the level
    # is small beside her best squeeze (surge_ref_pct: a posture shift is a
    # few cmH2O) and not a residual plateau she squeezed from: keep the
    # level's peak, the time, its trough (the lowest sample of the last
    # surge_ms the history holds) and the abdomen then. Per new peak while
    # holding.
    if v - d.stand_v < d._on_delta(noise):
        return
    c = d.cfg
    if t - d.stand_t >= c.surge_ms and d.ref_amp and not d.marks & M_PLATEAU and \
            (d.stand_v - d.cur[R_BASE]) * 100 <= d.ref_amp * c.surge_ref_pct:
        d.surging = True
        d.surge_pk = d.stand_v
        d.surge_lo = lowest(d, t - c.surge_ms)
        d.surge_t = t
        d.surge_up = False
        d.surge_sl = 0
        d.surge_abd = d.surge_amax = d.abd_cur
    d.stand_v = v
    d.stand_t = t


def surged(d, t, v, base, noise):
    # Pressure, holding, after a climb (climbed): is she above the level it
    # climbed from by surge_pct % of that level's rise and the onset margin,
    # for surge_quick_ms if it climbed no faster than a voluntary squeeze
    # can (cough_rate), else for surge_hold_ms (a squeeze held, not a
    # cough)? A squeeze is one rise, not a level and then another (shifted).
    # Where the climb began is walked back to when it first gets there,
    # while it is still in the history. Per sample while holding after a climb.
    c = d.cfg
    sp = d.surge_pk
    s = slope(d, 100)
    if s > d.surge_sl:
        d.surge_sl = s
    if d.abd_cur > d.surge_amax:
        d.surge_amax = d.abd_cur        # (the abdomen since the climb began)
    if t - d.surge_seen > 2 * d.period_ms:
        d.surge_up = False              # (it dipped into a release meanwhile)
    d.surge_seen = t
    if v - sp < (sp - base) * c.surge_pct // 100 or v - sp < d._on_delta(noise):
        d.surge_up = False
        return False
    if not d.surge_up:
        d.surge_up = True
        d.surge_hi = t
        ct, fl = d.cross_t, d.floor
        d.cross_t = d.surge_t
        d.surge_on = backtrack(d, c.onset_k10, noise)
        d.cross_t = ct
        d.floor = fl
    held = t - d.surge_hi
    return held >= c.surge_hold_ms or held >= c.surge_quick_ms and not (c.cough_rate and d.surge_sl >= c.cough_rate)


def shifted(d, t, noise):
    # The level she held before a climb (surged) was her rest moving (a
    # posture shift, the probe settling deeper), not a squeeze: this squeeze
    # is the climb. It keeps its number, its peak and its peak event if
    # given; it is re-timed from where the climb began, known now
    # (R_DETECTED), and measured from the level's trough, which is her rest
    # now (level and tone: a level shift), and the abdomen from where it was
    # then. Its start event, first given at the level, is given again: the
    # coach re-judges her reaction to the cue. (One value per assignment: a
    # tuple of four allocates on MicroPython.)
    r = d.cur
    pk = r[R_PEAK]
    pk_t = r[R_PEAK_T]
    sent = d.peak_sent
    steep = d.max_slope
    lo = d.surge_lo
    was = d.tone.level()
    rest_moved(d, lo, noise)
    d.cross_t = d.surge_t
    d.cross_max = pk
    d.seq -= 1
    d._start(t, lo, noise)          # its measures afresh (seq + 1: the same number)
    r[R_ONSET] = d.surge_on
    r[R_PEAK] = pk
    r[R_PEAK_T] = pk_t
    rise_start(d, d.surge_on, lo)
    a = 0
    for j in range(d.hcount):       # its area so far, as far back as the history holds
        if d.ht[j] >= d.surge_on:
            a += (d.hv[j] - lo) * d.period_ms
    d.area_acc = a
    d.peak_sent = sent
    d.max_slope = steep
    d.abd_base = d.surge_abd
    d.abd_max = d.surge_amax
    d.floor = lo
    if lo > was:
        # back to her rest before the level is no dip below her rest (knip.kinds moved)
        d.rise_amp = (d.rise_amp if d.rise_rec else 0) + lo - was
        d.rise_rec = True
    return EV_START


def technique(abd_rise, amp, c):
    # The abdomen's rise against the pelvic floor's: push_pct or more is a
    # push, co_pct or more a co-contraction, less a lift.
    if abd_rise * 100 >= amp * c.push_pct:
        return TECH_PUSH
    if abd_rise * 100 >= amp * c.co_pct:
        return TECH_CO
    return TECH_LIFT


def blank(d, kind, onset, offset, t, seq):
    # A short record in done (coughs by spike, artefacts, gaps); seq 0: a new number.
    r = d.done
    if not seq:
        d.seq += 1
        seq = d.seq
    begin(r, seq, kind, onset, t)
    r[R_OFFSET] = offset
    r[R_ENDED] = t
    r[R_ABD_RISE] = -1
    r[R_REST] = d.tone.level()
    r[R_BASE] = d.lvl.level()
    r[R_NOISE] = d.lvl.noise()
    return r


def spiked(d, t, height):
    # A brief rise that was no squeeze: remember how high such things go
    # (the heart's QRS in an EMG; SqueezeDetector._on_delta). A lone one
    # (none in the _LONE_MS before it) no higher than the onset margin or
    # what is remembered: the heart beats again within a second and its
    # next beat is kept whole, but a glitch, once, must not lift the
    # threshold over her squeezes for the seconds it takes to forget it.
    if t - d.spike_t > _LONE_MS:
        c = d.cfg
        m = margin(d.lvl.noise(), c.on_k10, d.ref_amp, c.on_pct, d.min_on)
        if d.spike_q >> 4 > m:
            m = d.spike_q >> 4
        if height > m:
            height = m
    d.spike_t = t
    if height << 4 > d.spike_q:
        d.spike_q = height << 4


def short_spike(d, t, v, base, noise, on_th):
    # Above threshold, but not for confirm_ms: far too brief for a
    # squeeze. A big one (4x the margin) is reported as an artefact; a
    # smaller one is noise and is forgotten.
    c = d.cfg
    if v - base <= (on_th - base) >> 1:
        # it came right back down: a spike (a rise that only dips under
        # the threshold is not one, and must not raise it)
        spiked(d, t, d.cross_max - base)
    if d.cross_max - base < 4 * (on_th - base) or t - d.cross_t > c.cough_dur_ms:
        return 0
    onset = backtrack(d, c.onset_k10, noise)
    recover(d, t, (d.cross_max - base) * c.ring_pct // 100)
    r = blank(d, KIND_ARTEFACT, onset - (d.delay >> 1), t - d.delay, t, 0)
    r[R_PEAK] = d.cross_max
    r[R_PEAK_T] = d.cross_t - d.delay
    return EV_END


def unusable(d, t0, t1, marks):
    # SqueezeDetector.artefact: the stretch t0..t1 as an artefact record
    r = blank(d, KIND_ARTEFACT, t0, t1, t1, 0)
    r[R_MARKS] = marks
    d.hcount = 0             # nothing before the gap is history now
    d.cn = d.csum = d.ck = 0
    d.plateau = 0
    d.steady = 0
    recover(d, t1, 1 << 20)
    if t1 - t0 > d.cfg.warmup_ms:
        d.started = False
    else:
        # (SqueezeDetector.update; 0 means no wait, so a wait ending at 0 ends at 1)
        d.rearm_t = t1 + 2000 if t1 != -2000 else 1
    d.last_t = t1
    return EV_END
