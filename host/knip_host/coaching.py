"""The coach's verdicts in words: one readable dict per cued rep or rest
window, with one sentence per check, from the device's verdict tuples
(knip.coach V_* fields). The numbers are the device's; only the wording is
the host's."""
from __future__ import annotations

from typing import Any, Sequence

from knip import coach as C
from knip import record as D      # the detector's record layout
from knip.programs import KIND_NAMES
from knip.scores import PASS_KEYS

TECH_WORDS = {"lift": "lifted with a quiet abdomen",
              "co_contraction": "abdomen tensed as well: lift without tightening the belly",
              "push": "pushed down: lift up and in instead of bearing down"}


def _s(ms: int | None) -> float | None:
    return None if ms is None else round(ms / 1000.0, 2)


def verdict_dict(v: Sequence[int], level_div: float, unit: str, t0_ms: int = 0) -> dict[str, Any]:
    """A verdict tuple as a dict in seconds and units, with explanations."""
    f = {name: (None if i >= len(v) or v[i] == C.NA else int(v[i])) for i, name in enumerate(C.V_NAMES)}
    passed = f["passed"] or 0
    judged = f["judged"] or 0
    flags = f["flags"] or 0
    checks = {name: (bool(passed & (1 << i)) if judged & (1 << i) else None)
              for i, name in enumerate(C.CHECK_NAMES)}
    kind = KIND_NAMES[f["kind"]] if f["kind"] is not None and f["kind"] < len(KIND_NAMES) else str(f["kind"])
    mvc = f["mvc"]
    amp = f["amp"]

    def unit_of(x: int | None) -> float | None:
        return None if x is None else round(x / level_div, 2)

    tech = None
    if f["tech"] is not None and 0 <= f["tech"] < len(D.TECH_NAMES):
        tech = D.TECH_NAMES[f["tech"]]
    elif kind in ("fast", "hold", "mvc") and f["seq"] is not None:
        tech = "ambiguous"          # one channel: lift and push look alike
    d: dict[str, Any] = {
        "t_s": _s(None if f["t"] is None else f["t"] - t0_ms),
        "cue_s": _s(None if f["cue_t"] is None else f["cue_t"] - t0_ms),
        "phase": f["phase"], "phase_kind": kind, "rep": f["rep"], "reps": f["reps"],
        "checks": checks, "squeezed": f["seq"] is not None,
        "ok": all(c is not False for c in checks.values()) and (f["seq"] is not None or kind in ("rest", "relax")),
        "provisional": bool(flags & C.F_PROVISIONAL), "pushed": bool(flags & C.F_PUSHED),
        "stopped": bool(flags & C.F_STOPPED), "extra_squeezes": bool(flags & C.F_EXTRA),
        "cough_like": bool(flags & C.F_COUGH),
        "reaction_s": _s(f["reaction_ms"]), "peak": unit_of(amp),
        "peak_pct_mvc": round(100.0 * amp / mvc, 1) if amp is not None and mvc else None,
        "target_pct": f["target_pct"] or None, "squeeze_cue_s": _s(f["on_ms"]), "rest_cue_s": _s(f["off_ms"]),
        "hold_s": _s(f["hold_ms"]), "endurance_s": _s(f["endurance_ms"]), "squeeze_s": _s(f["squeeze_ms"]),
        "rest_s": _s(f["rest_ms"]), "residual": unit_of(f["residual"]),
        "residual_pct_mvc": round(100.0 * f["residual"] / mvc, 1) if f["residual"] is not None and mvc else None,
        "technique": tech, "rise_s": _s(f["rise_ms"]), "release_s": _s(f["release_ms"]),
        "level_mean": unit_of(f["mean"]) if kind in ("rest", "relax") else None,
        "level_sd": unit_of(f["sd"]), "baseline": unit_of(f["baseline"]),
        "rest_level": unit_of(f.get("rest_mean")), "rest_level_sd": unit_of(f.get("rest_sd")),
        "unit": unit,
    }
    d["explain"] = explain(d)
    return d


def explain(d: dict[str, Any]) -> list[str]:
    """One plain sentence per judged check (what she did, and what to do)."""
    u = d["unit"]
    c = d["checks"]
    out: list[str] = []
    of = "of your best today" if d["provisional"] else "MVC"
    if d["phase_kind"] in ("rest", "relax"):
        if c["steady"] is not None:
            out.append(f"steady (varied {d['level_sd']:.1f} {u})" if c["steady"]
                       else f"not steady: the level varied {d['level_sd']:.1f} {u}; breathe and let go")
        if c["low"] is not None:
            above = d["level_mean"] - d["baseline"]
            out.append(f"low: {above:+.1f} {u} from your resting level" if c["low"]
                       else f"not low: {above:+.1f} {u} above your resting level; let the pelvic floor drop")
        if d["extra_squeezes"]:
            out.append("squeezed during the rest")
        return out
    if not d["squeezed"]:
        if d["pushed"]:
            out.append("pushed down instead of lifting: the abdomen strained, the pelvic floor stayed quiet")
        else:
            out.append("no squeeze found after the cue")
        return out
    if c["on_cue"] is not None:
        r = d["reaction_s"]
        if c["on_cue"]:
            out.append(f"squeezed on cue ({r:.1f} s)")
        elif r < 0:
            out.append(f"started {-r:.1f} s before the cue: wait for it")
        else:
            out.append(f"started {r:.1f} s after the cue")
    if c["target"] is not None:
        out.append(f"reached {d['peak_pct_mvc']:.0f} % {of} (target {d['target_pct']} %)" if c["target"]
                   else f"reached {d['peak_pct_mvc']:.0f} % {of}, target {d['target_pct']} %: squeeze harder")
    elif d["peak"] is not None:
        out.append(f"peak {d['peak']:.1f} {u} above rest")
    if c["held"] is not None and d["hold_s"] is not None:
        want = d["squeeze_cue_s"]
        out.append(f"held {d['hold_s']:.1f} s of {want:g} s" if c["held"]
                   else f"let go after {d['hold_s']:.1f} s of {want:g} s: hold until the relax cue")
    if c["relaxed"] is not None:
        res = d["residual"]
        if c["relaxed"]:
            out.append("relaxed fully")
        elif res is None:
            out.append("did not let go before the next squeeze")
        else:
            pct = f" ({d['residual_pct_mvc']:.0f} % {of})" if d["residual_pct_mvc"] is not None else ""
            out.append(f"did not relax fully: {res:.1f} {u}{pct} left; let go completely")
    if c["rested"] is not None and d["squeeze_s"] is None:
        out.append("still squeezing when the rest ended: let go and rest as long as you squeezed")
    elif c["rested"] is not None:
        out.append(f"rested {d['rest_s']:.1f} s after {d['squeeze_s']:.1f} s of squeezing" if c["rested"]
                   else f"rested only {max(0.0, d['rest_s']):.1f} s after {d['squeeze_s']:.1f} s of squeezing: "
                        f"rest at least as long as you squeeze")
    if d["technique"] == "ambiguous":
        out.append("technique: not judged with one channel")
    elif d["technique"] in TECH_WORDS:
        out.append(TECH_WORDS[d["technique"]])
    return out


