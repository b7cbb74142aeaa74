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
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONF),
        "--bind",
        bind,
        *overrides,
        "app:create_app()",
    ]


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
    stop_process(process, 10)
    if process.stdout:
        process.stdout.close()


def stop_process(process: subprocess.Popen, timeout_s: float = 20) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)


def start_app(
    port: int, env: dict[str, str], log_path: Path, *overrides: str, timeout_s: float = START_TIMEOUT_S
) -> subprocess.Popen:
    """The app under gunicorn (``gunicorn_command``) on 127.0.0.1:``port``, logging to ``log_path``;
    returns once ``/debug`` answers 200. Raises RuntimeError with the log's tail when gunicorn exits or
    does not answer within ``timeout_s`` (the process is stopped then)."""
    with log_path.open("wb") as log:  # the child writes to its own copy of the handle
        process = subprocess.Popen(
            gunicorn_command(f"127.0.0.1:{port}", *overrides),
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}: {_tail(log_path)}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/debug", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"gunicorn did not answer /debug in {timeout_s:g} s: {_tail(log_path)}")
        time.sleep(0.2)


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-2000:]
