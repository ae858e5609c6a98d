# The simulated radio the BLE link checks (ble_checks.py) drive BleLink
# (firmware/links/ble_link.py) against: stand-ins for `bluetooth` and
# aioble that model what NimBLE does on the ESP32 (handles, append-mode RX
# buffer, encrypted-read and encrypted-write flags, CCCDs any peer may write,
# ENOMEM from gatts_notify, the GET/SET_SECRET store IRQs, MTU exchange, a
# fixed number of connection slots) and laptops (connect, encrypt with a
# stored key or pair, read, subscribe, write in MTU - 3 chunks). No radio
# runs; the model is what is tested against. Only the tests use it.
#     stack, aioble = sim_radio.install()      # once per check: a fresh radio
#     clock = SimClock()                       # virtual ms for BleLink(clock=...)
#     SimLaptop(stack, addr, ltk=key).connect()
# Addresses are NimBLE's store keys (ble_addr_t: type byte, then the six
# address bytes least significant first); the connect IRQ carries them as
# MicroPython does: the type, then the six bytes most significant first.
import sys
import asyncio

_ENOMEM = 12
_MASK = 0x3FFFFFFF           # ticks wrap at 2**30, as on the ESP32
NUS = "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"
NUS_RX = "6E400002-B5A3-F393-E0A9-E50E24DCCA9E"
NUS_TX = "6E400003-B5A3-F393-E0A9-E50E24DCCA9E"


class _Mod:
    pass


class SimClock:
    """Virtual milliseconds with the `time` functions BleLink reads
    (ticks_ms, ticks_diff, ticks_add). advance(ms) moves them and sets the
    watched flags (the link's wake-up), so a check decides by simulated
    time, not by how fast the host runs."""

    def __init__(self):
        self.now = 0
        self.flags = []

    def ticks_ms(self):
        return self.now & _MASK

    def ticks_add(self, a, b):
        return (a + b) & _MASK

    def ticks_diff(self, a, b):
        d = (a - b) & _MASK
        return d - _MASK - 1 if d > _MASK >> 1 else d

    def watch(self, flag):
        self.flags.append(flag)

    def advance(self, ms):
        self.now += ms
        for f in self.flags:
            f.set()


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
        self.max_conns = 4       # CONFIG_BT_NIMBLE_MAX_CONNECTIONS of MicroPython's ESP32 build
        self.adv_full = 0        # advertising refused: no connection slot left

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
        if send_update:          # NimBLE notifies every connection subscribed to it
            self.updates.append((h, bytes(data)))
            for c in list(self.conns.values()):
                if h in c.subscribed:
                    c.updates.append((h, bytes(data)))

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

    def gattc_exchange_mtu(self, conn):
        c = self.conns.get(conn)
        if c is None:
            raise OSError(107)
        c.exchange_mtu(self.cfg.get("mtu", 23))

    def gap_advertise(self, interval_us, adv_data=None, resp_data=None, connectable=True):
        if interval_us is not None and len(self.conns) >= self.max_conns:
            self.adv_full += 1
            raise OSError(_ENOMEM)       # no slot for another connection (ble_gap_adv_start)
        self.advertising = interval_us is not None


