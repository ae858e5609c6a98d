"""The host's clock when it talks to a trainer.

A real board, or a virtual trainer for a person to watch, runs on the wall
clock (WALL). A virtual trainer started with clock="virtual" runs on board
time that the host grants over a side channel (two FIFOs, never the protocol
port; the board half is firmware/simboard/hostclock.py, the reasoning is in
docs/TESTING.md). Then SimClock is the host's time: every wait of a Device
on that port (read_frame's timeout, iter_stream's deadline) and a test's
sleep() let board time pass instead of wall time, so what a test sees
depends on the seed and the test alone, never on how busy the machine is.

The rules that make it deterministic:
* the board runs only inside a grant, and takes protocol input only while
  it has nothing else to do at the present instant (it is "idle");
* a grant (run MS RX STOP) starts only after the board has taken the RX
  bytes the host wrote, and with STOP it pauses as soon as it has sent
  something new, so the host sees each reply and frame at the board time it
  was sent, and anything it does about it happens at that same time;
* after each grant the host takes every byte the board says it sent before
  it decides anything (SimClock.settle).
Board time in host seconds is board seconds / speed, so a test written for
a trainer at `speed` x real time reads the same on the virtual clock.
"""
from __future__ import annotations

import os
import select
import threading
import time
from typing import Callable

import serial  # pyserial

# Host seconds since the epoch at board time 0 on a virtual clock (Monday
# 2026-03-02 09:00 UTC): the same for every run, so sessions are the same bytes.
EPOCH = 1772442000.0
_STALL_S = 60.0                 # no word from the board for this long (wall clock): it is stuck


class WallClock:
    """The host's own clock: a real board, or a virtual trainer on the wall clock."""
    virtual = False

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


WALL = WallClock()
_BY_PORT: dict[str, "SimClock"] = {}


def open_port(port: str, baud: int, timeout: float) -> "serial.Serial | SimSerial":
    """pyserial's port, or on a virtual trainer's clock a SimSerial."""
    clock = _BY_PORT.get(port)
    if clock is None:
        return serial.Serial(port, baud, timeout=0.05, write_timeout=timeout)
    return SimSerial(port, clock, baud, timeout)