MARK = {True: "✓", False: "✗", None: "·"}
ASCII_MARK = {True: "ok", False: "NO", None: "-"}


def one_line(d: dict[str, Any], ascii_only: bool = False) -> str:
    """'rep 3/10 fast: ✓ squeezed on cue (0.4 s); ✗ did not relax fully ...'."""
    marks = ASCII_MARK if ascii_only else MARK
    head = f"{d['phase_kind']} {d['rep']}/{d['reps']}"
    judged = [v for v in d["checks"].values() if v is not None]
    overall = marks[all(judged) and (d["squeezed"] or d["phase_kind"] in ("rest", "relax"))]
    return f"{overall} {head}: " + "; ".join(d["explain"])


PAIN_NOTE = ("Pain rose. Train within the pain limit: pain often comes later, after the activity. "
             "Sudden, severe back pain in late pregnancy or while breastfeeding is a reason to see a doctor, "
             "not to train harder.")


def pain_rose(pain: dict[str, int | None]) -> bool:
    b, a = pain.get("before"), pain.get("after")
    return b is not None and a is not None and a > b


def _num(x: float | None, unit: str = "", nd: int = 1) -> str:
    return "-" if x is None else f"{x:.{nd}f}{(' ' + unit) if unit else ''}"


def score_lines(sc: dict[str, Any]) -> list[tuple[str, str]]:
    """The session scores as (label, text) rows for `knip show`."""
    if not sc:
        return []
    u = sc.get("unit", "")
    rows = []
    mvc = sc.get("mvc")
    rows.append(("MVC", (_num(mvc, u) + " above rest" + ("" if sc.get("calibrated") else
                 " (no calibration: her best squeeze today)")) if mvc else "-"))
    power = _num(sc.get("power"), u)
    if sc.get("oxford") is not None:
        power += f", Modified Oxford {sc['oxford']} ({sc['oxford_label']})"
    if sc.get("power_pct_mvc") is not None:
        power += f", {sc['power_pct_mvc']:.0f} % MVC"
    rows.append(("power", power))
    rows.append(("endurance", (_num(sc.get("endurance_s"), "s") +
                               f" above {sc.get('endurance_fraction_pct', 50)} % MVC")
                 if sc.get("endurance_s") is not None else "-"))
    if sc.get("repetitions") is not None:
        rows.append(("repetitions", f"{sc['repetitions']} holds held to the cue"))
    if sc.get("fast") is not None:
        rows.append(("fast", f"{sc['fast']} quick squeezes reached the target"))
    if sc.get("resting_tone") is not None:
        rest = f"{_num(sc['resting_tone'], u)} (varies {_num(sc.get('rest_variability'), u, 2)})"
        if sc.get("post_rest_tone") is not None:
            rest += f", after training {_num(sc['post_rest_tone'], u)}"
        rows.append(("resting tone", rest))
    if sc.get("time_to_peak_s") is not None or sc.get("time_to_relax_s") is not None:
        rows.append(("time to peak", f"{_num(sc.get('time_to_peak_s'), 's', 2)}, to relax "
                                     f"{_num(sc.get('time_to_relax_s'), 's', 2)} (medians)"))
    j = sc.get("judged", {})
    parts = []
    for check, name in (("on_cue", "on cue"), ("target", "target"), ("held", "held"),
                        ("relaxed", "relaxed fully"), ("rested", "rested enough"), ("technique", "lifted")):
        key = PASS_KEYS.get(check, check)
        if j.get(check):
            parts.append(f"{name} {sc.get(key, 0)}/{j[check]}")
    if parts:
        rows.append(("reps", f"{sc.get('squeezes', 0)} of {sc.get('reps_cued', 0)} cued squeezes found; "
                             + ", ".join(parts)))
    return rows


def verdict_table(verdicts: list[dict[str, Any]], ascii_only: bool = False) -> list[str]:
    """One line per cued rep or rest window."""
    if not verdicts:
        return []
    out = ["rep-by-rep (what a physiotherapist would say):"]
    for d in verdicts:
        t = d.get("cue_s")
        out.append(f"{'' if t is None else f'{t:7.1f} s'}  " + one_line(d, ascii_only))
    return out
