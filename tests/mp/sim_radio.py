# The simulated radio the BLE link checks (ble_checks.py) drive BleLink
# (firmware/links/ble_link.py) against: stand-ins for `bluetooth` and
# aioble that model what NimBLE does on the ESP32 (handles, append-mode RX
# buffer, encrypted-write flags, ENOMEM from gatts_notify, the GET/SET_SECRET
# store IRQs, MTU exchange) and a laptop (connect, encrypt with a stored key
# or pair, write in MTU - 3 chunks). No radio runs; the model is what is
# tested against. Only the tests use it, so it lives here.
#     stack, aioble = sim_radio.install()      # once per check: a fresh radio
#     SimLaptop(stack, addr, ltk=key).connect()
import sys
import asyncio

_ENOMEM = 12
NUS = "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"
NUS_RX = "6E400002-B5A3-F393-E0A9-E50E24DCCA9E"
NUS_TX = "6E400003-B5A3-F393-E0A9-E50E24DCCA9E"


class _Mod:
    pass


class SimStack:
    """The NimBLE side of MicroPython's bluetooth.BLE, as much as BleLink uses."""

    def __init__(self):
        self.irq_cb = None
        self.reset()

    def reset(self):              # (the IRQ callback stays registered, as on a real board)
        self.on = False
        self.cfg = {}
        self.attrs = {}          # handle -> (uuid, flags)
        self.values = {}
        self.buffers = {}
        self.notified = []       # (conn, handle, bytes)
        self.updates = []        # gatts_write(send_update=True)
        self.full = None         # callable: True -> gatts_notify raises ENOMEM
        self.conns = {}          # conn handle -> SimLaptop
        self.next = 0
        self.adv = []
        self.advertising = False
        self.no_pairing = False  # a MicroPython build without pairing/bonding

    def active(self, v=None):
        if v is not None:
            self.on = v
        return self.on

    def config(self, *a, **kw):
        if a:
            return self.cfg.get(a[0])
        self.cfg.update(kw)

    def irq(self, cb):
        self.irq_cb = cb

    def gatts_register_services(self, defs):
        out = []
        h = 10
        for _uuid, chars in defs:
            hs = []
            for c in chars:
                h += 1
                self.attrs[h] = (c[0], c[1])
                self.values[h] = b""
                hs.append(h)
            out.append(tuple(hs))
        return tuple(out)

    def handle_of(self, uuid):
        for h, (u, _f) in self.attrs.items():
            if u.v == uuid:
                return h
        raise KeyError(uuid)

    def gatts_read(self, h):
        v = self.values.get(h, b"")
        if self.buffers.get(h, (0, False))[1]:
            self.values[h] = b""          # append mode: reading clears
        return v

    def gatts_write(self, h, data, send_update=False):
        self.values[h] = data.encode() if isinstance(data, str) else bytes(data)
        if send_update:
            self.updates.append((h, bytes(data)))

    def gatts_set_buffer(self, h, n, append=False):
        self.buffers[h] = (n, append)

    def gatts_notify(self, conn, h, data):
        if conn not in self.conns:
            raise OSError(107)
        if self.full is not None and self.full():
            raise OSError(_ENOMEM)
        self.notified.append((conn, h, bytes(data)))
        self.conns[conn].on_notify(h, bytes(data))

    def gap_disconnect(self, conn):
        c = self.conns.get(conn)
        if c is None:
            return False
        c.drop()
        return True

    def gap_pair(self, conn):
        c = self.conns.get(conn)
        if c is None:
            raise OSError(107)
        c.security_request()

    def gap_advertise(self, interval_us, adv_data=None, resp_data=None, connectable=True):
        self.advertising = interval_us is not None


