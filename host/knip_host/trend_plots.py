"""The trend plots of `knip progress` and `knip report --html`: one panel per
trend (strength, endurance, fast contractions, relaxation, resting tone,
sessions per week, pain) over the dated sessions of a knip_host.trends
Trends, each panel as PNG bytes or all of them in one PNG file.

matplotlib is imported only to draw, with the Agg backend (no display).
"""
from __future__ import annotations

import datetime as dt
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .trends import Point, Trends, known_values, plural_s

# Modified Oxford Scale bands for vaginal squeeze pressure in cmH2O
# (REFERENCE.md section 3; the same edges as knip.scores.OXFORD_CMH2O).
OXFORD_BANDS = ((7.5, 14.6, "1 very weak"), (14.6, 26.6, "2 weak"), (26.6, 41.6, "3 moderate"),
                (41.6, 60.6, "4 good"), (60.6, None, "5 strong"))

PNG_DPI = 100


@dataclass
class Panel:
    name: str                        # file-name part: strength, endurance, ...
    title: str
    caption: str                     # one sentence for the report


PANELS = {
    "strength": Panel("strength", "Strength: MVC and strongest squeeze",
                      "Rise above rest of her maximal voluntary contraction (MVC) and of the "
                      "strongest squeeze in each session; hollow markers: no calibration that "
                      "day (MVC = her best squeeze of the day)."),
    "endurance": Panel("endurance", "Endurance (s)",
                       "Longest time a squeeze stayed above half her MVC, per session."),
    "fast": Panel("fast", "Fast contractions",
                  "Quick squeezes that reached their target, per session."),
    "relaxation": Panel("relaxation", "Relaxation quality (% relaxed fully)",
                        "Share of squeezes after which she relaxed fully back to rest."),
    "tone": Panel("tone", "Resting tone",
                  "Level at rest before the first squeeze (above the zeroed sensor)."),
    "weekly": Panel("weekly", "Sessions per week",
                    "Number of sessions in each week (Monday to Sunday); 0: a week without "
                    "training."),
    "pain": Panel("pain", "Pain before / after (0-10)",
                  "Pain she logged before and after each session."),
}


def panels_with_data(tr: Trends) -> list[str]:
    """The panels that have at least one dated value to draw, in order."""
    dated = tr.dated
    same = [p for p in dated if p.unit == tr.unit]
    have = {
        "strength": any(p.mvc is not None or p.power is not None for p in same),
        "endurance": any(p.endurance_s is not None for p in dated),
        "fast": any(p.fast is not None for p in dated),
        "relaxation": any(p.relaxed_pct is not None for p in dated),
        "tone": any(p.resting_tone is not None for p in same),
        "weekly": bool(tr.weeks),
        "pain": any(p.pain_before is not None or p.pain_after is not None for p in dated),
    }
    return [name for name in PANELS if have[name]]


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _series(points: Sequence[Point], attr: str) -> tuple[list[dt.datetime], list[float]]:
    xs, ys = [], []
    for p in points:
        v = getattr(p, attr)
        if v is not None and p.when is not None:
            xs.append(p.when)
            ys.append(float(v))
    return xs, ys


def _line(ax: Any, points: Sequence[Point], attr: str, *, color: str, label: str,
          marker: str = "o", hollow_uncalibrated: bool = False) -> None:
    """Per-session values joined by a faint line; with hollow_uncalibrated,
    sessions without calibration get hollow markers."""
    have = [p for p in points if getattr(p, attr) is not None and p.when is not None]
    if not have:
        return
    xs = [p.when for p in have]
    ys = [float(getattr(p, attr)) for p in have]
    ax.plot(xs, ys, color=color, lw=1.2, alpha=0.6)
    split = hollow_uncalibrated and any(p.uncalibrated for p in have)
    full = [(x, y) for p, x, y in zip(have, xs, ys) if not split or not p.uncalibrated]
    if full:
        ax.plot(*zip(*full), ls="", marker=marker, color=color, ms=6, label=label, zorder=3)
    if split:                        # on top: an uncalibrated MVC is her best squeeze, same value
        hollow = [(x, y) for p, x, y in zip(have, xs, ys) if p.uncalibrated]
        ax.plot(*zip(*hollow), ls="", marker=marker, mfc="white", mec=color, mew=1.8, ms=8,
                label=f"{label} (no calibration)", zorder=4)


