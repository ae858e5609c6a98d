"""`knip report --html FILE`: one self-contained HTML file a physiotherapist
can open in any browser: who and which trainer, the period, notes (pain,
calibration, gaps), the trend plots, the week-by-week table, one row per
session and, per session, a collapsible table with the verdict on every
cued squeeze and rest.

Self-contained: the CSS is inline, the plots are PNGs embedded as base64
data URIs, there are no links to anything outside the file and no
JavaScript (the per-squeeze tables use <details>). Every piece of text from
the database goes through html.escape. Every number comes from the synced
sessions (see knip_host.trends); "-" means the session did not have it.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import trends as T
from .durations import minutes
from .trend_plots import PANELS, panel_png, panels_with_data

PAIN_ADVICE = ("Train within the pain limit: pain often comes later, after the activity. "
               "Sudden, severe back pain in late pregnancy or while breastfeeding is a reason "
               "to see a doctor, not to train harder.")
UNCALIBRATED = "no calibration: % MVC relative to her best squeeze that day"
NOT_MEDICAL = ("Knip is not a certified medical device. The figures are measurements to "
               "discuss, not a diagnosis.")

SESSION_HEADERS = ("Date", "Session", "Program", "Duration", "MVC", "Power (Oxford)",
                   "Endurance", "Repetitions", "Fast contractions", "Relaxed fully",
                   "Rested long enough", "Technique", "Resting tone", "Pain before/after")
WEEK_HEADERS = ("Week", "From", "Sessions", "Best MVC", "Strongest squeeze", "Best endurance",
                "Best fast count", "Relaxed fully", "Resting tone", "Pain before/after")
CHECK_ORDER = ("on_cue", "target", "held", "relaxed", "rested", "technique", "steady", "low")
CHECK_LABEL = {"on_cue": "On cue", "target": "Target", "held": "Held", "relaxed": "Relaxed",
               "rested": "Rested", "technique": "Technique", "steady": "Steady", "low": "Low"}

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       color: #1d1d1f; margin: 0 auto; max-width: 1280px; padding: 1.5em 2em 3em; }
.wide { overflow-x: auto; }
h1 { font-size: 1.6em; margin: 0 0 .3em; }
h2 { font-size: 1.25em; margin: 1.8em 0 .6em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .4em 0 1em; font-size: 13px; }
th, td { border: 1px solid #d9d9d9; padding: .25em .45em; text-align: left; vertical-align: top; }
table.sessions, table.verdicts { font-size: 12px; }
td.num, .nowrap { white-space: nowrap; }
th { background: #f2f4f7; font-weight: 600; }
td.num { text-align: right; }
tbody tr:nth-child(even) { background: #fafafa; }
table.meta th { background: none; border: none; padding-left: 0; width: 9em; }
table.meta td { border: none; }
.notes p { margin: .4em 0; padding: .5em .8em; border-left: 4px solid #b0b8c4; background: #f5f7fa; }
.notes p.pain { border-color: #d9822b; background: #fff6ec; }
.notes p.warn { border-color: #c9a227; background: #fffbe8; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1em; }
figure { margin: 0; border: 1px solid #e3e3e3; padding: .5em; background: #fff; }
figure img { display: block; width: 100%; height: auto; }
figcaption { font-size: 12px; color: #555; margin-top: .3em; }
.key { display: flex; flex-wrap: wrap; gap: .6em; margin: .6em 0; }
.key div { border: 1px solid #e3e3e3; padding: .4em .8em; min-width: 10em; }
.key b { display: block; font-size: 1.25em; }
.tag { display: inline-block; font-size: 11px; padding: 0 .35em; border-radius: 3px;
       background: #eef1f5; color: #444; margin-left: .3em; }
.tag.warn { background: #fff1d6; color: #7a4a00; }
.yes { color: #1a7f37; } .no { color: #c62828; font-weight: 600; } .na { color: #999; }
tr.bad { background: #fff3f3 !important; }
details { margin: .3em 0; border: 1px solid #e3e3e3; padding: .3em .6em; }
details summary { cursor: pointer; font-weight: 600; }
details table { margin-top: .5em; }
footer { margin-top: 2.5em; font-size: 12px; color: #555; }
@media print { body { max-width: none; padding: 0; } details { page-break-inside: avoid; } }
"""


