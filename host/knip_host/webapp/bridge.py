"""The live stream, frame by frame, as messages for the page.

The decoding is the host's own: knip_host.device.LiveDecoder for the
samples, knip.protocol for events, cues and verdicts, knip_host.live.LiveView
for the level above rest, % MVC and the state, knip_host.coaching for the
words of a verdict. This module only turns them into JSON for the page.

Messages (each a dict with "type"):
  live      the stream started or stopped: rate, channels, unit, signal, speed
            (virtual trainer), t0_ms (board tick 0 on the wall clock, virtual
            trainer only), first (index of the next sample), batch, envelope
  samples   i (index of the first value), v (one list per channel, in the unit;
            with envelope: one activity value per frame), lvl (above rest),
            pct (% MVC, or of her best today), rest, ref, of_best, state
  cue       cue, rep, reps, dur_ms, wall_ms (dur_ms on the wall clock),
            target, phase, i (index of the sample taken at the cue: from its
            board time, as the samples may still wait in a batch)
  event     a squeeze (or cough, push) the detector found: kind, text
  verdict   the coach's verdict on one rep: d (coaching.verdict_dict), line
  session   state running/ended, id, program or reason
  checkin   a pain check-in waits for her answer: when 0 before, 1 after
  pain      a check-in ended: when, score (None: skipped)
  calibrated  mvc and rest in the unit, or failed with its text
  notice    any other notice from the trainer: code, text
"""
from __future__ import annotations

import io
import time
from typing import Any, Callable

from knip import protocol as P
from knip.programs import CUE_NAMES

from ..coaching import one_line, verdict_dict
from ..device import DeviceError, Frame, LiveDecoder
from ..live import LiveView

Publish = Callable[[dict[str, Any]], None]

ENVELOPE_RATE_HZ = 250       # above this the trace shows activity per frame, not raw samples


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(float(x), nd)


