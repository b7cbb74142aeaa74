"""The zip build.sh makes, installed through the API the way QRadar installs it, used through the console,
refreshed from the installed copy, upgraded in place (the store survives) and uninstalled."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from devconsole.apps.deploy import ConsoleClient, deploy
from tests.install.conftest import InstallConsole, build_zip, rewrite_zip

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

MANIFEST = json.loads((Path(__file__).resolve().parents[2] / "manifest.json").read_text(encoding="utf-8"))


def wait_for_task(client: ConsoleClient, application_id: int, wanted: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        task = client.task(application_id)
        if task["status"] == wanted or task["status"] in ("ERROR", "CANCELLED", "COMPLETED"):
            assert task["status"] == wanted, task
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.25)


def app_status(session: requests.Session, proxy: str) -> dict:
    response = session.get(f"{proxy}/api/status", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_install_use_refresh_upgrade_uninstall(
    install_console: InstallConsole, app_zip: bytes, tmp_path: Path
) -> None:
    client = install_console.client()
    admin = install_console.browser_session("admin")

    # --- install: CREATING -> AUTH_REQUIRED -> (authorize) -> COMPLETED, the app RUNNING --------------
    task = client.upload(app_zip)
    application_id = task["application_id"]
    assert task["status"] == "CREATING"
    wait_for_task(client, application_id, "AUTH_REQUIRED")
    auth = client.call("GET", f"/application_creation_task/{application_id}/auth").json()
    assert auth["capabilities"] == MANIFEST["authentication"]["oauth2"]["requested_capabilities"]
    refused = client.call("POST", f"/application_creation_task/{application_id}/auth", json={"user_id": 4})
    assert refused.status_code == 422 and "REFERENCEDATA" in refused.json()["message"]  # analyst lacks it
    client.authorize(application_id, 1)  # admin
    wait_for_task(client, application_id, "COMPLETED")
    installed = client.application(application_id)
    assert installed["application_state"]["status"] == "RUNNING"
    assert installed["manifest"]["version"] == MANIFEST["version"]
    info = installed["devconsole"]
    app_root = Path(info["app_root"])
    assert install_console.data_dir in app_root.parents  # outside the repository
    assert (app_root / "manifest.json").read_bytes() == app_zip_entry(app_zip, "manifest.json")
    environment = json.loads(Path(info["environment_file"]).read_text(encoding="utf-8"))
    assert environment["QRADAR_APP_ID"] == str(application_id)
    assert environment["QRADAR_APP_UUID"] == MANIFEST["uuid"]
    assert environment["SEC_ADMIN_TOKEN"] not in install_console.tokens.values()  # its own authorized service
    assert environment["QRADAR_CONSOLE_FQDN"] == install_console.base_url.split("://")[1]

    # The installed environment holds the base image's packages plus the zip's wheels, nothing of the repo.
    probe = subprocess.run(
        [
            info["python"],
            "-c",
            "import flask, gunicorn, qpylib, app; print(flask.__file__, gunicorn.__file__, app.__file__)",
        ],
        cwd=app_root,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    flask_file, gunicorn_file, app_file = probe.stdout.split()
    assert "var/app-base" in flask_file or "app-base" in flask_file
    assert gunicorn_file.startswith(str(app_root.parent))
    assert app_file.startswith(str(app_root))
    missing = subprocess.run(
        [info["python"], "-c", "import lark"], cwd=app_root, env=environment, capture_output=True, check=False
    )
    assert missing.returncode != 0  # a dev dependency is not in the base image

    # --- the console serves the installed copy: tab, its API, dashboard item, offense widget -----------
    console_page = admin.get(f"{install_console.base_url}/console/", timeout=30)
    assert console_page.status_code == 200
    proxy = f"{install_console.base_url}/console/plugins/{application_id}/app_proxy"
    assert f"/console/plugins/{application_id}/app_proxy/tab/" in console_page.text
    tab = admin.get(f"{proxy}/tab/?ui=new&theme=light", timeout=30)
    assert tab.status_code == 200 and "text/html" in tab.headers["Content-Type"]

    deadline = time.monotonic() + 120
    status = app_status(admin, proxy)
    while not (status.get("runs", 0) >= 1 and status.get("last_status") == "ok"):  # supervisord's refresher
        assert status.get("last_status") != "error", status
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
        status = app_status(admin, proxy)
    detections = admin.get(f"{proxy}/api/detections", params={"limit": 5}, timeout=30).json()
    assert detections["total"] > 0
    shown = tab_rows_in_chromium(install_console.base_url, application_id)
    assert {d["actor"] for d in detections["items"]} & set(shown), (detections["items"], shown)
    first = detections["items"][0]
    triaged = admin.post(
        f"{proxy}/api/detections/{first['id']}/triage",
        json={"status": "investigating", "note": "installed"},
        timeout=30,
    )
    assert triaged.status_code == 200, triaged.text
    entry = admin.post(
        f"{proxy}/api/tuning/entries",
        json={
            "name": "Installed-copy allowlist entry",
            "platforms": ["AWS"],
            "actor_id": "arn:aws:iam::111122223333:user/ci-deployer",
            "justification": "CI pipeline user that creates test accounts",
            "expires_at": int(time.time() * 1000) + 90 * 86_400_000,
        },
        timeout=60,
    )
    assert entry.status_code == 201, entry.text
    entry_id = entry.json()["entry"]["id"]

    dashboard = admin.get(f"{install_console.base_url}/console/dashboard", timeout=30)
    assert (
        dashboard.status_code == 200
        and f"/console/plugins/{application_id}/app_proxy/dashboard/item" in dashboard.text
    )
    item = admin.get(f"{proxy}/dashboard/item", timeout=30)
    assert item.status_code == 200 and set(item.json()) >= {"id", "title", "HTML"}
    offenses = requests.get(
        f"{install_console.base_url}/api/siem/offenses",
        headers={"SEC": install_console.tokens["admin"], "Version": "26.0"},
        verify=install_console.serve.ca_path,
        timeout=30,
    ).json()
    widget = admin.get(f"{proxy}/offense/fragment/{offenses[0]['id']}", timeout=120)
    assert widget.status_code == 200 and "html" in widget.json()

    # --- one refresh run by hand inside the installed copy ---------------------------------------------
    runs_before = app_status(admin, proxy)["runs"]
    once = subprocess.run(
        [info["python"], "-m", "app.refresher", "--once"],
        cwd=app_root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert once.returncode == 0, once.stderr[-2000:]
    assert "detection refresh ok" in once.stderr, once.stderr[-2000:]
    after = app_status(admin, proxy)
    # supervisord's refresher may run a cycle of its own meanwhile: at least this one was counted
    assert after["runs"] >= runs_before + 1 and after["last_status"] == "ok", after

    # --- upgrade: a rebuilt zip, new version, same uuid: same id, store kept ---------------------------
    new_zip = build_zip(tmp_path / "v2", version="1.0.1").read_bytes()
    other_app = rewrite_zip(new_zip, other_uuid)
    refused_put = client.call(
        "PUT", f"/applications/{application_id}", data=other_app, headers={"Content-Type": "application/zip"}
    )
    assert (refused_put.status_code, refused_put.json()["code"]) == (
        422,
        33104,
    )  # PUT upgrades this uuid only
    old_pid, old_root = info["supervisord_pid"], app_root
    upgraded = deploy(client, new_zip, user_id=None)  # capabilities unchanged: no new authorization
    assert upgraded.application_id == application_id
    state = client.application(application_id)
    assert state["application_state"]["status"] == "RUNNING"
    assert state["manifest"]["version"] == "1.0.1"
    assert state["devconsole"]["app_root"] != str(old_root) and not old_root.exists()
    assert not alive(old_pid) and alive(state["devconsole"]["supervisord_pid"])
    kept = admin.get(f"{proxy}/api/detections/{first['id']}", timeout=30).json()
    assert kept["triage_status"] == "investigating" and kept["triage_note"] == "installed"
    assert (
        admin.get(f"{proxy}/api/detections", params={"limit": 1}, timeout=30).json()["total"]
        >= detections["total"]
    )
    assert (
        admin.get(f"{proxy}/api/tuning/entries/{entry_id}", timeout=30).json()["name"]
        == "Installed-copy allowlist entry"
    )
    assert app_status(admin, proxy)["runs"] >= after["runs"]

    # --- uninstall: stopped and removed ----------------------------------------------------------------
    pid = state["devconsole"]["supervisord_pid"]
    client.uninstall(application_id)
    assert client.applications() == []
    assert not alive(pid)
    assert not app_root.parent.exists()
    gone = admin.get(f"{proxy}/tab/", timeout=30)
    assert gone.status_code == 404


def other_uuid(entries: dict[str, bytes]) -> None:
    manifest = json.loads(entries["manifest.json"])
    manifest["uuid"] = "00000000-1111-4222-8333-444444444444"
    entries["manifest.json"] = json.dumps(manifest).encode()


def tab_rows_in_chromium(base_url: str, application_id: int) -> list[str]:
    """The console page as admin in Debian's chromium: the tab's frame comes from the installed app's proxy
    path and lists detections; returns the actors shown."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{base_url}/console/")
            page.click("button[data-user='admin']")
            page.wait_for_selector("#app-frame", timeout=30_000)
            page.frame_locator("#app-frame").locator("#detections-body tr.caw-row").first.wait_for(
                timeout=30_000
            )
            (frame,) = [f for f in page.frames if f"/console/plugins/{application_id}/app_proxy/tab" in f.url]
            actors = [
                t.strip() for t in frame.locator("#detections-body td[data-column='actor']").all_inner_texts()
            ]
            assert not errors, errors
            return actors
        finally:
            browser.close()


def app_zip_entry(data: bytes, name: str) -> bytes:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name)
