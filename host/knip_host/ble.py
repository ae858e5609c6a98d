"""Bluetooth LE transport: the trainer's Nordic UART Service as a serial-port
look-alike, so `Device(port, ser=BleSerial(...))` speaks the same protocol
over BLE as over USB (docs/PROTOCOL.md section 8.2).

bleak runs in a background thread with its own asyncio loop. The notify
callback only appends the bytes to a buffer under a lock and wakes the
reader; framing happens in `Device`, on the caller's thread. Writes are cut
into chunks of MTU - 3 bytes and sent as write-without-response. The MTU is
taken from bleak's `max_write_without_response_size` (BlueZ >= 5.62 reports
the negotiated MTU there; older BlueZ says 20), else from `mtu_size` (which
BlueZ leaves at 23).

The trainer only talks to a bonded laptop on an encrypted link. The first
write is therefore acknowledged (write-with-response): on an unencrypted
link the trainer answers "insufficient encryption", BlueZ then encrypts with
the bond it holds or pairs, and a trainer that is not in pairing mode drops
a laptop it does not know. A connection that ends before the trainer sent a
single byte is reported as "not paired"."""
from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import time
from types import SimpleNamespace
from typing import Any

from .device import DeviceError, LinkLost

NUS = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"      # host writes
NUS_TX = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"      # trainer notifies

NO_BLEAK = "Bluetooth LE needs the bleak package: pip install bleak (or run make setup)"
NO_ADAPTER = "no Bluetooth adapter: is bluetoothd running? try `bluetoothctl show`"
NOT_PAIRED = ("the trainer refuses unpaired laptops: hold its button 3 s to open pairing, "
              "then run again with --pair")
STALE_BOND = ("if it still refuses, this laptop may hold an old pairing the trainer forgot: "
              "remove it (bluetoothctl remove {addr}) and pair again")

_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$"                    # Linux, Windows
                      r"|^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")   # macOS


class BleError(DeviceError):
    """A Bluetooth problem the user can act on."""


class BleUnavailable(BleError):
    """bleak is missing or there is no usable adapter."""


class BleNotFound(BleError):
    """No trainer of that name or address is advertising."""


class BleNotPaired(BleError):
    """The trainer does not accept this laptop (not bonded)."""


class BleLinkLost(LinkLost):
    """The BLE connection ended in the middle of a command."""


def not_found(target: str) -> str:
    return (f"no trainer named {target} advertising: switch it on, keep it within a few metres; "
            "`knip devices --ble` lists what is in range")


def _bleak() -> Any:
    try:
        import bleak
        import bleak.exc
    except ImportError as exc:
        raise BleUnavailable(NO_BLEAK) from exc
    return SimpleNamespace(BleakScanner=bleak.BleakScanner, BleakClient=bleak.BleakClient, exc=bleak.exc)


