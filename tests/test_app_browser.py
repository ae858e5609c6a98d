"""`knip app` in a real browser (Selenium, headless Chromium), driven from
the page alone against the virtual trainer on the virtual clock, paced to
40 times real time: connect, calibrate, then sprint with the pain check-ins answered
on the page; the trace drawn, the cue changing and the verdict cards
coming (screenshots); sync with its progress bar, the history, one
session with its plot and exports, the progress charts and the report; a
custom program with a field error, then pushed; keyboard navigation; a
wrong key, and another site trying to drive the trainer.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`make browser`, part of
`make test`); without them the module skips and says why. Screenshots go
to $KNIP_SHOTS when set, else to the test's temporary folder."""
from __future__ import annotations

import http.server
import os
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import chromium
from knip_host.webapp.server import AppConfig, AppServer

pytestmark = pytest.mark.micropython

# The trainer runs on the virtual clock (simclock.py): the app grants its
# board time at up to 40x the wall clock while a session runs, only what
# requests take between sessions, and none while a pain check-in waits for
# the page (30 s of wall clock at most), so what the trainer records depends
# on what the page did, not on how busy the machine was.
SPEED = 40.0


@pytest.fixture(scope="module")
def driver():
    reason = chromium.why_not()
    if reason:
        pytest.skip(reason)
    with chromium.browser("1280,1100", "--autoplay-policy=no-user-gesture-required") as drv:
        yield drv


@pytest.fixture(scope="module")
def app(tmp_path_factory, driver):
    """The server with a virtual trainer to choose: 2 channels, pressure, the
    'weak' woman (she leaves the pain check-ins to the page)."""
    tmp = tmp_path_factory.mktemp("knip-app")
    srv = AppServer(AppConfig(db=str(tmp / "knip.sqlite3"),
                              sim={"speed": SPEED, "user": "weak", "seed": 3, "baud": 0, "clock": "virtual",
                                   "image": str(tmp / "trainer.img")}))
    srv.start_in_thread()
    try:
        yield srv
    finally:
        srv.stop_thread()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = Path(os.environ["KNIP_SHOTS"]) if os.environ.get("KNIP_SHOTS") else tmp_path_factory.mktemp("shots")
    out.mkdir(parents=True, exist_ok=True)
    return out


# ---- helpers -------------------------------------------------------------------

def wait(d, js: str, timeout: float = 15.0, what: str = "") -> object:
    """Poll a JavaScript expression until it is truthy; return its value."""
    end = time.monotonic() + timeout
    while True:
        got = d.execute_script(f"return ({js})")
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or js}")
        time.sleep(0.04)


def click(d, css: str) -> None:
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", d.find_element("css selector", css))
    d.find_element("css selector", css).click()


def go(d, app, page: str) -> None:
    if not d.current_url.startswith(f"http://127.0.0.1:{app.port}/"):
        d.get(app.url + "#/" + page)
    else:
        d.execute_script("location.hash = arguments[0]", "#/" + page)
    wait(d, f"!document.getElementById('page-{page.split('/')[0]}').hidden", 5, page)


INK_JS = """
const c = document.querySelector(arguments[0] + ' canvas');
if (!c) return 0;
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) {
  if (Math.abs(d[i] - 122) < 30 && Math.abs(d[i + 1] - 45) < 30 && Math.abs(d[i + 2] - 140) < 30 && d[i + 3] > 200) n++;
}
return n;"""


def answer_checkin(d, score: int, timeout: float) -> None:
    """The trainer waits at a check-in (its clock held meanwhile): answer as she would."""
    wait(d, "!document.getElementById('checkin').hidden", timeout, "the pain check-in")
    d.find_element("css selector", f"#checkin-scale button[data-score='{score}']").click()


def run_program(d, program: str, timeout: float) -> None:
    from selenium.webdriver.support.ui import Select
    Select(d.find_element("id", "program-select")).select_by_value(program)
    click(d, "#start")
    wait(d, "!document.getElementById('stop').hidden", 5, "the session to start")


# ---- the tests -------------------------------------------------------------------

