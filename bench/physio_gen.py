"""Independent physiological signal generator for scoring squeeze detectors.

Written without looking at the detector or the project's own synthesiser.
``generate(scenario, seed)`` returns one record (see ``SCENARIOS``): vaginal
pressure (cmH2O, 50 or 100 Hz) or raw surface EMG (uV, 1 kHz), optionally with
an abdominal channel, plus exact truth.

Truth definitions
-----------------
* Squeeze onset: the sample where the pelvic-floor (PF) contribution leaves its
  pre-squeeze level (0 at rest, or a residual plateau, or a decaying residual).
  For EMG the "contribution" is the amplitude envelope (uV RMS) of the PF muscle
  signal, for pressure it is the PF force term in cmH2O.
* Squeeze offset: the sample where the release ramp ends, i.e. the contribution
  reaches its post-squeeze level (0 if relaxed, the residual plateau if not).
  Staged releases end at the end of their last stage.
* amplitude: peak PF contribution above the resting level (cmH2O, or uV RMS of
  the PF muscle signal), before fatigue sag and wobble; it excludes abdominal
  transmission. residual = post-squeeze level / amplitude. A squeeze that starts
  from a residual level p0 peaks at >= p0 + 0.4 x its planned amplitude. For
  coughs and pushes, amplitude is the abdominal peak (cmH2O or uV RMS).
* relaxed: True when residual <= 0.05 (generated as exactly 0); False for a
  residual of 0.20-0.60 that lasts >= 1.5 s (until it decays or the next squeeze
  starts); None otherwise (a few deliberate 8-15 % residuals, or 20-60 %
  residuals cut short by the next squeeze within 1.5 s).
* quick: offset - onset < 1.5 s. cue_s: time of the program cue the squeeze
  answered (None if self-paced).
* cough / bearing_down onset/offset: start and end of the abdominal pressure
  pulse (pressure) or of the abdominal muscle burst (EMG); the reflex PF burst of
  a cough shares the same window. Coughs and pushes carry technique "push" for
  bearing down, None for coughs; squeezes carry "lift"/"co_contraction" when an
  abdominal channel exists, else None.
* rest_intervals: complement of [onset - 1 s, activity end + 2 s] over all truth
  events (activity end includes a residual plateau and its decay) and of
  [start - 1 s, end + 2 s] over transient artefacts (ecg/hum span the record and
  are not excluded); the first second is excluded; pieces < 1 s are dropped.
* SNR (EMG): 10*log10(P_muscle / P_noise); P_muscle = mean power of the muscle
  component of channel x (PF signal incl. resting tone and abdominal crosstalk)
  over all squeeze spans [onset, offset]; P_noise = mean power of the additive
  instrument noise (white/pink) over the whole record. ECG, hum, motion, pops and
  DC are not counted as noise. The noise is scaled on the realisation, so the
  requested SNR is met exactly.
* Transient artefacts are placed only in gaps between events (so truth stays
  visible); any stretch that hits a rail is listed as "saturation". Artefact
  dicts carry an extra "channel" key ("x" or "abd"); posture shifts and probe
  slips are listed as "motion".

Sessions (brief; REFERENCE s1 and s4)
--------
* sprint: 10-25 s lead-in, 3 sets of 10 cued quick squeezes (1 s on, 1, 1.5 or
  2 s off per session), 20-40 s between sets; 10 % of them last 1.5-2.5 s; she
  anticipates 30 % of cues, so rests are often shorter than asked.
* marathon: 15-30 s lead-in, 5 cued holds of 5, 8 or 10 s (achieved 60-115 %,
  <= 12 s) with rest equal to the asked hold.
* glazer: 60 s rest, 5 x (2 s on / 2 s off), 5 x (10 s hold / 10 s rest), a 60 s
  hold (achieved 48-60 s, never skipped), 60 s rest; short instruction pauses.
* free: 110-300 s of self-paced squeezes (35 % quick, 35 % 2-5 s, 30 % 6-12 s),
  half of them cued; rests 0.3-2 s (25 %, shorter than the squeeze) or 2-20 s.
* Every record lasts >= 120 s (rest appended); durations come out 2-5.5 min.
  Seeds are mixed with the scenario name (default_rng([seed, crc32(name)])).

Physiological ranges (source)
-----------------------------
Subject
* MVC 8-90 cmH2O, log-normal with mean 35, SD 23 (REFERENCE s3: 35.1 +- 22.7,
  n = 288).
* Quick-squeeze EMG 15-150 uV RMS, log-normal mean 50, SD 26; 10 s holds at
  0.5-0.9 of that, 60 s hold 0.35-0.6 (REFERENCE s3, Glazer protocol means
  49.8 / 37.1 / 16.1 uV). Resting PF tone 1-6 uV RMS (REFERENCE s3).
  Abdominal-wall resting tone 2-8 uV (assumed), modulated 10-40 % by breathing
  (expiratory abdominal activity; assumed).
* Abdomen-to-vagina pressure transmission 0.5-0.9 (assumed; REFERENCE s5 only
  says r = 0.97 for coughs, so the shape is transmitted, gain unknown).
* Reaction time to a cue 0.2-0.8 s, per-subject mean 0.25-0.6 s (assumed, typical
  simple visual/auditory RT plus decision); anticipation 0.1-0.5 s early in
  5-30 % of cues; 3 % missed cues (assumed).
Squeezes
* Duration 0.22-12 s (quick < 1.5 s; pressure quick >= 0.5 s because of the rise
  bound below), Glazer 60 s hold (brief / REFERENCE s4).
* Pressure rise 0.2-0.6 s (quick) and 0.4-1.5 s (holds, 10 % slow 1.5-2 s).
  REFERENCE s3: a full squeeze rises in ~1-1.5 s (28.7 cmH2O/s); REFERENCE s6:
  fast PF contractions peak in ~0.5 s. Lower bound 0.2 s: skeletal muscle needs
  ~150-250 ms to reach near-maximal force even in explosive contractions
  (rate of force development, Maffiuletti et al. 2016, from memory), and the
  probe/tissue compliance only slows that.
* EMG activation rise 0.05-0.3 s (quick) and 0.1-1.0 s (holds, 10 % 1-2 s):
  EMG leads force by the electromechanical delay (~30-100 ms, Cavanagh & Komi
  1979, from memory) and fast recruitment is quicker than force (assumed).
* Release: smooth (cosine) or exponential 0.3-1.5 s (pressure) / 0.15-1.2 s
  (EMG); abrupt 0.15-0.3 s / 0.03-0.1 s; staged (two ramps with a 0.3-1 s pause
  at 35-65 % of the way) (assumed).
* Effort: quick 60-100 % of MVC (EMG 70-100 %), holds 50-90 %, 60 s hold
  35-60 %; set fatigue 0-25 % from first to last squeeze; hold sag 10-50 % over
  long holds (scaled by hold length / 10 s, 30 % of holds steady), 60 s hold sags
  20-50 % (brief; Glazer 60 s hold mean 16 vs 37 uV).
* Unsteadiness 0.3-3 Hz at 2-8 % (pressure) / 3-15 % (EMG envelope) plus
  8-12 Hz physiological tremor at 0-1.5 % (assumed).
* Residual plateaus 20-60 % for 1.5-8 s then a 0.5-2 s decay (brief); 40 % of
  them in free sessions are interrupted by the next squeeze.
Abdominal events
* Cough: peak 0.1-0.3 s after onset, whole event 0.3-0.8 s (REFERENCE s5: peaks
  in < 0.3 s), abdominal spike 40-150 cmH2O (brief; urodynamic cough peaks of
  tens to >100 cmH2O, e.g. Cobb et al. 2005, from memory). Reflex PF
  contraction 5-25 % MVC / 40-100 % of quick EMG in the same window (guarding
  reflex, "the knack", Miller et al. 1998, from memory). Abdominal EMG burst
  50-250 uV (assumed). 30 % of coughs come in bouts of 2-3.
* Bearing down: 1-6 s, rise 0.3-1.5 s, fall 0.3-1 s, abdominal 20-80 cmH2O
  (assumed, Valsalva-like strain), PF term -0..5 % MVC (PF descends, no lift);
  EMG: abdominal 30-150 uV, PF paradoxical activation 0-30 % in half of them.
* Co-contraction: abdominal rise 50-90 % of the PF rise (brief); in a "lift"
  0-15 % (assumed).
Pressure background
* Breathing 0.1-0.4 Hz, 0.5-3 cmH2O peak-to-peak on the vaginal channel, equal
  to abdominal breathing x transmission, so 0.6-6 cmH2O on the abdominal one
  (brief). Cardiac ripple 0-0.2 cmH2O (assumed).
* Drift: probe warming 1-6 cmH2O (20 % negative: slow leak) with time constant
  60-200 s, plus 0.2-1 cmH2O wander below 0.01 Hz (assumed; REFERENCE s3 gives
  1-3 cmH2O day-to-day repeatability). Abdominal drift +-2 cmH2O.
* Sensor noise 0.03-0.15 cmH2O RMS (assumed). Rails -30 and +250 cmH2O
  (REFERENCE s3 urodynamic range); p1_artefacts uses a +100 cmH2O rail
  (assumed 10 kPa full-scale sensor).
* Posture shifts: steps of 0.5-3 cmH2O over 0.3-1 s (listed as "motion").
  Motion bumps 3-20 cmH2O over 0.5-3 s; probe slip: step -2..-10 cmH2O over
  0.1-0.5 s and PF gain x0.6-0.9 afterwards; external compression to the rail
  for 0.2-2 s; stuck (flat) reading for 1-5 s (all assumed).
EMG background
* sEMG spectrum: Shwedyk et al. (1977) PSD model with fl 40-70 Hz, fh 100-160 Hz,
  through a 20-450 Hz amplifier band (REFERENCE s3: 20-500 Hz, 1-2 kHz); median
  frequency comes out 90-115 Hz (assumed plausible for PF sEMG).
* Additive noise white or pink (1/f) in 10-500 Hz, or an equal-power mix.
* ECG 50-100 bpm with 2 % RR jitter and respiratory sinus arrhythmia, QRS-like
  Q-R-S-T template, R 20-500 uV (brief; Drake & Callaghan 2006 on ECG in trunk
  EMG, from memory); abdominal channel 30-200 uV in e2 scenarios (assumed).
* Mains hum 50 Hz 5-100 uV with a 10-30 % third harmonic, 30 % slow amplitude
  modulation (brief; Clancy et al. 2002, from memory).
* Motion: 0.5-8 Hz swings 100-800 uV over 0.3-2 s (motion content < 20 Hz,
  De Luca et al. 2010, from memory). Electrode pop: step 1000-6000 uV decaying
  with tau 50-300 ms. Saturation: a cable tug driving the ADC to its +-10 000 uV
  rail (assumed gain/ADC) for 0.2-2 s. DC offset +-300 uV (assumed).
Not modelled: EMG spectral compression with fatigue, breath-holding during holds,
electrode-skin impedance changes, sensor quantisation.
"""
from __future__ import annotations

