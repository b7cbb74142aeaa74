"""Run ``python -m devconsole serve`` as a child process: start it, wait until it answers, stop it.

The test fixtures and the benchmarks start their dev consoles this one way. ``serve`` prints its base URL
as its first line on stdout and answers ``/devconsole/health`` once it is ready to take requests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0
# The server settings the container uses (workers, threads, timeouts, worker class). ``make run``, the
# tests' apps and the benchmarks start gunicorn with them, so what they see is what QRadar runs.
GUNICORN_CONF = REPO_ROOT / "container" / "conf" / "gunicorn.conf.py"


def gunicorn_command(bind: str, *overrides: str) -> list[str]:
    """``python -m gunicorn`` for the app with the container's config file, bound to ``bind``; ``overrides``
    are command-line options that take precedence over the file (e.g. ``--workers 4``)."""
    return [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "--bind", bind, *overrides,
            "app:create_app()"]


@dataclass
class ServeProcess:
    """A started ``serve``: its process, the URL it answers on and the CA that signed its certificate."""

    process: subprocess.Popen
    base_url: str
    ca_path: str
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


def start_serve(
    data_dir: Path, *options: str, log_path: Path | None = None, timeout_s: float = START_TIMEOUT_S
) -> ServeProcess:
    """``serve --data DATA_DIR --port 0 OPTIONS...`` (a free port); returns once it answers. Raises
    RuntimeError with the tail of its log (``DATA_DIR/serve.log`` unless ``log_path``) when it does not
    start within ``timeout_s``."""
    log_path = log_path or data_dir / "serve.log"
    with log_path.open("wb") as log:  # the child writes to its own copy of the handle
        process = subprocess.Popen(
            [sys.executable, "-m", "devconsole", "serve", "--data", str(data_dir), "--port", "0", *options],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base_url = process.stdout.readline().decode().strip()
    if not base_url.startswith("https://127.0.0.1:"):
        stop_serve(process)
        raise RuntimeError(f"devconsole serve did not start; see {log_path}: {_tail(log_path)}")
    ca_path = str(data_dir / "ca.pem")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            requests.get(base_url + "/devconsole/health", verify=ca_path, timeout=5).raise_for_status()
            return ServeProcess(process, base_url, ca_path, log_path)
        except requests.RequestException:
            if time.monotonic() > deadline or process.poll() is not None:
                stop_serve(process)
                raise RuntimeError(
                    f"devconsole serve never answered; see {log_path}: {_tail(log_path)}"
                ) from None
            time.sleep(0.2)


def stop_serve(process: subprocess.Popen) -> None:
    """Terminate ``serve`` (kill it if it lingers) and close its stdout pipe."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    if process.stdout:
        process.stdout.close()


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-2000:]
