"""The /api/tuning routes through the real app and the dev console (users, capabilities and reference data
over HTTPS): 400s naming the field, 403 for the analyst with nothing changed, CSRF, one 409 for two
concurrent edits, two-person approval, the audit export and the QRadar reference set kept in step."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest

from app.api.cells import cell
from app.store import db
from app.store.db import now_ms
from tests.app.tuning.tuning_helpers import DAY, add_detection

DEPLOYER = "arn:aws:iam::111122223333:role/deployer"


def body(**overrides: Any) -> dict[str, Any]:
    entry = {
        "platforms": ["AWS"],
        "actor_id": DEPLOYER,
        "justification": "Terraform pipeline role provisions service users (CHG-100)",
        "expires_at": now_ms() + 30 * DAY,
    }
    entry.update(overrides)
    return entry


def create(client: Any, login: Any, user: str = "tuner1", **overrides: Any) -> dict[str, Any]:
    headers = login(client, user)
    response = client.post("/api/tuning/entries", json=body(**overrides), headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["entry"]


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("expires_at", {"expires_at": "soon"}),
        ("platforms", {"platforms": ["Azure"]}),
        ("ua_pattern", {"ua_pattern": "(a+)+$"}),
        ("source_cidrs", {"source_cidrs": ["10.0.0.300/8"]}),
        ("justification", {"justification": ""}),
        ("surprise", {"surprise": 1}),
    ],
)
def test_bad_field_is_a_400_naming_it(client: Any, login: Any, field: str, change: dict[str, Any]) -> None:
    headers = login(client, "tuner1")
    response = client.post("/api/tuning/entries", json=body(**change), headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field
    assert client.get("/api/tuning/entries").get_json()["total"] == 0


def test_analyst_gets_403_and_nothing_changes(client: Any, login: Any) -> None:
    entry = create(client, login, "tuner1")
    before = client.get("/api/tuning/export").get_json()["entries"]
    audit_before = client.get("/api/tuning/audit").get_json()["total"]
    headers = login(client, "analyst")
    attempts = [
        client.post("/api/tuning/entries", json=body(), headers=headers),
        client.patch(
            f"/api/tuning/entries/{entry['id']}",
            json={"version": entry["version"], "ticket": "x"},
            headers=headers,
        ),
        client.post(
            f"/api/tuning/entries/{entry['id']}/approve", json={"version": entry["version"]}, headers=headers
        ),
        client.delete(f"/api/tuning/entries/{entry['id']}?version={entry['version']}", headers=headers),
        client.post("/api/tuning/presets/iac/enable", json={"identities": [DEPLOYER]}, headers=headers),
        client.put(
            "/api/tuning/settings", json={"version": 1, "single_person_approval": True}, headers=headers
        ),
    ]
    for response in attempts:
        assert response.status_code == 403, response.get_json()
        assert response.get_json()["error"]["code"] == "forbidden"
    assert client.get("/api/tuning/export").get_json()["entries"] == before
    assert client.get("/api/tuning/audit").get_json()["total"] == audit_before
    assert client.get("/api/tuning/entries").status_code == 200  # viewing only needs access to the app


def test_writes_need_the_csrf_header(client: Any, login: Any) -> None:
    login(client, "tuner1")
    response = client.post("/api/tuning/entries", json=body())
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "csrf_failed"
    assert client.get("/api/tuning/entries").get_json()["total"] == 0


def test_two_concurrent_edits_give_one_409(client: Any, login: Any, app: Any) -> None:
    entry = create(client, login, "tuner1")
    second = app.test_client()
    first_headers = login(client, "tuner1")
    second_headers = login(second, "tuner2")
    one = client.patch(
        f"/api/tuning/entries/{entry['id']}",
        json={"version": entry["version"], "ticket": "CHG-1"},
        headers=first_headers,
    )
    two = second.patch(
        f"/api/tuning/entries/{entry['id']}",
        json={"version": entry["version"], "ticket": "CHG-2"},
        headers=second_headers,
    )
    assert sorted([one.status_code, two.status_code]) == [200, 409]
    conflict = two.get_json()
    assert conflict["error"]["code"] == "stale_version" and conflict["current"]["ticket"] == "CHG-1"
    stored = client.get(f"/api/tuning/entries/{entry['id']}").get_json()
    assert stored["ticket"] == "CHG-1" and stored["version"] == entry["version"] + 1


def test_two_person_approval_and_reference_set_in_step(
    client: Any, login: Any, app: Any, devconsole: Any
) -> None:
    conn = db.connect(app.config["DATABASE"])
    add_detection(conn, event_time=now_ms() - DAY)
    conn.close()
    # Collections of our own in the shared console; changing settings is an audited admin action.
    suffix = uuid.uuid4().hex[:8]
    login(client, "admin")
    version = client.get("/api/tuning/settings").get_json()["version"]
    names = {"reference_set_name": f"CAW_Allowlist_{suffix}", "reference_map_name": f"CAW_Notes_{suffix}"}
    changed = client.put(
        "/api/tuning/settings", json={"version": version, **names}, headers=login(client, "admin")
    )
    assert changed.status_code == 200 and changed.get_json()["version"] == version + 1
    stale = client.put(
        "/api/tuning/settings",
        json={"version": version, "single_person_approval": True},
        headers=login(client, "admin"),
    )
    assert (
        stale.status_code == 409
        and stale.get_json()["current"]["reference_set_name"] == names["reference_set_name"]
    )
    entry = create(client, login, "tuner1")
    same = client.post(
        f"/api/tuning/entries/{entry['id']}/approve",
        json={"version": entry["version"]},
        headers=login(client, "tuner1"),
    )
    assert same.status_code == 403 and same.get_json()["error"]["code"] == "same_user"
    approved = client.post(
        f"/api/tuning/entries/{entry['id']}/approve",
        json={"version": entry["version"], "note": "pipeline role verified"},
        headers=login(client, "tuner2"),
    )
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["entry"]["status"] == "active"
    assert approved.get_json()["refsync"] == {"status": "ok"}
    detail = client.get(f"/api/tuning/entries/{entry['id']}").get_json()
    assert detail["suppressed_detections"] == 1 and detail["approvals"][0]["decided_by"] == "tuner2"

    settings = client.get("/api/tuning/settings").get_json()
    qradar = devconsole.api("admin")
    set_url = f"{devconsole.base_url}/api/reference_data/sets/{settings['reference_set_name']}"
    map_url = f"{devconsole.base_url}/api/reference_data/maps/{settings['reference_map_name']}"
    values = {item["value"] for item in qradar.get(set_url).json()["data"]}
    assert values == {DEPLOYER}
    note = qradar.get(map_url).json()["data"][DEPLOYER]["value"]
    assert f"entries={entry['id']}" in note and "justification=Terraform pipeline role" in note
    drift = client.get("/api/tuning/refsync").get_json()["drift"]
    assert drift["in_sync"] is True and drift["expected"] == 1

    # Drift is reported when QRadar changes behind the app's back, and a sync repairs it.
    qradar.post(set_url, params={"value": "arn:aws:iam::999999999999:role/planted"}).raise_for_status()
    drift = client.get("/api/tuning/refsync").get_json()["drift"]
    assert drift["in_sync"] is False and drift["unexpected_in_qradar"] == [
        "arn:aws:iam::999999999999:role/planted"
    ]
    synced = client.post("/api/tuning/refsync", json={}, headers=login(client, "tuner1")).get_json()
    assert synced["status"] == "ok" and synced["after"]["in_sync"] is True

    current = client.get(f"/api/tuning/entries/{entry['id']}").get_json()
    deleted = client.delete(
        f"/api/tuning/entries/{entry['id']}",
        json={"version": current["version"]},
        headers=login(client, "tuner2"),
    )
    assert deleted.status_code == 200 and deleted.get_json()["entry"]["status"] == "deleted"
    assert qradar.get(set_url).json()["data"] == []
    assert qradar.get(map_url).json()["data"] == {}
    suppressed = client.get(f"/api/tuning/entries/{entry['id']}").get_json()["suppressed_detections"]
    assert suppressed == 0


def test_audit_is_filterable_and_exportable(client: Any, login: Any) -> None:
    entry = create(client, login, "tuner1", ticket='=HYPERLINK("http://evil")')
    client.post(
        f"/api/tuning/entries/{entry['id']}/reject",
        json={"version": entry["version"], "note": "no"},
        headers=login(client, "tuner2"),
    )
    listed = client.get("/api/tuning/audit?action=tuning.entry.reject").get_json()
    assert listed["total"] == 1 and listed["items"][0]["actor"] == "tuner2"
    assert (
        listed["items"][0]["before"]["status"] == "pending"
        and listed["items"][0]["after"]["status"] == "rejected"
    )
    exported = client.get("/api/tuning/audit/export?format=csv&actor=tuner1")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [r["action"] for r in rows] == ["tuning.entry.create"]
    assert "HYPERLINK" in rows[0]["after"] and not rows[0]["after"].startswith("=")
    as_json = client.get("/api/tuning/audit/export?format=json").get_json()
    assert [i["action"] for i in as_json["items"]] == ["tuning.entry.create", "tuning.entry.reject"]
    assert client.get("/api/tuning/audit/export?format=xlsx").get_json()["error"]["field"] == "format"


def test_csv_cells_that_a_spreadsheet_would_evaluate_stay_text() -> None:
    assert cell("=1+1") == "'=1+1"
    assert cell("@SUM(A1)") == "'@SUM(A1)"
    assert cell("tuner1") == "tuner1"
    assert cell({"a": 1}) == '{"a": 1}'
    assert cell(["=x"]) == '["=x"]' and cell(None) == ""


def test_preview_is_open_to_viewers_and_changes_nothing(client: Any, login: Any) -> None:
    headers = login(client, "analyst")
    response = client.post("/api/tuning/preview", json=body(), headers=headers)
    assert response.status_code == 200
    result = response.get_json()
    assert result["would_suppress"] == 0 and result["you_may_save"] is False
    assert client.get("/api/tuning/entries").get_json()["total"] == 0


def test_openapi_documents_the_tuning_api(client: Any) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in (
        "/api/tuning/entries",
        "/api/tuning/entries/{entry_id}/approve",
        "/api/tuning/preview",
        "/api/tuning/presets/{preset_id}/enable",
        "/api/tuning/audit",
        "/api/tuning/refsync",
        "/api/tuning/export",
        "/api/tuning/import",
        "/api/tuning/settings",
    ):
        assert path in paths


@pytest.mark.parametrize(
    "change",
    [
        {"platforms": [["AWS"]]},
        {"expires_at": 1e20},
        {"expires_at": 10**30},
        {"window": {"days": [True], "start": "01:00", "end": "02:00"}},
        {"actor_pattern": 5},
        {"source_cidrs": [5]},
        {"name": {"x": 1}},
        {"justification": ["x" * 20]},
        {"actor_id": "<script>alert(1)</script>' OR 1=1 --", "ua_pattern": "=cmd|' /C calc'!A0*"},
        {"confirm_partial_chain": "yes"},
    ],
)
def test_hostile_bodies_get_json_errors_never_a_500(client: Any, login: Any, change: dict[str, Any]) -> None:
    headers = login(client, "tuner1")
    response = client.post("/api/tuning/entries", json=body(**change), headers=headers)
    if "<script>" in str(change):  # hostile text is just data: stored and returned verbatim as JSON
        assert response.status_code == 201
        assert response.get_json()["entry"]["actor_id"] == change["actor_id"]
        return
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["field"] and error["message"]


def test_malformed_requests_are_named(client: Any, login: Any, app: Any) -> None:
    entry = create(client, login, "tuner1")
    headers = login(client, "tuner1")
    tuner2 = app.test_client()
    cases = [
        client.patch(f"/api/tuning/entries/{entry['id']}", json={"version": "1"}, headers=headers),
        tuner2.post(f"/api/tuning/entries/{entry['id']}/approve", json={}, headers=login(tuner2, "tuner2")),
        client.post("/api/tuning/preview", json={**body(), "entry_id": "x"}, headers=headers),
        client.get("/api/tuning/audit?since=yesterday"),
        client.get("/api/tuning/entries?status=gone"),
        client.get("/api/tuning/entries?sort=password"),
    ]
    for response in cases:
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.get_json()["error"]["field"]
    not_an_object = client.post(
        "/api/tuning/entries", data="[]", headers={**headers, "Content-Type": "application/json"}
    )
    assert not_an_object.status_code == 400
    assert client.get("/api/tuning/entries/999999").status_code == 404
    assert client.post("/api/tuning/presets/nope/enable", json={}, headers=headers).status_code == 404


def test_entry_list_filters(client: Any, login: Any) -> None:
    first = create(client, login, "tuner1", name="terraform 100%_role")
    create(client, login, "tuner1", actor_id="arn:aws:iam::111122223333:role/ansible", name="ansible role")
    flagged = create(
        client,
        login,
        "admin",
        actor_id=None,
        ua_pattern="*vendor-appliance/*",
        override_reason="appliance has no stable identity (CHG-9)",
        name="appliance",
    )
    client.post(
        f"/api/tuning/entries/{first['id']}/reject",
        json={"version": first["version"]},
        headers=login(client, "tuner2"),
    )

    def ids(query: str) -> list[int]:
        listed = client.get(f"/api/tuning/entries?{query}").get_json()
        assert listed["total"] == len(listed["items"])
        return [e["id"] for e in listed["items"]]

    assert ids("q=100%25_") == [first["id"]]  # % and _ are literal text, not wildcards
    assert ids("status=rejected") == [first["id"]]
    assert ids("flagged=true") == [flagged["id"]]
    assert ids(f"actor_id={DEPLOYER.upper()}") == [first["id"]]
    page = client.get("/api/tuning/entries?sort=id&limit=1&offset=2").get_json()
    assert page["total"] == 3 and [e["id"] for e in page["items"]] == [flagged["id"]]


def test_a_rename_through_put_api_settings_is_pushed_at_the_next_sync(
    client: Any, login: Any, app: Any, devconsole: Any
) -> None:
    """PUT /api/settings and PUT /api/tuning/settings share one write path: renaming the reference set
    through either bumps the tuning settings version, so the refresher's next sync pushes the set under
    its new name (not only the hourly resync) and a stale tuning settings form gets a 409."""
    from app.qradar import get_gateway
    from app.tuning import refsync

    suffix = uuid.uuid4().hex[:8]
    old_names = {
        "reference_set_name": f"CAW_Before_{suffix}",
        "reference_map_name": f"CAW_BeforeMap_{suffix}",
    }
    admin = login(client, "admin")
    assert client.put("/api/settings", json=old_names, headers=admin).status_code == 200
    at = now_ms()
    with app.app_context():
        conn, gateway = db.get_db(), get_gateway()
        assert refsync.sync(conn, gateway, at)["status"] == "ok"
        conn.commit()
        assert refsync.sync_if_due(conn, gateway, at) is None  # in step: nothing due before the hour

    before = client.get("/api/tuning/settings").get_json()
    new_name = f"CAW_Renamed_{suffix}"
    renamed = client.put("/api/settings", json={"reference_set_name": new_name}, headers=admin)
    assert renamed.status_code == 200 and renamed.get_json()["values"]["reference_set_name"] == new_name
    after = client.get("/api/tuning/settings").get_json()
    assert after["version"] == before["version"] + 1 and after["reference_set_name"] == new_name
    stale = client.put(
        "/api/tuning/settings",
        json={"version": before["version"], "single_person_approval": True},
        headers=admin,
    )
    assert stale.status_code == 409 and stale.get_json()["current"]["reference_set_name"] == new_name

    qradar = devconsole.api("admin")
    set_url = f"{devconsole.base_url}/api/reference_data/sets/{new_name}"
    assert qradar.get(set_url).status_code == 404  # not pushed by the settings change itself
    with app.app_context():
        outcome = refsync.sync_if_due(
            db.get_db(), get_gateway(), at
        )  # the same minute: not the hourly resync
    assert outcome is not None and outcome["status"] == "ok"
    assert qradar.get(set_url).status_code == 200

    # Saving the same name again, or a setting that is not a tuning one, leaves the version alone.
    for change in ({"reference_set_name": new_name}, {"magnitude_minimum": 4}):
        assert client.put("/api/settings", json=change, headers=admin).status_code == 200
    assert client.get("/api/tuning/settings").get_json()["version"] == after["version"]
    with app.app_context():
        assert refsync.sync_if_due(db.get_db(), get_gateway(), at) is None
