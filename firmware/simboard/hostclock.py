# The virtual trainer on a virtual clock owned by the host (docs/TESTING.md):
# board time moves only when the host grants it, and only while the
# firmware has nothing left to do at the present instant, so every run with
# the same seed and the same host is the same, byte for byte, however fast
# the CPU is.
#
# Side channel (two FIFOs, not the protocol port), one line each way:
#   host -> board  "run MS RX STOP"  after taking RX bytes in total from the
#                  protocol port and going idle, let MS ms of board time
#                  pass; STOP 1: pause at the first idle moment at which the
#                  board has sent something the host was not told of yet
#   board -> host  "idle T TX"       paused at board time T ms, TX bytes sent
#                  on the protocol port in total
# and once, unasked, "idle T TX" at the first idle moment after start.
#
# How: asyncio.sleep_ms/sleep park the task on board time (a TaskQueue
# keyed by board ms, as an Event parks its waiters; asyncio's own clock
# stays the wall clock, which its C task queue reads), and the event loop's
# IO wait is wrapped. The loop calls it with nothing runnable now: that is
# "idle". Then the gate opens for protocol input that waits (GatedLink:
# input is only taken while the board is idle, so a request never lands
# between two steps of the same instant), or sleepers that are due wake, or
# time moves to the next thing due (a sample, a timer alarm, a sleeper), or
# the board says where it paused and blocks until the host writes.
import sys
import asyncio
from asyncio import core
from time import ticks_diff, ticks_add

from links.serial_link import SerialLink

current = None                  # the HostClock of this process


class SimBoardTime:
    """SimBoard's time is the samples taken: one step is 10 ms of them."""

    def __init__(self, board):
        self.board = board
        self.ticks_ms = board.ticks_ms

    def now_us(self):
        b = self.board
        return b._n * 1000000 // b.rate_hz

    def advance(self, limit_us):
        self.board.step()


class MachineTime:
    """The simulated ESP32's VClock: run to whatever falls due first."""

    def __init__(self, vtime):
        self.vt = vtime
        self.ticks_ms = vtime.ticks_ms

    def now_us(self):
        return self.vt.now

    def advance(self, limit_us):
        vt = self.vt
        target = limit_us
        for m in vt.clocked:
            if m.due < target:
                target = m.due
        vt.advance_us(target - vt.now if target > vt.now else 0)


