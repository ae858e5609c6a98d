"""Real-time biofeedback in the terminal: level bar (unit and % MVC), the
target zone of the current cue, the state, and a verdict after each squeeze."""
from __future__ import annotations

import statistics
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from knip import record as D      # the detector's record layout
from knip import protocol as P
from knip.programs import CUE_NAMES

from . import checks as C
from .analysis import EMG_ENVELOPE_FRACTION
from .coaching import one_line, verdict_dict
from .device import Device, DeviceError, LiveDecoder, iter_stream
from .simclock import WALL, SimClock, WallClock

PAIN_HELP = "pain check-in on the trainer: press the button once per point (0-10), then hold it to confirm"
# what to do when the trainer ended a session because its heap ran low
MEMORY_HELP = ("the trainer ran out of memory: what was recorded is kept on it (knip sync fetches it). "
               "A board without PSRAM (ESP32-WROOM) needs the frozen build: see docs/DEPLOY.md, "
               "'Plain ESP32 (WROOM): the frozen build'; `knip info` shows its heap.")
ERROR_HELP = ("the trainer's sample loop failed and ended the session (what was recorded is kept; "
              "`knip sync` fetches it). `knip info` shows the error among the board's alerts: "
              "please report it with that text")

BAR = 30


@dataclass
class Verdict:
    seq: int
    kind: str
    peak: float            # above the resting level, in the unit
    pct_mvc: float | None
    hold_s: float
    relaxed: bool | None
    rest_ok: bool | None
    technique: str | None
    of_best: bool = False  # % of her best squeeze so far (no MVC calibrated yet)

    def text(self, unit: str) -> str:
        if self.kind == "artefact":
            return ("signal artefact: the sensor saturated, stuck, spiked or dropped out (not counted); "
                    "check the probe and its cable")
        if self.kind != "squeeze":
            return f"{self.kind.replace('_', ' ')} detected (not counted as a squeeze)"
        parts = [f"squeeze {self.seq}: peak {self.peak:.1f} {unit}"]
        if self.pct_mvc is not None:
            parts[0] += f" ({self.pct_mvc:.0f}% {'of best' if self.of_best else 'MVC'})"
        parts.append(f"held {self.hold_s:.1f} s")
        if self.relaxed is not None:
            parts.append("relaxed fully" if self.relaxed else "NOT relaxed: let go completely")
        if self.rest_ok is False:
            parts.append("rest was shorter than the squeeze")
        if self.technique in ("push", "co_contraction"):
            parts.append("abdomen pushed: lift, don't bear down" if self.technique == "push"
                         else "abdomen tensed too")
        return ", ".join(parts)


@dataclass
class LiveResult:
    samples: int = 0
    frames: int = 0
    lost_frames: int = 0
    verdicts: list[Verdict] = field(default_factory=list)
    cues: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    session: int | None = None
    ended: bool = False            # the program ended on the trainer
    reps: list[dict[str, Any]] = field(default_factory=list)     # the coach's verdicts (coaching.verdict_dict)
    pain: dict[str, int | None] = field(default_factory=lambda: {"before": None, "after": None})
    calibration: str | None = None