def e(x: Any) -> str:
    """Escaped text of anything (None: '-')."""
    return "-" if x is None else html.escape(str(x), quote=True)


def _num(v: float | None, nd: int = 1, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    text = f"{v:.{nd}f}"
    return f"{text} {unit}".rstrip() if unit else text


def _frac(n: int | None, of: int | None) -> str:
    if n is None or not of:
        return "-"
    return f"{n}/{of} ({100.0 * n / of:.0f} %)"


def _frac_html(n: int | None, of: int | None) -> str:
    """'5/5' over '100 %' (narrow table cells)."""
    if n is None or not of:
        return "-"
    return f"{n}/{of}<br><small>{100.0 * n / of:.0f} %</small>"


def _date(p: T.Point) -> str:
    return p.date if p.date is not None else "clock not set"


def _tag(text: str, warn: bool = False) -> str:
    return f'<span class="tag{" warn" if warn else ""}">{e(text)}</span>'


def _check(v: Any, detail: str = "") -> str:
    cls, word = {True: ("yes", "yes"), False: ("no", "no")}.get(v, ("na", "-"))
    extra = (f' <small class="nowrap">{e(detail)}</small>' if detail and detail != "-"
             and v is not None else "")
    return f'<span class="{cls}">{word}</span>{extra}'


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{e(alt)}">'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str,
           row_cls: Sequence[str] | None = None, num: Iterable[int] = ()) -> list[str]:
    """rows hold HTML already escaped; headers are escaped here."""
    nums = set(num)
    out = ['<div class="wide">', f'<table class="{cls}">', "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers)
           + "</tr></thead>", "<tbody>"]
    for i, r in enumerate(rows):
        rc = row_cls[i] if row_cls and row_cls[i] else ""
        cells = "".join(f'<td class="num">{c}</td>' if j in nums else f"<td>{c}</td>"
                        for j, c in enumerate(r))
        out.append(f'<tr class="{rc}">{cells}</tr>' if rc else f"<tr>{cells}</tr>")
    out += ["</tbody>", "</table>", "</div>"]
    return out


# ------------------------------------------------------------------ parts

def _header(tr: T.Trends, rows: Sequence[Any], name: str | None, database: str | None,
            generated: dt.datetime) -> list[str]:
    dated = tr.dated
    period = (f"{dated[0].date[:10]} to {dated[-1].date[:10]}" if dated  # type: ignore[index]
              else "no dated sessions")
    devices = []
    for dev in sorted({r.device_id for r in rows}):
        mine = [r for r in rows if r.device_id == dev]
        fw = sorted({str(r.summary.get("firmware")) for r in mine if r.summary.get("firmware")})
        sig = sorted({f"{r.signal} ({r.unit})" for r in mine})
        devices.append(f"{dev}: {', '.join(sig)}" + (f", firmware {', '.join(fw)}" if fw else ""))
    meta = []
    if name:
        meta.append(("Name", name))
    meta += [("Trainer", "; ".join(devices) or "-"),
             ("Period", period + f" ({len(rows)} session{T.plural_s(len(rows))})"),
             ("Report made", generated.strftime("%Y-%m-%d %H:%M") + " (local time)")]
    if database:
        meta.append(("Database", database))
    out = ["<header>", "<h1>Pelvic floor training report" + (f": {e(name)}" if name else "")
           + "</h1>", '<table class="meta">']
    out += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in meta]
    out += ["</table>", "</header>"]
    return out


