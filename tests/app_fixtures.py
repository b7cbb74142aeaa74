"""Fixtures for every test that needs the app (loaded for the whole suite from tests/conftest.py).

* ``app`` — ``create_app`` with a fresh store under ``tmp_path`` and the gateway pointed at the session's
  dev console (``devconsole`` fixture from tests/conftest.py) over HTTPS, as inside QRadar
  (``SEC_ADMIN_TOKEN`` = the console's ``service`` token).
* ``registered_settings`` (automatic) — every setting registered, as at a process start.
* ``refreshed_app`` — ``app`` after one real refresh cycle (its store holds the scenario's detections).
* ``client`` — its Flask test client; ``login(client, user)`` sets that user's ``SEC`` and ``QRadarCSRF``
  cookies and returns the headers an unsafe request needs.
* ``offline_app`` / ``offline_client`` — the same app with QRadar unreachable (a closed local port),
  for tests that need no console.
* ``live_app`` — the app under real gunicorn on ``devconsole.app_port`` (one per session, shared by
  tests/app, tests/ui and tests/reliability: two gunicorns cannot share the console's app port), with
  helpers to call it through the console proxy as a user.
"""

from __future__ import annotations

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


def _fresh_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], **config: Any):
    from app import auth, create_app

    auth.token_cache.clear()
    monkeypatch.setenv("QRADAR_APP_ID", env.get("QRADAR_APP_ID", "0"))
    return create_app({"TESTING": True, "STORE_DIR": str(tmp_path / "store"), "QRADAR_ENV": env, **config})


@pytest.fixture
def app(devconsole: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    return _fresh_app(monkeypatch, tmp_path, qradar_env(devconsole))


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
def offline_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    env = {
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{free_port()}",
        "SEC_ADMIN_TOKEN": "service-token-unused",
        "QRADAR_APP_ID": "1101",
    }
    return _fresh_app(monkeypatch, tmp_path, env)


@pytest.fixture
def offline_client(offline_app):
    return offline_app.test_client()


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
    from devconsole.launcher import start_app, stop_process

    store = tmp_path_factory.mktemp("live_store")
    env = {
        **os.environ,
        **qradar_env(devconsole),
        "APP_STORE_DIR": str(store),
        "APP_QRADAR_TRANSPORT": "http",
    }
    base_url = f"http://127.0.0.1:{devconsole.app_port}"
    log_path = store / "gunicorn.log"
    proc = start_app(devconsole.app_port, env, log_path)
    try:
        yield LiveApp(base_url, devconsole, store, proc)
    finally:
        stop_process(proc)
