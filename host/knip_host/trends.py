"""Progress over weeks: one point per synced session, weekly figures, the
training streak, and PNG trend plots (`knip progress`, `knip report --html`).

Everything here is read from the session database's rows
(`SessionDatabase.list()`); each `SessionRow.summary` is the dict stored when
the session was synced (`database.session_figures` plus, from firmware 0.4 on,
"scores", "pain", "calibrated", "verdicts" and "program_done"). A figure the
stored summary does not have is None and contributes nothing to its trend:
no zeros are ever invented. Older rows without "scores" still give the
strongest squeeze (`max_amplitude`, the same rise above rest as
scores["power"]), relaxation and rests from the decoder's own counts.
Endurance (the longest time a squeeze stayed above half her MVC) is only
taken from sessions with holds or maximal squeezes: a session of quick
squeezes says nothing about how long she can hold.

Sessions whose device clock was not set (`start_epoch` None) are kept as
points with `date` None: they are listed and counted, but they are not on
the time axis, in no week, and not in the streak.

Weeks are ISO weeks (Monday to Sunday) in this computer's time zone; the
weekly table runs from her first dated session's week to the last, so a
week without a session shows as 0 sessions (a gap), never as missing.

The trend plots are drawn by knip_host.trend_plots.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

PAIN_TREND_SESSIONS = 5        # pain "trending up": look at the last 5 sessions with pain logged
PAIN_TREND_MIN = 3             # ... of which at least 3
PAIN_TREND_SLOPE = 0.5         # ... rising by at least half a point per session (least squares)
PAIN_TREND_RISE = 2            # ... the last value at least 2 above the first
PAIN_TREND_STEPS = 2           # ... and rising from one session to the next at least twice


# ------------------------------------------------------------------ points

@dataclass
class Point:
    """One session's figures for the trends (None: not in the stored summary)."""
    key: str
    device_id: str
    session_id: int
    start_epoch: int | None
    date: str | None                 # local 'YYYY-MM-DD HH:MM', None when the clock was not set
    program: str
    duration_s: float
    signal: str
    unit: str
    complete: bool                   # False: recovered after a power cut
    program_done: bool | None        # False: she stopped early
    calibrated: bool | None          # False: % MVC relative to her best squeeze that day
    squeezes: int | None
    mvc: float | None                # unit, rise above rest
    power: float | None              # strongest squeeze, unit above rest
    power_pct_mvc: float | None
    oxford: int | None
    oxford_label: str | None
    endurance_s: float | None
    repetitions: int | None
    fast: int | None
    relaxed: int | None              # squeezes relaxed fully ...
    relax_judged: int | None         # ... of this many judged
    rested: int | None               # rests long enough ...
    rest_judged: int | None
    technique_ok: int | None         # squeezes with a lift, not a push ...
    technique_judged: int | None
    resting_tone: float | None       # unit
    pain_before: int | None          # 0-10
    pain_after: int | None
    gaps: int | None                 # runs of lost samples
    missing_s: float | None
    calibrating: bool = False        # the session measured her MVC (maximal squeezes)
    has_scores: bool = False
    has_verdicts: bool = False

    @property
    def when(self) -> dt.datetime | None:
        return None if self.start_epoch is None else dt.datetime.fromtimestamp(self.start_epoch)

    @property
    def day(self) -> dt.date | None:
        w = self.when
        return None if w is None else w.date()

    @property
    def relaxed_pct(self) -> float | None:
        return _pct(self.relaxed, self.relax_judged)

    @property
    def rested_pct(self) -> float | None:
        return _pct(self.rested, self.rest_judged)

    @property
    def technique_pct(self) -> float | None:
        return _pct(self.technique_ok, self.technique_judged)

    @property
    def uncalibrated(self) -> bool:
        """Scored against her best squeeze of the day, not a measured MVC."""
        return self.calibrated is False and not self.calibrating

    @property
    def pain_rose(self) -> bool:
        return (self.pain_before is not None and self.pain_after is not None
                and self.pain_after > self.pain_before)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["relaxed_pct"] = _round(self.relaxed_pct, 1)
        d["rested_pct"] = _round(self.rested_pct, 1)
        d["technique_pct"] = _round(self.technique_pct, 1)
        d["week"] = None if self.day is None else iso_week(self.day)
        d["uncalibrated"] = self.uncalibrated
        d["pain_rose"] = self.pain_rose
        return d


def _pct(n: int | None, of: int | None) -> float | None:
    if n is None or not of:
        return None
    return 100.0 * n / of


