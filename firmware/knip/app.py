# The trainer application, wired along the data flow: sampler ring -> signal
# chain and detector -> coach -> recorder (the session file) and stream (the
# live link). Runs on any board object (docs/BOARD.md): the ESP32 boards and
# the virtual trainer's simulated board. Three asyncio tasks: the sample
# loop here, the protocol server (server.py) and the program being run
# (runner.py), plus a fetch task while the host syncs.
import asyncio
import gc

from knip.fixed import const
from knip import protocol as P
from knip.chain import PressureChain, EmgChain
from knip.record import (EV_START, EV_PEAK, EV_END, EV_RELAXED, EV_NOT_RELAXED,
                         EV_ABD_START, EV_ABD_END, KIND_SQUEEZE, R_KIND)
from knip.store import SessionStore, REC_EVENT
from knip.recorder import Recorder
from knip.stream import Stream
from knip.settings import Settings, ProgramShelf
from knip.runner import ProgramRunner
from knip.server import ProtocolServer

FIRMWARE = "0.4.0"

_EMG_LEVEL = const(16)         # the EMG envelope is in 1/16 counts
_FINAL = EV_END | EV_RELAXED | EV_NOT_RELAXED
_LIVE_EV = EV_START | EV_PEAK
_OOM_PAUSE_MS = const(100)     # after a MemoryError in a task: this long before it goes on
_GC_BUDGET = const(65536)      # a collection after every this many bytes allocated (gc.threshold)


def make_chain(board):
    two = board.channels > 1
    if board.signal == "emg":
        return EmgChain(board.rate_hz, two_channel=two)
    return PressureChain(board.rate_hz, two_channel=two)


