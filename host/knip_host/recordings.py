"""Read recordings from disk into one typed `Recording`.

Three formats, recognised by content (`sniff`), or named with `format=`:

- ``csv``: a header row of column names, then numbers. A ``time_s`` column
  (or ``time_ms``) gives the times; without one, the rate must be given.
  Optional ``# unit: cmH2O`` and ``# rate_hz: 100`` comment lines.
- ``text``: ``#`` header lines then one value per line (OpenSignals
  "Simple Text Format", as in the BioSPPy EMG examples):
  ``# Sampling Rate (Hz):= 1000.00``, ``# Resolution:= 12``, ``# Labels:= EMG``.
- ``hrm``: anorectal high-resolution manometry export: a ``TIME:`` header,
  tab-separated rows, then an ``Annotations:`` block of ``time  label`` lines.

Bad input raises `RecordingError` with the file, the line and what to do.
Problems that still leave a usable signal (gaps, clipping, a flat channel)
become `Recording.warnings`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import limits
from .rails import RAIL_MS, RAIL_SAMPLES
from .runs import true_runs
from .rows import LineIndex, delimiter, is_number, parse_rows, split, time_column
from .textfile import RecordingError, TextFile, head_lines, is_data

__all__ = ["FORMATS", "UNITS", "Recording", "RecordingError", "load", "sniff"]

FORMATS = ("csv", "text", "hrm")
UNITS = ("cmH2O", "mmHg", "counts", "uV")
_CANON = {u.lower(): u for u in UNITS} | {"µv": "uV", "μv": "uV", "cmh₂o": "cmH2O"}   # as written -> as shown

GAP_PERIODS = 3.0         # a step longer than this many periods is a gap
RATE_CHANGE = 0.10        # first/second half median steps differ by more: error
JITTER_MATERIAL = 0.05    # std of the steps over their median: worth a warning
FLAT_TOP_S = RAIL_MS / 1000       # identical samples at the channel max this long: clipped
FLAT_TOP_MIN_SAMPLES = RAIL_SAMPLES  # (the hold knip_host.rails reads as a rail)
MAX_RESOLUTION_BITS = 32


@dataclass
class Recording:
    path: Path
    format: str
    times_s: np.ndarray
    channels: dict[str, np.ndarray]
    rate_hz: float
    unit: str = ""
    annotations: list[tuple[float, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resolution_bits: int | None = None
    # channel -> (the values it was found clipped at: ADC limits, a flat
    # top; the warning that says so), for knip_host.analysis to fold its
    # own rail finding into
    clipped: dict[str, tuple[tuple[float, ...], str]] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(len(self.times_s))

    @property
    def duration_s(self) -> float:
        if len(self.times_s) < 2:
            return 0.0
        return float(self.times_s[-1] - self.times_s[0]) + 1.0 / self.rate_hz

    @property
    def channel_names(self) -> list[str]:
        return list(self.channels)

    def channel(self, name: str) -> np.ndarray:
        """The samples of one channel; a clear error names the ones there are."""
        if name in self.channels:
            return self.channels[name]
        raise RecordingError(
            f"{self.path}: no channel {name!r}; channels are {', '.join(self.channels)}")


# ----------------------------------------------------------------- entry point

def load(path: str | Path, *, format: str | None = None,
         rate_hz: float | None = None) -> Recording:
    """Read `path` in `format` (None: recognise it from the content)."""
    path = Path(path)
    if rate_hz is not None:
        problem = limits.rate_problem(rate_hz)
        if problem:
            raise RecordingError(f"{path}: --rate: {problem}")
    src = TextFile.open(path)
    fmt = format or sniff(path, src.head())
    if fmt not in READERS:
        raise RecordingError(f"{path}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    rec = READERS[fmt](path, src, rate_hz)
    if src.cut:
        rec.warnings.insert(0, "the file ends in half a UTF-16 character (cut off while it was "
                               "written?): its last line is left out")
    _check_signal(rec)
    return rec


def sniff(path: Path, lines: Iterable[str]) -> str:
    """Recognise the format from the first meaningful lines."""
    lines = head_lines(lines)
    first = next(((n, s.strip()) for n, s in enumerate(lines, 1) if s.strip()), None)
    if first is None:
        raise RecordingError(f"{path}: the file is empty; record a session first")
    n, line = first
    if line[0] in "{[":
        raise RecordingError(
            f"{path}: line {n}: this is JSON, not a recording; give the CSV or text export")
    if line[0] == "<":
        raise RecordingError(
            f"{path}: line {n}: this is XML/HTML, not a recording; give the CSV or text export")
    if line.upper().startswith("TIME:"):
        return "hrm"
    data = next(((n, s.strip()) for n, s in enumerate(lines, 1) if is_data(s)), None)
    if data is None:
        raise RecordingError(f"{path}: only '#' comment lines, no data rows")
    n, line = data
    tokens = split(line, delimiter(line))
    if all(is_number(t) for t in tokens):
        if len(tokens) == 1 or "labels" in _comment_header(lines):
            return "text"
        raise RecordingError(
            f"{path}: line {n}: numbers but no header row; add a header line naming the "
            f"columns (e.g. 'time_s,pressure') or give --format text with '# Labels:=' names")
    return "csv"


# ------------------------------------------------------------------- readers

def _first_data(head: list[str]) -> int | None:
    """Index of the first data line (neither blank nor a '#' comment)."""
    return next((i for i, s in enumerate(head) if is_data(s)), None)


def read_csv(path: Path, src: TextFile, rate_hz: float | None) -> Recording:
    head = src.head()
    header = _comment_header(head)
    start = _first_data(head)
    if start is None:
        raise RecordingError(f"{path}: only '#' comment lines, no header row and no data rows")
    head_line = head[start].strip()
    delim = delimiter(head_line)
    names = [t.strip().strip('"').strip("'") for t in split(head_line, delim)]
    hn = start + 1
    if any(len(nm.split()) > 3 for nm in names):      # sentences, not column names
        raise RecordingError(
            f"{path}: line {hn}: expected a header row of column names separated by commas "
            f"(e.g. 'time_s,pressure'), found prose; is this a recording?")
    if any(not nm for nm in names):
        raise RecordingError(f"{path}: line {hn}: an empty column name in the header; name every column")
    dupes = sorted({nm for nm in names if names.count(nm) > 1})
    if dupes:
        raise RecordingError(f"{path}: line {hn}: column {dupes[0]!r} appears twice in the header; rename one")
    if all(is_number(t) for t in names):
        raise RecordingError(
            f"{path}: line {hn}: numbers where the header row should be; add a header line "
            f"naming the columns (e.g. 'time_s,pressure')")

    table = parse_rows(path, src.lines(after=start + 1), delim, names, header_line=hn)
    time_col, scale = time_column(names)
    warnings: list[str] = list(table.notes)
    unit = _unit(path, header, warnings)
    file_rate = _header_rate(path, header, head)
    cols = table.columns
    if time_col is not None:
        times = cols.pop(time_col)
        if scale != 1.0:
            times = times * scale
        chan_names = [nm for i, nm in enumerate(names) if i != time_col]
        data = cols
        rate = _rate_from_times(path, times, table.lines, warnings)
        if rate_hz is not None and abs(rate_hz - rate) > 0.01 * rate:
            warnings.append(f"--rate {rate_hz:g} Hz ignored: the {names[time_col]} column "
                            f"gives {rate:.4g} Hz")
    else:
        rate = rate_hz or file_rate
        if rate is None:
            raise RecordingError(
                f"{path}: line {hn}: no time column (time_s) and no rate; add a time_s column, "
                f"a '# rate_hz: 100' line, or give --rate HZ")
        times = _even_times(path, len(table), rate)
        chan_names, data = names, cols
    if not chan_names:
        raise RecordingError(f"{path}: line {hn}: only a time column; add at least one signal column")
    if not unit:
        unit = _unit_in_name(chan_names[0])     # as knip export writes it: pressure_cmH2O
    channels = dict(zip(chan_names, data))
    return Recording(path, "csv", times, channels, rate, unit, [], warnings,
                     _resolution(header, warnings))


def read_text(path: Path, src: TextFile, rate_hz: float | None) -> Recording:
    lines = src.head()
    header = _comment_header(lines)
    warnings: list[str] = []
    start = _first_data(lines)
    start = len(lines) if start is None else start
    first = lines[start].strip() if start < len(lines) else ""
    delim = "\t" if "\t" in first else None      # tab-separated: an empty cell is a dropout
    ncols = len(split(first, delim)) if first else 1
    labels = header.get("labels", "").replace(",", " ").split()
    if len(labels) == ncols:
        names = labels
    elif ncols == 1:
        names = [labels[0] if labels else "signal"]
    else:
        names = [f"ch{i + 1}" for i in range(ncols)]
    last_header = max((i + 1 for i, s in enumerate(lines[:start]) if s.strip()), default=0)
    table = parse_rows(path, src.lines(after=start), delim, names, header_line=last_header or None)
    warnings += table.notes
    rate = rate_hz or _header_rate(path, header, lines)
    if rate is None:
        raise RecordingError(
            f"{path}: no sampling rate: the header has no '# Sampling Rate (Hz):= ...' line; "
            f"give --rate HZ")
    unit = _unit(path, header, warnings) or "counts"
    times = _even_times(path, len(table), rate)
    channels = dict(zip(names, table.columns))
    return Recording(path, "text", times, channels, rate, unit, [], warnings,
                     _resolution(header, warnings))


def read_hrm(path: Path, src: TextFile, rate_hz: float | None) -> Recording:
    first = next(((n, s) for n, s in src.lines() if s.strip()), (1, ""))
    hn, head = first[0], first[1].strip()
    if not head.upper().startswith("TIME:"):
        raise RecordingError(
            f"{path}: line {hn}: a manometry file starts with a 'TIME:' header, found "
            f"{head[:40]!r}; check --format")
    names = [t.strip() for t in re.split(r"\t+|\s{2,}", head) if t.strip()]
    names[0] = "time_s"
    if len(names) < 2:
        raise RecordingError(f"{path}: line {hn}: the TIME: header names no channels; a manometry "
                             f"export has one column per sensor after TIME:")
    lines = src.lines(after=hn)
    table = parse_rows(path, lines, None, names, header_line=hn,
                       stop=lambda s: s.lower() == "annotations:")
    warnings: list[str] = list(table.notes)
    times = table.columns[0]
    rate = _rate_from_times(path, times, table.lines, warnings)
    if rate_hz is not None and abs(rate_hz - rate) > 0.01 * rate:
        warnings.append(f"--rate {rate_hz:g} Hz ignored: the TIME column gives {rate:.4g} Hz")
    channels = dict(zip(names[1:], table.columns[1:]))
    annotations = _annotations(lines, warnings)
    return Recording(path, "hrm", times, channels, rate, "mmHg", annotations, warnings)


READERS = {"csv": read_csv, "text": read_text, "hrm": read_hrm}


# ------------------------------------------------------------------- parsing

def _comment_header(lines: list[str]) -> dict[str, str]:
    """'# key:= value' and '# key: value' lines before the data, keys lower-cased."""
    out: dict[str, str] = {}
    for s in lines:
        s = s.strip()
        if not s:
            continue
        if not s.startswith("#"):
            break
        m = re.match(r"#\s*([^:=]+?)\s*:=?\s*(.*)$", s)
        if m:
            out[m.group(1).lower()] = m.group(2).strip()
    return out


def _header_rate(path: Path, header: dict[str, str], lines: list[str]) -> float | None:
    for key in ("sampling rate (hz)", "sampling rate", "rate_hz", "rate"):
        if key in header:
            raw = header[key].split()[0] if header[key].split() else ""
            try:
                rate = float(raw)
            except ValueError:
                rate = float("nan")
            if not (math.isfinite(rate) and rate > 0):
                n = _header_line_no(lines, key)
                raise RecordingError(
                    f"{path}: line {n}: the sampling rate {header[key]!r} is not a positive "
                    f"number; fix the header or give --rate HZ")
            return rate
    return None


def _header_line_no(lines: list[str], key: str) -> int:
    for i, s in enumerate(lines):
        if s.strip().startswith("#") and key in s.lower():
            return i + 1
    return 1


def _unit(path: Path, header: dict[str, str], warnings: list[str]) -> str:
    raw = header.get("unit", "").strip()
    if not raw:
        return ""
    unit = _CANON.get(raw.lower())
    if unit is None:
        warnings.append(f"unit {raw!r} not known (use one of {', '.join(UNITS)}); values shown without a unit")
        return ""
    return unit


def _unit_in_name(name: str) -> str:
    """The unit a column's name ends in ('pressure_cmH2O' -> 'cmH2O'), else ''."""
    return _CANON.get(name.rsplit("_", 1)[-1].lower(), "") if "_" in name else ""


