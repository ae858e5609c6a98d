# The device's side of the protocol (docs/PROTOCOL.md section 4): reads
# frames from the link, answers each request from a table of handlers, and
# runs a FETCH as its own task so samples keep flowing during a sync. A
# handler's unexpected error is answered E_INTERNAL; the device stays up.
import asyncio
import json
import struct
import sys

from knip.fixed import const
from knip import protocol as P
from knip import programs
from knip.store import StoreError, StoreFull

_DATA_CHUNK = const(512)       # session bytes per DATA frame
_ERR_GAP_MS = const(100)       # at most ~10 E_CRC/E_FRAME replies per second (board clock)
_LIST_MAX = const(16)          # sessions per SESSIONS reply (fewer when 16 would not fit a frame)
# SET_CLOCK takes Unix ms from 2020 to 2100: anything else is a host's bug,
# and one absurd timestamp in a session header breaks every date after it
_CLOCK_MIN_MS = 1577836800000      # 2020-01-01 (a long int on the ESP32: no const)
_CLOCK_MAX_MS = 4102444800000      # 2100-01-01
_MVC_MAX = const(1000000)      # counts: far above any MVC (pressure 20/cmH2O, EMG 16/uV)
# INFO names the MicroPython it runs on every board (the ESP32 boards said it
# already; the virtual trainer did not)
_MP = ".".join(str(v) for v in sys.implementation.version[:3]) if sys.implementation.name == "micropython" else None


