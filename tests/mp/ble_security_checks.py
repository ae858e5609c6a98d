# Checks of what SECURITY.md says BleLink (firmware/links/ble_link.py)
# defends, against the simulated radio (sim_radio.py) on virtual time with
# the link's own grace periods: nothing readable or notified before encryption,
# a peer that encrypts without a saved key goes at once, short graces, a
# stranger cannot keep her bonded laptop out, store IRQs go to the right
# connection, the first bond closes pairing mode. MicroPython only (every
# name ends in _mp); run by tests/test_links.py beside ble_checks.py.
import asyncio
from knip import protocol as P
from linkkit import Echo, sleep0, until
from sim_radio import NUS_TX, SimLaptop, install
from ble_checks import _ADDR_A, _ADDR_B, _ADDR_D, _bond_file, _link, _read, _tmp, later, settle

_ADDR_E = b"\x01\xd0\x0d\x00\x00\x00\x02"
_ID_D = b"\x00\xaa\xbb\xcc\xdd\xee\x01"      # identity addresses handed over while pairing
_ID_E = b"\x00\xaa\xbb\xcc\xdd\xee\x02"      # (laptops that connect with a private address)
_DIS = (0x2A29, 0x2A24, 0x2A26, 0x2A25)     # manufacturer, model, firmware, serial number


def _hers(name):
    """A bond file that knows her laptop (address A) and the trainer's own key."""
    path = _tmp(name)
    _bond_file(path, [(10, b"irk", b"OUR-IRK"), (1, _ADDR_A, b"LTK-A"), (2, _ADDR_A, b"IRK-A")])
    return path


def _trainer(name, hers=True, **kw):
    """A fresh radio and a link on virtual time with its own grace periods;
    hers: her laptop (address A) is already paired."""
    stack, _ = install()
    path = _hers(name) if hers else _tmp(name)
    kw.setdefault("grace_ms", None)
    return stack, path, _link(stack, path, **kw)


def _serve(link, body):
    """Run `await body(app)` while the link serves an echo app; stop after."""
    async def main():
        app = Echo(link)
        task = asyncio.create_task(app.run())
        await settle()
        try:
            return await body(app)
        finally:
            task.cancel()
            link.stop()
            await sleep0()
    return asyncio.run(main())


async def _in(stack, laptop):
    """Connect once the trainer advertises; let the link act on it."""
    await until(lambda: stack.advertising)
    laptop.connect()
    await settle()
    return laptop


def test_ble_nothing_is_readable_or_notified_before_encryption_mp():
    level = [80]
    stack, _, link = _trainer("sec1.json", battery_ms=1000, battery=lambda: (level[0], 3900))

    async def body(app):
        s = await _in(stack, SimLaptop(stack, _ADDR_B, encrypts=False))
        seen = [s.read(u) for u in _DIS + (0x2A19,)]
        assert seen == [None] * 5, seen
        s.subscribe(0x2A19)                  # a CCCD needs no encryption ...
        s.subscribe(NUS_TX)
        level[0] = 70
        await later(link, 1000)              # ... but the new level is not notified to him
        a = await _in(stack, SimLaptop(stack, _ADDR_A, ltk=b"LTK-A"))
        assert link.trusted and s.h is None
        mine = [a.read(u) for u in _DIS + (0x2A19,)]
        a.subscribe(0x2A19)
        level[0] = 65
        await later(link, 1000)              # her laptop, alone and trusted, is told
        return s, a, mine
    s, a, mine = _serve(link, body)
    assert s.updates == [] and not s.rx
    assert mine == [b"Knip open hardware", b"Knip trainer", b"0.4.0", b"knip-0007", bytes((70,))]
    assert a.updates == [(stack.handle_of(0x2A19), bytes((65,)))]