def _annotations(lines: Iterator[tuple[int, str]], warnings: list[str]) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    skipped: list[int] = []
    for n, s in lines:
        s = s.strip()
        if not s:
            continue
        m = re.match(r"([-+]?\d+(?:\.\d*)?)\s+(.*)$", s)
        if m is None:
            skipped.append(n)
            continue
        out.append((float(m.group(1)), m.group(2).strip()))
    if skipped:
        warnings.append(f"{len(skipped)} annotation line(s) without a leading time ignored "
                        f"(line {_list_lines(skipped)})")
    return sorted(out, key=lambda a: a[0])


def _resolution(header: dict[str, str], warnings: list[str]) -> int | None:
    """ADC bits from a '# Resolution:= 12' line (None: not given or not usable)."""
    raw = header.get("resolution")
    try:
        bits = int(float(raw)) if raw else None
    except (ValueError, OverflowError):
        return None
    if bits is not None and not 0 <= bits <= MAX_RESOLUTION_BITS:
        warnings.append(f"resolution {raw!r} ignored: an ADC has 1 to {MAX_RESOLUTION_BITS} bits")
        return None
    return bits


def _list_lines(nos: list[int], most: int = 5) -> str:
    shown = ", ".join(str(n) for n in nos[:most])
    return shown + (f" and {len(nos) - most} more" if len(nos) > most else "")