class SimLaptop:
    """A central: connects, encrypts with the key it holds (the trainer looks
    its LTK up: GET_SECRET type 1) or pairs afresh (a repeat pairing first
    deletes what the trainer holds for its address), writes in MTU-3 chunks."""

    def __init__(self, stack, addr, ltk=None, mtu=247, pairs=True, encrypts=True, greet=None):
        self.s = stack
        self.greet = greet       # bytes it writes as soon as its link is encrypted
        self.addr = addr
        self.ltk = ltk           # what this laptop remembers of a bond
        self.mtu = mtu
        self.pairs = pairs
        self.encrypts = encrypts
        self.h = None
        self.encrypted = False
        self.rx = bytearray()    # reassembled notifications
        self.sizes = []
        self.store_failed = 0

    def irq(self, ev, data):
        return self.s.irq_cb(ev, data)

    def connect(self):
        assert self.s.advertising, "the trainer is not advertising"
        self.s.advertising = False
        self.s.next += 1
        self.h = self.s.next
        self.s.conns[self.h] = self
        self.irq(1, (self.h, self.addr[0], memoryview(self.addr[1:])))

    def exchange_mtu(self, ours):
        self.irq(21, (self.h, min(ours, self.mtu)))

    def security_request(self):
        if not self.encrypts or self.h is None:
            return
        if self.ltk is not None:
            v = self.irq(29, (1, 0, memoryview(self.addr)))
            if v is None or bytes(v) != self.ltk:
                self.drop()              # key missing on the trainer: encryption fails
                return
            self.encrypted = True
            self.irq(28, (self.h, 1, 0, 1, 16))
        elif self.pairs:
            if self.irq(29, (2, 0, memoryview(self.addr))) is not None:   # repeat pairing
                for t in (1, 2):
                    n = 0
                    while self.irq(30, (t, memoryview(self.addr), None)):
                        n += 1
                        assert n < 10, "delete never reports 'gone': NimBLE would loop"
            self.encrypted = True
            self.irq(28, (self.h, 1, 0, 1, 16))
            ours = b"LTK-" + self.addr
            for t, v in ((1, ours), (2, b"IRK-" + self.addr)):
                if not self.irq(30, (t, memoryview(self.addr), memoryview(v))):
                    self.store_failed += 1   # NimBLE would now unpair its oldest peers
            self.ltk = ours
        if self.greet is not None and self.h is not None:
            self.write(self.greet)

    def write(self, data):
        rx = self.s.handle_of(NUS_RX)
        if self.s.attrs[rx][1] & 0x1000 and not self.encrypted:
            return False                 # the stack drops an unencrypted write
        pay = self.mtu - 3
        for i in range(0, len(data), pay):
            chunk = data[i:i + pay]
            cap = self.s.buffers.get(rx, (20, False))[0]
            self.s.values[rx] = (self.s.values[rx] + chunk)[:cap]
            self.irq(3, (self.h, rx))
        return True

    def on_notify(self, h, data):
        if h == self.s.handle_of(NUS_TX):
            self.rx += data
            self.sizes.append(len(data))

    def drop(self):
        if self.h is None:
            return
        h = self.h
        self.h = None
        self.encrypted = False
        del self.s.conns[h]
        self.irq(2, (h, self.addr[0], memoryview(self.addr[1:])))


_FAKE = []


