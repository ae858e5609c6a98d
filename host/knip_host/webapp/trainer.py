"""TrainerLink: the one thread that owns the trainer.

knip_host.device.Device is synchronous and not shared between threads, so
one thread holds it and everything the pages ask of the trainer (connect,
start, stop, pain, push a program, sync) is a job queued to that thread.
While the live stream is on, the thread reads stream frames in short turns
and runs the queued jobs between them: a request's reply and the stream
interleave on the link as they do in `knip live` (Device.request keeps the
stream frames it meets for iter_stream).

The stream is on while a page shows the Train view or a session runs; the
frames go through bridge.LiveBridge to every page (hub.Hub).

A virtual trainer on the virtual clock (sim {"clock": "virtual"}, the
browser tests) gets board time from this thread alone: while a session
runs, paced to `speed` x the wall clock so a page can watch; between
sessions only what requests take; and while a pain check-in is open and a
page watches, none until the page answers or skips it (or CHECKIN_HOLD_S
of wall clock pass: nobody there). So what the trainer does depends on
what the page did, never on how quickly the page or the machine did it."""
from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import queue
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from ..connect import connect
from ..database import SessionDatabase
from ..device import Device, DeviceError, iter_stream
from .bridge import LiveBridge
from .hub import Hub

PUMP_S = 0.03                # one turn of reading the stream between jobs
BEHIND_S = 0.25              # a virtual clock this far behind the wall skips ahead (no catching up)
CHECKIN_HOLD_S = 30.0        # a virtual clock waits this long (wall) for a page to answer a check-in
BLE_BATCH_MS = 100


@dataclass
class Choice:
    """Which trainer: kind "sim" (virtual), "serial" (port) or "ble" (name or address)."""
    kind: str
    port: str | None = None
    ble: str | None = None
    pair: bool = False

    def label(self) -> str:
        if self.kind == "sim":
            return "virtual trainer"
        if self.kind == "ble":
            return f"Bluetooth {self.ble}"
        return f"serial port {self.port}"


def batch_ms_for(choice: Choice, speed: float) -> int:
    """Live frames of about 40 ms of wall-clock time (latency), whatever the
    virtual trainer's speed; 100 ms over Bluetooth (fewer notifications)."""
    if choice.kind == "ble":
        return BLE_BATCH_MS
    ms = 40.0 * (speed if choice.kind == "sim" else 1.0)
    return int(min(800, max(20, ms)))