class LiveBridge:
    """One live stream of one trainer. `on_checkin(when)` is called (in the
    trainer's thread) when a pain check-in starts."""

    def __init__(self, info: dict[str, Any], publish: Publish,
                 on_checkin: Callable[[int], None] | None = None):
        self.info = info
        self.publish = publish
        self.on_checkin = on_checkin
        self.view = LiveView(info, io.StringIO(), plain=True)
        self.channels = int(info.get("channels", 1) or 1)
        self.rate = float(info.get("rate_hz", 100) or 100)
        self.cpu = self.view.cpu
        self.envelope = self.view.emg and self.rate > ENVELOPE_RATE_HZ
        sim = info.get("sim") or {}
        self.speed = float(sim.get("speed") or 1.0)
        t0 = sim.get("t0_ns")
        self.t0_ms = t0 / 1e6 if isinstance(t0, (int, float)) else None
        self.dec = LiveDecoder(self.channels)
        self.index = 0
        self.batch = 1
        # board ms of sample 0: cues carry board time, the trace counts samples
        ticks, done = info.get("ticks_ms"), info.get("samples")
        self.tick0 = (ticks - done * 1000.0 / self.rate
                      if isinstance(ticks, (int, float)) and isinstance(done, (int, float)) else None)
        self.session: int | None = None
        self.frames = 0

    # ---- the stream's ends ---------------------------------------------------

    def started(self, first: int, batch: int) -> None:
        self.index = first
        self.batch = max(1, batch)
        self.dec = LiveDecoder(self.channels)
        self.publish({"type": "live", "on": True, "rate": self.rate, "channels": self.channels,
                      "unit": self.view.unit, "signal": self.info.get("signal"), "speed": self.speed,
                      "t0_ms": self.t0_ms, "first": first, "batch": self.batch,
                      "envelope": self.envelope, "mvc": _r(self.view.mvc),
                      "device": self.info.get("device")})

    def stopped(self) -> None:
        self.publish({"type": "live", "on": False, "lost_frames": self.dec.lost_frames})

    # ---- one frame -----------------------------------------------------------

    def frame(self, f: Frame) -> None:
        try:
            self._frame(f)
        except (DeviceError, ValueError, IndexError) as exc:      # one bad frame, not a lost link
            self.publish({"type": "notice", "code": 0, "text": f"a damaged live frame was skipped ({exc})"})

    def _frame(self, f: Frame) -> None:
        lost = self.dec.lost_frames
        self.dec.note_seq(f.seq)
        self.index += (self.dec.lost_frames - lost) * self.batch     # frames lost on the link
        self.frames += 1
        if f.mtype in (P.SAMPLES, P.SAMPLES_KEY):
            self._samples(f)
        elif f.mtype == P.EVENT:
            self._event(f)
        elif f.mtype == P.CUE:
            self._cue(f)
        elif f.mtype == P.VERDICT:
            d = verdict_dict(P.unpack_verdict(f.payload, 0, len(f.payload)), self.view.level_div, self.view.unit)
            self.publish({"type": "verdict", "d": d, "line": one_line(d)})
        elif f.mtype == P.NOTICE:
            self._notice(f.payload[0] if f.payload else 0, f.payload[1:].decode("utf-8", "replace"))

    def _samples(self, f: Frame) -> None:
        vals = self.dec.decode(f)
        count = f.payload[0] if f.payload else 0
        first = self.index
        self.index += count
        if not vals:
            return                         # waiting for a key frame after a loss
        view = self.view
        view.samples(vals[0])
        if self.envelope:
            points = [[_r(view.level)]]
            first = self.index - 1
        else:
            points = [[round(x / self.cpu, 2) for x in ch] for ch in vals]
        rest = view.rest
        above = view.level - (rest if rest is not None else view.level)
        ref = view.mvc or view.best
        self.publish({"type": "samples", "i": first, "v": points, "lvl": _r(above),
                      "pct": _r(100.0 * above / ref, 1) if ref else None, "rest": _r(rest),
                      "ref": _r(ref), "of_best": not view.mvc, "state": view.state,
                      "wall": round(time.time() * 1000.0, 1)})

    def _event(self, f: Frame) -> None:
        flags, _t, rec = P.unpack_event(f.payload, 0, len(f.payload))
        v = self.view.event(flags, rec)
        if v is not None:
            self.publish({"type": "event", "kind": v.kind, "text": v.text(self.view.unit),
                          "pct": _r(v.pct_mvc, 1), "peak": _r(v.peak), "relaxed": v.relaxed})

    def _cue(self, f: Frame) -> None:
        t, cue, phase, rep, reps, dur, tgt = P.unpack_cue(f.payload, 0, len(f.payload))
        name = CUE_NAMES[cue] if cue < len(CUE_NAMES) else str(cue)
        if name != "pain":
            self.view.set_cue(name, dur, tgt)
        self.publish({"type": "cue", "cue": name, "rep": rep, "reps": reps, "dur_ms": dur,
                      "wall_ms": round(dur / self.speed, 1), "target": tgt, "phase": phase,
                      "i": self.index if self.tick0 is None else round((t - self.tick0) * self.rate / 1000.0),
                      "t_ms": t})
        if name == "pain" and self.on_checkin is not None:
            self.on_checkin(1 if tgt else 0)

    def _notice(self, code: int, text: str) -> None:
        if code == P.N_SESSION_STARTED:
            sid, _, program = text.partition(" ")
            self.session = int(sid) if sid.isdigit() else None
            self.publish({"type": "session", "state": "running", "id": self.session, "program": program})
        elif code == P.N_SESSION_ENDED:
            sid, _, reason = text.partition(" ")
            self.publish({"type": "session", "state": "ended", "id": int(sid) if sid.isdigit() else None,
                          "reason": reason})
            self.session = None
        elif code == P.N_PAIN:
            when, _, val = text.partition(" ")
            self.publish({"type": "pain", "when": when, "score": int(val) if val.isdigit() else None})
        elif code == P.N_CALIBRATED and not text.startswith("calibration failed"):
            mvc, rest = (int(x) for x in text.split()[:2])
            self.view.mvc = mvc / self.view.level_div
            self.publish({"type": "calibrated", "ok": True, "mvc": _r(self.view.mvc),
                          "rest": _r(rest / self.view.level_div), "unit": self.view.unit})
        elif code == P.N_CALIBRATED:
            self.publish({"type": "calibrated", "ok": False, "text": text})
        else:
            self.publish({"type": "notice", "code": code, "text": text})
