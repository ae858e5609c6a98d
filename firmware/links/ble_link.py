# BLE link for the ESP32 (aioble over MicroPython's NimBLE bluetooth module),
# with the link interface of docs/BOARD.md: the Nordic UART Service carries
# the same COBS byte stream as USB (docs/PROTOCOL.md 8.2), beside the Device
# Information (0x180A) and Battery (0x180F) services. The threat model is in
# SECURITY.md.
#
# Security: only a bonded peer on an encrypted link may use the pipe, and
# every readable value needs an encrypted link. Bonds come from LE Secure
# Connections pairing (Just Works: the trainer has no display) and are kept
# in a JSON file on flash, so they survive a reboot. MicroPython offers no
# hook to refuse a pairing request, so the link holds the bond store itself
# (the GET/SET_SECRET IRQs): outside pairing mode it never saves a new
# peer's keys (they go to an overlay dropped with the connection). A peer is
# trusted when its link was encrypted with a key already in the store (a
# lookup for its address hit) or when it stored its keys while pairing mode
# was open; the first bond closes pairing mode. Anyone else gets nothing
# through the pipe and is disconnected: at once when it encrypts without a
# saved key outside pairing mode (or without bonding in it), else when its
# grace runs out (_GRACE_MS outside pairing mode, _PAIR_MS in it). While no
# peer is trusted the trainer keeps advertising, up to max_conns connections,
# so a stranger holding a connection cannot keep her laptop out; the first
# trusted peer ends every other connection and advertising.
#
# The store IRQs do not say which connection they serve. They are matched
# by address (NimBLE keys the store by the peer's address as its connect
# event reports it, least significant byte first), else to the only peer
# they can belong to; keys that could belong to two pairing peers are never
# saved. NimBLE reports the end of a pairing in either order (encryption
# update, then the keys stored, or the reverse), so a peer that encrypted
# afresh in pairing mode gets _KEYS_MS for its keys to arrive.
#
# Device only: needs `bluetooth` and aioble (`mpremote mip install aioble`).
import asyncio
import time
import bluetooth
from micropython import const, schedule
import aioble
import aioble.security       # registers the pairing / encryption-state IRQs
from aioble import core as _core
from links.bonds import Bonds
from links.chunker import Chunker, RxRing

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)

_FLAG_READ_ENCRYPTED = const(0x0200)
_FLAG_WRITE_ENCRYPTED = const(0x1000)

_SEC_OUR = const(1)          # NimBLE store types: our LTK for a peer,
_SEC_PEER = const(2)         # the peer's keys (IRK, LTK); CCCDs are 3, our IRK 10 (links/bonds.py)
_IO_NONE = const(3)          # no display, no keyboard: Just Works
_ENOTCONN = const(107)

_ADV_US = const(200000)      # advertising interval
_GRACE_MS = const(3000)      # outside pairing mode: a bonded laptop encrypts well within this
_PAIR_MS = const(8000)       # in pairing mode: time for a new laptop to pair
_KEYS_MS = const(1000)       # encrypted afresh in pairing mode: its keys are stored within this
_POLL_MS = const(500)
_BATT_MS = const(60000)      # battery level update
_RX_MAX = const(512)         # largest write the stack keeps for RX (append mode)
_RX_RING = const(1024)
_MAX_CONNS = const(2)        # connections at once while none is trusted (NimBLE has 4 slots)

_NUS = bluetooth.UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E")
_NUS_RX = bluetooth.UUID("6E400002-B5A3-F393-E0A9-E50E24DCCA9E")
_NUS_TX = bluetooth.UUID("6E400003-B5A3-F393-E0A9-E50E24DCCA9E")