class SimClock:
    """Board time granted by the host; made and registered by VirtualTrainer."""
    virtual = True

    def __init__(self, ctl_path: str, pty_fd: int, speed: float = 1.0, epoch: float = EPOCH,
                 alive: Callable[[], bool] = lambda: True):
        self.speed = float(speed)
        self.epoch = epoch
        self.alive = alive
        self.t_ms = 0              # board time at the last report
        self.tx = 0                # bytes the board had sent on the port at the last report
        self.rx = 0                # bytes the host side took off the port
        self.wrote = 0             # bytes the host side put on the port
        self.inbuf = bytearray()   # taken off the port, not yet read by anyone
        self.grants = 0
        self.lock = threading.RLock()
        self._arrived = threading.Condition(self.lock)
        self._pty = pty_fd
        self._run = os.open(ctl_path + ".run", os.O_RDWR)
        self._idle = os.open(ctl_path + ".idle", os.O_RDWR)
        self._line = b""
        self.port = ""

    # ---- time ------------------------------------------------------------

    def monotonic(self) -> float:
        """Host seconds: board time / speed."""
        return self.t_ms / 1000.0 / self.speed

    def time(self) -> float:
        return self.epoch + self.monotonic()

    def sleep(self, seconds: float) -> None:
        """Let `seconds` (host seconds) of board time pass, whatever it sends."""
        self.run(seconds, stop=False)

    # ---- the side channel ------------------------------------------------

    def start(self, timeout: float) -> None:
        """Wait for the board's first report (it is up and idle)."""
        with self.lock:
            self._await_idle(timeout)

    def run(self, seconds: float, stop: bool = True) -> None:
        """Grant up to `seconds` of board time and wait until the board has
        paused and every byte it sent meanwhile is in inbuf. With stop the
        board pauses early, once it has sent something new."""
        ms = max(0, int(round(seconds * self.speed * 1000)))
        with self.lock:
            self.grants += 1
            os.write(self._run, b"run %d %d %d\n" % (ms, self.wrote, 1 if stop else 0))
            self._await_idle(_STALL_S)
            self.settle()

    def settle(self) -> None:
        """Take every byte the board said it has sent."""
        with self.lock:
            while self.rx < self.tx:
                self._wait([self._pty], _STALL_S, "the rest of its output")

    def discard(self) -> None:
        """What a fresh connection does: forget whatever the board sent before."""
        with self.lock:
            self.run(0, stop=False)
            self.inbuf.clear()

    def take(self, n: int) -> bytes:
        with self.lock:
            out = bytes(self.inbuf[:n])
            del self.inbuf[:n]
            return out

    def take_wait(self, n: int, timeout: float) -> bytes:
        """take() for a reader in another thread (a simulated radio): waits up
        to `timeout` (wall clock) for the clock to bring some."""
        with self._arrived:
            if not self.inbuf:
                self._arrived.wait(timeout)
            return self.take(n)

    def _await_idle(self, timeout: float) -> None:
        while b"\n" not in self._line:
            self._wait([self._idle, self._pty], timeout, "the end of its time step")
        line, self._line = self._line.split(b"\n", 1)
        f = line.split()
        if len(f) != 3 or f[0] != b"idle":
            raise serial.SerialException(f"the virtual trainer's clock channel said {line!r}")
        self.t_ms, self.tx = int(f[1]), int(f[2])

    def _wait(self, fds: list[int], timeout: float, what: str) -> None:
        """One wait for the board: pty bytes go to inbuf, clock lines to _line."""
        end = time.monotonic() + timeout
        while True:
            r, _, _ = select.select(fds, [], [], 1.0)
            if r:
                break
            if not self.alive():
                raise serial.SerialException("the virtual trainer has stopped" + _last_words(self.inbuf))
            if time.monotonic() >= end:
                raise serial.SerialException(f"the virtual trainer did not send {what} within {timeout:g} s")
        if self._pty in r:
            try:
                data = os.read(self._pty, 65536)
            except OSError:
                data = b""
            if not data:                # the board's end of the line is gone
                raise serial.SerialException("the virtual trainer has stopped" + _last_words(self.inbuf))
            self.inbuf += data
            self.rx += len(data)
            self._arrived.notify_all()
        if self._idle in r:
            self._line += os.read(self._idle, 4096)

    def close(self) -> None:
        _BY_PORT.pop(self.port, None)
        for fd in (self._run, self._idle):
            try:
                os.close(fd)
            except OSError:
                pass

    def register(self, port: str) -> None:
        self.port = port
        _BY_PORT[port] = self


def _last_words(sent: bytes | bytearray) -> str:
    """A traceback the board printed on its port before it died."""
    i = sent.rfind(b"Traceback")
    return ": " + sent[i:].decode("utf-8", "replace").strip() if i >= 0 else ""


class SimSerial:
    """pyserial's Serial on a virtual trainer's pseudo-terminal, on its
    clock: writes go through pyserial and are counted; reads come from what
    the clock took off the port, and where pyserial would wait `timeout`
    seconds for more, board time passes instead."""

    def __init__(self, port: str, clock: SimClock, baud: int, timeout: float):
        self.clock = clock
        self.port = port
        self.timeout = 0.05                     # as Device opens pyserial
        self._ser = serial.Serial(port, baud, timeout=0.05, write_timeout=timeout)

    @property
    def is_open(self) -> bool:
        return self._ser.is_open

    @property
    def in_waiting(self) -> int:
        return len(self.clock.inbuf)

    def read(self, size: int = 1) -> bytes:
        if not self._ser.is_open:
            raise serial.PortNotOpenError()
        c = self.clock
        if not c.inbuf:
            c.settle()
        if not c.inbuf:
            c.run(self.timeout, stop=True)
        return c.take(size)

    def write(self, data: bytes) -> int:
        n = self._ser.write(data) or 0
        self.clock.wrote += n
        return n

    def flush(self) -> None:
        self._ser.flush()

    def reset_input_buffer(self) -> None:
        self.clock.discard()

    def close(self) -> None:
        self._ser.close()
