# A scripted host drives the whole application on the virtual trainer with
# the virtual clock: calibrate (pain before from the host, after from the
# buttons), live stream on, sync and ACK, a custom program stopped midway,
# a bad frame, then REPL. Every byte the device sends and every file it
# keeps go to OUT, so a test can check that a refactor changes none of them.
#   micropython golden_app.py IMAGE OUT [SIGNAL]
import sys
import os
import json
import struct
import asyncio

from knip import protocol as P
from simboard.board import SimBoard
from scripted_host import ScriptedHost

_CUSTOM = {"name": "golden", "title": "Golden: two short holds",
           "phases": [{"kind": "rest", "seconds": 3},
                      {"kind": "hold", "reps": 2, "squeeze_s": 3, "rest_s": 3, "target_pct": 40}]}


class ScriptLink(ScriptedHost):
    """Every device byte kept in .wire, every reply and notice in .seen."""

    def __init__(self, board, wire):
        super().__init__(board)
        self.wire = wire         # a file: every byte the device sends
        self.seen = []           # (mtype, payload bytes) of every device frame but samples

    def on_device_bytes(self, data):
        self.wire.write(data)

    def on_device_frame(self, mtype, seq, payload):
        if mtype not in (P.SAMPLES, P.SAMPLES_KEY):
            self.seen.append((mtype, payload))     # (samples only go to the file)

    def last(self, mtype):
        for t, p in reversed(self.seen):
            if t == mtype:
                return p
        return None


async def script(app, link):
    b = app.board
    link.request(P.HELLO, bytes((P.VERSION,)))
    link.request(P.SET_CLOCK, struct.pack("<Q", 1767225600000))
    link.request(P.LIVE, bytes((1, 100, 0)))
    link.request(P.PROGRAM, json.dumps(_CUSTOM).encode())
    link.request(P.START, b"calibrate")
    await b.sleep_ms(200)
    link.request(P.PAIN, bytes((0, 3)))
    link.request(P.ACK, struct.pack("<III", 0, 1, 2))        # still recording: refused
    while link.ended < 1:
        await b.sleep_ms(100)
    await b.sleep_ms(500)
    link.request(P.LIST)
    link.request(P.FETCH, struct.pack("<III", 0, 0, 0))
    while link.last(P.DONE) is None:
        await b.sleep_ms(10)
    sid, _end, size, crc = struct.unpack("<IIII", link.last(P.DONE))
    link.request(P.ACK, struct.pack("<III", sid, size, crc ^ 1))     # wrong CRC: kept
    link.request(P.ACK, struct.pack("<III", sid, size, crc))
    link.request(P.START, b"golden")
    await b.sleep_ms(8000)
    link.request(P.STOP)
    await b.sleep_ms(500)
    link.inbox.append(b"\x05\x01\x02\x03\x04\x00")                  # a frame with a bad CRC
    link.request(P.SET, b'{"mvc": 1234}')
    link.request(P.GET_INFO)
    link.request(P.PROGRAM, b'{"remove": "golden"}')
    link.request(P.LIST)
    await b.sleep_ms(500)
    link.request(P.REPL)


def _copy_tree(src, dst):
    for name, kind, *_ in os.ilistdir(src):
        s = src + "/" + name
        d = dst + "/" + name.replace("/", "_")
        if kind == 0x4000:
            try:
                os.mkdir(d)
            except OSError:
                pass
            _copy_tree(s, d)
        else:
            with open(s, "rb") as f, open(d, "wb") as g:
                g.write(f.read())


def main():
    image, out = sys.argv[1], sys.argv[2]
    signal = sys.argv[3] if len(sys.argv) > 3 else "pressure"
    from knip.app import App
    board = SimBoard(image, seed=7, user="typical", signal=signal, clock="virtual")
    # the store's id is drawn at random when the store is created: a fixed
    # one here, so that INFO and the session header are the same every run
    try:
        os.mkdir(board.fs_root)
    except OSError:
        pass
    with open(board.fs_root + "/store", "wb") as f:
        f.write(b"60d1e000")
    # INFO's heap_free depends on this process (argv paths and all), not on
    # the firmware's bytes: left out here so the golden run stays the same
    board.report_heap = False
    wire = open(out + "/wire.bin", "wb")
    link = ScriptLink(board, wire)
    board.link = link
    app = App(board)
    loop = asyncio.get_event_loop()
    loop.create_task(script(app, link))
    loop.run_until_complete(app.run())
    wire.close()
    _copy_tree("/flash", out)
    print("frames", len(link.seen), "bytes", link.sent, "board ms", board.ticks_ms())


if __name__ == "__main__":
    main()
