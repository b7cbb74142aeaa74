"""``make run``: what a customer gets — the zip build.sh makes, installed in the dev console through the
App Framework API, authorized, started by supervisord from the installed copy.

1. Seeds ``var/devconsole`` once (``python -m devconsole seed``) if it has no ``events.db`` yet.
2. Starts ``python -m devconsole serve`` (HTTPS on 127.0.0.1:8443); apps installed earlier start again.
3. Builds ``dist/<name>-<version>.zip`` with ``build.sh``.
4. Installs it (``POST /api/gui_app_framework/application_creation_task``; an installed app with the same
   uuid is upgraded in place, keeping its store), authorizes it as ``admin`` and waits until it runs.
   A zip identical to the one already running (build.sh is deterministic) is not installed again.
5. Prints the console URL. Ctrl-C stops the console, which stops the app's supervisord.

``make run-dev`` (``python -m devconsole.run_all``) runs the app from the checkout instead: faster, and
code changes need no rebuild.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from devconsole.apps.deploy import ConsoleClient, DeployError, deploy

ROOT = Path(__file__).resolve().parents[2]
ADMIN_USER_ID = 1


def _log(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def _echo(stream: object) -> None:
    for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
        sys.stdout.write(line.decode(errors="replace"))
        sys.stdout.flush()


def _build_zip() -> Path:
    result = subprocess.run(["bash", "build.sh"], cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"[make run] build.sh failed:\n{result.stderr}{result.stdout}")
    built = result.stdout.strip().splitlines()[-1]  # "built dist/<name>-<version>.zip (...)"
    return ROOT / built.split()[1]


def _wait_settled(client: ConsoleClient, uuid: str, timeout_s: float = 180) -> dict | None:
    """The installed app with ``uuid`` once it is not starting any more (apps restart with the console)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [a for a in client.applications() if a["manifest"].get("uuid", "").lower() == uuid.lower()]
        if not found or found[0]["application_state"]["status"] not in ("STARTING", "CREATING", "UPGRADING"):
            return found[0] if found else None
        time.sleep(0.5)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devconsole.apps.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", default=str(ROOT / "var" / "devconsole"), help="dev console data directory")
    parser.add_argument("--console-port", type=int, default=8443)
    args = parser.parse_args(argv)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    if not (data / "events.db").exists():
        _log(f"seeding the dev console in {data} (first run only)")
        subprocess.run([py, "-m", "devconsole", "seed", "--data", str(data)], cwd=ROOT, check=True)

    def on_signal(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console = subprocess.Popen(
        [py, "-m", "devconsole", "serve", "--data", str(data), "--port", str(args.console_port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        base_url = console.stdout.readline().decode().strip()
        if not base_url.startswith("https://"):
            raise SystemExit(f"[make run] devconsole serve did not start (exit {console.poll()})")
        threading.Thread(target=_echo, args=(console.stdout,), daemon=True).start()
        tokens = json.loads((data / "tokens.json").read_text(encoding="utf-8"))
        client = ConsoleClient(base_url, tokens["admin"], str(data / "ca.pem"))

        archive = _build_zip()
        zip_bytes = archive.read_bytes()
        uuid = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))["uuid"]
        installed = _wait_settled(client, uuid)
        same = (
            installed is not None
            and installed["application_state"]["status"] == "RUNNING"
            and installed["devconsole"]["zip_sha256"] == hashlib.sha256(zip_bytes).hexdigest()
        )
        if same:
            application_id = int(installed["application_state"]["application_id"])
            _log(f"{archive.name} is already installed and running as application {application_id}")
        else:
            _log(f"installing {archive.relative_to(ROOT)} through {base_url}/api/gui_app_framework")
            try:
                done = deploy(
                    client,
                    zip_bytes,
                    user_id=ADMIN_USER_ID,
                    on_status=lambda app_id, status, t: _log(f"application {app_id}: {status} ({t:.1f} s)"),
                )
            except DeployError as exc:
                _log(f"the install failed: {exc}")
                return 1
            application_id = done.application_id
            info = done.application["devconsole"]
            _log(f"running {info['upload_to_running_s']} s after the upload, from {info['app_root']}")
        _log(f"dev console:   {base_url}  (CA: {data / 'ca.pem'})")
        _log(f"open the console page with the app's tab:  {base_url}/console/")
        _log(f"the app's logs: {data / 'apps' / str(application_id) / 'store' / 'log'}")
        _log("users: admin, tuner1, tuner2, analyst (pick one on the page). Ctrl-C stops everything.")
        while console.poll() is None:
            time.sleep(0.5)
        _log(f"devconsole serve exited with {console.returncode}")
        return 1
    except KeyboardInterrupt:
        _log("stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if console.poll() is None:
            console.terminate()  # the console's end stops the app's supervisord (parent-death signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                console.wait(timeout=30)
        if console.poll() is None:
            console.kill()


if __name__ == "__main__":
    sys.exit(main())
