"""The `knip app` server: the aiohttp application (security middleware, the
API routes, the WebSocket, the static page), bound to 127.0.0.1, run in the
foreground by the command or in a thread by the tests and the bench."""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .api_data import DataRoutes
from .api_trainer import TrainerRoutes
from .hub import Hub
from .security import Guard, new_token
from .trainer import Choice, TrainerLink

STATIC = Path(__file__).resolve().parent / "static"
BIND = "127.0.0.1"


@dataclass
class AppConfig:
    db: str | None = None                          # session database (None: the default one)
    sim: dict[str, Any] = field(default_factory=dict)   # the virtual trainer's options
    choice: Choice | None = None                   # a trainer to connect to at start
    port: int = 0                                  # 0: any free port
    token: str | None = None                       # None: a new random one


class AppServer:
    def __init__(self, config: AppConfig):
        self.config = config
        self.token = config.token or new_token()
        self.guard = Guard(self.token)
        self.hub = Hub()
        self.data = DataRoutes(config.db)
        self.link = TrainerLink(self.hub, sim=config.sim, db_path=self.data.db_path)
        self.app = web.Application(middlewares=[self.guard.middleware], client_max_size=1 << 20)
        self.app.add_routes(TrainerRoutes(self.link, self.data).routes() + self.data.routes())
        self.app.add_routes([web.get("/", self.index), web.get("/ws", self.hub.serve),
                             web.get("/favicon.ico", self.favicon)])
        self.app.router.add_static("/static/", STATIC, follow_symlinks=False)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{BIND}:{self.port}/?token={self.token}"

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def favicon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    # ---- in the foreground ---------------------------------------------------

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, BIND, self.config.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port
        self.guard.port = self.port
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.hub.attach(self._loop)
        self.link.start()
        if self.config.choice is not None:
            self.link.submit(self.link.connect_to, self.config.choice)

    async def stop(self) -> None:
        await asyncio.to_thread(self.link.close)
        await self.hub.close()
        if self.runner is not None:
            await self.runner.cleanup()

    def request_stop(self) -> None:
        """Stop serving (from the event loop's thread, e.g. a signal handler)."""
        if self._stopped is not None:
            self._stopped.set()

    async def serve_forever(self) -> None:
        assert self._stopped is not None, "start() first"
        try:
            await self._stopped.wait()
        finally:
            await self.stop()

    # ---- in a thread (tests, bench) ------------------------------------------

    def start_in_thread(self, timeout: float = 20.0) -> "AppServer":
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            async def run() -> None:
                try:
                    await self.start()
                except BaseException as exc:
                    errors.append(exc)
                    ready.set()
                    raise
                ready.set()
                await self.serve_forever()
            try:
                asyncio.run(run())
            except BaseException:
                pass

        self._thread = threading.Thread(target=main, name="knip-app", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("knip app did not start")
        if errors:
            raise errors[0]
        return self

    def stop_thread(self, timeout: float = 20.0) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout)
