"""``make run``: the dev console, the app under gunicorn and the background refresher, wired together.

1. Seeds ``var/devconsole`` once (``python -m devconsole seed``) if it has no ``events.db`` yet.
2. Starts ``python -m devconsole serve`` (HTTPS on 127.0.0.1) proxying to the app, and waits for its
   ``ca.pem`` and ``tokens.json``.
3. Starts ``gunicorn 'app:create_app()'`` on 127.0.0.1:5000 and ``python -m app.refresher`` with the
   environment the app has inside QRadar: QRADAR_CONSOLE_FQDN, SEC_ADMIN_TOKEN (the console's
   ``service`` token), REQUESTS_CA_BUNDLE, QRADAR_APP_ID, QRADAR_APP_UUID, APP_STORE_DIR=var/store.
4. Prints the console page URL. Ctrl-C (or any child exiting) stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
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

from devconsole.launcher import gunicorn_command

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
    parser.add_argument("--store", default=str(ROOT / "var" / "store"), help="the app's store directory")
    parser.add_argument("--console-port", type=int, default=8443)
    parser.add_argument("--app-port", type=int, default=5000)
    parser.add_argument("--app-id", type=int, default=1101)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    data, store = Path(args.data), Path(args.store)
    data.mkdir(parents=True, exist_ok=True)
    store.mkdir(parents=True, exist_ok=True)
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

        env = {
            **os.environ,
            "QRADAR_CONSOLE_FQDN": base_url.split("://", 1)[1].rstrip("/"),
            "SEC_ADMIN_TOKEN": tokens["service"],
            "REQUESTS_CA_BUNDLE": str(data / "ca.pem"),
            "QRADAR_APP_ID": str(args.app_id),
            "QRADAR_APP_UUID": manifest["uuid"],
            "APP_STORE_DIR": str(store),
            "APP_QRADAR_TRANSPORT": "http",
        }
        # The container's server settings (container/conf/gunicorn.conf.py); only bind and --workers vary.
        gunicorn = start(gunicorn_command(f"127.0.0.1:{args.app_port}", "--workers", str(args.workers)), env)
        _wait_for(lambda: _http_ok(f"{app_url}/debug"), "the app's /debug", 60, [console, gunicorn])
        start([py, "-m", "app.refresher"], env)

        console_url = f"{base_url.rstrip('/')}/console/"
        _log(f"app:           {app_url}  (store {store})")
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
