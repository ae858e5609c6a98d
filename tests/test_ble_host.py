"""The host's BLE transport (knip_host.ble.BleSerial) end to end: reassembly
of notifications, chunking of writes, and the hand-off from bleak's thread
to the caller's.

The radio is simulated, because no Bluetooth adapter exists in CI: a
stand-in for bleak's BleakScanner/BleakClient (and, behind them, BlueZ and
the trainer's Nordic UART link) is bridged to a REAL virtual trainer (the
firmware under the MicroPython unix port on a pseudo-terminal): bytes the
trainer writes are read from the pty and delivered as notifications of at
most MTU - 3 bytes, from the simulated radio's own thread through bleak's
event loop as bleak does; write_gatt_char() chunks go to the pty and are
refused when longer than MTU - 3. Pairing is modelled as the trainer does it:
an unbonded laptop is dropped unless pairing mode is open and it pairs.

The trainer runs on the virtual clock (knip_host/simclock.py). Where a test
needs board time to pass (live, a session), the radio takes the trainer's
output from the clock and the laptop's port is wrapped in OnClock, which
grants board time whenever nothing is left to read, as SimSerial does on a
serial port; the other tests only ask, and the trainer answers at once."""
from __future__ import annotations

import asyncio
import os
import select
import threading
import time
from types import SimpleNamespace

import pytest

from knip import protocol as P
from knip_host import ble as B
from knip_host.device import Device, DeviceError, LinkLost, LiveDecoder, iter_stream
from knip_host.simclock import SimClock
from knip_host.simulator import VirtualTrainer

pytestmark = pytest.mark.micropython

try:
    import bleak.exc as bleak_exc
except ImportError:            # the mapping of bleak's own errors is then not tested
    bleak_exc = None


class SimError(Exception):
    """What bleak raises for a request on a dropped connection."""


class SimRadio:
    """bleak + BlueZ + the trainer's BLE link, in-process."""

    def __init__(self, trainer_port: str | None, *, name: str = "Knip-3F2A", address: str = "C0:FF:EE:00:3F:2A",
                 mtu: int = 23, bonded: bool = True, pairing_open: bool = False, jitter: int = 0,
                 scan_error: BaseException | None = None, clock: SimClock | None = None):
        self.port = trainer_port
        self.clock = clock                   # the trainer's virtual clock: its output comes from there
        self.taken = 0                       # bytes taken from the trainer
        self.name, self.address, self.mtu = name, address, mtu
        self.bonded, self.pairing_open = bonded, pairing_open
        self.jitter = jitter                 # > 0: notification sizes vary (seeded)
        self.scan_error = scan_error
        self.notify_sizes: list[int] = []
        self.write_sizes: list[int] = []
        self.acked_writes = 0
        self.unpairs = 0
        self.client: SimClient | None = None
        radio = self

        class Scanner:
            @staticmethod
            async def find_device_by_filter(flt, timeout=5.0):
                if radio.scan_error is not None:
                    raise radio.scan_error
                await asyncio.sleep(0.01)
                ads = [(SimpleNamespace(name="Phone", address="11:22:33:44:55:66"),
                        SimpleNamespace(local_name="Phone", service_uuids=[])),
                       (SimpleNamespace(name=radio.name, address=radio.address),
                        SimpleNamespace(local_name=radio.name, service_uuids=[B.NUS.upper()]))]
                for dev, adv in ads if radio.port else ads[:1]:
                    if flt(dev, adv):
                        return dev
                return None

            @staticmethod
            async def find_device_by_address(addr, timeout=5.0):
                if radio.scan_error is not None:
                    raise radio.scan_error
                if radio.port and addr.upper() == radio.address:
                    return SimpleNamespace(name=radio.name, address=radio.address)
                return None

        def client_factory(device, disconnected_callback=None, timeout=10.0):
            radio.client = SimClient(radio, device, disconnected_callback)
            return radio.client
        self.backend = SimpleNamespace(BleakScanner=Scanner, BleakClient=client_factory,
                                       exc=bleak_exc if bleak_exc is not None else SimpleNamespace())


