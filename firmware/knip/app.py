# The trainer application: sampler ring -> signal chain and detector ->
# coach -> session store and link. Runs on any board object (see
# docs/BOARD.md): the ESP32 boards and the virtual trainer's simulated board.
# Three asyncio tasks: _process (samples), _serve (host requests), _coach
# (the program in progress) plus a fetch task while the host syncs.
import asyncio
import json
import os
import struct
from array import array

from knip.fixed import const
from knip import protocol as P
from knip import programs
from knip.packing import rice_k, rice_pack, put_varint
from knip.chain import PressureChain, EmgChain
from knip.record import (EV_START, EV_PEAK, EV_END, EV_RELAXED, EV_NOT_RELAXED,
                         EV_ABD_START, EV_ABD_END, KIND_SQUEEZE, R_KIND)
from knip.store import (SessionStore, StoreError, StoreFull, REC_SAMPLES, REC_EVENT,
                        REC_CUE, REC_GAP, REC_PAIN, REC_VERDICT, MAX_PAYLOAD)
from knip.coach import Coach, NA, V_KIND, V_AMP, V_SEQ, V_MEAN
from knip.scores import session_scores
from knip.calibration import Calibration

FIRMWARE = "0.4.0"

_BLOCK = const(200)            # samples per session file record
_MAX_BATCH = const(100)        # most samples in one live frame
_KEY_EVERY = const(10)         # live frames between key frames (absolute values)
_FLUSH_MS = const(15000)       # store flush at least this often while recording
_DATA_CHUNK = const(512)       # session bytes per DATA frame
_ERR_GAP_MS = const(100)       # at most ~10 error replies per second
_SAMPLE_HDR = "<IIHBB"         # first index, first t_ms, count, channels, k (ch0 | ch1 << 4)
_SAMPLE_HDR_SIZE = const(12)
_LIST_MAX = const(16)          # sessions per SESSIONS reply (fits one frame)
_PAIN_WAIT_MS = const(20000)   # a pain check-in waits this long for an answer
_PAIN_DONE_MS = const(3000)    # ... or this long after the last press
_HOLD_CUE_MS = const(1500)     # "hold" cue this long into a hold of >= 3 s
_PAIN_SKIPPED = const(255)
_EMG_LEVEL = const(16)         # the EMG envelope is in 1/16 counts
_MAX_CUSTOM = const(16)        # custom programs kept on the device


def make_chain(board):
    two = board.channels > 1
    if board.signal == "emg":
        return EmgChain(board.rate_hz, two_channel=two)
    return PressureChain(board.rate_hz, two_channel=two)


class LiveStream:
    """Batches samples into SAMPLES frames (Rice-coded differences)."""

    def __init__(self, channels):
        self.two = channels > 1
        self.xs = array("i", bytes(4 * _MAX_BATCH))
        self.as_ = array("i", bytes(4 * _MAX_BATCH))
        self.n = 0
        self.batch = 10
        self.on = False
        self.frames = 0
        self.px = 0
        self.pa = 0
        self.w = P.FrameWriter(16 + 12 * _MAX_BATCH)     # 2 channels of escapes at worst

    def start(self, batch):
        self.batch = batch if 1 <= batch <= _MAX_BATCH else _MAX_BATCH
        self.n = 0
        self.frames = 0
        self.on = True

    def add(self, x, a):
        n = self.n
        self.xs[n] = x
        self.as_[n] = a
        self.n = n + 1
        return self.n >= self.batch

    def frame(self, seq):
        n = self.n
        self.n = 0
        p = self.w.payload
        key = self.frames % _KEY_EVERY == 0
        self.frames += 1
        xs = self.xs
        px = xs[0] if key else self.px
        kx = rice_k(xs, 0, n, px)
        p[0] = n
        pos = 2
        if self.two:
            pa = self.as_[0] if key else self.pa
            ka = rice_k(self.as_, 0, n, pa)
            p[1] = kx | (ka << 4)
            if key:
                pos = put_varint(p, pos, px)
                pos = put_varint(p, pos, pa)
            pos = rice_pack(xs, 0, n, px, kx, p, pos)
            pos = rice_pack(self.as_, 0, n, pa, ka, p, pos)
            self.pa = self.as_[n - 1]
        else:
            p[1] = kx
            if key:
                pos = put_varint(p, pos, px)
            pos = rice_pack(xs, 0, n, px, kx, p, pos)
        self.px = xs[n - 1]
        return self.w.frame(P.SAMPLES_KEY if key else P.SAMPLES, seq, pos)


