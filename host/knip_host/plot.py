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
