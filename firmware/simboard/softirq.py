# The ESP32 port's soft-IRQ scheduler (mp_sched_schedule): Timer alarms and
# Pin edges queue their callbacks in 8 slots; they run after the Python code
# running now returns, never inside it. A full queue drops the callback
# silently, as on the board (counted here in `dropped`). Allocates nothing.
from simboard import const

_QLEN = const(8)                 # the ESP32 port's scheduler queue depth


class SoftIrq:
    def __init__(self):
        self._fn = [None] * _QLEN
        self._arg = [None] * _QLEN
        self.clear()

    def clear(self):
        for i in range(_QLEN):
            self._fn[i] = self._arg[i] = None
        self.head = 0
        self.count = 0
        self.running = False
        self.dropped = 0

    def schedule(self, fn, arg):
        """Queue fn(arg); False (and counted) when the 8 slots are full."""
        if self.count >= _QLEN:
            self.dropped += 1
            return False
        i = (self.head + self.count) % _QLEN
        self._fn[i] = fn
        self._arg[i] = arg
        self.count += 1
        return True

    def run(self):
        """Run the queued callbacks, and any they queue, in order."""
        if self.running:
            return                # already draining (a callback slept)
        self.running = True
        fns = self._fn
        args = self._arg
        try:
            while self.count:
                i = self.head
                fn = fns[i]
                arg = args[i]
                fns[i] = args[i] = None
                self.head = (i + 1) % _QLEN
                self.count -= 1
                fn(arg)             # an exception reaches the test, the queue goes on
        finally:
            self.running = False