# ---------------------------------------------------------- time-base checks

def _rate_from_times(path: Path, times: np.ndarray, lines: LineIndex, warnings: list[str]) -> float:
    """1 / median step, after checking that the times are finite, within the
    detector's clock and increasing, and that the rate holds and can be analysed."""
    if len(times) < 2:
        raise RecordingError(
            f"{path}: line {lines[0]}: only one data row; a rate needs at least two samples")
    finite = np.isfinite(times)
    if not finite.all():
        k = int(np.argmin(finite))
        raise RecordingError(f"{path}: line {lines[k]}: time {times[k]:g} is not a finite time; "
                             f"delete the row or fill the time in")
    del finite
    problem = limits.times_problem(float(times.min()), float(times.max()))
    if problem:
        raise RecordingError(f"{path}: {problem}")
    dt = np.diff(times)
    bad = np.flatnonzero(dt <= 0)
    if bad.size:
        k = int(bad[0])
        raise RecordingError(
            f"{path}: line {lines[k + 1]}: time {times[k + 1]:g} s is not after "
            f"{times[k]:g} s on line {lines[k]}; times must increase (sort the rows or "
            f"remove the duplicate)")
    del dt                                    # the median reorders its own copy
    period = float(np.median(np.diff(times), overwrite_input=True))
    dt = np.diff(times)
    _check_rate_change(path, dt, lines)
    problem = limits.rate_problem(1.0 / period, "if the times are in milliseconds, name the "
                                                "column time_ms")
    if problem:
        raise RecordingError(f"{path}: the time column steps by {period:.6g} s: {problem}")
    gaps = np.flatnonzero(dt > GAP_PERIODS * period)
    if gaps.size:
        where = ", ".join(f"{times[k]:.3f}-{times[k + 1]:.3f} s (line {lines[k + 1]})"
                          for k in gaps[:5])
        more = f" and {gaps.size - 5} more" if gaps.size > 5 else ""
        lost = float(np.sum(dt[gaps] - period))
        warnings.append(f"{gaps.size} gap(s) in time longer than {GAP_PERIODS:g} sample periods "
                        f"({lost:.3g} s missing): {where}{more}; samples were lost there")
    regular = dt[dt <= GAP_PERIODS * period] if gaps.size else dt
    jitter = float(np.std(regular)) / period if regular.size else 0.0
    if jitter > JITTER_MATERIAL:
        warnings.append(f"irregular sample times: the step varies by {100 * jitter:.0f} % "
                        f"(std) around {1000 * period:.4g} ms; timings are approximate")
    return 1.0 / period


