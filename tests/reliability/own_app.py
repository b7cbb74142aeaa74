"""A private gunicorn app for the hostile-request tests, wired to the session's seeded dev console.

The fuzz sends thousands of valid and invalid writes as an admin (triage changes, tuning entries, settings).
Aimed at the shared ``live_app`` they would change what the browser and load tests see, so the fuzz gets
an app of its own: the same ``gunicorn 'app:create_app()'`` command as ``live_app``, its own store (filled
by one real ``python -m app.refresher --once`` against the dev console), on a free port. It reaches the app
directly, not through the console proxy (the proxy only forwards to ``devconsole.app_port``, which belongs
to ``live_app``); the authorization matrix covers the proxy.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from devconsole.launcher import start_app, stop_process
from tests.app_fixtures import ROOT, free_port, qradar_env


class CountingSession(requests.Session):
    """A requests session that counts what it actually sends (one per HTTP request on the wire)."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # REQUESTS_CA_BUNDLE/proxies from the environment must not apply
        self.sent = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent += 1
        return super().send(request, **kwargs)


def session_as(console: Any, user: str | None) -> CountingSession:
    """A session with ``user``'s ``SEC`` cookie and a matching ``QRadarCSRF`` cookie + header, as the
    console gives a logged-in browser; ``user=None`` is a visitor with no QRadar session at all."""
    session = CountingSession()
    if user is not None:
        csrf = secrets.token_hex(16)
        session.cookies.set("SEC", console.tokens[user])
        session.cookies.set("QRadarCSRF", csrf)
        session.headers["QRadarCSRF"] = csrf
    return session


@contextmanager
def own_app(console: Any, store: Path, workers: int = 2, threads: int = 4) -> Iterator[str]:
    """Refresh detections once into ``store``, then serve the app from it; yields the base URL."""
    env = {**os.environ, **qradar_env(console), "APP_STORE_DIR": str(store), "APP_QRADAR_TRANSPORT": "http"}
    refresh = subprocess.run(
        [sys.executable, "-m", "app.refresher", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if refresh.returncode != 0:
        raise RuntimeError(f"refresher --once failed: {refresh.stdout[-1000:]} {refresh.stderr[-2000:]}")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = store / "gunicorn.log"
    process = start_app(port, env, log_path, "--workers", str(workers), "--threads", str(threads))
    try:
        yield base_url
    finally:
        stop_process(process)
