"""`knip report --html` as a physiotherapist sees it: the file opened in
headless Chromium (Selenium), the plots and tables checked on screen and a
screenshot of every plot checked for content.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian's chromium and
chromium-driver): `make test` installs them (its `browser` step); without
them this module skips and says so."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

import chromium
from test_trends import PLAN, UNDATED, _run, real_database, rows_of, shared_dir

from knip_host import trends as T
from knip_host.trend_plots import panels_with_data
from knip_host.html_report import PAIN_ADVICE, SESSION_HEADERS, WEEK_HEADERS

pytestmark = pytest.mark.micropython

@pytest.fixture(scope="module")
def driver():
    reason = chromium.why_not()
    if reason:
        pytest.skip(reason)
    with chromium.browser("1280,900") as drv:
        yield drv


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """(path of the written report, the database rows it was made from)."""
    db = real_database(shared_dir(tmp_path_factory))
    page = tmp_path_factory.mktemp("report") / "knip report.html"    # a space: a real file URL
    rc, out, err = _run(["report", "--html", str(page), "--db", str(db), "--name", "Kari N."])
    assert rc == 0, err
    return page, rows_of(db)


def _crop_stats(png: bytes, box: tuple[int, int, int, int]) -> tuple[float, int, tuple]:
    """(fraction of non-white pixels, distinct colours, size) of a screenshot crop."""
    import numpy as np
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB").crop(box)
    px = np.asarray(img).reshape(-1, 3)
    ink = int(np.count_nonzero(px.min(axis=1) < 235))
    colours = len(np.unique(px, axis=0))
    return ink / max(1, len(px)), colours, img.size


def test_plots_and_tables_are_shown(driver, report, tmp_path):
    page, rows = report
    driver.get(page.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    assert driver.title.startswith("Knip training report: Kari N.")

    # nothing was fetched from anywhere but the file itself
    fetched = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(u.startswith("data:") for u in fetched), fetched

    tr = T.build(rows)
    imgs = driver.find_elements("css selector", "img")
    assert len(imgs) == len(panels_with_data(tr)) == 7
    ratio = driver.execute_script("return window.devicePixelRatio") or 1
    for i, img in enumerate(imgs):
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                     img) > 0, img.get_attribute("alt")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", img)
        assert img.is_displayed()
        r = driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                  "return [r.left, r.top, r.width, r.height]", img)
        assert r[2] > 200 and r[3] > 80, (img.get_attribute("alt"), r)
        shot = driver.get_screenshot_as_png()
        (tmp_path / f"plot-{i}.png").write_bytes(shot)
        box = tuple(int(round(v * ratio)) for v in (r[0], r[1], r[0] + r[2], r[1] + r[3]))
        ink, colours, size = _crop_stats(shot, box)
        assert ink > 0.02 and colours > 20, (img.get_attribute("alt"), ink, colours, size)

    # the session table: the expected columns and one row per session
    heads = [th.text.replace("\n", " ") for th in
             driver.find_elements("css selector", "table.sessions thead th")]
    assert heads == list(SESSION_HEADERS)
    body = driver.find_elements("css selector", "table.sessions tbody tr")
    assert len(body) == len(rows) == len(PLAN)
    assert all(tr_.is_displayed() for tr_ in body)
    text = driver.find_element("css selector", "table.sessions").text
    assert "clock not set" in text and f"sim-0001/{UNDATED}" in text
    assert "Oxford" in text and "3 → 6" in text

    week_heads = [th.text.replace("\n", " ") for th in
                  driver.find_elements("css selector", "table.weeks thead th")]
    assert week_heads == list(WEEK_HEADERS)
    assert len(driver.find_elements("css selector", "table.weeks tbody tr")) == len(tr.weeks)

    notes = driver.find_element("css selector", ".notes p.pain")
    assert notes.is_displayed() and PAIN_ADVICE in notes.text.replace("\n", " ")

    # per session, a closed <details>; opening one shows every verdict the trainer stored
    details = driver.find_elements("css selector", "details.verdicts")
    assert len(details) == len(PLAN)
    sprint = next(r for r in rows if r.program == "sprint")
    d = next(x for x in details if x.get_attribute("data-session") == sprint.key)
    table = d.find_element("css selector", "table.verdicts")
    assert not table.is_displayed()
    summary = d.find_element("css selector", "summary")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", summary)
    summary.click()
    assert table.is_displayed()
    vrows = table.find_elements("css selector", "tbody tr")
    assert len(vrows) == len(sprint.summary["verdicts"])
    assert "squeezed on cue" in table.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", d)
    driver.save_screenshot(str(tmp_path / "verdicts.png"))

    # the whole page, for a person to look at
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 200, 8000))
    driver.execute_script("window.scrollTo(0, 0)")
    full = tmp_path / "report.png"
    driver.save_screenshot(str(full))
    assert full.stat().st_size > 50000
    driver.set_window_size(1280, 900)
