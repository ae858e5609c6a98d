"""Headless Chromium through Selenium, for the browser tests and the app
bench: Debian's chromium and chromium-driver (`make browser`), started with
the flags this machine's closed network needs, in a fresh profile."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Any, Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium on a machine with a closed network hangs without these.
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--force-device-scale-factor=1")


def why_not() -> str | None:
    """Why headless Chromium cannot run here, or None when it can."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return (f"{' and '.join(missing)} not installed: 'make browser' (part of 'make test') "
                f"installs Debian's chromium and chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: run 'make setup' (the dev extra has it)"
    return None


@contextlib.contextmanager
def browser(size: str = "1280,900", *extra: str) -> Iterator[Any]:
    """A Selenium Chrome driver (Selenium Manager never downloads anything:
    the binary and the driver are given)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="knip-chromium-")
    options = webdriver.ChromeOptions()
    for a in CHROME_ARGS + (f"--window-size={size}", f"--user-data-dir={profile}") + extra:
        options.add_argument(a)
    options.binary_location = CHROMIUM
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