class App:
    def __init__(self, board):
        self.board = board
        self.firmware = FIRMWARE
        self.store = SessionStore(board.fs_root)
        self.recovered = self.store.recover()
        self.chain = make_chain(board)
        self.level_div = board.counts_per_unit * (_EMG_LEVEL if board.signal == "emg" else 1)
        root = board.fs_root.rsplit("/", 1)[0] or "/"
        self.settings = Settings(root)
        self.shelf = ProgramShelf(root)
        self.stream = Stream(board)
        self.recorder = Recorder(self.store, board)
        self.runner = ProgramRunner(board, self.chain, self.recorder, self.stream, self.settings,
                                    self.shelf, FIRMWARE, self.level_div)
        self.server = ProtocolServer(self)
        self.ev = P.FrameWriter(256)    # events and notices (the sample task)
        self.n = 0                  # samples processed since boot
        self.gaps = 0               # samples lost since boot
        self.lost_seen = 0
        # A collection stops Python (and so the sampler's soft IRQs, which
        # queue in 8 slots) for as long as it takes to mark what is live and
        # sweep the heap up to its highest block in use. Left alone, the
        # collector waits until the heap is full: on a 4 MB PSRAM heap that
        # is MBs to sweep, a pause of 0.1 s and more. With a threshold it
        # collects after every _GC_BUDGET bytes allocated, so the heap in use
        # at a collection stays below what is live + _GC_BUDGET and every
        # pause is short and predictable (docs/FROZEN.md has the model).
        # The application never asks for the free heap on its own: that
        # walks the whole allocation table, as long as a full sweep.
        gc.collect()
        th = getattr(gc, "threshold", None)     # (CPython, for the tests, has none)
        if th is not None:
            th(_GC_BUDGET)

    @property
    def session(self):
        """The id of the session being recorded, or None."""
        return self.recorder.id

    def start_session(self, name):
        return self.runner.start(name)

    def end_session(self, reason):
        return self.runner.end(reason)

    async def run(self):
        b = self.board
        b.start()
        proc = asyncio.create_task(self.process())
        try:
            while True:
                try:
                    await self.server.serve()       # returns on the REPL request
                    break
                except MemoryError:
                    # (a handler's own MemoryError is answered E_INTERNAL;
                    # this is one while reading or answering): as in
                    # process(), and the board restarts once idle
                    await self._out_of_memory("the protocol task", True)
        finally:
            proc.cancel()
            if self.recorder.id is not None:
                self.runner.end("stopped")
            b.stop()

    # ---- samples -------------------------------------------------------

    async def process(self):
        # MemoryError in the sample loop ends the session (kept, reason
        # "memory") and the loop goes on: the end is announced to the host
        # and samples keep flowing. Were the task left to die, nothing would
        # announce the end and the host would wait for ever.
        while True:
            try:
                await self._samples()
            except MemoryError:
                await self._out_of_memory("the sample task", False)
            except Exception as e:      # a bug or a failing driver: said, never a silent stop
                await self._sample_error(e)

    def end_for_memory(self):
        """End the running session with reason "memory", keeping it; returns
        its id, or None when none ended. The heap is short: up to 3 tries, a
        collection between. A file that still will not close makes the board
        restart once idle (store.recover closes it then) rather than every
        later START being refused. (Boards call it too: boot.wire.)"""
        sid = self.recorder.id
        for _ in range(3):
            if self.recorder.id is None:
                break
            try:
                self.end_session("memory")
            except MemoryError:
                gc.collect()
        if self.store.open_id is None:
            return sid
        later = getattr(self.board, "restart_when_idle", None)
        if later is not None:
            later(True)
        return None

    async def _sample_error(self, e):
        """Anything but MemoryError out of the sample loop: the running
        session ends with reason "error" (kept; announced as the loop goes
        on), the board keeps the text among its alerts (INFO), and the loop
        starts again after a pause: samples keep flowing, the host is told."""
        text = "error in the sample task: %s: %s" % (type(e).__name__, e)
        try:
            if self.recorder.id is not None:
                self.end_session("error")
        except Exception as e2:         # the file still closes at the next start (store.recover)
            text += "; the session did not close: %s" % (type(e2).__name__,)
        alert = getattr(self.board, "alert", None)
        if alert is not None:
            alert(text)
        await self.board.sleep_ms(_OOM_PAUSE_MS)

    async def _out_of_memory(self, where, restart):
        gc.collect()
        b = self.board
        oom = getattr(b, "out_of_heap", None)   # the ESP32 boards: LED pattern, INFO alert
        try:
            if oom is not None:
                oom("out of memory in " + where, restart)   # ends the session (end_for_memory)
        except MemoryError:
            gc.collect()
        self.end_for_memory()       # a board without out_of_heap, or it failed before
        await b.sleep_ms(_OOM_PAUSE_MS)     # never a busy loop, however often it fails

    async def _samples(self):
        b = self.board
        ring = b.ring
        rt, rx, ra = ring.t, ring.x, ring.a
        size = ring.size
        chain = self.chain
        lp = chain.signal == "pressure"
        rec = self.recorder
        stream = self.stream
        live = stream.samples
        convert = getattr(b, "convert", None)   # boards whose sampler stores raw readings
        while True:
            await b.wait_samples()
            # Take what is in the ring now; anything lost while it was full
            # came after these samples, so the gap is recorded after them.
            lost = ring.dropped + ring.missed
            end = ring.head
            if convert is not None and ring.tail != end:
                convert(ring.tail, end)
            while ring.tail != end:
                # A run: the chain takes as many samples in a row as it can
                # in one go (EMG: up to its envelope block's end; pressure:
                # one), and only the last of them can raise events.
                i = ring.tail
                lv = chain.level
                # a method call, not a bound method kept in a local: calling
                # one of those with over 4 arguments puts them on the heap
                m = chain.feed(rt, rx, ra, i, (end if end > i else size) - i)
                fl = chain.flags
                self.n += m
                if rec.id is not None:
                    c = self.runner.coach
                    if c is not None and m <= rec.room():
                        # the coach, then the file (whose block may fill, and a
                        # full flash end the session, at the run's last sample)
                        if m == 1:
                            # (sample_run's frame would come from the heap)
                            c.sample(rt[i], chain.level)
                        else:
                            c.sample_run(rt, i, m, lv, chain.level)
                        rec.samples(ring, i, m)
                    else:
                        self._record(ring, i, m, lv)
                ring.skip(m)
                # pressure streams live as the detector sees it (low-passed:
                # smoother bars, a third of the bytes); EMG streams raw
                if live.on:
                    if lp:
                        if live.add(chain.level, chain.alevel):
                            await stream.send(live.frame(stream.seq))
                    else:
                        j = 0
                        while j < m:
                            j += live.take(rx, ra, i + j, m - j)
                            if live.n >= live.batch:
                                await stream.send(live.frame(stream.seq))
                if fl:
                    await self._events(fl, rt[i + m - 1])
            if lost != self.lost_seen:
                missing = lost - self.lost_seen
                self.lost_seen = lost       # first: a MemoryError in the notice must not record it twice
                await self._gap(missing)
            runner = self.runner
            c = runner.coach
            if c is not None:
                c.poll(b.ticks_ms())
                if c.ready:
                    await runner.send_verdicts(self.ev)
            if rec.id is not None:
                rec.flush_due(b.ticks_ms())
            if runner.ended is not None:
                await self._announce_end()

    def _record(self, ring, i, m, lv):
        """A run of m samples from ring slot i to the coach and the session
        file, in the order one sample at a time would have them: the coach
        sees the level the chain had before the run (lv) for all but the
        last, which sees the level now; the file's block may fill inside
        the run, and a full flash end the session there."""
        rec = self.recorder
        rt = ring.t
        level = self.chain.level
        while m and rec.id is not None:
            c = self.runner.coach
            q = rec.room()
            if q > m:
                q = m
            if c is not None:
                if q == m:
                    c.sample_run(rt, i, q, lv, level)
                else:
                    c.samples(rt, i, q, lv)
            rec.samples(ring, i, q)
            i += q
            m -= q

    async def _announce_end(self):
        runner = self.runner
        sid, reason = runner.ended
        runner.ended = None
        stream = self.stream
        while runner.tail and stream.on:
            await stream.verdict(runner.tail.pop(0), self.ev)
        runner.tail = []
        await stream.notice(P.N_SESSION_ENDED, "%d %s" % (sid, reason), self.ev)
        if reason == "full":
            await stream.notice(P.N_STORAGE_FULL, "storage full: session saved; sync to free space", self.ev)

    async def _gap(self, missing):
        self.gaps += missing
        if self.recorder.id is not None:
            self.recorder.gap(missing)
        await self.stream.notice(P.N_GAP, "%d samples lost" % missing, self.ev)

    async def _events(self, fl, t):
        det = self.chain.det
        c = self.runner.coach
        if c is not None:
            st = det.state
            if fl & _FINAL:
                c.event(fl & _FINAL, t, det.done, st)
            if fl & _LIVE_EV:
                c.event(fl & _LIVE_EV, t, det.cur, st)
            if fl & EV_ABD_END:
                c.event(EV_ABD_END, t, det.abd, st)
        live = fl & _LIVE_EV
        if live:
            await self._event(live, t, det.cur)
        fin = fl & _FINAL
        if fin:
            if fl & EV_END and det.done[R_KIND] == KIND_SQUEEZE:
                self.recorder.squeezes += 1
            await self._event(fin, t, det.done)
        for f in (EV_ABD_START, EV_ABD_END):
            if fl & f:
                await self._event(f, t, det.abd)

    async def _event(self, flags, t, rec):
        w = self.ev
        n = P.pack_event(w.payload, 0, flags, t, rec)
        if self.recorder.id is not None:
            self.recorder.append(REC_EVENT, w.payload, n)
        if self.stream.on:
            await self.stream.message(P.EVENT, w, n)
