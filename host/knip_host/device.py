"""Talk to a trainer (real or virtual) over a serial port with the Knip
protocol (docs/PROTOCOL.md), using the same codec as the firmware."""
from __future__ import annotations

import collections
import json
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import serial  # pyserial

from knip import protocol as P
from knip import samples

from . import checks as C
from .simclock import WALL, open_port

BAUD = 115200

# INFO's numbers the host uses, with the values that make sense: (low, high);
# anything else is replaced by None and named in Device.info_problems
INFO_RANGES: dict[str, tuple[float, float]] = {
    "protocol": (0, 255), "channels": (1, 2), "rate_hz": (1, C.RATE_MAX_HZ),
    "counts_per_unit": (1e-6, 1e9), "level_div": (1e-6, 1e12), "mvc": (0, 1e9),
    "clock_ms": (C.EPOCH_MIN_S * 1000, C.EPOCH_MAX_S * 1000 - 1), "ticks_ms": (0, 2 ** 63),
    "storage_total": (0, 2 ** 40), "storage_free": (0, 2 ** 40), "sessions": (0, C.U32),
    "unsynced": (0, C.U32), "battery_pct": (-1, 100), "battery_mv": (0, 100000),
    "samples": (0, 2 ** 63), "gaps": (0, 2 ** 63), "session": (0, C.U32)}


class DeviceError(Exception):
    """Something the user can act on; the message says what to do."""


class LinkLost(DeviceError):
    """The port went away or stopped answering."""


class DeviceRefused(DeviceError):
    """The device answered with an ERROR frame."""

    def __init__(self, code: int, request: int, message: str):
        self.code = code
        self.request = request
        name = P.ERROR_NAMES.get(code, str(code))
        super().__init__(f"the trainer refused ({name}): {message}")


@dataclass
class Frame:
    mtype: int
    seq: int
    payload: bytes
    t: float          # host time (Device.clock.monotonic()) when decoded


