"""Hardware in the loop over Bluetooth LE: a real trainer advertising as
KNIP_HIL_BLE (or --hil-ble NAME_OR_ADDRESS), reached with bleak through this
host's adapter. The laptop pairs if the trainer does not know it yet (hold
the trainer's button 3 s first to open pairing mode), then HELLO, INFO and
PING go over the Nordic UART pipe, a live stream runs, and a second
connection after a disconnect proves re-advertising and the stored bond.

Skips with the reason when no board name is given, bleak is missing or the
host has no usable Bluetooth adapter. (The same transport runs in `make
test` against a simulated radio: tests/test_ble_host.py.)"""
from __future__ import annotations

import os
import time

import pytest

from knip import protocol as P
from knip_host import ble as B
from knip_host.device import Device, LiveDecoder, iter_stream


@pytest.fixture
def target(request) -> str:
    try:
        name = request.config.getoption("--hil-ble")
    except ValueError:                 # option not registered: the environment only
        name = None
    name = name or os.environ.get("KNIP_HIL_BLE")
    if not name:
        pytest.skip("no BLE board given: set KNIP_HIL_BLE=NAME_OR_ADDRESS (or --hil-ble) "
                    "to run the BLE tests against a real trainer")
    try:
        import bleak  # noqa: F401
    except ImportError:
        pytest.skip(B.NO_BLEAK)
    return name


def _open(target: str) -> Device:
    """Connect; pair only when the trainer refuses this laptop."""
    try:
        link = B.BleSerial(target)
    except B.BleUnavailable as exc:
        pytest.skip(str(exc))
    dev = Device(link.port, ser=link, timeout=5.0)
    try:
        dev.hello()
        return dev
    except B.BleNotPaired:
        dev.close()
    link = B.BleSerial(target, pair=True)       # fails with the hint unless pairing mode is open
    dev = Device(link.port, ser=link, timeout=5.0)
    dev.hello()
    return dev


def test_ble_hello_info_ping(target):
    dev = _open(target)
    try:
        info = dev.hello()
        assert info["protocol"] == P.VERSION and info["board"] == "esp32"
        assert dev.get_info()["device"] == info["device"]
        ble = info.get("ble")
        if ble is not None:              # the board reports its side of this link
            assert ble["connected"] and ble["bonded"] and ble["mtu"] >= 23
        link = dev.ser
        assert isinstance(link, B.BleSerial) and link.payload >= 20
        for payload in (b"", b"\x00" * 5, bytes(range(200)), bytes(range(256)) * 2):
            n0 = link.notifications
            assert dev.ping(payload) == payload
            assert link.notifications - n0 >= (len(payload) + 8) // 244 + 1   # long replies span notifications
    finally:
        dev.close()


def test_ble_live_stream_and_reconnect(target):
    dev = _open(target)
    try:
        info = dev.hello()
        dev.live(True, 100)
        dec = LiveDecoder(int(info["channels"]))
        n = 0
        for f in iter_stream(dev, time.monotonic() + 3.0):
            dec.note_seq(f.seq)
            if f.mtype in (P.SAMPLES, P.SAMPLES_KEY):
                out = dec.decode(f)
                if out is not None:
                    n += len(out[0])
        dev.live(False)
        assert n >= 2 * int(info["rate_hz"]), n      # about 3 s of samples arrived
        assert dec.lost_frames <= 1                  # BlueZ may drop one at most
    finally:
        dev.close()
    time.sleep(1.0)                                  # the trainer advertises again
    link = B.BleSerial(target)                       # no --pair: the bond is kept
    dev = Device(link.port, ser=link, timeout=5.0)
    try:
        assert dev.hello()["device"] == info["device"]
        assert dev.ping(b"again") == b"again"
    finally:
        dev.close()
