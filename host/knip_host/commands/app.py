"""`knip app`: the local web app (knip_host.webapp): train with a live
trace, sync, look back, follow her progress, edit programs, see the
trainer, all in her browser and on her own computer."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import shutil
import signal
import sys
import tempfile
import threading
import webbrowser
from pathlib import Path
from typing import Any, TextIO

from ..usage import UsageError
from .connection import PORT_ARGS, port_options
from .spec import DB_ARG, Command, arg


def _http_port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a port number from 1 to 65535 (0: any free port), not {text!r}")
    return int(text)


def open_browser(url: str, folder: Path) -> None:
    """Open the page through a file only she can read that forwards to it, so
    the key never stands on a browser's command line (other users on this
    computer could read it there)."""
    page = folder / "knip-app.html"
    page.write_text(f'<!DOCTYPE html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={html.escape(url)}">'
                    f'<title>Knip</title><p><a href="{html.escape(url)}">Open Knip</a></p>', encoding="utf-8")
    page.chmod(0o600)
    webbrowser.open(page.as_uri())


def cmd_app(args: argparse.Namespace) -> int:
    """examples:
  knip app                          $KNIP_PORT or the only ESP32-like port, else pick on the page
  knip app --port sim --sim-speed 5 the virtual trainer, five times faster
  knip app --ble Knip --no-browser  print the link instead of opening it

Starts a web server on this computer only (127.0.0.1) and opens the page in
your browser. The link carries a random key: only a page opened with it may
talk to the server, and no other web site can drive the trainer or read
the sessions. Everything the page needs ships with knip, so it works
offline. Pages: Train (live trace, cues, level in % MVC, a verdict card
after every squeeze, pain check-in), Sync, History, a session (zoomable
trace, verdicts, scores, CSV and EDF+ export), Progress, Report (for her
physiotherapist), Programs (view, create, edit, push), Device. Ctrl-C
stops it."""
    from ..webapp.server import AppConfig, AppServer
    from ..webapp.trainer import Choice

    opts = port_options(args)
    ble, pair = opts.pop("ble", None), opts.pop("pair", False)
    if ble and args.port:
        raise UsageError(f"choose one link: --port {args.port} or --ble {ble}, not both")
    port = args.port
    if not port and not ble:
        # as every command: $KNIP_PORT or the only ESP32-like port; else she picks on the page
        from ..device import DeviceError
        from ..ports import default_port
        try:
            port = default_port()
        except DeviceError:
            port = None
    choice = None
    if ble:
        choice = Choice("ble", ble=ble, pair=bool(pair))
    elif port == "sim":
        choice = Choice("sim")
    elif port:
        choice = Choice("serial", port=port)
    server = AppServer(AppConfig(db=args.db, sim=opts, choice=choice, port=args.http_port))
    server.hub.on_message = TerminalNotes()

    async def main() -> None:
        try:
            await server.start()
        except OSError as exc:
            raise UsageError(f"--http-port {args.http_port}: cannot listen there ({exc.strerror or exc}); "
                             "choose another port, or 0 for any free one") from None
        with contextlib.suppress(NotImplementedError, RuntimeError):    # not on Windows
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.request_stop)
        print(f"knip app is running at {server.url}", flush=True)
        print("(only this computer can reach it; Ctrl-C stops it)", file=sys.stderr, flush=True)
        if not args.no_browser:
            open_browser(server.url, private)
        await server.serve_forever()

    private = Path(tempfile.mkdtemp(prefix="knip-app-"))        # mode 0700
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return 0


class TerminalNotes:
    """What goes wrong with the trainer or a sync, said in the terminal too
    (once each time it changes): with --no-browser, or a browser that did
    not open, the page is not there to say it."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out
        self.last: str | None = None
        self._lock = threading.Lock()     # called from the trainer's thread and the server's

    def __call__(self, msg: dict[str, Any]) -> None:
        with self._lock:
            self._note(msg)

    def _note(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "trainer":
            text = msg.get("error")
            text = f"trainer: {text}" if text else None
        elif kind == "sync" and msg.get("state") == "failed":
            text = f"sync failed: {msg.get('error')}"
        elif kind == "error":
            text = f"error: {msg.get('message')}"
        else:
            return
        if kind == "trainer":
            if text == self.last:
                return                      # the trainer's state again: said already
            self.last = text
        if text is not None:
            print(f"knip app: {text}", file=self.out or sys.stderr, flush=True)


COMMANDS = {
    "app": Command(cmd_app, "train, sync and look back in your browser", PORT_ARGS + [
        DB_ARG,
        arg("--http-port", type=_http_port, default=0, metavar="N",
            help="the local port the page is served on (default: any free one)"),
        arg("--no-browser", action="store_true", help="print the link instead of opening a browser"),
    ]),
}