import argparse
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import fft as sfft

U = np.random.Generator
EMG_RAIL = 10000.0
P_RAIL = (-30.0, 250.0)


# ------------------------------------------------------------------ scenarios

def _spec(signal: str, session: str, channels: int = 1, snr: float | None = None,
          rate: float | None = None, **kw: Any) -> dict:
    s = {"signal": signal, "rate": rate or (50.0 if signal == "pressure" else 1000.0),
         "channels": channels, "session": session, "snr_db": snr, "coughs": False,
         "pushes": False, "p_co": 0.0, "noise": {"sprint": "white", "marathon": "pink",
                                                  "glazer": "mix", "free": "random"}[session],
         "artefacts": {}, "posture": (0, 0), "ecg": None, "ecg_abd": None, "hum": None,
         "rail": P_RAIL if signal == "pressure" else (-EMG_RAIL, EMG_RAIL)}
    s.update(kw)
    return s


def _build_scenarios() -> dict[str, dict]:
    sc: dict[str, dict] = {}
    abd = dict(coughs=True, pushes=True, p_co=0.3)
    for ses in ("sprint", "marathon", "glazer", "free"):
        free = ses == "free"
        sc[f"p1_{ses}"] = _spec("pressure", ses, p_co=0.15 if free else 0.0,
                                posture=(0, 2) if free else (0, 0))
        sc[f"p2_{ses}"] = _spec("pressure", ses, 2, posture=(0, 2) if free else (0, 0), **abd)
        for snr in (0, 5, 10, 20, 30):
            sc[f"e1_{ses}_{snr}db"] = _spec("emg", ses, snr=snr, p_co=0.15 if free else 0.0)
    sc["p1_artefacts"] = _spec("pressure", "free", p_co=0.15, posture=(1, 2), rail=(-30.0, 100.0),
                               artefacts={"motion": (2, 4), "slip": (1, 1), "saturation": (1, 2),
                                          "flat": (1, 2)})
    sc["p1_coughs"] = _spec("pressure", "free", coughs=True, pushes=True, p_co=0.15)
    sc["p2_100hz_free"] = _spec("pressure", "free", 2, rate=100.0, posture=(0, 2), **abd)
    sc["e1_coughs_20db"] = _spec("emg", "free", snr=20, coughs=True, pushes=True, p_co=0.15)
    for snr in (20, 10):
        sc[f"e2_free_{snr}db"] = _spec("emg", "free", 2, snr=snr, ecg_abd=(30.0, 200.0), **abd)
    sc["e1_artefacts_20db"] = _spec("emg", "free", snr=20, p_co=0.15, ecg=(20.0, 200.0),
                                    hum=(5.0, 100.0),
                                    artefacts={"motion": (2, 3), "pop": (2, 4), "saturation": (1, 1)})
    sc["e1_ecg_10db"] = _spec("emg", "free", snr=10, p_co=0.15, ecg=(100.0, 500.0))
    for name, s in sc.items():
        ch = "two-channel" if s["channels"] == 2 else "one-channel"
        snr = f" at {s['snr_db']} dB SNR" if s["snr_db"] is not None else ""
        extra = " with coughs/pushes" if s["coughs"] else ""
        extra += " with artefacts" if s["artefacts"] else ""
        extra += " with strong ECG" if name == "e1_ecg_10db" else ""
        s["description"] = (f"{ch} {s['signal']} {s['rate']:g} Hz, {s['session']} session"
                            f"{snr}{extra}")
    return sc


