"""Entra ID / Office 365 coverage (issue 12): each family's attack, ingested DSM-style into the shared seeded
dev console (the scenario's `entra_families` items), is detected with the right platform, kind, severity
and chain; its benign variant is not raised or is raised at the documented low severity; dash and space
spellings, role grants judged by template ID and dangerous app permissions; bad input still rejected."""

from __future__ import annotations

import json
import sqlite3

import pytest

from app.aql import detection as aqld
from app.detection import classify, entra_roles, extract
from app.detection.chains import ChainEvent, build_chains, chain_severity
from app.kinds import kind_of
from app.playbook import validation
from devconsole.aql.functions import like_to_glob
from devconsole.ingest import ingest_records
from devconsole.store import EventStore
from tests.app.detection import test_scenario
from tests.app.detection.test_scenario import detection_of

# The shared seeded console refreshed once into a store (module fixture of test_scenario).
refreshed = test_scenario.refreshed

GA = "62e90394-69f5-4237-9190-012177145e10"
PRA = "e8611ab8-c189-46e8-94e1-60213ab1f814"
READER = "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b"

# item key → [(account kind, platform, severity, confidence, chain kind)] per expected detection, in order.
EXPECTED = {
    "entra-guest-invite-redeemed-admin": [("guest_user", "Azure AD", 10, "high", "privilege_grant")],
    "benign-entra-guest-partner": [("guest_user", "Azure AD", 6, "medium", "entra_guest_redemption")],
    "o365-guest-invite": [("guest_user", "Office 365", 5, "medium", None)],
    "entra-app-credential-spellings": [("credential", "Azure AD", 7, "medium", None)] * 3,
    "entra-federated-credential-new-app": [
        ("application", "Azure AD", 8, "high", "entra_app_sp_credential"),
        ("service_principal", "Azure AD", 8, "high", "entra_app_sp_credential"),
        ("federated_credential", "Azure AD", 8, "high", "entra_app_sp_credential"),
    ],
    "azure-managed-identity-federated-credential": [("federated_credential", "Azure AD", 7, "medium", None)],
    "entra-owner-added-new-user": [
        ("user", "Azure AD", 9, "high", "privilege_grant"),
        ("app_owner", "Azure AD", 9, "high", "privilege_grant"),
    ],
    "benign-entra-sp-co-owner": [("app_owner", "Azure AD", 6, "medium", None)],
    "entra-domain-federation-backdoor": [
        ("domain", "Azure AD", 10, "high", "entra_domain_federation"),
        ("domain", "Azure AD", 10, "high", "entra_domain_federation"),
        ("domain_federation", "Azure AD", 10, "high", "entra_domain_federation"),
        ("domain_federation", "Azure AD", 10, "high", "entra_domain_federation"),
    ],
    "benign-entra-domain-verified": [("domain", "Azure AD", 5, "medium", None)] * 2,
    "entra-pim-eligible-privileged-role": [("user", "Azure AD", 10, "high", "privilege_grant")],
    "entra-cross-tenant-sync-user": [("cross_tenant_user", "Azure AD", 6, "medium", None)],
}
NOT_RAISED = ("benign-entra-app-rename", "benign-entra-pim-reader")


def _items(scenario: dict) -> dict[str, dict]:
    return {i["key"]: i for i in scenario["items"]}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_family_detected_with_platform_kind_severity_and_chain(refreshed, key: str) -> None:
    conn, keys, scenario, _ = refreshed
    item = _items(scenario)[key]
    events = [e for e in item["events"] if e["expected_detection"]]
    assert len(events) == len(EXPECTED[key])
    for event, (kind, platform, severity, confidence, chain) in zip(events, EXPECTED[key], strict=True):
        found = detection_of(conn, keys[event["event_id"]])
        assert found is not None, f"{key}: {event['event_name']!r} not detected"
        got = (found["account_kind"], found["cloud_platform"], found["severity"], found["confidence"])
        assert got == (kind, platform, severity, confidence), (key, event["event_name"])
        assert found["chain_kind"] == chain, (key, event["event_name"])
        assert found["target_account"] == event["target_account"]


@pytest.mark.parametrize("key", NOT_RAISED)
def test_benign_variant_not_raised(refreshed, key: str) -> None:
    conn, keys, scenario, _ = refreshed
    for event in _items(scenario)[key]["events"]:
        assert detection_of(conn, keys[event["event_id"]]) is None, event["event_name"]


