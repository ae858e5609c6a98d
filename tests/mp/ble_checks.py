# Checks of BleLink (firmware/links/ble_link.py) against the simulated radio
# (sim_radio.py), with grace periods and pairing windows on virtual time:
# services and advertising, bonded and refused laptops, pairing mode, a host
# lost mid-frame. What it defends against: ble_security_checks.py, which
# shares the helpers here. MicroPython only (every name ends in _mp); run by
# tests/test_links.py beside links_checks.py.
import sys
import asyncio
from knip import protocol as P
from signals import Lcg
from linkkit import Echo, decode, noise, sleep0, until
from sim_radio import NUS, NUS_RX, NUS_TX, SimClock, SimLaptop, install

_ADDR_A = b"\x00\x11\x22\x33\x44\x55\x66"      # NimBLE keys: ble_addr_t (type + 6 bytes)
_ADDR_B = b"\x00\x99\x88\x77\x66\x55\x44"
_ADDR_D = b"\x01\xc0\xff\xee\x00\x00\x01"


def _tmp(name):
    import os
    d = os.getenv("KNIP_TMP") or "."
    p = d + "/" + name
    try:
        os.remove(p)
    except OSError:
        pass
    return p


def _bond_file(path, entries):
    import json
    import binascii
    with open(path, "w") as f:
        json.dump([(t, binascii.b2a_base64(k).decode().strip(), binascii.b2a_base64(v).decode().strip())
                   for t, k, v in entries], f)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _link(stack, path, **kw):
    """A BleLink on virtual time: link.clock.advance(ms) lets ms pass for it
    (grace_ms 400 unless given; None: the link's own)."""
    from links.ble_link import BleLink
    if kw.setdefault("grace_ms", 400) is None:
        del kw["grace_ms"]
    clock = kw.setdefault("clock", SimClock())
    link = BleLink(name="Knip", device_id="knip-0007", battery=kw.pop("battery", lambda: (77, 3990)),
                   bonds=path, **kw)
    clock.watch(link.wake)
    link.clock = clock
    return link


async def settle():
    """Let every task run what it can without time passing (the link needs
    5 scheduling rounds today; 16 leave room)."""
    for _ in range(16):
        await sleep0()


async def later(link, ms):
    """Let ms of virtual time pass for the link, then let it act."""
    link.clock.advance(ms)
    await settle()


def test_ble_link_services_and_advertising_mp():
    stack, _ = install()
    level = [77]
    link = _link(stack, _tmp("bonds0.json"), battery=lambda: (level[0], 3990), battery_ms=40)

    def val(uuid):
        return stack.values[stack.handle_of(uuid)]

    def flags(uuid):
        return stack.attrs[stack.handle_of(uuid)][1]
    assert val(0x2A26) == b"0.4.0" and val(0x2A25) == b"knip-0007" and val(0x2A29) and val(0x2A24)
    assert all(flags(u) & 0x0200 for u in (0x2A29, 0x2A24, 0x2A26, 0x2A25, 0x2A19))   # encrypted reads only
    assert flags(NUS_RX) & 0x1000 and flags(NUS_RX) & 0x0C == 0x0C   # write + write-no-response, encrypted
    assert flags(NUS_TX) & 0x10 and val(0x2A19) == bytes((77,))
    assert stack.buffers[stack.handle_of(NUS_RX)] == (512, True)
    assert stack.cfg["bond"] and stack.cfg["le_secure"] and not stack.cfg["mitm"] and stack.cfg["io"] == 3
    assert stack.cfg["mtu"] == 247 and stack.cfg["gap_name"] == "Knip"

    async def main():
        link.start()
        await until(lambda: stack.adv)
        level[0] = 55
        await later(link, 39)
        assert val(0x2A19) == bytes((77,))
        await later(link, 1)
        link.stop()
    asyncio.run(main())
    assert stack.adv[0][1] == "Knip" and stack.adv[0][2] == [NUS]
    assert val(0x2A19) == bytes((55,)) and stack.updates == []     # nobody to notify
    info = link.info()
    assert info["name"] == "Knip" and info["connected"] is False and info["bonds"] == 0
    assert info["pairing"] is False and not stack.advertising
    link.close()
    assert link._irq not in sys.modules["aioble.core"]._irq_handlers and not stack.on
    # a board that cannot measure its battery offers no Battery Service
    stack, _ = install()
    _link(stack, _tmp("bonds0b.json"), battery=lambda: (-1, 0))
    try:
        stack.handle_of(0x2A19)
        raise AssertionError("Battery Service registered without a battery reading")
    except KeyError:
        pass
    # a MicroPython without pairing support: no unprotected pipe, a clear error
    stack, _ = install()
    stack.no_pairing = True
    try:
        _link(stack, _tmp("bonds0c.json"))
        raise AssertionError("BleLink started without pairing support")
    except RuntimeError as e:
        assert "no BLE pairing support" in str(e)
    assert not sys.modules["aioble.core"]._irq_handlers[:-1]     # only aioble's own handler is left


