"""`knip export`: a stored session as CSV (for a spreadsheet) or EDF+ (for
biosignal viewers such as EDFbrowser).

Both work from the decoded `Session` only: samples in the signal's unit
(counts / counts_per_unit), the detector's events, the coaching cues and the
gaps where samples were lost.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .session import Session

PLACEHOLDER_DATE = dt.datetime(1985, 1, 1, 0, 0, 0)   # EDF+: "01.01.85" when the date is unknown
SQUEEZE_CUES = ("squeeze", "hold", "contract", "lift")


# ------------------------------------------------------------------ shared

def signal_column(session: Session) -> str:
    """Header name of the main signal, unit included: 'pressure_cmH2O', 'emg_uV'."""
    return f"{session.signal}_{session.unit}" if session.unit else session.signal


def decimals(counts_per_unit: float) -> int:
    """Digits after the point that show every count exactly (20/unit: 2, 16: 4,
    1: 0); 6 when one count has no short decimal form."""
    cpu = float(counts_per_unit)
    if cpu <= 0 or not math.isfinite(cpu):
        return 6
    step = 1.0 / cpu
    for d in range(7):
        if abs(round(step, d) * cpu - 1.0) < 1e-9 and (cpu <= 1 or round(step, d) > 0):
            return d
    return 6


def verdict(ev: dict[str, Any]) -> str:
    relaxed = ev.get("relaxed")
    if relaxed is None:
        return "relaxation not judged"
    return "relaxed" if relaxed else "not relaxed"


def event_label(ev: dict[str, Any], number: int, unit: str) -> str:
    """'squeeze 1: peak 32.1 cmH2O, held 4.2 s, relaxed' (kind-specific)."""
    kind = str(ev.get("kind") or "event")
    name = kind.replace("_", " ")
    u = f" {unit}" if unit else ""
    parts = []
    if ev.get("peak") is not None:
        parts.append(f"peak {float(ev['peak']):.1f}{u}")
    if kind == "squeeze":
        if ev.get("hold_s") is not None:
            parts.append(f"held {float(ev['hold_s']):.1f} s")
        parts.append(verdict(ev))
        if ev.get("relaxed") is False and ev.get("residual") is not None:
            parts[-1] += f" ({float(ev['residual']):.1f}{u} left)"
        if ev.get("rest_ok") is False:
            parts.append("rest before it too short")
    elif ev.get("duration_s") is not None:
        parts.append(f"{float(ev['duration_s']):.1f} s")
    if ev.get("technique"):
        parts.append(str(ev["technique"]).replace("_", "-"))
    return f"{name} {number}: " + ", ".join(parts)


def numbered_events(events: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(number within its kind, event), by onset: squeeze 1, 2, ...; cough 1, ..."""
    seen: dict[str, int] = {}
    out = []
    for ev in sorted(events, key=lambda e: float(e.get("onset_s") or 0.0)):
        kind = str(ev.get("kind") or "event")
        seen[kind] = seen.get(kind, 0) + 1
        out.append((seen[kind], ev))
    return out


def _secs(ms: Any) -> str:
    return f"{float(ms) / 1000:g} s"


def cue_label(cue: dict[str, Any]) -> str:
    """'cue: squeeze 3/10 (1 s, target 80% MVC)', 'cue: relax 3/10 (2 s)',
    'cue: rest (20 s)', 'cue: done'. Cue dicts as the decoder gives them:
    t_ms, cue (rest / squeeze / relax / done), phase (the program block),
    rep, reps, dur_ms, target_pct (0 when there is no target)."""
    name = str(cue.get("cue") or "cue")
    rep, reps = cue.get("rep"), cue.get("reps")
    if rep and reps and int(reps) > 1:
        name += f" {rep}/{reps}"
    extra = []
    if cue.get("dur_ms"):
        extra.append(_secs(cue["dur_ms"]))
    if cue.get("target_pct"):
        extra.append(f"target {float(cue['target_pct']):g}% MVC")
    return f"cue: {name}" + (f" ({', '.join(extra)})" if extra else "")


