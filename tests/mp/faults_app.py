# Fault figures (issue 14, item 8), device side, run under the MicroPython
# unix port: the whole App in-process on SimBoard with the virtual clock and
# a scripted host link (the golden_app.py pattern), flash in RAM.
#   micropython faults_app.py sync  [SECONDS]        cut a FETCH after every DATA frame, resume
#   micropython faults_app.py power [SECONDS] [STRIDE] power cut after every n-th flash write
#   micropython faults_app.py fuzz  [FRAMES] [SEED]  random and mutated frames into the server
#   micropython faults_app.py soak  [HOURS] [MIN]        programs back to back, live on, heap over time
# Each prints one line "RESULT <json>" for bench/faults.py.
import sys
import gc
import os
import json
import struct
import asyncio
import random
import binascii
from array import array

from knip import protocol as P
import simboard.board as SB
from simboard.board import SimBoard
from simboard.blockdev import BlockDev
from scripted_host import ScriptedHost

_BLOCKS = 128                   # 512 KB of flash: enough, and cheap to copy per power cut


def _prog(seconds):
    # a short custom session: rest, then holds, about `seconds` long
    reps = max(1, (seconds - 3) // 6)
    return {"name": "fault", "title": "Fault figures",
            "phases": [{"kind": "rest", "seconds": 3},
                       {"kind": "hold", "reps": reps, "squeeze_s": 3, "rest_s": 3, "target_pct": 40}]}


class Link(ScriptedHost):
    """Replies kept for ask(), stream frames to on_frame when set."""

    def __init__(self, board):
        super().__init__(board)
        self.frames = []        # (mtype, seq, payload) of replies (not stream frames)
        self.internal = []      # E_INTERNAL messages
        self.on_frame = None

    def on_device_frame(self, t, seq, p):
        if t == P.ERROR and p and p[0] == P.E_INTERNAL:
            self.internal.append(p[2:].decode())
        if self.on_frame is not None:
            self.on_frame(t, seq, p)
        elif t < P.SAMPLES:
            self.frames.append((t, seq, p))

    def take(self, seq, mtype):
        for i, f in enumerate(self.frames):
            if f[1] == seq:
                del self.frames[i]
                return f
        return None

    async def ask(self, mtype, data=b""):
        seq = self.request(mtype, data)
        while True:
            f = self.take(seq, mtype)
            if f is not None:
                return f
            await self.board.sleep_ms(10)


def _setup(blocks=_BLOCKS):
    board = SimBoard(None, seed=7, user="typical", signal="pressure", clock="virtual", blocks=blocks)
    link = Link(board)
    board.link = link
    from knip.app import App
    app = App(board)
    return board, link, app


def _run(app, coro):
    loop = asyncio.get_event_loop()
    loop.create_task(app.run())
    res = loop.run_until_complete(coro)
    return res


async def _record(board, link, seconds):
    await link.ask(P.SET_CLOCK, struct.pack("<Q", 1767225600000))
    await link.ask(P.LIVE, bytes((1, 100, 0)))      # notices (session ended) need live on
    await link.ask(P.PROGRAM, json.dumps(_prog(seconds)).encode())
    e = link.ended
    await link.ask(P.START, b"fault")
    while link.ended == e:
        await board.sleep_ms(100)
    await board.sleep_ms(300)
    t, _s, p = await link.ask(P.LIST)
    return json.loads(p)[-1]["id"]


async def _fetch(board, link, sid, offset, cut=-1):
    """FETCH from `offset`; with cut >= 0 the link drops after `cut` DATA
    frames (the rest of the reply is lost). Returns [(offset, bytes)], done."""
    got = []
    state = [None, 0]

    def on_frame(t, seq, p):
        if seq != state[1] or t >= P.SAMPLES:
            return
        if t == P.DATA:
            if cut < 0 or len(got) < cut:
                got.append((struct.unpack_from("<I", p, 4)[0], p[8:]))
        elif t in (P.DONE, P.ERROR, P.OK):
            state[0] = (t, p)

    link.on_frame = on_frame
    state[1] = link.request(P.FETCH, struct.pack("<III", sid, offset, 0))
    while True:
        if cut >= 0 and len(got) >= cut:
            link.request(P.CANCEL)          # what the host's next connection does
            state[1] = link.seq
            state[0] = None
            while state[0] is None:
                await board.sleep_ms(10)
            break
        if state[0] is not None:
            break
        await board.sleep_ms(10)
    link.on_frame = None
    return got, state[0]


def sync(seconds=60, out=None):
    board, link, app = _setup()
    kept = []               # a few live stream frames, for the host-side fuzz

    def keep(t, seq, p):
        if t >= P.SAMPLES and len(kept) < 64:
            kept.append([t, binascii.hexlify(p).decode()])
        elif t < P.SAMPLES:
            link.frames.append((t, seq, p))

    async def go():
        link.on_frame = keep
        sid = await _record(board, link, seconds)
        link.on_frame = None
        ref, done = await _fetch(board, link, sid, 0)
        whole = b"".join(c for _o, c in ref)
        with open(board.fs_root + "/%08x.kss" % sid, "rb") as f:
            disk = f.read()
        assert whole == disk, "the plain fetch differs from the file"
        if out:
            with open(out + ".kss", "wb") as f:
                f.write(disk)
            with open(out + ".json", "w") as f:
                f.write(json.dumps(kept))
        k_all = len(ref)
        bad = lost = dup = 0
        for k in range(k_all + 1):
            part, _st = await _fetch(board, link, sid, 0, cut=k)
            have = bytearray()
            dup_k = 0
            for off, c in part:
                if off != len(have):
                    raise AssertionError("out of order DATA at %d" % off)
                have += c
            rest, st = await _fetch(board, link, sid, len(have))     # resume where the host's file ends
            if st[0] != P.DONE:
                raise AssertionError("resume ended with %r" % (st,))
            for off, c in rest:
                if off < len(have):
                    dup_k += len(have) - off
                    c = c[len(have) - off:]
                    off = len(have)
                if off > len(have):
                    lost += off - len(have)
                    have += b"\0" * (off - len(have))
                have += c
            _sid, end, size, crc = struct.unpack("<IIII", st[1])
            if len(have) < len(disk):
                lost += len(disk) - len(have)
            dup += dup_k
            if bytes(have) != disk or binascii.crc32(have) != crc or size != len(disk):
                bad += 1
        return {"session_bytes": len(disk), "data_frames": k_all, "boundaries": k_all + 1,
                "mismatched": bad, "lost_bytes": lost, "duplicated_bytes": dup,
                "internal_errors": len(link.internal)}

    return _run(app, go())


class _LogDev(BlockDev):
    """Records every program and erase, with what the store had at that moment."""
    log = []
    probe = None

    def writeblocks(self, b, buf, off=None):
        _LogDev.log.append((b * self.bs + (off or 0), bytes(buf), _LogDev.probe()))
        BlockDev.writeblocks(self, b, buf, off)

    def ioctl(self, op, arg):
        if op == 6:
            _LogDev.log.append((arg * self.bs, None, _LogDev.probe()))
        return BlockDev.ioctl(self, op, arg)


def power(seconds=60, stride=1):
    import vfs
    from knip import store as S
    dev_box = []

    def logmount(path, point, bs, blocks):
        dev = _LogDev(None, bs, blocks)
        try:
            fs = vfs.VfsLfs2(dev)
        except OSError:
            vfs.VfsLfs2.mkfs(dev)
            fs = vfs.VfsLfs2(dev)
        vfs.mount(fs, point)
        dev_box.append(dev)
        return dev

    SB.mount = logmount
    durable = []                  # (sid, durable bytes, board ms) after each write-out
    st_box = [None]
    bb = []
    orig = S.SessionStore._write_out

    def write_out(self):
        orig(self)
        st_box[0] = self
        durable.append((self._sid, self._base, bb[0].ticks_ms()))

    S.SessionStore._write_out = write_out

    def probe():
        if not bb:
            return (None, 0, 0, 0, 0)
        board = bb[0]
        s = st_box[0]
        d = durable[-1] if durable else (None, 0, 0)
        if s is None or s._f is None:
            return (d[0], d[1], d[1], board.ticks_ms(), len(durable))
        return (s._sid, d[1] if d[0] == s._sid else 0, s._base + s._pos, board.ticks_ms(), len(durable))

    _LogDev.probe = probe
    board, link, app = _setup()
    bb.append(board)
    start_ops = [0]

    async def go():
        await link.ask(P.SET_CLOCK, struct.pack("<Q", 1767225600000))
        await link.ask(P.PROGRAM, json.dumps(_prog(seconds)).encode())
        start_ops[0] = len(_LogDev.log)
        sid = await _record(board, link, seconds)
        return sid

    sid = _run(app, go())
    S.SessionStore._write_out = orig
    log = _LogDev.log
    dev = dev_box[0]
    with open(board.fs_root + "/%08x.kss" % sid, "rb") as f:
        ref = f.read()
    from knip.store import iter_records as _ir
    ends = [off + len(pl) + 7 for _t, pl, off in _ir(ref)]
    # replay from blank flash to each cut point
    img = bytearray(b"\xff" * (dev.bs * dev.n))
    ff = b"\xff" * dev.bs
    first = start_ops[0]
    n_ops = len(log)
    cuts = tried = failed = 0
    max_loss = max_loss_ms = 0
    loss_sum = 0
    fails = []
    for i in range(n_ops + 1):
        if i > 0:
            off, data, _p = log[i - 1]
            if data is None:
                img[off:off + dev.bs] = ff
            else:
                img[off:off + len(data)] = data
        if i < first or ((i - first) % stride and i != n_ops):
            continue
        # the state when write i (the first one lost) was about to happen
        if i < n_ops:
            psid, dur, appended, now, _nd = log[i][2]
        else:
            psid, dur, appended, now = sid, len(ref), len(ref), board.ticks_ms()
        if psid != sid:
            dur = appended = 0
        dur = max([e for e in ends if e <= dur] or [0])     # complete records only
        tried += 1
        ok, why, valid = _check_cut(bytes(img), dev, sid, ref, dur)
        if not ok:
            failed += 1
            if len(fails) < 5:
                fails.append("write %d: %s" % (i, why))
            continue
        loss = appended - valid if appended > valid else 0
        loss_sum += loss
        if loss > max_loss:
            max_loss = loss
        # board time since the last write-out that made `valid` bytes durable
        t_dur = 0
        for d in durable:
            if d[0] == sid and d[1] <= valid:
                t_dur = d[2]
        if psid == sid and now - t_dur > max_loss_ms and valid < len(ref):
            max_loss_ms = now - t_dur
    return {"session_bytes": len(ref), "flash_writes": n_ops - first, "stride": stride,
            "cuts_tried": tried, "cuts_failed": failed, "failures": fails,
            "max_lost_bytes": max_loss, "mean_lost_bytes": loss_sum // max(1, tried),
            "max_lost_ms": max_loss_ms, "samples_per_s": board.rate_hz}


def _check_cut(image, like, sid, ref, dur):
    import vfs
    from knip.store import SessionStore, scan, iter_records, REC_RECOVERED
    dev = BlockDev(None, like.bs, like.n, image)
    try:
        fs = vfs.VfsLfs2(dev)
    except OSError as e:
        return False, "littlefs does not mount (%s)" % e, 0
    vfs.mount(fs, "/cut")
    try:
        try:
            os.stat("/cut/sessions")
        except OSError:
            return (dur == 0), "no store directory", 0
        st = SessionStore("/cut/sessions")
        st.recover()
        path = "/cut/sessions/%08x.kss" % sid
        try:
            with open(path, "rb") as f:
                got = f.read()
        except OSError:
            return (dur == 0), "session file missing with %d bytes flushed" % dur, 0
        valid, _n, closed, err = scan(got)
        if dur == 0 and valid == 0:
            return True, "", 0          # header not yet durable: an empty/bad file is fair
        if err is not None or not closed:
            return False, "recovered file: %s closed=%s" % (err, closed), valid
        # the recovered file = a prefix of the reference, then REC_RECOVERED (or the end)
        keep = valid
        for rtype, _pl, off in iter_records(got):
            keep = off if rtype == REC_RECOVERED else valid
        if got[:keep] != ref[:keep]:
            return False, "recovered bytes differ from the recorded ones", keep
        if keep < dur:
            return False, "lost flushed bytes: kept %d of %d durable" % (keep, dur), keep
        return True, "", keep
    finally:
        vfs.umount("/cut")


def fuzz(frames=100000, seed=1):
    board, link, app = _setup()
    rnd = random.Random(seed) if hasattr(random, "Random") else None
    random.seed(seed)
    rb = random.getrandbits

    def rbytes(n):
        return bytes(rb(8) for _ in range(n))

    seeds = [(P.HELLO, bytes((P.VERSION,))), (P.GET_INFO, b""), (P.PING, b"knip"),
             (P.SET_CLOCK, struct.pack("<Q", 1767225600000)), (P.LIVE, bytes((1, 100, 0))),
             (P.LIST, struct.pack("<I", 0)), (P.FETCH, struct.pack("<III", 0, 0, 0)),
             (P.CANCEL, b""), (P.ACK, struct.pack("<III", 0, 100, 5)), (P.START, b"calibrate"),
             (P.STOP, b""), (P.SET, b'{"mvc": 1234}'), (P.PAIN, bytes((0, 3))),
             (P.PROGRAM, json.dumps(_prog(9)).encode()), (P.PROGRAM, b'{"remove": "fault"}')]
    w = P.FrameWriter()
    kinds = [0, 0, 0, 0]

    async def go():
        await link.ask(P.SET_CLOCK, struct.pack("<Q", 1767225600000))
        for i in range(frames):
            r = rb(3)
            if r < 3:                       # a seed frame with its payload mutated
                t, p = seeds[rb(8) % len(seeds)]
                p = bytearray(p)
                for _ in range(1 + rb(2)):
                    m = rb(2)
                    if m == 0 and p:
                        p[rb(10) % len(p)] ^= 1 << rb(3)
                    elif m == 1 and p:
                        p = p[:rb(10) % len(p)]
                    elif m == 2:
                        p += rbytes(rb(3))
                    elif p:
                        p[rb(10) % len(p)] = rb(8)
                kinds[0] += 1
            elif r < 6:                     # a known request type, random payload
                t = seeds[rb(8) % len(seeds)][0]
                p = rbytes(rb(4) if rb(1) else rb(10) % 1025)
                kinds[1] += 1
            elif r == 6:                    # any type
                t = rb(8)
                p = rbytes(rb(5))
                kinds[2] += 1
            else:                           # raw bytes: bad COBS, bad CRC, torn frames
                t = None
                kinds[3] += 1
            if t == P.REPL:
                t = P.PING
            if t is None:
                t0, p0 = seeds[rb(8) % len(seeds)]
                link.seq = (link.seq + 1) & 0xFF
                raw = bytearray(w.message(t0, link.seq, p0))
                for _ in range(1 + rb(2)):
                    raw[rb(10) % len(raw)] = rb(8)
                if rb(1):
                    raw = raw[:rb(10) % len(raw)] + (b"\x00" if rb(1) else b"")
                link.inbox.append(bytes(raw) if rb(2) else rbytes(rb(6)))
            else:
                link.request(t, bytes(p[:P.MAX_PAYLOAD]))
            link.frames = link.frames[-8:]
            if i % 16 == 15:
                while link.inbox:
                    await board.sleep_ms(10)
            if i % 4096 == 4095:
                link.inbox.append(b"\x00")
                await board.sleep_ms(50)
                gc.collect()
        while link.inbox:
            await board.sleep_ms(10)
        await board.sleep_ms(200)
        return {"frames": frames, "mutated_seed": kinds[0], "random_payload": kinds[1],
                "random_type": kinds[2], "raw_bytes": kinds[3], "internal_errors": len(link.internal),
                "examples": link.internal[:5], "board_s": board.ticks_ms() // 1000}

    return _run(app, go())


def soak(hours=1.0, minutes_per_program=10):
    board, link, app = _setup(blocks=256)
    end_ms = int(hours * 3600000)
    # free heap after a collect, once a board minute, into arrays allocated
    # here: a list of readings would itself eat the heap it measures
    cap = int(hours * 60) + 90
    heap_t = array("i", bytes(4 * cap))       # board minute
    heap_f = array("i", bytes(4 * cap))       # bytes free
    nheap = [0]
    stream = [0]

    def count(t, seq, p):
        if t >= P.SAMPLES:
            stream[0] += 1
        else:
            link.frames.append((t, seq, p))
            del link.frames[:-16]

    link.on_frame = count

    async def go():
        await link.ask(P.SET_CLOCK, struct.pack("<Q", 1767225600000))
        await link.ask(P.LIVE, bytes((1, 100, 0)))
        await link.ask(P.PROGRAM, json.dumps(_prog(minutes_per_program * 60)).encode())
        programs = 0
        synced = 0
        while board.ticks_ms() < end_ms:
            e = link.ended
            await link.ask(P.START, b"fault")
            while link.ended == e:
                await board.sleep_ms(1000)
                m = board.ticks_ms() // 60000
                k = nheap[0]
                if (k == 0 or heap_t[k - 1] != m) and k < cap:
                    gc.collect()
                    heap_t[k] = m
                    heap_f[k] = gc.mem_free()
                    nheap[0] = k + 1
            programs += 1
            await board.sleep_ms(500)
            # sync and ACK every finished session so the flash never fills
            t, _s, p = await link.ask(P.LIST)
            for s in json.loads(p):
                if s["open"]:
                    continue
                seq = link.request(P.FETCH, struct.pack("<III", s["id"], 0, 0))
                data = []
                link.on_frame = lambda t, q, p: (data.append((t, p)) if q == seq and t in (P.DATA, P.DONE, P.ERROR) else None)
                while not data or data[-1][0] == P.DATA:
                    await board.sleep_ms(10)
                link.on_frame = count
                if data[-1][0] != P.DONE:
                    raise AssertionError("soak: fetch refused %r" % (data[-1],))
                _sid, _end, size, crc = struct.unpack("<IIII", data[-1][1])
                got = b"".join(d[8:] for _t, d in data[:-1])
                if len(got) != size or binascii.crc32(got) != crc:
                    raise AssertionError("soak: fetched bytes do not match DONE")
                f = await link.ask(P.ACK, struct.pack("<III", s["id"], size, crc))
                if f[0] != P.OK:
                    raise AssertionError("soak: ACK refused %r" % (f,))
                synced += 1
        t, _s, p = await link.ask(P.GET_INFO)
        info = json.loads(p)
        hour = 3600000
        heap = [(heap_t[i] * 60000, heap_f[i]) for i in range(nheap[0])]
        first = [h for t, h in heap if t < hour] or [heap[0][1]]
        last_t = heap[-1][0]
        last = [h for t, h in heap if t >= last_t - hour]
        return {"board_hours": board.ticks_ms() / hour, "samples": board.ticks_ms() * board.rate_hz // 1000,
                "programs": programs, "synced_acked": synced, "stream_frames": stream[0],
                "heap_points": len(heap), "heap_first_hour_min": min(first), "heap_first_hour_mean": sum(first) // len(first),
                "heap_last_hour_min": min(last), "heap_last_hour_mean": sum(last) // len(last),
                "heap_min": min(h for _t, h in heap), "heap_max": max(h for _t, h in heap),
                "info_heap_free": info.get("heap_free"), "internal_errors": len(link.internal),
                "heap_series": [(t // 60000, h) for t, h in heap[::max(1, len(heap) // 48)]]}

    return _run(app, go())


def main():
    mode = sys.argv[1]
    a = sys.argv[2:]
    if mode == "sync":
        r = sync(int(a[0]) if a else 60, a[1] if len(a) > 1 else None)
    elif mode == "power":
        r = power(int(a[0]) if a else 60, int(a[1]) if len(a) > 1 else 1)
    elif mode == "fuzz":
        r = fuzz(int(a[0]) if a else 100000, int(a[1]) if len(a) > 1 else 1)
    elif mode == "soak":
        r = soak(float(a[0]) if a else 1.0, int(a[1]) if len(a) > 1 else 10)
    else:
        raise SystemExit("mode: sync, power, fuzz or soak")
    print("RESULT " + json.dumps(r))


if __name__ == "__main__":
    main()
