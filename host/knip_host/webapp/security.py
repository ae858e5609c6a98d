"""Local and private: who may talk to `knip app`.

The server listens on 127.0.0.1 only. Every request must name this server
in its Host header (127.0.0.1:PORT or localhost:PORT: a DNS-rebinding page
under another name is refused), a browser's Origin, when sent, must be this
server's own (no other site may drive her trainer or read her sessions, a
WebSocket included), and everything but the static files needs the random
token of the URL `knip app` opened (header X-Knip-Token, or ?token= for the
page itself, the WebSocket and download links)."""
from __future__ import annotations

import hmac
import secrets
from typing import Awaitable, Callable

from aiohttp import web

TOKEN_HEADER = "X-Knip-Token"
PUBLIC_PREFIXES = ("/static/",)          # code and styles only: no data, no trainer
PUBLIC_PATHS = ("/favicon.ico",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REFUSED_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Knip: open the link knip app printed</title></head><body>
<h1>This page needs its key</h1>
<p>Open the link that <code>knip app</code> printed in the terminal (it carries a
one-time key), or start <code>knip app</code> again.</p></body></html>"""


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Guard:
    """The checks, as an aiohttp middleware. `port` is set once the server
    is bound (it may have asked the system for a free one)."""

    def __init__(self, token: str, port: int = 0):
        self.token = token
        self.port = port
        self.refused = 0

    def hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    def origins(self) -> set[str]:
        return {f"http://{h}" for h in self.hosts()}

    def csp(self) -> str:
        ws = " ".join(f"ws://{h}" for h in sorted(self.hosts()))
        return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                f"connect-src 'self' {ws}; font-src 'self'; object-src 'none'; base-uri 'none'; "
                "form-action 'self'; frame-ancestors 'none'")

    def token_ok(self, request: web.Request) -> bool:
        given = request.headers.get(TOKEN_HEADER) or request.query.get("token") or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    def refusal(self, request: web.Request) -> tuple[int, str] | None:
        """(HTTP status, reason) when the request is refused, else None."""
        host = request.headers.get("Host", "")
        if host not in self.hosts():
            return 421, f"this server answers only as 127.0.0.1:{self.port} or localhost:{self.port}"
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.origins():
            return 403, "requests from other sites are refused"
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            return 403, "requests from other sites are refused"
        path = request.path
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        if not self.token_ok(request):
            return 403, "missing or wrong key: open the link knip app printed"
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = self.refusal(request)
        if refused is not None:
            self.refused += 1
            status, reason = refused
            if request.path == "/" and status == 403:
                resp: web.StreamResponse = web.Response(status=403, text=REFUSED_PAGE, content_type="text/html")
            else:
                resp = web.json_response({"error": reason}, status=status)
            self._headers(resp)
            return resp
        resp = await handler(request)
        if not resp.prepared:          # a WebSocket is already under way
            self._headers(resp)
        return resp

    def _headers(self, resp: web.StreamResponse) -> None:
        h = resp.headers
        h.setdefault("Content-Security-Policy", self.csp())
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        h.setdefault("Cache-Control", "no-store")