def phase_notes(cues: list[dict[str, Any]], short: bool = False) -> list[tuple[float, str]]:
    """(time s, text) where each block of the program begins: 'set: 10 x squeeze
    1 s, target 80% MVC', 'rest 20 s', 'program done' (short: '10 x 1 s', and
    rests left out). A phase given as a name is put in front."""
    out: list[tuple[float, str]] = []
    phase: Any = object()
    for c in sorted(cues, key=lambda c: c.get("t_ms") or 0):
        if c.get("phase") == phase:
            continue
        phase = c.get("phase")
        at = float(c.get("t_ms") or 0) / 1000.0
        kind = str(c.get("cue") or "")
        dur = _secs(c["dur_ms"]) if c.get("dur_ms") else ""
        if kind == "squeeze":
            reps = int(c.get("reps") or 1)
            if short:
                text = f"{reps} x {dur}".strip()
            else:
                text = f"set: {reps} x squeeze {dur}".rstrip()
                if c.get("target_pct"):
                    text += f", target {float(c['target_pct']):g}% MVC"
        elif kind == "rest":
            if short:
                continue
            text = f"rest {dur}".rstrip()
        elif kind == "done":
            text = "done" if short else "program done"
        else:
            text = kind or "phase"
        if isinstance(phase, str) and phase:
            text = f"{phase}: {text}"
        out.append((at, text))
    return out


def gap_spans(session: Session) -> list[tuple[float, float, int]]:
    """(start s, length s, samples missing) of every gap.

    A gap (index, n) is written by the device as it happens: `index` counts
    every sample of the session, the lost ones included (so for the first gap
    it is also the index in `values`), and n samples were lost from there on.
    The gap ends where the next sample that was kept was taken."""
    rate = float(session.rate_hz)
    t = np.asarray(session.t_ms)
    out = []
    lost_before = 0
    for index, missing in sorted(session.gaps or []):
        index, missing = int(index), int(missing)
        k = index - lost_before                 # the first kept sample after the gap
        lost_before += missing
        length = missing / rate
        if 0 <= k < len(t):
            end = float(t[k]) / 1000.0
        elif len(t):
            end = float(t[-1]) / 1000.0 + 1.0 / rate + length
        else:
            end = length
        out.append((round(end - length, 6), round(length, 6), missing))
    return out


def _fmt(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        return "" if not math.isfinite(float(x)) else repr(round(float(x), 6))
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if x is None:
        return ""
    return x


# ------------------------------------------------------------------ CSV

def export_csv(session: Session, path: str | Path) -> list[Path]:
    """Write the session as plain CSV files a spreadsheet opens directly.

    `path` (e.g. `knip-sim-0001-3.csv`): one header row, then one row per sample:
        time_s, <signal>_<unit> (e.g. pressure_cmH2O or emg_uV)[, abdominal_<unit>]
    time_s is seconds since the session started (3 decimals); values are in the
    signal's unit with just enough decimals to show every sample count exactly.
    Where samples were lost (gaps), time_s jumps; no rows are invented.

    `<stem>_events.csv` beside it: one row per detected event (squeeze, cough,
    bearing down) with a `number` column (1, 2, ... per kind), `label` (the
    same text as the EDF annotation) and every field of the event dict
    (onset_s, offset_s, peak, hold_s, relaxed as yes/no, ...); empty cells for
    values the detector could not judge.

    `<stem>_cues.csv` beside it, only when the session had a coaching program:
    one row per cue (time_s, cue, phase, rep, reps, dur_s, target_pct, label).

    No comment lines anywhere: every file is a clean table (information such as
    the date is in `knip show`). Returns the paths written, the samples first.
    """
    out = Path(path)
    written = [out]
    level = np.asarray(session.level(), dtype=float)
    d = decimals(session.counts_per_unit)
    t_s = np.asarray(session.t_ms, dtype=float) / 1000.0
    cols = ["time_s", signal_column(session)]
    abd = None
    if session.abd is not None:
        abd = np.asarray(session.abd, dtype=float) / float(session.counts_per_unit)
        cols.append(f"abdominal_{session.unit}" if session.unit else "abdominal")
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        time_txt = [f"{x:.3f}" for x in t_s]
        lvl_txt = [f"{x:.{d}f}" for x in level]
        if abd is None:
            w.writerows(zip(time_txt, lvl_txt))
        else:
            w.writerows(zip(time_txt, lvl_txt, [f"{x:.{d}f}" for x in abd]))

    ev_path = out.with_name(f"{out.stem}_events{out.suffix or '.csv'}")
    keys: list[str] = []
    for ev in session.events:
        keys += [k for k in ev if k not in keys]
    with ev_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["number", *keys, "label"])
        for number, ev in numbered_events(session.events):
            w.writerow([number, *(_fmt(ev.get(k)) for k in keys),
                        event_label(ev, number, session.unit)])
    written.append(ev_path)

    if session.cues:
        cue_path = out.with_name(f"{out.stem}_cues{out.suffix or '.csv'}")
        with cue_path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["time_s", "cue", "phase", "rep", "reps", "dur_s", "target_pct", "label"])
            for c in sorted(session.cues, key=lambda c: c.get("t_ms") or 0):
                w.writerow([f"{float(c.get('t_ms') or 0) / 1000:.3f}", _fmt(c.get("cue")),
                            _fmt(c.get("phase")), _fmt(c.get("rep")), _fmt(c.get("reps")),
                            "" if c.get("dur_ms") is None else f"{float(c['dur_ms']) / 1000:g}",
                            _fmt(c.get("target_pct")), cue_label(c)])
        written.append(cue_path)
    return written