def test_ble_a_peer_encrypted_without_a_bond_goes_at_once_mp():
    stack, path, link = _trainer("sec2.json")
    before = _read(path)

    async def body(app):
        out = []
        # outside pairing mode: pairing without bonding, and pairing with
        # bonding in both NimBLE orders (update then keys, keys then update)
        for kw in ({"bonds": False}, {"keys_first": True}, {}):
            x = await _in(stack, SimLaptop(stack, _ADDR_B, **kw))
            out.append((x.encryptions, x.h, link.clock.now))
            assert x.h is None, (kw, out)
        # in pairing mode one that does not bond goes at once too, and the
        # window stays open for her laptop
        link.pairing(60)
        y = await _in(stack, SimLaptop(stack, _ADDR_E, bonds=False))
        out.append((y.encryptions, y.h, link.clock.now, link.pairing_open()))
        return out
    out = _serve(link, body)
    assert out[:3] == [(1, None, 0)] * 3, out
    assert out[3] == (1, None, 0, True), out
    assert link.refusals == 4 and link.bonded_now == 0 and link.bonds.peers() == 1
    assert _read(path) == before


def test_ble_a_laptop_bonding_in_the_window_waits_for_its_keys_a_moment_only_mp():
    stack, _, link = _trainer("sec3.json", hers=False)

    async def body(app):
        link.pairing(60)
        # NimBLE may report the encryption before the keys are stored
        d = await _in(stack, SimLaptop(stack, _ADDR_D, keys_later=True))
        assert d.encrypted and d.h is not None and not link.trusted
        await later(link, 900)
        assert d.h is not None               # still bonding: not dropped
        d.store_keys()
        await settle()
        assert link.trusted and not link.pairing_open() and link.bonded_now == 1
        d.drop()
        # one whose keys never come has a second
        link.pairing(60)
        e = await _in(stack, SimLaptop(stack, _ADDR_E, keys_later=True))
        await later(link, 999)
        held = e.h is not None
        await later(link, 1)
        gone = e.h is None
        # pairing mode runs out in the middle of a pairing: no half bond stays
        link.pairing(1)
        f = await _in(stack, SimLaptop(stack, _ADDR_B, keys_first=True, auto=False))
        sf = f.steps()
        next(sf)                             # NimBLE checks for an old bond,
        next(sf)                             # stores our key for it, and then ...
        await later(link, 1000)
        for _ in sf:                         # ... its keys, after pairing mode closed
            pass
        await settle()
        return held, gone, f.h, link.bonds.get(1, 0, _ADDR_B)
    out = _serve(link, body)
    assert out == (True, True, None, None), out
    assert link.bonds.peers() == 1 and link.bonded_now == 1


def test_ble_silent_peers_get_a_short_grace_outside_pairing_mode_mp():
    stack, _, link = _trainer("sec4.json")

    async def body(app):
        out = []
        for pairing, grace in ((False, 3000), (True, 8000)):
            if pairing:
                link.pairing(60)
            s = await _in(stack, SimLaptop(stack, _ADDR_B, encrypts=False))
            await later(link, grace - 1)
            held = s.h is not None
            await later(link, 1)
            out.append((held, s.h))
            assert out[-1] == (True, None), (pairing, out)
        link.pairing(0)
        # a stack with one connection slot: advertising waits for the
        # stranger's grace, then her laptop gets in
        stack.max_conns = 1
        s = await _in(stack, SimLaptop(stack, _ADDR_B, encrypts=False))
        await later(link, 2999)
        held = s.h is not None and not stack.advertising and stack.adv_full > 0
        await later(link, 1)                 # his grace ends: the slot is hers
        a = await _in(stack, SimLaptop(stack, _ADDR_A, ltk=b"LTK-A"))
        out.append((held, s.h, link.trusted, a.h is not None))
        return out
    out = _serve(link, body)
    assert out[2] == (True, None, True, True), out


