"""Broken app zips get QRadar's documented 422 code from POST /api/gui_app_framework/application_creation_task,
and a zip whose wheels cannot be installed offline ends its task in ERROR with 33201."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from devconsole.apps.deploy import DeployError, deploy
from tests.install.conftest import CONSOLE_APP_MEMORY_MB, InstallConsole, rewrite_zip

pytestmark = pytest.mark.slow


def edit_manifest(change: Callable[[dict], None]) -> Callable[[dict[str, bytes]], None]:
    def apply(entries: dict[str, bytes]) -> None:
        manifest = json.loads(entries["manifest.json"])
        change(manifest)
        entries["manifest.json"] = json.dumps(manifest).encode()

    return apply


def set_manifest_text(text: str) -> Callable[[dict[str, bytes]], None]:
    def apply(entries: dict[str, bytes]) -> None:
        entries["manifest.json"] = text.encode()

    return apply


def drop_from_ordering(entries: dict[str, bytes]) -> None:
    lines = entries["container/pip/ordering.txt"].decode().splitlines()
    assert any(line.startswith("gunicorn-") for line in lines)
    entries["container/pip/ordering.txt"] = (
        "\n".join(x for x in lines if not x.startswith("gunicorn-")) + "\n"
    ).encode()


def remove_manifest(entries: dict[str, bytes]) -> None:
    del entries["manifest.json"]


def undeclared_rest_method(manifest: dict) -> None:
    manifest["dashboard_items"][0]["rest_method"] = "notDeclaredAnywhere"


def unknown_capability(manifest: dict) -> None:
    manifest["authentication"]["oauth2"]["requested_capabilities"].append("NO_SUCH_CAPABILITY")


def too_much_memory(manifest: dict) -> None:
    manifest["resources"]["memory"] = CONSOLE_APP_MEMORY_MB + 1


def boolean_not_a_string(manifest: dict) -> None:
    manifest["use_qradar_csrf"] = True  # App Framework booleans are the strings "true"/"false"


def unknown_required_capability(manifest: dict) -> None:
    manifest["areas"][0]["required_capabilities"] = ["NOT_A_CAPABILITY"]


def password_flow(manifest: dict) -> None:
    manifest["authentication"]["oauth2"]["authorisation_flow"] = "PASSWORD"


CASES = {
    "no manifest": (remove_manifest, 33103),
    "invalid manifest (boolean)": (edit_manifest(boolean_not_a_string), 33104),
    "invalid manifest (unknown field)": (edit_manifest(lambda m: m.update(dependencies={})), 33104),
    "duplicate keys": (set_manifest_text('{"name": "a", "name": "b", "description": "d"}'), 33105),
    "unparsable manifest": (set_manifest_text('{"name": "a",'), 33106),
    "wheel left out of ordering.txt": (drop_from_ordering, 33201),
    "undeclared REST method": (edit_manifest(undeclared_rest_method), 33308),
    "unknown capability": (edit_manifest(unknown_capability), 33304),
    "OAuth flow other than CLIENT_CREDENTIALS": (edit_manifest(password_flow), 33303),
    "unknown required capability": (edit_manifest(unknown_required_capability), 33307),
    "too much memory": (edit_manifest(too_much_memory), 33302),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_zip_is_refused_with_its_code(
    install_console: InstallConsole, app_zip: bytes, case: str
) -> None:
    change, code = CASES[case]
    response = install_console.client().call(
        "POST",
        "/application_creation_task",
        data=rewrite_zip(app_zip, change),
        headers={"Content-Type": "application/zip"},
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["message"] and body["http_response"]["code"] == 422
    assert install_console.client().applications() == []


def test_not_a_zip_and_non_admins_are_refused(install_console: InstallConsole, app_zip: bytes) -> None:
    response = install_console.client().call(
        "POST",
        "/application_creation_task",
        data=b"PK not really",
        headers={"Content-Type": "application/zip"},
    )
    assert (response.status_code, response.json()["code"]) == (422, 33102)
    response = install_console.client("tuner1").call(
        "POST", "/application_creation_task", data=app_zip, headers={"Content-Type": "application/zip"}
    )
    assert response.status_code == 403
    assert install_console.client("analyst").call("GET", "/applications").status_code == 403


def test_a_dependency_neither_bundled_nor_in_the_base_image_fails_the_install(
    install_console: InstallConsole, app_zip: bytes
) -> None:
    """gunicorn needs packaging; without its wheel the offline pip install fails, as in QRadar."""

    def drop_packaging(entries: dict[str, bytes]) -> None:
        (name,) = [n for n in entries if n.startswith("container/pip/packaging-")]
        del entries[name]
        lines = entries["container/pip/ordering.txt"].decode().splitlines()
        entries["container/pip/ordering.txt"] = (
            "\n".join(x for x in lines if x != name.split("/")[-1]) + "\n"
        ).encode()

    client = install_console.client()
    task = client.upload(rewrite_zip(app_zip, drop_packaging))
    application_id = task["application_id"]
    deadline = time.monotonic() + 120
    while task["status"] in ("CREATING", "UPGRADING") and time.monotonic() < deadline:
        time.sleep(0.3)
        task = client.task(application_id)
    assert task["status"] == "ERROR", task
    assert task["error_messages_json"][0]["code"] == 33201
    assert "gunicorn" in task["error_messages"][0] and "packaging" in task["error_messages"][0]
    (listed,) = client.applications()
    assert listed["application_state"]["status"] == "ERROR"
    client.uninstall(application_id)
    assert client.applications() == []


def test_an_install_waiting_for_authorization_can_be_cancelled(
    install_console: InstallConsole, app_zip: bytes
) -> None:
    client = install_console.client()
    application_id = client.upload(app_zip)["application_id"]
    deadline = time.monotonic() + 120
    while (task := client.task(application_id))["status"] == "CREATING" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert task["status"] == "AUTH_REQUIRED", task
    wrong = client.call(
        "POST", f"/application_creation_task/{application_id}", params={"status": "COMPLETED"}
    )
    assert wrong.status_code == 422
    cancelled = client.call(
        "POST", f"/application_creation_task/{application_id}", params={"status": "CANCELLED"}
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert client.applications() == []  # a new install cancelled leaves nothing behind
    assert not (install_console.data_dir / "apps" / str(application_id)).exists()
    assert client.call("GET", f"/application_creation_task/{application_id}").status_code == 404


def test_an_app_importing_what_the_base_image_lacks_ends_in_error_with_its_log(
    install_console: InstallConsole, app_zip: bytes
) -> None:
    """The dev console's own dependencies (lark here) are not in the installed environment: the app's
    programs exit at start, supervisord gives up, and the task says why instead of waiting forever."""

    def import_lark(entries: dict[str, bytes]) -> None:
        entries["app/__init__.py"] += b"\nimport lark  # noqa: E402,F401\n"

    client = install_console.client()
    started = time.monotonic()
    with pytest.raises(DeployError) as failed:
        deploy(client, rewrite_zip(app_zip, import_lark), user_id=1, timeout_s=150)
    task = failed.value.body
    assert task["status"] == "ERROR"
    assert task["error_messages_json"][0]["code"] == 33400
    assert "No module named 'lark'" in task["error_messages"][0], task["error_messages"][0]
    assert time.monotonic() - started < 100  # supervisord's FATAL state ends the wait, not a timeout
    (listed,) = client.applications()
    assert listed["application_state"]["status"] == "ERROR"
    client.uninstall(task["application_id"])
    assert client.applications() == []
