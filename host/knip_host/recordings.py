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

import numpy as np

FORMATS = ("csv", "text", "hrm")
UNITS = ("cmH2O", "mmHg", "counts", "uV")

GAP_PERIODS = 3.0         # a step longer than this many periods is a gap
RATE_CHANGE = 0.10        # first/second half median steps differ by more: error
JITTER_MATERIAL = 0.05    # std of the steps over their median: worth a warning
FLAT_TOP_S = 0.050        # identical samples at the channel max this long: clipped
FLAT_TOP_MIN_SAMPLES = 3
SNIFF_BYTES = 8192


class RecordingError(ValueError):
    """Input that cannot be read as a recording; the message says why and what to do."""


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
    if rate_hz is not None and not (math.isfinite(rate_hz) and rate_hz > 0):
        raise RecordingError(f"{path}: the rate must be a positive number of Hz, got {rate_hz}")
    lines = _read_lines(path)
    fmt = format or sniff(path, lines)
    if fmt not in READERS:
        raise RecordingError(f"{path}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    rec = READERS[fmt](path, lines, rate_hz)
    _check_signal(rec)
    return rec


def _read_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise RecordingError(f"{path}: is a directory; give a recording file") from None
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data.strip():
        raise RecordingError(f"{path}: the file is empty; record a session first")
    head = data[:SNIFF_BYTES]
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13, 12))
    if b"\0" in head or controls > len(head) // 20:
        raise RecordingError(
            f"{path}: binary data, not a text recording; export it as CSV (a time_s column "
            f"and one column per channel)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()


def sniff(path: Path, lines: list[str]) -> str:
    """Recognise the format from the first meaningful lines."""
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
    data = next(((n, s.strip()) for n, s in enumerate(lines, 1)
                 if s.strip() and not s.lstrip().startswith("#")), None)
    if data is None:
        raise RecordingError(f"{path}: only '#' comment lines, no data rows")
    n, line = data
    tokens = _split(line, _delimiter(line))
    if all(_is_number(t) for t in tokens):
        if len(tokens) == 1 or "labels" in _comment_header(lines):
            return "text"
        raise RecordingError(
            f"{path}: line {n}: numbers but no header row; add a header line naming the "
            f"columns (e.g. 'time_s,pressure') or give --format text with '# Labels:=' names")
    return "csv"


# ------------------------------------------------------------------- readers

def read_csv(path: Path, lines: list[str], rate_hz: float | None) -> Recording:
    header = _comment_header(lines)
    start = next((i for i, s in enumerate(lines)
                  if s.strip() and not s.lstrip().startswith("#")), None)
    if start is None:
        raise RecordingError(f"{path}: only '#' comment lines, no header row and no data rows")
    head_line = lines[start].strip()
    delim = _delimiter(head_line)
    names = [t.strip().strip('"').strip("'") for t in _split(head_line, delim)]
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
    if all(_is_number(t) for t in names):
        raise RecordingError(
            f"{path}: line {hn}: numbers where the header row should be; add a header line "
            f"naming the columns (e.g. 'time_s,pressure')")

    rows, line_nos = _parse_rows(path, lines, start + 1, delim, names, header_line=hn)
    time_col, scale = _time_column(names)
    warnings: list[str] = []
    unit = _unit(path, header, warnings)
    file_rate = _header_rate(path, header, lines)
    if time_col is not None:
        times = rows[:, time_col] * scale
        chan_names = [nm for i, nm in enumerate(names) if i != time_col]
        data = np.delete(rows, time_col, axis=1)
        rate = _rate_from_times(path, times, line_nos, warnings)
        if rate_hz is not None and abs(rate_hz - rate) > 0.01 * rate:
            warnings.append(f"--rate {rate_hz:g} Hz ignored: the {names[time_col]} column "
                            f"gives {rate:.4g} Hz")
    else:
        rate = rate_hz or file_rate
        if rate is None:
            raise RecordingError(
                f"{path}: line {hn}: no time column (time_s) and no rate; add a time_s column, "
                f"a '# rate_hz: 100' line, or give --rate HZ")
        times = np.arange(len(rows)) / rate
        chan_names, data = names, rows
    if not chan_names:
        raise RecordingError(f"{path}: line {hn}: only a time column; add at least one signal column")
    channels = {nm: np.ascontiguousarray(data[:, i]) for i, nm in enumerate(chan_names)}
    return Recording(path, "csv", times, channels, rate, unit, [], warnings,
                     _int_or_none(header.get("resolution")))


def read_text(path: Path, lines: list[str], rate_hz: float | None) -> Recording:
    header = _comment_header(lines)
    warnings: list[str] = []
    start = next((i for i, s in enumerate(lines)
                  if s.strip() and not s.lstrip().startswith("#")), len(lines))
    first = lines[start].strip() if start < len(lines) else ""
    ncols = len(first.split()) if first else 1
    labels = header.get("labels", "").replace(",", " ").split()
    if len(labels) == ncols:
        names = labels
    elif ncols == 1:
        names = [labels[0] if labels else "signal"]
    else:
        names = [f"ch{i + 1}" for i in range(ncols)]
    last_header = max((i + 1 for i, s in enumerate(lines[:start]) if s.strip()), default=0)
    rows, _ = _parse_rows(path, lines, start, None, names, header_line=last_header or None)
    rate = rate_hz or _header_rate(path, header, lines)
    if rate is None:
        raise RecordingError(
            f"{path}: no sampling rate: the header has no '# Sampling Rate (Hz):= ...' line; "
            f"give --rate HZ")
    unit = _unit(path, header, warnings) or "counts"
    times = np.arange(len(rows)) / rate
    channels = {nm: np.ascontiguousarray(rows[:, i]) for i, nm in enumerate(names)}
    return Recording(path, "text", times, channels, rate, unit, [], warnings,
                     _int_or_none(header.get("resolution")))


def read_hrm(path: Path, lines: list[str], rate_hz: float | None) -> Recording:
    hi = next((i for i, s in enumerate(lines) if s.strip()), 0)
    head = lines[hi].strip()
    if not head.upper().startswith("TIME:"):
        raise RecordingError(
            f"{path}: line {hi + 1}: a manometry file starts with a 'TIME:' header, found "
            f"{head[:40]!r}; check --format")
    names = [t.strip() for t in re.split(r"\t+|\s{2,}", head) if t.strip()]
    names[0] = "time_s"
    end = next((i for i in range(hi + 1, len(lines))
                if lines[i].strip().lower() == "annotations:"), len(lines))
    rows, line_nos = _parse_rows(path, lines[:end], hi + 1, None, names, header_line=hi + 1)
    warnings: list[str] = []
    times = rows[:, 0]
    rate = _rate_from_times(path, times, line_nos, warnings)
    if rate_hz is not None and abs(rate_hz - rate) > 0.01 * rate:
        warnings.append(f"--rate {rate_hz:g} Hz ignored: the TIME column gives {rate:.4g} Hz")
    channels = {nm: np.ascontiguousarray(rows[:, i]) for i, nm in enumerate(names) if i}
    annotations = _annotations(path, lines, end + 1, warnings)
    return Recording(path, "hrm", times, channels, rate, "mmHg", annotations, warnings)


READERS = {"csv": read_csv, "text": read_text, "hrm": read_hrm}


# ------------------------------------------------------------------- parsing

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_NONFINITE = re.compile(r"[-+]?(nan|inf|infinity)$", re.IGNORECASE)


def _is_number(tok: str) -> bool:
    return bool(_NUMBER.match(tok.strip()))


def _delimiter(line: str) -> str | None:
    for d in ("\t", ";", ","):
        if d in line:
            return d
    return None


def _split(line: str, delim: str | None) -> list[str]:
    return [t.strip() for t in line.split(delim)] if delim else line.split()


def _parse_rows(path: Path, lines: list[str], start: int, delim: str | None,
                names: list[str], header_line: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Numbers from lines[start:], skipping blank and '#' lines; checked cell by cell."""
    width = len(names)
    where = f"as in the header on line {header_line}" if header_line else "as on the first data row"
    values: list[float] = []
    line_nos: list[int] = []
    for i in range(start, len(lines)):
        s = lines[i].strip()
        if not s or s.startswith("#"):
            continue
        n = i + 1
        toks = _split(s, delim)
        if delim and toks and toks[-1] == "" and len(toks) == width + 1:
            toks.pop()                      # a trailing delimiter
        if len(toks) != width:
            raise RecordingError(
                f"{path}: line {n}: {len(toks)} value{'s' if len(toks) != 1 else ''}, expected "
                f"{width} ({where}); fix or delete the row")
        for j, tok in enumerate(toks):
            if _NUMBER.match(tok):
                values.append(float(tok))
            elif _NONFINITE.match(tok) and _time_column([names[j]])[0] is None:
                values.append(float("nan"))     # a dropout: analysed as a gap
            elif _NONFINITE.match(tok):
                raise RecordingError(
                    f"{path}: line {n}: column {names[j]!r} is {tok!r}, not a finite time; "
                    f"delete the row or fill the time in")
            else:
                shown = tok if len(tok) <= 30 else tok[:27] + "..."
                fix = ("write decimals with a point ('.'), not a comma"
                       if re.fullmatch(r"[-+]?\d+,\d+", tok)
                       else f"every data row must hold {width} number{'s' if width != 1 else ''}")
                raise RecordingError(
                    f"{path}: line {n}: column {names[j]!r} is {shown!r}, not a number; {fix}")
        line_nos.append(n)
    if not line_nos:
        after = f" after the header on line {header_line}" if header_line else ""
        raise RecordingError(f"{path}: no data rows{after}; the file holds no samples")
    return np.array(values, dtype=float).reshape(-1, width), np.array(line_nos)


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
    canon = {u.lower(): u for u in UNITS} | {"µv": "uV", "μv": "uV", "cmh₂o": "cmH2O"}
    unit = canon.get(raw.lower())
    if unit is None:
        warnings.append(f"unit {raw!r} not known (use one of {', '.join(UNITS)}); values shown without a unit")
        return ""
    return unit


def _time_column(names: list[str]) -> tuple[int | None, float]:
    for i, nm in enumerate(names):
        key = nm.lower()
        if key in ("time_s", "time", "t", "t_s", "time (s)"):
            return i, 1.0
        if key in ("time_ms", "t_ms", "time (ms)"):
            return i, 0.001
    return None, 1.0


def _annotations(path: Path, lines: list[str], start: int,
                 warnings: list[str]) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    skipped: list[int] = []
    for i in range(start, len(lines)):
        s = lines[i].strip()
        if not s:
            continue
        m = re.match(r"([-+]?\d+(?:\.\d*)?)\s+(.*)$", s)
        if m is None:
            skipped.append(i + 1)
            continue
        out.append((float(m.group(1)), m.group(2).strip()))
    if skipped:
        warnings.append(f"{len(skipped)} annotation line(s) without a leading time ignored "
                        f"(line {_list_lines(skipped)})")
    return sorted(out, key=lambda a: a[0])


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(float(raw)) if raw else None
    except ValueError:
        return None


def _list_lines(nos: list[int], most: int = 5) -> str:
    shown = ", ".join(str(n) for n in nos[:most])
    return shown + (f" and {len(nos) - most} more" if len(nos) > most else "")


# ---------------------------------------------------------- time-base checks

def _rate_from_times(path: Path, times: np.ndarray, line_nos: np.ndarray,
                     warnings: list[str]) -> float:
    """1 / median step, after checking that time increases and the rate holds."""
    if len(times) < 2:
        raise RecordingError(
            f"{path}: line {line_nos[0]}: only one data row; a rate needs at least two samples")
    dt = np.diff(times)
    bad = np.flatnonzero(dt <= 0)
    if bad.size:
        k = int(bad[0])
        raise RecordingError(
            f"{path}: line {line_nos[k + 1]}: time {times[k + 1]:g} s is not after "
            f"{times[k]:g} s on line {line_nos[k]}; times must increase (sort the rows or "
            f"remove the duplicate)")
    period = float(np.median(dt))
    _check_rate_change(path, dt, line_nos)
    gaps = np.flatnonzero(dt > GAP_PERIODS * period)
    if gaps.size:
        where = ", ".join(f"{times[k]:.3f}-{times[k + 1]:.3f} s (line {line_nos[k + 1]})"
                          for k in gaps[:5])
        more = f" and {gaps.size - 5} more" if gaps.size > 5 else ""
        lost = float(np.sum(dt[gaps] - period))
        warnings.append(f"{gaps.size} gap(s) in time longer than {GAP_PERIODS:g} sample periods "
                        f"({lost:.3g} s missing): {where}{more}; samples were lost there")
    regular = dt[dt <= GAP_PERIODS * period]
    jitter = float(np.std(regular)) / period if regular.size else 0.0
    if jitter > JITTER_MATERIAL:
        warnings.append(f"irregular sample times: the step varies by {100 * jitter:.0f} % "
                        f"(std) around {1000 * period:.4g} ms; timings are approximate")
    return 1.0 / period


def _check_rate_change(path: Path, dt: np.ndarray, line_nos: np.ndarray) -> None:
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
        f"{path}: line {line_nos[k + 1]}: the sampling rate changes inside the file, from "
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
        note = _saturation(rec, x)
        if note:
            rec.warnings.append(f"channel {name!r}: {note}")


def _u(rec: Recording) -> str:
    return f" {rec.unit}" if rec.unit else ""


def _runs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of identical consecutive values."""
    change = np.flatnonzero(np.diff(x) != 0) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [len(x)])))
    return starts, lengths