def test_train_calibrate_then_sprint_from_the_page(driver, app, shots):
    d = driver
    go(d, app, "train")
    click(d, "#trainer-form input[value=sim]")
    click(d, "#connect")
    wait(d, "document.getElementById('badge').textContent.includes('virtual trainer')", 20, "the virtual trainer")
    wait(d, "[...document.querySelectorAll('#program-select option')].some(o => o.value === 'calibrate')", 5)
    assert d.execute_script("return document.getElementById('program-select').value") == "calibrate"
    d.execute_script("""window.cuesSeen = [];
        new MutationObserver(() => cuesSeen.push(document.getElementById('cue').dataset.cue))
          .observe(document.getElementById('cue'), {attributes: true, childList: true});""")
    click(d, "#pain-before-box button[data-score='2']")
    click(d, "#sound")

    # calibrate: rest 30 s, 3 maximal squeezes (2.3 s at 40x)
    run_program(d, "calibrate", 10)
    wait(d, "cuesSeen.includes('squeeze')", 20, "the first squeeze cue")
    wait(d, "knipStats.frames > 20", 5)
    d.save_screenshot(str(shots / "1-calibrate-squeeze.png"))
    answer_checkin(d, 1, 30)
    wait(d, "!document.getElementById('session-end').hidden", 10, "calibrate to end")
    assert "Calibrated: your MVC is" in d.find_element("id", "session-end").text
    cards = d.find_elements("css selector", "#cards .vcard")
    assert len(cards) == 4, [c.text for c in cards]            # the rest and 3 maximal squeezes
    assert {c.get_attribute("data-kind") for c in cards} == {"rest", "mvc"}
    d.save_screenshot(str(shots / "2-calibrate-done.png"))

    # sprint: 3 sets of 10 quick squeezes at 70 % of the MVC just measured (4.8 s at 40x)
    run_program(d, "sprint", 10)
    answer_checkin(d, 2, 5)                    # no pain given before the start: the trainer asks
    wait(d, "document.querySelectorAll('#cards .vcard[data-kind=fast]').length >= 4", 30, "verdict cards")
    d.save_screenshot(str(shots / "3-sprint-cards.png"))
    answer_checkin(d, 3, 40)
    wait(d, "!document.getElementById('session-end').hidden", 10, "sprint to end")
    fast = d.find_elements("css selector", "#cards .vcard[data-kind=fast]")
    assert len(fast) == 30
    right = sum("ok" in c.get_attribute("class").split() for c in fast)
    assert right >= 20, "most quick squeezes right"
    assert f"{right} of 30 reps fully right" in d.find_element("id", "session-end").text
    d.save_screenshot(str(shots / "4-sprint-done.png"))

    # the trace was drawn in the pelvic floor's colour, smoothly, the cue changed, a beep per cue
    assert d.execute_script(INK_JS, "#trace") > 200
    seen = d.execute_script("return cuesSeen")
    assert {"rest", "squeeze", "hold", "relax", "done"} <= set(seen), seen
    st = d.execute_script("return {fps: knipStats.fps, frames: knipStats.frames, beeps: knipStats.beeps}")
    assert st["beeps"] >= 40 and st["frames"] > 200, st


def test_sync_history_session_progress_report(driver, app, shots):
    d = driver
    go(d, app, "sync")
    click(d, "#sync-now")
    wait(d, "document.getElementById('sync-status').textContent.startsWith('Synced')", 20, "the sync")
    assert "2 new sessions" in d.find_element("id", "sync-status").text
    assert d.execute_script("const b = document.getElementById('sync-bar'); return b.value === b.max")
    d.save_screenshot(str(shots / "5-sync.png"))

    go(d, app, "history")
    wait(d, "document.querySelectorAll('#history tbody tr').length === 2", 5, "two sessions")
    rows = d.find_elements("css selector", "#history tbody tr")
    assert "sprint" in rows[0].text and "2 → 3" in rows[0].text
    assert "calibrate" in rows[1].text and "2 → 1" in rows[1].text
    rows[0].find_element("css selector", "a").click()
    wait(d, "document.getElementById('session-plot').dataset.ready === '1'", 10, "the session plot")
    assert len(d.find_elements("css selector", "#session-verdicts tbody tr")) == 33   # 3 rests, 30 squeezes
    assert d.execute_script(INK_JS, "#session-plot") > 500
    assert "power" in d.find_element("id", "session-scores").text
    click(d, "#session-verdicts tbody tr:nth-child(5)")           # zoom to one rep
    d.save_screenshot(str(shots / "6-session.png"))
    links = {a.text: a.get_attribute("href") for a in d.find_elements("css selector", "#session-exports a")}
    assert set(links) == {"CSV", "Events CSV", "Cues CSV", "EDF+"}
    csv = urllib.request.urlopen(links["CSV"], timeout=10).read().decode()
    assert csv.startswith("time_s,pressure_cmH2O,abdominal_cmH2O")
    assert urllib.request.urlopen(links["EDF+"], timeout=10).read()[:8] == b"0       "

    go(d, app, "progress")
    wait(d, "document.querySelectorAll('#progress-charts figure canvas').length >= 4", 10, "the charts")
    d.save_screenshot(str(shots / "7-progress.png"))
    go(d, app, "report")
    report = urllib.request.urlopen(d.find_element("id", "report-open").get_attribute("href"), timeout=20).read().decode()
    assert "<title>Knip training report" in report and "sim-0001/1" in report


