"""Decode a device session file (docs/STORE.md, record payloads in
docs/PROTOCOL.md) into a Session, with the firmware's own codec."""
from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from knip import record as D      # the detector's record layout
from knip import protocol as P
from knip import store as S
from knip.packing import get_varint, rice_unpack
from knip.programs import CUE_NAMES, K_MVC
from knip.scores import session_scores

from .analysis import EMG_ENVELOPE_FRACTION, record_to_event
from .coaching import verdict_dict
from .session import Session

_TIME_FIELDS = (D.R_ONSET, D.R_DETECTED, D.R_PEAK_T, D.R_OFFSET, D.R_ENDED, D.R_VERDICT_T)
_FINAL = D.EV_END | D.EV_RELAXED | D.EV_NOT_RELAXED


class SessionFileError(ValueError):
    """The bytes are not a readable session file; the message says why."""


def decode(raw: bytes, device_id: str = "", session_id: int | None = None) -> Session:
    buf = memoryview(raw)
    valid, nrec, closed, err = S.scan(buf)
    records = list(S.iter_records(buf))
    if not records or records[0][0] != S.REC_HEADER:
        raise SessionFileError("not a Knip session file (no header record)" + (f": {err}" if err else ""))
    hp = bytes(records[0][1])
    if hp[:4] != b"KNIP":
        raise SessionFileError("not a Knip session file (bad magic)")
    try:
        hdr = json.loads(hp[5:])
    except ValueError as exc:
        raise SessionFileError(f"session header is not valid JSON: {exc}") from exc
    t0 = int(hdr.get("t0_ms", 0))
    rate = float(hdr["rate_hz"])
    signal = hdr.get("signal", "pressure")
    cpu = float(hdr.get("counts_per_unit", 20))
    channels = int(hdr.get("channels", 1))
    level_div = cpu * (EMG_ENVELOPE_FRACTION if signal == "emg" else 1)

    ts: list[np.ndarray] = []
    xs: list[list[int]] = []
    ab: list[list[int]] = []
    by_seq: dict[int, list[int]] = {}
    order: list[int] = []
    cues: list[dict[str, Any]] = []
    gaps: list[tuple[int, int]] = []
    summary: dict[str, Any] = {}
    recovered = False
    verdicts: list[tuple[int, ...]] = []
    pain: dict[str, int | None] = {"before": None, "after": None}
    for rtype, payload, _off in records[1:]:
        p = bytes(payload)
        if rtype == S.REC_SAMPLES:
            first, t_first, n, ch, kb = struct.unpack_from("<IIHBB", p, 0)
            pos = 12
            chans = []
            for c in range(ch):
                start, pos = get_varint(p, pos, len(p))
                dst = [0] * n
                got, pos = rice_unpack(p, pos, len(p), start, (kb >> (4 * c)) & 0xF, dst, 0, n)
                if got != n:
                    raise SessionFileError(f"sample block at sample {first} decodes to {got} of {n} samples")
                chans.append(dst)
            ts.append(t_first - t0 + np.round(np.arange(n) * 1000.0 / rate).astype(np.int64))
            xs.append(chans[0])
            if ch > 1:
                ab.append(chans[1])
        elif rtype == S.REC_EVENT:
            flags, t, rec = P.unpack_event(p, 0, len(p))
            if flags & _FINAL:
                seq = rec[D.R_SEQ]
                if seq not in by_seq:
                    order.append(seq)
                by_seq[seq] = rec
            if flags & D.EV_ABD_END:
                seq = rec[D.R_SEQ]
                if seq not in by_seq:
                    order.append(seq)
                by_seq[seq] = rec
        elif rtype == S.REC_CUE:
            t, cue, phase, rep, reps, dur, tgt = P.unpack_cue(p, 0, len(p))
            cues.append({"t_ms": t - t0, "cue": CUE_NAMES[cue] if cue < len(CUE_NAMES) else str(cue),
                         "phase": phase, "rep": rep, "reps": reps, "dur_ms": dur, "target_pct": tgt})
        elif rtype == S.REC_GAP:
            gaps.append(struct.unpack_from("<II", p, 0))
        elif rtype == S.REC_END:
            summary = json.loads(p)
        elif rtype == S.REC_RECOVERED:
            recovered = True
        elif rtype == S.REC_VERDICT:
            verdicts.append(tuple(P.unpack_verdict(p, 0, len(p))))
        elif rtype == S.REC_PAIN and len(p) >= 3:
            score = p[1]
            pain["before" if p[0] == 0 else "after"] = None if score > 10 else int(score)

    recs = []
    for seq in order:
        r = list(by_seq[seq])
        for i in _TIME_FIELDS:
            if i < len(r):
                r[i] -= t0
        recs.append(tuple(r))
    two = channels > 1
    events = [record_to_event(r, level_div, two) for r in recs]
    events.sort(key=lambda e: e["onset_s"])
    epoch = hdr.get("epoch_ms")
    unit = str(hdr.get("unit", ""))
    calibrating = any(ph[0] == K_MVC for ph in hdr.get("phases", []))
    mvc = 0 if calibrating else int(hdr.get("mvc") or 0)
    scores = session_scores(verdicts, level_div, signal, unit, mvc) if verdicts else {}
    return Session(
        device_id=device_id or str(hdr.get("device", "")),
        session_id=_session_id(hdr) if session_id is None else session_id,
        start_epoch=None if epoch is None else int(epoch // 1000),
        signal=signal, unit=str(hdr.get("unit", "")), counts_per_unit=cpu, rate_hz=rate,
        program=str(hdr.get("program", "")), firmware=str(hdr.get("firmware", "")),
        t_ms=np.concatenate(ts) if ts else np.zeros(0, dtype=np.int64),
        values=np.asarray([v for blk in xs for v in blk], dtype=np.int32),
        abd=np.asarray([v for blk in ab for v in blk], dtype=np.int32) if two else None,
        records=recs, events=events, cues=cues, gaps=[(int(a), int(b)) for a, b in gaps],
        summary=summary, header=hdr, complete=closed and not recovered, size=valid,
        verdicts=[verdict_dict(v, level_div, unit, t0) for v in verdicts], verdict_tuples=verdicts,
        pain=pain, scores=scores)


def _session_id(hdr: dict[str, Any]) -> int:
    sid = hdr.get("id")
    return int(sid) if sid is not None else -1
