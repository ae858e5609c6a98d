"""The data rows of a recording: numbers checked cell by cell, kept compactly.

Each column grows as an `array('d')` (8 bytes a value, no Python object per
number) and comes out as a float64 numpy array over the same memory; the
file line of each row is kept as the few places where rows stop following
each other line by line (`LineIndex`). A bad cell or row raises
`RecordingError` with the file, the line and what to do; so does a number
beyond any sensor's range (limits.VALUE_LIMIT) outside the time column.
"""
from __future__ import annotations

import math
import re
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .limits import VALUE_LIMIT
from .textfile import RecordingError

NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
NONFINITE = re.compile(r"[-+]?(nan|inf|infinity)$", re.IGNORECASE)
# a dropout as spreadsheets, R and pandas write one: an empty cell, NA, null
MISSING = re.compile(r"(|na|n/a|null|none|\.)$", re.IGNORECASE)   # ('.': SAS and Stata)
PARTIAL = re.compile(r"[-+]?((\d+\.?\d*|\.\d*)([eE][-+]?\d*)?|n|nu|nul|no|non|n/|i|in|inf|infi|infin|infini|infinit)?$",
                     re.IGNORECASE)     # a number (or nan, inf, null, none) cut off as it was written
TIME_NAMES = {"time_s": 1.0, "time": 1.0, "t": 1.0, "t_s": 1.0, "time (s)": 1.0,
              "time_ms": 0.001, "t_ms": 0.001, "time (ms)": 0.001}


class LineIndex:
    """The file line of row k, stored as (first row, its line) at each break
    in the run of consecutive lines: a few entries for a whole file."""

    def __init__(self) -> None:
        self._rows = array("q")
        self._lines = array("q")
        self._n = 0
        self._last = -1

    def append(self, line_no: int) -> None:
        if line_no != self._last + 1:
            self._rows.append(self._n)
            self._lines.append(line_no)
        self._last = line_no
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, k: int) -> int:
        k = int(k)
        if k < 0:
            k += self._n
        if not 0 <= k < self._n:
            raise IndexError(k)
        i = bisect_right(self._rows, k) - 1
        return self._lines[i] + (k - self._rows[i])


@dataclass
class Table:
    columns: list[np.ndarray]          # one float64 array per column, all of one length
    lines: LineIndex                   # the file line of each row
    notes: list[str] = field(default_factory=list)   # warnings: rows left out

    def __len__(self) -> int:
        return len(self.lines)


def time_column(names: list[str]) -> tuple[int | None, float]:
    """The index of the time column and its scale to seconds (None: no time column)."""
    for i, nm in enumerate(names):
        scale = TIME_NAMES.get(nm.lower())
        if scale is not None:
            return i, scale
    return None, 1.0


def is_number(tok: str) -> bool:
    return bool(NUMBER.match(tok.strip()))


def delimiter(line: str) -> str | None:
    for d in ("\t", ";", ","):
        if d in line:
            return d
    return None


def split(line: str, delim: str | None) -> list[str]:
    return [t.strip() for t in line.split(delim)] if delim else line.split()


