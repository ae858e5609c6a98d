# BLE link for the ESP32 (aioble over MicroPython's NimBLE bluetooth module),
# with the link interface of docs/BOARD.md: the Nordic UART Service carries
# the same COBS byte stream as USB (docs/PROTOCOL.md 8.2), beside the Device
# Information (0x180A) and Battery (0x180F) services.
#
# Security: only a bonded peer on an encrypted link may use the pipe. Bonds
# come from LE Secure Connections pairing (Just Works: the trainer has no
# display) and are kept in a JSON file on flash, so they survive a reboot.
# MicroPython offers no hook to refuse a pairing request, so the link holds
# the bond store itself (the GET/SET_SECRET IRQs): outside pairing mode it
# refuses to store a new peer's keys, and a peer counts as bonded only when
# its link was encrypted with a key already in the store (a lookup hit) or
# it stored its keys while pairing mode was open. Anyone else gets nothing
# through the pipe (its writes are dropped, nothing is notified to it) and
# is disconnected: at once when its pairing is refused, else after _AUTH_MS.
#
# Device only: needs `bluetooth` and aioble (`mpremote mip install aioble`).
import asyncio
import binascii
import json
import os
import time
import bluetooth
from micropython import const, schedule
import aioble
import aioble.security       # registers the pairing / encryption-state IRQs
from aioble import core as _core
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
_SEC_PEER = const(2)         # the peer's keys (IRK, LTK); CCCDs are 3, our IRK 10
_IO_NONE = const(3)          # no display, no keyboard: Just Works
_ENOTCONN = const(107)

_ADV_US = const(200000)      # advertising interval
_AUTH_MS = const(8000)       # grace for a peer to encrypt with a bond
_POLL_MS = const(500)
_BATT_MS = const(60000)      # battery level update
_RX_MAX = const(512)         # largest write the stack keeps for RX (append mode)
_RX_RING = const(1024)
_MAX_PEERS = const(4)        # bonds kept; the oldest laptop is forgotten first

_NUS = bluetooth.UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E")
_NUS_RX = bluetooth.UUID("6E400002-B5A3-F393-E0A9-E50E24DCCA9E")
_NUS_TX = bluetooth.UUID("6E400003-B5A3-F393-E0A9-E50E24DCCA9E")


class Bonds:
    """The pairing keys NimBLE asks for, as [type, key, value] entries, newest
    last; saved as JSON (base64) through a temporary file and a rename, so a
    power cut leaves the old or the new file, never half of one.

    While staging, changes go to an overlay that NimBLE sees for the rest of
    the connection but that is never saved (discard() drops it). A refused
    write must still succeed for NimBLE: on a failed write it would unpair
    its oldest peers to make room (ble_store_util_status_rr), and a refused
    delete would make it retry a repeat pairing forever."""

    def __init__(self, path):
        self.path = path
        self.entries = []
        self.staged = None
        self.dirty = False
        self.hit = False         # the last get() came from the saved store
        try:
            with open(path) as f:
                for t, k, v in json.load(f):
                    self.entries.append([t, binascii.a2b_base64(k), binascii.a2b_base64(v)])
        except (OSError, ValueError, TypeError):
            pass                 # no bonds yet (or an unreadable file: pair again)

    def _view(self):
        s = self.staged
        if s is None:
            return self.entries
        out = [e for e in self.entries if not [x for x in s if x[0] == e[0] and x[1] == e[1]]]
        return out + [x for x in s if x[2] is not None]

    def get(self, sec_type, index, key):
        self.hit = False
        i = 0
        for e in self._view():
            if e[0] == sec_type:
                if (key is None and i == index) or (key is not None and e[1] == key):
                    self.hit = [x for x in self.entries if x is e] != []
                    return e[2]
                i += 1
        return None

    def set(self, sec_type, key, value):
        """Store (value) or delete (None); a delete returns False when nothing was there."""
        had = [e for e in self._view() if e[0] == sec_type and e[1] == key] != []
        if self.staged is not None:
            self.staged = [x for x in self.staged if not (x[0] == sec_type and x[1] == key)]
            self.staged.append([sec_type, key, value])
            return had or value is not None
        self.entries = [e for e in self.entries if not (e[0] == sec_type and e[1] == key)]
        if value is None:
            self.dirty = self.dirty or had
            return had
        if sec_type == _SEC_PEER and not had:
            peers = [e[1] for e in self.entries if e[0] == _SEC_PEER]
            if len(peers) >= _MAX_PEERS:
                self.forget(peers[0])
        self.entries.append([sec_type, key, value])
        self.dirty = True
        return True

    def stage(self):
        if self.staged is None:
            self.staged = []

    def discard(self):
        self.staged = None

    def forget(self, key=None):
        """Drop every entry of one peer, or of all peers (never our own identity key)."""
        self.entries = [e for e in self.entries if e[0] >= 10 or (key is not None and e[1] != key)]
        self.dirty = True

    def peers(self):
        return sum(1 for e in self.entries if e[0] == _SEC_PEER)

    def save(self, _=None):
        if not self.dirty:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump([(t, binascii.b2a_base64(k).decode().strip(), binascii.b2a_base64(v).decode().strip())
                       for t, k, v in self.entries], f)
        os.rename(tmp, self.path)
        self.dirty = False