def test_ble_link_bonded_laptop_talks_in_mtu_chunks_despite_enomem_mp():
    stack, _ = install()
    path = _tmp("bonds1.json")
    _bond_file(path, [(1, _ADDR_A, b"LTK-A"), (2, _ADDR_A, b"IRK-A")])
    link = _link(stack, path)
    w = P.FrameWriter()
    g = Lcg(21)
    stack.full = lambda: g.uniform() < -0.2         # 30 % of notifies hit ENOMEM

    async def main():
        app = Echo(link)
        task = asyncio.create_task(app.run())
        await until(lambda: stack.advertising)
        a = SimLaptop(stack, _ADDR_A, ltk=b"LTK-A", mtu=185)
        a.connect()
        await until(lambda: link.trusted)
        hello = b"\x00" + bytes(w.message(P.PING, 1, noise(600, 2)))
        assert a.write(hello)
        await until(lambda: len(app.got) == 1)
        await until(lambda: len(a.rx) >= 600)
        small = SimLaptop(stack, _ADDR_A, ltk=b"LTK-A", mtu=23)
        a.drop()                                        # she walks away ...
        await until(lambda: stack.advertising)          # ... the trainer advertises again
        small.connect()
        await until(lambda: link.trusted)
        assert small.write(bytes(w.message(P.PING, 2, b"again" * 40)))
        await until(lambda: len(app.got) == 2)
        await until(lambda: len(small.rx) >= 200)
        task.cancel()
        link.stop()
        await sleep0()
        return app, a, small
    app, a, small = asyncio.run(main())
    assert app.got[0] == bytes(noise(600, 2)) and app.got[1] == b"again" * 40
    assert [f[2] for f in decode(bytes(a.rx))] == [bytes(noise(600, 2))]
    assert max(a.sizes) == 182 and all(s == 182 for s in a.sizes[:-1])     # MTU 185
    assert [f[2] for f in decode(bytes(small.rx))] == [b"again" * 40]
    assert max(small.sizes) == 20                                          # MTU 23
    assert link.chunker.retries > 0 and link.refusals == 0 and link.ignored == 0
    assert len(stack.adv) >= 2


def test_ble_link_refuses_a_stranger_and_keeps_her_bonds_mp():
    stack, _ = install()
    path = _tmp("bonds2.json")
    _bond_file(path, [(10, b"irk", b"OUR-IRK"), (1, _ADDR_A, b"LTK-A"), (2, _ADDR_A, b"IRK-A")])
    before = _read(path)
    link = _link(stack, path)
    w = P.FrameWriter()

    async def main():
        app = Echo(link)
        task = asyncio.create_task(app.run())
        out = []
        knock = bytes(w.message(P.PING, 1, b"let me in"))
        for laptop in (SimLaptop(stack, _ADDR_B, greet=knock),          # a stranger pairs afresh
                       SimLaptop(stack, _ADDR_A, greet=knock),          # one spoofing her address
                       SimLaptop(stack, _ADDR_D, encrypts=False)):      # one that never encrypts
            await until(lambda: stack.advertising)
            laptop.connect()
            t0 = link.clock.now
            assert not laptop.write(knock) or laptop.encrypted          # unencrypted: the stack drops it
            try:
                await link.write(bytes(w.message(P.PING, 9, b"secret")))
                out.append("wrote")
            except OSError:
                out.append("refused")
            await settle()
            while laptop.h is not None and link.clock.now - t0 < 2000:
                await later(link, 10)
            out.append(link.clock.now - t0)
        # her own laptop still gets in, with the bond it always had
        await until(lambda: stack.advertising)
        a = SimLaptop(stack, _ADDR_A, ltk=b"LTK-A")
        a.connect()
        await until(lambda: link.trusted)
        a.write(bytes(w.message(P.PING, 2, b"me")))
        await until(lambda: app.got)
        # a factory reset forgets every laptop, her own included
        link.forget_bonds()
        await until(lambda: a.h is None, 2000)
        task.cancel()
        link.stop()
        await sleep0()
        return out, app
    out, app = asyncio.run(main())
    assert out[0] == out[2] == out[4] == "refused"
    assert out[1] == 0 and out[3] == 0         # refused pairings: disconnected at once
    assert out[5] == 400                       # the silent one: after the grace (400 ms)
    assert link.refusals == 4 and app.got == [b"me"]     # 3 strangers, then her laptop after the reset
    assert link.ignored > 0                    # the strangers' writes went nowhere
    assert link.bonds.get(2, 0, _ADDR_B) is None    # the strangers' keys were never kept
    assert link.bonds.peers() == 0 and link.bonds.get(10, 0, b"irk") == b"OUR-IRK"   # after the reset
    from links.bonds import Bonds
    saved = Bonds(path)                        # what a reboot reads back
    assert _read(path) != before and saved.peers() == 0 and saved.get(10, 0, b"irk") == b"OUR-IRK"


