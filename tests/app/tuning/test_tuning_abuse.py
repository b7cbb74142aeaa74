"""Issue 14, items 1–5: each way an insider or a stolen tuner's session could turn tuning into a blind
spot, reproduced through the real app and dev console (users, faults and reference data over HTTPS), and
shown to fail."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app import auth
from app.store import settings_rows
from app.store.db import connect, now_ms
from app.tuning import presets
from tests.app.tuning.tuning_helpers import DAY, HOUR, add_detection

DEPLOYER = "arn:aws:iam::111122223333:role/deployer"
# Application IDs: a real Microsoft first-party one, and an attacker's app that copied a first-party name.
SERVICE_MANAGEMENT_APP_ID = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
ATTACKER_APP_ID = "6c4f1b1e-0d2a-4e55-9b8e-3a1d2c9f0e77"


def body(**overrides: Any) -> dict[str, Any]:
    entry = {
        "platforms": ["AWS"],
        "actor_id": DEPLOYER,
        "justification": "Terraform pipeline role provisions service users (CHG-100)",
        "expires_at": now_ms() + 30 * DAY,
    }
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def create(client: Any, login: Any, user: str = "tuner1", **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/tuning/entries", json=body(**overrides), headers=login(client, user))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["entry"]


def decide(client: Any, login: Any, user: str, entry: dict[str, Any], verb: str = "approve") -> Any:
    return client.post(
        f"/api/tuning/entries/{entry['id']}/{verb}",
        json={"version": entry["version"]},
        headers=login(client, user),
    )


def patch(client: Any, login: Any, user: str, entry: dict[str, Any], **changes: Any) -> dict[str, Any]:
    response = client.patch(
        f"/api/tuning/entries/{entry['id']}",
        json={"version": entry["version"], **changes},
        headers=login(client, user),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["entry"]


def current(client: Any, entry: dict[str, Any]) -> dict[str, Any]:
    return client.get(f"/api/tuning/entries/{entry['id']}").get_json()


@pytest.fixture
def faults(devconsole: Any) -> Any:
    devconsole.faults.clear()
    yield devconsole.faults
    devconsole.faults.clear()


# -- 1. who is asking -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inject", "status", "code"),
    [
        (lambda f: f.fail("/api/config/access/users"), 502, "qradar_error"),
        # QRadar answering 503 is QRadar's own error (502); only no answer at all is a 503.
        (lambda f: f.unavailable("/api/config/access/users"), 502, "qradar_error"),
    ],
    ids=["lookup-500", "lookup-503"],
)
def test_approval_after_a_failed_identity_lookup_is_refused_and_not_cached(
    client: Any, login: Any, faults: Any, inject: Any, status: int, code: str
) -> None:
    entry = create(client, login, "tuner1")
    auth.token_cache.clear()  # the next request asks QRadar who tuner1 is
    inject(faults)
    refused = decide(client, login, "tuner1", entry)
    assert refused.status_code == status, refused.get_json()
    error = refused.get_json()["error"]
    assert error["code"] == code and "QRadar" in error["message"]
    assert current(client, entry)["status"] == "pending"
    # Nothing was cached: the next request asks again, learns it is tuner1, and four eyes hold.
    again = decide(client, login, "tuner1", entry)
    assert again.status_code == 403 and again.get_json()["error"]["code"] == "same_user"
    assert current(client, entry)["status"] == "pending"


def test_a_console_that_cannot_name_the_user_refuses_instead_of_unknown(
    client: Any, login: Any, faults: Any
) -> None:
    admin = login(client, "admin")
    changed = client.put(
        "/api/settings", json={"current_user_path": "api/config/access/no_such_lookup"}, headers=admin
    )
    assert changed.status_code == 200, changed.get_json()
    # The setting is part of the identity cache key: the change reaches this (and every) worker at once.
    login(client, "tuner1")
    refused = client.get("/api/me")
    assert refused.status_code == 502
    assert "QRadar could not say who you are" in refused.get_json()["error"]["message"]
    assert client.get("/api/tuning/entries").status_code == 502
    auth.token_cache.clear()
    login(client, "admin")
    assert client.get("/api/me").status_code == 502  # admins too: nobody is "unknown"
    # Restored in the store as another worker would (this worker's PUT did not do it): this worker's
    # gateway and identity cache follow at the next request, which knows admin again.
    conn = connect(client.application.config["DATABASE"])
    with conn:
        settings_rows.delete_setting(conn, "current_user_path")
    conn.close()
    me = client.get("/api/me").get_json()
    assert me["user_id"] == 1 and me["name"] == "admin", me


# -- 2. four eyes on every matching condition --------------------------------------------------------------


def test_approval_after_another_tuners_text_edit_is_refused(client: Any, login: Any) -> None:
    entry = create(client, login, "tuner1")
    edited = patch(client, login, "tuner2", entry, justification="Typo fixed: Terraform pipeline (CHG-100)")
    assert edited["status"] == "pending" and edited["updated_by"] == "tuner2"
    refused = decide(client, login, "tuner1", edited)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "same_user"
    assert decide(client, login, "tuner2", edited).status_code == 200  # tuner2 wrote no condition


def test_original_author_cannot_approve_after_a_second_tuners_condition_edit(client: Any, login: Any) -> None:
    entry = create(client, login, "tuner1")
    edited = patch(client, login, "tuner2", entry, source_cidrs=["198.51.100.0/24"])
    assert [w["name"] for w in edited["condition_writers"]] == ["tuner1", "tuner2"]
    assert [w["id"] for w in edited["condition_writers"]] == [2, 3]  # QRadar's user IDs
    for writer in ("tuner1", "tuner2"):
        refused = decide(client, login, writer, edited)
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "same_user"
    approved = decide(client, login, "admin", edited)
    assert approved.status_code == 200
    after = approved.get_json()["entry"]
    assert after["approved_by_id"] == 1 and after["condition_writers"] == []


def test_a_condition_change_of_an_approved_entry_is_pending_and_shown(client: Any, login: Any) -> None:
    entry = create(client, login, "tuner1")
    active = decide(client, login, "tuner2", entry).get_json()["entry"]
    assert active["in_force"]["suppressing"] is True and active["in_force"]["until"] == active["expires_at"]
    changed = patch(client, login, "tuner2", active, ua_pattern="*Terraform/*")
    assert changed["status"] == "pending"
    assert changed["in_force"]["suppressing"] is False and "approval" in changed["in_force"]["explanation"]
    assert decide(client, login, "tuner2", changed).status_code == 403  # tuner2 wrote the new condition
    assert decide(client, login, "tuner1", changed).status_code == 200  # tuner1 did not (since approval)


def test_text_edits_after_approval_are_audited_and_shown(client: Any, login: Any) -> None:
    entry = create(client, login, "tuner1")
    active = decide(client, login, "tuner2", entry).get_json()["entry"]
    edited = patch(client, login, "tuner1", active, justification="Rewritten after approval (CHG-100)")
    assert edited["status"] == "active" and edited["in_force"]["suppressing"] is True
    [edit] = edited["text_edits"]
    assert (edit["by"], edit["by_id"], edit["fields"]) == ("tuner1", 2, ["justification"])
    assert "text edited after approval by tuner1" in edited["in_force"]["explanation"]
    audit = client.get("/api/tuning/audit?action=tuning.entry.text_edit").get_json()["items"]
    assert [(a["actor"], a["before"]["justification"], a["after"]["justification"]) for a in audit] == [
        ("tuner1", active["justification"], "Rewritten after approval (CHG-100)")
    ]


# -- 3. keys that cannot be borrowed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"actor_id": None, "actor_pattern": "arn:aws:*"}, "actor_pattern", "pattern_not_pinned"),
        (
            {"actor_id": None, "actor_pattern": "arn:aws:iam::111122223333:role/*"},
            "actor_pattern",
            "pattern_not_pinned",
        ),
        (
            {"actor_id": None, "actor_pattern": "arn:aws:iam::*:role/deploy/*"},
            "actor_pattern",
            "pattern_not_pinned",
        ),
        (
            {"platforms": ["GCP"], "actor_id": None, "actor_pattern": "ci-*@*.iam.gserviceaccount.com"},
            "actor_pattern",
            "pattern_not_pinned",
        ),
        (
            {"platforms": ["Azure AD"], "actor_id": None, "actor_pattern": "4b354e93-*"},
            "actor_pattern",
            "pattern_not_pinned",
        ),
        (
            {"actor_id": None, "source_service": "cloudformation.amazonaws.com"},
            "source_service",
            "service_principal_alone",
        ),
        ({"actor_id": "cloudformation.amazonaws.com"}, "actor_id", "service_principal_alone"),
        ({"platforms": ["Office 365"], "actor_id": "Not Available"}, "actor_id", "placeholder"),
        (
            {"platforms": ["Azure AD"], "actor_id": "00000000-0000-0000-0000-000000000000"},
            "actor_id",
            "placeholder",
        ),
        (
            {"platforms": ["Azure AD"], "actor_id": "Managed Service Identity"},
            "actor_id",
            "display_name_not_id",
        ),
    ],
    ids=[
        "arn-aws-star",
        "any-role-of-an-account",
        "any-account",
        "any-gcp-project",
        "entra-guid-prefix",
        "cloudformation-alone",
        "service-as-actor-id",
        "not-available",
        "zero-guid",
        "first-party-display-name",
    ],
)
def test_borrowable_keys_are_a_400_naming_field_and_reason(
    client: Any, login: Any, overrides: dict[str, Any], field: str, code: str
) -> None:
    for user in ("tuner1", "admin"):  # an admin's override_reason does not make a borrowable key safe
        extra = {"override_reason": "trust me (CHG-9)"} if user == "admin" else {}
        response = client.post(
            "/api/tuning/entries", json=body(**overrides, **extra), headers=login(client, user)
        )
        assert response.status_code == 400, response.get_json()
        error = response.get_json()["error"]
        assert (error["field"], error["code"]) == (field, code)
        assert len(error["message"]) > 40  # says why
    assert client.get("/api/tuning/entries").get_json()["total"] == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"actor_id": None, "actor_pattern": "arn:aws:iam::111122223333:role/pipelines/*"},
        {"actor_id": None, "actor_pattern": "arn:aws:sts::111122223333:assumed-role/deployer/*"},
        {"platforms": ["GCP"], "actor_id": None, "actor_pattern": "ci-*@my-project.iam.gserviceaccount.com"},
        {"source_service": "cloudformation.amazonaws.com"},  # with the calling role's ID
        {
            "actor_id": None,
            "source_service": "autoscaling.amazonaws.com",
            "target_type": "service_linked_role",
        },
    ],
    ids=["role-path", "assumed-role-sessions", "gcp-project", "service-with-caller", "service-linked-role"],
)
def test_keys_that_pin_one_principal_are_accepted(client: Any, login: Any, overrides: dict[str, Any]) -> None:
    entry = create(client, login, "tuner1", **overrides)
    assert entry["flagged_spoofable"] is False


def _entra_app_detection(conn: Any, app_id: str, sp_id: str) -> int:
    payload = {
        "operationName": "Add service principal",
        "properties": {
            "initiatedBy": {
                "app": {
                    "displayName": "Managed Service Identity",
                    "appId": app_id,
                    "servicePrincipalId": sp_id,
                }
            },
            "additionalDetails": [{"key": "AppId", "value": SERVICE_MANAGEMENT_APP_ID}],
        },
    }
    return add_detection(
        conn,
        event_time=now_ms() - HOUR,
        event_name="Add service principal",
        cloud_platform="Azure AD",
        account_kind="service_principal",
        actor="Managed Service Identity",
        actor_id=sp_id,
        payload=json.dumps(payload),
    )


def test_a_first_party_name_with_another_app_id_is_not_suggested(client: Any, login: Any) -> None:
    conn = connect(client.application.config["DATABASE"])
    try:
        _entra_app_detection(conn, ATTACKER_APP_ID, "attacker-sp-object-id")
        _entra_app_detection(conn, SERVICE_MANAGEMENT_APP_ID, "genuine-sp-object-id")
    finally:
        conn.close()
    login(client, "tuner1")
    candidates = client.get("/api/tuning/presets/microsoft_first_party").get_json()["candidates"]
    assert [c["identity"] for c in candidates] == ["genuine-sp-object-id"]
    assert candidates[0]["evidence"] == [
        f"application ID {SERVICE_MANAGEMENT_APP_ID} (Windows Azure Service Management API, "
        "a Microsoft first-party application)"
    ]


def test_a_suggestion_steered_by_a_user_agent_is_not_made(client: Any, login: Any) -> None:
    stolen = "arn:aws:iam::111122223333:role/stolen"
    pipeline = "arn:aws:iam::111122223333:role/cfn-exec"
    conn = connect(client.application.config["DATABASE"])
    try:
        add_detection(conn, event_time=now_ms() - HOUR, actor_id=stolen, user_agent="APN/1.0 Terraform/1.5.6")
        add_detection(
            conn,
            event_time=now_ms() - HOUR,
            actor_id=pipeline,
            user_agent="cloudformation.amazonaws.com",
            source_ip="cloudformation.amazonaws.com",
        )
    finally:
        conn.close()
    login(client, "tuner1")
    candidates = client.get("/api/tuning/presets/iac").get_json()["candidates"]
    assert [c["identity"] for c in candidates] == [pipeline]
    assert candidates[0]["evidence"] == [
        "invokedBy cloudformation.amazonaws.com (recorded by AWS CloudTrail; a client cannot set it)"
    ]
    # config management is known only by user agents: it suggests nobody
    assert client.get("/api/tuning/presets/config_management").get_json()["candidates"] == []


def test_a_preset_refuses_a_placeholder_identity_naming_it(client: Any, login: Any) -> None:
    response = client.post(
        "/api/tuning/presets/hr_directory_sync/enable",
        json={
            "identities": ["5f0c7d1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f", "Not Available"],
            "justification": "HR provisioning service principals (CHG-7)",
            "expires_at": now_ms() + 30 * DAY,
        },
        headers=login(client, "tuner1"),
    )
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert (error["field"], error["code"]) == ("identities[1]", "placeholder")
    assert client.get("/api/tuning/entries").get_json()["total"] == 0  # nothing half-created


def test_placeholder_identities_are_never_suggested() -> None:
    iac = presets.PRESETS_BY_ID["iac"]
    detection = {
        "cloud_platform": "AWS",
        "actor_id": "Not Available",
        "source_ip": "cloudformation.amazonaws.com",
    }
    assert presets.suggest_candidates(iac, [detection]) == []


# -- 5. mirror no broader than the app ---------------------------------------------------------------------


def test_a_narrowed_entry_is_not_mirrored_as_a_bare_id(client: Any, login: Any, devconsole: Any) -> None:
    admin = login(client, "admin")
    name = f"CAW narrow {now_ms()}"
    tuning = client.get("/api/tuning/settings").get_json()
    client.put(
        "/api/tuning/settings",
        json={"version": tuning["version"], "reference_set_name": name, "reference_map_name": name + " map"},
        headers=admin,
    )
    exact = create(client, login, "tuner1")
    narrowed = create(
        client,
        login,
        "tuner1",
        actor_id="arn:aws:iam::111122223333:role/ops-automation",
        source_cidrs=["198.51.100.0/24"],
        ua_pattern="*Terraform/*",
        window={"start": "08:00", "end": "18:00"},
    )
    decide(client, login, "tuner2", exact)
    synced = decide(client, login, "tuner2", narrowed).get_json()
    assert synced["refsync"]["status"] == "ok", synced
    qradar = devconsole.api("admin")
    held = qradar.get(f"{devconsole.base_url}/api/reference_data/sets/{name}").json()
    assert {v["value"] for v in held["data"]} == {DEPLOYER}  # not the narrowed entry's bare ID
    mapped = qradar.get(f"{devconsole.base_url}/api/reference_data/maps/{name} map").json()
    assert set(mapped["data"]) == {DEPLOYER}
    shown = current(client, narrowed)["mirror"]
    assert shown["mirrored"] is False
    assert "source subnets, user agent, time window" in shown["reason"]
    assert current(client, exact)["mirror"]["mirrored"] is True
    drift = client.get("/api/tuning/refsync").get_json()["drift"]
    assert drift["not_mirrored"] == [
        {"entry_id": narrowed["id"], "conditions": ["source subnets", "user agent", "time window"]}
    ]
    assert drift["in_sync"] is True
