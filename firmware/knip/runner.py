# One session is one program run: the header, the cues in time (board
# clock), the pain check-ins before and after, the coach's verdicts, the
# calibration result, and the summary when it ends (done, stopped, or the
# flash full). The program runs as its own task; the sample task feeds the
# coach and calls end() the moment the flash fills up.
import asyncio

from knip.fixed import const
from knip import protocol as P
from knip import programs
from knip.samples import BLOCK
from knip.store import StoreError, REC_CUE
from knip.coach import Coach, NA, V_KIND, V_AMP, V_SEQ, V_MEAN

_PAIN_WAIT_MS = const(20000)   # a pain check-in waits this long for an answer
_PAIN_DONE_MS = const(3000)    # ... or this long after the last press
_HOLD_CUE_MS = const(1500)     # "hold" cue this long into a hold of >= 3 s


class ProgramRunner:
    def __init__(self, board, chain, recorder, stream, settings, shelf, firmware, level_div):
        self.board = board
        self.chain = chain
        self.rec = recorder
        self.stream = stream
        self.settings = settings
        self.shelf = shelf
        self.firmware = firmware
        self.level_div = level_div
        self.period_ms = max(1, 1000 // board.rate_hz)
        self.w = P.FrameWriter(256)     # cues and notices (the program task)
        self.epoch_ms = None        # Unix ms at tick 0, once the host set the clock
        self.name = ""
        self.task = None
        self.coach = None           # Coach of the running session
        self.verdicts = []          # this session's, for the end-of-session scores
        self.pain = [None, None]    # scores given by the host for this session
        self.pain_done = [False, False]
        self.pain_got = [None, None]
        self.checkin = -1           # 0/1 while a pain check-in waits
        self.ended = None           # (id, reason) of a session whose end is not yet announced
        self.tail = []              # verdicts judged as the session ended, not yet streamed
        recorder.on_full = self._full

    def _full(self):
        self.end("full")

    def counts_floor(self):
        # smallest tolerance for a "low, steady" rest: 1 cmH2O or 2 uV
        return self.level_div * (2 if self.board.signal == "emg" else 1)

    # ---- start and end -------------------------------------------------

    def start(self, name):
        prog = self.shelf.get(name)
        if prog is None:
            raise KeyError(name)
        if self.rec.id is not None:
            raise StoreError("a session is already running; stop it first")
        title, phases = prog
        b = self.board
        s = self.settings
        t0 = b.ticks_ms()
        calibrating = any(p[0] == programs.K_MVC for p in phases)
        hdr = {"v": 1, "id": self.rec.store.next_id, "store": self.rec.store.store_id, "device": b.device_id, "board": b.name,
               "firmware": self.firmware, "signal": b.signal, "unit": b.unit,
               "counts_per_unit": b.counts_per_unit, "level_div": self.level_div,
               "rate_hz": b.rate_hz, "channels": b.channels, "program": name, "title": title,
               "phases": [list(p) for p in phases],
               "t0_ms": t0, "epoch_ms": None if self.epoch_ms is None else self.epoch_ms + t0,
               "mvc": s.mvc, "calibrated": s.mvc > 0, "rest_level": s.rest_level, "block": BLOCK}
        sid = self.rec.begin(hdr, t0)
        self.name = name
        # a calibration measures her MVC afresh: no reference from before
        self.coach = Coach(self.period_ms, 0 if calibrating else s.mvc, self.counts_floor())
        self.verdicts = []
        self.pain = [None, None]
        self.pain_done = [False, False]
        self.pain_got = [None, None]
        self.checkin = -1
        self.task = asyncio.create_task(self._run(phases, calibrating))
        return sid

    def end(self, reason):
        rec = self.rec
        sid = rec.id
        if sid is None:
            return None
        t = self.task
        if t is not None and reason != "done" and t is not asyncio.current_task():
            t.cancel()              # (the program itself stops at its next step)
        self.task = None
        t_end = self.board.ticks_ms()
        c = self.coach
        self.tail = []
        if c is not None:
            c.stop(t_end)
            while c.ready:
                v = c.ready.pop(0)
                self.verdicts.append(v)
                self.tail.append(v)           # streamed with the session-ended notice
                if reason != "full":
                    rec.verdict(v)
        if reason != "full":
            rec.write_block()
        b = self.board
        try:
            from knip.scores import session_scores      # at the end only: not held while idle
            sc = session_scores(self.verdicts, self.level_div, b.signal, b.unit, c.mvc if c is not None else 0)
        except Exception as e:      # scores are a summary: never lose the session over them
            sc = {"error": "%s: %s" % (type(e).__name__, e)}
        # samples: what the file holds; not_stored: taken after the storage filled up
        rec.end({"reason": reason, "samples": rec.stored, "not_stored": rec.not_stored(),
                 "squeezes": rec.squeezes, "gaps": rec.gaps, "t_end_ms": t_end, "program": self.name,
                 "program_done": reason == "done",
                 "pain": {"before": self.pain_got[0], "after": self.pain_got[1]},
                 "scores": sc})
        b.cue(programs.CUE_DONE, 0, 0)
        self.ended = (sid, reason)
        self.coach = None
        if reason == "full":
            b.alert("storage full")
        return sid

    # ---- what the program sends -------------------------------------------

    async def send_verdicts(self, w):
        # w: the calling task's own frame writer (frames are built in place)
        c = self.coach
        while c is not None and c.ready:
            v = c.ready.pop(0)
            self.verdicts.append(v)
            if self.rec.id is not None:
                self.rec.verdict(v)
            await self.stream.verdict(v, w)

    async def _cue(self, cue, phase, rep, reps, dur, tgt):
        t = self.board.ticks_ms()
        w = self.w
        n = P.pack_cue(w.payload, 0, t, cue, phase, rep, reps, dur, tgt)
        self.rec.append(REC_CUE, w.payload, n)
        if self.stream.on:
            await self.stream.message(P.CUE, w, n)
        self.board.cue(cue, dur, tgt)

    # ---- pain 0-10 before and after --------------------------------------

    def host_pain(self, when, score):
        """A score the host sent (PAIN); after the check-in it corrects it."""
        if self.pain_done[when]:
            self._record_pain(when, score, 1)     # the later record wins
        else:
            self.pain[when] = score

    async def _checkin(self, when, sid):
        """Short presses count, a long press (or 3 s without a press)
        confirms; the host may answer instead (PAIN)."""
        b = self.board
        score = self.pain[when]
        src = 1
        if score is None:
            self.checkin = when
            await self._cue(programs.CUE_PAIN, 255, 0, 0, _PAIN_WAIT_MS, when)
            end = b.ticks_ms() + _PAIN_WAIT_MS
            count = 0
            last = -1
            while self.rec.id == sid:
                if self.pain[when] is not None:
                    score = self.pain[when]
                    break
                now = b.ticks_ms()
                k = b.read_button()
                if k == 1:
                    count += 1
                    last = now
                elif k == 2 or (last >= 0 and now - last >= _PAIN_DONE_MS):
                    score = count if count < 10 else 10
                    src = 0
                    break
                elif now >= end:
                    break
                await b.sleep_ms(50)
            self.checkin = -1
        if self.rec.id != sid:
            return
        self._record_pain(when, score, src)
        await self.stream.notice(P.N_PAIN, "%s %s" % (("before", "after")[when],
                                                      "skipped" if score is None else score), self.w)

    def _record_pain(self, when, score, src):
        self.pain_done[when] = True
        self.pain_got[when] = score
        self.rec.pain(when, score, src, self.board.ticks_ms())

    def _calibrated(self):
        """After a calibration: MVC = mean of her two strongest maximal
        squeezes (above the level before each); resting level = first rest."""
        from knip.calibration import Calibration        # calibrations only
        cal = Calibration()
        for v in self.verdicts:
            if v[V_KIND] == programs.K_MVC and v[V_SEQ] != NA and v[V_AMP] != NA:
                cal.add_peak(v[V_AMP])
        rests = [v[V_MEAN] for v in self.verdicts if v[V_KIND] == programs.K_REST and v[V_MEAN] != NA]
        if cal.npeaks < 2:
            return "calibration failed: %d maximal squeeze%s found, 2 needed; run it again" % (
                cal.npeaks, "" if cal.npeaks == 1 else "s")
        s = self.settings
        s.mvc = cal.mvc()
        if rests:
            s.rest_level = rests[0]
        saved = s.save()
        return "%d %d%s" % (s.mvc, s.rest_level, "" if saved else " (not saved: storage full)")

    # ---- the program task ------------------------------------------------

    async def _run(self, phases, calibrating):
        sid = self.rec.id
        c = self.coach
        notice = self.stream.notice
        await notice(P.N_SESSION_STARTED, "%d %s" % (sid, self.name), self.w)
        if not calibrating and self.settings.mvc <= 0 and programs.has_squeeze_target(phases):
            await notice(P.N_NO_CALIBRATION, "no calibration yet: targets are % of your best squeeze "
                         "today; run the 'calibrate' program first", self.w)
        await self._checkin(0, sid)
        for pi in range(len(phases)):
            for r in range(1, phases[pi][1] + 1):
                if self.rec.id != sid:
                    return
                await self._rep(c, sid, pi, phases[pi], r)
                if c.ready:
                    await self.send_verdicts(self.w)
        if self.rec.id != sid:
            return
        b = self.board
        # the last rep's relaxation verdict may still be on its way
        end = b.ticks_ms() + 3000
        while c.closing and b.ticks_ms() < end:
            await b.sleep_ms(100)
        c.poll(end)
        await self.send_verdicts(self.w)
        if calibrating:
            await notice(P.N_CALIBRATED, self._calibrated(), self.w)
        await self._checkin(1, sid)
        self.task = None
        if self.rec.id == sid:
            await self._cue(programs.CUE_DONE, len(phases), 0, 0, 0, 0)
            self.end("done")

    async def _rep(self, c, sid, pi, phase, r):
        b = self.board
        k, reps, on, off, tgt, rule = phase
        if k < programs.K_MVC:
            c.window_start(b.ticks_ms(), pi, k, r, reps, off, self.chain.level)
            await self._cue(programs.CUE_REST if k == programs.K_REST else programs.CUE_RELAX,
                            pi, r, reps, off, 0)
            await b.sleep_ms(off)
            c.window_end(b.ticks_ms())
            return
        c.squeeze(b.ticks_ms(), pi, k, r, reps, on, off, tgt, rule)
        await self._cue(programs.CUE_SQUEEZE, pi, r, reps, on, tgt)
        if k != programs.K_FAST and on >= 2 * _HOLD_CUE_MS:
            await b.sleep_ms(_HOLD_CUE_MS)
            await self._cue(programs.CUE_HOLD, pi, r, reps, on - _HOLD_CUE_MS, tgt)
            await b.sleep_ms(on - _HOLD_CUE_MS)
        else:
            await b.sleep_ms(on)
        c.relax(b.ticks_ms(), self.chain.level)
        await self._cue(programs.CUE_RELAX, pi, r, reps, off, 0)
        await b.sleep_ms(off)
        extra = 0
        while extra < off:          # the rest rule may stretch the rest up to 2x
            left = c.rest_more(b.ticks_ms())
            if left <= 0 or self.rec.id != sid:
                break
            step = left if left < 200 else 200
            await b.sleep_ms(step)
            extra += step
        c.finish(b.ticks_ms())