def _even_times(path: Path, n: int, rate: float) -> np.ndarray:
    """Times of `n` samples at `rate` from 0, checked against the detector's clock."""
    problem = limits.rate_problem(rate, "fix the rate in the header or give --rate HZ")
    if problem:
        raise RecordingError(f"{path}: {problem}")
    problem = limits.times_problem(0.0, (n - 1) / rate)
    if problem:
        raise RecordingError(f"{path}: {n} samples at {rate:g} Hz: {problem}")
    return np.arange(n) / rate


def _check_rate_change(path: Path, dt: np.ndarray, lines: LineIndex) -> None:
    if len(dt) < 8:
        return
    half = len(dt) // 2
    m1, m2 = float(np.median(dt[:half])), float(np.median(dt[half:]))
    if abs(m1 - m2) <= RATE_CHANGE * min(m1, m2):
        return
    # Where it changes: the split that best explains the steps by m1 then m2.
    cost = np.cumsum(np.abs(dt - m1)) - np.cumsum(np.abs(dt - m2))
    k = int(np.argmin(cost)) + 1              # first step at the new rate is dt[k]
    raise RecordingError(
        f"{path}: line {lines[k + 1]}: the sampling rate changes inside the file, from "
        f"{1 / m1:.4g} Hz (first half) to {1 / m2:.4g} Hz (second half) around here; "
        f"split the file there or resample it to one rate")


