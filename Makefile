# The two commands a newcomer needs: `make run` and `make test`. Both work on a fresh Debian machine:
# they create .venv (installing Debian's python3-venv first if needed) and `make test` installs Debian's
# chromium for the browser tests when it is absent. Nothing is hidden in CI: .ci/run calls `make test`.
SHELL := /bin/bash
PY    := .venv/bin/python
PIP   := .venv/bin/pip
# apt-get as root, or through sudo for a normal user.
APT   := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: venv chromium run run-dev test test-fast lint build bench clean

.venv/.installed: requirements/app.txt requirements/dev.txt
	@if ! test -x $(PY); then \
	  python3 -m venv .venv 2>/dev/null || { \
	    echo "python3 -m venv failed: installing Debian's python3-venv"; rm -rf .venv; \
	    $(APT) update -qq && $(APT) install -y -qq python3-venv >/dev/null && python3 -m venv .venv; }; \
	fi
	$(PIP) install -q --disable-pip-version-check -r requirements/dev.txt
	touch $@

venv: .venv/.installed

# Debian's chromium for the browser tests (never `playwright install`: no browser downloads here).
chromium:
	@command -v chromium >/dev/null || test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  $(APT) update -qq && $(APT) install -y -qq chromium >/dev/null; }

# What a customer installs: build.sh's zip installed in the dev console through the App Framework API
# (authorized as admin), run by supervisord from the installed copy; prints the console URL; Ctrl-C stops all.
run: venv
	$(PY) -m devconsole.apps.run

# Faster, for development: the dev console + the app from this checkout (gunicorn on 127.0.0.1:5000) +
# the refresher; code changes need no rebuild.
run-dev: venv
	$(PY) -m devconsole.run_all

test: venv chromium
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	.venv/bin/lint-imports
	$(PY) -m pytest

# The everyday loop: everything but the browser tests (marker ui) and the crash, fuzz, load and concurrency
# loops (marker stress), one test file per worker on both cores; no chromium needed.
test-fast: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	.venv/bin/lint-imports
	$(PY) -m pytest -n 2 --dist loadfile -m "not ui and not stress"

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	.venv/bin/lint-imports

# dist/<name>-<version>.zip for Extensions Management / qapp deploy.
build: venv
	./build.sh

bench: venv
	$(PY) -m bench

clean:
	rm -rf dist var .pytest_cache
