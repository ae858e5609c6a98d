"""Opening a trainer: on a serial port, over Bluetooth LE, or the virtual
trainer behind `--port sim`, started for the command and stopped after it."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from .device import Device, DeviceError
from .ports import default_port
from .simulator import VirtualTrainer


@contextlib.contextmanager
def connect(port: str | None, *, sim: dict[str, Any] | None = None, timeout: float = 3.0,
            ble: str | None = None, pair: bool = False) -> Iterator[Device]:
    """Open a trainer; `sim` starts (and afterwards stops) a virtual one.

    `ble` (a name or address) connects over Bluetooth LE instead; `pair`
    forgets an old pairing and pairs anew (the trainer must be in pairing
    mode: its button held 3 s). The CLI passes them
    inside its port options, so `sim` may carry "ble" and "pair" too."""
    sim = dict(sim or {})
    ble = sim.pop("ble", None) or ble
    pair = bool(sim.pop("pair", False)) or pair
    if ble:
        if port:
            raise DeviceError(f"choose one link: --port {port} or --ble {ble}, not both")
        from .ble import BleSerial
        dev = Device(f"BLE:{ble}", ser=BleSerial(ble, pair=pair), timeout=timeout)
        try:
            dev.sim = None             # type: ignore[attr-defined]
            yield dev
        finally:
            dev.close()
        return
    if pair:
        raise DeviceError("--pair is for Bluetooth: use it with --ble NAME_OR_ADDRESS")
    from_env = not port and bool(os.environ.get("KNIP_PORT"))
    port = port or default_port()
    trainer = None
    if port == "sim":
        trainer = VirtualTrainer(**sim).start()
        port = trainer.port
    try:
        try:
            dev = Device(port, timeout=timeout)
        except DeviceError as exc:
            if from_env:
                raise DeviceError(f"{exc} (the port named by $KNIP_PORT)") from None
            raise
        try:
            dev.sim = trainer          # type: ignore[attr-defined]
            yield dev
        finally:
            dev.close()
    finally:
        if trainer is not None:
            trainer.stop()