def test_every_dash_and_space_spelling_is_one_kind(refreshed) -> None:
    scenario = refreshed[2]
    names = [e["event_name"] for e in _items(scenario)["entra-app-credential-spellings"]["events"]]
    assert {n.split(" ")[2] for n in names} == {"-", "\u2014", "\u2013"} and names[2].endswith(" ")
    # and the classifier folds every spelling, O365's trailing period included
    for name in [
        *names,
        "Update application \u2013 Certificates and secrets management",
        "UPDATE  APPLICATION \u2010 Certificates and secrets   management.",
    ]:
        assert classify.account_kind(aqld.AZURE_AD, name) == "credential", name
        assert classify.account_kind(aqld.OFFICE_365, name.rstrip() + ".") == "credential", name


def test_aql_patterns_keep_exact_name_semantics() -> None:
    # `_` stands for exactly one character (the dash); nothing longer or shorter matches.
    import fnmatch

    patterns = [p.lower() for p in aqld.ENTRA_APP_CREDENTIAL_PATTERNS]
    globs = [like_to_glob(p) for p in patterns]

    def matches(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name.lower(), g) for g in globs)

    for dash in ("-", "\u2013", "\u2014"):
        assert matches(f"Update application {dash} Certificates and secrets management")
        assert matches(f"Update application {dash} Certificates and secrets management ")
    assert not matches("Update application")
    assert not matches("Update application - Certificates and secrets management and more")
    assert not matches("Update application -- Certificates and secrets management")


def test_role_grants_are_judged_by_template_id(refreshed) -> None:
    conn = refreshed[0]
    rows = {
        r["event_name"]: r
        for r in conn.execute(
            "SELECT event_name, granted, admin_grant FROM follow_on_events WHERE event_name LIKE '%PIM%'"
        )
    }
    renamed = rows["Add eligible member to role in PIM completed (permanent)"]
    assert renamed["granted"] == "Tier0 Operators" and renamed["admin_grant"] == 1
    reader = rows["Add member to role in PIM completed (timebound)"]
    assert reader["granted"] == "Message Center Reader" and reader["admin_grant"] == 0


def _role_event(name: str | None, template: str | None, op: str = "Add member to role") -> str:
    mods = []
    if name is not None:
        mods.append({"displayName": "Role.DisplayName", "oldValue": None, "newValue": json.dumps(name)})
    if template is not None:
        mods.append({"displayName": "Role.TemplateId", "oldValue": None, "newValue": json.dumps(template)})
    return json.dumps(
        {
            "operationName": op,
            "properties": {
                "result": "success",
                "initiatedBy": {"user": {"id": "oid-a", "userPrincipalName": "a@contoso.com"}},
                "targetResources": [
                    {
                        "id": "oid-b",
                        "type": "User",
                        "userPrincipalName": "b@contoso.com",
                        "modifiedProperties": mods,
                    }
                ],
            },
        }
    )


@pytest.mark.parametrize(
    ("name", "template", "admin"),
    [
        ("Helpdesk Team Lead", GA, True),  # renamed display name, Global Administrator's template ID
        ("Global Administrator", READER, False),  # a name that lies: the template ID decides
        ("Message Center Reader", READER, False),
        ("Badminton Club Admins", None, False),  # no ID: exact built-in names only, never a substring
        ("Privileged Role Administrator", None, True),
        ("Company Administrator", None, True),
        (None, f"[{PRA}]", True),
    ],
)
def test_role_template_id_decides_admin(name: str | None, template: str | None, admin: bool) -> None:
    ids = extract.extract(aqld.AZURE_AD, "Add member to role", _role_event(name, template))
    assert ids.admin_grant is admin
    o365 = {
        "Operation": "Add member to role.",
        "ModifiedProperties": [
            {"Name": "Role.DisplayName", "NewValue": name or "", "OldValue": ""},
            *([{"Name": "Role.TemplateId", "NewValue": template, "OldValue": ""}] if template else []),
        ],
    }
    assert extract.extract(aqld.OFFICE_365, "Add member to role.", json.dumps(o365)).admin_grant is admin


