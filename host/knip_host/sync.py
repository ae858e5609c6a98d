"""Pull finished sessions from a trainer into the local database.

Idempotent and resumable: bytes already fetched are kept in the database's
`partial` table as they arrive, so a dropped link resumes where it stopped.
A session is acknowledged (and so deleted on the device) only after its copy
is stored: either verified (size, whole-file CRC32, every record's CRC), or,
when the same damage comes back on a second exact copy, salvaged (every
record whose CRC holds; the raw bytes kept verbatim; what was lost recorded
and reported). One session's trouble never stops the sync: it is reported
and the next session is fetched. The policy is docs/PROTOCOL.md section 7."""
from __future__ import annotations

import binascii
import time
from dataclasses import dataclass, field
from typing import Callable, Collection

from knip import protocol as P
from knip import store as S

from . import checks as C
from .database import SessionDatabase
from .device import Device, DeviceError, DeviceRefused, LinkLost
from .progressbar import ProgressBar
from .salvage import describe
from .sessionfile import SessionFileError, decode

SAVE_EVERY = 8192       # bytes between saves of a partial download
FETCH_TRIES = 3         # fetches of one session per sync before it is left for the next


@dataclass
class SyncReport:
    device: str
    store: str = ""                                        # the trainer's session store id
    fetched: list[int] = field(default_factory=list)       # new sessions stored (damaged ones too)
    resumed: list[int] = field(default_factory=list)       # of those, continued from an earlier sync
    already: list[int] = field(default_factory=list)       # already in the database (acknowledged again)
    recording: list[int] = field(default_factory=list)     # still being recorded: left for next time
    bad: list[int] = field(default_factory=list)           # unreadable on the device: left there
    damaged: dict[int, str] = field(default_factory=dict)  # of fetched: salvaged, what was lost
    failed: dict[int, str] = field(default_factory=dict)   # no copy stored: left on the device, why
    discarded: list[int] = field(default_factory=list)     # deleted from the device uncopied (--discard)
    kept: dict[int, str] = field(default_factory=dict)     # --discard given, not deleted: why
    bytes: int = 0
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Copy:
    raw: bytes
    crc: int
    damage: str | None          # what scan() found wrong with the records; None: intact


