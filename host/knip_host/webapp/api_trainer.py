"""The routes that talk to the trainer, each a job for the TrainerLink
thread: choose and connect, refresh INFO, set its clock, start and stop a
program, give her pain, sync, push or remove a custom program. Progress
and the live stream reach the page over the WebSocket (hub.py); these
answer with JSON, or {"error": ...} and 409 when the trainer cannot."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from knip import protocol as P

from ..device import DeviceError, DeviceRefused
from .api_data import DataRoutes, check_program, fail, ok
from .trainer import Choice, TrainerLink

KINDS = ("sim", "serial", "ble")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        doc = await request.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _score(v: Any) -> int | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool) or not isinstance(v, (int, str)) or not str(v).isdigit() or not 0 <= int(v) <= 10:
        raise ValueError("pain is a whole number from 0 (none) to 10 (worst)")
    return int(v)


class TrainerRoutes:
    def __init__(self, link: TrainerLink, data: DataRoutes):
        self.link = link
        self.data = data

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/state", self.state), web.get("/api/ports", self.ports),
                web.post("/api/ble/scan", self.ble_scan),
                web.post("/api/trainer/connect", self.connect), web.post("/api/trainer/disconnect", self.disconnect),
                web.get("/api/trainer/info", self.info), web.post("/api/trainer/clock", self.clock),
                web.post("/api/live/start", self.live_start), web.post("/api/live/stop", self.live_stop),
                web.post("/api/live/pain", self.live_pain), web.post("/api/sync", self.sync),
                web.post("/api/programs/push", self.push), web.post("/api/programs/remove", self.remove)]

    async def _do(self, fn: Any, *args: Any) -> Any:
        return await self.link.call(fn, *args)

    async def state(self, request: web.Request) -> web.Response:
        link = self.link
        return ok({"state": link.state, "error": link.error, "info": link.info, "session": link.session,
                   "program": link.program, "choice": link.choice.__dict__ if link.choice else None,
                   "database": str(self.data.db_path), "sim": {k: link.sim.get(k) for k in ("speed", "user")}})

    async def ports(self, request: web.Request) -> web.Response:
        from ..ports import serial_ports
        found = await asyncio.to_thread(serial_ports)
        return ok({"ports": [{"device": p.device, "description": p.description, "likely": p.likely}
                             for p in found]})

    async def ble_scan(self, request: web.Request) -> web.Response:
        from ..ble import ble_trainers              # bleak and its own event loop, in a thread
        found, note = await asyncio.to_thread(ble_trainers)
        return ok({"found": [{"name": n, "address": a} for n, a in found], "note": note})

    async def connect(self, request: web.Request) -> web.Response:
        body = await _body(request)
        kind = body.get("kind")
        if kind not in KINDS:
            return fail(f"kind must be one of {', '.join(KINDS)}")
        choice = Choice(kind, port=body.get("port") or None, ble=body.get("ble") or None, pair=bool(body.get("pair")))
        if kind == "serial" and not choice.port:
            return fail("choose a serial port", field="port")
        if kind == "ble" and not choice.ble:
            return fail("give the trainer's Bluetooth name or address", field="ble")
        try:
            info = await self._do(self.link.connect_to, choice)
        except DeviceError as exc:
            return fail(str(exc), 409)
        return ok({"info": info})

    async def disconnect(self, request: web.Request) -> web.Response:
        await self._do(self.link.disconnect)
        return ok({"state": "disconnected"})

    async def info(self, request: web.Request) -> web.Response:
        try:
            return ok({"info": await self._do(self.link.refresh)})
        except DeviceError as exc:
            return fail(str(exc), 409)

    async def clock(self, request: web.Request) -> web.Response:
        try:
            return ok({"info": await self._do(self.link.set_clock)})
        except DeviceError as exc:
            return fail(str(exc), 409)

    async def live_start(self, request: web.Request) -> web.Response:
        body = await _body(request)
        program = body.get("program")
        if not isinstance(program, str) or not program:
            return fail("choose a program", field="program")
        try:
            pain = _score(body.get("pain_before"))
        except ValueError as exc:
            return fail(str(exc), field="pain_before")
        try:
            sid = await self._do(self.link.start_program, program, pain)
        except DeviceError as exc:
            return fail(str(exc), 409)
        return ok({"session": sid, "program": program})

    async def live_stop(self, request: web.Request) -> web.Response:
        try:
            sid = await self._do(self.link.stop_program)
        except DeviceError as exc:
            return fail(str(exc), 409)
        return ok({"session": sid})

    async def live_pain(self, request: web.Request) -> web.Response:
        body = await _body(request)
        when = body.get("when")
        if when not in (0, 1, "before", "after"):
            return fail("when is 0 (before) or 1 (after)")
        try:
            score = _score(body.get("score"))
        except ValueError as exc:
            return fail(str(exc), field="score")
        which = 1 if when in (1, "after") else 0
        if score is None:
            # she would rather not say: the trainer's own wait ends it as skipped
            await self._do(self.link.skip, which)
            return ok({"skipped": True})
        try:
            await self._do(self.link.pain, which, score)
        except DeviceRefused as exc:
            if exc.code == P.E_BUSY:
                return fail("the session has ended: the trainer kept the answer it had", 409)
            return fail(str(exc), 409)
        except DeviceError as exc:
            return fail(str(exc), 409)
        return ok({"when": when, "score": score})

    async def sync(self, request: web.Request) -> web.Response:
        try:
            return ok(await self._do(self.link.sync))
        except DeviceError as exc:
            return fail(str(exc), 409)

    async def push(self, request: web.Request) -> web.Response:
        body = await _body(request)
        doc = body.get("doc", body)
        checked = check_program(doc)
        if not checked["ok"]:
            return ok(checked, 400)
        doc = checked["doc"]
        try:
            name = await self._do(self.link.put_program, doc)
        except DeviceRefused as exc:
            # the trainer runs the same validator; its message names the field too
            again = check_program(doc)
            return ok({"ok": False, "error": str(exc), "field": again.get("field")}, 400)
        except DeviceError as exc:
            return ok({"ok": False, "error": str(exc), "field": None}, 409)
        await asyncio.to_thread(self.data.save_program, doc)
        return ok({"ok": True, "name": name, "program": checked})

    async def remove(self, request: web.Request) -> web.Response:
        body = await _body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return fail("which program?")
        saved = name in await asyncio.to_thread(self.data.local_programs)
        try:
            await self._do(self.link.remove_program, name)
        except DeviceRefused as exc:
            if exc.code != P.E_NOT_FOUND or not saved:
                return fail(str(exc), 409)
        except DeviceError as exc:
            if not saved:                  # only the copy here can go without a trainer
                return fail(str(exc), 409)
        await asyncio.to_thread(self.data.drop_program, name)
        return ok({"removed": name})