# ------------------------------------------------------------------ EDF+

def record_duration(rate_hz: float) -> tuple[float, int]:
    """(data record seconds, samples per record): 1 s when the rate is a whole
    number, else the shortest duration holding a whole number of samples."""
    frac = Fraction(float(rate_hz)).limit_denominator(1000)
    if frac.denominator == 1:
        return 1.0, int(frac.numerator)
    return float(frac.denominator), int(frac.numerator)


def on_grid(session: Session, data: np.ndarray, rate: float, t0_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Place samples on the uniform grid EDF needs (sample k at t0 + k/rate),
    using their time stamps; slots nobody filled (gaps) hold the last value
    before them. Returns (grid values, mask of real samples)."""
    t = np.asarray(session.t_ms, dtype=float)
    slot = np.rint((t - t0_ms) * rate / 1000.0).astype(np.int64)
    n = int(slot[-1]) + 1 if len(slot) else 0
    grid = np.zeros(n, dtype=float)
    real = np.zeros(n, dtype=bool)
    slot = np.clip(slot, 0, max(n - 1, 0))
    grid[slot] = data
    real[slot] = True
    if n and not real.all():
        last = np.maximum.accumulate(np.where(real, np.arange(n), 0))
        grid = grid[last]
    return grid, real


def physical_range(x: np.ndarray, quantum: float) -> tuple[float, float]:
    """Data range widened by 5 % (at least 10 counts) each side, rounded outwards
    to whole counts so the header shows tidy numbers."""
    lo, hi = (float(np.min(x)), float(np.max(x))) if len(x) else (0.0, 1.0)
    margin = max(0.05 * (hi - lo), 10 * quantum, 1e-6)
    lo, hi = lo - margin, hi + margin
    lo = math.floor(lo / quantum) * quantum
    hi = math.ceil(hi / quantum) * quantum
    return round(lo, 6), round(hi, 6)


def _edf_field(text: str, limit: int = 80) -> str:
    """EDF+ subfields: printable ASCII, no spaces."""
    text = re.sub(r"[^\x21-\x7e]", "_", str(text)) or "X"
    return text[:limit]


def edf_annotations(session: Session, t0_s: float = 0.0, padded_s: float = 0.0,
                    data_end_s: float | None = None,
                    clock_known: bool | None = None) -> list[tuple[float, float | None, str]]:
    """(onset s from the file start, duration s or None, text) for every event,
    cue and gap, plus notes on an unset clock and the padding."""
    unit = session.unit
    out: list[tuple[float, float | None, str]] = []
    if clock_known is None:
        clock_known = session.start_epoch is not None
    if not clock_known:
        out.append((0.0, None, "device clock was not set: date and time unknown "
                               "(1985-01-01 00:00:00 is the EDF+ placeholder)"))
    if not session.complete:
        out.append((0.0, None, "session recovered after a power cut: it ends where the "
                               "last data reached the flash"))
    for number, ev in numbered_events(session.events):
        on, off = ev.get("onset_s"), ev.get("offset_s")
        if on is None:
            continue
        kind = str(ev.get("kind") or "event").replace("_", " ")
        dur = float(off) - float(on) if off is not None else None
        out.append((float(on) - t0_s, dur, event_label(ev, number, unit)))
        if ev.get("peak_s") is not None:
            out.append((float(ev["peak_s"]) - t0_s, None, f"{kind} {number} peak"))
        if off is not None:
            out.append((float(off) - t0_s, None, f"{kind} {number} end: {verdict(ev)}"
                        if kind == "squeeze" else f"{kind} {number} end"))
    for c in session.cues:
        at = float(c.get("t_ms") or 0) / 1000.0 - t0_s
        dur = float(c["dur_ms"]) / 1000.0 if c.get("dur_ms") else None
        out.append((at, dur, cue_label(c)))
    for at, text in phase_notes(session.cues or []):
        out.append((at - t0_s, None, text))
    for start, length, missing in gap_spans(session):
        out.append((start - t0_s, length, f"gap: {missing} samples lost ({length:.3f} s); "
                                          f"the trace holds the last value"))
    if padded_s > 0 and data_end_s is not None:
        out.append((data_end_s, padded_s, f"end of data: the last {padded_s:.3f} s are padding "
                                          f"(EDF data records are whole; last value held)"))
    out = [(max(0.0, round(a, 6)), None if d is None else max(0.0, round(d, 6)), text)
           for a, d, text in out]
    out.sort(key=lambda a: a[0])
    return out


def export_edf(session: Session, path: str | Path) -> Path:
    """Write the session as EDF+ (continuous, EDF+C) with annotations.

    Channels: the signal (label 'pressure' or 'EMG') and, with two channels,
    'abdominal', in their physical unit (cmH2O, uV), 16-bit digital, physical
    range = the data range plus 5 % margin. Sample k of the file is at
    start + k / rate: samples lost in a gap are filled with the last value
    before it and marked by a 'gap' annotation. Data records are 1 s (for a
    whole-number rate); the last one is padded by holding the last value and
    an annotation says how much is padding.

    Start date and time: from start_epoch in this computer's local time; when
    the device clock was not set, 01.01.85 00:00:00 (the EDF+ placeholder) and
    an annotation saying so.

    Annotations: every event at its onset, with its duration and a verdict
    ('squeeze 1: peak 32.1 cmH2O, held 4.2 s, relaxed'), its peak and its end;
    every coaching cue ('cue: squeeze 3/10 (1 s, target 80% MVC)') and where
    each block of the program begins ('set: 10 x squeeze 1 s, target 80% MVC');
    every gap; the padding; an unset clock; a recovery after a power cut.
    """
    import edfio

    rate = float(session.rate_hz)
    if len(session.values) == 0:
        raise ValueError(f"{session.key} has no samples: nothing to write to EDF")
    rec_s, per_rec = record_duration(rate)
    t0_ms = float(session.t_ms[0])
    cpu = float(session.counts_per_unit)
    quantum = 1.0 / cpu if cpu > 0 else 1.0

    channels = [("pressure" if session.signal == "pressure" else session.signal.upper(),
                 np.asarray(session.values, dtype=float) / cpu,
                 "pressure probe" if session.signal == "pressure" else "surface EMG electrodes")]
    if session.abd is not None:
        channels.append(("abdominal", np.asarray(session.abd, dtype=float) / cpu,
                         "abdominal pressure" if session.signal == "pressure"
                         else "abdominal EMG electrodes"))

    grids = []
    for _, data, _ in channels:
        grid, _real = on_grid(session, data, rate, t0_ms)
        grids.append(grid)
    n = len(grids[0])
    n_rec = max(1, math.ceil(n / per_rec))
    pad = n_rec * per_rec - n
    signals = []
    for (label, data, transducer), grid in zip(channels, grids):
        if pad:
            grid = np.concatenate([grid, np.full(pad, grid[-1])])
        lo, hi = physical_range(data, quantum)
        signals.append(edfio.EdfSignal(
            grid, sampling_frequency=rate, label=label, transducer_type=transducer,
            physical_dimension=session.unit or "", physical_range=(lo, hi),
            digital_range=(-32768, 32767)))

    start = None
    if session.start_epoch is not None:
        start = dt.datetime.fromtimestamp(session.start_epoch + t0_ms / 1000.0)
        if not 1985 <= start.year <= 2084:     # beyond EDF's two-digit years: not a real clock
            start = None
    recording = edfio.Recording(
        # None: "Startdate X" in the recording field, 01.01.85 in the header (EDF+)
        startdate=start.date() if start else None,
        equipment_code=_edf_field(f"knip-{session.device_id}", 30),
        additional=[_edf_field(f"session-{session.session_id}", 20),
                    *([_edf_field(f"program-{session.program}", 24)] if session.program else [])])
    notes = edf_annotations(session, t0_s=t0_ms / 1000.0, padded_s=pad / rate,
                            data_end_s=n / rate, clock_known=start is not None)
    edf = edfio.Edf(
        signals, patient=edfio.Patient(), recording=recording,
        starttime=(start or PLACEHOLDER_DATE).time(), data_record_duration=rec_s,
        annotations=[edfio.EdfAnnotation(a, d, text) for a, d, text in notes])
    out = Path(path)
    edf.write(out)
    return out