class Device:
    """A protocol client. Requests are synchronous; frames the device sends
    on its own (live samples, events, cues, notices) queue in `stream`."""

    def __init__(self, port: str, *, baud: int = BAUD, timeout: float = 3.0, ser: Any = None):
        """`ser`: an already open transport with pyserial's read/write/in_waiting/
        is_open/reset_input_buffer/flush/close (e.g. knip_host.ble.BleSerial);
        `port` then only names it in messages."""
        self.port_name = port
        self.timeout = timeout
        if ser is not None:
            self.ser = ser
        else:
            try:
                self.ser = open_port(port, baud, timeout)
            except serial.SerialException as exc:
                raise DeviceError(_open_hint(port, exc)) from exc
        # a virtual trainer's port runs on its board time (simclock.py): the waits below follow it
        self.clock = getattr(self.ser, "clock", None) or WALL
        try:
            self.ser.reset_input_buffer()       # bytes meant for an earlier connection
            self.ser.write(b"\x00")             # end any half frame the device holds
        except (serial.SerialException, OSError):
            pass
        self.reader = P.FrameReader()
        self.writer = P.FrameWriter()
        self.seq = 0
        self.stream: collections.deque[Frame] = collections.deque()
        self.errors: list[DeviceRefused] = []   # unsolicited errors (e.g. for garbage we sent)
        self.bytes_in = 0
        self.bytes_out = 0
        self._buf = b""
        self._pos = 0
        self.info: dict[str, Any] = {}
        self.info_problems: list[str] = []      # INFO values that made no sense (set to None)

    # ---- plumbing ------------------------------------------------------

    def close(self) -> None:
        try:
            self.ser.close()
        except Exception:
            pass

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_raw(self, data: bytes) -> None:
        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkLost(f"lost the trainer on {self.port_name} while writing ({exc}); "
                           "check the cable and run the command again") from exc
        self.bytes_out += len(data)

    def send(self, mtype: int, payload: bytes = b"") -> int:
        self.seq = (self.seq + 1) & 0xFF or 1
        self.write_raw(bytes(self.writer.message(mtype, self.seq, payload)))
        return self.seq

    def read_frame(self, timeout: float) -> Frame | None:
        """Next good frame, or None after `timeout` seconds of silence."""
        clock = self.clock
        deadline = clock.monotonic() + timeout
        while True:
            if self._pos >= len(self._buf):
                if not self.ser.is_open:
                    raise LinkLost(f"the connection to {self.port_name} was closed; "
                                   "run the command again: nothing recorded is lost")
                try:
                    chunk = self.ser.read(max(1, min(4096, self.ser.in_waiting)))
                except (serial.SerialException, OSError) as exc:
                    raise LinkLost(f"lost the trainer on {self.port_name} ({exc}); "
                                   "check the cable, then run the command again: "
                                   "nothing recorded is lost") from exc
                if not chunk:
                    if clock.monotonic() >= deadline:
                        return None
                    continue
                self.bytes_in += len(chunk)
                self._buf, self._pos = chunk, 0
            st, self._pos = self.reader.feed(self._buf, self._pos, len(self._buf))
            if st == P.R_FRAME:
                return Frame(self.reader.mtype, self.reader.seq, bytes(self.reader.payload), clock.monotonic())
            # bad frames from the device are counted by the reader and skipped

    def request(self, mtype: int, payload: bytes = b"", *, timeout: float | None = None,
                retries: int = 2) -> Frame:
        """Send and wait for the reply with the same sequence number."""
        timeout = self.timeout if timeout is None else timeout
        for attempt in range(retries + 1):
            seq = self.send(mtype, payload)
            while True:
                f = self.read_frame(timeout)
                if f is None:
                    break
                if f.mtype >= P.SAMPLES:
                    self.stream.append(f)
                    continue
                if f.mtype == P.ERROR:
                    err = _refused(f.payload)
                    if f.seq != seq and not (err.code == P.E_FRAME and f.seq == 0):
                        self.errors.append(err)
                        continue
                    if err.code in (P.E_CRC, P.E_FRAME) and attempt < retries:
                        break            # our frame was damaged on the way: send it again
                    raise err
                if f.seq != seq:
                    continue             # a late reply to an earlier request
                return f
        raise LinkLost(f"no answer from the trainer on {self.port_name} within {timeout:g} s; "
                       "is it switched on and running the Knip firmware? ('knip devices' lists ports)")

    # ---- requests --------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        return self._take_info(self.request(P.HELLO, bytes([P.VERSION])).payload)

    def get_info(self) -> dict[str, Any]:
        return self._take_info(self.request(P.GET_INFO).payload)

    def _take_info(self, payload: bytes) -> dict[str, Any]:
        info = C.json_of(payload, dict, "the trainer's INFO", DeviceError)
        self.info_problems = []
        for key, (lo, hi) in INFO_RANGES.items():
            if info.get(key) is not None and C.number(info[key], lo, hi) is None:
                self.info_problems.append(f"INFO {key} = {str(info[key])[:40]!r} makes no sense; ignored")
                info[key] = None
        self.info = info
        return info

    def set_clock(self, unix_ms: int | None = None) -> None:
        ms = int(self.clock.time() * 1000) if unix_ms is None else unix_ms
        self.request(P.SET_CLOCK, struct.pack("<Q", ms))

    def ping(self, data: bytes = b"knip") -> bytes:
        return self.request(P.PING, data).payload

    def live(self, on: bool, batch_ms: int = 100) -> tuple[int, int]:
        """Start or stop streaming; return (index of the next sample, samples per frame)."""
        f = self.request(P.LIVE, struct.pack("<BH", 1 if on else 0, batch_ms))
        return C.unpack("<IH", f.payload, 1, "the trainer's reply to LIVE", DeviceError)

    def sessions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = 0
        while True:
            page = C.json_of(self.request(P.LIST, struct.pack("<I", start)).payload, list,
                             "the trainer's session list", DeviceError)
            page = [_listed(s) for s in page]
            out += page
            if not page:        # a page ends where 1024 bytes are full: ask until one is empty
                return out
            if page[-1]["id"] < start or page[-1]["id"] >= C.U32:
                raise DeviceError(f"the trainer's session list went back to id {page[-1]['id']} "
                                  f"after asking from {start}: {C.MISMATCH}")
            start = page[-1]["id"] + 1

    def start(self, program: str) -> int:
        f = self.request(P.START, program.encode())
        return C.unpack("<I", f.payload, 1, "the trainer's reply to START", DeviceError)[0]

    def stop(self) -> int | None:
        sid = C.unpack("<i", self.request(P.STOP).payload, 1, "the trainer's reply to STOP", DeviceError)[0]
        return None if sid < 0 else sid

    def set(self, **settings: Any) -> None:
        self.request(P.SET, json.dumps(settings).encode())

    def pain(self, when: int, score: int) -> None:
        """Pain 0-10 before (when=0) or after (1) the running session."""
        self.request(P.PAIN, bytes((when, score)))

    def put_program(self, doc: dict[str, Any]) -> str:
        """Store a custom program on the trainer; returns its name."""
        f = self.request(P.PROGRAM, json.dumps(doc, separators=(",", ":")).encode())
        return f.payload[1:].decode("utf-8", "replace")

    def remove_program(self, name: str) -> None:
        self.request(P.PROGRAM, json.dumps({"remove": name}).encode())

    def ack(self, sid: int, size: int, crc: int) -> None:
        self.request(P.ACK, struct.pack("<III", sid, size, crc))

    def cancel(self) -> None:
        """Stop a fetch an earlier connection left running."""
        self.request(P.CANCEL)

    def repl(self) -> None:
        self.request(P.REPL)

    def fetch(self, sid: int, offset: int, on_data: Callable[[int, bytes], None],
              length: int = 0) -> tuple[int, int, int]:
        """Stream a session file from `offset`; on_data(offset, bytes) per
        chunk. Return (end offset, file size, file crc32)."""
        seq = self.send(P.FETCH, struct.pack("<III", sid, offset, length))
        expect = offset
        while True:
            f = self.read_frame(self.timeout)
            if f is None:
                raise LinkLost(f"the trainer stopped sending session {sid} at byte {expect}; "
                               "run 'knip sync' again to resume from there")
            if f.mtype >= P.SAMPLES:
                self.stream.append(f)
                continue
            if f.seq != seq:
                if f.mtype == P.ERROR:
                    self.errors.append(_refused(f.payload))
                continue
            if f.mtype == P.ERROR:
                raise _refused(f.payload)
            if f.mtype == P.DATA:
                fsid, off = C.unpack("<II", f.payload, 0, f"a DATA frame of session {sid}", DeviceError)
                if fsid != sid or off != expect:
                    raise DeviceError(f"session {sid}: got bytes of session {fsid} at {off}, expected "
                                      f"{sid} at {expect}; run 'knip sync' again")
                chunk = f.payload[8:]
                on_data(off, chunk)
                expect += len(chunk)
            elif f.mtype == P.DONE:
                fsid, end, size, crc = C.unpack("<IIII", f.payload, 0, f"the DONE frame of session {sid}",
                                                DeviceError)
                if fsid != sid or end != expect:
                    raise DeviceError(f"session {sid}: the trainer ended the fetch of session {fsid} at "
                                      f"byte {end} of {size}, but sent bytes up to {expect}: {C.MISMATCH}")
                return end, size, crc


