"""Pull finished sessions from a trainer into the local database.

Idempotent and resumable: bytes already fetched are kept in the database's
`partial` table as they arrive, so a dropped link resumes where it stopped;
a session is acknowledged (and so deleted on the device) only after its
copy is verified (size, whole-file CRC32, every record's CRC) and stored."""
from __future__ import annotations

import binascii
import time
from dataclasses import dataclass, field
from typing import Callable

from knip import store as S

from .database import SessionDatabase
from .device import Device, DeviceError
from .progressbar import ProgressBar
from .sessionfile import SessionFileError, decode

SAVE_EVERY = 8192       # bytes between saves of a partial download


@dataclass
class SyncReport:
    device: str
    fetched: list[int] = field(default_factory=list)       # new sessions stored
    resumed: list[int] = field(default_factory=list)       # of those, continued from an earlier sync
    already: list[int] = field(default_factory=list)       # already in the database (acknowledged again)
    recording: list[int] = field(default_factory=list)     # still being recorded: left for next time
    bad: list[int] = field(default_factory=list)           # unreadable on the device: left there
    bytes: int = 0
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


def sync(dev: Device, db: SessionDatabase, *, show_progress: bool | None = None,
         on_chunk: Callable[[int, int], None] | None = None, set_clock: bool = True) -> SyncReport:
    info = dev.info or dev.hello()
    device_id = str(info["device"])
    dev.cancel()                 # a fetch cut off by a dropped link may still run
    if set_clock:
        dev.set_clock()
    report = SyncReport(device_id)
    t0 = time.monotonic()
    for s in dev.sessions():
        sid, size = int(s["id"]), int(s["size"])
        if s.get("open"):
            report.recording.append(sid)
            continue
        if s.get("bad"):
            report.bad.append(sid)
            continue
        if db.has(device_id, sid):
            # stored before, but the acknowledgement never arrived: confirm and ack
            _end, dsize, dcrc = dev.fetch(sid, size, lambda o, b: None)
            row = next(r for r in db.list(device_id) if r.session_id == sid)
            if row.size == dsize and row.crc32 == dcrc:
                dev.ack(sid, dsize, dcrc)
                report.already.append(sid)
                continue
            raise DeviceError(f"session {sid} on the device differs from the copy in the database; "
                              "nothing was deleted: report this as a bug")
        part = db.partial_get(device_id, sid)
        data = bytearray(part[0]) if part and part[1] == size else bytearray()
        if data:
            report.resumed.append(sid)
        bar = ProgressBar(size, f"session {sid}", enabled=show_progress)
        bar.update(len(data))
        saved = len(data)

        def got(off: int, chunk: bytes, data: bytearray = data, bar: ProgressBar = bar) -> None:
            nonlocal saved
            data.extend(chunk)
            report.bytes += len(chunk)
            bar.update(len(data))
            if len(data) - saved >= SAVE_EVERY:
                db.partial_put(device_id, sid, bytes(data), size, 0)
                saved = len(data)
            if on_chunk is not None:
                on_chunk(sid, len(data))

        try:
            end, dsize, crc = dev.fetch(sid, len(data), got)
        except DeviceError:
            if len(data) > saved:
                db.partial_put(device_id, sid, bytes(data), size, 0)
            bar.close()
            raise
        bar.close()
        raw = bytes(data)
        problem = _verify(raw, dsize, crc)
        if problem:
            db.partial_drop(device_id, sid)
            raise DeviceError(f"session {sid}: the copy failed verification ({problem}); it stays on the "
                              "device; run 'knip sync' again")
        try:
            session = decode(raw, device_id, sid)
        except SessionFileError as exc:
            raise DeviceError(f"session {sid} cannot be decoded ({exc}); it stays on the device") from exc
        db.add(session, raw, crc)
        db.partial_drop(device_id, sid)
        dev.ack(sid, dsize, crc)
        report.fetched.append(sid)
    report.seconds = time.monotonic() - t0
    return report


def _verify(raw: bytes, size: int, crc: int) -> str | None:
    if len(raw) != size:
        return f"{len(raw)} bytes, the device has {size}"
    if binascii.crc32(raw) & 0xFFFFFFFF != crc:
        return "whole-file CRC32 differs"
    valid, _n, _closed, err = S.scan(raw)
    if valid != size:
        return err or f"records end at byte {valid} of {size}"
    return None