def _round(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def _num(x: Any) -> float | None:
    """A finite number from the summary, else None (bools are not numbers)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _int(x: Any) -> int | None:
    v = _num(x)
    return None if v is None else int(round(v))


def _bool(x: Any) -> bool | None:
    return x if isinstance(x, bool) else None


def _judged(scores: dict[str, Any], name: str) -> int | None:
    j = scores.get("judged")
    return _int(j.get(name)) if isinstance(j, dict) else None


def point(row: Any) -> Point:
    """One `SessionRow` as a trend point (see the module docstring for what
    comes from where)."""
    s = row.summary if isinstance(getattr(row, "summary", None), dict) else {}
    sc = s.get("scores") if isinstance(s.get("scores"), dict) else {}
    pain = s.get("pain") if isinstance(s.get("pain"), dict) else {}
    has_scores = bool(sc)

    if has_scores:
        relaxed, relax_judged = _int(sc.get("relaxed")), _judged(sc, "relaxed")
        rested, rest_judged = _int(sc.get("rested")), _judged(sc, "rested")
        tech, tech_judged = _int(sc.get("technique_ok")), _judged(sc, "technique")
        power = _num(sc.get("power"))
    else:                            # synced before the scores existed: the decoder's counts
        relax_judged = _int(s.get("judged"))
        relaxed = _int(s.get("relaxed_fully")) if relax_judged is not None else None
        rest_judged = _int(s.get("rests_judged"))
        short = _int(s.get("rests_too_short"))
        rested = rest_judged - short if rest_judged is not None and short is not None else None
        tech = tech_judged = None
        power = _num(s.get("max_amplitude"))
    if relax_judged == 0:
        relaxed = relax_judged = None
    if rest_judged == 0:
        rested = rest_judged = None
    if tech_judged == 0:
        tech = tech_judged = None
    calibrated = _bool(s.get("calibrated"))
    if calibrated is None:
        calibrated = _bool(sc.get("calibrated"))
    done = _bool(s.get("program_done"))
    verdicts = s.get("verdicts") if isinstance(s.get("verdicts"), list) else None
    kinds = {v.get("phase_kind") for v in verdicts or [] if isinstance(v, dict)}
    endurance = _num(sc.get("endurance_s"))
    if verdicts is not None and not kinds & {"hold", "mvc"}:
        endurance = None             # quick squeezes only: nothing was held long enough to tell
    start = getattr(row, "start_epoch", None)
    return Point(
        key=row.key, device_id=row.device_id, session_id=int(row.session_id),
        start_epoch=None if start is None else int(start),
        date=None if start is None else dt.datetime.fromtimestamp(start).strftime("%Y-%m-%d %H:%M"),
        program=row.program or "", duration_s=float(row.duration_s), signal=row.signal,
        unit=str(sc.get("unit") or row.unit or ""), complete=bool(row.complete),
        program_done=done, calibrated=calibrated,
        squeezes=_int(sc.get("squeezes")) if has_scores else _int(s.get("squeezes")),
        mvc=_num(sc.get("mvc")), power=power, power_pct_mvc=_num(sc.get("power_pct_mvc")),
        oxford=_int(sc.get("oxford")),
        oxford_label=sc.get("oxford_label") if isinstance(sc.get("oxford_label"), str) else None,
        endurance_s=endurance, repetitions=_int(sc.get("repetitions")),
        fast=_int(sc.get("fast")),
        relaxed=relaxed, relax_judged=relax_judged, rested=rested, rest_judged=rest_judged,
        technique_ok=tech, technique_judged=tech_judged,
        resting_tone=_num(sc.get("resting_tone")),
        pain_before=_pain(pain.get("before")), pain_after=_pain(pain.get("after")),
        gaps=_int(s.get("gaps")), missing_s=_num(s.get("missing_s")),
        calibrating="mvc" in kinds, has_scores=has_scores, has_verdicts=verdicts is not None)


def _pain(x: Any) -> int | None:
    v = _int(x)
    return v if v is not None and 0 <= v <= 10 else None


# ------------------------------------------------------------------ weeks and streaks

def iso_week(day: dt.date) -> str:
    y, w, _ = day.isocalendar()
    return f"{y}-W{w:02d}"


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def known_values(points: Iterable[Point], attr: str) -> list[float]:
    """The points' values of `attr` that the sessions had (None left out)."""
    return [v for v in (getattr(p, attr) for p in points) if v is not None]


@dataclass
class Week:
    """One ISO week's figures over the sessions dated in it (None: no session
    in the week had that figure). Unit-valued figures are over the sessions
    in `unit` only."""
    week: str                        # '2026-W47'
    monday: str                      # '2026-11-16'
    sessions: int
    minutes: float
    unit: str
    mvc_best: float | None = None
    mvc_mean: float | None = None
    power_best: float | None = None
    endurance_best_s: float | None = None
    repetitions_best: int | None = None
    fast_best: int | None = None
    relaxed: int | None = None
    relax_judged: int | None = None
    relaxed_pct: float | None = None
    resting_tone_mean: float | None = None
    pain_before_mean: float | None = None
    pain_after_mean: float | None = None
    pain_after_max: int | None = None
    days_trained: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def weekly(points: Sequence[Point], unit: str) -> list[Week]:
    """One Week per ISO week from the first dated session's week to the last's."""
    dated = [p for p in points if p.day is not None]
    if not dated:
        return []
    first = monday(min(p.day for p in dated))          # type: ignore[type-var]
    last = monday(max(p.day for p in dated))           # type: ignore[type-var]
    by_week: dict[dt.date, list[Point]] = {}
    for p in dated:
        by_week.setdefault(monday(p.day), []).append(p)  # type: ignore[arg-type]
    out: list[Week] = []
    m = first
    while m <= last:
        ps = by_week.get(m, [])
        same = [p for p in ps if p.unit == unit]
        w = Week(week=iso_week(m), monday=m.isoformat(), sessions=len(ps),
                 minutes=round(sum(p.duration_s for p in ps) / 60.0, 1), unit=unit,
                 days_trained=len({p.day for p in ps}))
        mvc = known_values(same, "mvc")
        w.mvc_best = _round(max(mvc)) if mvc else None
        w.mvc_mean = _round(_mean(mvc))
        power = known_values(same, "power")
        w.power_best = _round(max(power)) if power else None
        endu = known_values(ps, "endurance_s")
        w.endurance_best_s = _round(max(endu)) if endu else None
        reps = known_values(ps, "repetitions")
        w.repetitions_best = int(max(reps)) if reps else None
        fast = known_values(ps, "fast")
        w.fast_best = int(max(fast)) if fast else None
        judged = [p for p in ps if p.relax_judged]
        if judged:
            w.relaxed = sum(p.relaxed or 0 for p in judged)
            w.relax_judged = sum(p.relax_judged or 0 for p in judged)
            w.relaxed_pct = _round(_pct(w.relaxed, w.relax_judged), 1)
        w.resting_tone_mean = _round(_mean(known_values(same, "resting_tone")))
        w.pain_before_mean = _round(_mean(known_values(ps, "pain_before")), 1)
        w.pain_after_mean = _round(_mean(known_values(ps, "pain_after")), 1)
        after = known_values(ps, "pain_after")
        w.pain_after_max = int(max(after)) if after else None
        out.append(w)
        m += dt.timedelta(days=7)
    return out


@dataclass
class Streak:
    """Consecutive days (and ISO weeks) with at least one session.

    `days` / `weeks`: the current streak, counted back from today (or from
    yesterday / last week when she has not trained yet today / this week);
    0 when it is broken. `last_days` / `last_weeks`: the run that ended on
    her last training day / week, whether or not it is still going;
    `longest_*`: the longest runs ever."""
    days: int = 0
    weeks: int = 0
    last_days: int = 0
    last_weeks: int = 0
    longest_days: int = 0
    longest_weeks: int = 0
    last_day: str | None = None
    today: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _runs(sorted_units: list[int]) -> list[tuple[int, int]]:
    """[(end, length)] of runs of consecutive integers in a sorted list."""
    runs: list[tuple[int, int]] = []
    for u in sorted_units:
        if runs and u == runs[-1][0] + 1:
            runs[-1] = (u, runs[-1][1] + 1)
        elif not runs or u != runs[-1][0]:
            runs.append((u, 1))
    return runs


def streak(points: Sequence[Point], today: dt.date | None = None) -> Streak:
    today = today or dt.date.today()
    days = sorted({p.day.toordinal() for p in points if p.day is not None})   # type: ignore[union-attr]
    st = Streak(today=today.isoformat())
    if not days:
        return st
    weeks = sorted({monday(dt.date.fromordinal(d)).toordinal() // 7 for d in days})
    druns, wruns = _runs(days), _runs(weeks)
    st.last_day = dt.date.fromordinal(days[-1]).isoformat()
    st.last_days, st.last_weeks = druns[-1][1], wruns[-1][1]
    st.longest_days = max(n for _, n in druns)
    st.longest_weeks = max(n for _, n in wruns)
    t = today.toordinal()
    if druns[-1][0] in (t, t - 1):
        st.days = druns[-1][1]
    tw = monday(today).toordinal() // 7
    if wruns[-1][0] in (tw, tw - 1):
        st.weeks = wruns[-1][1]
    return st


# ------------------------------------------------------------------ pain

def pain_trend_up(points: Sequence[Point]) -> bool:
    """Pain rising over her last sessions: of the last PAIN_TREND_SESSIONS
    sessions with pain logged (after, else before), at least PAIN_TREND_MIN,
    a least-squares slope of at least PAIN_TREND_SLOPE points per session, the
    last at least PAIN_TREND_RISE above the first, and at least
    PAIN_TREND_STEPS rises from one session to the next (one bad session is
    a rise in that session, not a trend)."""
    ys = [float(p.pain_after if p.pain_after is not None else p.pain_before)
          for p in points if p.pain_after is not None or p.pain_before is not None]
    ys = ys[-PAIN_TREND_SESSIONS:]
    if len(ys) < PAIN_TREND_MIN:
        return False
    n = len(ys)
    xm, ym = (n - 1) / 2.0, sum(ys) / n
    slope = (sum((i - xm) * (y - ym) for i, y in enumerate(ys))
             / sum((i - xm) ** 2 for i in range(n)))
    steps = sum(1 for a, b in zip(ys, ys[1:]) if b > a)
    return (slope >= PAIN_TREND_SLOPE and ys[-1] - ys[0] >= PAIN_TREND_RISE
            and steps >= PAIN_TREND_STEPS)


# ------------------------------------------------------------------ the whole picture

@dataclass
class Trends:
    points: list[Point]              # every session, oldest first (undated ones included)
    weeks: list[Week]
    streak: Streak
    unit: str                        # the unit of the unit-valued trends (most sessions)
    other_unit: list[str] = field(default_factory=list)   # sessions in another unit
    undated: list[str] = field(default_factory=list)      # sessions without a start time

    @property
    def dated(self) -> list[Point]:
        return [p for p in self.points if p.start_epoch is not None]

    @property
    def gap_weeks(self) -> list[Week]:
        return [w for w in self.weeks if w.sessions == 0]

    @property
    def pain_rose(self) -> list[Point]:
        return [p for p in self.points if p.pain_rose]

    @property
    def pain_trend_up(self) -> bool:
        """Over her last dated sessions (see `pain_trend_up`)."""
        return pain_trend_up(self.dated)

    @property
    def uncalibrated(self) -> list[Point]:
        """Sessions scored against her best squeeze of the day (a calibration
        session itself measures the MVC, so it is not one of them)."""
        return [p for p in self.points if p.uncalibrated]

    def notes(self) -> list[str]:
        """Plain-language notes for the terminal and the report (pain first)."""
        out: list[str] = []
        if self.undated:
            out.append(f"{len(self.undated)} session{plural_s(self.undated)} without a date (the "
                       f"trainer's clock was not set): {', '.join(self.undated)}; counted and "
                       f"listed, but not on the time axis, in a week or in the streak")
        if self.other_unit:
            out.append(f"{len(self.other_unit)} session{plural_s(self.other_unit)} measured in another "
                       f"unit than {self.unit} ({', '.join(self.other_unit)}) "
                       f"{'are' if len(self.other_unit) != 1 else 'is'} not in the {self.unit} "
                       f"strength and resting-tone trends")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "points": [p.to_json() for p in self.points],
                "weeks": [w.to_json() for w in self.weeks], "streak": self.streak.to_json(),
                "undated": self.undated, "other_unit": self.other_unit,
                "gap_weeks": [w.week for w in self.gap_weeks],
                "pain_rose": [p.key for p in self.pain_rose],
                "pain_trend_up": self.pain_trend_up,
                "uncalibrated": [p.key for p in self.uncalibrated]}


def plural_s(xs: Sequence[Any] | int) -> str:
    """'s' unless there is exactly one (of a count, or of a list's items)."""
    n = xs if isinstance(xs, int) else len(xs)
    return "" if n == 1 else "s"


def build(rows: Sequence[Any], today: dt.date | None = None) -> Trends:
    """Trends of `SessionDatabase.list()` rows (any order; sorted here)."""
    points = [point(r) for r in rows]
    points.sort(key=lambda p: (p.start_epoch is None,
                               p.start_epoch if p.start_epoch is not None else 0,
                               p.device_id, p.session_id))
    units: dict[str, int] = {}
    for p in points:
        units[p.unit] = units.get(p.unit, 0) + 1
    unit = max(units, key=lambda u: (units[u], u)) if units else ""
    return Trends(points=points, weeks=weekly(points, unit), streak=streak(points, today),
                  unit=unit, other_unit=[p.key for p in points if p.unit != unit],
                  undated=[p.key for p in points if p.start_epoch is None])