class _Sync:
    """One sync's state: the trainer, the database, the keys, the report."""

    def __init__(self, dev: Device, db: SessionDatabase, report: SyncReport, show_progress: bool | None,
                 on_chunk: Callable[[int, int], None] | None):
        self.dev, self.db, self.report = dev, db, report
        self.device, self.store = report.device, report.store
        self.show_progress, self.on_chunk = show_progress, on_chunk

    def session(self, sid: int, size: int, numbers: set[int]) -> None:
        """Fetch, store and acknowledge one closed session (DeviceError, SessionFileError: not stored)."""
        if sid in numbers:
            # a session with this number is stored: if it is this very file, the
            # earlier acknowledgement was lost, so acknowledge it again
            _end, dsize, dcrc = self.dev.fetch(sid, size, lambda o, b: None)
            if self.db.holds(self.device, sid, dsize, dcrc):
                self.ack(sid, dsize, dcrc)
                self.report.already.append(sid)
                return
        copy = self.copy(sid, size)
        session = decode(copy.raw, self.device, sid, store_id=self.store)
        self.db.add(session, copy.raw, copy.crc)
        self.ack(sid, len(copy.raw), copy.crc)
        self.report.fetched.append(sid)
        if session.damage:
            self.report.damaged[sid] = describe(session.damage, session.rate_hz)

    def copy(self, sid: int, size: int) -> _Copy:
        """An exact copy of the file on the flash (its size and CRC are DONE's),
        intact, or damaged the same way twice (or once, if no other fetch was
        exact): the damage is then on the flash and no fetch will mend it."""
        exact: _Copy | None = None
        why = ""
        for _ in range(FETCH_TRIES):
            try:
                raw, dsize, crc = self.download(sid, size)
            except (LinkLost, DeviceRefused):
                raise                               # no link, or the device's final word
            except DeviceError as exc:              # a hole in the stream: what came before it is kept
                why = str(exc)
                self.dev.cancel()
                continue
            self.db.partial_drop(self.device, sid, self.store)
            if len(raw) != dsize or binascii.crc32(raw) & 0xFFFFFFFF != crc:
                why = (f"{len(raw)} bytes, the device has {dsize}" if len(raw) != dsize else
                       "whole-file CRC32 differs from the device's")
                continue
            valid, _n, _closed, err = S.scan(raw)
            if valid == dsize:
                return _Copy(raw, crc, None)
            damage = err or f"records end at byte {valid} of {dsize}"
            if exact is not None and exact.crc == crc:
                return _Copy(raw, crc, damage)
            exact, why = _Copy(raw, crc, damage), damage
        if exact is not None:
            return exact
        raise DeviceError(f"session {sid}: no exact copy in {FETCH_TRIES} fetches (last: {why}); it stays "
                          "on the trainer; run 'knip sync' again")

    def download(self, sid: int, size: int) -> tuple[bytes, int, int]:
        """The file's bytes (continuing a kept partial download), DONE's size and CRC."""
        dev, db, report = self.dev, self.db, self.report
        part = db.partial_get(self.device, sid, self.store)
        data = bytearray(part[0]) if part and part[1] == size else bytearray()
        if data and sid not in report.resumed:
            report.resumed.append(sid)
        bar = ProgressBar(size, f"session {sid}", enabled=self.show_progress)
        bar.update(len(data))
        saved = len(data)

        def got(off: int, chunk: bytes) -> None:
            nonlocal saved
            data.extend(chunk)
            report.bytes += len(chunk)
            bar.update(len(data))
            if len(data) - saved >= SAVE_EVERY and len(data) <= size:
                db.partial_put(self.device, sid, bytes(data), size, 0, self.store)
                saved = len(data)
            if self.on_chunk is not None:
                self.on_chunk(sid, len(data))

        try:
            _end, dsize, crc = dev.fetch(sid, len(data), got)
        except DeviceError:
            if saved < len(data) <= size:
                db.partial_put(self.device, sid, bytes(data), size, 0, self.store)
            raise
        finally:
            bar.close()
        return bytes(data), dsize, crc

    def ack(self, sid: int, size: int, crc: int) -> None:
        try:
            self.dev.ack(sid, size, crc)
        except DeviceRefused as exc:
            if exc.code != P.E_NOT_FOUND:   # E_NOT_FOUND: a retry whose first OK was lost
                raise

    def discard(self, sid: int, size: int) -> None:
        """Delete a session from the trainer without a copy: only at her word (--discard)."""
        _end, dsize, dcrc = self.dev.fetch(sid, size, lambda o, b: None)
        self.ack(sid, dsize, dcrc)
        self.report.discarded.append(sid)


def sync(dev: Device, db: SessionDatabase, *, show_progress: bool | None = None,
         on_chunk: Callable[[int, int], None] | None = None, set_clock: bool = True,
         discard: Collection[int] = ()) -> SyncReport:
    """Fetch every closed session; `discard`: session numbers to delete from the
    trainer when they cannot be copied (unreadable, or no exact copy)."""
    info = dev.info or dev.hello()
    device_id = C.ident(info.get("device"))
    if device_id is None:
        raise DeviceError(f"the trainer names itself {str(info.get('device'))[:40]!r}, which cannot key "
                          "its sessions: update its firmware ('knip deploy')")
    report = SyncReport(device_id, C.ident(info.get("store")) or "")
    dev.cancel()                 # a fetch cut off by a dropped link may still run
    if set_clock:
        dev.set_clock()
    run = _Sync(dev, db, report, show_progress, on_chunk)
    numbers = db.numbers(device_id)
    t0 = time.monotonic()
    listed = set()
    for s in dev.sessions():
        sid, size = s["id"], s["size"]
        listed.add(sid)
        if s["open"]:
            report.recording.append(sid)
            continue
        if not s["bad"]:
            try:
                run.session(sid, size, numbers)
                continue
            except LinkLost:
                raise
            except (DeviceError, SessionFileError) as exc:
                report.failed[sid] = str(exc)
        if sid in discard:
            run.discard(sid, size)
            report.failed.pop(sid, None)
        elif s["bad"]:
            report.bad.append(sid)
    for sid in sorted(set(discard) - set(report.discarded)):
        report.kept[sid] = (f"there is no session {sid} on the trainer" if sid not in listed else
                            f"session {sid} is still recording: left there" if sid in report.recording else
                            f"session {sid} copied, so it was stored and deleted from the trainer as usual")
    report.seconds = time.monotonic() - t0
    return report
