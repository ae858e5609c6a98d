"""A person's reference to a stored session, as `knip show`, `plot` and
`export` take it, turned into the database's (label, number): label is the
device id, or DEVICE~2, DEVICE~3 for the sessions of its later session stores
(after a reflash restarted the numbers; see knip_host.dbschema).

DEVICE/N   that device's session N (a later store's, when only it has one)
DEVICE~2/N session N of that device's second store
N          session N of whichever device has one (error if several do)
last, latest, -1   the newest; -2 the one before, and so on"""
from __future__ import annotations

import re
from typing import Protocol


class Row(Protocol):
    device_id: str
    session_id: int
    label: str

    @property
    def key(self) -> str: ...


def resolve(rows: list[Row], ref: str, where: str, hint: str, error: type[Exception]) -> tuple[str, int]:
    """(label, session number) of `ref` among `rows` (oldest first); `where`
    names the database and `hint` says how to list it, in messages."""
    text = str(ref).strip()
    low = text.lower()
    if not text:
        raise error(f"no session given; {hint}")
    if not rows:
        raise error(f"no sessions are stored yet in {where}: connect your trainer "
                    f"and run 'knip sync' (or try 'knip sync --port sim')")
    if low in ("last", "latest", "newest"):
        return _ref(rows[-1])
    if re.fullmatch(r"-\d+", text):
        back = int(text[1:])
        if back == 0:
            raise error(f"{text!r}: count back from -1 (the newest session)")
        if back > len(rows):
            raise error(f"{text!r}: only {len(rows)} session{'s are' if len(rows) != 1 else ' is'} "
                        f"stored; 'knip sessions' lists them")
        return _ref(rows[-back])
    if re.fullmatch(r"\d+", text):
        n = int(text)
        return _one(error, [r for r in rows if r.session_id == n], f"session {n}", hint)
    if "/" in text:
        device, _, num = text.rpartition("/")
        if not re.fullmatch(r"\d+", num.strip()) or not device.strip():
            raise error(f"{text!r} is not a session: write DEVICE/NUMBER, e.g. {rows[-1].key}")
        return _of_device(rows, device.strip(), int(num), where, error)
    raise error(f"{text!r} is not a session: use DEVICE/N, N, 'last' or -1, -2, ... ({hint})")


def _ref(row: Row) -> tuple[str, int]:
    return row.label or row.device_id, row.session_id


def _one(error: type[Exception], hits: list[Row], what: str, hint: str) -> tuple[str, int]:
    if len(hits) == 1:
        return _ref(hits[0])
    if hits:
        keys = ", ".join(r.key for r in hits)
        devices = len({r.device_id for r in hits})
        where = (f"on {devices} devices ({keys})" if devices == len(hits) else
                 f"{len(hits)} times ({keys}; DEVICE~2 is a device's second session store, after "
                 f"its storage was erased)")
        raise error(f"{what} exists {where}; say which, e.g. {hits[-1].key}")
    raise error(f"no {what}; {hint}")


def _of_device(rows: list[Row], device: str, n: int, where: str, error: type[Exception]) -> tuple[str, int]:
    exact = [r for r in rows if (r.label or r.device_id) == device]
    if any(r.session_id == n for r in exact):
        return device, n
    hits = [r for r in rows if r.device_id == device and r.session_id == n]
    if hits:                 # DEVICE/N of a session that only a later store of DEVICE has
        return _one(error, hits, f"session {device}/{n}", "")
    mine = exact or [r for r in rows if r.device_id == device]
    if not mine:
        labels = sorted({r.label or r.device_id for r in rows})
        raise error(f"no device {device!r} in {where}; stored devices: {', '.join(labels)}")
    have = sorted({r.session_id for r in mine})
    raise error(f"no session {device}/{n}; {device} has session{'s' if len(have) != 1 else ''} "
                f"{ranges(have)} ('knip sessions' lists them)")


def ranges(ns: list[int]) -> str:
    """[1, 2, 3, 5, 8, 9] -> '1-3, 5, 8-9' (at most 8 pieces, then '...')."""
    parts: list[str] = []
    i = 0
    while i < len(ns):
        j = i
        while j + 1 < len(ns) and ns[j + 1] == ns[j] + 1:
            j += 1
        parts.append(str(ns[i]) if i == j else f"{ns[i]}-{ns[j]}")
        i = j + 1
    if len(parts) > 8:
        parts = parts[:4] + ["..."] + parts[-3:]
    return ", ".join(parts)