class Peer:
    """One connected central, as the IRQs saw it."""

    def __init__(self, h, key, now):
        self.h = h
        self.key = key           # its address as NimBLE's store keys it
        self.t0 = now            # connected (clock ms)
        self.t_enc = now         # encrypted
        self.greeted = False     # MTU exchange and Security Request sent
        self.enc = False
        self.bonding = True      # the encryption update's bonded flag
        self.hit = False         # NimBLE looked up our saved key for it
        self.known = False       # encrypted after that lookup: a bonded laptop
        self.asked = False       # NimBLE checked for an old bond of it: it is pairing
        self.stored = False      # stored its keys in pairing mode: a new bond
        self.wrote = None        # the store key it saved keys under (pairing mode)
        self.refused = False
        self.dropped = False     # disconnect requested
        self.mtu = 23


class BleLink:
    def __init__(self, name="Knip", device_id="", battery=None, firmware="0.4.0", mtu=247,
                 bonds="/ble_bonds.json", manufacturer="Knip open hardware", model="Knip trainer",
                 grace_ms=_GRACE_MS, pair_grace_ms=_PAIR_MS, battery_ms=_BATT_MS,
                 max_conns=_MAX_CONNS, clock=time):
        self._t = clock          # ticks_ms/ticks_diff/ticks_add: `time` on the board; tests pass virtual time
        self.name = name
        self.mtu = mtu
        self.battery = battery
        self.grace_ms = grace_ms
        self.pair_grace_ms = pair_grace_ms
        self.battery_ms = battery_ms
        self.max_conns = max_conns
        self.bonds = Bonds(bonds)
        self.ring = RxRing(_RX_RING)
        self.chunker = Chunker()
        self.lock = asyncio.Lock()
        self.rx_flag = asyncio.ThreadSafeFlag()
        self.wake = asyncio.ThreadSafeFlag()
        self.sent = 0
        self.received = 0
        self.ignored = 0         # bytes written by peers that may not use the pipe
        self.refusals = 0        # peers sent away
        self.bonded_now = 0      # new bonds made in pairing mode
        self._pair_until = None
        self._peers = {}         # connection handle -> Peer (changed by the IRQ only)
        self._handle = None      # the trusted peer's connection: the pipe
        self._mtu_now = 23
        self._task = None
        self._adv = None         # the advertising task
        self._adv_n = 0
        self._adv_after = None   # clock ms: advertising failed, try again then
        self._batt_t = clock.ticks_ms()
        self._send = self._notify
        self._save = self.bonds.save

        ble = _core.ble
        self.ble = ble
        _core._irq_handlers.insert(0, self._irq)    # before aioble.security's store
        aioble.config(mtu=mtu, gap_name=name)
        try:
            aioble.config(bond=True, le_secure=True, mitm=False, io=_IO_NONE)
        except ValueError:       # a build without pairing: the pipe could not be protected
            _core._irq_handlers.remove(self._irq)
            raise RuntimeError("this MicroPython has no BLE pairing support: BLE stays off "
                               "(flash the pinned release with make flash)")

        nus = aioble.Service(_NUS)
        self.tx = aioble.Characteristic(nus, _NUS_TX, notify=True)
        # Writes are taken from the IRQ into our ring (not aioble's capture
        # queue, which keeps 10 writes and drops the rest); unencrypted
        # writes are refused by the stack itself.
        self.rx = aioble.Characteristic(nus, _NUS_RX, write=True, write_no_response=True)
        self.rx.flags |= _FLAG_WRITE_ENCRYPTED
        # Nothing is readable before encryption: who made it, which
        # firmware, her device id and her battery are hers to see.
        dis = aioble.Service(bluetooth.UUID(0x180A))
        for uuid, value in ((0x2A29, manufacturer), (0x2A24, model), (0x2A26, firmware),
                            (0x2A25, device_id or name)):
            c = aioble.Characteristic(dis, bluetooth.UUID(uuid), read=True, initial=value)
            c.flags |= _FLAG_READ_ENCRYPTED
        services = [nus, dis]
        self.level = self._level()
        self.batt = None
        if self.level >= 0:      # a board that cannot measure its battery has no Battery Service
            bas = aioble.Service(bluetooth.UUID(0x180F))
            self.batt = aioble.Characteristic(bas, bluetooth.UUID(0x2A19), read=True, notify=True,
                                              initial=bytes((self.level,)))
            self.batt.flags |= _FLAG_READ_ENCRYPTED
            services.append(bas)
        aioble.register_services(*services)
        self._rx_h = self.rx._value_handle
        self._tx_h = self.tx._value_handle
        ble.gatts_set_buffer(self._rx_h, _RX_MAX, True)

    # ---- pairing mode ------------------------------------------------------

    def pairing(self, seconds=60):
        """Let one new laptop pair within `seconds` (0 closes). The board
        calls this on a long press of the button."""
        t = self._t
        self._pair_until = t.ticks_add(t.ticks_ms(), seconds * 1000) if seconds > 0 else None
        self.wake.set()

    def pairing_open(self):
        u = self._pair_until
        return u is not None and self._t.ticks_diff(u, self._t.ticks_ms()) > 0

    def forget_bonds(self):
        """Forget every laptop (e.g. after one was lost); they must pair again."""
        self.bonds.forget()
        self.bonds.save()
        for p in list(self._peers.values()):
            p.refused = True
        self._handle = None
        self.wake.set()

    @property
    def connected(self):
        return len(self._peers) > 0

    @property
    def trusted(self):
        return self._handle is not None

    def _ok(self, h):
        return h is not None and h == self._handle

    # ---- IRQ (runs before aioble's handlers; None lets them see the event) -

    def _at(self, key):
        """The peer NimBLE keys by this address (if two, the one not refused)."""
        one = None
        for p in self._peers.values():
            if p.key == key and (one is None or one.refused or one.dropped):
                one = p
        return one

    def _sole(self, pairing):
        """The only untrusted peer a lookup of our key (pairing False: one
        not encrypted yet) or a key store (pairing True: one NimBLE checked
        for an old bond, else any not encrypting with a saved key) can be
        for; None when there are several or none."""
        for tier in ((0, 1) if pairing else (2,)):
            one = None
            for p in self._peers.values():
                if p.h == self._handle or p.dropped or p.known or (pairing and p.hit):
                    continue
                if tier == 0 and not p.asked or tier == 2 and p.enc:
                    continue
                if one is not None:
                    return None
                one = p
            if one is not None:
                return one
        return None

    def _irq(self, event, data):
        if event == _IRQ_GATTS_WRITE:
            h, attr = data
            if attr == self._rx_h:
                d = self.ble.gatts_read(attr)        # append mode: all since the last read
                if self._ok(h):
                    self.ring.put(d)
                    self.rx_flag.set()
                else:
                    self.ignored += len(d)
        elif event == _IRQ_GET_SECRET:
            t, index, key = data
            key = None if key is None else bytes(key)
            v = self.bonds.get(t, index, key)
            if key is not None and t < 10:
                p = self._at(key)
                if t == _SEC_PEER and p is not None:
                    p.asked = True                   # the check for an old bond starts a pairing
                elif t == _SEC_OUR and v is not None and self.bonds.hit:
                    p = p or self._sole(False)
                    if p is not None:
                        p.hit = True                 # it is about to encrypt with a saved key
            return v
        elif event == _IRQ_SET_SECRET:
            t, key, value = data
            key = bytes(key)
            value = None if value is None else bytes(value)
            b = self.bonds
            if t >= 10:                              # our own identity key: always kept
                ok = b.set(t, key, value)
            else:
                p = self._at(key) or self._sole(True)
                if p is None or p.refused or not self.pairing_open():
                    # Outside pairing mode the saved bonds never change: a
                    # peer pairing now is refused, its keys live only in the
                    # overlay. So do keys that could be either of two peers.
                    if p is not None and value is not None:
                        p.refused = True
                        self.wake.set()
                    return b.set(t, key, value, -1 if p is None else p.h)
                ok = b.set(t, key, value)
                if value is not None:
                    p.wrote = key
                if ok and value is not None and t == _SEC_PEER:
                    p.stored = True
                    self.bonded_now += 1
                    self._pair_until = None          # the first bond closes pairing mode
                    self.wake.set()
            if b.dirty:
                try:
                    schedule(self._save, None)       # flash writes outside the IRQ
                except RuntimeError:
                    pass                             # queue full: saved with the next change
            return ok
        elif event == _IRQ_ENCRYPTION_UPDATE:
            h, enc, _auth, bonded, _size = data
            p = self._peers.get(h)
            if p is not None:
                p.enc = bool(enc)
                if p.enc:
                    p.known = p.hit
                    p.bonding = bool(bonded)
                    p.t_enc = self._t.ticks_ms()
                else:
                    p.hit = p.known = False
                    if h == self._handle:
                        self._handle = None
                self.wake.set()
        elif event == _IRQ_MTU_EXCHANGED:
            h, mtu = data
            p = self._peers.get(h)
            if p is not None:
                p.mtu = mtu
            if h == self._handle:
                self._mtu_now = mtu
        elif event == _IRQ_CENTRAL_CONNECT:
            h, kind, addr = data
            a = bytearray(7)
            a[0] = kind
            for i in range(6):
                a[6 - i] = addr[i]                  # MicroPython reports it most significant byte first
            key = bytes(a)
            old = self._at(key)
            if old is not None and old.h != self._handle:
                old.refused = True                   # one connection per address: the newer one
            p = Peer(h, key, self._t.ticks_ms())
            if self._handle is not None:
                p.refused = True                     # she is connected: nobody else
            self._peers[h] = p
            self.wake.set()
        elif event == _IRQ_CENTRAL_DISCONNECT:
            h = data[0]
            self._adv_after = None                   # a slot is free again
            if self._peers.pop(h, None) is not None:
                self.bonds.discard(h)                # a refused peer's keys are forgotten
                if not self._peers:
                    self.bonds.discard()
            if h == self._handle:
                self._handle = None
            self.wake.set()
        return None

    # ---- connections --------------------------------------------------------

    def start(self):
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def stop(self):
        """Stop advertising and serving (close() also switches the radio off)."""
        if self._task is not None:
            self._task.cancel()
        self._task = None
        self._stop_adv()
        for h in list(self._peers):
            self._drop(self._peers.get(h))
        try:
            self.ble.gap_advertise(None)
        except OSError:
            pass

    def close(self):
        """Leave the application (REPL request): disconnect, radio off, bonds saved."""
        self.stop()
        self.bonds.save()
        try:
            _core._irq_handlers.remove(self._irq)
        except ValueError:
            pass
        try:
            aioble.stop()
        except Exception:
            pass

    def info(self):
        """For INFO's "ble": small ints and bools only."""
        p = self._peers.get(self._handle) if self._handle is not None else None
        return {"name": self.name, "connected": len(self._peers) > 0, "peers": len(self._peers),
                "encrypted": p is not None and p.enc, "bonded": p is not None,
                "pairing": self.pairing_open(), "bonds": self.bonds.peers(), "mtu": self._mtu_now,
                "refused": self.refusals, "sent": self.sent, "received": self.received}

    async def _run(self):
        while True:
            try:
                self._step()
            except Exception:
                pass             # a peer that went meanwhile: judged again next time
            try:
                await asyncio.wait_for_ms(self.wake.wait(), _POLL_MS)
            except asyncio.TimeoutError:
                pass

    def _step(self):
        """Greet new peers, judge every untrusted one, update the battery
        level and advertise while nobody is trusted and a slot is free."""
        t = self._t
        now = t.ticks_ms()
        open_ = self.pairing_open()
        for p in list(self._peers.values()):
            if p.dropped:
                continue
            if p.h == self._handle:
                if p.refused:    # forgotten, or it paired again outside pairing mode
                    self._handle = None
                    self._refuse(p)
                continue
            if not p.greeted:
                p.greeted = True
                self._greet(p.h)
            if p.refused or (self._handle is not None and p.h != self._handle):
                self._refuse(p)
            elif p.enc and (p.known or p.stored):
                self._trust(p)
            elif p.enc:          # encrypted afresh, keys not stored (yet)
                if not open_ or not p.bonding or t.ticks_diff(now, p.t_enc) >= _KEYS_MS:
                    self._refuse(p)
            elif t.ticks_diff(now, p.t0) >= (self.pair_grace_ms if open_ or p.stored else self.grace_ms):
                self._refuse(p)
        if self.batt is not None and t.ticks_diff(now, self._batt_t) >= self.battery_ms:
            self._batt_t = now
            self._battery()
        if self._handle is None and len(self._peers) < self.max_conns:
            wait = self._adv_after
            if self._adv is None and (wait is None or t.ticks_diff(now, wait) >= 0):
                self._adv_n += 1
                self._adv = asyncio.create_task(self._advertise(self._adv_n))
        else:
            self._stop_adv()

    def _greet(self, h):
        try:
            self.ble.gattc_exchange_mtu(h)           # the answer comes as an MTU IRQ
        except Exception:
            pass                                     # the central asked already, or keeps 23
        try:
            self.ble.gap_pair(h)                     # Security Request: a bonded laptop encrypts, a new one pairs
        except Exception:
            pass

    def _trust(self, p):
        self._handle = p.h
        self._mtu_now = p.mtu
        self.ring.clear()
        for q in list(self._peers.values()):         # she is here: everyone else goes
            if q is not p and not q.dropped:
                self._refuse(q)

    def _refuse(self, p):
        self.refusals += 1
        if p.wrote is not None and not p.stored:
            self.bonds.forget(p.wrote)               # half a bond (pairing mode closed meanwhile)
            self.bonds.save()
        self._drop(p)

    def _drop(self, p):
        if p is None or p.dropped:
            return
        p.dropped = True
        try:
            self.ble.gap_disconnect(p.h)
        except OSError:
            pass

    def _stop_adv(self):
        if self._adv is not None:
            self._adv_n += 1
            self._adv.cancel()
            self._adv = None

    async def _advertise(self, n):
        try:
            # the connection shows up in the IRQ; aioble's object is not needed
            await aioble.advertise(_ADV_US, name=self.name, services=[_NUS])
        except asyncio.CancelledError:
            raise
        except Exception:        # e.g. no free connection slot: again in a second, or when one ends
            t = self._t
            self._adv_after = t.ticks_add(t.ticks_ms(), 1000)
        finally:
            if self._adv_n == n:
                self._adv = None
                self.wake.set()

    def _level(self):
        """Battery percent for 0x2A19, -1 when unknown."""
        if self.battery is None:
            return -1
        pct = self.battery()[0]
        return -1 if pct < 0 else (100 if pct > 100 else pct)

    def _battery(self):
        try:
            lv = self._level()
            if lv >= 0 and lv != self.level:
                self.level = lv
                # notified only while her laptop is the one connection (any
                # peer may subscribe: NimBLE asks no encryption for a CCCD)
                self.batt.write(bytes((lv,)), send_update=self._handle is not None and len(self._peers) == 1)
        except Exception:
            pass

    # ---- the link interface -------------------------------------------------

    def _notify(self, chunk):
        h = self._handle
        if h is None:
            raise OSError(_ENOTCONN)
        self.ble.gatts_notify(h, self._tx_h, chunk)

    async def readinto(self, buf):
        """Wait for bytes from the bonded host; put up to len(buf) in buf."""
        if self._task is None:
            self.start()
        while True:
            n = self.ring.take(buf)
            if n:
                self.received += n
                return n
            await self.rx_flag.wait()

    async def write(self, data):
        """Send one frame as notifications of MTU - 3 bytes; OSError without a bonded host."""
        async with self.lock:
            if self._handle is None:
                raise OSError(_ENOTCONN)
            await self.chunker.send(data, self._mtu_now - 3, self._send)
            self.sent += len(data)
