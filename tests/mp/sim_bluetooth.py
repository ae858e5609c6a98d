# A stand-in for MicroPython's low-level `bluetooth` module, so the real
# aioble (micropython-lib, frozen into the 32-bit port by firmware/manifest.py)
# and the BLE link run on the unix port: bluetooth.BLE() is sim_radio's
# SimStack (NimBLE's side: handles, append-mode RX, pairing IRQs, ENOMEM),
# driven by a SimLaptop. UUIDs are their bytes (what aioble puts in its
# advertising data). Unlike sim_radio.install(), aioble is not faked.
#     stack = sim_bluetooth.install()      # before the first `import aioble`
#     laptop = Central(stack, addr)        # a laptop that keeps no copy of what it gets
import sys

from sim_radio import SimStack, SimLaptop


class _Stack(SimStack):
    def handle_of(self, uuid):
        uuid = _uuid(uuid)
        for h, (u, _f) in self.attrs.items():
            if u == uuid:
                return h
        raise KeyError(uuid)

    def gattc_exchange_mtu(self, conn):
        c = self.conns.get(conn)
        if c is None:
            raise OSError(107)
        c.exchange_mtu(self.cfg.get("mtu", 23))

    def gatts_notify(self, conn, h, data):
        # as SimStack's, without keeping every notification
        if conn not in self.conns:
            raise OSError(107)
        if self.full is not None and self.full():
            raise OSError(12)
        self.conns[conn].on_notify(h, data)

    def gatts_indicate(self, conn, h, data=None):
        self.gatts_notify(conn, h, data or b"")


def _uuid(v):
    """bluetooth.UUID: 16-bit ints as 2 bytes, 128-bit strings as 16 (little-endian)."""
    if isinstance(v, int):
        return bytes((v & 0xFF, v >> 8))
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    h = v.replace("-", "")
    return bytes(int(h[i:i + 2], 16) for i in range(len(h) - 2, -2, -2))


class _Module:
    pass


_STACK = []


def install():
    """Put the stand-in `bluetooth` in sys.modules; the stack (made once)."""
    if not _STACK:
        _STACK.append(_Stack())
        bt = _Module()
        bt.BLE = lambda: _STACK[0]
        bt.UUID = _uuid
        bt.FLAG_READ = 0x0002
        bt.FLAG_WRITE_NO_RESPONSE = 0x0004
        bt.FLAG_WRITE = 0x0008
        bt.FLAG_NOTIFY = 0x0010
        bt.FLAG_INDICATE = 0x0020
        sys.modules["bluetooth"] = bt
    return _STACK[0]


class Central(SimLaptop):
    """A laptop whose notifications go to a callback instead of a growing buffer."""

    def __init__(self, stack, addr, on_bytes, **kw):
        SimLaptop.__init__(self, stack, addr, **kw)
        self.on_bytes = on_bytes
        self._tx = None
        self.notified = 0

    def on_notify(self, h, data):
        if self._tx is None:
            self._tx = self.s.handle_of(_uuid("6E400003-B5A3-F393-E0A9-E50E24DCCA9E"))
        if h == self._tx:
            self.notified += 1
            self.on_bytes(data)