def pain_notes(tr: T.Trends) -> list[str]:
    """Plain sentences about pain (empty when it did not rise)."""
    rose = tr.pain_rose
    if not rose and not tr.pain_trend_up:
        return []
    parts = []
    if rose:
        parts.append("Pain rose during " + ", ".join(
            f"{p.key} ({_date(p)}: {p.pain_before} before, {p.pain_after} after)" for p in rose)
            + ".")
    if tr.pain_trend_up:
        parts.append("Pain has been rising over her last sessions.")
    return [" ".join(parts) + " " + PAIN_ADVICE]


def other_notes(tr: T.Trends) -> list[str]:
    out = []
    unc = tr.uncalibrated
    if unc:
        out.append(f"{UNCALIBRATED} ({len(unc)} session{T.plural_s(len(unc))}: "
                   f"{', '.join(p.key for p in unc)}). Run the 'calibrate' program to measure "
                   f"her MVC.")
    lost = [p for p in tr.points if p.gaps]
    if lost:
        out.append("Samples lost (a gap in the recording) in " + ", ".join(
            f"{p.key} ({p.gaps} gap{T.plural_s(p.gaps or 0)}"
            + (f", {p.missing_s:.1f} s" if p.missing_s is not None else "") + ")" for p in lost)
            + ".")
    gaps = tr.gap_weeks
    if gaps:
        out.append(f"No sessions in {len(gaps)} week{T.plural_s(len(gaps))}: "
                   + ", ".join(f"{w.week} (from {w.monday})" for w in gaps) + ".")
    early = [p for p in tr.points if p.program_done is False]
    if early:
        out.append("Stopped before the end of the program: "
                   + ", ".join(f"{p.key} ({p.program or 'free training'})" for p in early) + ".")
    cut = [p for p in tr.points if not p.complete]
    if cut:
        out.append("Recovered after a power cut (the end may be missing): "
                   + ", ".join(p.key for p in cut) + ".")
    old = [p for p in tr.points if not p.has_scores]
    if old:
        out.append(f"{len(old)} session{T.plural_s(old)} synced by an older knip or firmware "
                   f"({', '.join(p.key for p in old)}) "
                   f"{'have' if len(old) != 1 else 'has'} no scores: only the strongest "
                   f"squeeze and relaxation are known for {'them' if len(old) != 1 else 'it'}.")
    return out + tr.notes()


def _notes(tr: T.Trends) -> list[str]:
    pain = pain_notes(tr)
    rest = other_notes(tr)
    if not pain and not rest:
        return []
    out = ['<section class="notes" id="notes">', "<h2>Notes</h2>"]
    out += [f'<p class="pain">{e(t)}</p>' for t in pain]
    out += [f'<p class="warn">{e(t)}</p>' for t in rest]
    out.append("</section>")
    return out


def _first_last(ps: Sequence[T.Point], attr: str) -> tuple[T.Point, T.Point] | None:
    have = [p for p in ps if getattr(p, attr) is not None]
    return (have[0], have[-1]) if len(have) >= 2 else None


def _key_figures(tr: T.Trends) -> list[str]:
    st = tr.streak
    boxes = [("Sessions", str(len(tr.points)))]
    if tr.weeks:
        per = sum(w.sessions for w in tr.weeks) / len(tr.weeks)
        boxes.append(("Sessions per week", f"{per:.1f} over {len(tr.weeks)} "
                                           f"week{T.plural_s(len(tr.weeks))}"))
        boxes.append(("Current streak", f"{st.days} day{T.plural_s(st.days)}, "
                                        f"{st.weeks} week{T.plural_s(st.weeks)}"))
        boxes.append(("Longest streak", f"{st.longest_days} day{T.plural_s(st.longest_days)}, "
                                        f"{st.longest_weeks} week{T.plural_s(st.longest_weeks)}"))
    same = [p for p in tr.dated if p.unit == tr.unit]
    for label, attr, pts, fmt in (
            ("MVC", "mvc", same, lambda v: _num(v, 1, tr.unit)),
            ("Endurance", "endurance_s", tr.dated, lambda v: _num(v, 1, "s")),
            ("Relaxed fully", "relaxed_pct", tr.dated, lambda v: _num(v, 0, "%"))):
        fl = _first_last(pts, attr)
        if fl:
            a, b = fl
            boxes.append((f"{label}: first → latest",
                          f"{fmt(getattr(a, attr))} → {fmt(getattr(b, attr))}"))
    out = ['<div class="key">']
    out += [f"<div>{e(k)}<b>{e(v)}</b></div>" for k, v in boxes]
    out.append("</div>")
    return out