def install():
    """The radio: installs the simulated bluetooth and aioble modules (in
    sys.modules) the first time, resets them after; returns (stack, aioble)."""
    if _FAKE:
        stack, ab = _FAKE[0]
        stack.reset()
        ab.reset()
        return stack, ab
    stack = SimStack()
    bt = _Mod()

    class UUID:
        def __init__(self, v):
            self.v = v

        def __eq__(self, o):
            return isinstance(o, UUID) and o.v == self.v

    bt.UUID = UUID
    core = _Mod()
    core.ble = stack
    core._irq_handlers = []

    def ble_irq(ev, data):
        for h in core._irq_handlers:
            r = h(ev, data)
            if r is not None:
                return r
    stack.irq(ble_irq)
    ab = _Mod()
    ab.core = core
    ab.security = _Mod()
    state = {}

    class Conn:
        def __init__(self, h):
            self._conn_handle = h
            self.encrypted = False
            self.mtu = None
            self._pair = None

        def is_connected(self):
            return self._conn_handle is not None

        async def exchange_mtu(self, mtu=None, timeout_ms=1000):
            if mtu:
                stack.cfg["mtu"] = mtu
            c = stack.conns.get(self._conn_handle)
            if c is None:
                raise ValueError("Not connected")
            c.exchange_mtu(stack.cfg.get("mtu", 23))
            return self.mtu

        async def pair(self, bond=True, le_secure=True, mitm=False, io=3, timeout_ms=20000):
            stack.cfg.update(bond=bond, le_secure=le_secure, mitm=mitm, io=io)
            self._pair = asyncio.ThreadSafeFlag()
            stack.gap_pair(self._conn_handle)
            if not self.encrypted:
                await asyncio.wait_for_ms(self._pair.wait(), timeout_ms)

        async def disconnect(self, timeout_ms=2000):
            if self._conn_handle is not None:
                stack.gap_disconnect(self._conn_handle)

    def handler(ev, data):           # aioble's peripheral/device/security handlers
        if ev == 1:
            c = Conn(data[0])
            state["conns"][data[0]] = c
            state["incoming"] = c
            state["flag"].set()
        elif ev == 2:
            c = state["conns"].pop(data[0], None)
            if c:
                c._conn_handle = None
        elif ev == 21:
            c = state["conns"].get(data[0])
            if c:
                c.mtu = data[1]
        elif ev == 28:
            c = state["conns"].get(data[0])
            if c:
                c.encrypted = bool(data[1])
                if c.encrypted and c._pair:
                    c._pair.set()

    class Service:
        def __init__(self, uuid):
            self.uuid = uuid
            self.characteristics = []

    class Characteristic:
        def __init__(self, service, uuid, read=False, write=False, write_no_response=False,
                     notify=False, indicate=False, initial=None, capture=False):
            service.characteristics.append(self)
            self.uuid = uuid
            self.flags = ((2 if read else 0) | (8 if write else 0) | (4 if write_no_response else 0)
                          | (0x10 if notify else 0) | (0x10000 if capture else 0))
            self._initial = initial
            self._value_handle = None

        def write(self, data, send_update=False):
            stack.gatts_write(self._value_handle, data, send_update)

    def register_services(*services):
        hs = stack.gatts_register_services(tuple((s.uuid, tuple((c.uuid, c.flags) for c in s.characteristics))
                                                 for s in services))
        for s, handles in zip(services, hs):
            for c, h in zip(s.characteristics, handles):
                c._value_handle = h
                if c._initial is not None:
                    stack.gatts_write(h, c._initial)

    def config(*a, **kw):
        stack.active(True)
        if "bond" in kw and stack.no_pairing:
            raise ValueError("unknown config param")
        return stack.config(*a, **kw)

    def stop():
        stack.active(False)

    async def advertise(interval_us, name=None, services=None, **kw):
        stack.adv.append((interval_us, name, [u.v for u in services or ()]))
        stack.gap_advertise(interval_us)
        state["flag"].clear()
        await state["flag"].wait()
        return state["incoming"]

    def reset():
        state["conns"] = {}
        state["incoming"] = None
        state["flag"] = asyncio.ThreadSafeFlag()
        del core._irq_handlers[:]
        core._irq_handlers.append(handler)
    ab.reset = reset
    ab.Service = Service
    ab.Characteristic = Characteristic
    ab.register_services = register_services
    ab.config = config
    ab.stop = stop
    ab.advertise = advertise
    ab.DeviceDisconnectedError = type("DeviceDisconnectedError", (Exception,), {})
    reset()
    sys.modules["bluetooth"] = bt
    sys.modules["aioble"] = ab
    sys.modules["aioble.core"] = core
    sys.modules["aioble.security"] = ab.security
    _FAKE.append((stack, ab))
    return stack, ab

