# The host side of a link, scripted inside the test on the virtual clock:
# requests queue as frame bytes for the device's readinto(), and every byte
# the device writes is parsed back into frames for on_device_frame().
# golden_app.py and faults_app.py build on it.
from knip import protocol as P


class ScriptedHost:
    def __init__(self, board):
        self.board = board
        self.rx = P.FrameReader()
        self.w = P.FrameWriter()
        self.seq = 0
        self.inbox = []          # request bytes not yet read by the device
        self.sent = 0            # bytes the device wrote
        self.ended = 0           # session-ended notices seen

    def request(self, mtype, data=b""):
        self.seq = (self.seq + 1) & 0xFF
        self.inbox.append(bytes(self.w.message(mtype, self.seq, data)))
        return self.seq

    async def readinto(self, buf):
        while not self.inbox:
            await self.board.sleep_ms(10)
        data = self.inbox[0]
        n = len(buf)
        if len(data) <= n:
            self.inbox.pop(0)
            n = len(data)
        else:                    # the rest of the frame on the next read
            self.inbox[0] = data[n:]
        buf[:n] = data[:n]
        return n

    async def write(self, data):
        self.on_device_bytes(data)
        self.sent += len(data)
        pos = 0
        rx = self.rx
        while pos < len(data):
            st, pos = rx.feed(data, pos, len(data))
            if st == P.R_FRAME:
                p = bytes(rx.payload)
                if rx.mtype == P.NOTICE and p and p[0] == P.N_SESSION_ENDED:
                    self.ended += 1
                self.on_device_frame(rx.mtype, rx.seq, p)

    def on_device_bytes(self, data):
        pass

    def on_device_frame(self, mtype, seq, payload):
        pass