def _draw(ax: Any, name: str, tr: Trends) -> None:
    dated = tr.dated
    same = [p for p in dated if p.unit == tr.unit]
    unit = tr.unit
    if name == "strength":
        if unit == "cmH2O":
            top = max([v for v in known_values(same, "mvc") + known_values(same, "power")] or [0.0])
            for i, (lo, hi, label) in enumerate(OXFORD_BANDS):
                if lo > top * 1.15 and i > 0:
                    break
                ax.axhspan(lo, hi if hi is not None else max(top * 1.15, lo + 10),
                           color="tab:blue", alpha=0.05 + 0.03 * (i % 2), lw=0)
                ax.text(1.005, lo, f" Oxford {label}", transform=ax.get_yaxis_transform(),
                        fontsize=7, color="0.35", va="bottom", ha="left", clip_on=False)
        _line(ax, same, "mvc", color="tab:blue", label="MVC", hollow_uncalibrated=True)
        _line(ax, same, "power", color="tab:green", label="strongest squeeze", marker="^")
        ax.set_ylabel(f"above rest ({unit})" if unit else "above rest")
        ax.set_ylim(bottom=0)
    elif name == "endurance":
        _line(ax, dated, "endurance_s", color="tab:purple", label="endurance")
        ax.set_ylabel("seconds")
        ax.set_ylim(bottom=0)
    elif name == "fast":
        _line(ax, dated, "fast", color="tab:orange", label="fast contractions")
        ax.set_ylabel("count")
        ax.set_ylim(bottom=0)
        ax.yaxis.get_major_locator().set_params(integer=True)
    elif name == "relaxation":
        ax.axhline(100, color="0.6", lw=0.8, ls="--")
        xs, ys = _series(dated, "relaxed_pct")
        ax.plot(xs, ys, color="tab:green", lw=1.2, alpha=0.6)
        ax.plot(xs, ys, ls="", marker="o", color="tab:green", ms=6, label="% relaxed fully")
        ax.set_ylabel("% of squeezes")
        ax.set_ylim(-3, 105)
    elif name == "tone":
        _line(ax, same, "resting_tone", color="tab:brown", label="resting tone")
        ax.set_ylabel(unit or "level")
        # from zero: day-to-day repeatability is 1-3 cmH2O, so an autoscaled
        # axis would make noise look like change
        top = max(known_values(same, "resting_tone") or [1.0])
        ax.set_ylim(min(0.0, min(known_values(same, "resting_tone") or [0.0])), max(top * 1.3, 1.0))
    elif name == "weekly":
        xs = [dt.datetime.combine(dt.date.fromisoformat(w.monday), dt.time(12))
              + dt.timedelta(days=3) for w in tr.weeks]
        ys = [w.sessions for w in tr.weeks]
        ax.bar(xs, ys, width=5.5, color="tab:blue", alpha=0.75, label="sessions")
        for x, y in zip(xs, ys):
            ax.text(x, y, str(y), ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("sessions")
        ax.set_ylim(0, max(ys + [1]) * 1.25)
        ax.yaxis.get_major_locator().set_params(integer=True)
        st = tr.streak
        ax.text(0.01, 0.97, f"current streak: {st.days} day{plural_s(st.days)}, {st.weeks} "
                            f"week{plural_s(st.weeks)} (longest {st.longest_days} d, "
                            f"{st.longest_weeks} wk)", transform=ax.transAxes, fontsize=8,
                va="top", ha="left", color="0.25")
    elif name == "pain":
        _line(ax, dated, "pain_before", color="tab:blue", label="before", marker="o")
        _line(ax, dated, "pain_after", color="tab:red", label="after", marker="s")
        ax.set_ylabel("pain (0-10)")
        ax.set_ylim(-0.5, 10.5)
    ax.set_title(PANELS[name].title, fontsize=10, loc="left")
    ax.set_axisbelow(True)
    ax.grid(True, axis="y", color="0.9", lw=0.6)
    handles, labels = ax.get_legend_handles_labels()
    if len(labels) > 1:
        ax.legend(fontsize=7, loc="best", framealpha=0.8)


def _date_axis(ax: Any, tr: Trends) -> None:
    import matplotlib.dates as mdates

    whens = [p.when for p in tr.dated if p.when is not None]
    lo = min(whens) if whens else dt.datetime.now()
    hi = max(whens) if whens else lo
    if tr.weeks:
        lo = min(lo, dt.datetime.combine(dt.date.fromisoformat(tr.weeks[0].monday), dt.time()))
        hi = max(hi, dt.datetime.combine(dt.date.fromisoformat(tr.weeks[-1].monday), dt.time())
                 + dt.timedelta(days=7))
    pad = max(dt.timedelta(days=1), (hi - lo) * 0.03)
    ax.set_xlim(lo - pad, hi + pad)
    loc = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b\n%Y" if (hi - lo).days > 300
                                                      else "%d %b"))


def panel_png(tr: Trends, name: str, *, width_in: float = 7.0, height_in: float = 3.0) -> bytes:
    """One trend panel as PNG bytes (for the HTML report)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(width_in, height_in))
    try:
        _draw(ax, name, tr)
        _date_axis(ax, tr)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=PNG_DPI)
        return buf.getvalue()
    finally:
        plt.close(fig)


def plot_progress(tr: Trends, path: str | Path, *, title: str | None = None) -> Path | None:
    """Every panel with data in one PNG (`knip progress`); None (nothing
    written) when no dated session has anything to draw."""
    names = panels_with_data(tr)
    if not names:
        return None
    plt = _pyplot()
    cols = 2 if len(names) > 1 else 1
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.0 * cols, 3.0 * rows + 0.5), squeeze=False)
    try:
        for i, name in enumerate(names):
            ax = axes[i // cols][i % cols]
            _draw(ax, name, tr)
            _date_axis(ax, tr)
        for j in range(len(names), rows * cols):
            axes[j // cols][j % cols].set_visible(False)
        if title:
            fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, format="png", dpi=PNG_DPI)
        return out
    finally:
        plt.close(fig)
