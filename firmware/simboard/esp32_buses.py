# The simulated ESP32's I2C and SPI buses (esp32_machine exports them as
# machine.I2C/SoftI2C/SPI/SoftSPI): a transfer goes to the chip models
# (simboard/chips.py) on the bus's pins. An address nobody answers NACKs
# (OSError ENODEV); MISO idles high. Transfers allocate nothing.
from simboard import const

_ENODEV = const(19)

i2c_devs = {}                 # (scl, sda) -> {addr: model}
spi_devs = {}                 # sck pin -> [models]


def clear():
    i2c_devs.clear()
    spi_devs.clear()


def _n(p):
    return getattr(p, "n", p)     # a Pin, a pin number or None


class I2C:
    def __init__(self, bus_id=0, scl=None, sda=None, freq=400000, timeout=50000):
        self.id = bus_id
        self.scl = _n(scl)
        self.sda = _n(sda)
        self.freq = freq
        key = (self.scl, self.sda)
        d = i2c_devs.get(key)
        if d is None:
            d = i2c_devs[key] = {}
        self._devs = d

    def _dev(self, addr):
        m = self._devs.get(addr)
        if m is None or not m.present:
            raise OSError(_ENODEV)         # NACK on the address byte
        return m

    def scan(self):
        return sorted(a for a, m in self._devs.items() if m.present)

    def writeto(self, addr, buf, stop=True):
        self._dev(addr).write(buf)
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        self._dev(addr).read_into(buf)

    def readfrom(self, addr, n, stop=True):
        b = bytearray(n)
        self.readfrom_into(addr, b)
        return bytes(b)

    def writeto_mem(self, addr, reg, buf, addrsize=8):
        self._dev(addr).mem_write(reg, buf)

    def readfrom_mem_into(self, addr, reg, buf, addrsize=8):
        self._dev(addr).mem_read(reg, buf)

    def readfrom_mem(self, addr, reg, n, addrsize=8):
        b = bytearray(n)
        self.readfrom_mem_into(addr, reg, b)
        return bytes(b)


class SoftI2C(I2C):
    def __init__(self, scl, sda, freq=400000, timeout=50000):
        I2C.__init__(self, -1, scl, sda, freq, timeout)


class SPI:
    MSB = 0
    LSB = 1

    def __init__(self, bus_id=2, baudrate=1000000, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=None, mosi=None, miso=None):
        self.id = bus_id
        self.baudrate = baudrate
        self.polarity = polarity
        self.phase = phase
        self.sck = _n(sck)
        self.mosi = _n(mosi)
        self.miso = _n(miso)
        d = spi_devs.get(self.sck)
        if d is None:
            d = spi_devs[self.sck] = []
        self._devs = d

    def _xfer(self, b):
        out = 0xFF                          # MISO idles high with nobody driving it
        for m in self._devs:
            if m.selected():
                # a chip whose DIN is not on our MOSI pin sees a low line
                r = m.xfer(b if m.mosi == self.mosi else 0, self)
                if m.miso == self.miso:
                    out = r
        return out

    def write(self, buf):
        for i in range(len(buf)):
            self._xfer(buf[i])

    def readinto(self, buf, write=0):
        for i in range(len(buf)):
            buf[i] = self._xfer(write)

    def read(self, n, write=0):
        b = bytearray(n)
        self.readinto(b, write)
        return bytes(b)

    def write_readinto(self, wbuf, rbuf):
        for i in range(len(wbuf)):
            rbuf[i] = self._xfer(wbuf[i])

    def deinit(self):
        pass


SoftSPI = SPI