def _figures(tr: T.Trends) -> list[str]:
    names = panels_with_data(tr)
    out = ['<section id="trends">', "<h2>Trends</h2>"]
    out += _key_figures(tr)
    if not names:
        out.append("<p>Nothing to draw yet: no session has a date (the trainer's clock was "
                   "not set).</p>")
    out.append('<div class="figures">')
    for name in names:
        panel = PANELS[name]
        out.append(f'<figure class="trend" id="trend-{e(name)}">'
                   f"{_img(panel_png(tr, name), panel.title)}"
                   f"<figcaption>{e(panel.caption)}</figcaption></figure>")
    out.append("</div>")
    missing = [PANELS[n].title for n in PANELS if n not in names]
    if missing:
        out.append(f"<p class=\"missing\">Not measured in these sessions: "
                   f"{e('; '.join(missing))}.</p>")
    out.append("</section>")
    return out


def _weeks(tr: T.Trends) -> list[str]:
    if not tr.weeks:
        return []
    u = tr.unit
    rows, cls = [], []
    for w in tr.weeks:
        pain = ("-" if w.pain_before_mean is None and w.pain_after_mean is None
                else f"{_num(w.pain_before_mean)} / {_num(w.pain_after_mean)}")
        rows.append([e(w.week), e(w.monday), str(w.sessions), e(_num(w.mvc_best, 1, u)),
                     e(_num(w.power_best, 1, u)), e(_num(w.endurance_best_s, 1, "s")),
                     e(w.fast_best), e(_frac(w.relaxed, w.relax_judged)),
                     e(_num(w.resting_tone_mean, 1, u)), e(pain)])
        cls.append("bad" if w.sessions == 0 else "")
    return (['<section id="weeks">', "<h2>Week by week</h2>"]
            + _table(WEEK_HEADERS, rows, "weeks", cls, num=range(2, 10)) + ["</section>"])


def _session_row(p: T.Point) -> tuple[list[str], str]:
    u = p.unit
    mvc = e(_num(p.mvc, 1, u))
    if p.mvc is not None and p.calibrating:
        mvc += "<br>" + _tag("measured")
    elif p.mvc is not None and p.uncalibrated:
        mvc += "<br>" + _tag("best today", warn=True)
    power = e(_num(p.power, 1, u))
    if p.oxford is not None:
        power += f"<br><small>Oxford {p.oxford}" + (f" {e(p.oxford_label)}" if p.oxford_label
                                                     else "") + "</small>"
    if p.power_pct_mvc is not None:
        power += f"<br><small>{p.power_pct_mvc:.0f} % MVC</small>"
    pain = "-"
    if p.pain_before is not None or p.pain_after is not None:
        pain = f"{e(p.pain_before)} → {e(p.pain_after)}"
        if p.pain_rose:
            pain = f'<span class="no">{pain}</span>'
    notes = []
    if p.uncalibrated:
        notes.append(_tag("no calibration", warn=True))
    if p.calibrating:
        notes.append(_tag("calibration"))
    if p.program_done is False:
        notes.append(_tag("stopped early", warn=True))
    if not p.complete:
        notes.append(_tag("power cut", warn=True))
    if p.gaps:
        notes.append(_tag(f"{p.gaps} gap{T.plural_s(p.gaps)}", warn=True))
    if p.start_epoch is None:
        notes.append(_tag("clock not set", warn=True))
    if p.pain_rose:
        notes.append(_tag("pain rose", warn=True))
    date = (f'<span class="nowrap">{e(p.date[:10])}</span><br>{e(p.date[11:])}' if p.date
            else e(_date(p)))
    key = f'<span class="nowrap">{e(p.key)}</span>' + ("<br>" + " ".join(notes) if notes else "")
    cells = [date, key, e(p.program or "free training"), e(minutes(p.duration_s)),
             mvc, power, e(_num(p.endurance_s, 1, "s")), e(p.repetitions), e(p.fast),
             _frac_html(p.relaxed, p.relax_judged), _frac_html(p.rested, p.rest_judged),
             _frac_html(p.technique_ok, p.technique_judged), e(_num(p.resting_tone, 1, u)),
             pain]
    return cells, "bad" if p.pain_rose else ""


