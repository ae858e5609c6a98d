"""Decode a device session file (docs/STORE.md, record payloads in
docs/PROTOCOL.md) into a Session, with the firmware's own codecs.

Every value is checked as it comes out of the file (knip_host.checks): a
header that cannot describe the samples (rate, channels) is a
SessionFileError; a start time that is not a date leaves the date unknown
and says so in Session.problems. Damaged files are read as far as they go
(knip_host.salvage): every record whose CRC holds is used, and what could
not be read is in Session.damage."""
from __future__ import annotations

import struct
from typing import Any

import numpy as np

from knip import coach as CO
from knip import record as D      # the detector's record layout
from knip import protocol as P
from knip import store as S
from knip.samples import unpack_block
from knip.programs import CUE_NAMES, K_MVC
from knip.scores import session_scores

from . import checks as C
from . import salvage
from .analysis import EMG_ENVELOPE_FRACTION, record_to_event
from .coaching import verdict_dict
from .session import Session

_TIME_FIELDS = (D.R_ONSET, D.R_DETECTED, D.R_PEAK_T, D.R_OFFSET, D.R_ENDED, D.R_VERDICT_T)
_FINAL = D.EV_END | D.EV_RELAXED | D.EV_NOT_RELAXED
_RECORD_ERRORS = (ValueError, IndexError, struct.error, UnicodeDecodeError)


class SessionFileError(ValueError):
    """The bytes are not a readable session file; the message says why."""


def _header(payload: bytes) -> dict[str, Any]:
    """The header JSON with the values the decoder needs checked (SessionFileError
    when the samples could not be read with them)."""
    if payload[:4] != S.MAGIC:
        raise SessionFileError("not a Knip session file (bad magic)")
    hdr = C.json_of(payload[5:], dict, "the session header", SessionFileError)
    if C.number(hdr.get("rate_hz"), 1e-3, C.RATE_MAX_HZ) is None:
        raise SessionFileError(f"the session header's rate_hz {hdr.get('rate_hz')!r} is not a sample rate")
    if C.whole(hdr.get("channels", 1), 1, 2) is None:
        raise SessionFileError(f"the session header's channels {hdr.get('channels')!r} is not 1 or 2")
    if C.number(hdr.get("counts_per_unit", 20), 1e-6, 1e9) is None:
        raise SessionFileError(f"the session header's counts_per_unit {hdr.get('counts_per_unit')!r} "
                               "is not a scale")
    return hdr


class _Reader:
    """The records after the header, one at a time, into the Session's parts."""

    def __init__(self, hdr: dict[str, Any], damage: salvage.Damage):
        self.t0 = C.whole(hdr.get("t0_ms", 0), 0, 2 ** 63) or 0
        self.rate = float(hdr["rate_hz"])
        self.channels = int(hdr.get("channels", 1))
        self.damage = damage
        self.ts: list[np.ndarray] = []
        self.xs: list[list[int]] = []
        self.ab: list[list[int]] = []
        self.by_seq: dict[int, list[int]] = {}
        self.order: list[int] = []
        self.cues: list[dict[str, Any]] = []
        self.gaps: list[tuple[int, int]] = []
        self.summary: dict[str, Any] = {}
        self.recovered = False
        self.verdicts: list[tuple[int, ...]] = []
        self.pain: dict[str, int | None] = {"before": None, "after": None}
        self.next_index = 0         # the sample index the next REC_SAMPLES should start at
        self.index_jumps = 0        # samples skipped by the indexes (lost records)

    def take(self, rtype: int, p: bytes) -> None:
        if rtype == S.REC_SAMPLES:
            self._samples(p)
        elif rtype == S.REC_EVENT:
            flags, _t, rec = P.unpack_event(p, 0, len(p))
            problem = C.detector_record(rec)
            if problem:
                raise ValueError(f"detector record: {problem}")
            if flags & (_FINAL | D.EV_ABD_END):
                seq = rec[D.R_SEQ]
                if seq not in self.by_seq:
                    self.order.append(seq)
                self.by_seq[seq] = rec
        elif rtype == S.REC_CUE:
            t, cue, phase, rep, reps, dur, tgt = P.unpack_cue(p, 0, len(p))
            self.cues.append({"t_ms": t - self.t0, "cue": CUE_NAMES[cue] if cue < len(CUE_NAMES) else str(cue),
                              "phase": phase, "rep": rep, "reps": reps, "dur_ms": dur, "target_pct": tgt})
        elif rtype == S.REC_GAP:
            index, missing = C.unpack("<II", p, 0, "a gap record", ValueError)
            self.gaps.append((index, missing))
            self.next_index = index + missing
        elif rtype == S.REC_END:
            self.summary = C.json_of(p, dict, "the session summary", ValueError)
        elif rtype == S.REC_RECOVERED:
            self.recovered = True
        elif rtype == S.REC_VERDICT:
            self.verdicts.append(tuple(P.unpack_verdict(p, 0, len(p))))
        elif rtype == S.REC_PAIN and len(p) >= 3:
            score = p[1]
            self.pain["before" if p[0] == 0 else "after"] = None if score > 10 else int(score)

    def _samples(self, p: bytes) -> None:
        first, t_first, chans = unpack_block(p)
        if len(chans) != self.channels:
            raise ValueError(f"{len(chans)} channels in a {self.channels}-channel session")
        if first > self.next_index:
            self.index_jumps += first - self.next_index
        n = len(chans[0])
        self.next_index = first + n
        self.ts.append(t_first - self.t0 + np.round(np.arange(n) * 1000.0 / self.rate).astype(np.int64))
        self.xs.append(chans[0])
        if len(chans) > 1:
            self.ab.append(chans[1])

    def samples_lost(self) -> int:
        """Samples the damage took: index jumps, or what the summary counted and the file lacks."""
        have = sum(len(x) for x in self.xs)
        told = C.whole(self.summary.get("samples"), 0, 2 ** 40)
        return max(self.index_jumps, (told - have) if told is not None else 0)


