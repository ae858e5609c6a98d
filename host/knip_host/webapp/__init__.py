"""`knip app`: the trainer, her sessions and her progress in her browser.

A local web server (aiohttp) bound to 127.0.0.1 with a random token in the
URL it opens; the page is plain HTML, CSS and JavaScript shipped in static/
(uPlot vendored in static/vendor, no CDN). Modules, following the data:

  security.py   the token, the Host and Origin checks, the response headers
  hub.py        the open pages (WebSockets): messages from any thread to all
  trainer.py    TrainerLink: one thread owns the Device; jobs queue to it
  bridge.py     LiveBridge: stream frames -> messages for the page (trace,
                cue, level, state, verdict cards, pain check-ins)
  api_trainer.py  the routes that talk to the trainer (connect, live, sync,
                  push a program, device info)
  api_data.py   the routes over the stored sessions (history, a session,
                export, progress, report) and program validation
  server.py     the application, the static files, run and stop

docs/APP.md describes the pages, the API and why these parts.
"""
