"""The plain-text report of `knip analyze`: header, one row per event, summary.

Annotations from the file (HRM exports) are interleaved with the events in
time order, so "Squeeze 1" sits just above the squeeze it announced.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Protocol

from .recordings import Recording

DASH = "-"
SHORT_REST = "!"          # mark on a rest shorter than the squeeze before it
KIND_LABEL = {"squeeze": "squeeze", "cough": "cough", "bearing_down": "bearing down", "artefact": "artefact"}


class AnalysisLike(Protocol):
    events: list[dict[str, Any]]
    summary: dict[str, Any]


def render(rec: Recording, analysis: AnalysisLike, *, signal: str, channel: str,
           abdominal: str | None = None, notes: Iterable[str] = ()) -> str:
    """The whole report as one string (ends with a newline)."""
    warnings = getattr(analysis, "warnings", None)
    lines = header(rec, signal=signal, channel=channel, abdominal=abdominal, notes=notes,
                   warnings=rec.warnings if warnings is None else warnings)
    lines.append("")
    lines += table(analysis.events, rec.annotations, unit=rec.unit)
    lines.append("")
    lines += summary(analysis.events, unit=rec.unit, detector=analysis.summary)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ header

def header(rec: Recording, *, signal: str, channel: str, abdominal: str | None,
           notes: Iterable[str] = (), warnings: list[str] | None = None) -> list[str]:
    warnings = rec.warnings if warnings is None else warnings
    unit = rec.unit or "unit unknown"
    out = [
        f"file       {rec.path}",
        f"format     {rec.format}, {rec.rate_hz:.4g} Hz, {rec.n_samples} samples, "
        f"{_duration(rec.duration_s)}, {unit}",
        f"signal     {signal}: channel {channel}"
        + (f", abdominal {abdominal}" if abdominal else ", no abdominal channel (technique not judged)"),
    ]
    out += [f"note       {n}" for n in notes]
    if warnings:
        out += [f"warning    {w}" for w in warnings]
    else:
        out.append("warnings   none")
    return out


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {s % 60:04.1f} s"


# ------------------------------------------------------------------- table

COLUMNS = ("#", "kind", "onset s", "offset s", "peak", "hold s", "rise s", "release s",
           "residual", "relaxed", "rest s ", "technique")
RIGHT = {"#", "onset s", "offset s", "peak", "hold s", "rise s", "release s", "residual", "rest s "}
# "rest s" cells end in the short-rest mark or a space, so the numbers stay aligned.


def table(events: list[dict[str, Any]], annotations: list[tuple[float, str]],
          *, unit: str = "") -> list[str]:
    """Aligned event rows with annotation rows interleaved by time."""
    heads = [c if c not in ("peak", "residual") or not unit else f"{c} {unit}" for c in COLUMNS]
    rows: list[tuple[float, int, list[str]]] = []
    for i, ev in enumerate(events, 1):
        rows.append((float(ev.get("onset_s") or 0.0), 1, event_cells(i, ev)))
    for t, label in annotations:
        rows.append((t, 0, [">", "note", f"{t:.2f}", label]))
    rows.sort(key=lambda r: (r[0], r[1]))

    cells = [r[2] for r in rows if r[1] == 1]
    widths = [max([len(h)] + [len(c[j]) for c in cells]) for j, h in enumerate(heads)]

    def fmt(row: list[str]) -> str:
        # An annotation row has 4 cells: its label runs on past the onset column.
        parts = [cell.rjust(w) if COLUMNS[j] in RIGHT else cell.ljust(w)
                 for j, (cell, w) in enumerate(zip(row, widths))]
        if len(row) == 4:
            parts[3] = row[3]
        return "  ".join(parts).rstrip()

    out = [fmt(heads)]
    out += [fmt(row) for _, _, row in rows]
    if not events:
        out.append("(no events found)")
    if any(ev.get("rest_ok") is False for ev in events):
        out.append(f"{SHORT_REST} rest shorter than the squeeze before it (rest at least as long as you hold)")
    return out


def event_cells(i: int, ev: dict[str, Any]) -> list[str]:
    rest = _num(ev.get("rest_before_s"), 1) + (SHORT_REST if ev.get("rest_ok") is False else " ")
    kind = KIND_LABEL.get(str(ev.get("kind")), str(ev.get("kind")))
    art = ev.get("artefact")
    if art:
        kind += f" ({art})"                 # gap, flat, saturation, motion, spike or other
    elif ev.get("cut"):
        kind += " (cut)"                    # ended by a gap or an artefact (or 90 s on): no release seen
    blank = art is not None                 # an artefact's shape: no hold, rise or release
    return [
        str(i),
        kind,
        _num(ev.get("onset_s"), 2),
        _num(ev.get("offset_s"), 2),
        DASH if art in ("gap", "flat", "saturation") else _value(ev.get("peak")),
        DASH if blank else _num(ev.get("hold_s"), 1),
        DASH if blank else _num(ev.get("rise_s"), 2),
        DASH if blank or ev.get("cut") else _num(ev.get("release_s"), 2),
        _value(ev.get("residual")),
        _yes_no(ev.get("relaxed")),
        rest,
        (ev.get("technique") or DASH).replace("_", "-"),
    ]


def _num(v: Any, digits: int) -> str:
    if v is None:
        return DASH
    try:
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return str(v)


def _value(v: Any) -> str:
    """A signal value with sensible precision whatever its scale."""
    if v is None:
        return DASH
    x = float(v)
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _yes_no(v: Any) -> str:
    return DASH if v is None else ("yes" if v else "no")


# ----------------------------------------------------------------- summary

def summary(events: list[dict[str, Any]], *, unit: str = "",
            detector: dict[str, Any] | None = None) -> list[str]:
    """Counts per kind, strength, relaxation and rests; `detector` adds the
    analysis's own figures (rest level, noise, decision delay) when present."""
    u = f" {unit}" if unit else ""
    kinds = Counter(str(ev.get("kind")) for ev in events)
    counts = ", ".join(f"{KIND_LABEL.get(k, k)} {kinds.get(k, 0)}"
                       for k in list(KIND_LABEL) + sorted(set(kinds) - set(KIND_LABEL)))
    out = ["summary", f"  events          {len(events)}: {counts}"]
    squeezes = [ev for ev in events if ev.get("kind") == "squeeze"]
    peaks = [float(ev["peak"]) for ev in squeezes if ev.get("peak") is not None]
    if peaks:
        line = (f"  mean peak       {_value(sum(peaks) / len(peaks))}{u} over {len(peaks)} "
                f"squeeze(s), strongest {_value(max(peaks))}{u}")
        amps = [float(ev["amplitude"]) for ev in squeezes if ev.get("amplitude") is not None]
        if amps:
            line += f"; {_value(sum(amps) / len(amps))}{u} above rest on average"
        out.append(line)
    judged = [ev for ev in squeezes if ev.get("relaxed") is not None]
    if judged:
        ok = sum(1 for ev in judged if ev["relaxed"])
        out.append(f"  relaxed after   {ok} of {len(judged)} squeeze(s) ({100 * ok / len(judged):.0f} %)")
    rests = [ev for ev in squeezes if ev.get("rest_ok") is not None]
    if rests:
        short = sum(1 for ev in rests if ev["rest_ok"] is False)
        out.append(f"  rests too short {short} of {len(rests)}")
    tech = Counter(ev["technique"] for ev in events if ev.get("technique"))
    if tech:
        out.append("  technique       " + ", ".join(f"{k.replace('_', '-')} {n}"
                                                    for k, n in tech.most_common()))
    detector = detector or {}
    figures = []
    if detector.get("rest_level") is not None:
        figures.append(f"rest level {_value(detector['rest_level'])}{u}")
    if detector.get("noise") is not None:
        figures.append(f"noise {_value(detector['noise'])}{u}")
    if detector.get("decision_delay_ms") is not None:
        figures.append(f"decides {detector['decision_delay_ms']} ms after onset")
    if figures:
        out.append("  detector        " + ", ".join(figures))
    return out