class ProtocolServer:
    def __init__(self, app):
        self.app = app
        self.board = app.board
        self.store = app.store
        self.runner = app.runner
        self.rx = P.FrameReader()
        self.tx = P.FrameWriter()                      # replies
        self.data = P.FrameWriter(_DATA_CHUNK + 16)    # the fetch task
        self.fetch_task = None
        self._fetch_no = 0
        self._last_err = -1000000
        self.running = True
        self.handlers = {
            P.HELLO: self._hello, P.GET_INFO: self._get_info, P.PING: self._ping,
            P.SET_CLOCK: self._set_clock, P.LIVE: self._live, P.LIST: self._list,
            P.FETCH: self._fetch_start, P.CANCEL: self._cancel, P.ACK: self._ack,
            P.START: self._start, P.STOP: self._stop, P.SET: self._set, P.PAIN: self._pain,
            P.PROGRAM: self._program, P.REPL: self._repl}

    async def serve(self):
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

    async def _handle(self, t, seq, p):
        h = self.handlers.get(t)
        if h is None:
            await self._error(seq, t, P.E_UNKNOWN, "unknown message type 0x%02x" % t)
        else:
            await h(t, seq, p)

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

    # ---- device state ----------------------------------------------------

    def info(self):
        a = self.app
        b = self.board
        r = self.runner
        cfg = a.settings
        sid = a.recorder.id
        pct, mv = b.battery()
        now = b.ticks_ms()
        sessions = self.store.list()
        d = {"protocol": P.VERSION, "firmware": a.firmware, "device": b.device_id, "board": b.name,
             "store": self.store.store_id, "micropython": _MP,
             "signal": b.signal, "unit": b.unit, "counts_per_unit": b.counts_per_unit,
             "rate_hz": b.rate_hz, "channels": b.channels,
             "battery_pct": pct, "battery_mv": mv,
             "storage_total": self.store.total(), "storage_free": self.store.free(),
             "sessions": len(sessions), "unsynced": sum(1 for s in sessions if s["closed"]),
             "clock_ms": None if r.epoch_ms is None else r.epoch_ms + now,
             "ticks_ms": now, "samples": a.n, "gaps": a.gaps,
             "ring": [b.ring.dropped, b.ring.missed, a.lost_seen],
             "state": "session" if sid is not None else "idle",
             "session": sid, "program": r.name if sid is not None else None,
             "programs": a.shelf.names(), "custom_programs": sorted(a.shelf.custom),
             "program_errors": a.shelf.errors[:4],
             "mvc": cfg.mvc, "rest_level": cfg.rest_level, "level_div": a.level_div,
             "checkin": ("before", "after")[r.checkin] if r.checkin >= 0 else None,
             "storage_full": a.recorder.full,
             "recovered": [x[0] for x in a.recovered][:8]}
        d.update(b.extra_info())
        return d

    async def _hello(self, t, seq, p):
        if len(p) < 1 or p[0] != P.VERSION:
            got = p[0] if len(p) else 0
            await self._error(seq, t, P.E_VERSION,
                              "device speaks protocol %d, host sent %d: update the host tool or the firmware"
                              % (P.VERSION, got))
            return
        await self._reply(P.INFO, seq, self._info_json())

    async def _get_info(self, t, seq, p):
        await self._reply(P.INFO, seq, self._info_json())

    def _info_json(self):
        d = self.info()
        data = json.dumps(d).encode()
        if len(data) > P.MAX_PAYLOAD:
            # many long custom program names: built-ins in "programs", as many
            # custom names as fit, how many there are in "custom_count"
            custom = d["custom_programs"]
            d["custom_count"] = len(custom)
            d["programs"] = sorted(programs.BUILTIN_NAMES)
            d["program_errors"] = [e[:60] for e in d["program_errors"]]
            while True:
                data = json.dumps(d, separators=(",", ":")).encode()
                if len(data) <= P.MAX_PAYLOAD or not custom:
                    break
                custom.pop()
            # still too long (a board with many INFO keys, e.g. the HIL rig's):
            # the least needed lists go, rather than INFO failing
            for k in ("program_errors", "recovered", "loopback"):
                if len(data) <= P.MAX_PAYLOAD:
                    break
                if d.pop(k, None) is not None:
                    data = json.dumps(d, separators=(",", ":")).encode()
        return data

    async def _ping(self, t, seq, p):
        await self._reply(P.PONG, seq, bytes(p))

    async def _set_clock(self, t, seq, p):
        if len(p) < 8:
            await self._error(seq, t, P.E_ARG, "SET_CLOCK needs u64 Unix milliseconds")
            return
        ms = struct.unpack_from("<Q", p, 0)[0]
        if not _CLOCK_MIN_MS <= ms < _CLOCK_MAX_MS:
            await self._error(seq, t, P.E_ARG, "SET_CLOCK: %d ms is not a time from 2020 to 2100" % ms)
            return
        self.runner.epoch_ms = ms - self.board.ticks_ms()
        await self._ok(seq, t)

    async def _live(self, t, seq, p):
        if len(p) < 3:
            await self._error(seq, t, P.E_ARG, "LIVE needs u8 on, u16 batch_ms")
            return
        live = self.app.stream.samples
        batch_ms = p[1] | (p[2] << 8)
        if p[0]:
            live.start(max(1, (batch_ms * self.board.rate_hz + 500) // 1000))
        else:
            live.on = False
        await self._ok(seq, t, struct.pack("<IH", self.app.n, live.batch))

    async def _set(self, t, seq, p):
        s = self.app.settings
        try:
            d = json.loads(bytes(p))
            mvc = int(d.get("mvc", s.mvc))
        except (ValueError, AttributeError, TypeError, OverflowError):
            await self._error(seq, t, P.E_ARG, "SET needs a JSON object such as {\"mvc\": 800}")
            return
        if not 0 <= mvc <= _MVC_MAX:
            await self._error(seq, t, P.E_ARG, "mvc must be 0-%d counts" % _MVC_MAX)
            return
        s.mvc = mvc
        s.save()
        await self._ok(seq, t)

    async def _repl(self, t, seq, p):
        await self._ok(seq, t)
        self.running = False

    # ---- programs and sessions -------------------------------------------

    async def _start(self, t, seq, p):
        try:
            name = bytes(p).decode()
        except UnicodeError:
            await self._error(seq, t, P.E_ARG, "START needs a program name in UTF-8")
            return
        shelf = self.app.shelf
        if shelf.get(name) is None:
            await self._error(seq, t, P.E_NOT_FOUND, "no program %r; the device has: %s"
                              % (name, ", ".join(shelf.names())))
            return
        try:
            sid = self.runner.start(name)
        except StoreFull as e:
            self.app.recorder.full = True
            await self._error(seq, t, P.E_FULL, str(e))
            return
        except StoreError as e:
            await self._error(seq, t, P.E_BUSY, str(e))
            return
        await self._ok(seq, t, struct.pack("<I", sid))

    async def _stop(self, t, seq, p):
        sid = self.runner.end("stopped")
        await self._ok(seq, t, struct.pack("<i", -1 if sid is None else sid))

    async def _pain(self, t, seq, p):
        if len(p) < 2 or p[0] > 1 or p[1] > 10:
            await self._error(seq, t, P.E_ARG, "PAIN needs u8 when (0 before, 1 after), u8 score 0-10")
            return
        if self.app.recorder.id is None:
            await self._error(seq, t, P.E_BUSY, "no session running: pain is stored with a session")
            return
        self.runner.host_pain(p[0], p[1])
        await self._ok(seq, t)

    async def _program(self, t, seq, p):
        try:
            doc = json.loads(bytes(p))
        except ValueError:
            await self._error(seq, t, P.E_ARG, "PROGRAM needs a JSON object (see docs/COACHING.md)")
            return
        try:
            name = self.app.shelf.put(doc)
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

    # ---- sync --------------------------------------------------------------

    async def _list(self, t, seq, p):
        start = struct.unpack_from("<I", p, 0)[0] if len(p) >= 4 else 0
        page = [s for s in self.store.list() if s["id"] >= start][:_LIST_MAX]
        data = json.dumps(page).encode()
        while len(data) > P.MAX_PAYLOAD:
            page.pop()              # the host asks again from the last id + 1
            data = json.dumps(page).encode()
        await self._reply(P.SESSIONS, seq, data)

    async def _ack(self, t, seq, p):
        if len(p) < 12:
            await self._error(seq, t, P.E_ARG, "ACK needs u32 id, u32 size, u32 crc32")
            return
        sid, size, crc = struct.unpack_from("<III", p, 0)
        if sid == self.app.recorder.id:
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
        self.app.recorder.full = False
        await self._ok(seq, t)

    async def _cancel(self, t, seq, p):
        if self.fetch_task is not None:
            self.fetch_task.cancel()
            self.fetch_task = None
        await self._ok(seq, t)

    async def _fetch_start(self, t, seq, p):
        if len(p) < 12:
            await self._error(seq, t, P.E_ARG, "FETCH needs u32 id, u32 offset, u32 length")
            return
        if self.fetch_task is not None:
            await self._error(seq, t, P.E_BUSY, "a fetch is running; CANCEL it first")
            return
        sid, off, length = struct.unpack_from("<III", p, 0)
        self._fetch_no += 1
        self.fetch_task = asyncio.create_task(self._fetch(seq, sid, off, length, self._fetch_no))

    async def _fetch(self, seq, sid, off, length, no):
        store = self.store
        link = self.board.link
        w = self.data
        try:
            if sid == self.app.recorder.id:
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
