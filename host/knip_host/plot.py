"""`knip analyze --plot`: the signal, its baseline and the events in one PNG.

matplotlib is imported here only, with the Agg backend (no display needed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .recordings import Recording

KIND_STYLE = {
    "squeeze": dict(color="tab:green", label="squeeze"),
    "cough": dict(color="tab:orange", label="cough"),
    "bearing_down": dict(color="tab:red", label="bearing down"),
    "artefact": dict(color="tab:gray", label="artefact (saturation, spike, stuck, gap, motion)"),
}
EMG_BLOCK_S = 0.010
EMG_WINDOW_S = 0.050


def plot_analysis(rec: Recording, analysis: Any, path: str | Path, *, signal: str,
                  channel: str, abdominal: str | None = None) -> Path:
    """Draw and save; returns the path written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, y, ylabel = display_trace(rec, analysis, signal, channel)
    rows = 2 if abdominal else 1
    fig, axes = plt.subplots(rows, 1, figsize=(14, 4.2 + 2.2 * (rows - 1)), sharex=True,
                             squeeze=False, gridspec_kw={"height_ratios": [3, 1.4][:rows]})
    ax = axes[0][0]
    ax.plot(t, y, color="0.25", lw=0.8, label=f"channel {channel}")
    base = baseline(analysis, t, y)
    ax.plot(t, base, color="tab:blue", lw=1, ls="--", label="baseline")
    lo, hi = float(np.min(y)), float(np.max(y))
    pad = (hi - lo) or 1.0
    ax.set_ylim(lo - 0.05 * pad, hi + (0.45 if rec.annotations else 0.1) * pad)
    ax.set_xlim(float(t[0]), float(t[-1]))
    _draw_events(ax, analysis.events, t, y)
    _draw_annotations(ax, rec.annotations)
    unit = f" ({rec.unit})" if rec.unit else ""
    ax.set_ylabel(ylabel + unit)
    ax.set_title(f"{Path(rec.path).name}: {signal}, channel {channel}"
                 + (f", abdominal {abdominal}" if abdominal else ""), fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    ax.legend(seen.values(), seen.keys(), loc="upper left", bbox_to_anchor=(1.005, 1.0),
              fontsize=8, frameon=False)
    if abdominal:
        ab = axes[1][0]
        ta, ya, _ = display_trace(rec, None, signal, abdominal)
        ab.plot(ta, ya, color="tab:purple", lw=0.8)
        ab.set_ylabel(f"{abdominal}{unit}")
        for ev in analysis.events:
            _span(ab, ev, alpha=0.12)
    axes[-1][0].set_xlabel("time (s)")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return out


def display_trace(rec: Recording, analysis: Any, signal: str,
                  channel: str) -> tuple[np.ndarray, np.ndarray, str]:
    """What the detector looked at: the analysis's own trace if it has one, else
    the pressure itself or an RMS envelope of the EMG."""
    trace = getattr(analysis, "trace", None) if analysis is not None else None
    if trace is not None:
        t, y = (np.asarray(a, dtype=float) for a in trace)
        return t, y, "envelope" if signal == "emg" else channel
    x = rec.channel(channel)
    if signal != "emg":
        return np.asarray(rec.times_s, dtype=float), x, "pressure"
    return (*rms_envelope(x, rec.rate_hz, t0=float(rec.times_s[0])), "EMG RMS")


def rms_envelope(x: np.ndarray, rate_hz: float, t0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Moving RMS (50 ms window, 10 ms steps) of the signal minus its slow mean."""
    block = max(1, int(round(EMG_BLOCK_S * rate_hz)))
    slow = max(1, int(round(0.2 * rate_hz)))
    padded = np.pad(np.asarray(x, dtype=float), (slow // 2, slow - 1 - slow // 2), mode="edge")
    centred = x - np.convolve(padded, np.ones(slow) / slow, mode="valid")
    n = len(centred) // block
    if n == 0:
        return np.array([t0]), np.array([float(np.sqrt(np.mean(centred ** 2)))])
    ms = np.mean(centred[: n * block].reshape(n, block) ** 2, axis=1)
    k = max(1, int(round(EMG_WINDOW_S / EMG_BLOCK_S)))
    ms = np.pad(ms, (k // 2, k - 1 - k // 2), mode="edge")
    env = np.sqrt(np.convolve(ms, np.ones(k) / k, mode="valid"))
    return t0 + (np.arange(n) + 0.5) * block / rate_hz, env


def baseline(analysis: Any, t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The baseline the detector used: each event's own "baseline", held from the
    end of the event before it to its end. Without one, the analysis's
    `baseline` (array or number), else the median outside every event."""
    events = [ev for ev in analysis.events
              if ev.get("baseline") is not None and ev.get("offset_s") is not None]
    if events:
        events.sort(key=lambda ev: ev["offset_s"])
        ends = np.array([ev["offset_s"] for ev in events], dtype=float)
        values = np.array([ev["baseline"] for ev in events], dtype=float)
        return values[np.minimum(np.searchsorted(ends, t), len(values) - 1)]
    given = getattr(analysis, "baseline", None)
    if given is not None:
        b = np.asarray(given, dtype=float)
        if b.ndim == 0:
            return np.full_like(t, float(b))
        if b.shape == t.shape:
            return b
    quiet = np.ones(len(t), dtype=bool)
    for ev in analysis.events:
        on, off = ev.get("onset_s"), ev.get("offset_s")
        if on is not None and off is not None:
            quiet &= ~((t >= on) & (t <= off))
    return np.full_like(t, float(np.median(y[quiet] if quiet.any() else y)))


def _span(ax: Any, ev: dict[str, Any], alpha: float) -> None:
    on, off = ev.get("onset_s"), ev.get("offset_s")
    if on is None:
        return
    style = KIND_STYLE.get(ev.get("kind"), KIND_STYLE["squeeze"])
    hatch = "///" if ev.get("kind") == "bearing_down" else None
    ax.axvspan(on, off if off is not None else on, color=style["color"], alpha=alpha,
               hatch=hatch, lw=0, label=style["label"])


def _draw_events(ax: Any, events: list[dict[str, Any]], t: np.ndarray, y: np.ndarray) -> None:
    for ev in events:
        _span(ax, ev, alpha=0.22)
        color = KIND_STYLE.get(ev.get("kind"), KIND_STYLE["squeeze"])["color"]
        for key, marker, label in (("onset_s", ">", "onset"), ("offset_s", "<", "offset")):
            at = ev.get(key)
            if at is not None:
                ax.plot([at], [np.interp(at, t, y)], marker=marker, color=color, ms=6, ls="",
                        mec="black", mew=0.5, label=label)
        if ev.get("peak_s") is not None and ev.get("kind") != "squeeze":
            ax.plot([ev["peak_s"]], [np.interp(ev["peak_s"], t, y)],
                    marker="*" if ev.get("kind") == "cough" else "v", color=color, ms=10, ls="",
                    mec="black", mew=0.5)
        if ev.get("relaxed") is False:
            ax.annotate("not relaxed", (ev.get("offset_s") or ev["onset_s"], np.interp(
                ev.get("offset_s") or ev["onset_s"], t, y)), fontsize=7, color="tab:red",
                xytext=(3, 8), textcoords="offset points")


def _draw_annotations(ax: Any, annotations: list[tuple[float, str]]) -> None:
    lo, hi = ax.get_xlim()
    for at, label in annotations:
        if not lo <= at <= hi:
            continue
        ax.axvline(at, color="tab:gray", lw=0.8, ls=":")
        text = label.lstrip("# ").strip()
        text = text if len(text) <= 22 else text[:20] + "..."
        ax.text(at, 0.99, text, rotation=90, va="top", ha="right",
                fontsize=7, color="0.3", transform=ax.get_xaxis_transform())


# ------------------------------------------------------------ stored sessions

VERDICT_STYLE = {
    True: dict(color="tab:green", label="squeeze, relaxed fully"),
    False: dict(color="tab:red", label="squeeze, not relaxed"),
    None: dict(color="tab:gray", label="squeeze, relaxation not judged"),
}
CUE_SQUEEZE = ("squeeze", "hold", "contract", "lift")
SESSION_WIDTH_IN, SESSION_HEIGHT_IN, SESSION_ABD_IN, SESSION_DPI = 14.0, 4.6, 2.2, 110


def session_figure_size(two_channel: bool) -> tuple[int, int]:
    """(width, height) in pixels of what `plot_session` writes."""
    h = SESSION_HEIGHT_IN + (SESSION_ABD_IN if two_channel else 0.0)
    return round(SESSION_WIDTH_IN * SESSION_DPI), round(h * SESSION_DPI)


def plot_session(session: Any, path: str | Path, *, title: str | None = None) -> Path:
    """`knip plot`: a stored session (knip_host.session.Session) as one PNG.

    The signal in its unit (EMG as its RMS envelope), every squeeze shaded by
    its verdict (green relaxed fully, red not relaxed, grey not judged) with
    onset/offset markers and its peak, coughs and bearing down as in
    `plot_analysis`, the coached squeeze phases shaded light blue along the
    bottom, program phase changes as dotted lines, lost samples hatched, and
    the abdominal channel underneath when there is one. Returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(session.t_ms, dtype=float) / 1000.0
    y = np.asarray(session.values, dtype=float) / float(session.counts_per_unit)
    unit = f" ({session.unit})" if session.unit else ""
    if session.signal == "emg":
        t, y = rms_envelope(y, float(session.rate_hz), t0=float(t[0]) if len(t) else 0.0)
        ylabel = "EMG RMS"
    else:
        ylabel = "pressure"
    if len(t) == 0:
        t, y = np.array([0.0, 1.0]), np.array([0.0, 0.0])
    two = session.abd is not None
    rows = 2 if two else 1
    w_px, h_px = session_figure_size(two)
    fig, axes = plt.subplots(rows, 1, figsize=(w_px / SESSION_DPI, h_px / SESSION_DPI),
                             sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1.4][:rows]})
    ax = axes[0][0]
    ax.plot(t, y, color="0.25", lw=0.8, label=ylabel)
    lo, hi = float(np.min(y)), float(np.max(y))
    pad = (hi - lo) or 1.0
    ax.set_ylim(lo - 0.08 * pad, hi + 0.3 * pad)
    ax.set_xlim(float(t[0]), float(t[-1]) if t[-1] > t[0] else float(t[0]) + 1.0)

    _draw_cues(ax, session.cues or [])
    _draw_gaps(axes, session)
    for ev in session.events:
        _session_event(ax, ev, t, y)
    ax.set_ylabel(ylabel + unit)
    ax.set_title(title or session.key, fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    ax.legend(seen.values(), seen.keys(), loc="upper left", bbox_to_anchor=(1.005, 1.0),
              fontsize=8, frameon=False)
    if two:
        ab = axes[1][0]
        ya = np.asarray(session.abd, dtype=float) / float(session.counts_per_unit)
        ta = np.asarray(session.t_ms, dtype=float) / 1000.0
        if session.signal == "emg":
            ta, ya = rms_envelope(ya, float(session.rate_hz), t0=float(ta[0]))
        ab.plot(ta, ya, color="tab:purple", lw=0.8)
        ab.set_ylabel(f"abdominal{unit}")
        for ev in session.events:
            on, off = ev.get("onset_s"), ev.get("offset_s")
            if on is not None:
                ab.axvspan(on, off if off is not None else on, color=_event_color(ev),
                           alpha=0.12, lw=0)
    axes[-1][0].set_xlabel("time since start (s)")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png", dpi=SESSION_DPI)
    plt.close(fig)
    return out


def _event_color(ev: dict[str, Any]) -> str:
    if ev.get("kind") == "squeeze":
        return VERDICT_STYLE[ev.get("relaxed")]["color"]
    return KIND_STYLE.get(ev.get("kind"), KIND_STYLE["squeeze"])["color"]


def _session_event(ax: Any, ev: dict[str, Any], t: np.ndarray, y: np.ndarray) -> None:
    on, off = ev.get("onset_s"), ev.get("offset_s")
    if on is None:
        return
    if ev.get("kind") == "squeeze":
        style = VERDICT_STYLE[ev.get("relaxed")]
        ax.axvspan(on, off if off is not None else on, color=style["color"], alpha=0.2, lw=0,
                   label=style["label"])
    else:
        _span(ax, ev, alpha=0.22)
    color = _event_color(ev)
    for at, marker, label in ((on, ">", "onset"), (off, "<", "offset")):
        if at is not None:
            ax.plot([at], [np.interp(at, t, y)], marker=marker, color=color, ms=6, ls="",
                    mec="black", mew=0.5, label=label)
    if ev.get("peak_s") is not None and ev.get("peak") is not None:
        ax.plot([ev["peak_s"]], [ev["peak"]], marker="v", color=color, ms=7, ls="",
                mec="black", mew=0.5, label="peak")


def _draw_cues(ax: Any, cues: list[dict[str, Any]]) -> None:
    from .export import phase_notes

    for c in cues:
        if str(c.get("cue") or "").lower() in CUE_SQUEEZE and c.get("dur_ms"):
            at = float(c.get("t_ms") or 0) / 1000.0
            ax.axvspan(at, at + float(c["dur_ms"]) / 1000.0, ymin=0.0, ymax=0.06,
                       color="tab:blue", alpha=0.35, lw=0, label="cued squeeze")
    _draw_annotations(ax, phase_notes(cues, short=True))


def _draw_gaps(axes: Any, session: Any) -> None:
    from .export import gap_spans

    for start, length, _missing in gap_spans(session):
        for row in axes:
            row[0].axvspan(start, start + length, facecolor="none", edgecolor="0.5",
                           hatch="xxx", lw=0, label="samples lost")