def parse_rows(path: Path, lines: Iterator[tuple[int, str]], delim: str | None, names: list[str],
               header_line: int | None, stop: Callable[[str], bool] | None = None) -> Table:
    """Numbers from the numbered `lines`, skipping blank and '#' lines, up to
    the end or the first line `stop` accepts (consumed, not parsed)."""
    width = len(names)
    where = f"as in the header on line {header_line}" if header_line else "as on the first data row"
    is_time = [time_column([nm])[0] is not None for nm in names]
    cols = [array("d") for _ in names]
    big = VALUE_LIMIT
    index = LineIndex()
    short: tuple[int, int] | None = None    # a row with too few values: fine only as the last
    cut: str | None = None                  # ... or cut inside its last cell (what is left of it)
    for n, line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if stop is not None and stop(s):
            break
        if short is not None:
            _short_error(path, short, cut, names, width, where, is_time)
        # (a tab-separated row may begin or end with an empty cell: only spaces go)
        toks = split(line.strip(" \r\n") if delim == "\t" else s, delim)
        if delim and toks and toks[-1] == "" and len(toks) == width + 1:
            toks.pop()                      # a trailing delimiter
        if len(toks) < width and width > 1:
            short = (n, len(toks))          # a file cut off while it was written, if nothing follows
            cut = None
            continue
        last = toks[-1] if toks else ""
        if len(toks) == width and last and not (NUMBER.match(last) or MISSING.match(last) or
                                                NONFINITE.match(last)) and PARTIAL.match(last):
            short = (n, width - 1)          # ... inside its last number ('-', '1.5e', 'na')
            cut = last
            continue
        if len(toks) != width:
            _row_error(path, n, len(toks), width, where)
        for j, tok in enumerate(toks):
            if len(tok) > 1 and tok[0] == tok[-1] and tok[0] in "\"'":
                tok = tok[1:-1].strip()     # a quoted number
            if NUMBER.match(tok):
                v = float(tok)
                if not -big <= v <= big and not is_time[j]:
                    v = _out_of_range(path, n, names[j], tok, v)
                cols[j].append(v)
            elif (NONFINITE.match(tok) or MISSING.match(tok) and (tok or delim)) and not is_time[j]:
                cols[j].append(float("nan"))    # a dropout (nan, an empty cell, NA): analysed as a gap
            else:
                _bad_cell(path, n, names[j], tok, width, is_time[j])
        index.append(n)
    if not len(index):
        if short is not None:
            _short_error(path, short, cut, names, width, where, is_time)
        after = f" after the header on line {header_line}" if header_line else ""
        raise RecordingError(f"{path}: no data rows{after}; the file holds no samples")
    notes = [] if short is None else [
        f"line {short[0]}, the last data row, "
        + (f"ends in {cut!r}, a value cut short" if cut is not None else f"holds {short[1]} of {width} values")
        + " (a file cut off while it was written?): left out"]
    return Table([np.frombuffer(c, dtype=np.float64) for c in cols], index, notes)


def _short_error(path: Path, short: tuple[int, int], cut: str | None, names: list[str], width: int,
                 where: str, is_time: list[bool]) -> None:
    """A short row that is not the last data row (or is the only one): the
    error it is, a cell that is no number or a row of too few values."""
    if cut is not None:
        _bad_cell(path, short[0], names[-1], cut, width, is_time[-1])
    _row_error(path, *short, width, where)


def _row_error(path: Path, n: int, got: int, width: int, where: str) -> None:
    raise RecordingError(f"{path}: line {n}: {got} value{'s' if got != 1 else ''}, expected "
                         f"{width} ({where}); fix or delete the row")


def _out_of_range(path: Path, n: int, name: str, tok: str, v: float) -> float:
    """A number too large for a float (1e999) is a dropout, as 'inf' is; a
    finite one beyond any sensor's range is an error."""
    if math.isinf(v):
        return math.nan
    shown = tok if len(tok) <= 30 else tok[:27] + "..."
    raise RecordingError(f"{path}: line {n}: column {name!r} is {shown}, beyond any sensor's range "
                         f"(+-{VALUE_LIMIT:g}); fix or delete the row, or write nan for a dropout")


def _bad_cell(path: Path, n: int, name: str, tok: str, width: int, is_time: bool) -> None:
    if is_time and (NONFINITE.match(tok) or MISSING.match(tok)):
        raise RecordingError(
            f"{path}: line {n}: column {name!r} is {tok!r}, not a finite time; "
            f"delete the row or fill the time in")
    shown = tok if len(tok) <= 30 else tok[:27] + "..."
    fix = ("write decimals with a point ('.'), not a comma"
           if re.fullmatch(r"[-+]?\d+,\d+", tok)
           else f"every data row must hold {width} number{'s' if width != 1 else ''} "
                f"(nan, NA or an empty cell for a dropout)")
    raise RecordingError(f"{path}: line {n}: column {name!r} is {shown!r}, not a number; {fix}")