@pytest.mark.parametrize(
    ("prop", "value", "admin"),
    [
        ("AppRole.Value", "RoleManagement.ReadWrite.Directory", True),
        ("AppRole.Id", "06b708a9-e830-4db3-a914-8e69da51d44f", True),  # AppRoleAssignment.ReadWrite.All
        ("AppRole.Id", "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9", True),  # Application.ReadWrite.All
        ("AppRole.Value", "Directory.ReadWrite.All", True),
        ("AppRole.Value", "User.Read.All", False),
        ("AppRole.Id", "df021288-bdef-4463-88db-98f22de89214", False),  # User.Read.All's ID
        ("ConsentAction.Permissions", "Scope: Application.ReadWrite.All offline_access", True),
        ("ConsentAction.Permissions", "Scope: Mail.Read offline_access", False),
    ],
)
def test_dangerous_app_permissions_are_admin_grants(prop: str, value: str, admin: bool) -> None:
    record = {
        "operationName": "Add app role assignment to service principal",
        "properties": {
            "targetResources": [
                {
                    "id": "sp-1",
                    "type": "ServicePrincipal",
                    "displayName": "evil",
                    "modifiedProperties": [{"displayName": prop, "newValue": json.dumps(value)}],
                }
            ]
        },
    }
    ids = extract.extract(aqld.AZURE_AD, record["operationName"], json.dumps(record))
    assert ids.admin_grant is admin
    assert entra_roles.permission_is_dangerous([value]) is admin


def test_non_privileged_role_after_a_creation_chains_without_admin() -> None:
    user = ChainEvent(
        "k1", 1_000, aqld.AZURE_AD, "Add user", "user", target_keys=frozenset({"b@contoso.com"})
    )
    reader = ChainEvent(
        "k2",
        60_000,
        aqld.AZURE_AD,
        "Add member to role",
        target_keys=frozenset({"b@contoso.com"}),
        is_creation=False,
    )
    (chain,) = build_chains([user], [reader])
    assert chain.admin is False and chain_severity(7, chain) == (9, "high")
    admin = ChainEvent(
        "k3",
        90_000,
        aqld.AZURE_AD,
        "Add eligible member to role in PIM completed (timebound)",
        target_keys=frozenset({"b@contoso.com"}),
        admin_grant=True,
        is_creation=False,
    )
    (chain,) = build_chains([user], [reader, admin])
    assert chain.admin is True and chain_severity(7, chain) == (10, "high")


def test_kinds_carry_their_documented_severity() -> None:
    assert [kind_of(k).severity for k in ("guest_user", "domain", "app_owner", "cross_tenant_user")] == [
        5,
        5,
        6,
        6,
    ]
    assert kind_of("domain_federation").severity == 9
    assert kind_of("federated_credential").credential and kind_of("federated_credential").service


def test_update_application_without_federated_credentials_is_not_a_detection() -> None:
    rename = {
        "operationName": "Update application",
        "properties": {"targetResources": [{"id": "a", "type": "Application", "modifiedProperties": []}]},
    }
    ids = extract.extract(aqld.AZURE_AD, "Update application", json.dumps(rename))
    assert classify.refine_kind(aqld.AZURE_AD, "Update application", "federated_credential", ids) is None
    fic = json.loads(json.dumps(rename))
    fic["properties"]["targetResources"][0]["modifiedProperties"] = [
        {"displayName": "FederatedIdentityCredentials", "newValue": "[{}]"}
    ]
    ids = extract.extract(aqld.AZURE_AD, "Update application", json.dumps(fic))
    assert classify.refine_kind(aqld.AZURE_AD, "Update application", "federated_credential", ids) == (
        "federated_credential"
    )


@pytest.mark.parametrize(
    "payload",
    [
        '{"properties": {"targetResources": [{"modifiedProperties": "x"}, 3, null]}}',
        '{"properties": {"targetResources": [{"type": "Role", "id": 7, "modifiedProperties": [{"displayName": 5}]}]}}',
        '{"properties": {"initiatedBy": {"app": {"appId": ["x"]}}, "targetResources": {}}}',
        '{"ModifiedProperties": [{"Name": "Role.TemplateId", "NewValue": {"a": 1}}], "Operation": 3}',
        '{"resourceId": "/x/federatedIdentityCredentials/"}',
        "not json at all",
    ],
)
def test_hostile_payloads_never_raise(payload: str) -> None:
    for platform in (aqld.AZURE_AD, aqld.OFFICE_365):
        for name in ("Add member to role", "Update application", "Add user", "Invite external user"):
            ids = extract.extract(platform, name, payload, {"actor": "x"})
            kind = classify.account_kind(platform, name)
            classify.refine_kind(platform, name, kind, ids)
            assert ids.actor == "x" or ids.actor


