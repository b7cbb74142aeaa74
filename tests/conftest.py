"""Session fixtures shared by every test: a seeded dev console over real HTTPS.

``devconsole`` seeds a small scenario through the real CLI (``python -m devconsole seed``), starts
``python -m devconsole serve`` as a subprocess on a free port (proxying to ``app_port``, where app tests
start the app), waits until it answers, and exposes what tests need (see docs/ARCHITECTURE.md,
"Test fixtures").
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from devconsole.faults import FaultClient

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_EVENTS = 3000
SEED = 7
APP_ID = 1101
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A port nothing listens on right now (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DevConsole:
    """A running ``python -m devconsole serve`` process."""

    base_url: str
    port: int
    data_dir: Path
    ca_path: str
    tokens: dict[str, str]
    scenario: dict
    app_id: int
    app_port: int
    faults: FaultClient
    process: subprocess.Popen = field(repr=False)

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def api(self, user: str = "admin", version: str | None = "26.0") -> requests.Session:
        """A requests session that authenticates as ``user`` with the SEC header and verifies TLS."""
        session = requests.Session()
        session.verify = self.ca_path
        session.headers["SEC"] = self.tokens[user]
        session.headers["Accept"] = "application/json"
        if version:
            session.headers["Version"] = version
        return session

    def url(self, path: str) -> str:
        return self.base_url + path


def start_devconsole(
    data_dir: Path, app_port: int, manifest: Path, app_id: int = APP_ID, log_path: Path | None = None
) -> DevConsole:
    """Start ``serve`` on a free port for an already seeded ``data_dir`` and wait until it answers."""
    log_path = log_path or data_dir / f"serve-{app_port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devconsole",
            "serve",
            "--data",
            str(data_dir),
            "--port",
            "0",
            "--app-url",
            f"http://127.0.0.1:{app_port}",
            "--manifest",
            str(manifest),
            "--app-id",
            str(app_id),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base_url = process.stdout.readline().decode().strip()
    if not base_url.startswith("https://127.0.0.1:"):
        process.kill()
        raise RuntimeError(f"devconsole serve did not start; see {log_path}: {log_path.read_text()[-2000:]}")
    ca_path = str(data_dir / "ca.pem")
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            requests.get(base_url + "/devconsole/health", verify=ca_path, timeout=5).raise_for_status()
            break
        except requests.RequestException:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"devconsole serve never answered; see {log_path}") from None
            time.sleep(0.2)
    tokens = json.loads((data_dir / "tokens.json").read_text())
    manifest_path = data_dir / "scenario" / "manifest.json"
    scenario = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return DevConsole(
        base_url=base_url,
        port=int(base_url.rsplit(":", 1)[1]),
        data_dir=data_dir,
        ca_path=ca_path,
        tokens=tokens,
        scenario=scenario,
        app_id=app_id,
        app_port=app_port,
        faults=FaultClient(base_url, tokens["admin"], ca_path),
        process=process,
    )


def stop_devconsole(dc: DevConsole) -> None:
    dc.process.terminate()
    try:
        dc.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        dc.process.kill()
        dc.process.wait(timeout=10)
    if dc.process.stdout:
        dc.process.stdout.close()


@pytest.fixture(scope="session")
def devconsole(tmp_path_factory: pytest.TempPathFactory) -> DevConsole:
    data_dir = tmp_path_factory.mktemp("devconsole")
    seeded = subprocess.run(
        [
            sys.executable,
            "-m",
            "devconsole",
            "seed",
            "--data",
            str(data_dir),
            "--events",
            str(SEED_EVENTS),
            "--seed",
            str(SEED),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=600,
    )
    if seeded.returncode != 0:
        raise RuntimeError(f"devconsole seed failed ({seeded.returncode}): {seeded.stderr.decode()[-3000:]}")
    dc = start_devconsole(data_dir, free_port(), REPO_ROOT / "manifest.json")
    yield dc
    stop_devconsole(dc)
