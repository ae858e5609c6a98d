"""`knip app` without a browser: who may talk to the server (127.0.0.1, the
token, Host, Origin, the WebSocket too), the program check with the
firmware's validator, the answers without a trainer, and the vendored
chart library against its recorded checksums. No trainer is started:
these run in about a second."""
from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import re
import time
from pathlib import Path

import aiohttp
import pytest

from knip_host.cli import main as knip
from knip_host.webapp.api_data import check_program
from knip_host.webapp.server import STATIC, AppConfig, AppServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    srv = AppServer(AppConfig(db=str(tmp / "knip.sqlite3"), sim={"image": str(tmp / "t.img")})).start_in_thread()
    try:
        yield srv
    finally:
        srv.stop_thread()


def call(srv, method, path, *, headers=None, body=None, token=True):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    h = {"Host": f"127.0.0.1:{srv.port}"}
    if token:
        h["X-Knip-Token"] = srv.token
    h.update(headers or {})
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        h["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=h)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = raw.decode("utf-8", "replace")
    return resp.status, doc, dict(resp.getheaders())


def test_listens_on_loopback_only(server):
    assert {a[0] for a in server.runner.addresses} == {"127.0.0.1"}
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=")
    assert len(server.token) >= 32


def test_the_token_is_needed(server):
    assert call(server, "GET", "/api/state")[0] == 200
    status, doc, _ = call(server, "GET", "/api/state", token=False)
    assert status == 403 and "key" in doc["error"]
    wrong = server.token[:-1] + ("y" if server.token.endswith("x") else "x")     # 1 token in 64 ends in x
    assert call(server, "GET", "/api/state", headers={"X-Knip-Token": wrong})[0] == 403
    assert call(server, "GET", f"/api/sessions?token={server.token}", token=False)[0] == 200
    status, page, _ = call(server, "GET", "/?token=wrong", token=False)
    assert status == 403 and "needs its key" in page
    status, page, headers = call(server, "GET", f"/?token={server.token}", token=False)
    assert status == 200 and "<title>Knip</title>" in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "no-referrer"
    # code and styles carry no data: no key needed, but the Host check holds
    assert call(server, "GET", "/static/js/api.js", token=False)[0] == 200
    assert call(server, "POST", "/api/trainer/disconnect", token=False)[0] == 403


def test_other_sites_and_other_names_are_refused(server):
    origin = f"http://127.0.0.1:{server.port}"
    assert call(server, "GET", "/api/state", headers={"Origin": origin})[0] == 200
    assert call(server, "GET", "/api/state", headers={"Origin": f"http://localhost:{server.port}"})[0] == 200
    for evil in ("http://evil.example", f"http://127.0.0.1:{server.port + 1}", "null", f"https://127.0.0.1:{server.port}"):
        status, doc, _ = call(server, "POST", "/api/live/stop", headers={"Origin": evil})
        assert status == 403 and "other sites" in doc["error"], evil
    assert call(server, "GET", "/api/state", headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    # DNS rebinding: a page at evil.example whose name now points to 127.0.0.1
    for host in (f"evil.example:{server.port}", "127.0.0.1", f"127.0.0.1:{server.port + 1}"):
        status, doc, _ = call(server, "GET", "/api/sessions", headers={"Host": host})
        assert status == 421, host
        status, _doc, _ = call(server, "GET", "/static/js/api.js", headers={"Host": host}, token=False)
        assert status == 421, host


def test_the_websocket_checks_origin_and_token(server):
    base = f"http://127.0.0.1:{server.port}"

    async def attempt(token: str, origin: str) -> str:
        async with aiohttp.ClientSession() as s:
            try:
                ws = await s.ws_connect(f"{base}/ws?token={token}", headers={"Origin": origin})
            except aiohttp.WSServerHandshakeError as exc:
                return f"refused {exc.status}"
            msg = await ws.receive(timeout=5)
            await ws.close()
            return json.loads(msg.data)["type"]

    assert asyncio.run(attempt(server.token, base)) == "trainer"       # the sticky trainer state first
    assert asyncio.run(attempt(server.token, "http://evil.example")) == "refused 403"
    assert asyncio.run(attempt("nope", base)) == "refused 403"


def test_without_a_trainer_the_page_hears_why(server):
    status, doc, _ = call(server, "POST", "/api/live/start", body={"program": "sprint"})
    assert status == 409 and "no trainer connected" in doc["error"]
    status, doc, _ = call(server, "POST", "/api/live/start", body={"program": "sprint", "pain_before": 11})
    assert status == 400 and doc["field"] == "pain_before"
    status, doc, _ = call(server, "POST", "/api/trainer/connect", body={"kind": "serial"})
    assert status == 400 and doc["field"] == "port"
    status, doc, _ = call(server, "GET", "/api/sessions")
    assert status == 200 and doc["sessions"] == []
    status, doc, _ = call(server, "GET", "/api/report")
    assert status == 404 and "no sessions yet" in doc["error"]
    status, doc, _ = call(server, "GET", "/api/progress")
    assert status == 200 and doc["points"] == []


def test_programs_are_checked_by_the_firmware_validator(server):
    good = {"name": "gentle", "title": "Gentle start",
            "phases": [{"kind": "rest", "seconds": 20},
                       {"kind": "hold", "reps": 5, "squeeze_s": 5, "rest_s": 8, "target_pct": 40}]}
    status, doc, _ = call(server, "POST", "/api/programs/check", body={"doc": good})
    assert status == 200 and doc["ok"] and doc["squeezes"] == 5 and doc["length"] == "1:25"
    cases = [
        ({**good, "phases": [good["phases"][0], {**good["phases"][1], "rest_s": 2}]}, "phases[1].rest_s",
         "shorter than squeeze_s"),
        ({**good, "phases": [{"kind": "jump", "seconds": 3}]}, "phases[0].kind", "unknown cue 'jump'"),
        ({**good, "phases": [{**good["phases"][1], "target_pct": 120}]}, "phases[0].target_pct", "outside 0-100"),
        ({**good, "name": "Gentle!"}, "name", "no capitals"),
        ({**good, "name": "sprint"}, "name", "built-in"),
        ({**good, "phases": []}, "phases", "non-empty"),
    ]
    for doc_in, field, words in cases:
        got = check_program(doc_in)
        assert not got["ok"] and got["field"] == field and words in got["error"], (field, got)
    status, doc, _ = call(server, "POST", "/api/programs/push", body={"doc": cases[0][0]})
    assert status == 400 and doc["field"] == "phases[1].rest_s"
    status, doc, _ = call(server, "GET", "/api/programs")
    assert [p["name"] for p in doc["builtin"]] == ["assessment", "calibrate", "daily", "marathon", "relax", "sprint"]


def test_the_vendored_chart_library_is_what_its_readme_says():
    vendor = STATIC / "vendor"
    readme = (vendor / "README.md").read_text(encoding="utf-8")
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"):
        want = re.search(rf"\| `{re.escape(name)}` \|[^\n]*sha256 `([0-9a-f]{{64}})`", readme)
        assert want, name
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == want.group(1), name
    assert "MIT License" in (vendor / "uPlot.LICENSE").read_text(encoding="utf-8")


def test_the_page_loads_nothing_from_elsewhere():
    ours = [p for p in STATIC.rglob("*") if p.is_file() and p.suffix in (".html", ".js", ".css")
            and p.parent.name != "vendor"]
    assert len(ours) >= 10
    for p in ours:
        text = p.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), p.name
        assert "@import" not in text and "fonts.g" not in text, p.name
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert set(re.findall(r'(?:src|href)="(/[^"]*)"', html)) <= {
        "/static/vendor/uPlot.min.css", "/static/app.css", "/static/vendor/uPlot.iife.min.js", "/static/js/app.js"}
    for ref in re.findall(r'(?:src|href)="/static/([^"]*)"', html):
        assert (STATIC / ref).is_file(), ref


def test_the_command_line(capsys):
    assert knip(["app", "--help"]) == 0
    assert "--http-port" in capsys.readouterr().out
    assert knip(["app", "--http-port", "70000", "--no-browser"]) == 2
    assert "port number" in capsys.readouterr().err
    assert knip(["app", "--port", "sim", "--ble", "Knip", "--no-browser"]) == 2
    assert "choose one link" in capsys.readouterr().err


def test_the_browser_is_opened_without_the_key_on_its_command_line(tmp_path, monkeypatch):
    from knip_host.commands import app as cmd
    opened = []
    monkeypatch.setattr(cmd.webbrowser, "open", opened.append)
    url = "http://127.0.0.1:8123/?token=s3cret-key"
    cmd.open_browser(url, tmp_path)
    assert len(opened) == 1 and opened[0].startswith("file://") and "s3cret" not in opened[0]
    page = Path(opened[0][len("file://"):])
    assert page.stat().st_mode & 0o777 == 0o600
    assert f'url={url}"' in page.read_text(encoding="utf-8")


# ---- the live bridge over the virtual trainer, without a browser ------------------

async def _session(srv, program: str, seconds: float, pain_after: int | str | None = None,
                   stop_after: int | None = None, answer_after: float = 0.0,
                   pain_before: int | None = 4) -> list[dict]:
    """Connect the virtual trainer, watch, run a program (stopped from the
    page after `stop_after` sample messages, else to its end, then synced),
    collect messages. The page answers the check-in after the session with
    `pain_after` ("skip": it skips it), and without `pain_before` given at
    the start the one before with 3, `answer_after` s of wall clock late.
    `seconds` of wall clock is only an upper bound: the trainer runs on its
    virtual clock."""
    base = f"http://127.0.0.1:{srv.port}"
    got: list[dict] = []
    async with aiohttp.ClientSession(headers={"X-Knip-Token": srv.token}) as s:
        r = await s.post(f"{base}/api/trainer/connect", json={"kind": "sim"})
        assert r.status == 200, await r.text()
        ws = await s.ws_connect(f"{base}/ws?token={srv.token}")
        await ws.send_str(json.dumps({"type": "watch", "on": True}))
        r = await s.post(f"{base}/api/live/start", json={"program": program, "pain_before": pain_before})
        assert r.status == 200, await r.text()
        end = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < end:
            try:
                msg = await ws.receive(timeout=max(0.1, end - asyncio.get_running_loop().time()))
            except asyncio.TimeoutError:
                break
            data = json.loads(msg.data)
            for m in data if isinstance(data, list) else [data]:
                got.append(m)
                answer = pain_after if m.get("when") == 1 else 3 if pain_before is None else None
                if m["type"] == "checkin" and answer is not None:
                    await asyncio.sleep(answer_after)
                    score = None if answer == "skip" else answer
                    r = await s.post(f"{base}/api/live/pain", json={"when": m["when"], "score": score})
                    assert r.status == 200, await r.text()
                if m["type"] == "session" and m["state"] == "ended":
                    end = 0
                if stop_after is not None and m["type"] == "samples":
                    stop_after -= 1
                    if stop_after == 0:
                        r = await s.post(f"{base}/api/live/stop")
                        assert r.status == 200, await r.text()
        if stop_after is None:
            r = await s.post(f"{base}/api/sync")
            result = await r.json()
            while True:                    # the progress the page saw, up to the result
                data = json.loads((await ws.receive(timeout=5)).data)
                batch = data if isinstance(data, list) else [data]
                got += [m for m in batch if m["type"] == "sync"]
                if any(m["type"] == "sync" and m["state"] == "done" for m in batch):
                    break
            got.append(result)
        await ws.close()
    return got


def messages(tmp_path, sim: dict, program: str, seconds: float, **kw) -> list[dict]:
    """The messages a page gets from a fresh server with this virtual trainer."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    srv = AppServer(AppConfig(db=str(tmp_path / "knip.sqlite3"),
                              sim=dict(sim, baud=0, image=str(tmp_path / "t.img"), clock="virtual")))
    srv.start_in_thread()
    try:
        return asyncio.run(_session(srv, program, seconds, **kw))
    finally:
        srv.stop_thread()


@pytest.mark.micropython
def test_a_program_over_the_bridge(tmp_path):
    got = messages(tmp_path, {"speed": 40.0, "user": "weak"}, "calibrate", 30, pain_after=5)
    kinds = [m["type"] for m in got]
    live = next(m for m in got if m["type"] == "live")
    assert live["on"] and live["channels"] == 2 and live["rate"] == 100 and live["speed"] == 40
    assert live["batch"] == 80            # 40 ms of wall clock x 40 = 1.6 s, capped at 800 ms
    samples = [m for m in got if m["type"] == "samples"]
    assert all(len(m["v"]) == 2 and len(m["v"][0]) == len(m["v"][1]) for m in samples)
    firsts = [m["i"] for m in samples]
    assert firsts == list(range(0, 80 * len(firsts), 80))            # every batch, none missing
    assert sum(len(m["v"][0]) for m in samples) >= 8900                # her 90 s of rest and squeezes
    cues = [m["cue"] for m in got if m["type"] == "cue"]
    assert cues[:2] == ["pain", "rest"] and cues.count("squeeze") == 3 and cues[-1] == "done"
    assert [m["d"]["phase_kind"] for m in got if m["type"] == "verdict"] == ["rest", "mvc", "mvc", "mvc"]
    assert {(m["when"], m["score"]) for m in got if m["type"] == "pain"} == {("before", 4), ("after", 5)}
    assert next(m for m in got if m["type"] == "calibrated")["ok"]
    assert kinds.index("session") < kinds.index("verdict")
    done = got[-1]
    assert done["state"] == "done" and done["fetched"] == [0] and done["bytes"] > 5000
    progress = [m for m in got if m["type"] == "sync" and m["state"] == "running"]
    assert progress and progress[-1]["done"] == progress[-1]["total"] == done["bytes"]


def _content(got: list[dict]) -> list:
    """What the trainer did, without the host's wall-clock stamps."""
    keep = ("cue", "event", "verdict", "pain", "calibrated", "session")
    return [{k: v for k, v in m.items() if k not in ("wall", "wall_ms")} for m in got if m["type"] in keep]


@pytest.mark.micropython
def test_the_trainer_does_the_same_however_late_the_page_answers(tmp_path):
    # On the virtual clock the trainer waits for the page at a check-in
    # (board time held; 1 s of wall clock is 100 s of board time here, five
    # times its 20 s wait), so a late answer changes nothing. The page skips
    # the second check-in: the trainer records it skipped and goes on.
    sim = {"speed": 100.0, "user": "weak"}
    quick = messages(tmp_path / "a", sim, "calibrate", 60, pain_before=None, pain_after="skip")
    late = messages(tmp_path / "b", sim, "calibrate", 60, pain_before=None, pain_after="skip", answer_after=1.0)
    assert _content(quick) == _content(late)
    assert [m["d"]["phase_kind"] for m in late if m["type"] == "verdict"] == ["rest", "mvc", "mvc", "mvc"]
    assert {(m["when"], m["score"]) for m in late if m["type"] == "pain"} == {("before", 3), ("after", None)}
    assert [m["state"] for m in late if m["type"] == "session"] == ["running", "ended"]
    assert late[-1]["state"] == "done" and late[-1]["fetched"] == [0]


@pytest.mark.micropython
def test_raw_emg_is_drawn_as_activity(tmp_path):
    got = messages(tmp_path, {"speed": 5.0, "signal_kind": "emg"}, "sprint", 30, stop_after=8)
    live = next(m for m in got if m["type"] == "live")
    assert live["envelope"] and live["unit"] == "uV" and live["rate"] == 1000 and live["channels"] == 1
    samples = [m for m in got if m["type"] == "samples"]
    assert len(samples) > 5 and all(len(m["v"]) == 1 and len(m["v"][0]) == 1 for m in samples)
    assert all(m["v"][0][0] >= 0 for m in samples)


@pytest.mark.micropython
def test_a_held_virtual_trainer_that_dies_is_seen(tmp_path):
    # between sessions nothing reads a virtual trainer's port (its clock is
    # held): the link still notices it stopped and says so
    from knip_host.webapp.trainer import Choice
    srv = AppServer(AppConfig(db=str(tmp_path / "knip.sqlite3"),
                              sim={"speed": 40.0, "baud": 0, "image": str(tmp_path / "t.img"), "clock": "virtual"}))
    srv.start_in_thread()
    try:
        link = srv.link
        link.submit(link.connect_to, Choice("sim")).result(30)
        link.submit(link._watch, 1).result(5)
        assert link.state == "connected"
        link.dev.sim.kill()
        end = time.monotonic() + 10
        while link.state != "disconnected" and time.monotonic() < end:
            time.sleep(0.05)
        assert link.state == "disconnected" and "stopped" in (link.error or "")
    finally:
        srv.stop_thread()