SCENARIOS: dict[str, dict] = _build_scenarios()


# ------------------------------------------------------------------ people

@dataclass
class Subject:
    mvc: float        # cmH2O
    act: float        # uV RMS of a quick maximal squeeze
    tone: float       # uV RMS PF resting tone
    abd_tone: float   # uV RMS abdominal resting tone
    trans: float      # abdominal -> vaginal pressure transmission
    rt: float         # mean reaction time, s
    steady: float     # hold unsteadiness (fraction)
    tremor: float     # 8-12 Hz tremor (fraction)
    hr: float         # bpm
    breath: float     # Hz


def _subject(rng: U, sig: str) -> Subject:
    return Subject(mvc=float(np.clip(rng.lognormal(np.log(29.3), 0.6), 8, 90)),
                   act=float(np.clip(rng.lognormal(np.log(44.4), 0.49), 15, 150)),
                   tone=float(np.clip(rng.lognormal(np.log(2.5), 0.45), 1, 6)),
                   abd_tone=rng.uniform(2, 8), trans=rng.uniform(0.5, 0.9),
                   rt=rng.uniform(0.25, 0.6),
                   steady=rng.uniform(0.02, 0.08) if sig == "pressure" else rng.uniform(0.03, 0.15),
                   tremor=rng.uniform(0, 0.015), hr=rng.uniform(50, 100), breath=rng.uniform(0.1, 0.4))


@dataclass
class Sq:
    """One planned squeeze (times in s, levels in signal units)."""
    rise: float
    hold: float
    rel: float
    A: float
    rise_shape: str = "smooth"
    rel_shape: str = "smooth"
    stage: tuple[float, float, float, float] | None = None   # t1, pause, t2, mid fraction
    sag: float = 0.0
    r: float = 0.0
    plateau: float = 0.0
    decay: float = 0.0
    tech: str = "lift"
    co: float = 0.0
    on: float = 0.0
    cue: float | None = None

    @property
    def off(self) -> float:
        return self.on + self.rise + self.hold + self.rel

    @property
    def end(self) -> float:
        return self.off + (self.plateau + self.decay if self.r > 0 else 0.0)


@dataclass
class Ev:
    """A cough, push or transient artefact occupying [on, on + dur]."""
    kind: str
    on: float
    dur: float
    p: dict

    @property
    def end(self) -> float:
        return self.on + self.dur


def _plan_squeeze(rng: U, sub: Subject, sig: str, kind: str, target: float, effort: float,
                  p_resid: float, p_co: float) -> Sq:
    """Shape of one squeeze. kind: quick (target = total s), hold or long (target = total s)."""
    P = sig == "pressure"
    if kind == "quick":
        rise = rng.uniform(0.2, 0.6) if P else rng.uniform(0.05, 0.3)
        rel_shape = str(rng.choice(["smooth", "exp", "abrupt"], p=[0.5, 0.3, 0.2]))
    else:
        slow = rng.random() < 0.1
        rise = (rng.uniform(1.5, 2.0) if slow else rng.uniform(0.4, 1.5)) if P else \
            (rng.uniform(1.0, 2.0) if slow else rng.uniform(0.1, 1.0))
        rel_shape = str(rng.choice(["smooth", "exp", "abrupt", "staged"], p=[0.4, 0.25, 0.15, 0.2]))
    stage = None
    if rel_shape == "abrupt":
        rel = rng.uniform(0.15, 0.3) if P else rng.uniform(0.03, 0.1)
    elif rel_shape == "staged":
        lo, hi = (0.2, 0.6) if P else (0.05, 0.4)
        stage = (rng.uniform(lo, hi), rng.uniform(0.3, 1.0), rng.uniform(lo, hi), rng.uniform(0.35, 0.65))
        rel = stage[0] + stage[1] + stage[2]
    else:
        rel = rng.uniform(0.3, 1.5) if P else rng.uniform(0.15, 1.2)
    if kind == "quick":
        rise, rel = min(rise, 0.45 * target), min(rel, 0.5 * target)
        hold = target - rise - rel
    else:
        hold = max(0.5, target - rise - rel)
    unit = sub.mvc if P else sub.act
    lvl = {"quick": (0.6, 1.0) if P else (0.7, 1.0), "hold": (0.5, 0.9), "long": (0.35, 0.6)}[kind]
    sq = Sq(rise, hold, rel, unit * rng.uniform(*lvl) * effort,
            rise_shape=str(rng.choice(["smooth", "exp"])), rel_shape=rel_shape, stage=stage)
    if kind == "long":
        sq.sag = rng.uniform(0.2, 0.5)
    elif hold >= 3 and rng.random() < 0.7:
        sq.sag = rng.uniform(0.1, 0.5) * min(1.0, hold / 10)
    u = rng.random()
    if u < p_resid:
        sq.r, sq.plateau = rng.uniform(0.2, 0.6), rng.uniform(1.5, 8)
    elif u < p_resid + 0.04:
        sq.r, sq.plateau = rng.uniform(0.08, 0.15), rng.uniform(2, 4)
    sq.decay = rng.uniform(0.5, 2.0) if P else rng.uniform(0.3, 1.5)
    if rng.random() < p_co:
        sq.tech, sq.co = "co_contraction", rng.uniform(0.5, 0.9)
    else:
        sq.co = rng.uniform(0, 0.15)
    return sq


