"""Synthetic pelvic floor user with ground truth: vaginal pressure or surface EMG.

Runs unchanged on CPython and MicroPython: a home-made xorshift32 PRNG gives
the same integer stream everywhere, so one seed gives the same session on both.

Streaming core: `SyntheticUser.cue(action, dur, at)` plans what the user does
(after a reaction time) and returns the event's ground truth; `step()` returns
the next `(value, abd_value)` sample without building lists. `render(plan)` and
the `*_session()` generators run it over a whole plan and return lists (or feed
a `sink`, which MicroPython prefers: long float lists fragment its heap).
The user is in synth_user.py, the shapes of her signals in synth_shapes.py;
this module runs her through plans. Simulation only: never on a board.

Pressure (cmH2O): baseline 5-15 + drift (<= 2, periods of minutes) + the probe
warming after insertion (-2..+5, time constant 1-3 min) + breathing (0.1-0.4
Hz, 0.5-3 peak to peak on the probe, at least 1.2x that on the abdomen; uneven
and of varying depth, 10-40 %) + residual tone + events + movements in long
rests (mixed sessions: a 0.5-2.5 Hz wobble or a hump of 3-15 over 0.5-3 s,
0.5-1x on the abdomen; listed in info["artefacts"]) + sensor noise (sigma
0.1-0.4). Squeeze: MVC 8-90 (log-uniform) x effort 0.7-1.0,
quarter-sine or (half the users) S-shaped half-cosine rise 0.3-1.5 s (15 % of
them slow build-ups of 1.5-2.5 s), hold losing 5-30 %
per 10 s with 0.5-2 % tremor, half-cosine release 0.3-1.0 s down to the residual.
EMG (uV): white noise through a 20-450 Hz band-pass, scaled by an activation
envelope (rest 2-6 uV RMS + tone + events; squeezes mvc_uv 15-90 x effort, rise
50-200 ms (holds 0.2-1.5 s), release 50-300 ms; the hold's amplitude wanders
at 0.3-2 Hz, a coefficient of variation of 10-30 %) + white
background noise set by snr_db + for half the users the heart's QRS complexes
(R wave 10-150 uV, twice that on the abdominal channel, 55-100 bpm).
Residual tone: relaxed squeezes leave <= 4 % (tau 0.5-1.5 s), others 22-60 %
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
from simboard.synth_user import S_PLAN, S_MOTION, Rng, SyntheticUser, make_user  # noqa: F401  (the API)

_COUGH_SLOT_S = 1.5     # time a ("cough",) action takes in a plan
MIXED_MOTION = 0.5      # mixed sessions: she moves in half of the long rests


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


def _plan_moves(su, plan, seed, motion):
    # Pressure: a movement in a long rest (7 s or more) with probability
    # `motion`, from 3 s after the rest began (the release before it is over)
    # to 0.5 s before it ends (before the next cue).
    rng = Rng(seed, S_MOTION)
    t = 0.0
    for a in plan:
        d = a[1] if len(a) > 1 else (_COUGH_SLOT_S if a[0] == "cough" else 0.0)
        if a[0] == "rest" and d >= 7.0 and rng.random() < motion:
            su.move(t + 3.0 + rng.random() * (d - 6.5), rng)
        t += d


def render(plan, signal="pressure", rate_hz=None, seed=0, snr_db=20.0, user=None,
           abd=None, offset=0.0, gain=1.0, keep_clean=False, sink=None, motion=0.0):
    """Run a user through a plan. Returns (values, abd_values or None, truth, info).

    keep_clean adds info["clean"] (and "abd_clean"): the samples without noise.
    sink: if given, called as sink(value, abd_value) per sample instead of
    storing (values are then None). Use it on MicroPython, where long lists of
    floats fragment the heap.
    motion (pressure): the chance that she moves during each long rest;
    info["artefacts"] lists the movements (kind "motion", start_s, end_s).
    """
    su = SyntheticUser(signal, rate_hz, seed, user, snr_db, abd, offset, gain)
    if motion and not su.emg:
        _plan_moves(su, plan, seed, motion)
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
    rests = rest_intervals(su.truth + [{"onset_s": m["start_s"], "offset_s": m["end_s"]} for m in su.moves],
                           duration)
    units = "uV" if su.emg else "cmH2O"
    info = {
        "signal": signal, "rate_hz": rate, "units": units,
        "abd_units": units if su.abd_on else None,
        "n": n, "duration_s": duration, "seed": seed,
        "snr_db": snr_db if su.emg else None, "noise_rms": su.noise_rms,
        "offset": offset, "gain": gain,
        "rest_intervals": rests, "rest_s": sum(b - a for a, b in rests),
        "cues": cues, "user": su.traits, "artefacts": su.moves,
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
    r = Rng(seed, S_PLAN)
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
    r = Rng(seed, S_PLAN)
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
                  sink=None, motion=MIXED_MOTION):
    """(values, abd_values or None, truth, info) with squeezes, coughs, pushes,
    rests and (pressure) movements in some of the long rests."""
    tr = _session_user(seed, user)
    return render(mixed_plan(seed, tr, events), signal, _defaults(signal, rate_hz),
                  seed, snr_db, tr, abd, offset, gain, keep_clean, sink, motion)