class HostClock:
    """The board half of the virtual clock: `time` is SimBoardTime or
    MachineTime, ctl_path + ".run"/".idle" the FIFOs the host made."""

    def __init__(self, ctl_path, time):
        self.cin = open(ctl_path + ".run", "rb")
        self.cout = open(ctl_path + ".idle", "wb")
        self.time = time
        self.link = None            # the GatedLink (it registers itself)
        self.extra_tx = 0           # bytes written to the port outside the link (boot messages)
        self.granted = False
        self.until = 0              # board us
        self.need_rx = 0
        self.stop = True
        self.told_tx = -1           # TX in the last report (-1: none yet)
        self._gate = asyncio.Event()
        self._gate_wait = False
        self._wait = None
        self.sleepers = core.TaskQueue()    # tasks in sleep_ms, keyed by board ms

    def sent(self):
        return (self.link.sent if self.link is not None else 0) + self.extra_tx

    def received(self):
        return self.link.received if self.link is not None else 0

    def install(self):
        """Take over asyncio's sleeps and IO wait; start reading the side channel."""
        global current
        current = self
        core.sleep_ms = asyncio.sleep_ms = self.sleep_ms
        core.sleep = asyncio.sleep = self.sleep
        q = core._io_queue
        self._wait = q.wait_io_event
        q.wait_io_event = self._hook
        asyncio.create_task(self._ctl())
        return self

    def sleep_ms(self, ms):
        # park the running task until board time has moved on by ms; like
        # Event.wait, its data is the queue, so cancel() takes it out
        q = self.sleepers
        q.push(core.cur_task, ticks_add(self.time.ticks_ms(), ms if ms > 0 else 0))
        core.cur_task.data = q
        yield

    def sleep(self, s):
        return self.sleep_ms(int(s * 1000))

    def _wake(self):
        """Sleepers whose time has come go to the run queue; any?"""
        q = self.sleepers
        now = self.time.ticks_ms()
        woke = False
        t = q.peek()
        while t is not None and ticks_diff(t.ph_key, now) <= 0:
            q.pop()
            core._task_queue.push(t)
            woke = True
            t = q.peek()
        return woke

    async def _ctl(self):
        r = asyncio.StreamReader(self.cin)
        while True:
            line = await r.readline()
            if not line:
                sys.stderr.write("knip-sim: the host closed the clock channel\n")
                raise SystemExit(0)
            f = line.split()
            if len(f) != 4 or f[0] != b"run":
                sys.stderr.write("knip-sim: bad clock line %r\n" % line)
                continue
            self.until = self.time.now_us() + int(f[1]) * 1000
            self.need_rx = int(f[2])
            self.stop = f[3] == b"1"
            self.granted = True

    async def gate(self):
        """Until the board is idle (GatedLink takes input only then)."""
        self._gate.clear()
        self._gate_wait = True
        await self._gate.wait()

    def _report(self):
        tx = self.sent()
        self.told_tx = tx
        self.cout.write(("idle %d %d\n" % (self.time.now_us() // 1000, tx)).encode())

    def _hook(self, dt):
        # The loop calls this to wait for IO; dt != 0: nothing is runnable
        # now. Return once something is (the loop pops a task next).
        wait = self._wait
        wait(0)
        if dt == 0:
            return
        q = core._task_queue
        while True:
            t = q.peek()
            if t is not None and ticks_diff(t.ph_key, core.ticks()) <= 0:
                return
            # idle: nothing more happens at this instant by itself
            if self._gate_wait:
                self._gate_wait = False
                self._gate.set()            # protocol input may come in now
                continue
            if self._wake():
                continue
            if self.granted and self.received() >= self.need_rx:
                now = self.time.now_us()
                if now < self.until and not (self.stop and self.sent() != self.told_tx):
                    limit = self.until
                    s = self.sleepers.peek()
                    if s is not None:
                        wake = (now // 1000 + ticks_diff(s.ph_key, self.time.ticks_ms())) * 1000
                        if wake < limit:
                            limit = wake
                    self.time.advance(limit)
                    self._wake()
                    wait(0)                 # IO the step made ready
                    continue
                self.granted = False
                self._report()
            elif self.told_tx < 0:
                self._report()              # ready: where the board starts
            # until the host writes (protocol bytes or a grant); a task asleep
            # on the wall clock (none of ours) keeps its own deadline
            wait(dt)


class EventFlag:
    """asyncio.ThreadSafeFlag for a simulated machine on this clock: its
    "interrupts" run inside the event loop (from the IO wait), so an Event
    does; and the loop's poll then holds only file descriptors (a
    ThreadSafeFlag in it makes every poll, even poll(0), sleep 1 ms)."""

    def __init__(self):
        self._ev = asyncio.Event()

    def set(self):
        self._ev.set()

    def clear(self):
        self._ev.clear()

    async def wait(self):
        await self._ev.wait()
        self._ev.clear()


def _readable(s):
    yield core._io_queue.queue_read(s)


class GatedLink(SerialLink):
    """SerialLink for a host-owned clock: input is taken only while the
    board is idle; a write blocks (in real time) until the pseudo-terminal
    has taken it, so the host's reading speed never shows in board time."""

    def __init__(self, rx=None, tx=None, baud=0):
        super().__init__(rx, tx, 0)
        current.link = self

    async def readinto(self, buf):
        await _readable(self.rx)
        await current.gate()
        return await super().readinto(buf)

    async def write(self, data):
        async with self.lock:
            self.tx.write(data)
            self.sent += len(data)