def _listed(s: Any) -> dict[str, Any]:
    """One entry of SESSIONS, checked: id and size u32, the flags booleans."""
    if not isinstance(s, dict):
        raise DeviceError(f"the trainer's session list holds {str(s)[:40]!r}, not a session: {C.MISMATCH}")
    sid, size = C.whole(s.get("id"), 0, C.U32), C.whole(s.get("size"), 0, C.U32)
    if sid is None or size is None:
        raise DeviceError(f"the trainer lists a session with id {s.get('id')!r} and size "
                          f"{s.get('size')!r}: {C.MISMATCH}")
    return {"id": sid, "size": size, **{k: bool(s.get(k)) for k in ("closed", "open", "bad")}}


def _refused(payload: bytes) -> DeviceRefused:
    code = payload[0] if payload else 0
    req = payload[1] if len(payload) > 1 else 0
    return DeviceRefused(code, req, payload[2:].decode("utf-8", "replace"))


def _open_hint(port: str, exc: Exception) -> str:
    text = str(exc)
    if "No such file" in text or "could not open port" in text and "No such" in text:
        return f"no serial port {port}: is the trainer plugged in? 'knip devices' lists the ports (or use --port sim)"
    if "Permission denied" in text:
        return (f"permission denied on {port}: add yourself to the 'dialout' group "
                "(sudo usermod -aG dialout $USER, then log in again)")
    if "busy" in text.lower() or "Resource temporarily unavailable" in text:
        return f"{port} is busy: close other programs using it (another knip, mpremote, a serial monitor)"
    if "Inappropriate ioctl" in text or "Not a typewriter" in text:
        return f"{port} is no serial port: 'knip devices' lists the ports (or use --port sim)"
    return f"cannot open {port}: {text}"


# ---- decoding of stream frames -------------------------------------------

class LiveDecoder(samples.LiveDecoder):
    """The core's live sample decoder; a frame that does not decode is a DeviceError."""

    def decode(self, f: Frame) -> list[list[int]] | None:  # type: ignore[override]
        """Per-channel sample lists, or None while waiting for a key frame."""
        try:
            return super().decode(f.mtype, f.payload)
        except ValueError as exc:
            raise DeviceError(f"{exc}; the firmware and host disagree, or the frame is damaged") from exc


def iter_stream(dev: Device, until: float) -> Iterator[Frame]:
    """Frames the device sends on its own, until time.monotonic() >= until;
    on a virtual trainer's clock that much board time (dev.clock)."""
    clock = getattr(dev, "clock", WALL)
    end = clock.monotonic() + (until - time.monotonic())
    while True:
        while dev.stream:
            yield dev.stream.popleft()
        left = end - clock.monotonic()
        if left <= 0:
            return
        f = dev.read_frame(min(left, 0.2))
        if f is None:
            continue
        if f.mtype >= P.SAMPLES:
            yield f
        elif f.mtype == P.ERROR:
            dev.errors.append(_refused(f.payload))
