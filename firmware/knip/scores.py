# Session scores in clinicians' terms, from the coach's verdicts: PERFECT
# (Power, Endurance, Repetitions, Fast) and the Glazer figures (resting tone
# and its variability, time to peak, time to relax). Definitions and sources:
# docs/COACHING.md. Runs on the device at the end of a session (the summary
# carries them) and on the host for any synced session: one source.
from knip import programs as PG
from knip.coach import (NA, CHECK_NAMES, V_KIND, V_PASSED, V_JUDGED, V_SEQ, V_AMP, V_ENDURANCE, V_RISE,
                        V_RELEASE, V_MEAN, V_SD, V_FLAGS, V_REST_MEAN, V_REST_SD, V_OFF, C_HELD, C_TARGET, F_PROVISIONAL)

# Modified Oxford Scale bands for vaginal squeeze pressure, cmH2O (lower
# edges of grades 1..5; REFERENCE.md section 3)
OXFORD_CMH2O = (7.5, 14.6, 26.6, 41.6, 60.6)
OXFORD_LABELS = ("no contraction", "very weak", "weak", "moderate", "good", "strong")
ENDURANCE_FRACTION = 50     # % MVC a hold must stay above to count as endurance
# the scores key that counts the passes of a check (default: the check's name)
PASS_KEYS = {"target": "reached_target", "technique": "technique_ok"}


def oxford(peak_cmh2o):
    g = 0
    for edge in OXFORD_CMH2O:
        if peak_cmh2o >= edge:
            g += 1
    return g


def _median(xs):
    if not xs:
        return None
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def _r(x, nd=2):
    # half away from zero on a scaled int: the same digits on MicroPython and CPython
    if x is None:
        return None
    k = 10 ** nd
    return (int(x * k + 0.5) if x >= 0 else -int(-x * k + 0.5)) / k


def session_scores(verdicts, level_div, signal, unit, mvc=0):
    """verdicts: coach tuples; level_div: detector counts per unit;
    mvc: calibrated amplitude in counts (0: none)."""
    sq = [v for v in verdicts if v[V_KIND] >= PG.K_MVC]
    found = [v for v in sq if v[V_SEQ] != NA and v[V_AMP] != NA]
    rests = [v for v in verdicts if v[V_KIND] < PG.K_MVC and v[V_MEAN] != NA]
    best = max(v[V_AMP] for v in found) if found else 0
    calibrated = mvc > 0 and not any(v[V_FLAGS] & F_PROVISIONAL for v in verdicts)
    ref = mvc if mvc > 0 else best
    power = best / level_div if found else None
    d = {"calibrated": calibrated, "unit": unit,
         "mvc": _r(ref / level_div) if ref else None,
         "power": _r(power),
         "power_pct_mvc": _r(100 * best / ref, 1) if found and ref else None,
         "oxford": None, "oxford_label": None}
    if signal == "pressure" and power is not None and unit == "cmH2O":
        g = oxford(power)
        d["oxford"] = g
        d["oxford_label"] = OXFORD_LABELS[g]
    endu = [v[V_ENDURANCE] for v in found if v[V_ENDURANCE] != NA]
    d["endurance_s"] = _r(max(endu) / 1000) if endu else None
    d["endurance_fraction_pct"] = ENDURANCE_FRACTION

    def ok(v, bit):
        return v[V_PASSED] & bit or not v[V_JUDGED] & bit

    holds = [v for v in sq if v[V_KIND] == PG.K_HOLD]
    fast = [v for v in sq if v[V_KIND] == PG.K_FAST]
    d["repetitions"] = sum(1 for v in holds if v in found and v[V_PASSED] & C_HELD and ok(v, C_TARGET)) \
        if holds else None
    d["fast"] = sum(1 for v in fast if v in found and ok(v, C_TARGET)) if fast else None
    # rest before the first squeeze (pre-baseline) and after the last (post)
    idx = [i for i, v in enumerate(verdicts) if v[V_KIND] >= PG.K_MVC]
    first_sq = idx[0] if idx else len(verdicts)
    last_sq = idx[-1] if idx else -1
    pre = [v for i, v in enumerate(verdicts) if i < first_sq and v in rests] or rests
    post = [v for i, v in enumerate(verdicts) if i > last_sq and v in rests] if last_sq >= 0 else []
    d["resting_tone"] = _r(sum(v[V_MEAN] for v in pre) / len(pre) / level_div) if pre else None
    d["rest_variability"] = _r(sum(v[V_SD] for v in pre) / len(pre) / level_div) if pre else None
    if not post and last_sq >= 0 and verdicts[last_sq][V_REST_MEAN] != NA and verdicts[last_sq][V_OFF] >= 30000:
        # a long rest after the last squeeze is the post-baseline (Glazer: 60 s)
        v = verdicts[last_sq]
        d["post_rest_tone"] = _r(v[V_REST_MEAN] / level_div)
        d["post_rest_variability"] = _r(v[V_REST_SD] / level_div)
    else:
        d["post_rest_tone"] = _r(sum(v[V_MEAN] for v in post) / len(post) / level_div) if post else None
        d["post_rest_variability"] = _r(sum(v[V_SD] for v in post) / len(post) / level_div) if post else None
    # time to peak from quick squeezes (a hold's peak can fall anywhere in it)
    quick = [v for v in found if v[V_KIND] == PG.K_FAST] or [v for v in found if v[V_KIND] == PG.K_MVC]
    rise = [v[V_RISE] for v in quick if v[V_RISE] != NA]
    rel = [v[V_RELEASE] for v in found if v[V_RELEASE] != NA]
    d["time_to_peak_s"] = _r(_median(rise) / 1000) if rise else None
    d["time_to_relax_s"] = _r(_median(rel) / 1000) if rel else None
    d["reps_cued"] = len(sq)
    d["squeezes"] = len(found)
    judged = {}
    for i, name in enumerate(CHECK_NAMES):
        bit = 1 << i
        n = sum(1 for v in verdicts if v[V_JUDGED] & bit)
        judged[name] = n
        key = PASS_KEYS.get(name, name)
        d[key] = sum(1 for v in verdicts if v[V_PASSED] & bit)
    d["judged"] = judged
    return d
