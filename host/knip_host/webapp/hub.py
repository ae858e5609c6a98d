"""The open pages: each holds one WebSocket; messages published from any
thread (the trainer's) reach every page, in order, as JSON text.

A page that falls behind (more than QUEUE_MAX messages waiting) loses its
oldest messages rather than slowing the trainer down. Some messages are
sticky (the last one of its type is sent to a page that connects later):
the trainer's state, the live stream's parameters, the current cue."""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Callable

from aiohttp import WSMsgType, web

QUEUE_MAX = 4000
STICKY = ("trainer", "live", "cue", "session", "sync")


class Client:
    def __init__(self, ws: web.WebSocketResponse):
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.watching = False
        self.dropped = 0

    def put(self, text: str) -> None:
        if self.queue.qsize() >= QUEUE_MAX:
            try:
                self.queue.get_nowait()
                self.dropped += 1
            except asyncio.QueueEmpty:
                pass
        self.queue.put_nowait(text)


class Hub:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: set[Client] = set()
        self.sticky: dict[str, str] = {}
        self._lock = threading.Lock()
        self.on_watchers: Callable[[int], None] | None = None    # live wanted by this many pages
        self.on_message: Callable[[dict[str, Any]], None] | None = None  # sees every message (knip app's terminal)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # ---- publishing (any thread) -------------------------------------------

    def publish(self, msg: dict[str, Any]) -> None:
        try:
            text = json.dumps(msg, separators=(",", ":"), allow_nan=False, default=_plain)
        except ValueError:               # NaN or infinity somewhere: JSON has no word for them
            from ..commands.output import plain
            text = json.dumps(plain(msg), separators=(",", ":"), default=_plain)
        with self._lock:
            if msg.get("type") in STICKY:
                self.sticky[msg["type"]] = text
        if self.on_message is not None:
            try:
                self.on_message(msg)
            except Exception:            # (a closed terminal): the pages must still hear it
                pass
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fanout(text)
        else:
            try:
                loop.call_soon_threadsafe(self._fanout, text)
            except RuntimeError:         # the loop is closing
                pass

    def forget(self, kind: str) -> None:
        with self._lock:
            self.sticky.pop(kind, None)

    def _fanout(self, text: str) -> None:
        for c in list(self.clients):
            c.put(text)

    def watchers(self) -> int:
        return sum(1 for c in self.clients if c.watching)

    # ---- one page (on the event loop) --------------------------------------

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=1 << 16)
        await ws.prepare(request)
        client = Client(ws)
        with self._lock:
            for text in self.sticky.values():
                client.put(text)
        self.clients.add(client)
        sender = asyncio.create_task(self._send(client))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._receive(client, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.clients.discard(client)
            sender.cancel()
            if client.watching:
                self._watchers_changed()
        return ws

    async def _send(self, client: Client) -> None:
        while True:
            text = await client.queue.get()
            parts = [text]
            while not client.queue.empty() and len(parts) < 64:     # what piled up goes in one write
                parts.append(client.queue.get_nowait())
            try:
                await client.ws.send_str(parts[0] if len(parts) == 1 else "[" + ",".join(parts) + "]")
            except (ConnectionError, RuntimeError):
                return

    def _receive(self, client: Client, data: str) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            return
        if isinstance(msg, dict) and msg.get("type") == "watch":
            on = bool(msg.get("on"))
            if on != client.watching:
                client.watching = on
                self._watchers_changed()

    def _watchers_changed(self) -> None:
        if self.on_watchers is not None:
            self.on_watchers(self.watchers())

    async def close(self) -> None:
        for c in list(self.clients):
            await c.ws.close()


def _plain(x: Any) -> Any:
    """numpy numbers and other odd values in a message become plain JSON."""
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, (set, tuple)):
        return list(x)
    return str(x)
