"""Values from a trainer, checked where they enter the host: times, sizes,
counts, ids and the fixed-size fields of a reply. Nothing from a device is
trusted because its CRC was good: firmware can be wrong, and one absurd value
stored once (a start time in the year 584556019) used to break every later
read. Each check either returns a value that is safe to use or None, or
raises the caller's exception class with one line that says what to do."""
from __future__ import annotations

import json
import math
import re
import struct
from typing import Any, Sequence

from knip import record as D      # the detector's record layout

EPOCH_MIN_S = 1577836800          # 2020-01-01 UTC: the trainer refuses SET_CLOCK before it
EPOCH_MAX_S = 4102444800          # 2100-01-01 UTC: ... and from this on
U32 = 0xFFFFFFFF
RATE_MAX_HZ = 100000              # far above any sensor the firmware drives
_ID = re.compile(r"[0-9A-Za-z._:-]{1,64}")     # device and store ids: no '/', no spaces

MISMATCH = ("the firmware and this knip disagree (update both: 'knip deploy' and "
            "pip install -U knip), or the link garbled it; run the command again")


def whole(x: Any, lo: int, hi: int) -> int | None:
    """x if it is an integer (not a bool) from lo to hi, else None."""
    if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
        return None
    return x


def number(x: Any, lo: float, hi: float) -> float | None:
    """x as a float if it is a finite number from lo to hi, else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    v = float(x)
    return v if math.isfinite(v) and lo <= v <= hi else None


def epoch_ok(seconds: Any) -> bool:
    """A Unix time in seconds from 2020 to 2100 (what the trainer's clock may say)."""
    return number(seconds, EPOCH_MIN_S, EPOCH_MAX_S - 1) is not None


def epoch_s(unix_ms: Any) -> int | None:
    """Whole Unix seconds of a device's Unix milliseconds; None unless it is a
    time from 2020 to 2100."""
    if whole(unix_ms, EPOCH_MIN_S * 1000, EPOCH_MAX_S * 1000 - 1) is None:
        return None
    return int(unix_ms // 1000)


NOT_A_DATE = "is not a time from 2020 to 2100"


def bad_time(what: str, value: Any) -> str:
    """The warning for a time that is not a date: shown, never fatal."""
    return f"{what} {value!r} {NOT_A_DATE} (the trainer's clock was wrong): the date is unknown"


def date_unknown(problems: Sequence[str]) -> bool:
    """One of the problems is a start time that was no date (bad_time)."""
    return any(NOT_A_DATE in p for p in problems)


def ident(x: Any) -> str | None:
    """A device or store id as the database keys it: 1-64 letters, digits, '.', '_', ':' or '-'."""
    return x if isinstance(x, str) and _ID.fullmatch(x) else None


def unpack(fmt: str, data: bytes, offset: int, what: str, error: type[Exception]) -> tuple:
    """struct.unpack_from that answers a short payload with `error`, not struct.error."""
    need = offset + struct.calcsize(fmt)
    if len(data) < need:
        raise error(f"{what} is {len(data)} bytes, at least {need} expected: {MISMATCH}")
    return struct.unpack_from(fmt, data, offset)


def json_of(data: bytes, kind: type, what: str, error: type[Exception]) -> Any:
    """The JSON value of `data`, which must be a `kind` (dict or list)."""
    try:
        value = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(f"{what} is not JSON ({exc}): {MISMATCH}") from None
    if not isinstance(value, kind):
        raise error(f"{what} is a JSON {type(value).__name__}, not a {kind.__name__}: {MISMATCH}")
    return value


def detector_record(rec: Sequence[int]) -> str | None:
    """What makes a detector record (an EVENT payload's fields) unusable, or None."""
    if len(rec) < D.R_MARKS:
        return f"{len(rec)} fields, at least {D.R_MARKS} expected"
    if not 0 <= rec[D.R_KIND] < len(D.KIND_NAMES):
        return f"kind {rec[D.R_KIND]} is not one of the {len(D.KIND_NAMES)} known"
    if not 0 <= rec[D.R_TECH] < len(D.TECH_NAMES):
        return f"technique {rec[D.R_TECH]} is not one of the {len(D.TECH_NAMES)} known"
    return None