def _earliest_next(sq: Sq) -> float:
    return sq.off + (1.5 if sq.r >= 0.2 else 0.15)


def _quick_len(rng: U, sig: str) -> float:
    return float(np.clip(rng.normal(0.9, 0.25), 0.5, 1.45) if sig == "pressure"
                 else np.clip(rng.normal(0.8, 0.3), 0.22, 1.45))


def _cued(rng: U, sub: Subject, sig: str, spec: dict) -> tuple[list[Sq], float]:
    """Program-cued sessions: returns squeezes and the program end time."""
    ses, items = spec["session"], []      # (cue, kind, target, effort)
    if ses == "sprint":
        t, off, p_ant, p_res = rng.uniform(10, 25), float(rng.choice([1.0, 1.5, 2.0])), 0.3, 0.08
        for s in range(3):
            fat = rng.uniform(0, 0.25)
            for k in range(10):
                T = rng.uniform(1.5, 2.5) if rng.random() < 0.1 else _quick_len(rng, sig)
                items.append((t, "quick", T, 1 - fat * k / 9))
                t += 1.0 + off
            t += rng.uniform(20, 40) if s < 2 else 0
        end = t + rng.uniform(8, 20)
    elif ses == "marathon":
        t, p_ant, p_res = rng.uniform(15, 30), 0.05, 0.15
        asked, fat = float(rng.choice([5.0, 8.0, 10.0, 10.0])), rng.uniform(0, 0.2)
        for k in range(5):
            items.append((t, "hold", min(12.0, asked * rng.uniform(0.6, 1.15)), 1 - fat * k / 4))
            t += 2 * asked
        end = t + rng.uniform(8, 20)
    else:  # glazer
        t, p_ant, p_res = 60 + rng.uniform(1, 3), 0.1, 0.1
        for k in range(5):
            items.append((t, "quick", 2 * rng.uniform(0.7, 1.1), 1.0))
            t += 4.0
        t += rng.uniform(4, 10)
        fat = rng.uniform(0, 0.2)
        for k in range(5):
            items.append((t, "hold", min(12.0, 10 * rng.uniform(0.7, 1.15)), 1 - fat * k / 4))
            t += 20.0
        t += rng.uniform(4, 10)
        items.append((t, "long", 60 * rng.uniform(0.8, 1.0), 1.0))
        end = t + 120 + rng.uniform(1, 4)
    sqs: list[Sq] = []
    earliest = 0.0
    for cue, kind, T, eff in items:
        if rng.random() < 0.03 and kind != "long":
            continue                                   # missed cue
        sq = _plan_squeeze(rng, sub, sig, kind, T, eff, p_res, spec["p_co"])
        on = cue - rng.uniform(0.1, 0.5) if rng.random() < p_ant else \
            cue + float(np.clip(rng.normal(sub.rt, 0.1), 0.2, 0.8))
        sq.on, sq.cue = max(on, earliest), cue
        earliest = _earliest_next(sq)
        sqs.append(sq)
    return sqs, max(end, sqs[-1].end + 8)


def _free(rng: U, sub: Subject, sig: str, spec: dict) -> tuple[list[Sq], float]:
    """Self-paced mixture; about half the squeezes answer a cue."""
    target, t, sqs = rng.uniform(110, 300), rng.uniform(8, 20), []
    while t < target:
        kind = str(rng.choice(["quick", "mid", "hold"], p=[0.35, 0.35, 0.3]))
        T = {"quick": _quick_len(rng, sig) if rng.random() < 0.8 else rng.uniform(0.22 if sig == "emg"
                                                                                 else 0.5, 1.45),
             "mid": rng.uniform(2, 5), "hold": rng.uniform(6, 12)}[kind]
        sq = _plan_squeeze(rng, sub, sig, "quick" if kind == "quick" else "hold", T,
                           rng.uniform(0.75, 1.0), 0.25, spec["p_co"])
        sq.on = t
        if rng.random() < 0.5:
            sq.cue = t - float(np.clip(rng.normal(sub.rt, 0.1), 0.2, 0.8))
        sqs.append(sq)
        rest = rng.uniform(0.3, 2.0) if rng.random() < 0.25 else rng.uniform(2, 20)
        if sq.r >= 0.2:
            rest = rng.uniform(1.5, sq.plateau) if rng.random() < 0.4 else max(rest, 1.5)
        t = sq.off + rest
    return sqs, sqs[-1].end + rng.uniform(8, 20)


# ------------------------------------------------------------------ placement

def _busy(sqs: list[Sq], evs: list[Ev]) -> list[tuple[float, float]]:
    iv = [(s.on - 1.2, s.end + 2.2) for s in sqs] + [(e.on - 1.2, e.end + 2.2) for e in evs]
    return sorted(iv)


def _place(rng: U, busy: list[tuple[float, float]], L: float, end: float) -> float:
    """Start time for a window of length L inside a free gap (or appended at the end)."""
    gaps, cur = [], 2.0
    for a, b in busy:
        if a - cur >= L:
            gaps.append((cur, a - L))
        cur = max(cur, b)
    if end - 3 - cur >= L:
        gaps.append((cur, end - 3 - L))
    if not gaps:
        return cur
    w = np.array([b - a + 1e-3 for a, b in gaps])
    a, b = gaps[int(rng.choice(len(gaps), p=w / w.sum()))]
    return float(rng.uniform(a, b))