def _sessions(tr: T.Trends) -> list[str]:
    rows, cls = [], []
    for p in tr.points:
        r, c = _session_row(p)
        rows.append(r)
        cls.append(c)
    return (['<section id="sessions">', "<h2>Sessions</h2>",
             "<p>Strength figures are the rise above her resting level. Relaxed fully, rested "
             "long enough and technique count the squeezes the trainer could judge; technique "
             "(lift, not push) needs the two-channel probe.</p>"]
            + _table(SESSION_HEADERS, rows, "sessions", cls, num=range(3, 14)) + ["</section>"])


def _verdict_rows(verdicts: list[dict[str, Any]], unit: str) -> tuple[list[str], list[list[str]],
                                                                       list[str]]:
    names = [c for c in CHECK_ORDER if any(isinstance(v.get("checks"), dict)
                                           and v["checks"].get(c) is not None for v in verdicts)]
    extra = sorted({c for v in verdicts if isinstance(v.get("checks"), dict)
                    for c, x in v["checks"].items() if x is not None} - set(CHECK_ORDER))
    names += extra
    headers = ["#", "Time", "Phase", "Squeezed", "Peak"] + [CHECK_LABEL.get(c, c) for c in names] \
        + ["Verdict", "What happened"]
    detail = {
        "on_cue": lambda v: _num(v.get("reaction_s"), 1, "s"),
        "target": lambda v: (f"target {v['target_pct']} %" if v.get("target_pct") else ""),
        "held": lambda v: _num(v.get("hold_s"), 1, "s"),
        "relaxed": lambda v: ("" if v.get("residual") is None
                              else f"{_num(v.get('residual'), 1, unit)} left"),
        "rested": lambda v: _num(v.get("rest_s"), 1, "s"),
        "technique": lambda v: str(v.get("technique") or ""),
        "steady": lambda v: ("" if v.get("level_sd") is None
                             else f"SD {_num(v.get('level_sd'), 1, unit)}"),
    }
    rows, cls = [], []
    for i, v in enumerate(verdicts, 1):
        checks = v.get("checks") if isinstance(v.get("checks"), dict) else {}
        kind = v.get("phase_kind") or "-"
        phase = f"{kind} {v.get('rep')}/{v.get('reps')}" if v.get("rep") is not None else kind
        peak = "-"
        if v.get("peak") is not None:
            peak = _num(v.get("peak"), 1, unit)
            if v.get("peak_pct_mvc") is not None:
                peak += f" ({v['peak_pct_mvc']:.0f} % MVC)"
        elif v.get("level_mean") is not None:
            peak = f"level {_num(v.get('level_mean'), 1, unit)}"
        squeezed = "-" if kind in ("rest", "relax") else _check(bool(v.get("squeezed")))
        ok = v.get("ok")
        row = [str(i), e(_num(v.get("t_s"), 1, "s")), e(phase), squeezed, e(peak)]
        row += [_check(checks.get(c), detail.get(c, lambda _v: "")(v)) for c in names]
        row += [_check(ok if isinstance(ok, bool) else None),
                e("; ".join(str(x) for x in v.get("explain") or []))]
        rows.append(row)
        cls.append("bad" if ok is False else "")
    return headers, rows, cls


