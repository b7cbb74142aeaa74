"""Fixtures for every test that needs the app (loaded for the whole suite from tests/conftest.py).

The app runs as inside QRadar by default: through IBM's real qpylib (``SUITE_MODE == "qpylib"``, whenever
qpylib is importable — ``make venv`` installs it from vendor/qpylib — unless the suite is started with
``APP_QRADAR_TRANSPORT=http``), with ``QRADAR_CONSOLE_FQDN``, ``SEC_ADMIN_TOKEN``, ``REQUESTS_CA_BUNDLE``,
``QRADAR_APP_ID`` and ``APP_ROOT`` in the process environment, where qpylib reads them. A test or module
runs in the other mode by overriding the ``qradar_mode`` fixture (``@pytest.mark.parametrize("qradar_mode",
QRADAR_MODES)`` runs it in both); ``"http"`` is the app's own HTTPS transport for running outside QRadar.

* ``app`` — ``create_app`` with a fresh app root under ``tmp_path`` (so a fresh store) and the gateway
  pointed at the session's dev console (``devconsole`` fixture from tests/conftest.py) over HTTPS
  (``SEC_ADMIN_TOKEN`` = the console's ``service`` token).
* ``registered_settings`` (automatic) — every setting registered, as at a process start.
* ``refreshed_app`` — ``app`` after one real refresh cycle (its store holds the scenario's detections).
* ``client`` — its Flask test client; ``login(client, user)`` sets that user's ``SEC`` and ``QRadarCSRF``
  cookies and returns the headers an unsafe request needs.
* ``offline_app`` / ``offline_client`` — the same app with QRadar unreachable (a closed local port),
  for tests that need no console.
* ``console_gateway`` — ``Gateway.from_env()`` in ``qradar_mode`` against the session's dev console, as the
  refresher builds it.
* ``live_app`` — the app under real gunicorn on ``devconsole.app_port`` in ``SUITE_MODE`` (one per session,
  shared by tests/app, tests/ui and tests/reliability: two gunicorns cannot share the console's app port),
  with helpers to call it through the console proxy as a user.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) does not put the repo root on sys.path
    sys.path.insert(0, str(ROOT))

from devconsole.launcher import app_environment, prepare_app_root  # noqa: E402

QRADAR_MODES = ("qpylib", "http")
SUITE_MODE = (
    "qpylib"
    if importlib.util.find_spec("qpylib") is not None and os.environ.get("APP_QRADAR_TRANSPORT") != "http"
    else "http"
)
# What the test process's environment may hold that decides how the app reaches QRadar; `_fresh_app` sets
# them all for each test (monkeypatch undoes it).
QRADAR_ENV_NAMES = (
    "QRADAR_CONSOLE_FQDN",
    "SEC_ADMIN_TOKEN",
    "REQUESTS_CA_BUNDLE",
    "QRADAR_APP_ID",
    "APP_ROOT",
    "APP_STORE_DIR",
    "APP_QRADAR_TRANSPORT",
    "QRADAR_CONSOLE_IP",
)


@pytest.fixture(autouse=True, scope="session")
def registered_settings() -> None:
    """Every setting registered, as the app's two composition roots do when they start: tests call the
    features' functions (a refresh cycle, the offense sync) without either root."""
    from app.features import register_settings

    register_settings()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def qradar_env(devconsole: Any) -> dict[str, str]:
    """The environment QRadar gives the app, pointing at the dev console."""
    return {
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{devconsole.port}",
        "SEC_ADMIN_TOKEN": devconsole.tokens["service"],
        "REQUESTS_CA_BUNDLE": str(devconsole.ca_path),
        "QRADAR_APP_ID": str(devconsole.app_id),
    }


@pytest.fixture
def qradar_mode() -> str:
    """How the app reaches QRadar in this test: "qpylib" (as inside QRadar) or "http"."""
    return SUITE_MODE


def use_qradar_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], app_root: Path, mode: str
) -> dict[str, str]:
    """Make the test process's environment the one QRadar gives the app (``env`` plus ``APP_ROOT``), in
    ``mode``; returns it. qpylib reads it on every call, so it must be the real process environment."""
    full = app_environment(
        env.get("QRADAR_CONSOLE_FQDN", ""),
        env.get("SEC_ADMIN_TOKEN", ""),
        env.get("REQUESTS_CA_BUNDLE", ""),
        int(env.get("QRADAR_APP_ID", "0")),
        prepare_app_root(app_root),
        transport=mode,
        base={},
    )
    if "REQUESTS_CA_BUNDLE" not in env:
        del full["REQUESTS_CA_BUNDLE"]  # requests' own CA bundle, as for a console with a public certificate
    for name in QRADAR_ENV_NAMES:
        if name in full:
            monkeypatch.setenv(name, full[name])
        else:
            monkeypatch.delenv(name, raising=False)
    return full


