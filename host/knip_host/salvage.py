"""Every good record of a session file, also past damage.

`knip.store.scan` and `iter_records` stop at the first record whose CRC
fails: right for the device, which must never trust what follows a torn
write, but one flipped byte on the flash would then hide the rest of the
session. Here a damaged stretch is stepped over: first by the damaged
record's own length (a flipped payload byte leaves it right), else byte by
byte to the next position where a record of a known type with a good CRC
starts (a false match needs a 32-bit CRC to agree by chance). What could not
be read is kept as (offset, length) ranges, so the reader can say what was
lost."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from knip import store as S

_OVH = 7                                      # rtype u8, length u16, crc32 u32
KNOWN_TYPES = frozenset((S.REC_HEADER, S.REC_SAMPLES, S.REC_EVENT, S.REC_CUE, S.REC_GAP, S.REC_END,
                         S.REC_PAIN, S.REC_RECOVERED, S.REC_VERDICT))
RECORD_NAMES = {S.REC_HEADER: "header", S.REC_SAMPLES: "samples", S.REC_EVENT: "event",
                S.REC_CUE: "cue", S.REC_GAP: "gap", S.REC_END: "end", S.REC_PAIN: "pain",
                S.REC_RECOVERED: "recovered", S.REC_VERDICT: "verdict"}

Record = tuple[int, memoryview, int]          # (rtype, payload, offset), as iter_records yields


@dataclass
class Damage:
    """What a session file lost: unreadable byte ranges, records that passed
    their CRC but did not decode, samples missing from the sample index, and
    whether the closing record is gone. Empty for an intact file."""
    ranges: list[tuple[int, int]] = field(default_factory=list)     # (offset, length) not readable
    undecodable: list[str] = field(default_factory=list)            # "cue record at byte N: why"
    samples_lost: int = 0
    end_lost: bool = False

    def __bool__(self) -> bool:
        return bool(self.ranges or self.undecodable or self.samples_lost or self.end_lost)

    @property
    def bytes_lost(self) -> int:
        return sum(n for _o, n in self.ranges)

    def to_json(self) -> dict[str, Any]:
        return {"ranges": [list(r) for r in self.ranges], "bytes_lost": self.bytes_lost,
                "undecodable": list(self.undecodable), "samples_lost": self.samples_lost,
                "end_lost": self.end_lost}


def describe(d: dict[str, Any], rate_hz: float | None = None) -> str:
    """One line for her, from Damage.to_json() (as stored in the database)."""
    parts = []
    ranges = d.get("ranges") or []
    if ranges:
        where = ", ".join(f"{n} at byte {o}" for o, n in ranges[:3]) + (", ..." if len(ranges) > 3 else "")
        parts.append(f"{d.get('bytes_lost', 0)} bytes unreadable ({where})")
    if d.get("undecodable"):
        parts.append(f"{len(d['undecodable'])} record{'s' if len(d['undecodable']) != 1 else ''} "
                     f"did not decode ({d['undecodable'][0]}{', ...' if len(d['undecodable']) > 1 else ''})")
    lost = int(d.get("samples_lost") or 0)
    if lost:
        secs = f" ({lost / rate_hz:.1f} s)" if rate_hz else ""
        parts.append(f"{lost} samples lost{secs}")
    if d.get("end_lost"):
        parts.append("the closing summary is lost")
    return "; ".join(parts) or "no damage"


def good_at(mv: memoryview, pos: int) -> bool:
    """A record of a known type with a good CRC starts at `pos`."""
    if pos + _OVH > len(mv) or mv[pos] not in KNOWN_TYPES:
        return False
    return next(S.iter_records(mv, pos), None) is not None


def _next_good(mv: memoryview, pos: int) -> int:
    """Where reading can go on after the bad record at `pos` (len(mv) if nowhere)."""
    end = len(mv)
    if pos + 3 <= end:
        skip = pos + _OVH + (mv[pos + 1] | (mv[pos + 2] << 8))
        if skip < end and good_at(mv, skip):
            return skip
    for j in range(pos + 1, end - _OVH + 1):
        if good_at(mv, j):
            return j
    return end


def records(buf: bytes | bytearray | memoryview) -> tuple[list[Record], list[tuple[int, int]]]:
    """(every good record in file order, the (offset, length) ranges between
    them that are not good records). An intact file has no ranges and the same
    records as knip.store.iter_records."""
    mv = memoryview(buf)
    end = len(mv)
    out: list[Record] = []
    lost: list[tuple[int, int]] = []
    pos = 0
    while pos < end:
        for rtype, payload, off in S.iter_records(mv, pos):
            out.append((rtype, payload, off))
            pos = off + _OVH + len(payload)
        if pos >= end:
            break
        nxt = _next_good(mv, pos)
        lost.append((pos, nxt - pos))
        pos = nxt
    return out, lost