def _saturation(rec: Recording, x: np.ndarray) -> str:
    starts, lengths = _runs(x)
    values = x[starts]
    parts: list[str] = []
    first_t: list[float] = []
    if rec.unit == "counts" or rec.resolution_bits:
        top = float(2 ** (rec.resolution_bits or 12) - 1)
        rail = (values == 0) | (values == top)
        if rail.any():
            parts.append(f"{int(rail.sum())} run(s) ({int(lengths[rail].sum())} samples) at the "
                         f"ADC limits 0/{top:g}")
            first_t.append(float(rec.times_s[starts[rail][0]]))
    need = max(FLAT_TOP_MIN_SAMPLES, math.ceil(FLAT_TOP_S * rec.rate_hz))
    flat = (values == x.max()) & (lengths >= need)
    if flat.any():
        longest = int(lengths[flat].max()) / rec.rate_hz
        parts.append(f"{int(flat.sum())} flat top(s) at the maximum {x.max():g}{_u(rec)} "
                     f"(longest {longest:.3g} s)")
        first_t.append(float(rec.times_s[starts[flat][0]]))
    if not parts:
        return ""
    return (" and ".join(parts) + f", first at {min(first_t):.3f} s: the signal is clipped "
            f"(saturated); peaks there read low; lower the gain or check the sensor")
