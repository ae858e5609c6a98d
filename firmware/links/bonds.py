# The BLE bond store (firmware/links/ble_link.py keeps it for NimBLE through
# the GET/SET_SECRET IRQs): the keys of the laptops that paired, saved on
# flash, and an overlay for the keys of peers that may not bond. Portable
# (no bluetooth import).
import binascii
import json
import os
from knip.fixed import const

_SEC_PEER = const(2)         # NimBLE store types: 1 our LTK for a peer, 2 the peer's keys, 10 our IRK
_MAX_PEERS = const(4)        # bonds kept; the oldest laptop is forgotten first


class Bonds:
    """The pairing keys NimBLE asks for, as [type, key, value] entries, newest
    last; saved as JSON (base64) through a temporary file and a rename, so a
    power cut leaves the old or the new file, never half of one.

    Changes NimBLE makes for a peer that may not bond go to an overlay of
    [type, key, value, owner] entries instead: NimBLE sees them while their
    owner (a connection handle) is connected, they are never saved, and
    discard(owner) drops them. A refused write must still succeed for
    NimBLE: on a failed write it would unpair its oldest peers to make room
    (ble_store_util_status_rr), and a refused delete would make it retry a
    repeat pairing forever."""

    def __init__(self, path):
        self.path = path
        self.entries = []
        self.staged = []
        self.dirty = False
        self.hit = False         # the last get() came from the saved store
        try:
            with open(path) as f:
                for t, k, v in json.load(f):
                    self.entries.append([t, binascii.a2b_base64(k), binascii.a2b_base64(v)])
        except (OSError, ValueError, TypeError):
            pass                 # no bonds yet (or an unreadable file: pair again)

    def _find(self, sec_type, key):
        for x in reversed(self.staged):
            if x[0] == sec_type and x[1] == key:
                return x
        for e in self.entries:
            if e[0] == sec_type and e[1] == key:
                return e
        return None

    def get(self, sec_type, index, key):
        self.hit = False
        if key is not None:
            e = self._find(sec_type, key)
            if e is None or e[2] is None:
                return None
            self.hit = len(e) == 3
            return e[2]
        i = 0                    # by index: the saved entries the overlay leaves, then its own
        for e in self.entries + [x for x in self.staged if x[2] is not None]:
            if e[0] == sec_type and self._find(e[0], e[1]) is e:
                if i == index:
                    self.hit = len(e) == 3
                    return e[2]
                i += 1
        return None

    def set(self, sec_type, key, value, owner=None):
        """Store (value) or delete (None): saved when owner is None, else in
        the overlay for that connection. A delete returns False when nothing
        was there."""
        e = self._find(sec_type, key)
        had = e is not None and e[2] is not None
        if owner is not None:
            self.staged = [x for x in self.staged if not (x[0] == sec_type and x[1] == key)]
            self.staged.append([sec_type, key, value, owner])
            return had or value is not None
        self.staged = [x for x in self.staged if not (x[0] == sec_type and x[1] == key)]
        had = [e for e in self.entries if e[0] == sec_type and e[1] == key] != []
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

    def discard(self, owner=None):
        """Drop the overlay of one connection, or all of it."""
        self.staged = [x for x in self.staged if owner is not None and x[3] != owner]

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