class LiveView:
    def __init__(self, info: dict[str, Any], out: TextIO, plain: bool,
                 clock: WallClock | SimClock | None = None):
        self.now = (clock or WALL).monotonic      # the trainer's clock (simclock.py)
        self.unit = str(info.get("unit", ""))
        self.cpu = float(info.get("counts_per_unit") or 1.0)
        self.emg = info.get("signal") == "emg"
        self.level_div = self.cpu * (EMG_ENVELOPE_FRACTION if self.emg else 1)
        mvc = info.get("mvc") or 0
        self.mvc = mvc / self.level_div if mvc else 0.0     # above rest, in the unit
        self.best = 0.0
        self.rest: float | None = None
        self.first: list[float] = []
        self.level = 0.0
        self.state = "rest"
        self.cue = "rest"
        self.target = 0
        self.cue_end = 0.0
        self.out = out
        self.plain = plain
        self._last_draw = 0.0

    # ---- inputs --------------------------------------------------------

    def samples(self, values: list[int]) -> None:
        v = sum(values) / len(values) / self.cpu
        if self.emg:
            # raw EMG: show the mean absolute deviation of the frame as activity
            m = sum(values) / len(values)
            v = sum(abs(x - m) for x in values) / len(values) / self.cpu
        if self.rest is None:
            self.first.append(v)
            if len(self.first) >= 5:
                self.rest = statistics.median(self.first)
        self.level = v

    def event(self, flags: int, rec: list[int]) -> Verdict | None:
        if flags & D.EV_START:
            self.state = "squeeze"
        if flags & D.EV_END:
            self.state = "relax"
        if flags & (D.EV_RELAXED | D.EV_NOT_RELAXED):
            self.state = "rest"
            if not self.emg:
                self.rest = min(rec[D.R_REST], rec[D.R_BASE]) / self.level_div
        if flags & D.EV_ABD_START:
            self.state = "bearing down"
        if flags & D.EV_ABD_END:
            self.state = "rest"
        if not flags & (D.EV_RELAXED | D.EV_NOT_RELAXED | D.EV_ABD_END):
            return None
        amp = (rec[D.R_PEAK] - rec[D.R_BASE]) / self.level_div
        kind = D.KIND_NAMES[rec[D.R_KIND]]
        if kind == "squeeze":
            self.best = max(self.best, amp)
        ref = self.mvc or self.best
        tech = D.TECH_NAMES[rec[D.R_TECH]] if rec[D.R_ABD_RISE] >= 0 else None
        return Verdict(rec[D.R_SEQ], kind, amp, 100.0 * amp / ref if ref else None,
                       rec[D.R_HOLD_MS] / 1000.0, None if rec[D.R_RELAXED] < 0 else bool(rec[D.R_RELAXED]),
                       None if rec[D.R_REST_OK] < 0 else bool(rec[D.R_REST_OK]), tech, not self.mvc)

    def calibrated(self, text: str) -> None:
        """N_CALIBRATED: "<mvc counts> <rest counts>", or why calibration failed."""
        fields = text.split()[:2]
        if len(fields) < 2 or not all(x.lstrip("-").isdigit() for x in fields):
            self.say("trainer: " + text)
            return
        mvc, rest = (int(x) for x in fields)
        self.mvc = mvc / self.level_div
        self.say(f"calibrated: MVC {mvc / self.level_div:.1f} {self.unit} above rest, "
                 f"resting level {rest / self.level_div:.1f} {self.unit}")

    def set_cue(self, cue: str, dur_ms: int, target: int) -> None:
        self.cue = cue
        self.target = target
        self.cue_end = self.now() + dur_ms / 1000.0

    # ---- output --------------------------------------------------------

    def say(self, text: str) -> None:
        if self.plain:
            self.out.write(text + "\n")
        else:
            self.out.write("\r\x1b[2K" + text + "\n")
            self._draw(force=True)
        self.out.flush()

    def status_line(self) -> str:
        above = self.level - (self.rest if self.rest is not None else self.level)
        ref = self.mvc or self.best
        pct = 100.0 * above / ref if ref else None
        scale = ref * 1.2 if ref else max(10.0, above * 1.2)
        fill = max(0, min(BAR, int(round(BAR * above / scale)))) if scale > 0 else 0
        cells = ["#" if i < fill else "." for i in range(BAR)]
        if self.target and ref:
            lo = int(BAR * (self.target / 100.0) * ref / scale)
            if 0 <= lo < BAR:
                cells[lo] = "|"
        pct_txt = f"{pct:4.0f}% {'MVC' if self.mvc else 'best'}" if pct is not None else "   -% MVC"
        left = max(0.0, self.cue_end - self.now())
        cue = self.cue.upper() + (f" {left:4.1f}s" if self.cue in ("squeeze", "relax", "rest") and left else "")
        return (f"[{''.join(cells)}] {above:6.1f} {self.unit:<5} {pct_txt}  "
                f"{('target ' + str(self.target) + '%') if self.target else '':<10}  {self.state:<12} cue: {cue}")

    def _draw(self, force: bool = False) -> None:
        now = self.now()
        if self.plain:
            # a log, not an animation: one status line per second
            if now - self._last_draw >= 1.0:
                self._last_draw = now
                self.out.write(self.status_line().rstrip() + "\n")
                self.out.flush()
            return
        if force or now - self._last_draw >= 0.1:
            self._last_draw = now
            self.out.write("\r\x1b[2K" + self.status_line())
            self.out.flush()


def _utf8(out: TextIO) -> bool:
    return "utf" in (getattr(out, "encoding", None) or "").lower()