def _abd_events(rng: U, sub: Subject, spec: dict, sqs: list[Sq], end: float) -> list[Ev]:
    evs: list[Ev] = []
    P = spec["signal"] == "pressure"
    todo = ["cough"] * int(rng.integers(3, 7) if spec["coughs"] else 0) + \
        ["push"] * int(rng.integers(2, 5) if spec["pushes"] else 0)
    for kind in rng.permutation(todo):
        bout = []
        if kind == "cough":
            for _ in range(int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1]))):
                tp = rng.uniform(0.1, 0.3)
                p = {"tp": tp, "k": rng.uniform(2, 4),
                     "abd": rng.uniform(40, 150) if P else rng.uniform(50, 250),
                     "pf": (rng.uniform(0.05, 0.25) * sub.mvc) if P else rng.uniform(0.4, 1.0) * sub.act}
                bout.append(Ev("cough", 0.0, rng.uniform(max(0.3, tp + 0.15), 0.8), p))
        else:
            dur = rng.uniform(1, 6)
            rise, fall = rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.0)
            sc = min(1.0, (dur - 0.2) / (rise + fall))
            p = {"rise": rise * sc, "fall": fall * sc,
                 "abd": rng.uniform(20, 80) if P else rng.uniform(30, 150),
                 "pf": -rng.uniform(0, 0.05) * sub.mvc if P else
                 (rng.uniform(0, 0.3) * sub.act if rng.random() < 0.5 else 0.0)}
            bout.append(Ev("bearing_down", 0.0, dur, p))
        gaps = [rng.uniform(0.2, 0.8) for _ in bout[1:]]
        t = _place(rng, _busy(sqs, evs), sum(e.dur for e in bout) + sum(gaps), end)
        for i, e in enumerate(bout):
            e.on = t
            t = e.end + (gaps[i] if i < len(gaps) else 0)
            evs.append(e)
    return evs


def _artefact_events(rng: U, spec: dict, sqs: list[Sq], evs: list[Ev], end: float) -> list[Ev]:
    arts: list[Ev] = []
    todo = [k for k, (lo, hi) in spec["artefacts"].items() for _ in range(int(rng.integers(lo, hi + 1)))]
    todo += ["posture"] * int(rng.integers(spec["posture"][0], spec["posture"][1] + 1))
    for kind in rng.permutation(todo):
        dur = {"motion": rng.uniform(0.5, 3) if spec["signal"] == "pressure" else rng.uniform(0.3, 2),
               "slip": rng.uniform(0.1, 0.5), "saturation": rng.uniform(0.2, 2),
               "flat": rng.uniform(1, 5), "pop": rng.uniform(0.05, 0.3) * 5,
               "posture": rng.uniform(0.3, 1.0)}[str(kind)]
        arts.append(Ev(str(kind), _place(rng, _busy(sqs, evs + arts), dur, end), dur, {}))
    return arts


# ------------------------------------------------------------------ shapes

def _ease(u: np.ndarray, shape: str) -> np.ndarray:
    if shape == "exp":
        return (1 - np.exp(-4 * u)) / (1 - np.exp(-4))
    return 0.5 - 0.5 * np.cos(np.pi * u)


def _ramp(a: float, b: float, n: int, shape: str = "smooth") -> np.ndarray:
    return a + (b - a) * _ease(np.arange(1, n + 1) / n, shape)


def _band(rng: U, n: int, fs: float, lo: float, hi: float, alpha: float = 0.0) -> np.ndarray:
    """Unit-RMS Gaussian noise band-limited to [lo, hi] Hz with a 1/f^alpha power slope."""
    if n < 2:
        return np.zeros(n)
    nf = sfft.next_fast_len(n, real=True)
    f = np.fft.rfftfreq(nf, 1 / fs)
    g = np.zeros_like(f)
    m = (f >= lo) & (f <= hi) & (f > 0)
    g[m] = f[m] ** (-alpha / 2)
    y = sfft.irfft(sfft.rfft(rng.standard_normal(nf)) * g, nf)[:n]
    s = y.std()
    return y / s if s > 0 else y


def _squeeze_curve(rng: U, s: Sq, A: float, p0: float, fs: float, sub: Subject) -> tuple[np.ndarray, int]:
    """PF contribution from the onset sample; returns (curve, index of the offset sample)."""
    nr, nh = max(1, round(s.rise * fs)), max(0, round(s.hold * fs))
    rise = _ramp(p0, A, nr, s.rise_shape)
    x = np.arange(nh) / max(nh, 1)
    hold = A * (1 - s.sag * (1 - np.exp(-3 * x)) / (1 - np.exp(-3)))
    if nh > 2:
        j = np.arange(nh)
        taper = np.clip(np.minimum(j, nh - 1 - j) / (0.3 * fs), 0, 1)
        wob = sub.steady * _band(rng, nh, fs, 0.3, 3.0) + sub.tremor * _band(rng, nh, fs, 8, 12)
        hold = hold * (1 + np.clip(wob, -0.3, 0.3) * taper)
    L, R = (hold[-1] if nh else A), s.r * A
    if s.stage:
        t1, pause, t2, mf = s.stage
        mid = R + (L - R) * mf
        rel = np.concatenate([_ramp(L, mid, max(1, round(t1 * fs))), np.full(round(pause * fs), mid),
                              _ramp(mid, R, max(1, round(t2 * fs)))])
    else:
        rel = _ramp(L, R, max(1, round(s.rel * fs)), "exp" if s.rel_shape == "exp" else "smooth")
    curve = np.concatenate([[p0], rise, hold, rel])
    k_off = len(curve) - 1
    if s.r > 0:
        curve = np.concatenate([curve, np.full(round(s.plateau * fs), R),
                                _ramp(R, 0.0, max(1, round(s.decay * fs)))])
    return curve, k_off


def _trap(s: Sq, fs: float) -> np.ndarray:
    """0 -> 1 -> 0 with the squeeze's timing (for co-activated abdominals)."""
    nr, nh = max(1, round(s.rise * fs)), max(0, round(s.hold * fs))
    nrel = round(s.stage[0] * fs + s.stage[1] * fs + s.stage[2] * fs) if s.stage else round(s.rel * fs)
    return np.concatenate([[0.0], _ramp(0, 1, nr), np.ones(nh), _ramp(1, 0, max(1, nrel))])