def test_bad_entra_records_are_rejected_clearly_and_the_rest_ingested(tmp_path) -> None:
    store = EventStore.in_dir(tmp_path)
    good = {
        "time": "2026-12-03T10:00:00.0000000Z",
        "operationName": "Set federation settings on domain",
        "category": "AuditLogs",
        "resourceId": "/tenants/t/providers/Microsoft.aadiam",
        "properties": {
            "result": "success",
            "targetResources": [{"displayName": "evil.example", "type": "Other"}],
        },
    }
    bad_targets = {**good, "properties": {**good["properties"], "targetResources": ["evil.example"]}}
    bad_name = {**good, "operationName": ["Verify domain"]}
    report = ingest_records(store, [good, bad_targets, bad_name, {**good, "time": "2026-12-03T10:00:01Z"}])
    assert report.ingested == 2
    reasons = dict(report.rejected)
    assert "targetResources[] must hold objects" in reasons[1]
    assert "operationName (the event name) must be a string" in reasons[2]
    with sqlite3.connect(store.path) as conn:
        names = {
            r[0] for r in conn.execute("SELECT q.name FROM events e JOIN qid_records q ON q.qid = e.qid")
        }
    assert names == {"Set federation settings on domain"}


def test_validation_tests_cover_the_new_families() -> None:
    keys = {t.key: t for t in validation.TESTS}
    for key in (
        "entra-guest-invite",
        "entra-app-credential",
        "entra-owner-added",
        "entra-federated-credential",
        "entra-domain-federation",
        "entra-pim-eligible",
    ):
        assert key in keys, key
        assert validation.collected(keys[key]), key


def test_tuning_page_offers_every_catalogued_kind(client, login) -> None:
    login(client, "admin")
    page = client.get("/tab/tuning")
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    for name in ("guest_user", "domain_federation", "federated_credential", "cross_tenant_user", "iam_role"):
        assert f'<option value="{name}">{kind_of(name).label}</option>' in html, name


def _domain(key: str, t: int, name: str, kind: str, domain: str = "evil.example") -> ChainEvent:
    return ChainEvent(key, t, aqld.AZURE_AD, name, kind, target_keys=frozenset({domain}))


def test_domain_federation_chain_needs_the_same_domain_within_its_window() -> None:
    hour = 3_600_000
    added = _domain("d1", 0, "Add unverified domain", "domain")
    federated = _domain("d2", 2 * hour, "Set domain authentication", "domain_federation")
    (chain,) = build_chains([added, federated], [])
    assert chain.kind == "entra_domain_federation" and chain_severity(7, chain) == (10, "high")
    other_domain = _domain("d3", 2 * hour, "Set domain authentication", "domain_federation", "good.example")
    assert build_chains([added, other_domain], []) == []
    late = _domain("d4", 25 * hour, "Set federation settings on domain", "domain_federation")
    assert build_chains([added, late], []) == []


def test_guest_redemption_chain_is_medium_until_a_grant_follows() -> None:
    keys = frozenset({"g#ext#@contoso.com"})
    invite = ChainEvent("i", 0, aqld.OFFICE_365, "Invite external user.", "guest_user", target_keys=keys)
    redeem = ChainEvent(
        "r", 60_000, aqld.AZURE_AD, "Redeem external user invite", target_keys=keys, is_creation=False
    )
    (chain,) = build_chains([invite], [redeem])
    assert chain.kinds == ["entra_guest_redemption"] and chain_severity(5, chain) == (6, "medium")
    grant = ChainEvent(
        "g",
        120_000,
        aqld.AZURE_AD,
        "Add member to role",
        target_keys=keys,
        admin_grant=True,
        is_creation=False,
    )
    (chain,) = build_chains([invite], [redeem, grant])
    assert chain.kind == "privilege_grant" and chain_severity(5, chain) == (10, "high")
