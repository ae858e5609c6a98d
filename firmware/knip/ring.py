# Sampler -> application hand-off: a preallocated ring of timestamped samples.
# The producer (a hardware Timer callback on the ESP32, a task in the virtual
# trainer) calls put(); the application task drains it. put() allocates
# nothing and never blocks: when the ring is full the sample is dropped and
# counted, so the application can record the gap instead of losing time.
from array import array


class SampleRing:
    def __init__(self, size=256):
        self.size = size
        self.t = array("i", bytes(4 * size))     # ms ticks
        self.x = array("i", bytes(4 * size))     # main channel counts
        self.a = array("i", bytes(4 * size))     # second channel counts (0 if none)
        self.head = 0        # next slot to write (producer only)
        self.tail = 0        # next slot to read (consumer only)
        self.dropped = 0     # samples lost because the ring was full
        self.missed = 0      # ticks the sampler itself missed (it counts them)

    def put(self, t, x, a=0):
        h = self.head
        nh = h + 1
        if nh == self.size:
            nh = 0
        if nh == self.tail:
            self.dropped += 1
            return False
        self.t[h] = t
        self.x[h] = x
        self.a[h] = a
        self.head = nh
        return True

    def count(self):
        n = self.head - self.tail
        return n + self.size if n < 0 else n

    def skip(self, m):
        """Consumer: release m slots from tail (read t/x/a there first), not
        past the end of the arrays."""
        nt = self.tail + m
        self.tail = 0 if nt == self.size else nt