def _event_curve(rng: U, e: Ev, fs: float) -> np.ndarray:
    """Normalised (peak 1) shape of a cough or push, 0 at both ends."""
    n = max(2, round(e.dur * fs))
    if e.kind == "cough":
        t = np.arange(n + 1) / fs
        x = t / e.p["tp"]
        y = x ** e.p["k"] * np.exp(e.p["k"] * (1 - x))
        y = np.clip(y - y[-1] * t / t[-1], 0, None)
        return y / y.max()
    nr, nf = max(1, round(e.p["rise"] * fs)), max(1, round(e.p["fall"] * fs))
    nh = max(0, n - nr - nf)
    hold = 1 + 0.05 * _band(rng, nh, fs, 0.3, 3) * np.clip(np.minimum(np.arange(nh), nh - 1 - np.arange(nh)) / (0.2 * fs), 0, 1)
    return np.concatenate([[0.0], _ramp(0, 1, nr), hold, _ramp(1, 0, nf)])


def _render(rng: U, sub: Subject, sqs: list[Sq], evs: list[Ev], n: int, fs: float,
            gain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """PF contribution, abdominal contribution, PF reflex/paradox term, squeeze truth rows."""
    pf, ab, ev_pf, rows = np.zeros(n), np.zeros(n), np.zeros(n), []
    for s in sqs:
        i0 = round(s.on * fs)
        p0 = pf[i0]
        A = max(s.A, p0 + 0.4 * s.A)      # a squeeze from a residual still rises clearly
        c, k_off = _squeeze_curve(rng, s, A, p0, fs, sub)
        pf[i0:] = 0.0
        pf[i0:i0 + len(c)] = c[:n - i0]
        g = s.co * A * _trap(s, fs)
        ab[i0:i0 + len(g)] += g[:n - i0]
        rows.append({"kind": "squeeze", "onset_s": i0 / fs, "offset_s": (i0 + k_off) / fs,
                     "amplitude": float(A * gain[i0]), "residual": float(s.r), "_sq": s})
    for e in evs:
        c = _event_curve(rng, e, fs)
        i0 = round(e.on * fs)
        ab[i0:i0 + len(c)] += e.p["abd"] * c[:n - i0]
        ev_pf[i0:i0 + len(c)] += e.p["pf"] * c[:n - i0]
        e.on, e.dur = i0 / fs, (len(c) - 1) / fs
    return pf * gain, ab, ev_pf, rows


# ------------------------------------------------------------------ backgrounds

def _breath(rng: U, n: int, fs: float, f0: float) -> np.ndarray:
    """Breathing wave, peak-to-peak ~1, with rate and depth wander."""
    f = f0 * (1 + 0.15 * _band(rng, n, fs, 0.001, 0.02))
    ph = 2 * np.pi * np.cumsum(f) / fs + rng.uniform(0, 2 * np.pi)
    return 0.5 * (np.sin(ph) + 0.2 * np.sin(2 * ph)) / 1.1 * (1 + 0.2 * _band(rng, n, fs, 0.001, 0.02))


def _ecg(rng: U, n: int, fs: float, amp: float, hr: float) -> np.ndarray:
    tt = np.arange(round(-0.1 * fs), round(0.4 * fs)) / fs
    gauss = lambda mu, sd: np.exp(-0.5 * ((tt - mu) / sd) ** 2)
    tpl = -0.15 * gauss(-0.03, 0.008) + gauss(0, 0.01) - 0.3 * gauss(0.03, 0.01) + 0.15 * gauss(0.25, 0.04)
    tpl *= amp * rng.choice([-1.0, 1.0])
    y, t = np.zeros(n + len(tt)), rng.uniform(0, 0.8)
    while t < n / fs:
        i = round(t * fs)
        y[i:i + len(tt)] += tpl * (1 + 0.1 * np.sin(0.5 * np.pi * t))
        t += 60 / hr * (1 + 0.04 * np.sin(2 * np.pi * 0.25 * t) + rng.normal(0, 0.02))
    return y[:n]


def _semg_unit(rng: U, n: int, fs: float) -> np.ndarray:
    """Unit-RMS sEMG carrier: Shwedyk PSD through a 20-450 Hz amplifier band."""
    nf = sfft.next_fast_len(n, real=True)
    f = np.fft.rfftfreq(nf, 1 / fs)
    fl, fh = rng.uniform(40, 70), rng.uniform(100, 160)
    psd = fh ** 4 * f ** 2 / ((f ** 2 + fl ** 2) * (f ** 2 + fh ** 2) ** 2)
    amp = (f / 20) ** 4 / (1 + (f / 20) ** 4) / (1 + (f / 450) ** 8)
    y = sfft.irfft(sfft.rfft(rng.standard_normal(nf)) * np.sqrt(psd * amp), nf)[:n]
    return y / y.std()


def _noise(rng: U, n: int, fs: float, colour: str) -> np.ndarray:
    if colour == "mix":
        return (_band(rng, n, fs, 10, 500, 0) + _band(rng, n, fs, 10, 500, 1)) / np.sqrt(2)
    return _band(rng, n, fs, 10, 500, 1.0 if colour == "pink" else 0.0)


# ------------------------------------------------------------------ assembly

def _pressure(rng: U, spec: dict, sub: Subject, pf: np.ndarray, ab: np.ndarray, ev_pf: np.ndarray,
              arts: list[Ev], fs: float) -> tuple[np.ndarray, np.ndarray, dict]:
    n = len(pf)
    t = np.arange(n) / fs
    br = _breath(rng, n, fs, sub.breath) * rng.uniform(0.5, 3.0) / sub.trans
    d = rng.uniform(1, 6) * (1 if rng.random() < 0.8 else -1)
    drift = d * (1 - np.exp(-t / rng.uniform(60, 200))) + rng.uniform(0.2, 1) * _band(rng, n, fs, 0.0005, 0.01)
    abd_in = ab + br
    x = pf + ev_pf + sub.trans * abd_in + drift
    x += rng.uniform(0, 0.2) * np.sin(2 * np.pi * sub.hr / 60 * t + rng.uniform(0, 6.3))
    a = abd_in + rng.uniform(-2, 2) * t / t[-1] + 0.3 * _band(rng, n, fs, 0.0005, 0.01)
    for e in arts:
        i0, i1 = round(e.on * fs), round(e.end * fs)
        k = np.arange(n)
        if e.kind in ("posture", "slip"):
            step = rng.uniform(0.5, 3) * rng.choice([-1, 1]) if e.kind == "posture" else -rng.uniform(2, 10)
            sh = step * _ease(np.clip((k - i0) / max(1, i1 - i0), 0, 1), "smooth")
            x += sh
            if e.kind == "posture":
                a += sh * rng.uniform(0.5, 1)
        elif e.kind == "motion":
            m = i1 - i0
            bump = _band(rng, m, fs, 0.3, 3) * np.hanning(m)
            bump = bump / max(np.abs(bump).max(), 1e-9) * rng.uniform(3, 20)
            x[i0:i1] += bump
            a[i0:i1] += bump * rng.uniform(0.5, 1)
        elif e.kind == "saturation":
            w = np.clip(np.minimum(k - i0, i1 - k) / (0.1 * fs), 0, 1)
            x += w * (spec["rail"][1] * rng.uniform(1.5, 2.5))
    x += rng.uniform(0.03, 0.15) * rng.standard_normal(n)
    a += rng.uniform(0.03, 0.15) * rng.standard_normal(n)
    x, a = np.clip(x, *spec["rail"]), np.clip(a, *spec["rail"])
    for e in arts:
        if e.kind == "flat":
            i0, i1 = round(e.on * fs), round(e.end * fs)
            x[i0:i1] = x[i0]
    return x, a, {}


def _emg(rng: U, spec: dict, sub: Subject, pf: np.ndarray, ab: np.ndarray, ev_pf: np.ndarray,
         arts: list[Ev], fs: float, sq_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    n = len(pf)
    env_pf = sub.tone + pf + ev_pf
    env_ab = sub.abd_tone * (1 + rng.uniform(0.1, 0.4) * 2 * _breath(rng, n, fs, sub.breath)) + ab
    m_pf, m_ab = _semg_unit(rng, n, fs) * env_pf, _semg_unit(rng, n, fs) * env_ab
    mx = m_pf + rng.uniform(0.05, 0.2) * m_ab
    ma = m_ab + rng.uniform(0.05, 0.15) * m_pf
    colour = spec["noise"] if spec["noise"] != "random" else str(rng.choice(["white", "pink", "mix"]))
    p_sig = float(np.mean(mx[sq_mask] ** 2))
    nz = _noise(rng, n, fs, colour) * np.sqrt(p_sig / 10 ** (spec["snr_db"] / 10))
    x = mx + nz
    a = ma + _noise(rng, n, fs, colour) * nz.std() * rng.uniform(0.8, 1.25)
    t = np.arange(n) / fs
    if spec["ecg"]:
        x += _ecg(rng, n, fs, rng.uniform(*spec["ecg"]), sub.hr)
    if spec["ecg_abd"]:
        a += _ecg(rng, n, fs, rng.uniform(*spec["ecg_abd"]), sub.hr)
    if spec["hum"]:
        h, ph = rng.uniform(*spec["hum"]), rng.uniform(0, 6.3, 2)
        x += h * (1 + 0.3 * _band(rng, n, fs, 0.01, 0.2)) * (np.sin(2 * np.pi * 50 * t + ph[0])
                                                               + rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * 150 * t + ph[1]))
    for e in arts:
        i0, i1 = round(e.on * fs), round(e.end * fs)
        m = i1 - i0
        if e.kind == "motion":
            b = _band(rng, m, fs, 0.5, 8) * np.hanning(m)
            x[i0:i1] += b / max(np.abs(b).max(), 1e-9) * rng.uniform(100, 800)
        elif e.kind == "pop":
            x[i0:i1] += rng.choice([-1, 1]) * rng.uniform(1000, 6000) * np.exp(-np.arange(m) / (m / 5))
        elif e.kind == "saturation":
            w = np.clip(np.minimum(np.arange(m), m - 1 - np.arange(m)) / (0.05 * fs), 0, 1)
            x[i0:i1] += rng.choice([-1, 1]) * EMG_RAIL * rng.uniform(1.5, 2.5) * w
    x += rng.uniform(-300, 300)
    a += rng.uniform(-300, 300)
    parts = {"muscle": mx, "noise": nz, "colour": colour}
    return np.clip(x, *spec["rail"]), np.clip(a, *spec["rail"]), parts


def _clipped_runs(x: np.ndarray, rail: tuple[float, float], fs: float) -> list[tuple[float, float]]:
    hit = np.concatenate([[0], ((x <= rail[0]) | (x >= rail[1])).astype(int), [0]])
    d = np.diff(hit)
    return [(a / fs, b / fs) for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))]