class SampleBlock:
    """Collects samples for one REC_SAMPLES record of the session file."""

    def __init__(self, channels):
        self.two = channels > 1
        self.xs = array("i", bytes(4 * _BLOCK))
        self.as_ = array("i", bytes(4 * _BLOCK))
        self.ts = array("i", bytes(4 * _BLOCK))
        # worst case (every sample an escape, 44 bits): 12 + 2 * (5 + 6 * _BLOCK) bytes
        self.buf = bytearray(_SAMPLE_HDR_SIZE + 2 * (5 + 6 * _BLOCK))
        self.n = 0
        self.first = 0      # session sample index of xs[0]

    def add(self, index, t, x, a):
        n = self.n
        if n == 0:
            self.first = index
        self.xs[n] = x
        self.as_[n] = a
        self.ts[n] = t
        self.n = n + 1
        return self.n >= _BLOCK

    def pack(self, i0, n):
        """Encode samples i0..i0+n-1; return the payload length in .buf."""
        b = self.buf
        xs = self.xs
        kx = rice_k(xs, i0, n, xs[i0])
        ka = rice_k(self.as_, i0, n, self.as_[i0]) if self.two else 0
        struct.pack_into(_SAMPLE_HDR, b, 0, self.first + i0, self.ts[i0], n, 2 if self.two else 1,
                         kx | (ka << 4))
        pos = put_varint(b, _SAMPLE_HDR_SIZE, xs[i0])
        pos = rice_pack(xs, i0, n, xs[i0], kx, b, pos)
        if self.two:
            pos = put_varint(b, pos, self.as_[i0])
            pos = rice_pack(self.as_, i0, n, self.as_[i0], ka, b, pos)
        return pos