def test_ble_a_stranger_cannot_keep_her_bonded_laptop_out_mp():
    stack, _, link = _trainer("sec5.json")
    w = P.FrameWriter()

    async def body(app):
        for i in range(3):                   # he connects again and again, and never pairs
            s = await _in(stack, SimLaptop(stack, _ADDR_E if i % 2 else _ADDR_B, encrypts=False))
            assert stack.advertising         # a slot stays free for her
            a = await _in(stack, SimLaptop(stack, _ADDR_A, ltk=b"LTK-A"))
            assert link.trusted and s.h is None and not stack.advertising
            a.write(bytes(w.message(P.PING, i, b"mine %d" % i)))
            await until(lambda: len(app.got) == i + 1)
            await until(lambda: a.rx)
            a.drop()
            await settle()
        # two strangers fill both slots: no advertising until their grace ends
        s1 = await _in(stack, SimLaptop(stack, _ADDR_B, encrypts=False))
        s2 = await _in(stack, SimLaptop(stack, _ADDR_E, encrypts=False))
        full = not stack.advertising
        await later(link, link.grace_ms)
        return full, s1.h, s2.h, stack.advertising
    full, h1, h2, adv = _serve(link, body)
    assert full and h1 is None and h2 is None and adv
    assert link.refusals == 5 and link.clock.now == 3000     # no grace had to run out for her


def test_ble_store_irqs_go_to_the_right_connection_mp():
    stack, path, link = _trainer("sec6.json")
    before = _read(path)

    async def body(app):
        out = []
        # her laptop restores its bond while a stranger pairs: NimBLE's
        # lookups and stores interleave; only the address tells them apart
        for first in (0, 1):
            s = await _in(stack, SimLaptop(stack, _ADDR_B, auto=False))
            a = await _in(stack, SimLaptop(stack, _ADDR_A, ltk=b"LTK-A", auto=False))
            sa, ss = a.steps(), s.steps()
            next(sa if first == 0 else ss)   # one of them starts
            next(ss if first == 0 else sa)   # the other starts
            for _ in ss:                     # he finishes pairing ...
                pass
            for _ in sa:                     # ... then her link is encrypted
                pass
            await settle()
            out.append((link.trusted, a.h is not None, s.h))
            a.drop()
            await settle()
        # one holding her address is replaced when her laptop connects
        sp = await _in(stack, SimLaptop(stack, _ADDR_A, encrypts=False))
        a = await _in(stack, SimLaptop(stack, _ADDR_A, ltk=b"LTK-A"))
        out.append((link.trusted, a.h is not None, sp.h))
        return out
    out = _serve(link, body)
    assert out == [(True, True, None)] * 3, out
    assert _read(path) == before and link.bonded_now == 0


def test_ble_the_first_bond_closes_pairing_mode_mp():
    out = []
    for keys_first in (False, True):
        # her new laptop (private address) pairs while a stranger idles beside it
        stack, _, link = _trainer("sec7.json", hers=False)

        async def beside(app):
            link.pairing(60)
            s = await _in(stack, SimLaptop(stack, _ADDR_B, encrypts=False))
            d = await _in(stack, SimLaptop(stack, _ADDR_D, ident=_ID_D, keys_first=keys_first))
            return link.trusted, d.h is not None, s.h, link.pairing_open()
        out.append(_serve(link, beside))
        out.append((link.bonds.peers(), link.bonds.get(2, 0, _ID_D)))
    assert out == [(True, True, None, False), (1, b"IRK-" + _ID_D)] * 2, out

    for ident in (True, False):
        # two laptops pair at the same moment
        stack, _, link = _trainer("sec8.json", hers=False)

        async def both(app):
            link.pairing(60)
            d = await _in(stack, SimLaptop(stack, _ADDR_D, ident=_ID_D if ident else None, auto=False))
            e = await _in(stack, SimLaptop(stack, _ADDR_E, ident=_ID_E if ident else None, auto=False))
            sd, se = d.steps(), e.steps()
            next(sd)
            next(se)
            for _ in sd:
                pass
            for _ in se:
                pass
            await settle()
            await later(link, 1000)
            return d.h, e.h, link.trusted, link.pairing_open()
        dh, eh, trusted, open_ = _serve(link, both)
        if ident:
            # with private addresses the keys could be either's: neither bonds,
            # pairing mode stays open for the next try
            assert dh is None and eh is None and not trusted and open_ and link.bonds.peers() == 0
        else:
            # by address: the first bonds and closes pairing mode, the second is refused
            assert dh is not None and eh is None and trusted and not open_
            assert link.bonds.peers() == 1 and link.bonds.get(2, 0, _ADDR_E) is None
        assert link.bonded_now == (0 if ident else 1)