def _rest(busy: list[tuple[float, float]], dur: float) -> list[list[float]]:
    out, cur = [], 1.0
    for a, b in sorted(busy):
        if a - cur >= 1.0:
            out.append([cur, a])
        cur = max(cur, b)
    if dur - cur >= 1.0:
        out.append([cur, dur])
    return out


def _synth(scenario: str, seed: int) -> tuple[dict, dict]:
    spec = SCENARIOS[scenario]
    rng = np.random.default_rng([int(seed), zlib.crc32(scenario.encode())])
    sig, fs, two = spec["signal"], float(spec["rate"]), spec["channels"] == 2
    sub = _subject(rng, sig)
    sqs, end = _free(rng, sub, sig, spec) if spec["session"] == "free" else _cued(rng, sub, sig, spec)
    evs = _abd_events(rng, sub, spec, sqs, end)
    arts = _artefact_events(rng, spec, sqs, evs, end)
    end = max([end, rng.uniform(120, 130)] + [e.end + 8 for e in evs + arts])   # >= 2 min
    n = int(round(end * fs))
    gain = np.ones(n)
    for e in arts:
        if e.kind == "slip":
            gain[round(e.end * fs):] *= rng.uniform(0.6, 0.9)
    pf, ab, ev_pf, rows = _render(rng, sub, sqs, evs, n, fs, gain)
    sq_mask = np.zeros(n, bool)
    for r in rows:
        sq_mask[round(r["onset_s"] * fs):round(r["offset_s"] * fs) + 1] = True
    if sig == "pressure":
        x, a, parts = _pressure(rng, spec, sub, pf, ab, ev_pf, arts, fs)
    else:
        x, a, parts = _emg(rng, spec, sub, pf, ab, ev_pf, arts, fs, sq_mask)
    truth, busy = [], []
    for k, r in enumerate(rows):
        s: Sq = r.pop("_sq")
        nxt = rows[k + 1]["onset_s"] if k + 1 < len(rows) else np.inf
        lasts = min(s.plateau, nxt - r["offset_s"])
        relaxed = True if s.r <= 0.05 else (False if 0.2 <= s.r <= 0.6 and lasts >= 1.5 else None)
        r.update(relaxed=relaxed, technique=s.tech if two else None,
                 quick=r["offset_s"] - r["onset_s"] < 1.5, cue_s=s.cue)
        truth.append(r)
        busy.append((r["onset_s"] - 1, r["offset_s"] + (s.plateau + s.decay if s.r > 0 else 0) + 2))
    for e in evs:
        truth.append({"kind": e.kind, "onset_s": e.on, "offset_s": e.end, "relaxed": None,
                      "technique": ("push" if e.kind == "bearing_down" else None) if two else None,
                      "quick": False, "cue_s": None, "residual": 0.0,
                      "amplitude": float(e.p["abd"])})
        busy.append((e.on - 1, e.end + 2))
    truth.sort(key=lambda r: r["onset_s"])
    art = [{"kind": "motion" if e.kind in ("posture", "slip") else e.kind, "start_s": e.on,
            "end_s": e.end, "channel": "x"} for e in arts]
    for name, arr in (("x", x), ("abd", a if two else None)):
        if arr is not None:
            art += [{"kind": "saturation", "start_s": s0, "end_s": s1, "channel": name}
                    for s0, s1 in _clipped_runs(arr, spec["rail"], fs)]
    art = _merge_sat(art)
    busy += [(d["start_s"] - 1, d["end_s"] + 2) for d in art]
    dur = n / fs
    for key, ch in (("ecg", "x"), ("ecg_abd", "abd")):
        if spec[key]:
            art.append({"kind": "ecg", "start_s": 0.0, "end_s": dur, "channel": ch})
    if spec["hum"]:
        art.append({"kind": "hum", "start_s": 0.0, "end_s": dur, "channel": "x"})
    art.sort(key=lambda d: d["start_s"])
    rec = {"signal": sig, "rate": fs, "x": x, "abd": a if two else None, "truth": truth,
           "artefacts": art, "rest_intervals": _rest(busy, dur), "duration_s": dur,
           "snr_db": spec["snr_db"], "description": spec["description"]
           + (f"; MVC {sub.mvc:.0f} cmH2O" if sig == "pressure" else f"; quick EMG {sub.act:.0f} uV RMS")}
    parts.update(subject=sub, sq_mask=sq_mask)
    return rec, parts