class BleLink:
    def __init__(self, name="Knip", device_id="", battery=None, firmware="0.4.0", mtu=247,
                 bonds="/ble_bonds.json", manufacturer="Knip open hardware", model="Knip trainer",
                 grace_ms=_AUTH_MS, battery_ms=_BATT_MS, clock=time):
        self._t = clock          # ticks_ms/ticks_diff/ticks_add: `time` on the board; tests pass virtual time
        self.name = name
        self.mtu = mtu
        self.battery = battery
        self.grace_ms = grace_ms
        self.battery_ms = battery_ms
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
        self._conn = None
        self._handle = None      # connection handle of the current central (IRQ side)
        self._enc = False
        self._known = False      # encrypted with a key from the store
        self._stored = False     # stored its keys in pairing mode
        self._refused = False    # tried to pair outside pairing mode
        self._mtu_now = 23
        self._tasks = None
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
        dis = aioble.Service(bluetooth.UUID(0x180A))
        aioble.Characteristic(dis, bluetooth.UUID(0x2A29), read=True, initial=manufacturer)
        aioble.Characteristic(dis, bluetooth.UUID(0x2A24), read=True, initial=model)
        aioble.Characteristic(dis, bluetooth.UUID(0x2A26), read=True, initial=firmware)
        sn = aioble.Characteristic(dis, bluetooth.UUID(0x2A25), read=True, initial=device_id or name)
        sn.flags |= _FLAG_READ_ENCRYPTED     # the device id is hers: bonded readers only
        services = [nus, dis]
        self.level = self._level()
        self.batt = None
        if self.level >= 0:      # a board that cannot measure its battery has no Battery Service
            bas = aioble.Service(bluetooth.UUID(0x180F))
            self.batt = aioble.Characteristic(bas, bluetooth.UUID(0x2A19), read=True, notify=True,
                                              initial=bytes((self.level,)))
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

    def pairing_open(self):
        u = self._pair_until
        return u is not None and self._t.ticks_diff(u, self._t.ticks_ms()) > 0

    def forget_bonds(self):
        """Forget every laptop (e.g. on a factory reset); they must pair again."""
        self.bonds.forget()
        self.bonds.save()
        if self._conn is not None:
            self._refused = True
            self.wake.set()

    @property
    def connected(self):
        return self._handle is not None

    @property
    def trusted(self):
        return self._ok(self._handle)

    def _ok(self, h):
        # known or stored: the peer's keys are in the saved store, i.e. bonded
        return (h is not None and h == self._handle and self._enc
                and not self._refused and (self._known or self._stored))

    # ---- IRQ (runs before aioble's handlers; None lets them see the event) -

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
            v = self.bonds.get(t, index, None if key is None else bytes(key))
            if v is not None and key is not None and t == _SEC_OUR and self.bonds.hit:
                self._known = True                   # the peer encrypts with a saved key
            return v
        elif event == _IRQ_SET_SECRET:
            t, key, value = data
            b = self.bonds
            if t < 10 and (b.staged is not None or not self.pairing_open()):
                # Outside pairing mode the saved bonds never change: a peer
                # pairing now is refused, its keys live only in the overlay.
                if value is not None and (t == _SEC_OUR or t == _SEC_PEER):
                    self._refused = True
                    self.wake.set()
                b.stage()
                return b.set(t, bytes(key), None if value is None else bytes(value))
            ok = b.set(t, bytes(key), None if value is None else bytes(value))
            if ok and value is not None and t == _SEC_PEER:
                self._stored = True
                self.wake.set()
            if b.dirty:
                try:
                    schedule(self._save, None)       # flash writes outside the IRQ
                except RuntimeError:
                    pass                             # queue full: saved with the next change
            return ok
        elif event == _IRQ_ENCRYPTION_UPDATE:
            h, enc, _auth, _bonded, _size = data
            if h == self._handle:
                self._enc = bool(enc)
                self.wake.set()
        elif event == _IRQ_MTU_EXCHANGED:
            h, mtu = data
            if h == self._handle:
                self._mtu_now = mtu
        elif event == _IRQ_CENTRAL_CONNECT:
            self._handle = data[0]
            self._enc = self._known = self._stored = self._refused = False
            self._mtu_now = 23
            self.bonds.discard()
            self.ring.clear()
        elif event == _IRQ_CENTRAL_DISCONNECT:
            if data[0] == self._handle:
                self._handle = None
                self._enc = False
                self.bonds.discard()                 # a refused peer's keys are forgotten
                self.wake.set()
        return None

    # ---- connections --------------------------------------------------------

    def start(self):
        if self._tasks is None:
            self._tasks = (asyncio.create_task(self._advertise()), asyncio.create_task(self._battery()))

    def stop(self):
        """Stop advertising and serving (close() also switches the radio off)."""
        for t in self._tasks or ():
            t.cancel()
        self._tasks = None
        if self._handle is not None:
            try:
                self.ble.gap_disconnect(self._handle)
            except OSError:
                pass
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
        return {"name": self.name, "connected": self._handle is not None, "encrypted": self._enc,
                "bonded": self.trusted,
                "pairing": self.pairing_open(), "bonds": self.bonds.peers(), "mtu": self._mtu_now,
                "refused": self.refusals, "sent": self.sent, "received": self.received}

    async def _advertise(self):
        while True:          # advertise again after every disconnect
            try:
                conn = await aioble.advertise(_ADV_US, name=self.name, services=[_NUS])
            except Exception:
                await asyncio.sleep_ms(1000)
                continue
            if conn is None:     # aioble returns None when advertising was cancelled (stop())
                return
            self._conn = conn
            try:
                await self._session(conn)
            except Exception:
                pass
            finally:
                self._conn = None
                if conn.is_connected():
                    try:
                        await conn.disconnect()
                    except Exception:
                        pass

    async def _wait(self, ms):
        try:
            await asyncio.wait_for_ms(self.wake.wait(), ms)
        except asyncio.TimeoutError:
            pass

    async def _session(self, conn):
        try:
            await conn.exchange_mtu(self.mtu, timeout_ms=1000)
        except Exception:
            pass                 # the central asked already, or keeps 23
        t = self._t
        start = t.ticks_ms()
        try:                     # Security Request: a bonded laptop encrypts, a new one pairs
            self.ble.gap_pair(conn._conn_handle)
        except Exception:
            pass                 # already encrypting, or gone: judged below
        while (conn.is_connected() and not self.trusted and not self._refused
               and t.ticks_diff(t.ticks_ms(), start) < self.grace_ms):
            await self._wait(_POLL_MS)
        if not self.trusted:
            self.refusals += 1
            return               # _advertise disconnects it
        if self._stored:
            self.bonded_now += 1
            self._pair_until = None          # one laptop per press
        while conn.is_connected() and self.trusted:
            await self._wait(_POLL_MS)

    def _level(self):
        """Battery percent for 0x2A19, -1 when unknown."""
        if self.battery is None:
            return -1
        pct = self.battery()[0]
        return -1 if pct < 0 else (100 if pct > 100 else pct)

    async def _battery(self):
        while self.batt is not None:
            await asyncio.sleep_ms(self.battery_ms)
            try:
                lv = self._level()
                if lv >= 0 and lv != self.level:
                    self.level = lv
                    self.batt.write(bytes((lv,)), send_update=True)
            except Exception:
                pass

    # ---- the link interface -------------------------------------------------

    def _notify(self, chunk):
        h = self._handle
        if not self._ok(h):
            raise OSError(_ENOTCONN)
        self.ble.gatts_notify(h, self._tx_h, chunk)

    async def readinto(self, buf):
        """Wait for bytes from the bonded host; put up to len(buf) in buf."""
        if self._tasks is None:
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
            if not self._ok(self._handle):
                raise OSError(_ENOTCONN)
            await self.chunker.send(data, self._mtu_now - 3, self._send)
            self.sent += len(data)