class TrainerLink:
    def __init__(self, hub: Hub, *, sim: dict[str, Any] | None = None, db_path: str | Path | None = None):
        self.hub = hub
        self.sim = dict(sim or {})
        self.db_path = db_path
        self.jobs: queue.Queue[tuple[Callable[..., Any], tuple, cf.Future]] = queue.Queue()
        self.dev: Device | None = None
        self.stack: contextlib.ExitStack | None = None
        self.choice: Choice | None = None
        self.info: dict[str, Any] = {}
        self.state = "disconnected"
        self.error: str | None = None
        self.bridge: LiveBridge | None = None
        self.watchers = 0
        self.session: int | None = None
        self.program: str | None = None
        self.pain_before: int | None = None
        self.checkin: int | None = None     # a check-in the page has not answered yet: 0 before, 1 after
        self.answered: set[int] = set()     # check-ins of this session the page answered (maybe ahead)
        self._wall0 = 0.0                   # a virtual clock's board time is paced to the wall from here
        self._paced = False                 # ... since the last hold (else re-anchored first)
        self._checkin_wall = 0.0            # when the open check-in came (wall clock)
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="knip-trainer", daemon=True)
        hub.on_watchers = self._set_watchers

    # ---- from the event loop ---------------------------------------------------

    def start(self) -> "TrainerLink":
        self._thread.start()
        self.publish_state()
        return self

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        self.jobs.put((fn, args, fut))
        return fut

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self.submit(fn, *args))

    def close(self, timeout: float = 10.0) -> None:
        done = self.submit(self._disconnect)
        try:
            done.result(timeout)
        except Exception:
            pass
        self._closing = True
        self._thread.join(timeout)

    def _set_watchers(self, n: int) -> None:
        self.submit(self._watch, n)

    # ---- the thread ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing:
            if self.bridge is not None and self.dev is not None and not self._held():
                self._guard(self._pump)
                self._run_jobs(block=False)
            else:
                self._paced = False
                self._run_jobs(block=True)
                self._guard(self._held_alive)
            self._guard(self._want_live)

    def _run_jobs(self, block: bool) -> None:
        while True:
            try:
                fn, args, fut = self.jobs.get(timeout=0.2) if block else self.jobs.get_nowait()
            except queue.Empty:
                return
            block = False
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:        # the page hears of it; the thread goes on
                fut.set_exception(exc)
                if isinstance(exc, DeviceError) and self.dev is not None and not self._link_alive():
                    self._lost(exc)

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except DeviceError as exc:
            self._lost(exc)
        except Exception as exc:       # a bug must not stop the thread
            self.hub.publish({"type": "error", "message": f"{type(exc).__name__}: {exc}"})

    def _link_alive(self) -> bool:
        try:
            return bool(self.dev is not None and self.dev.ser.is_open)
        except Exception:
            return False

    def _lost(self, exc: Exception) -> None:
        self.error = str(exc)
        self._close_link()
        self.state = "disconnected"
        self.publish_state()

    def _held(self) -> bool:
        """A virtual clock waits for the page: between sessions, and at a
        check-in while a page watches, for CHECKIN_HOLD_S at most."""
        if self.dev is None or not self.dev.clock.virtual:
            return False
        if self.session is None:
            return True
        return (self.checkin is not None and self.watchers > 0
                and time.monotonic() - self._checkin_wall < CHECKIN_HOLD_S)

    def _held_alive(self) -> None:
        """Nothing reads a held virtual trainer's port: see that it still runs."""
        sim = getattr(self.dev, "sim", None)
        if sim is not None and self._held() and not sim.alive:
            raise DeviceError("the virtual trainer has stopped")

    def _pump(self) -> None:
        assert self.dev is not None and self.bridge is not None
        clock = self.dev.clock
        if clock.virtual:
            if not self._paced:                 # after a hold: no catching up on it
                self._wall0 = time.monotonic() - clock.monotonic()
                self._paced = True
            ahead = clock.monotonic() - (time.monotonic() - self._wall0)
            if ahead > 0:                       # the page sees it at `speed` x real time, no faster
                time.sleep(min(ahead, PUMP_S))
                return
            if ahead < -BEHIND_S:               # after a hold or a slow stretch of the machine
                self._wall0 = time.monotonic() - clock.monotonic()
        for f in iter_stream(self.dev, time.monotonic() + PUMP_S):
            self.bridge.frame(f)
            if self._held():
                return                          # the page's turn: no board time until it acts

    def _want_live(self) -> None:
        want = self.dev is not None and (self.watchers > 0 or self.session is not None)
        if want and self.bridge is None:
            self._live_on()
        elif not want and self.bridge is not None:
            self._live_off()

    def _live_on(self) -> None:
        assert self.dev is not None and self.choice is not None
        speed = float((self.info.get("sim") or {}).get("speed") or 1.0)
        bridge = LiveBridge(self.info, self._from_bridge, self._checkin)
        first, batch = self.dev.live(True, batch_ms_for(self.choice, speed))
        self.bridge = bridge
        bridge.started(first, batch)

    def _live_off(self) -> None:
        bridge, self.bridge = self.bridge, None
        if self.dev is not None:
            with contextlib.suppress(DeviceError):
                self.dev.live(False)
        if bridge is not None:
            bridge.stopped()

    def _from_bridge(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "pain":
            self.checkin = None
        if msg["type"] == "session":
            if msg["state"] == "running":
                if msg.get("id") != self.session:
                    self.answered = set()
                self.session = msg.get("id")
            elif self.session is not None and msg.get("id") is not None and msg["id"] != self.session:
                # the end of the session before, told after the next one began
                # (stop, then start at once): this one goes on
                self.hub.publish(msg)
                self.publish_state()
                return
            else:
                self.session = None
                self.program = None
                self.checkin = None
                self.hub.publish(msg)
                self._refresh()
                return
        self.hub.publish(msg)

    def _checkin(self, when: int) -> None:
        if when not in self.answered:
            self.checkin = when
            self._checkin_wall = time.monotonic()
        self.hub.publish({"type": "checkin", "when": when, "session": self.session})

    # ---- jobs (run in the thread) ----------------------------------------------

    def publish_state(self) -> None:
        self.hub.publish({"type": "trainer", "state": self.state, "error": self.error,
                          "choice": asdict(self.choice) if self.choice else None,
                          "label": self._label(),
                          "info": self.info, "live": self.bridge is not None,
                          "session": self.session, "program": self.program,
                          "sim": {k: self.sim.get(k) for k in ("speed", "user")}})

    def _label(self) -> str | None:
        if self.choice is None:
            return None
        speed = float(self.sim.get("speed") or 1.0)
        if self.choice.kind == "sim" and speed != 1.0:
            return f"{self.choice.label()}, {speed:g}x real time"
        return self.choice.label()

    def _watch(self, n: int) -> None:
        self.watchers = n

    def connect_to(self, choice: Choice) -> dict[str, Any]:
        self._close_link()
        self.choice = choice
        self.state, self.error = "connecting", None
        self.publish_state()
        stack = contextlib.ExitStack()
        try:
            if choice.kind == "sim":
                dev = stack.enter_context(connect("sim", sim=self.sim))
            elif choice.kind == "ble":
                dev = stack.enter_context(connect(None, ble=choice.ble, pair=choice.pair))
            else:
                dev = stack.enter_context(connect(choice.port))
            dev.hello()
            dev.set_clock()
            self.info = dev.get_info()
        except BaseException as exc:
            stack.close()
            self.state, self.error = "disconnected", str(exc)
            self.publish_state()
            raise
        self.stack, self.dev = stack, dev
        self.state = "connected"
        self.publish_state()
        return self.info

    def _close_link(self) -> None:
        if self.bridge is not None:
            self._live_off()
        stack, self.stack, self.dev = self.stack, None, None
        self.session = self.program = self.checkin = None
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.close()

    def _disconnect(self) -> None:
        self._close_link()
        self.state, self.error = "disconnected", None
        self.info = {}
        self.publish_state()

    def disconnect(self) -> None:
        self._disconnect()

    def need(self) -> Device:
        if self.dev is None:
            raise DeviceError("no trainer connected: choose one on the Train page")
        return self.dev

    def _refresh(self) -> dict[str, Any]:
        self.info = self.need().get_info()
        self.publish_state()
        return self.info

    def refresh(self) -> dict[str, Any]:
        return self._refresh()

    def start_program(self, program: str, pain_before: int | None) -> int:
        dev = self.need()
        if self.bridge is None:
            self._live_on()            # the first cues must reach the page
        sid = dev.start(program)
        self.session, self.program, self.answered = sid, program, set()
        if pain_before is not None:
            self.pain(0, pain_before)  # kept by the trainer for its check-in
        self.publish_state()
        return sid

    def stop_program(self) -> int | None:
        sid = self.need().stop()
        self.checkin = None
        return sid

    def pain(self, when: int, score: int) -> None:
        self.need().pain(when, score)
        self.skip(when)

    def skip(self, when: int) -> None:
        """The page answered (or she chose not to say: the trainer records
        the check-in skipped when its wait ends): board time may pass again."""
        self.answered.add(when)
        if when == self.checkin:
            self.checkin = None

    def set_clock(self) -> dict[str, Any]:
        self.need().set_clock()
        return self._refresh()

    def put_program(self, doc: dict[str, Any]) -> str:
        name = self.need().put_program(doc)
        self._refresh()
        return name

    def remove_program(self, name: str) -> None:
        self.need().remove_program(name)
        self._refresh()

    def sync(self) -> dict[str, Any]:
        from ..sync import sync
        dev = self.need()
        db = SessionDatabase.open(self.db_path)
        try:
            device_id = str(self.info.get("device") or dev.hello()["device"])
            todo = {int(s["id"]): int(s["size"]) for s in dev.sessions()
                    if not s.get("open") and not s.get("bad") and not db.has(device_id, int(s["id"]))}
            total = sum(todo.values())
            got: dict[int, int] = {}
            last = [0.0]
            self.hub.publish({"type": "sync", "state": "running", "done": 0, "total": total,
                              "sessions": len(todo)})

            def on_chunk(sid: int, n: int) -> None:
                got[sid] = n
                now = time.monotonic()
                if now - last[0] >= 0.05 or n >= todo.get(sid, 0):
                    last[0] = now
                    self.hub.publish({"type": "sync", "state": "running", "done": sum(got.values()),
                                      "total": total, "session": sid, "sessions": len(todo)})

            rep = sync(dev, db, show_progress=False, on_chunk=on_chunk)
        except BaseException as exc:
            self.hub.publish({"type": "sync", "state": "failed", "error": str(exc)})
            raise
        finally:
            db.close()
        out = {"type": "sync", "state": "done", "device": rep.device, "fetched": rep.fetched,
               "resumed": rep.resumed, "already": rep.already, "recording": rep.recording,
               "bad": rep.bad, "bytes": rep.bytes, "seconds": round(rep.seconds, 2),
               "done": total, "total": total}
        self.hub.publish(out)
        self._refresh()
        return out
