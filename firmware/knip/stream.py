# What the device sends unasked: live samples, events, cues, verdicts and
# notices, numbered by one sequence. A write that fails means nobody is
# listening: the stream turns itself off until the host asks again (LIVE).
from knip import protocol as P
from knip.samples import LiveEncoder


class Stream:
    def __init__(self, board):
        self.board = board
        self.samples = LiveEncoder(board.channels)
        self.seq = 0

    @property
    def on(self):
        return self.samples.on

    async def send(self, frame):
        self.seq = (self.seq + 1) & 0xFF
        try:
            await self.board.link.write(frame)
        except OSError:
            self.samples.on = False

    async def message(self, mtype, w, n):
        """Send w's payload of n bytes (w: the calling task's FrameWriter)."""
        await self.send(w.frame(mtype, self.seq, n))

    async def notice(self, code, text, w):
        if not self.samples.on:
            return
        data = text.encode()
        w.payload[0] = code
        w.payload[1:1 + len(data)] = data
        await self.send(w.frame(P.NOTICE, self.seq, 1 + len(data)))

    async def verdict(self, v, w):
        if self.samples.on:
            await self.message(P.VERDICT, w, P.pack_verdict(w.payload, 0, v))
