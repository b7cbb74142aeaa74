"""``make run``: the dev console, the app under gunicorn and the background refresher, wired together.

1. Seeds ``var/devconsole`` once (``python -m devconsole seed``) if it has no ``events.db`` yet.
2. Starts ``python -m devconsole serve`` (HTTPS on 127.0.0.1) proxying to the app, and waits for its
   ``ca.pem`` and ``tokens.json``.
3. Lays out the app root ``var/app-root`` as QRadar lays out ``/opt/app-root`` (``manifest.json``,
   ``store/`` with ``log/app.log``), then starts ``gunicorn 'app:create_app()'`` on 127.0.0.1:5000 and
   ``python -m app.refresher`` with the environment the app has inside QRadar (``launcher.app_environment``:
   QRADAR_CONSOLE_FQDN, SEC_ADMIN_TOKEN = the console's ``service`` token, REQUESTS_CA_BUNDLE = its CA,
   QRADAR_APP_ID, APP_ROOT, and QRADAR_APP_UUID) — through IBM's qpylib as inside QRadar, or with
   ``--transport http`` through the app's own HTTPS transport (APP_QRADAR_TRANSPORT=http).
4. Prints the console page URL. Ctrl-C (or any child exiting) stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from devconsole.launcher import QRADAR_TRANSPORTS, app_environment, gunicorn_command, prepare_app_root

ROOT = Path(__file__).resolve().parents[1]


def _log(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def _wait_for(check, what: str, timeout_s: float, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise SystemExit(
                    f"[make run] {proc.args[2] if len(proc.args) > 2 else proc.args} exited "
                    f"with {proc.returncode} while waiting for {what}"
                )
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"[make run] timed out after {timeout_s:g} s waiting for {what}")


def _echo(stream) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(line.decode(errors="replace"))
        sys.stdout.flush()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - fixed local URL
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(procs: list[subprocess.Popen]) -> None:
    # A second Ctrl-C while stopping must not leave children behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for proc in reversed(procs):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in reversed(procs):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devconsole.run_all", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "var" / "devconsole"), help="dev console data directory")
    parser.add_argument(
        "--app-root",
        default=str(ROOT / "var" / "app-root"),
        help="the app root (APP_ROOT): manifest.json, and store/ with the app's data and log/",
    )
    parser.add_argument(
        "--transport",
        choices=QRADAR_TRANSPORTS,
        default="qpylib",
        help="how the app reaches the console: IBM's qpylib as inside QRadar (default), or its own HTTPS",
    )
    parser.add_argument("--console-port", type=int, default=8443)
    parser.add_argument("--app-port", type=int, default=5000)
    parser.add_argument("--app-id", type=int, default=1101)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    if args.transport == "qpylib" and importlib.util.find_spec("qpylib") is None:
        raise SystemExit(
            "[make run] qpylib is not installed in this virtualenv (`make venv` installs it from "
            "vendor/qpylib); or run with --transport http"
        )
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    app_root = prepare_app_root(Path(args.app_root))
    store = app_root / "store"
    manifest_path = ROOT / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    py = sys.executable

    if not (data / "events.db").exists():
        _log(f"seeding the dev console in {data} (first run only)")
        subprocess.run([py, "-m", "devconsole", "seed", "--data", str(data)], cwd=ROOT, check=True)

    procs: list[subprocess.Popen] = []

    def start(cmd: list[str], env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen:
        # Own process group per child, so Ctrl-C handling and stopping are ours and complete.
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, **kwargs)
        procs.append(proc)
        return proc

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a shell that starts us in the background would otherwise leave SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        app_url = f"http://127.0.0.1:{args.app_port}"
        console = start(
            [
                py,
                "-m",
                "devconsole",
                "serve",
                "--data",
                str(data),
                "--port",
                str(args.console_port),
                "--app-url",
                app_url,
                "--manifest",
                str(manifest_path),
                "--app-id",
                str(args.app_id),
            ],
            stdout=subprocess.PIPE,
        )
        # serve prints its base URL once it has written ca.pem and tokens.json; echo the rest of its output.
        base_url = console.stdout.readline().decode().strip()
        if not base_url.startswith("https://"):
            raise SystemExit(f"[make run] devconsole serve did not start (exit {console.poll()})")
        threading.Thread(target=_echo, args=(console.stdout,), daemon=True).start()
        tokens = json.loads((data / "tokens.json").read_text(encoding="utf-8"))

        env = app_environment(
            base_url.split("://", 1)[1].rstrip("/"),
            tokens["service"],
            data / "ca.pem",
            args.app_id,
            app_root,
            transport=args.transport,
        )
        env["QRADAR_APP_UUID"] = manifest["uuid"]
        # The container's server settings (container/conf/gunicorn.conf.py); only bind and --workers vary.
        gunicorn = start(gunicorn_command(f"127.0.0.1:{args.app_port}", "--workers", str(args.workers)), env)
        _wait_for(lambda: _http_ok(f"{app_url}/debug"), "the app's /debug", 60, [console, gunicorn])
        start([py, "-m", "app.refresher"], env)

        console_url = f"{base_url.rstrip('/')}/console/"
        _log(f"app:           {app_url}  (through {args.transport}; store {store}, log {store / 'log'})")
        _log(f"dev console:   {base_url}  (CA: {data / 'ca.pem'})")
        _log(f"open the console page with the app's tab:  {console_url}")
        _log("users: admin, tuner1, tuner2, analyst (pick one on the page). Ctrl-C stops everything.")
        while True:
            for proc in procs:
                if proc.poll() is not None:
                    _log(f"{' '.join(proc.args[:3])} exited with {proc.returncode}; stopping everything")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        _log("stopping")
        return 0
    finally:
        _stop(procs)


if __name__ == "__main__":
    sys.exit(main())
