# The simulated ESP32's flash: a block device with the extended interface
# (byte offsets, as littlefs uses it) for real littlefs (vfs.VfsLfs2). One
# device for the virtual trainer and the tests; only the medium differs:
# - an image file: every write and erase reaches the OS at once, so a killed
#   process leaves the image exactly as a power cut leaves the ESP32's flash;
# - RAM (path None): fast, and snapshot() is a power cut right now.
# It counts what littlefs does to it, so tests can measure write amplification.
import io
import os

_EIO = 5
# ioctl ops (extmod/vfs.h)
_SYNC = 3
_BLOCK_COUNT = 4
_BLOCK_SIZE = 5
_ERASE = 6


class BlockDev:
    def __init__(self, path=None, block_size=4096, blocks=512, image=None):
        self.path = path
        self.bs = block_size
        self.n = blocks
        self._ff = b"\xff" * block_size
        want = block_size * blocks
        if path is None:
            # whole at once (copied on the first write): growing it block by
            # block would move megabytes around the heap
            f = io.BytesIO(self._ff * blocks if image is None else image)
        else:
            try:
                f = open(path, "r+b")
            except OSError:
                f = open(path, "w+b")
        have = f.seek(0, 2)
        if have and have != want and not self._erased(f, have):
            # only an image whose making was cut short (erased to its end)
            # is made whole: any other file is not ours to write over
            f.close()
            raise OSError("%s is no flash image of %d bytes; not writing over it" % (path, want))
        while have < want:                      # new or short: erased flash is 0xff
            f.write(self._ff)
            have += block_size
        f.flush()
        self.f = f
        self.prog_calls = self.prog_bytes = self.erases = 0

    def _erased(self, f, size):
        if size % self.bs or size > self.bs * self.n:
            return False
        buf = bytearray(self.bs)
        f.seek(0)
        for _ in range(size // self.bs):
            f.readinto(buf)
            if buf != self._ff:
                return False
        return True

    def readblocks(self, b, buf, off=0):
        f = self.f
        f.seek(b * self.bs + off)
        if f.readinto(buf) != len(buf):
            raise OSError(_EIO)                 # image shorter than the device

    def writeblocks(self, b, buf, off=None):
        if off is None:                         # simple interface: whole blocks, erased first
            off = 0
            self.erases += len(buf) // self.bs
        f = self.f
        f.seek(b * self.bs + off)
        f.write(buf)
        f.flush()
        self.prog_calls += 1
        self.prog_bytes += len(buf)

    def ioctl(self, op, arg):
        if op == _BLOCK_COUNT:
            return self.n
        if op == _BLOCK_SIZE:
            return self.bs
        if op == _ERASE:
            f = self.f
            f.seek(arg * self.bs)
            f.write(self._ff)
            f.flush()
            self.erases += 1
            return 0
        if op == _SYNC:
            self.f.flush()
        return 0                                # init, deinit

    def blank(self):
        """True while the superblock pair (blocks 0 and 1) is still erased."""
        buf = bytearray(self.bs)
        for b in (0, 1):
            self.readblocks(b, buf)
            if buf != self._ff:
                return False
        return True

    def snapshot(self):
        """The flash as a power cut right now would leave it, in RAM."""
        f = self.f
        f.seek(0)
        return BlockDev(None, self.bs, self.n, f.read(self.bs * self.n))

    def close(self):
        self.f.close()


def mount(path=None, point="/flash", block_size=4096, blocks=512):
    """Mount the flash (the image file at `path`, or RAM when None) at `point`
    with littlefs (MicroPython), formatting it only while it is blank;
    returns the device."""
    import vfs
    dev = BlockDev(path, block_size, blocks)
    try:
        fs = vfs.VfsLfs2(dev)
    except OSError:
        if not dev.blank():
            dev.close()
            raise OSError("%s holds data but no littlefs; not formatting it" % path)
        vfs.VfsLfs2.mkfs(dev)
        fs = vfs.VfsLfs2(dev)
    vfs.mount(fs, point)
    return dev


def pin_store_id(fs_root, seed):
    """On the virtual clock a trainer is a function of its seed and its host
    only: the session store's id, drawn at random on a board (knip/store.py),
    is derived from the seed instead when the flash has none yet."""
    try:
        os.stat(fs_root + "/store")
        return
    except OSError:
        pass
    try:
        os.mkdir(fs_root)
    except OSError:
        pass
    with open(fs_root + "/store", "wb") as f:
        f.write(("%08x" % ((seed * 2654435761 + 0x5EED) & 0xFFFFFFFF)).encode())