class SimClient:
    def __init__(self, radio: SimRadio, device, on_disconnect):
        self.r = radio
        self.device = device
        self.on_disconnect = on_disconnect
        self.fd = -1
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connected = False
        self.paired = radio.bonded
        self.callback = None
        self.rx = SimpleNamespace(uuid=B.NUS_RX, max_write_without_response_size=radio.mtu - 3)
        self.services = SimpleNamespace(get_characteristic=lambda u: self.rx if u == B.NUS_RX else None)
        self.mtu_size = radio.mtu
        self._stop = threading.Event()

    async def connect(self):
        self.loop = asyncio.get_running_loop()
        self.fd = os.open(self.r.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.connected = True

    async def unpair(self):
        self.r.unpairs += 1
        self.paired = False                  # BlueZ forgets its keys for the trainer

    async def pair(self):
        if self.r.pairing_open:
            self.paired = True               # the trainer stores the bond
        # else BlueZ pairs, but the trainer refuses the keys and drops us (below)

    async def start_notify(self, uuid, callback):
        assert uuid == B.NUS_TX and self.connected
        self.callback = callback
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        """The radio: trainer output -> notifications of <= MTU - 3 bytes."""
        seed = 7
        while not self._stop.is_set():
            if self.r.clock is not None:
                data = self.r.clock.take_wait(4096, 0.05)
                if not data:
                    continue
            else:
                try:
                    r, _, _ = select.select([self.fd], [], [], 0.05)
                    if not r:
                        continue
                    data = os.read(self.fd, 4096)
                except OSError:
                    return          # the link closed its end (disconnect) meanwhile
            self.r.taken += len(data)
            pay = self.r.mtu - 3
            i = 0
            while i < len(data):
                k = pay
                if self.r.jitter:
                    seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
                    k = 1 + (seed >> 8) % pay
                chunk = bytearray(data[i:i + k])
                self.r.notify_sizes.append(len(chunk))
                self.loop.call_soon_threadsafe(self.callback, self.rx, chunk)
                i += k

    async def write_gatt_char(self, char, data, response=None):
        if not self.connected:
            raise SimError("Not connected")
        if len(data) > self.r.mtu - 3:
            raise SimError(f"write of {len(data)} bytes exceeds MTU {self.r.mtu} - 3")
        if response:
            self.r.acked_writes += 1
            if not self.paired:              # encrypted now, but not a bond the trainer keeps
                self.loop.call_later(0.05, self.drop)
                return
        else:
            self.r.write_sizes.append(len(data))
        if not self.paired:
            return                           # the trainer ignores writes of a laptop it has no bond with
        await asyncio.sleep(0.002)           # a connection event
        os.write(self.fd, bytes(data))
        if self.r.clock is not None:
            self.r.clock.wrote += len(data)  # the trainer starts its next time step after these

    def drop(self):
        """The link goes (trainer refuses us, walks out of range, powers off)."""
        if not self.connected:
            return
        self.connected = False
        self._stop.set()
        if self.on_disconnect:
            self.on_disconnect(self)

    async def disconnect(self):
        self.drop()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class OnClock:
    """The laptop's BleSerial with the trainer's board time: when nothing is
    left to read, everything the trainer sent is through the radio, and then
    board time passes (up to `timeout` x speed, until it sends something)."""

    def __init__(self, link: B.BleSerial, radio: SimRadio):
        self.link, self.radio, self.clock = link, radio, radio.clock
        self.timeout = 0.05

    def __getattr__(self, name):
        return getattr(self.link, name)

    def _through(self) -> None:
        self.clock.settle()
        end = time.monotonic() + 10
        while (self.clock.inbuf or self.radio.taken != self.link.bytes_in) and self.radio.client.connected:
            assert time.monotonic() < end, "the simulated radio stopped delivering"
            time.sleep(0.0002)

    def read(self, size: int = 1) -> bytes:
        if not self.radio.client.connected:
            return self.link.read(size)          # what is left, then BleSerial's lost-link error
        if not self.link.in_waiting:
            self._through()
            if not self.link.in_waiting:
                self.clock.run(self.timeout, stop=True)
                self._through()
        n = min(size, self.link.in_waiting)
        return self.link.read(n) if n else b""

    def reset_input_buffer(self) -> None:
        self.clock.discard()
        self._through()
        self.link.reset_input_buffer()


@pytest.fixture
def trainer(tmp_path):
    vt = VirtualTrainer(tmp_path / "flash.img", speed=25.0, seed=3, clock="virtual").start()
    yield vt
    vt.stop()


@pytest.mark.parametrize("mtu,jitter", [(23, 0), (247, 0), (185, 1)])
def test_hello_live_and_sync_over_the_simulated_radio(tmp_path, trainer, mtu, jitter):
    from knip_host.database import SessionDatabase
    from knip_host.sync import sync
    radio = SimRadio(trainer.port, mtu=mtu, jitter=jitter, clock=trainer.clock)
    link = B.BleSerial("knip", backend=radio.backend)       # the name's prefix, advertising NUS
    assert link.address == radio.address and link.payload == mtu - 3
    dev = Device(link.port, ser=OnClock(link, radio))
    try:
        info = dev.hello()
        assert info["device"] == "sim-0001" and info["protocol"] == P.VERSION
        assert dev.get_info()["rate_hz"] == 100
        blob = bytes(range(256)) * 2                       # a long request, zeros included
        assert dev.ping(blob) == blob
        # live stream: every sample decodes, no frame lost between the threads
        dev.live(True, 100)
        dec = LiveDecoder(2)
        n = 0
        for f in iter_stream(dev, time.monotonic() + 1.5):
            dec.note_seq(f.seq)
            if f.mtype in (P.SAMPLES, P.SAMPLES_KEY):
                out = dec.decode(f)
                assert out is not None
                n += len(out[0])
        dev.live(False)
        assert dec.lost_frames == 0 and n == 3750, n             # 1.5 s at 25x, 100 Hz
        # record a short session and sync it over BLE
        sid = dev.start("calibrate")
        dev.clock.sleep(1.5)
        assert dev.stop() == sid
        db = SessionDatabase.open(str(tmp_path / "k.sqlite3"))
        rep = sync(dev, db, show_progress=False)
        assert rep.fetched == [sid] and rep.bytes > 1000 and dev.sessions() == []
    finally:
        dev.close()
    pay = mtu - 3
    assert radio.notify_sizes and max(radio.notify_sizes) <= pay
    if not jitter:
        assert pay in radio.notify_sizes         # a long reply (the PING) spans full notifications
    assert radio.write_sizes and max(radio.write_sizes) <= pay
    assert radio.write_sizes.count(pay) >= len(blob) // pay                  # the PING went in full chunks
    assert radio.acked_writes == 1                                           # only the opening probe
    assert link.bytes_in == sum(radio.notify_sizes) and link.notifications == len(radio.notify_sizes)
    # the notify callback ran on bleak's loop thread, never on ours
    assert link.callback_threads and threading.get_ident() not in link.callback_threads
    assert not link.is_open


def test_by_address_and_lost_link_mid_stream(trainer):
    radio = SimRadio(trainer.port, mtu=247, clock=trainer.clock)
    link = B.BleSerial(radio.address.lower(), backend=radio.backend)
    dev = Device(link.port, ser=OnClock(link, radio))
    try:
        dev.hello()
        dev.live(True, 100)
        got = 0
        with pytest.raises(LinkLost) as err:
            for _f in iter_stream(dev, time.monotonic() + 5):
                got += 1
                if got == 5:
                    radio.client.drop()      # she walks out of range
        assert isinstance(err.value, B.BleLinkLost)
        assert "over Bluetooth" in str(err.value) and "nothing recorded is lost" in str(err.value)
    finally:
        dev.close()


def test_unpaired_laptop_gets_the_pairing_hint_and_pair_works_in_pairing_mode(trainer):
    radio = SimRadio(trainer.port, bonded=False)
    with pytest.raises(DeviceError) as err:
        link = B.BleSerial("Knip-3F2A", backend=radio.backend)
        dev = Device(link.port, ser=link)
        try:
            dev.hello()
        finally:
            dev.close()
    assert isinstance(err.value, B.BleNotPaired)
    assert "hold its button 3 s to open pairing, then run again with --pair" in str(err.value)
    # --pair while the trainer is not in pairing mode: still refused
    with pytest.raises(B.BleNotPaired):
        link = B.BleSerial("Knip-3F2A", backend=radio.backend, pair=True)
        dev = Device(link.port, ser=link)
        try:
            dev.hello()
        finally:
            dev.close()
    radio.pairing_open = True                # she held the button
    link = B.BleSerial("Knip-3F2A", backend=radio.backend, pair=True)
    dev = Device(link.port, ser=link)
    try:
        assert dev.hello()["device"] == "sim-0001"
    finally:
        dev.close()
    assert radio.unpairs == 2                # --pair forgot the refused pairing first, each time


def test_clear_errors_without_trainer_adapter_or_bleak(monkeypatch):
    radio = SimRadio(None)
    with pytest.raises(B.BleNotFound) as err:
        B.BleSerial("Knip", backend=radio.backend, scan_timeout=0.2)
    assert str(err.value) == B.not_found("Knip")
    assert "`knip devices --ble` lists what is in range" in str(err.value)
    with pytest.raises(B.BleNotFound):
        B.BleSerial("C0:FF:EE:00:00:99", backend=radio.backend, scan_timeout=0.2)
    for exc in [FileNotFoundError(2, "No such file or directory: '/run/dbus/system_bus_socket'")] + (
            [bleak_exc.BleakError("No Bluetooth adapters found."),
             bleak_exc.BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"])]
            if bleak_exc else []):
        radio.scan_error = exc
        with pytest.raises(B.BleUnavailable) as err:
            B.BleSerial("Knip", backend=radio.backend)
        assert str(err.value).startswith(B.NO_ADAPTER)
    monkeypatch.setitem(__import__("sys").modules, "bleak", None)       # not installed
    with pytest.raises(B.BleUnavailable) as err:
        B.BleSerial("Knip")
    assert "pip install bleak" in str(err.value)


def test_cli_takes_ble_and_pair(trainer, monkeypatch, capsys):
    from knip_host import cli
    radio = SimRadio(trainer.port, bonded=False, pairing_open=True)
    monkeypatch.setattr(B, "_bleak", lambda: radio.backend)
    assert cli.main(["info", "--ble", "knip-3f2a", "--pair"]) == 0
    out = capsys.readouterr().out
    assert "sim-0001" in out and "firmware" in out
    assert radio.client is not None and radio.client.paired
    # both a port and --ble: one line saying what to do
    assert cli.main(["info", "--ble", "knip", "--port", "/dev/ttyUSB0"]) != 0
    assert "choose one link" in capsys.readouterr().err
    assert cli.main(["info", "--port", "sim", "--pair"]) != 0
    assert "--pair is for Bluetooth" in capsys.readouterr().err
