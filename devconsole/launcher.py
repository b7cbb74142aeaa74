"""Start the dev console and the app as child processes, the way the tests, the benchmarks and ``make run``
all do.

* ``start_serve`` / ``stop_serve``: ``python -m devconsole serve``, which prints its base URL as its first
  line on stdout and answers ``/devconsole/health`` once it is ready to take requests.
* ``app_environment`` / ``prepare_app_root``: the environment QRadar gives the app, pointing at a dev
  console, and an app root laid out like the container's ``/opt/app-root``.
* ``start_app`` / ``stop_process``: the app under gunicorn with the container's settings.
"""

from __future__ import annotations

import os
import shutil
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


QRADAR_TRANSPORTS = ("qpylib", "http")


def prepare_app_root(app_root: Path) -> Path:
    """Lay out ``app_root`` as QRadar lays out ``/opt/app-root``, where qpylib looks (``$APP_ROOT``): the app's
    ``manifest.json`` (qpylib reads ``log_level`` and ``name`` there) and ``store/log/`` (``app.log``). The
    app's code stays in the repository. Returns ``app_root``."""
    (app_root / "store" / "log").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "manifest.json", app_root / "manifest.json")
    return app_root


def app_environment(
    console_fqdn: str,
    admin_token: str,
    ca_bundle: str | os.PathLike[str],
    app_id: int,
    app_root: Path,
    *,
    transport: str = "qpylib",
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """``base`` (default ``os.environ``) plus what QRadar gives the app: ``QRADAR_CONSOLE_FQDN``
    (``host:port`` of the console), ``SEC_ADMIN_TOKEN`` (the authorized service's token), ``REQUESTS_CA_BUNDLE``
    (the CA bundle that makes requests trust the console, as in the container), ``QRADAR_APP_ID`` and
    ``APP_ROOT`` (``prepare_app_root`` lays it out; the store is ``APP_ROOT/store``).

    ``transport="qpylib"`` runs the app through IBM's qpylib as inside QRadar; ``"http"`` sets
    ``APP_QRADAR_TRANSPORT=http`` (the app's own HTTPS transport, for running outside QRadar).
    ``QRADAR_CONSOLE_IP`` is left out: with it, qpylib's ``q_url_for`` would send requests that lack the
    proxy's ``X-Console-Host`` to ``https://<ip>/`` without the dev console's port, and ``create_log`` would
    log to syslog on its port 514."""
    if transport not in QRADAR_TRANSPORTS:
        raise ValueError(f"transport must be one of {QRADAR_TRANSPORTS}, not {transport!r}")
    env = dict(os.environ if base is None else base)
    for name in ("APP_STORE_DIR", "APP_QRADAR_TRANSPORT", "QRADAR_CONSOLE_IP"):
        env.pop(name, None)
    env.update(
        QRADAR_CONSOLE_FQDN=console_fqdn,
        SEC_ADMIN_TOKEN=admin_token,
        REQUESTS_CA_BUNDLE=str(ca_bundle),
        QRADAR_APP_ID=str(app_id),
        APP_ROOT=str(app_root),
    )
    if transport == "http":
        env["APP_QRADAR_TRANSPORT"] = "http"
    return env


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