def _fresh_app(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    env: dict[str, str],
    mode: str = SUITE_MODE,
    **config: Any,
):
    """``create_app`` as QRadar starts it, with ``env`` (see `qradar_env`) and a fresh app root under
    ``tmp_path``: in "qpylib" mode everything (gateway, store path, logging, ``q_url_for``) comes from qpylib
    and the process environment; in "http" mode the gateway is built from ``env`` over HTTPS."""
    from app import auth, create_app

    auth.token_cache.clear()
    full = use_qradar_environment(monkeypatch, env, tmp_path / "app-root", mode)
    if mode == "qpylib":
        return create_app({"TESTING": True, **config})
    return create_app({"TESTING": True, "STORE_DIR": str(tmp_path / "store"), "QRADAR_ENV": full, **config})


@pytest.fixture
def app(devconsole: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, qradar_mode: str):
    return _fresh_app(monkeypatch, tmp_path, qradar_env(devconsole), qradar_mode)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def refreshed_app(app):
    """The app with its store filled by one real refresh cycle against the seeded dev console."""
    from app.detection.refresher import refresh_once
    from app.qradar import get_gateway
    from app.store.db import get_db

    with app.app_context():
        result = refresh_once(get_db(), get_gateway())
        assert result.status == "ok", result
    return app


@pytest.fixture
def offline_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, qradar_mode: str):
    env = {
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{free_port()}",
        "SEC_ADMIN_TOKEN": "service-token-unused",
        "QRADAR_APP_ID": "1101",
    }
    return _fresh_app(monkeypatch, tmp_path, env, qradar_mode)


@pytest.fixture
def offline_client(offline_app):
    return offline_app.test_client()


@pytest.fixture
def console_gateway(devconsole: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, qradar_mode: str):
    """``Gateway.from_env()`` in ``qradar_mode`` against the session's dev console (``poll_wait_s=1``)."""
    from app.qradar import Gateway

    env = use_qradar_environment(monkeypatch, qradar_env(devconsole), tmp_path / "app-root", qradar_mode)
    return Gateway.from_env(None if qradar_mode == "qpylib" else env, poll_wait_s=1)


@pytest.fixture
def login(devconsole: Any) -> Callable[..., dict[str, str]]:
    """``login(client, "analyst")`` → headers carrying the matching QRadarCSRF value."""

    def do_login(client: Any, user: str, token: str | None = None) -> dict[str, str]:
        csrf = secrets.token_hex(16)
        client.set_cookie("SEC", token if token is not None else devconsole.tokens[user])
        client.set_cookie("QRadarCSRF", csrf)
        return {"QRadarCSRF": csrf}

    return do_login


@dataclass
class LiveApp:
    """The app under gunicorn, reached directly or through the dev console's proxy."""

    base_url: str
    console: Any
    store_dir: Path
    process: subprocess.Popen

    def proxy_url(self, path: str) -> str:
        return (
            f"{self.console.base_url.rstrip('/')}/console/plugins/{self.console.app_id}/app_proxy/"
            f"{path.lstrip('/')}"
        )

    def session_as(self, user: str) -> requests.Session:
        """A browser-like session logged in to the console as ``user`` (SEC + QRadarCSRF cookies)."""
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify
        session.verify = str(self.console.ca_path)
        csrf = secrets.token_hex(16)
        session.cookies.set("SEC", self.console.tokens[user])
        session.cookies.set("QRadarCSRF", csrf)
        session.headers["QRadarCSRF"] = csrf
        return session


@pytest.fixture(scope="session")
def live_app(devconsole: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """gunicorn in ``SUITE_MODE`` with its app root (``store_dir`` is its ``store/``) under a session tmp dir."""
    from devconsole.launcher import start_app, stop_process

    app_root = prepare_app_root(tmp_path_factory.mktemp("live_app_root"))
    env = app_environment(
        f"127.0.0.1:{devconsole.port}",
        devconsole.tokens["service"],
        devconsole.ca_path,
        devconsole.app_id,
        app_root,
        transport=SUITE_MODE,
    )
    store = app_root / "store"
    base_url = f"http://127.0.0.1:{devconsole.app_port}"
    log_path = store / "log" / "gunicorn.log"
    proc = start_app(devconsole.app_port, env, log_path)
    try:
        yield LiveApp(base_url, devconsole, store, proc)
    finally:
        stop_process(proc)
