# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PY    := .venv/bin/python
PIP   := .venv/bin/pip

.PHONY: venv chromium run test lint build bench clean

.venv/.installed: requirements/app.txt requirements/dev.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --disable-pip-version-check -r requirements/dev.txt
	touch $@

venv: .venv/.installed

# Debian's chromium for the browser tests (never `playwright install`: no browser downloads here).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

run: venv
	$(PY) -m devconsole.run_all

test: venv chromium
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .

build:
	./build.sh

bench: venv
	$(PY) -m bench

clean:
	rm -rf dist var .pytest_cache