# --------------------------------------------------------------- signal checks

def _check_signal(rec: Recording) -> None:
    """Warn about channels that cannot show squeezes or are clipped."""
    for name, x in rec.channels.items():
        if x.size and float(np.ptp(x)) == 0.0:
            rec.warnings.append(f"channel {name!r} is constant ({x[0]:g}{_u(rec)}): "
                                f"no squeezes can be found in a constant signal")
            continue
        note, at = _saturation(rec, x)
        if note:
            rec.warnings.append(f"channel {name!r}: {note}")
            rec.clipped[name] = (at, rec.warnings[-1])


def _u(rec: Recording) -> str:
    return f" {rec.unit}" if rec.unit else ""


def _saturation(rec: Recording, x: np.ndarray) -> tuple[str, tuple[float, ...]]:
    """Runs of one value at the ADC's limits, or held at the channel's
    maximum: the warning ("" if none) and the values it is clipped at."""
    parts: list[str] = []
    first_t: list[float] = []
    at: list[float] = []
    if rec.unit == "counts" or rec.resolution_bits:
        top = float(2 ** (rec.resolution_bits or 12) - 1)
        runs = [true_runs(x == v) for v in (0.0, top)]
        n_runs = sum(len(st) for st, _ in runs)
        at += [v for v, (st, _) in zip((0.0, top), runs) if len(st)]
        if n_runs:
            samples = sum(int(ln.sum()) for _, ln in runs)
            parts.append(f"{n_runs} run(s) ({samples} samples) at the ADC limits 0/{top:g}")
            first = min(int(st[0]) for st, _ in runs if len(st))
            first_t.append(float(rec.times_s[first]))
    need = max(FLAT_TOP_MIN_SAMPLES, math.ceil(FLAT_TOP_S * rec.rate_hz))
    top_value = x.max()
    starts, lengths = true_runs(x == top_value)
    flat = lengths >= need
    if flat.any():
        at.append(float(top_value))
        longest = int(lengths[flat].max()) / rec.rate_hz
        parts.append(f"{int(flat.sum())} flat top(s) at the maximum {top_value:g}{_u(rec)} "
                     f"(longest {longest:.3g} s)")
        first_t.append(float(rec.times_s[starts[flat][0]]))
    if not parts:
        return "", ()
    return (" and ".join(parts) + f", first at {min(first_t):.3f} s: the signal is clipped "
            f"(saturated); peaks there read low; lower the gain or check the sensor"), tuple(at)