def run_live(dev: Device, *, seconds: float | None = None, program: str | None = None,
             out: TextIO | None = None, plain: bool | None = None, batch_ms: int = 100,
             on_frame: Callable[[Any, list[list[int]] | None], None] | None = None,
             pain: tuple[int | None, int | None] = (None, None),
             ask_pain: Callable[[str], int | None] | None = None) -> LiveResult:
    """Stream until `seconds` pass, or the program ends (with `program`).

    pain: scores to give at the check-ins before/after; ask_pain(question)
    asks her instead (None: she answers on the trainer's button)."""
    out = out or sys.stdout
    plain = (not out.isatty()) if plain is None else plain
    info = dev.info or dev.hello()
    view = LiveView(info, out, plain, dev.clock)
    dec = LiveDecoder(int(info.get("channels") or 1))
    res = LiveResult()
    ascii_only = not _utf8(out)
    given = list(pain)
    if program and given[0] is None and ask_pain is not None:
        given[0] = ask_pain("Before you start: pain right now, 0 (none) to 10 (worst)? ")
    dev.live(True, batch_ms)
    if program:
        res.session = dev.start(program)
        view.say(f"session {res.session} started: program '{program}' (Ctrl-C stops it)")
        if given[0] is not None:
            dev.pain(0, given[0])
    limit = time.monotonic() + (seconds if seconds is not None else (10 ** 9 if program else 30.0))
    try:
        for f in iter_stream(dev, limit):
            dec.note_seq(f.seq)
            res.frames += 1
            if f.mtype in (P.SAMPLES, P.SAMPLES_KEY):
                vals = dec.decode(f)
                if on_frame is not None:
                    on_frame(f, vals)
                if vals:
                    res.samples += len(vals[0])
                    view.samples(vals[0])
                    view._draw()
            elif f.mtype == P.EVENT:
                flags, _t, rec = stream_payload(f, "EVENT", P.unpack_event)
                problem = C.detector_record(rec)
                if problem:
                    raise DeviceError(f"a live EVENT frame holds a detector record that makes no sense "
                                      f"({problem}): {C.MISMATCH}")
                v = view.event(flags, rec)
                if v is not None:
                    res.verdicts.append(v)
                    if not program:           # in a program the coach's verdicts speak
                        view.say("  " + v.text(view.unit))
            elif f.mtype == P.VERDICT:
                d = verdict_dict(stream_payload(f, "VERDICT", P.unpack_verdict), view.level_div, view.unit)
                res.reps.append(d)
                view.say("  " + one_line(d, ascii_only))
            elif f.mtype == P.CUE:
                _t, cue, _ph, rep, reps, dur, tgt = stream_payload(f, "CUE", P.unpack_cue)
                name = CUE_NAMES[cue] if cue < len(CUE_NAMES) else str(cue)
                after_squeeze = view.cue in ("squeeze", "hold")
                if name != "pain":
                    view.set_cue(name, dur, tgt)
                res.cues.append(name)
                if name == "squeeze":
                    view.say(f"SQUEEZE {rep}/{reps} for {dur / 1000:g} s" + (f", target {tgt}% MVC" if tgt else ""))
                elif name == "hold":
                    view.say(f"  hold... {dur / 1000:g} s more")
                elif name == "rest" and dur >= 5000:
                    view.say(f"rest {dur / 1000:g} s: lie still and breathe")
                elif name == "relax" and not after_squeeze:
                    view.say(f"RELAX {rep}/{reps} for {dur / 1000:g} s: let go completely and stay low")
                elif name == "pain":
                    when = tgt
                    score = given[when]
                    if score is None and ask_pain is not None and when == 1:
                        score = ask_pain("Done. Pain right now, 0 (none) to 10 (worst)? ")
                    if score is not None:
                        try:
                            dev.pain(when, score)
                        except DeviceError as exc:
                            view.say(f"could not store the pain score: {exc}")
                    else:
                        view.say(PAIN_HELP)
            elif f.mtype == P.NOTICE and _notice(f, res, view) and program:
                res.ended = True
                break
        else:
            if program and not res.ended:
                # the time given ran out, not the program: stop it, or the
                # trainer stays busy with it until its end
                dev.stop()
                view.say(f"stopped after {seconds:g} s (--seconds): the session so far is saved on the trainer")
    except KeyboardInterrupt:
        if program and not res.ended:
            dev.stop()
            view.say("stopped: the session so far is saved on the trainer")
    finally:
        res.lost_frames = dec.lost_frames
        try:
            dev.live(False)
        except Exception:
            pass
        if not plain:
            out.write("\n")
    return res


def _notice(f: Any, res: LiveResult, view: LiveView) -> bool:
    """Tell a NOTICE frame; True when it says the session ended."""
    if not f.payload:
        raise DeviceError(f"a live NOTICE frame is empty: {C.MISMATCH}")
    code = f.payload[0]
    text = f.payload[1:].decode("utf-8", "replace")
    res.notices.append(text)
    if code == P.N_SESSION_ENDED:
        reason = text.split(' ', 1)[-1]
        view.say(f"session ended ({reason})")
        if reason == "memory":
            view.say(MEMORY_HELP)
        elif reason == "error":
            view.say(ERROR_HELP)
        return True
    if code in (P.N_STORAGE_FULL, P.N_GAP, P.N_STORAGE_LOW, P.N_NO_CALIBRATION):
        view.say("trainer: " + text)
    elif code == P.N_PAIN:
        when, _, val = text.partition(" ")
        if when in res.pain:
            res.pain[when] = int(val) if val.isdigit() else None
        view.say(f"pain {when}: {val}")
    elif code == P.N_CALIBRATED:
        res.calibration = text
        view.calibrated(text)
    return False


def stream_payload(f: Any, what: str, parse: Callable[[bytes, int, int], Any]) -> Any:
    """A stream frame's payload through the core's parser; a payload that does
    not parse is one DeviceError line (not a ValueError, IndexError or
    struct.error in the middle of a session)."""
    try:
        return parse(f.payload, 0, len(f.payload))
    except (ValueError, IndexError, struct.error) as exc:
        raise DeviceError(f"a live {what} frame ({len(f.payload)} bytes) does not decode ({exc}): "
                          f"{C.MISMATCH}") from None


def decode_live_ok(payload: bytes) -> tuple[int, int]:
    return C.unpack("<IH", payload, 1, "the trainer's reply to LIVE", DeviceError)