def _merge_sat(art: list[dict]) -> list[dict]:
    """Merge overlapping saturation entries of the same channel."""
    sat = sorted((d for d in art if d["kind"] == "saturation"), key=lambda d: (d["channel"], d["start_s"]))
    out: list[dict] = []
    for d in sat:
        if out and out[-1]["channel"] == d["channel"] and d["start_s"] <= out[-1]["end_s"]:
            out[-1]["end_s"] = max(out[-1]["end_s"], d["end_s"])
        else:
            out.append(dict(d))
    return [d for d in art if d["kind"] != "saturation"] + out


def generate(scenario: str, seed: int) -> dict:
    """One synthetic record of `scenario` (a key of SCENARIOS); deterministic in seed."""
    return _synth(scenario, seed)[0]


# ------------------------------------------------------------------ CLI

def _summary(rec: dict) -> str:
    tr = rec["truth"]
    c = {k: sum(1 for e in tr if e["kind"] == k) for k in ("squeeze", "cough", "bearing_down")}
    arts = [a for a in rec["artefacts"] if a["kind"] not in ("ecg", "hum")]
    return (f"{rec['description']}\n  {rec['duration_s']:.0f} s, squeezes {c['squeeze']}, coughs {c['cough']}, "
            f"pushes {c['bearing_down']}, transient artefacts {len(arts)}, "
            f"rest {sum(b - a for a, b in rec['rest_intervals']):.0f} s")


def plot(rec: dict, path: str, window: tuple[float, float] | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fs, chans = rec["rate"], [("x", rec["x"])] + ([("abd", rec["abd"])] if rec["abd"] is not None else [])
    fig, axes = plt.subplots(len(chans), 1, figsize=(16, 3.2 * len(chans)), sharex=True, squeeze=False)
    colours = {"squeeze": "tab:green", "cough": "tab:red", "bearing_down": "tab:purple"}
    for ax, (name, y) in zip(axes[:, 0], chans):
        t = np.arange(len(y)) / fs
        if rec["signal"] == "emg":
            ax.plot(t, y - np.median(y), lw=0.3, color="0.6")
            w = int(0.1 * fs)
            env = np.sqrt(np.convolve((y - np.median(y)) ** 2, np.ones(w) / w, "same"))
            ax.plot(t, env, lw=0.8, color="k")
            ax.set_ylim(-4 * np.percentile(env, 99), 4 * np.percentile(env, 99))
            ax.set_ylabel(f"{name} uV")
        else:
            ax.plot(t, y, lw=0.7, color="k")
            ax.set_ylabel(f"{name} cmH2O")
        for e in rec["truth"]:
            ax.axvspan(e["onset_s"], e["offset_s"], color=colours[e["kind"]], alpha=0.25, lw=0)
            if e["kind"] == "squeeze" and e["relaxed"] is not True:
                ax.axvline(e["offset_s"], color="orange" if e["relaxed"] is False else "m", lw=1)
            if e.get("cue_s") is not None:
                ax.axvline(e["cue_s"], color="tab:blue", lw=0.5, ls=":")
        for a in rec["artefacts"]:
            if a["kind"] not in ("ecg", "hum"):
                ax.axvspan(a["start_s"], a["end_s"], color="0.3", alpha=0.35, hatch="//", lw=0)
        y0 = ax.get_ylim()[0]
        for a, b in rec["rest_intervals"]:
            ax.plot([a, b], [y0, y0], color="tab:cyan", lw=4)
        if window:
            ax.set_xlim(*window)
    axes[0, 0].set_title(_summary(rec).replace("\n", " |"), fontsize=9)
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Independent physiological squeeze-signal generator")
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("seed", type=int)
    ap.add_argument("--plot", help="write a PNG with truth spans shaded")
    ap.add_argument("--window", nargs=2, type=float, metavar=("T0", "T1"), help="zoom (s)")
    args = ap.parse_args(argv)
    rec = generate(args.scenario, args.seed)
    print(_summary(rec))
    if args.plot:
        plot(rec, args.plot, tuple(args.window) if args.window else None)


if __name__ == "__main__":
    main()