class App:
    def __init__(self, board):
        b = board
        self.board = board
        self.store = SessionStore(board.fs_root)
        self.recovered = self.store.recover()
        self.chain = make_chain(board)
        self.live = LiveStream(board.channels)
        self.block = SampleBlock(board.channels)
        self.rx = P.FrameReader()
        self.tx = P.FrameWriter()                 # replies (serve task)
        self.ev = P.FrameWriter(256)              # events and notices (process task)
        self.cw = P.FrameWriter(256)              # cues and notices (coach task)
        self.data = P.FrameWriter(_DATA_CHUNK + 16)  # fetch task
        self.recbuf = bytearray(256)
        self.stream_seq = 0
        self.n = 0                  # samples processed since boot
        self.gaps = 0               # samples lost since boot
        self._lost_seen = 0
        self.epoch_ms = None        # Unix ms at tick 0, once the host set the clock
        self.session = None         # open session id
        self.s_index = 0            # samples in the open session
        self.s_stored = 0           # of those, written to the session file
        self.s_squeezes = 0
        self.s_gaps = 0
        self.s_started = 0
        self.program_name = ""
        self.coach_task = None
        self.fetch_task = None
        self.full = False
        self._ended = None          # (id, reason) of a session whose end is not yet announced
        self._tail = []             # verdicts judged as the session ended, not yet streamed
        self._fetch_no = 0
        self.running = True
        self.mvc = 0                # counts above rest; 0 = not calibrated
        self.rest_level = NA        # from the last calibration
        self._last_err = -1000000
        self._last_flush = 0
        self.level_div = b.counts_per_unit * (_EMG_LEVEL if b.signal == "emg" else 1)
        self.period_ms = max(1, 1000 // b.rate_hz)
        self.coach = None           # Coach of the running session
        self.phases = None
        self.pain = [None, None]    # scores given by the host for this session
        self.pain_done = [False, False]
        self.pain_got = [None, None]
        self.checkin = -1           # 0/1 while a pain check-in waits
        self.verdicts = []          # this session's, for the end-of-session scores
        self.root = board.fs_root.rsplit("/", 1)[0] or "/"
        self.custom = {}            # name -> (title, phases)
        self.program_errors = []
        self._load_settings()
        self._load_programs()

    # ---- entry ---------------------------------------------------------

    async def run(self):
        b = self.board
        b.start()
        proc = asyncio.create_task(self._process())
        try:
            await self._serve()
        finally:
            proc.cancel()
            if self.session is not None:
                self.end_session("stopped")
            b.stop()

    # ---- samples -------------------------------------------------------

    async def _process(self):
        b = self.board
        ring = b.ring
        chain = self.chain
        push = chain.push
        lp = chain.signal == "pressure"
        live = self.live
        block = self.block
        while True:
            await b.wait_samples()
            # Take what is in the ring now; anything lost while it was full
            # came after these samples, so the gap is recorded after them.
            lost = ring.dropped + ring.missed
            end = ring.head
            while ring.tail != end:
                i = ring.tail
                t = ring.t[i]
                x = ring.x[i]
                a = ring.a[i]
                ring.advance()
                self.n += 1
                fl = push(t, x, a)
                if self.session is not None:
                    self.coach.sample(t, chain.level)
                    if block.add(self.s_index, t, x, a):
                        self._write_block()     # (a full flash ends the session here)
                    self.s_index += 1
                # pressure streams live as the detector sees it (low-passed:
                # smoother bars, a third of the bytes); EMG streams raw
                if live.on and (live.add(chain.level, chain.alevel) if lp else live.add(x, a)):
                    await self._send_stream(live.frame(self.stream_seq))
                if fl:
                    await self._events(fl, t)
            if lost != self._lost_seen:
                await self._gap(lost - self._lost_seen)
                self._lost_seen = lost
            if self.coach is not None:
                self.coach.poll(b.ticks_ms())
                if self.coach.ready:
                    await self._verdicts(self.ev)
            if self.session is not None and b.ticks_ms() - self._last_flush >= _FLUSH_MS:
                self._flush()
            if self._ended is not None:
                sid, reason = self._ended
                self._ended = None
                while self._tail and self.live.on:
                    n = P.pack_verdict(self.ev.payload, 0, self._tail.pop(0))
                    await self._send_stream(self.ev.frame(P.VERDICT, self.stream_seq, n))
                self._tail = []
                await self._notice(P.N_SESSION_ENDED, "%d %s" % (sid, reason), self.ev)
                if reason == "full":
                    await self._notice(P.N_STORAGE_FULL, "storage full: session saved; sync to free space",
                                       self.ev)

    async def _gap(self, missing):
        self.gaps += missing
        if self.session is not None:
            self._write_block()
            self.s_gaps += missing
            struct.pack_into("<II", self.recbuf, 0, self.s_index, missing)
            self._append(REC_GAP, self.recbuf, 8)
            self.s_index += missing
        await self._notice(P.N_GAP, "%d samples lost" % missing, self.ev)

    async def _events(self, fl, t):
        det = self.chain.det
        c = self.coach
        if c is not None:
            st = det.state
            if fl & (EV_END | EV_RELAXED | EV_NOT_RELAXED):
                c.event(fl & (EV_END | EV_RELAXED | EV_NOT_RELAXED), t, det.done, st)
            if fl & (EV_START | EV_PEAK):
                c.event(fl & (EV_START | EV_PEAK), t, det.cur, st)
            if fl & EV_ABD_END:
                c.event(EV_ABD_END, t, det.abd, st)
        live = fl & (EV_START | EV_PEAK)
        if live:
            await self._event(live, t, det.cur)
        fin = fl & (EV_END | EV_RELAXED | EV_NOT_RELAXED)
        if fin:
            if fl & EV_END and det.done[R_KIND] == KIND_SQUEEZE:
                self.s_squeezes += 1
            await self._event(fin, t, det.done)
        for f in (EV_ABD_START, EV_ABD_END):
            if fl & f:
                await self._event(f, t, det.abd)

    async def _event(self, flags, t, rec):
        w = self.ev
        n = P.pack_event(w.payload, 0, flags, t, rec)
        if self.session is not None:
            self._append(REC_EVENT, w.payload, n)
        if self.live.on:
            await self._send_stream(w.frame(P.EVENT, self.stream_seq, n))

    async def _send_stream(self, frame):
        self.stream_seq = (self.stream_seq + 1) & 0xFF
        try:
            await self.board.link.write(frame)
        except OSError:
            self.live.on = False      # nobody listening: stop streaming

    async def _notice(self, code, text, w):
        if not self.live.on:
            return
        data = text.encode()
        w.payload[0] = code
        w.payload[1:1 + len(data)] = data
        await self._send_stream(w.frame(P.NOTICE, self.stream_seq, 1 + len(data)))

    # ---- session file --------------------------------------------------

    def _append(self, rtype, buf, n):
        if self.session is None:
            return False
        try:
            self.store.append(rtype, buf, n)
            return True
        except StoreFull:
            self.full = True
            self.end_session("full")
            return False

    def _write_block(self):
        blk = self.block
        n = blk.n
        if not n:
            return
        blk.n = 0
        i0 = 0
        step = n
        while i0 < n:
            # noisy data can outgrow one record: halve until it fits
            k = step if i0 + step <= n else n - i0
            m = blk.pack(i0, k)
            if m > MAX_PAYLOAD and k > 1:
                step = (k + 1) // 2
                continue
            if not self._append(REC_SAMPLES, blk.buf, m):
                return
            self.s_stored += k
            i0 += k

    def _flush(self):
        self._last_flush = self.board.ticks_ms()
        self._write_block()
        if self.session is not None:
            self.store.flush()

    # ---- programs and settings -------------------------------------------

    def program(self, name):
        """(title, phases) of a built-in or custom program, or None."""
        if name in self.custom:
            return self.custom[name]
        p = programs.builtin(name)
        return None if p is None else (p[1], p[2])

    def program_names(self):
        return sorted(set(programs.BUILTIN) | set(self.custom))

    def _load_settings(self):
        try:
            with open(self.root + "/knip.json") as f:
                d = json.load(f)
            self.mvc = int(d.get("mvc", 0))
            self.rest_level = int(d.get("rest", NA))
        except (OSError, ValueError, TypeError, AttributeError):
            pass                  # none yet (or unreadable): uncalibrated

    def _save_settings(self):
        return self._write_json(self.root + "/knip.json", {"mvc": self.mvc, "rest": self.rest_level})

    def _write_json(self, path, doc):
        # write a new file, then rename: a power cut leaves the old one whole
        tmp = path + ".new"
        try:
            with open(tmp, "w") as f:
                f.write(json.dumps(doc))
            os.rename(tmp, path)
            return True
        except OSError:
            try:
                os.remove(tmp)
            except OSError:
                pass
            return False

    def _program_dir(self):
        return self.root + "/programs"

    def _load_programs(self):
        d = self._program_dir()
        try:
            names = [n for n in os.listdir(d) if n.endswith(".json")]
        except OSError:
            return
        for n in names:
            try:
                with open(d + "/" + n) as f:
                    name, title, phases = programs.parse(json.load(f))
                self.custom[name] = (title, phases)
            except (OSError, ValueError) as e:
                self.program_errors.append("%s: %s" % (n, e))

    def put_program(self, doc):
        """Validate and keep a custom program; raises ValueError/OSError and
        then leaves every program as it was."""
        if isinstance(doc, dict) and "remove" in doc:
            name = doc["remove"]
            if name not in self.custom:
                raise KeyError(name)
            os.remove(self._program_dir() + "/" + name + ".json")
            del self.custom[name]
            return name
        name, title, phases = programs.parse(doc)
        if name in programs.BUILTIN:
            raise programs.ProgramError("name: '%s' is a built-in program; choose another name" % name)
        if name not in self.custom and len(self.custom) >= _MAX_CUSTOM:
            raise programs.ProgramError("the device keeps %d custom programs; remove one first" % _MAX_CUSTOM)
        try:
            os.mkdir(self._program_dir())
        except OSError:
            pass
        if not self._write_json(self._program_dir() + "/" + name + ".json",
                                programs.to_doc(name, title, phases)):
            raise OSError("cannot save the program: storage full or read-only; sync to free space")
        self.custom[name] = (title, phases)
        return name

    # ---- sessions -----------------------------------------------------------

    def start_session(self, name):
        prog = self.program(name)
        if prog is None:
            raise KeyError(name)
        if self.session is not None:
            raise StoreError("a session is already running; stop it first")
        title, phases = prog
        b = self.board
        t0 = b.ticks_ms()
        calibrating = any(p[0] == programs.K_MVC for p in phases)
        hdr = {"v": 1, "id": self.store._next, "device": b.device_id, "board": b.name, "firmware": FIRMWARE,
               "signal": b.signal, "unit": b.unit, "counts_per_unit": b.counts_per_unit,
               "level_div": self.level_div,
               "rate_hz": b.rate_hz, "channels": b.channels, "program": name, "title": title,
               "phases": [list(p) for p in phases],
               "t0_ms": t0, "epoch_ms": None if self.epoch_ms is None else self.epoch_ms + t0,
               "mvc": self.mvc, "calibrated": self.mvc > 0, "rest_level": self.rest_level, "block": _BLOCK}
        self.session = self.store.begin(json.dumps(hdr).encode())
        self.full = False
        self.s_index = 0
        self.s_stored = 0
        self.s_squeezes = 0
        self.s_gaps = 0
        self.s_started = t0
        self._last_flush = t0
        self.program_name = name
        floor = self.counts_floor()
        # a calibration measures her MVC afresh: no reference from before
        self.coach = Coach(self.period_ms, 0 if calibrating else self.mvc, floor)
        self.phases = phases
        self.verdicts = []
        self.pain = [None, None]
        self.pain_done = [False, False]
        self.pain_got = [None, None]
        self.checkin = -1
        self.coach_task = asyncio.create_task(self._coach(phases, calibrating))
        return self.session

    def counts_floor(self):
        # smallest tolerance for a "low, steady" rest: 1 cmH2O or 2 uV
        return self.level_div * (2 if self.board.signal == "emg" else 1)

    def end_session(self, reason):
        sid = self.session
        if sid is None:
            return None
        ct = self.coach_task
        if ct is not None and reason != "done" and ct is not asyncio.current_task():
            ct.cancel()             # (the coach itself stops at its next step)
        self.coach_task = None
        t_end = self.board.ticks_ms()
        c = self.coach
        self._tail = []
        if c is not None:
            c.stop(t_end)
            while c.ready:
                v = c.ready.pop(0)
                self.verdicts.append(v)
                self._tail.append(v)          # streamed with the session-ended notice
                if reason != "full":
                    self._store_verdict(v)
        if reason != "full":
            self._write_block()
        self.session = None         # nothing more is appended
        try:
            sc = session_scores(self.verdicts, self.level_div, self.board.signal, self.board.unit,
                                c.mvc if c is not None else 0)
        except Exception as e:      # scores are a summary: never lose the session over them
            sc = {"error": "%s: %s" % (type(e).__name__, e)}
        # samples: what the file holds; not_stored: taken after the storage filled up
        summary = {"reason": reason, "samples": self.s_stored, "not_stored": self.s_index - self.s_gaps - self.s_stored,
                   "squeezes": self.s_squeezes,
                   "gaps": self.s_gaps, "t_end_ms": t_end, "program": self.program_name,
                   "program_done": reason == "done",
                   "pain": {"before": self.pain_got[0], "after": self.pain_got[1]},
                   "scores": sc}
        self.store.end(json.dumps(summary).encode())
        self.board.cue(programs.CUE_DONE, 0, 0)
        self._ended = (sid, reason)
        self.coach = None
        if reason == "full":
            self.board.alert("storage full")
        return sid

    def _store_verdict(self, v):
        n = P.pack_verdict(self.recbuf, 0, v)
        self._append(REC_VERDICT, self.recbuf, n)

    async def _verdicts(self, w):
        # w: the calling task's own frame writer (frames are built in place)
        c = self.coach
        while c is not None and c.ready:
            v = c.ready.pop(0)
            self.verdicts.append(v)
            if self.session is not None:
                self._store_verdict(v)
            if self.live.on:
                n = P.pack_verdict(w.payload, 0, v)
                await self._send_stream(w.frame(P.VERDICT, self.stream_seq, n))

    async def _cue(self, cue, phase, rep, reps, dur, tgt):
        t = self.board.ticks_ms()
        w = self.cw
        n = P.pack_cue(w.payload, 0, t, cue, phase, rep, reps, dur, tgt)
        self._append(REC_CUE, w.payload, n)
        if self.live.on:
            await self._send_stream(w.frame(P.CUE, self.stream_seq, n))
        self.board.cue(cue, dur, tgt)

    async def _checkin(self, when, sid):
        """Pain 0-10 before / after: short presses count, a long press (or
        3 s without a press) confirms; the host may answer instead (PAIN)."""
        b = self.board
        score = self.pain[when]
        src = 1
        if score is None:
            self.checkin = when
            await self._cue(programs.CUE_PAIN, 255, 0, 0, _PAIN_WAIT_MS, when)
            end = b.ticks_ms() + _PAIN_WAIT_MS
            count = 0
            last = -1
            while self.session == sid:
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
        if self.session != sid:
            return
        self._record_pain(when, score, src)
        await self._notice(P.N_PAIN, "%s %s" % (("before", "after")[when],
                                                "skipped" if score is None else score), self.cw)

    def _record_pain(self, when, score, src):
        self.pain_done[when] = True
        self.pain_got[when] = score
        struct.pack_into("<BBBI", self.recbuf, 0, when, _PAIN_SKIPPED if score is None else score, src,
                         self.board.ticks_ms())
        self._append(REC_PAIN, self.recbuf, 7)

    def _calibrated(self):
        """After a calibration: MVC = mean of her two strongest maximal
        squeezes (above the level before each); resting level = first rest."""
        cal = Calibration()
        for v in self.verdicts:
            if v[V_KIND] == programs.K_MVC and v[V_SEQ] != NA and v[V_AMP] != NA:
                cal.add_peak(v[V_AMP])
        rests = [v[V_MEAN] for v in self.verdicts if v[V_KIND] == programs.K_REST and v[V_MEAN] != NA]
        if cal.npeaks < 2:
            return "calibration failed: %d maximal squeeze%s found, 2 needed; run it again" % (
                cal.npeaks, "" if cal.npeaks == 1 else "s")
        self.mvc = cal.mvc()
        if rests:
            self.rest_level = rests[0]
        saved = self._save_settings()
        return "%d %d%s" % (self.mvc, self.rest_level, "" if saved else " (not saved: storage full)")

    async def _coach(self, phases, calibrating):
        b = self.board
        sid = self.session
        c = self.coach
        await self._notice(P.N_SESSION_STARTED, "%d %s" % (sid, self.program_name), self.cw)
        if not calibrating and self.mvc <= 0 and programs.has_squeeze_target(phases):
            await self._notice(P.N_NO_CALIBRATION, "no calibration yet: targets are % of your best squeeze "
                               "today; run the 'calibrate' program first", self.cw)
        await self._checkin(0, sid)
        for pi in range(len(phases)):
            k, reps, on, off, tgt, rule = phases[pi]
            for r in range(1, reps + 1):
                if self.session != sid:
                    return
                if k < programs.K_MVC:
                    c.window_start(b.ticks_ms(), pi, k, r, reps, off, self.chain.level)
                    await self._cue(programs.CUE_REST if k == programs.K_REST else programs.CUE_RELAX,
                                    pi, r, reps, off, 0)
                    await b.sleep_ms(off)
                    c.window_end(b.ticks_ms())
                else:
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
                        if left <= 0 or self.session != sid:
                            break
                        step = left if left < 200 else 200
                        await b.sleep_ms(step)
                        extra += step
                    c.finish(b.ticks_ms())
                if c.ready:
                    await self._verdicts(self.cw)
        if self.session != sid:
            return
        # the last rep's relaxation verdict may still be on its way
        end = b.ticks_ms() + 3000
        while c.closing and b.ticks_ms() < end:
            await b.sleep_ms(100)
        c.poll(end)
        await self._verdicts(self.cw)
        if calibrating:
            await self._notice(P.N_CALIBRATED, self._calibrated(), self.cw)
        await self._checkin(1, sid)
        self.coach_task = None
        if self.session == sid:
            await self._cue(programs.CUE_DONE, len(phases), 0, 0, 0, 0)
            self.end_session("done")

    # ---- host requests -------------------------------------------------

    async def _serve(self):
        link = self.board.link
        rx = self.rx
        inbuf = bytearray(256)
        while self.running:
            n = await link.readinto(inbuf)
            pos = 0
            while pos < n and self.running:
                st, pos = rx.feed(inbuf, pos, n)
                if st == P.R_FRAME:
                    try:
                        await self._handle(rx.mtype, rx.seq, rx.payload)
                    except Exception as e:      # a bug must not take the device down
                        await self._error(rx.seq, rx.mtype, P.E_INTERNAL, "%s: %s" % (type(e).__name__, e))
                elif st == P.R_BAD_CRC:
                    await self._error(rx.seq, 0, P.E_CRC, "frame CRC mismatch; resend")
                elif st == P.R_BAD_FRAME:
                    await self._error(0, 0, P.E_FRAME, "not a frame (too short, too long or bad COBS)")

    async def _reply(self, mtype, seq, data, w=None):
        await self.board.link.write((w or self.tx).message(mtype, seq, data))

    async def _ok(self, seq, req, extra=b""):
        await self._reply(P.OK, seq, bytes((req,)) + extra)

    async def _error(self, seq, req, code, text, w=None):
        if code in (P.E_CRC, P.E_FRAME):
            now = self.board.ticks_ms()
            if now - self._last_err < _ERR_GAP_MS:
                return               # garbage floods get one answer per interval
            self._last_err = now
        data = bytes((code, req)) + text.encode()[:200]
        await self._reply(P.ERROR, seq, data, w)

    def info(self):
        b = self.board
        pct, mv = b.battery()
        now = b.ticks_ms()
        sessions = self.store.list()
        d = {"protocol": P.VERSION, "firmware": FIRMWARE, "device": b.device_id, "board": b.name,
             "signal": b.signal, "unit": b.unit, "counts_per_unit": b.counts_per_unit,
             "rate_hz": b.rate_hz, "channels": b.channels,
             "battery_pct": pct, "battery_mv": mv,
             "storage_total": self.store.total(), "storage_free": self.store.free(),
             "sessions": len(sessions), "unsynced": sum(1 for s in sessions if s["closed"]),
             "clock_ms": None if self.epoch_ms is None else self.epoch_ms + now,
             "ticks_ms": now, "samples": self.n, "gaps": self.gaps,
             "ring": [self.board.ring.dropped, self.board.ring.missed, self._lost_seen],
             "state": "session" if self.session is not None else "idle",
             "session": self.session, "program": self.program_name if self.session is not None else None,
             "programs": self.program_names(), "custom_programs": sorted(self.custom),
             "program_errors": self.program_errors[:4],
             "mvc": self.mvc, "rest_level": self.rest_level, "level_div": self.level_div,
             "checkin": ("before", "after")[self.checkin] if self.checkin >= 0 else None,
             "storage_full": self.full,
             "recovered": [r[0] for r in self.recovered][:8]}
        d.update(b.extra_info())
        return d

    async def _handle(self, t, seq, p):
        n = len(p)
        if t == P.HELLO:
            if n < 1 or p[0] != P.VERSION:
                got = p[0] if n else 0
                await self._error(seq, t, P.E_VERSION,
                                  "device speaks protocol %d, host sent %d: update the host tool or the firmware"
                                  % (P.VERSION, got))
                return
            await self._reply(P.INFO, seq, json.dumps(self.info()).encode())
        elif t == P.GET_INFO:
            await self._reply(P.INFO, seq, json.dumps(self.info()).encode())
        elif t == P.PING:
            await self._reply(P.PONG, seq, bytes(p))
        elif t == P.SET_CLOCK:
            if n < 8:
                await self._error(seq, t, P.E_ARG, "SET_CLOCK needs u64 Unix milliseconds")
                return
            ms = struct.unpack_from("<Q", p, 0)[0]
            self.epoch_ms = ms - self.board.ticks_ms()
            await self._ok(seq, t)
        elif t == P.LIVE:
            if n < 3:
                await self._error(seq, t, P.E_ARG, "LIVE needs u8 on, u16 batch_ms")
                return
            on = p[0]
            batch_ms = p[1] | (p[2] << 8)
            if on:
                self.live.start(max(1, (batch_ms * self.board.rate_hz + 500) // 1000))
            else:
                self.live.on = False
            await self._ok(seq, t, struct.pack("<IH", self.n, self.live.batch))
        elif t == P.LIST:
            start = struct.unpack_from("<I", p, 0)[0] if n >= 4 else 0
            page = [s for s in self.store.list() if s["id"] >= start][:_LIST_MAX]
            await self._reply(P.SESSIONS, seq, json.dumps(page).encode())
        elif t == P.FETCH:
            if n < 12:
                await self._error(seq, t, P.E_ARG, "FETCH needs u32 id, u32 offset, u32 length")
                return
            if self.fetch_task is not None:
                await self._error(seq, t, P.E_BUSY, "a fetch is running; CANCEL it first")
                return
            sid, off, length = struct.unpack_from("<III", p, 0)
            self._fetch_no += 1
            self.fetch_task = asyncio.create_task(self._fetch(seq, sid, off, length, self._fetch_no))
        elif t == P.CANCEL:
            if self.fetch_task is not None:
                self.fetch_task.cancel()
                self.fetch_task = None
            await self._ok(seq, t)
        elif t == P.ACK:
            if n < 12:
                await self._error(seq, t, P.E_ARG, "ACK needs u32 id, u32 size, u32 crc32")
                return
            sid, size, crc = struct.unpack_from("<III", p, 0)
            if sid == self.session:
                await self._error(seq, t, P.E_BUSY, "session %d is still recording" % sid)
                return
            if not any(s["id"] == sid for s in self.store.list()):
                await self._error(seq, t, P.E_NOT_FOUND, "no session %d on the device" % sid)
                return
            try:
                self.store.delete(sid, size, crc)
            except StoreError as e:
                await self._error(seq, t, P.E_MISMATCH, str(e))
                return
            except OSError:
                await self._error(seq, t, P.E_NOT_FOUND, "no session %d on the device" % sid)
                return
            self.full = False
            await self._ok(seq, t)
        elif t == P.START:
            try:
                name = bytes(p).decode()
            except UnicodeError:
                await self._error(seq, t, P.E_ARG, "START needs a program name in UTF-8")
                return
            if self.program(name) is None:
                await self._error(seq, t, P.E_NOT_FOUND, "no program %r; the device has: %s"
                                  % (name, ", ".join(self.program_names())))
                return
            try:
                sid = self.start_session(name)
            except StoreFull as e:
                self.full = True
                await self._error(seq, t, P.E_FULL, str(e))
                return
            except StoreError as e:
                await self._error(seq, t, P.E_BUSY, str(e))
                return
            await self._ok(seq, t, struct.pack("<I", sid))
        elif t == P.STOP:
            sid = self.end_session("stopped")
            await self._ok(seq, t, struct.pack("<i", -1 if sid is None else sid))
        elif t == P.SET:
            try:
                d = json.loads(bytes(p))
                mvc = int(d.get("mvc", self.mvc))
            except (ValueError, AttributeError, TypeError):
                await self._error(seq, t, P.E_ARG, "SET needs a JSON object such as {\"mvc\": 800}")
                return
            if mvc < 0:
                await self._error(seq, t, P.E_ARG, "mvc must be >= 0 counts")
                return
            self.mvc = mvc
            self._save_settings()
            await self._ok(seq, t)
        elif t == P.PAIN:
            if n < 2 or p[0] > 1 or p[1] > 10:
                await self._error(seq, t, P.E_ARG, "PAIN needs u8 when (0 before, 1 after), u8 score 0-10")
                return
            if self.session is None:
                await self._error(seq, t, P.E_BUSY, "no session running: pain is stored with a session")
                return
            when = p[0]
            if self.pain_done[when]:
                self._record_pain(when, p[1], 1)      # a correction: the later record wins
            else:
                self.pain[when] = p[1]
            await self._ok(seq, t)
        elif t == P.PROGRAM:
            try:
                doc = json.loads(bytes(p))
            except ValueError:
                await self._error(seq, t, P.E_ARG, "PROGRAM needs a JSON object (see docs/COACHING.md)")
                return
            try:
                name = self.put_program(doc)
            except KeyError as e:
                await self._error(seq, t, P.E_NOT_FOUND, "no custom program %s on the device" % e)
                return
            except ValueError as e:
                await self._error(seq, t, P.E_ARG, str(e))
                return
            except OSError as e:
                await self._error(seq, t, P.E_FULL, str(e))
                return
            await self._ok(seq, t, name.encode())
        elif t == P.REPL:
            await self._ok(seq, t)
            self.running = False
        else:
            await self._error(seq, t, P.E_UNKNOWN, "unknown message type 0x%02x" % t)

    async def _fetch(self, seq, sid, off, length, no):
        store = self.store
        link = self.board.link
        w = self.data
        try:
            if sid == self.session:
                await self._error(seq, P.FETCH, P.E_BUSY, "session %d is still recording; STOP it or wait" % sid, w)
                return
            try:
                size = store.size(sid)
                crc = store.crc(sid)
            except (OSError, StoreError):
                await self._error(seq, P.FETCH, P.E_NOT_FOUND, "no session %d on the device" % sid, w)
                return
            end = size if length == 0 or off + length > size else off + length
            pos = off
            p = w.payload
            while pos < end:
                want = end - pos
                if want > _DATA_CHUNK:
                    want = _DATA_CHUNK
                struct.pack_into("<II", p, 0, sid, pos)
                try:
                    got = store.read(sid, pos, p[8:8 + want])
                except (OSError, StoreError):
                    await self._error(seq, P.FETCH, P.E_NOT_FOUND, "session %d went away during the fetch" % sid, w)
                    return
                if got <= 0:
                    break
                await link.write(w.frame(P.DATA, seq, 8 + got))
                pos += got
            struct.pack_into("<IIII", p, 0, sid, pos, size, crc)
            await link.write(w.frame(P.DONE, seq, 16))
        except OSError:
            pass                     # the host went away; it resumes by offset
        finally:
            if self._fetch_no == no:
                self.fetch_task = None