def _squeezes(tr: T.Trends, by_key: dict[str, Any]) -> list[str]:
    out = ['<section id="squeezes">', "<h2>Every squeeze</h2>",
           "<p>One row per cued squeeze and rest, as the trainer judged it (open a session to "
           "see them).</p>"]
    for p in tr.points:
        row = by_key.get(p.key)
        verdicts = row.summary.get("verdicts") if row is not None else None
        verdicts = [v for v in verdicts if isinstance(v, dict)] if isinstance(verdicts, list) else None
        head = f"{p.key}, {_date(p)}, {p.program or 'free training'}"
        if verdicts is None:
            out.append(f'<details class="verdicts" data-session="{e(p.key)}"><summary>{e(head)}: '
                       f"no per-squeeze verdicts stored</summary><p>This session was synced "
                       f"from older firmware, before the trainer judged every squeeze.</p>"
                       f"</details>")
            continue
        reps = [v for v in verdicts if v.get("phase_kind") not in ("rest", "relax")]
        good = sum(1 for v in reps if v.get("ok") is True)
        summary = f"{head}: {good} of {len(reps)} squeezes fully right"
        headers, rows, cls = _verdict_rows(verdicts, p.unit)
        out.append(f'<details class="verdicts" data-session="{e(p.key)}">'
                   f"<summary>{e(summary)}</summary>")
        out += _table(headers, rows, "verdicts", cls, num=(0, 1))
        out.append("</details>")
    out.append("</section>")
    return out


def _footer() -> list[str]:
    return ["<footer>",
            "<p><b>How to read this.</b> MVC: maximal voluntary contraction, the rise above "
            "rest of her strongest deliberate squeeze, measured by the 'calibrate' program "
            "(without one, her best squeeze of the day stands in). Power: the strongest "
            "squeeze of the session; for vaginal pressure in cmH2O it is placed on the "
            "Modified Oxford Scale (1 very weak 7.5-14.5, 2 weak 14.6-26.5, 3 moderate "
            "26.6-41.5, 4 good 41.6-60.5, 5 strong above 60.5 cmH2O; probe and position change "
            "the number). Endurance: the longest time a squeeze stayed above half her MVC. "
            "Repetitions: holds that reached their target and lasted the cued time. Fast "
            "contractions: quick squeezes that reached their target. Relaxed fully: back to "
            "her resting level after the squeeze. Rested long enough: the rest lasted at least "
            "as long as the squeeze. Resting tone: her level at rest before the first "
            "squeeze. Pain: what she logged, 0 (none) to 10 (worst).</p>",
            f"<p>{e(NOT_MEDICAL)}</p>", "</footer>"]


# ------------------------------------------------------------------ the document

def render(rows: Sequence[Any], *, name: str | None = None, database: str | None = None,
           today: dt.date | None = None, generated: dt.datetime | None = None) -> str:
    """The report of these `SessionRow`s as one HTML document (a string)."""
    generated = generated or dt.datetime.now()
    tr = T.build(rows, today=today or generated.date())
    by_key = {r.key: r for r in rows}
    dated = tr.dated
    title = "Knip training report" + (f": {name}" if name else "")
    if dated:
        title += f", {dated[0].date[:10]} to {dated[-1].date[:10]}"  # type: ignore[index]
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
    parts += _header(tr, rows, name, database, generated)
    parts += _notes(tr)
    parts += _figures(tr)
    parts += _weeks(tr)
    parts += _sessions(tr)
    parts += _squeezes(tr, by_key)
    parts += _footer()
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write(path: str | os.PathLike, rows: Sequence[Any], **kw: Any) -> Path:
    """Render and write atomically (a half-written report never replaces a
    good one). OSError when the file cannot be written."""
    out = Path(path)
    text = render(rows, **kw)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out
