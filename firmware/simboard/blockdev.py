# The virtual trainer's flash: a block device with the extended interface
# (byte offsets, as littlefs uses it) backed by an image file. Every write and
# erase is flushed to the OS at once, so a killed process leaves the image
# exactly as a power cut would leave the ESP32's flash.
class FileBlockDevice:
    def __init__(self, path, block_size=4096, blocks=512):
        self.path = path
        self.bs = block_size
        self.n = blocks
        self._ff = b"\xff" * block_size
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
        f.seek(0, 2)
        have = f.tell()
        want = block_size * blocks
        if have % block_size:
            f.seek(have - have % block_size)
            have -= have % block_size
        while have < want:      # new or short image: erased flash is 0xff
            f.write(self._ff)
            have += block_size
        f.flush()
        self.f = f
        self.prog_bytes = self.erases = 0

    def readblocks(self, b, buf, off=0):
        self.f.seek(b * self.bs + off)
        n = self.f.readinto(buf)
        if n != len(buf):
            raise OSError(5)    # EIO: image shorter than the device

    def writeblocks(self, b, buf, off=None):
        if off is None:         # simple interface: whole erased blocks
            off = 0
            self.erases += len(buf) // self.bs
        self.f.seek(b * self.bs + off)
        self.f.write(buf)
        self.f.flush()
        self.prog_bytes += len(buf)

    def ioctl(self, op, arg):
        if op == 4:             # block count
            return self.n
        if op == 5:             # block size
            return self.bs
        if op == 6:             # erase
            self.f.seek(arg * self.bs)
            self.f.write(self._ff)
            self.f.flush()
            self.erases += 1
            return 0
        if op == 3:             # sync
            self.f.flush()
        return 0                # init, deinit

    def blank(self):
        """True if the superblock pair (blocks 0 and 1) is still erased."""
        buf = bytearray(self.bs)
        for b in (0, 1):
            self.readblocks(b, buf)
            if buf != self._ff:
                return False
        return True

    def close(self):
        self.f.close()


def mount(path, point="/flash", block_size=4096, blocks=512):
    """Mount the image at `point` with littlefs (MicroPython), formatting it
    only if it is blank (new image); returns the device."""
    import vfs
    dev = FileBlockDevice(path, block_size, blocks)
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