def decode(raw: bytes, device_id: str = "", session_id: int | None = None, store_id: str = "") -> Session:
    """`store_id`: the store the device named in INFO, for a file whose header names none."""
    buf = memoryview(raw)
    recs, lost = salvage.records(buf)
    if not recs or recs[0][0] != S.REC_HEADER or recs[0][2] != 0:
        err = S.scan(buf)[3]
        raise SessionFileError("not a Knip session file (no header record)" + (f": {err}" if err else ""))
    hdr = _header(bytes(recs[0][1]))
    damage = salvage.Damage(ranges=lost)
    rd = _Reader(hdr, damage)
    for rtype, payload, off in recs[1:]:
        try:
            rd.take(rtype, bytes(payload))
        except _RECORD_ERRORS as exc:
            name = salvage.RECORD_NAMES.get(rtype, f"type 0x{rtype:02x}")
            damage.undecodable.append(f"{name} record at byte {off}: {exc}")
    closed = recs[-1][0] in (S.REC_END, S.REC_RECOVERED)
    if damage:
        damage.samples_lost = rd.samples_lost()
        damage.end_lost = not closed
    problems: list[str] = []
    epoch = hdr.get("epoch_ms")
    start = C.epoch_s(epoch)
    if epoch is not None and start is None:
        problems.append(C.bad_time("the session's start time (Unix ms)", epoch))
    return _session(hdr, rd, damage, problems, device_id=device_id or str(hdr.get("device", "")),
                    session_id=_session_id(hdr) if session_id is None else session_id,
                    store_id=C.ident(hdr.get("store")) or store_id, start=start, closed=closed,
                    size=recs[-1][2] + 7 + len(recs[-1][1]))


def _session(hdr: dict[str, Any], rd: _Reader, damage: salvage.Damage, problems: list[str], *,
             device_id: str, session_id: int, store_id: str, start: int | None, closed: bool,
             size: int) -> Session:
    signal = hdr.get("signal") if hdr.get("signal") in ("pressure", "emg") else "pressure"
    cpu = float(hdr.get("counts_per_unit", 20))
    level_div = cpu * (EMG_ENVELOPE_FRACTION if signal == "emg" else 1)
    two = rd.channels > 1
    recs = []
    for seq in rd.order:
        r = list(rd.by_seq[seq])
        for i in _TIME_FIELDS:
            if i < len(r):
                r[i] -= rd.t0
        recs.append(tuple(r))
    events = [record_to_event(r, level_div, two) for r in recs]
    events.sort(key=lambda e: e["onset_s"])
    unit = str(hdr.get("unit", ""))
    phases = hdr.get("phases") if isinstance(hdr.get("phases"), list) else []
    calibrating = any(isinstance(ph, list) and ph and ph[0] == K_MVC for ph in phases)
    mvc = 0 if calibrating else (C.whole(hdr.get("mvc") or 0, 0, 10 ** 9) or 0)
    scores: dict[str, Any] = {}
    if rd.verdicts:
        full = [v + (CO.NA,) * (len(CO.V_NAMES) - len(v)) for v in rd.verdicts]   # missing = unknown
        try:
            scores = session_scores(full, level_div, signal, unit, mvc)
        except (ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError) as exc:
            problems.append(f"the session scores could not be computed ({exc})")
    return Session(
        device_id=device_id, session_id=session_id, store_id=store_id, start_epoch=start,
        signal=signal, unit=unit, counts_per_unit=cpu, rate_hz=rd.rate,
        program=str(hdr.get("program", "")), firmware=str(hdr.get("firmware", "")),
        t_ms=np.concatenate(rd.ts) if rd.ts else np.zeros(0, dtype=np.int64),
        values=np.asarray([v for blk in rd.xs for v in blk], dtype=np.int32),
        abd=np.asarray([v for blk in rd.ab for v in blk], dtype=np.int32) if two else None,
        records=recs, events=events, cues=rd.cues, gaps=[(int(a), int(b)) for a, b in rd.gaps],
        summary=rd.summary, header=hdr, complete=closed and not rd.recovered, size=size,
        verdicts=[verdict_dict(v, level_div, unit, rd.t0) for v in rd.verdicts], verdict_tuples=rd.verdicts,
        pain=rd.pain, scores=scores, damage=damage.to_json() if damage else {}, problems=problems)


def _session_id(hdr: dict[str, Any]) -> int:
    sid = C.whole(hdr.get("id"), 0, C.U32)
    return sid if sid is not None else -1
