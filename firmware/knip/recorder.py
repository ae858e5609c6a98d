# The open session's file: its header, the samples in blocks of 200, the
# records (events, cues, gaps, pain, verdicts) and its summary. Blocks are
# written as they fill and the store is flushed every 15 s, never per sample.
# A full flash ends the session through on_full; what was written stays.
import json
import struct

from knip.fixed import const
from knip import protocol as P
from knip.samples import SampleBlock
from knip.store import (StoreFull, REC_SAMPLES, REC_GAP, REC_PAIN, REC_VERDICT, MAX_PAYLOAD)

_FLUSH_MS = const(15000)       # store flush at least this often while recording
_PAIN_SKIPPED = const(255)
# the summary when the heap has no room for the real one (docs/PROTOCOL.md 6.8)
_NO_SUMMARY = b'{"reason": "memory", "summary_lost": true}'


class Recorder:
    def __init__(self, store, board):
        self.store = store
        self.board = board
        self.block = SampleBlock(board.channels, board.rate_hz, MAX_PAYLOAD)
        self.buf = bytearray(256)
        self.id = None              # open session id
        self.index = 0              # samples in the open session
        self.stored = 0             # of those, written to the file
        self.gaps = 0               # of those, lost before they reached the app
        self.squeezes = 0           # squeezes the detector found in it
        self.full = False           # the last session ended (or could not start) on a full flash
        self.last_flush = 0
        self.on_full = None         # called (no arguments) when the flash fills up

    def begin(self, header, t0):
        self.id = self.store.begin(json.dumps(header).encode())
        self.full = False
        self.index = 0
        self.stored = 0
        self.gaps = 0
        self.squeezes = 0
        self.last_flush = t0
        return self.id

    def append(self, rtype, buf, n):
        if self.id is None:
            return False
        try:
            self.store.append(rtype, buf, n)
            return True
        except StoreFull:
            self.full = True
            self.on_full()
            return False

    def room(self):
        """Samples until the block is written (then a full flash may end the session)."""
        return self.block.room()

    def samples(self, ring, i, m):
        """m samples from slot i of the ring's arrays, m <= room()."""
        if self.block.add_run(self.index, ring, i, m):
            self.write_block()      # (a full flash ends the session here)
        self.index += m

    def write_block(self):
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
            if not self.append(REC_SAMPLES, blk.buf, m):
                return
            self.stored += k
            i0 += k

    def flush_due(self, now):
        if now - self.last_flush >= _FLUSH_MS:
            self.flush(now)

    def flush(self, now):
        self.last_flush = now
        self.write_block()
        if self.id is not None:
            self.store.flush()

    def gap(self, missing):
        """missing samples never reached the app: a REC_GAP after the block so far."""
        self.write_block()
        self.gaps += missing
        struct.pack_into("<II", self.buf, 0, self.index, missing)
        self.append(REC_GAP, self.buf, 8)
        self.index += missing

    def verdict(self, v):
        self.append(REC_VERDICT, self.buf, P.pack_verdict(self.buf, 0, v))

    def pain(self, when, score, src, t):
        struct.pack_into("<BBBI", self.buf, 0, when, _PAIN_SKIPPED if score is None else score, src, t)
        self.append(REC_PAIN, self.buf, 7)

    def not_stored(self):
        """Samples taken after the flash filled up."""
        return self.index - self.gaps - self.stored

    def end(self, summary):
        """Close the file with its summary; nothing more is appended. With
        no heap left for the summary, a short fixed one closes it; if even
        that fails the session stays open (id kept), so a caller can retry
        or restart the board, whose recover() closes it."""
        try:
            body = json.dumps(summary).encode()
        except MemoryError:
            body = _NO_SUMMARY
        try:
            self.store.end(body)
        finally:
            if self.store.open_id is None:     # closed, or given up to recover()
                self.id = None
