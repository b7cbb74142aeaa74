"""``python -m devconsole.apps.deploy``: install or upgrade an app zip through a console's API, as
``qapp deploy`` does: upload, authorize with a user who holds the requested capabilities, wait.

    python -m devconsole.apps.deploy --console https://127.0.0.1:8443 --ca var/devconsole/ca.pem \\
        --token "$ADMIN_TOKEN" --user-id 1 dist/cloud-account-watch-1.0.0.zip

Prints the application id, the task's statuses as they change, the time from upload to RUNNING and the
app's resident memory next to its ``resources.memory``. Exits 1 with the console's error otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

API = "/api/gui_app_framework"
VERSION = "26.0"
FINAL = ("COMPLETED", "ERROR", "CANCELLED")


class DeployError(Exception):
    """The console refused the zip or the install ended in ERROR/CANCELLED."""

    def __init__(self, message: str, code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.body = body


@dataclass
class Deployed:
    application_id: int
    task: dict[str, Any]
    application: dict[str, Any]
    seconds: float


class ConsoleClient:
    """The few ``/api/gui_app_framework`` calls a deploy needs."""

    def __init__(self, base_url: str, token: str, ca_path: str | bool) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        # Per request: a session's verify loses to REQUESTS_CA_BUNDLE from the environment.
        self.ca_path = ca_path
        self.session.headers.update({"SEC": token, "Version": VERSION, "Accept": "application/json"})

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(
            method,
            self.base_url + API + path,
            timeout=kwargs.pop("timeout", 120),
            verify=self.ca_path,
            **kwargs,
        )

    def upload(self, zip_bytes: bytes, application_id: int | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/zip"}
        if application_id is None:
            response = self.call("POST", "/application_creation_task", data=zip_bytes, headers=headers)
        else:
            response = self.call("PUT", f"/applications/{application_id}", data=zip_bytes, headers=headers)
        body = response.json()
        if response.status_code not in (201, 202):
            raise DeployError(
                f"{response.status_code} code {body.get('code')}: {body.get('message')}",
                body.get("code"),
                body,
            )
        return body

    def task(self, application_id: int) -> dict[str, Any]:
        response = self.call("GET", f"/application_creation_task/{application_id}")
        response.raise_for_status()
        return response.json()

    def authorize(self, application_id: int, user_id: int) -> dict[str, Any]:
        response = self.call(
            "POST", f"/application_creation_task/{application_id}/auth", json={"user_id": user_id}
        )
        body = response.json()
        if response.status_code != 200:
            raise DeployError(f"authorization refused: {body.get('message')}", body.get("code"), body)
        return body

    def application(self, application_id: int) -> dict[str, Any]:
        response = self.call("GET", f"/applications/{application_id}")
        response.raise_for_status()
        return response.json()

    def applications(self) -> list[dict[str, Any]]:
        response = self.call("GET", "/applications")
        response.raise_for_status()
        return response.json()

    def uninstall(self, application_id: int) -> None:
        response = self.call("DELETE", f"/applications/{application_id}")
        if response.status_code != 204:
            raise DeployError(f"uninstall refused: {response.status_code} {response.text[:300]}")


def deploy(
    client: ConsoleClient,
    zip_bytes: bytes,
    *,
    user_id: int | None,
    timeout_s: float = 300.0,
    on_status: Any = None,
    application_id: int | None = None,
) -> Deployed:
    """Upload, authorize when asked (with ``user_id``), wait for COMPLETED; DeployError otherwise."""
    started = time.monotonic()
    task = client.upload(zip_bytes, application_id)
    application_id = int(task["application_id"])
    seen = None
    deadline = started + timeout_s
    while True:
        if task["status"] != seen:
            seen = task["status"]
            if on_status:
                on_status(application_id, seen, time.monotonic() - started)
        if task["status"] == "AUTH_REQUIRED":
            if user_id is None:
                raise DeployError(
                    f"application {application_id} needs authorization; pass a user id", body=task
                )
            client.authorize(application_id, user_id)
        elif task["status"] in FINAL:
            break
        if time.monotonic() > deadline:
            raise DeployError(
                f"application {application_id} still {task['status']} after {timeout_s:g} s", body=task
            )
        time.sleep(0.25)
        task = client.task(application_id)
    if task["status"] != "COMPLETED":
        raise DeployError(f"install ended {task['status']}: {'; '.join(task['error_messages'])}", body=task)
    return Deployed(application_id, task, client.application(application_id), time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devconsole.apps.deploy", description=__doc__.splitlines()[0]
    )
    parser.add_argument("zip", type=Path)
    parser.add_argument("--console", required=True, help="the console's base URL")
    parser.add_argument("--token", required=True, help="an ADMIN user's SEC token")
    parser.add_argument("--ca", default=True, help="the console's CA certificate (PEM)")
    parser.add_argument(
        "--user-id", type=int, default=None, help="user whose capabilities the app is granted"
    )
    args = parser.parse_args(argv)
    client = ConsoleClient(args.console, args.token, args.ca)

    def show(application_id: int, status: str, elapsed: float) -> None:
        print(f"application {application_id}: {status} ({elapsed:.1f} s)", flush=True)

    try:
        done = deploy(client, args.zip.read_bytes(), user_id=args.user_id, on_status=show)
    except DeployError as exc:
        print(f"deploy failed: {exc}", file=sys.stderr)
        return 1
    info = done.application["devconsole"]
    memory = done.application["application_state"]["memory"]
    resident = info.get("resident_memory") or {}
    print(
        f"application {done.application_id} RUNNING: {info['upload_to_running_s']} s from upload; resident "
        f"{resident.get('app_rss_mb')} MB in {resident.get('processes')} processes "
        f"({resident.get('with_supervisord_rss_mb')} MB with supervisord) of resources.memory {memory} MB",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