class BleSerial:
    """The subset of pyserial's Serial that `Device` uses, over BLE.

    `target` is an address (AA:BB:CC:DD:EE:FF, or a UUID on macOS) or a name:
    the first advertiser whose name matches case-insensitively, or that
    advertises the Nordic UART Service under a name starting with it.
    `backend` replaces bleak (tests pass a simulated radio)."""

    def __init__(self, target: str, *, timeout: float | None = 0.05, write_timeout: float = 10.0,
                 scan_timeout: float = 8.0, connect_timeout: float = 20.0, pair: bool = False,
                 backend: Any = None):
        self.target = target
        self.timeout = timeout
        self.write_timeout = write_timeout
        self.scan_timeout = scan_timeout
        self.connect_timeout = connect_timeout
        self.want_pair = pair
        self.port = f"BLE:{target}"
        self.address = target if _ADDRESS.match(target) else ""
        self.name = "" if self.address else target
        self.dtr = self.rts = False               # accepted and ignored, as on a BLE link
        self.is_open = False
        self.notifications = 0                    # notify callbacks seen
        self.bytes_in = 0
        self.writes = 0                           # write_gatt_char calls (chunks)
        self.payload = 20                         # bytes per write: MTU - 3
        self.callback_threads: set[int] = set()   # where the notify callback ran
        self._backend = backend if backend is not None else _bleak()
        self._exc = getattr(self._backend, "exc", SimpleNamespace())
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._lost: str | None = None
        self._client: Any = None
        self._rx: Any = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="knip-ble", daemon=True)
        self._thread.start()
        try:
            self._call(self._open(), scan_timeout + connect_timeout + 30)
        except BaseException:
            self._shutdown()
            raise
        self.is_open = True

    # ---- the event loop thread ---------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coro: Any, timeout: float) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise BleLinkLost(f"the trainer {self._who()} did not respond over Bluetooth within {timeout:g} s; "
                              "keep it within a few metres and run the command again") from None

    def _who(self) -> str:
        return self.name or self.address or self.target

    def _match(self, device: Any, adv: Any) -> bool:
        name = ((getattr(adv, "local_name", None) if adv is not None else None) or device.name or "").lower()
        uuids = [u.lower() for u in (getattr(adv, "service_uuids", None) or [])] if adv is not None else []
        t = self.target.lower()
        return name == t or (NUS in uuids and name.startswith(t))

    async def _open(self) -> None:
        B = self._backend
        try:
            if self.address:
                device = await B.BleakScanner.find_device_by_address(self.address, timeout=self.scan_timeout)
            else:
                device = await B.BleakScanner.find_device_by_filter(self._match, timeout=self.scan_timeout)
        except Exception as exc:
            raise self._map(exc) from exc
        if device is None:
            raise BleNotFound(not_found(self.target))
        self.address = device.address
        self.name = device.name or self.name
        client = B.BleakClient(device, disconnected_callback=self._on_disconnect, timeout=self.connect_timeout)
        if self.want_pair:
            # Forget an old pairing first: BlueZ keeps the keys of a pairing the
            # trainer refused, and would then skip Pair and fail to encrypt.
            try:
                await client.unpair()
            except Exception:
                pass             # nothing to forget, or not possible here (macOS)
        try:
            await client.connect()
        except Exception as exc:
            raise self._map(exc, connecting=True) from exc
        self._client = client
        try:
            if self.want_pair:
                try:
                    await client.pair()
                except NotImplementedError:
                    pass         # macOS pairs by itself when the trainer asks for encryption
            await client.start_notify(NUS_TX, self._on_notify)
            rx = client.services.get_characteristic(NUS_RX)
            if rx is None:
                raise BleError(f"{self._who()} ({self.address}) is no Knip trainer: it has no Nordic UART "
                               "service; `knip devices --ble` lists the trainers in range")
            self._rx = rx
            self.payload = self._payload()
            # acknowledged, so it waits for encryption (or fails without a bond)
            await client.write_gatt_char(rx, b"\x00", response=True)
        except BleError:
            raise
        except Exception as exc:
            raise self._map(exc, pairing=True) from exc

    def _payload(self) -> int:
        n = getattr(self._rx, "max_write_without_response_size", None)
        if n is None:
            n = int(getattr(self._client, "mtu_size", 23)) - 3
        return max(20, min(512, int(n)))

    def _on_notify(self, _char: Any, data: bytearray) -> None:
        # only enqueue: no framing, no printing, nothing that can block bleak's loop
        with self._cond:
            self._buf += data
            self.bytes_in += len(data)
            self.notifications += 1
            self.callback_threads.add(threading.get_ident())
            self._cond.notify_all()

    def _on_disconnect(self, _client: Any) -> None:
        with self._cond:
            if self._lost is None:
                self._lost = "the connection closed"
            self._cond.notify_all()

    async def _write(self, data: bytes) -> None:
        pay = self._payload()
        self.payload = pay
        for i in range(0, len(data), pay):
            await self._client.write_gatt_char(self._rx, data[i:i + pay], response=False)
            self.writes += 1

    # ---- errors --------------------------------------------------------------

    def _is(self, exc: BaseException, name: str) -> bool:
        cls = getattr(self._exc, name, None)
        return isinstance(cls, type) and isinstance(exc, cls)

    def _map(self, exc: BaseException, *, connecting: bool = False, pairing: bool = False) -> BleError:
        if isinstance(exc, BleError):
            return exc
        text = f"{type(exc).__name__}: {exc}"
        low = text.lower()
        if (self._is(exc, "BleakBluetoothNotAvailableError") or isinstance(exc, (FileNotFoundError, ConnectionRefusedError))
                or "serviceunknown" in low or "org.bluez.error.notready" in low
                or ("adapter" in low and ("not found" in low or "no bluetooth" in low))):
            return BleUnavailable(f"{NO_ADAPTER} ({text})")
        if self._is(exc, "BleakDeviceNotFoundError"):
            return BleNotFound(not_found(self.target))
        code = getattr(exc, "code", None)
        if (code in (0x05, 0x08, 0x0C, 0x0F) or "authentication" in low or "insufficient" in low
                or ("not connected" in low and pairing)):
            return BleNotPaired(f"{NOT_PAIRED}; {STALE_BOND.format(addr=self.address or 'ADDRESS')}")
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) and connecting:
            return BleNotFound(f"found {self._who()} ({self.address}) but it did not accept the connection: "
                               "is another laptop or phone connected to it? close that app, or switch "
                               "the trainer off and on, then run again")
        return BleError(f"Bluetooth LE error with {self._who()}: {text}; switch Bluetooth off and on "
                        "(bluetoothctl power off; bluetoothctl power on) and run again")

    def _lost_error(self) -> DeviceError:
        if self.bytes_in == 0:
            return BleNotPaired(f"{NOT_PAIRED} (it closed the connection before answering); "
                                f"{STALE_BOND.format(addr=self.address or 'ADDRESS')}")
        return BleLinkLost(f"lost the trainer {self._who()} over Bluetooth ({self._lost}); keep it within "
                           "a few metres and run the command again: nothing recorded is lost")

    # ---- pyserial subset -------------------------------------------------------

    @property
    def in_waiting(self) -> int:
        with self._cond:
            return len(self._buf)

    def read(self, size: int = 1) -> bytes:
        """Up to `size` bytes: waits until there are `size` or `timeout` passed."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        with self._cond:
            while len(self._buf) < size and self._lost is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            k = min(size, len(self._buf))
            out = bytes(self._buf[:k])
            del self._buf[:k]
            if not out and self._lost is not None:
                raise self._lost_error()
            return out

    def write(self, data: bytes) -> int:
        if not self.is_open:
            raise BleLinkLost(f"the Bluetooth connection to {self._who()} is closed; run the command again")
        if self._lost is not None:
            raise self._lost_error()
        data = bytes(data)
        try:
            self._call(self._write(data), self.write_timeout)
        except DeviceError:
            raise
        except Exception as exc:
            if self._lost is not None:
                raise self._lost_error() from exc
            raise self._map(exc) from exc
        return len(data)

    def flush(self) -> None:
        """Writes already wait until bleak has handed every chunk to the stack."""

    def reset_input_buffer(self) -> None:
        with self._cond:
            self._buf.clear()

    def close(self) -> None:
        if self.is_open or self._thread.is_alive():
            self.is_open = False
            self._shutdown()

    def _shutdown(self) -> None:
        client = self._client
        if client is not None and self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(client.disconnect(), self._loop).result(5)
            except Exception:
                pass
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._loop.is_running() and not self._loop.is_closed() and not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> "BleSerial":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ble_trainers(timeout: float = 4.0) -> tuple[list[tuple[str, str]], str | None]:
    """(name, address) of advertising trainers, and a note when BLE is not usable."""
    try:
        from bleak import BleakScanner  # type: ignore[import-not-found]
    except ImportError:
        return [], "BLE: not scanned (install bleak: make setup, or pip install bleak)"
    try:
        found = asyncio.run(BleakScanner.discover(timeout=timeout, return_adv=True))
    except Exception as exc:     # no adapter, BlueZ not running, permissions
        return [], f"BLE: no usable adapter ({exc})"
    out = []
    for dev, adv in found.values():
        name = adv.local_name or dev.name or ""
        if NUS in [u.lower() for u in adv.service_uuids] or name.lower().startswith("knip"):
            out.append((name, dev.address))
    return out, None