def test_ble_link_pairing_mode_bonds_one_laptop_that_survives_a_reboot_mp():
    stack, _ = install()
    path = _tmp("bonds3.json")
    link = _link(stack, path)
    w = P.FrameWriter()

    async def main():
        app = Echo(link)
        task = asyncio.create_task(app.run())
        link.pairing(30)                       # the long button press
        await until(lambda: stack.advertising)
        d = SimLaptop(stack, _ADDR_D)
        d.connect()
        await until(lambda: link.trusted)
        d.write(bytes(w.message(P.PING, 1, b"new laptop")))
        await until(lambda: app.got)
        assert not link.pairing_open()         # one laptop per press
        await until(lambda: not link.bonds.dirty)
        d.drop()
        await until(lambda: stack.advertising)
        e = SimLaptop(stack, _ADDR_B)          # a second one is refused now
        e.connect()
        await until(lambda: e.h is None, 2000)
        task.cancel()
        link.stop()
        await sleep0()
        return d, e
    d, e = asyncio.run(main())
    assert d.store_failed == 0 and e.store_failed == 0 and link.bonded_now == 1
    assert link.bonds.peers() == 1
    # reboot: a new stack and link read the bonds back from flash
    stack, _ = install()
    link2 = _link(stack, path)
    assert link2.bonds.get(1, 0, _ADDR_D) == d.ltk

    async def again():
        app = Echo(link2)
        task = asyncio.create_task(app.run())
        await until(lambda: stack.advertising)
        d2 = SimLaptop(stack, _ADDR_D, ltk=d.ltk)
        d2.connect()
        await until(lambda: link2.trusted)
        d2.write(bytes(w.message(P.PING, 3, b"after reboot")))
        await until(lambda: app.got)
        await until(lambda: d2.rx)
        task.cancel()
        link2.stop()
        await sleep0()
        return app, d2
    app, d2 = asyncio.run(again())
    assert app.got == [b"after reboot"] and [f[2] for f in decode(bytes(d2.rx))] == [b"after reboot"]


def test_ble_link_write_fails_with_oserror_when_the_host_goes_mid_frame_mp():
    stack, _ = install()
    path = _tmp("bonds4.json")
    _bond_file(path, [(1, _ADDR_A, b"LTK-A")])
    link = _link(stack, path)

    async def main():
        link.start()
        await until(lambda: stack.advertising)
        a = SimLaptop(stack, _ADDR_A, ltk=b"LTK-A", mtu=23)
        a.connect()
        await until(lambda: link.trusted)
        n = [0]

        def full():                            # the stack fills up; then she is gone
            n[0] += 1
            if n[0] == 10:
                a.drop()
            return n[0] > 5
        stack.full = full
        try:
            await link.write(bytes(3000))
            r = "sent"
        except OSError as e:
            r = e.args[0]
        link.stop()
        return r, a
    r, a = asyncio.run(main())
    assert r == 107 and 0 < len(a.rx) < 3000


def test_ble_link_pairing_window_expires_mp():
    stack, _ = install()
    path = _tmp("bonds5.json")
    _bond_file(path, [(1, _ADDR_A, b"LTK-A"), (2, _ADDR_A, b"IRK-A")])
    before = _read(path)
    link = _link(stack, path)

    async def main():
        link.start()
        link.pairing(1)
        assert link.pairing_open()
        await later(link, 999)
        assert link.pairing_open()
        await later(link, 1)
        assert not link.pairing_open()
        await until(lambda: stack.advertising)
        late = SimLaptop(stack, _ADDR_B)
        late.connect()
        await settle()
        assert late.h is None                  # paired outside the window: sent away at once
        link.pairing(30)
        link.pairing(0)                        # closed again by the board
        assert not link.pairing_open()
        link.stop()
    asyncio.run(main())
    assert link.refusals == 1 and link.bonded_now == 0 and _read(path) == before
