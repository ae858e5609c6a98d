# RAM block device with the extended interface (byte offsets) for mounting a
# real littlefs in tests; defaults match the ESP32 data partition (512 x 4 KiB).
# Counts what littlefs does to it, so tests can measure write amplification.
class RamDisk:
    def __init__(self, block_size=4096, blocks=512, image=None):
        self.bs = block_size
        self.n = blocks
        self._ff = b"\xff" * block_size
        if image is not None:
            self.data = bytearray(image)    # a copy: power-cut snapshot
        else:
            self.data = bytearray(block_size * blocks)
            for b in range(blocks):         # erased flash reads 0xff
                self._erase(b)
        self.mv = memoryview(self.data)
        self.prog_calls = self.prog_bytes = self.erases = 0

    def _erase(self, b):
        a = b * self.bs
        self.data[a:a + self.bs] = self._ff

    def readblocks(self, b, buf, off=0):
        a = b * self.bs + off
        buf[:] = self.mv[a:a + len(buf)]

    def writeblocks(self, b, buf, off=None):
        if off is None:     # simple interface: erase whole blocks first
            for i in range(len(buf) // self.bs):
                self.ioctl(6, b + i)
            off = 0
        a = b * self.bs + off
        self.data[a:a + len(buf)] = buf
        self.prog_calls += 1
        self.prog_bytes += len(buf)

    def ioctl(self, op, arg):
        if op == 4:         # block count
            return self.n
        if op == 5:         # block size
            return self.bs
        if op == 6:         # erase
            self._erase(arg)
            self.erases += 1
            return 0
        return 0            # init, deinit, sync

    def snapshot(self):
        """The flash as a power cut right now would leave it."""
        return RamDisk(self.bs, self.n, self.data)


def mount(point, blocks=512, block_size=4096):
    """Format a fresh RAM disk with littlefs and mount it (MicroPython)."""
    import vfs
    disk = RamDisk(block_size, blocks)
    vfs.VfsLfs2.mkfs(disk)
    vfs.mount(vfs.VfsLfs2(disk), point)
    return disk