class SimLaptop:
    """A central: connects, answers the trainer's Security Request by
    encrypting with the key it holds (the trainer looks its LTK up: GET_SECRET
    type 1) or by pairing afresh (NimBLE first checks for an old bond of that
    address, GET_SECRET type 2, and deletes it for a repeat pairing), reads,
    subscribes, writes in MTU-3 chunks.

    bonds=False pairs without bonding (nothing is stored; NimBLE says
    bonded=0). keys_first picks NimBLE's order at the end of a pairing:
    False, as apache/mynewt-nimble: the encryption update, then the keys
    are stored; True, as recent esp-nimble: the keys, then the update.
    ident: the identity address it hands over while pairing (its keys are
    stored under it, as for a laptop with a private address); auto=False:
    it answers the Security Request only when respond() (or steps()) is
    called; keys_later: it stops after the encryption update, store_keys()
    ends the pairing."""

    def __init__(self, stack, addr, ltk=None, mtu=247, pairs=True, encrypts=True, greet=None,
                 bonds=True, keys_first=False, ident=None, auto=True, keys_later=False):
        self.s = stack
        self.greet = greet       # bytes it writes as soon as its link is encrypted
        self.addr = addr
        self.ident = ident or addr
        self.ltk = ltk           # what this laptop remembers of a bond
        self.mtu = mtu
        self.pairs = pairs
        self.encrypts = encrypts
        self.bonds = bonds
        self.keys_first = keys_first
        self.keys_later = keys_later
        self.auto = auto
        self.asked = 0           # Security Requests received
        self.encryptions = 0     # times its link was encrypted
        self.h = None
        self.encrypted = False
        self.rx = bytearray()    # reassembled notifications
        self.sizes = []
        self.subscribed = []     # value handles whose CCCD it wrote
        self.updates = []        # (handle, value) notified through a subscription
        self.store_failed = 0

    def irq(self, ev, data):
        return self.s.irq_cb(ev, data)

    def _be(self):
        return (self.addr[0], memoryview(bytes(reversed(self.addr[1:]))))

    def connect(self):
        assert self.s.advertising, "the trainer is not advertising"
        self.s.advertising = False
        self.s.next += 1
        self.h = self.s.next
        self.s.conns[self.h] = self
        t, a = self._be()
        self.irq(1, (self.h, t, a))

    def exchange_mtu(self, ours):
        self.irq(21, (self.h, min(ours, self.mtu)))

    def security_request(self):
        self.asked += 1
        if self.auto:
            self.respond()

    def respond(self):
        """Encrypt with the bond it holds, else pair (as it is configured)."""
        for _ in self.steps():
            pass

    def steps(self):
        """respond() one IRQ at a time (a generator), so a check can
        interleave two laptops the way NimBLE may."""
        if not self.encrypts or self.h is None:
            return
        if self.ltk is not None:
            v = self.irq(29, (1, 0, memoryview(self.addr)))
            yield
            if v is None or bytes(v) != self.ltk:
                self.drop()              # key missing on the trainer: encryption fails
                return
            yield from self._encrypted(1)
        elif self.pairs:
            if self.irq(29, (2, 0, memoryview(self.addr))) is not None:   # repeat pairing
                for t in (1, 2):
                    n = 0
                    while self.irq(30, (t, memoryview(self.addr), None)):
                        n += 1
                        assert n < 10, "delete never reports 'gone': NimBLE would loop"
            yield
            if not self.bonds:
                yield from self._encrypted(0)
            elif self.keys_first:
                yield from self._store()
                yield from self._encrypted(1)
            else:
                yield from self._encrypted(1)
                if not self.keys_later:
                    yield from self._store()
        if self.greet is not None and self.h is not None:
            self.write(self.greet)

    def store_keys(self):
        """keys_later: the end of its pairing, the keys stored."""
        for _ in self._store():
            pass

    def _encrypted(self, bonded):
        if self.h is None:
            return
        self.encrypted = True
        self.encryptions += 1
        self.irq(28, (self.h, 1, 0, bonded, 16))
        yield

    def _store(self):
        ours = b"LTK-" + self.ident
        for t, v in ((1, ours), (2, b"IRK-" + self.ident)):
            if not self.irq(30, (t, memoryview(self.ident), memoryview(v))):
                self.store_failed += 1   # NimBLE would now unpair its oldest peers
            yield
        self.ltk = ours

    def read(self, uuid):
        """The value, or None when the stack refuses (insufficient encryption)."""
        h = self.s.handle_of(uuid)
        if self.s.attrs[h][1] & 0x0200 and not self.encrypted:
            return None
        return self.s.values[h]

    def subscribe(self, uuid):
        """Write the CCCD: NimBLE asks no encryption for it."""
        self.subscribed.append(self.s.handle_of(uuid))

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
        t, a = self._be()
        self.irq(2, (h, t, a))


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

    class Conn:                      # aioble's DeviceConnection, as far as advertise() returns it
        def __init__(self, h):
            self._conn_handle = h
            self.encrypted = False
            self.mtu = None

        def is_connected(self):
            return self._conn_handle is not None

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
        try:
            await state["flag"].wait()
        except asyncio.CancelledError:   # as aioble: cancelling stops advertising
            stack.gap_advertise(None)
            return None
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