def test_a_custom_program_with_a_field_error(driver, app, shots):
    from selenium.webdriver.common.keys import Keys
    d = driver
    go(d, app, "programs")
    click(d, "#program-new")
    d.find_element("id", "ed-name").send_keys("gentle")
    rest = d.find_element("css selector", "[data-field='phases[1].rest_s']")
    rest.send_keys(Keys.CONTROL, "a")
    rest.send_keys("2")
    err = "document.querySelector(\"[data-error-for='phases[1].rest_s']\").textContent"
    wait(d, f"{err}.includes('shorter than squeeze_s')", 5, "the field error")
    assert rest.get_attribute("aria-invalid") == "true"
    d.save_screenshot(str(shots / "8-program-error.png"))
    rest.send_keys(Keys.BACKSPACE, "8")
    wait(d, f"{err} === '' && document.getElementById('ed-summary').textContent.startsWith('Valid')", 5)
    click(d, "#ed-push")
    wait(d, "document.getElementById('ed-status').textContent.includes(\"Stored 'gentle'\")", 10, "the push")
    wait(d, "document.querySelector('#programs-custom [data-program=gentle]')", 5)
    assert "on the trainer, saved here" in d.find_element("css selector", "#programs-custom [data-program=gentle]").text
    go(d, app, "train")
    wait(d, "[...document.querySelectorAll('#program-select option')].some(o => o.value === 'gentle')", 5)


def test_keyboard_navigation(driver, app):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    d = driver
    d.get(app.url + "#/train")
    d.refresh()                          # a fresh page: the keyboard starts at its top
    wait(d, "!document.getElementById('page-train').hidden", 5)
    keys = ActionChains(d)
    focus = []
    for _ in range(4):
        keys.send_keys(Keys.TAB).perform()
        focus.append(d.execute_script("return document.activeElement.textContent.trim()"))
    assert focus == ["Skip to the page", "Train", "Sync", "History"], focus
    keys.send_keys(Keys.ENTER).perform()
    wait(d, "location.hash === '#/history' && !document.getElementById('page-history').hidden", 5)
    assert d.execute_script("return document.activeElement.id") == "main"
    assert d.find_element("css selector", "nav a[aria-current=page]").text == "History"
    go(d, app, "train")                  # the pain scale is a radio group: arrows move and choose
    d.execute_script("document.querySelector('#pain-before-box button[data-score=\"0\"]').focus()")
    for _ in range(3):
        keys.send_keys(Keys.ARROW_RIGHT).perform()
    assert d.execute_script("return document.activeElement.dataset.score") == "3"
    assert d.execute_script("return document.querySelector('#pain-before-box .pain-scale').dataset.value") == "3"


def test_a_wrong_key_or_another_site_is_refused(driver, app):
    d = driver
    d.get(f"http://127.0.0.1:{app.port}/?token=guessed")
    assert "needs its key" in d.find_element("tag name", "body").text
    # another site on this computer tries, knowing even the key, to stop her session
    page = (f"<script>fetch('http://127.0.0.1:{app.port}/api/live/stop?token={app.token}', "
            f"{{method: 'POST', mode: 'no-cors'}}).catch(() => 0);"
            f"const ws = new WebSocket('ws://127.0.0.1:{app.port}/ws?token={app.token}');"
            f"ws.onopen = () => document.title = 'open'; ws.onerror = () => document.title = 'refused';</script>")

    class Evil(http.server.BaseHTTPRequestHandler):
        timeout = 2                                    # a browser's idle spare connection must not hold it

        def do_GET(self):                              # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page.encode())

        def log_message(self, *a):
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    evil.daemon_threads = True
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    before = app.guard.refused
    try:
        d.get(f"http://127.0.0.1:{evil.server_address[1]}/")
        wait(d, "document.title === 'refused'", 5, "the WebSocket to be refused")
        end = time.monotonic() + 5
        while app.guard.refused < before + 2 and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        evil.shutdown()
    assert app.guard.refused >= before + 2        # the POST and the WebSocket
