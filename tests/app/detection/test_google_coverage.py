"""Google Cloud and Google Workspace coverage (issue 12): every method-name form of service account and key
creation, project/folder/organization and service-account SetIamPolicy as follow-ons with the grant read
from the change, and Workspace user creation with its admin grants.

The pure parts (extraction, classification, chains) are checked directly; then raw records are ingested
through the dev console's DSM CLI, served over HTTPS and refreshed into a real store, and each family's
attack must come out with the right platform, kind, severity and chain while its look-alike does not.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.aql.detection import DEFAULT_LOG_SOURCE_TYPE_IDS, GCP, GOOGLE_WORKSPACE
from app.detection import refresher
from app.detection.chains import PRIVILEGE_GRANT, ChainEvent, build_chains
from app.detection.classify import account_kind, platform_for
from app.detection.extract import GCP_PRIVILEGED_ROLES, extract, group_name_is_admin
from app.qradar import Gateway
from app.store.db import connect
from devconsole.launcher import stop_serve
from tests.app.detection.conftest import console_env, ingest_records, serve_console

MIN, HOUR = 60_000, 3_600_000
PROJECT = "demo-7731"


def iso(ms: int, digits: int = 3) -> str:
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + "." + f"{stamp.microsecond:06d}000"[:digits] + "Z"


def sa_email(name: str) -> str:
    return f"{name}@{PROJECT}.iam.gserviceaccount.com"


def gcp(
    t: int,
    method: str,
    *,
    request: dict | None = None,
    response: dict | None = None,
    service_data: dict | None = None,
    resource: str = f"projects/{PROJECT}",
    actor: str = "mallory@partner.example",
) -> dict:
    proto: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {},
        "authenticationInfo": {"principalEmail": actor},
        "requestMetadata": {"callerIp": "192.0.2.10", "callerSuppliedUserAgent": "gcloud/470.0.0"},
        "serviceName": "iam.googleapis.com",
        "methodName": method,
        "resourceName": resource,
        "request": request or {},
        "response": response or {},
    }
    if service_data is not None:
        proto["serviceData"] = service_data
    return {
        "protoPayload": proto,
        "insertId": f"gcp-{method}-{t}",
        "timestamp": iso(t, digits=9),
        "logName": f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity",
        "resource": {"type": "project", "labels": {"project_id": PROJECT}},
    }


def create_sa(t: int, method: str, name: str) -> dict:
    email = sa_email(name)
    return gcp(
        t,
        method,
        request={"account_id": name, "name": f"projects/{PROJECT}"},
        response={
            "email": email,
            "unique_id": str(10**20 + t % 997),
            "name": f"projects/{PROJECT}/serviceAccounts/{email}",
        },
    )


def delta(*changes: tuple[str, str, str]) -> dict:
    return {
        "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
        "policyDelta": {"bindingDeltas": [{"action": a, "role": r, "member": m} for a, r, m in changes]},
    }


def set_policy(t: int, method: str, bindings: list[dict], changes: dict | None, resource: str = "") -> dict:
    resource = resource or f"projects/{PROJECT}"
    return gcp(
        t,
        method,
        request={"resource": resource, "policy": {"bindings": bindings}},
        service_data=changes,
        resource=resource,
    )


OWNER_BINDING = {"role": "roles/owner", "members": ["user:ops-lead@corp.example"]}


def workspace(t: int, name: str, params: dict[str, str], actor: str = "it-helpdesk@corp.example") -> dict:
    return {
        "kind": "admin#reports#activity",
        "id": {
            "time": iso(t),
            "uniqueQualifier": str(-(10**18) - t % 100_000),
            "applicationName": "admin",
            "customerId": "C01demo",
        },
        "actor": {"callerType": "USER", "email": actor, "profileId": "104400000000000000001"},
        "ipAddress": "198.51.100.9",
        "events": [
            {
                "type": "USER_SETTINGS",
                "name": name,
                "parameters": [{"name": k, "value": v} for k, v in params.items()],
            }
        ],
    }


# --- pure: extraction, classification, chains --------------------------------------------------------


def test_a_logging_role_for_a_new_service_account_is_not_admin_though_the_project_has_an_owner() -> None:
    member = f"serviceAccount:{sa_email('log-shipper')}"
    record = set_policy(
        0,
        "SetIamPolicy",
        [OWNER_BINDING, {"role": "roles/logging.logWriter", "members": [member]}],
        delta(("ADD", "roles/logging.logWriter", member)),
    )
    ids = extract(GCP, "SetIamPolicy", json.dumps(record))
    assert ids.admin_grant is False
    assert ids.granted == "roles/logging.logWriter"
    assert sa_email("log-shipper") in ids.target_keys
    assert "ops-lead@corp.example" not in ids.target_keys


def test_an_owner_grant_is_admin_and_names_only_its_member() -> None:
    member = f"serviceAccount:{sa_email('sync-agent')}"
    record = set_policy(
        0,
        "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
        [{"role": "roles/owner", "members": ["user:ops-lead@corp.example", member]}],
        delta(("ADD", "roles/owner", member), ("ADD", "roles/logging.viewer", "user:someone@corp.example")),
    )
    ids = extract(GCP, "google.cloud.resourcemanager.v3.Projects.SetIamPolicy", json.dumps(record))
    assert ids.admin_grant is True and ids.granted == "roles/owner"
    assert ids.target_keys == {sa_email("sync-agent")}


def test_a_removed_owner_is_no_grant() -> None:
    member = f"serviceAccount:{sa_email('old')}"
    record = set_policy(0, "SetIamPolicy", [OWNER_BINDING], delta(("REMOVE", "roles/owner", member)))
    ids = extract(GCP, "SetIamPolicy", json.dumps(record))
    assert ids.admin_grant is False and not ids.target_keys


@pytest.mark.parametrize("role", [*sorted(GCP_PRIVILEGED_ROLES), "roles/iam.serviceAccountTokenCreator"])
def test_each_privileged_role_is_admin(role: str) -> None:
    member = "user:x@corp.example"
    record = set_policy(0, "SetIamPolicy", [], delta(("ADD", role, member)))
    assert extract(GCP, "SetIamPolicy", json.dumps(record)).admin_grant is True


def test_newer_logs_carry_the_delta_in_metadata() -> None:
    member = f"serviceAccount:{sa_email('meta')}"
    record = set_policy(0, "SetIamPolicy", [OWNER_BINDING], None)
    record["protoPayload"]["metadata"] = delta(("ADD", "roles/editor", member))
    ids = extract(GCP, "SetIamPolicy", json.dumps(record))
    assert ids.admin_grant is True and ids.target_keys == {sa_email("meta")}


def test_without_a_delta_the_whole_policy_is_read_but_only_privileged_members_are_granted_admin() -> None:
    member = f"serviceAccount:{sa_email('log-shipper')}"
    record = set_policy(
        0, "SetIamPolicy", [OWNER_BINDING, {"role": "roles/logging.logWriter", "members": [member]}], None
    )
    ids = extract(GCP, "SetIamPolicy", json.dumps(record))
    # The fallback cannot tell the owner's binding from a new one, so it is admin, for the owner only.
    assert ids.admin_grant is True and ids.target_keys == {"ops-lead@corp.example"}


def test_service_account_policy_grant_joins_the_account_itself() -> None:
    email = sa_email("ci-runner")
    record = set_policy(
        0,
        "google.iam.admin.v1.SetIAMPolicy",
        [{"role": "roles/iam.serviceAccountTokenCreator", "members": ["user:mallory@partner.example"]}],
        delta(("ADD", "roles/iam.serviceAccountTokenCreator", "user:mallory@partner.example")),
        resource=f"projects/{PROJECT}/serviceAccounts/{email}",
    )
    ids = extract(GCP, "google.iam.admin.v1.SetIAMPolicy", json.dumps(record))
    assert ids.admin_grant is True
    assert ids.target_keys == {"mallory@partner.example", email}


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("google.iam.admin.v1.CreateServiceAccount", "service_account"),
        ("google.iam.admin.v1.IAM.CreateServiceAccount", "service_account"),
        ("google.iam.admin.v2.CreateServiceAccount", "service_account"),
        ("google.iam.admin.v1.CreateServiceAccountKey", "service_account_key"),
        ("google.iam.admin.v1.IAM.CreateServiceAccountKey", "service_account_key"),
        ("google.iam.admin.v1.CreateServiceAccountKeyBackdoor", "other"),
    ],
)
def test_every_method_form_is_classified_by_its_final_name(method: str, kind: str) -> None:
    assert account_kind(GCP, method) == kind


def test_workspace_and_gcp_have_their_own_log_source_types() -> None:
    assert DEFAULT_LOG_SOURCE_TYPE_IDS[GCP] == (449,) and DEFAULT_LOG_SOURCE_TYPE_IDS[GOOGLE_WORKSPACE] == (
        442,
    )
    assert platform_for(442, None, DEFAULT_LOG_SOURCE_TYPE_IDS) == GOOGLE_WORKSPACE
    assert platform_for(449, None, DEFAULT_LOG_SOURCE_TYPE_IDS) == GCP
    assert account_kind(GOOGLE_WORKSPACE, "CREATE_USER") == "workspace_user"
    assert account_kind(GOOGLE_WORKSPACE, "ASSIGN_ROLE") == "other"


@pytest.mark.parametrize(
    ("group", "admin"),
    [
        ("badminton-club@corp.example", False),
        ("sysadmin-tools@corp.example", False),
        ("it-admins@corp.example", True),
        ("gcp-organization-admins@corp.example", True),
        ("Domain Admins", True),
        ("administrators@corp.example", True),
        ("admin@corp.example", True),
        ("", False),
    ],
)
def test_admin_groups_are_matched_as_words(group: str, admin: bool) -> None:
    assert group_name_is_admin(group) is admin


def test_workspace_extraction_reads_the_named_event_and_never_raises() -> None:
    record = workspace(0, "CREATE_USER", {"USER_EMAIL": "eve@corp.example"})
    record["events"].append(
        {"name": "ASSIGN_ROLE", "parameters": [{"name": "USER_EMAIL", "value": "x@corp.example"}]}
    )
    created = extract(GOOGLE_WORKSPACE, "CREATE_USER", json.dumps(record))
    assert (created.target_account, created.actor, created.actor_id) == (
        "eve@corp.example",
        "it-helpdesk@corp.example",
        "104400000000000000001",
    )
    role = extract(GOOGLE_WORKSPACE, "ASSIGN_ROLE", json.dumps(record))
    assert role.admin_grant and role.target_keys == {"x@corp.example"}
    for hostile in (
        {"events": "oops"},
        {"events": [{"name": "CREATE_USER", "parameters": {"USER_EMAIL": 5}}]},
        {"events": [{"name": "CREATE_USER", "parameters": [5, None, {"name": ["x"], "value": {}}]}]},
        {"actor": [], "events": [None]},
    ):
        ids = extract(GOOGLE_WORKSPACE, "CREATE_USER", json.dumps(hostile), {"target_account": "fallback"})
        assert ids.target_account == "fallback"


def test_workspace_chain_needs_an_admin_grant() -> None:
    def ev(key: str, name: str, t: int, admin: bool = False, creation: bool = False) -> ChainEvent:
        return ChainEvent(
            key,
            t,
            GOOGLE_WORKSPACE,
            name,
            "workspace_user" if creation else "other",
            target_keys=frozenset({"eve@corp.example"}),
            admin_grant=admin,
            is_creation=creation,
        )

    created = ev("c", "CREATE_USER", 0, creation=True)
    (chain,) = build_chains([created], [ev("g", "GRANT_ADMIN_PRIVILEGE", 3 * HOUR, admin=True)])
    assert chain.kinds == [PRIVILEGE_GRANT] and chain.admin
    assert build_chains([created], [ev("m", "ADD_GROUP_MEMBER", MIN)]) == []


# --- DSM-style ingestion, HTTPS, real store ----------------------------------------------------------


def records(now: int) -> tuple[list[dict], list[dict]]:
    """(good records, malformed records) for the live console."""
    t = now - 6 * HOUR
    sync_agent = f"serviceAccount:{sa_email('sync-agent')}"
    shipper = f"serviceAccount:{sa_email('log-shipper')}"
    good = [
        # GCP attack: qualified method names, then project owner (Resource Manager v3) two hours later.
        create_sa(t, "google.iam.admin.v1.IAM.CreateServiceAccount", "sync-agent"),
        gcp(
            t + MIN,
            "google.iam.admin.v1.IAM.CreateServiceAccountKey",
            request={"name": f"projects/-/serviceAccounts/{sa_email('sync-agent')}"},
            response={"name": f"projects/{PROJECT}/serviceAccounts/{sa_email('sync-agent')}/keys/k1"},
            resource=f"projects/-/serviceAccounts/{sa_email('sync-agent')}",
        ),
        set_policy(
            t + 2 * HOUR,
            "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
            [{"role": "roles/owner", "members": ["user:ops-lead@corp.example", sync_agent]}],
            delta(("ADD", "roles/owner", sync_agent)),
        ),
        # GCP look-alike: a logging role for a new account in a project that has an owner.
        create_sa(t + 10 * MIN, "google.iam.admin.v1.CreateServiceAccount", "log-shipper"),
        set_policy(
            t + 12 * MIN,
            "SetIamPolicy",
            [OWNER_BINDING, {"role": "roles/logging.logWriter", "members": [shipper]}],
            delta(("ADD", "roles/logging.logWriter", shipper)),
        ),
        # Folder-level owner for an account created by another method version.
        create_sa(t + 20 * MIN, "google.iam.admin.v2.CreateServiceAccount", "folder-bot"),
        set_policy(
            t + 25 * MIN,
            "google.cloud.resourcemanager.v2.Folders.SetIamPolicy",
            [],
            delta(
                ("ADD", "roles/resourcemanager.organizationAdmin", f"serviceAccount:{sa_email('folder-bot')}")
            ),
            resource="folders/1234",
        ),
        # Workspace attack: a user, then super admin.
        workspace(t + HOUR, "CREATE_USER", {"USER_EMAIL": "eve@corp.example"}),
        workspace(t + HOUR + 30 * MIN, "GRANT_ADMIN_PRIVILEGE", {"USER_EMAIL": "eve@corp.example"}),
        # Workspace attack: a user, then an admin group (a word: "admins").
        workspace(t + 2 * HOUR, "CREATE_USER", {"USER_EMAIL": "carol@corp.example"}),
        workspace(
            t + 2 * HOUR + 5 * MIN,
            "ADD_GROUP_MEMBER",
            {"USER_EMAIL": "carol@corp.example", "GROUP_EMAIL": "it-admins@corp.example"},
        ),
        # Workspace look-alike: a user, then the badminton club.
        workspace(t + 3 * HOUR, "CREATE_USER", {"USER_EMAIL": "bob@corp.example"}),
        workspace(
            t + 3 * HOUR + 5 * MIN,
            "ADD_GROUP_MEMBER",
            {"USER_EMAIL": "bob@corp.example", "GROUP_EMAIL": "badminton-club@corp.example"},
        ),
        # An admin role for an existing user: a follow-on only, no creation, nothing raised.
        workspace(
            t + 4 * HOUR, "ASSIGN_ROLE", {"USER_EMAIL": "dave@corp.example", "ROLE_NAME": "Help Desk Admin"}
        ),
        # Odd parameter shapes the DSM accepts: detected, target unknown, the refresh goes on.
        {
            **workspace(t + 5 * HOUR, "CREATE_USER", {}),
            "events": [{"name": "CREATE_USER", "parameters": [5, None]}],
        },
    ]
    bad = [
        {**workspace(t, "CREATE_USER", {}), "events": "oops"},
        {**workspace(t, "CREATE_USER", {}), "id": {"time": "yesterday", "applicationName": "admin"}},
        {**workspace(t, "CREATE_USER", {}), "events": []},
        {**workspace(t, "CREATE_USER", {}), "events": [{"name": 7}]},
    ]
    return good, bad


@pytest.fixture(scope="module")
def google_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("google_console")
    good, bad = records(int(time.time() * 1000))
    ingest = ingest_records(data_dir, [json.dumps(r) for r in [*good, *bad]])
    served = serve_console(data_dir)
    env = console_env(served, data_dir)
    try:
        yield {"ingest": ingest, "env": env, "good": len(good), "bad": len(bad), "data": data_dir}
    finally:
        stop_serve(served.process)


@pytest.fixture(scope="module")
def refreshed(google_console: dict[str, Any], tmp_path_factory: pytest.TempPathFactory):
    conn = connect(tmp_path_factory.mktemp("google_store") / "app.db")
    result = refresher.refresh_once(conn, Gateway.from_env(google_console["env"], poll_wait_s=1))
    yield conn, result
    conn.close()


def detection(conn: Any, target: str, kind: str | None = None) -> dict[str, Any]:
    sql = "SELECT * FROM detections WHERE target_account = ?" + (" AND account_kind = ?" if kind else "")
    rows = conn.execute(sql, (target, kind) if kind else (target,)).fetchall()
    assert len(rows) == 1, (target, kind, len(rows))
    return dict(rows[0])


def test_bad_workspace_records_are_rejected_by_name_and_the_rest_ingested(google_console) -> None:
    out = google_console["ingest"].stdout
    assert google_console["ingest"].returncode == 0, out + google_console["ingest"].stderr
    assert f"ingested {google_console['good']} records" in out and "workspace" in out
    assert f"rejected {google_console['bad']} records" in out
    assert "events must be an array (got string)" in out
    assert "id.time (the event time) is not an ISO-8601 timestamp" in out
    assert "events must be a non-empty array" in out
    assert "events[0].name (the event name) must be a string (got number)" in out


def test_gcp_attack_every_method_form_chains_to_the_owner_grant(refreshed) -> None:
    conn, result = refreshed
    assert result.status == "ok", result.error
    sa = detection(conn, sa_email("sync-agent"), "service_account")
    key = detection(conn, sa_email("sync-agent"), "service_account_key")
    for d in (sa, key):
        assert (d["cloud_platform"], d["is_service_account"], d["chain_kind"]) == (GCP, 1, PRIVILEGE_GRANT)
        assert (d["severity"], d["confidence"]) == (10, "high")
    assert sa["event_name"] == "google.iam.admin.v1.IAM.CreateServiceAccount"
    assert sa["log_source_type"] == "Google Cloud Audit"
    steps = [
        r[0]
        for r in conn.execute(
            "SELECT event_name FROM chain_events WHERE chain_id = ? ORDER BY position", (sa["chain_id"],)
        )
    ]
    assert steps[-1] == "google.cloud.resourcemanager.v3.Projects.SetIamPolicy"
    folder = detection(conn, sa_email("folder-bot"))
    assert (folder["account_kind"], folder["chain_kind"], folder["severity"]) == (
        "service_account",
        PRIVILEGE_GRANT,
        10,
    )


def test_gcp_look_alike_logging_role_stays_a_single_detection(refreshed) -> None:
    conn, _ = refreshed
    shipper = detection(conn, sa_email("log-shipper"))
    assert (shipper["cloud_platform"], shipper["chain_id"], shipper["severity"]) == (GCP, None, 7)
    grant = conn.execute("SELECT * FROM follow_on_events WHERE event_name = 'SetIamPolicy'").fetchone()
    assert grant is not None and grant["admin_grant"] == 0


def test_workspace_user_then_admin_is_one_admin_chain(refreshed) -> None:
    conn, _ = refreshed
    for user in ("eve@corp.example", "carol@corp.example"):
        d = detection(conn, user)
        assert (d["cloud_platform"], d["account_kind"], d["is_service_account"]) == (
            GOOGLE_WORKSPACE,
            "workspace_user",
            0,
        )
        assert (d["chain_kind"], d["severity"], d["confidence"]) == (PRIVILEGE_GRANT, 10, "high"), user
        assert d["log_source_type"] == "Google G Suite"
        assert d["actor_id"] == "104400000000000000001"


def test_workspace_look_alikes_are_not_raised_as_chains(refreshed) -> None:
    conn, _ = refreshed
    bob = detection(conn, "bob@corp.example")
    assert (bob["chain_id"], bob["severity"]) == (None, 7)
    assert not conn.execute("SELECT 1 FROM detections WHERE target_account = 'dave@corp.example'").fetchone()
    assert not conn.execute("SELECT 1 FROM detections WHERE event_name = 'ASSIGN_ROLE'").fetchone()
    odd = conn.execute(
        "SELECT * FROM detections WHERE cloud_platform = ? AND target_account IS NULL", (GOOGLE_WORKSPACE,)
    ).fetchall()
    assert len(odd) == 1 and odd[0]["payload_ok"] == 1
    assert conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 8


def test_the_query_matches_the_qualified_names_by_their_final_part_only(refreshed) -> None:
    conn, _ = refreshed
    names = {r[0] for r in conn.execute("SELECT event_name FROM detections WHERE cloud_platform = ?", (GCP,))}
    assert names == {
        "google.iam.admin.v1.IAM.CreateServiceAccount",
        "google.iam.admin.v1.IAM.CreateServiceAccountKey",
        "google.iam.admin.v1.CreateServiceAccount",
        "google.iam.admin.v2.CreateServiceAccount",
    }
    follow = {
        r[0] for r in conn.execute("SELECT event_name FROM follow_on_events WHERE cloud_platform = ?", (GCP,))
    }
    assert follow == {
        "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
        "google.cloud.resourcemanager.v2.Folders.SetIamPolicy",
        "SetIamPolicy",
    }


# --- upgrade: stored log source types -------------------------------------------------------------


def _stored_types_after_upgrade(tmp_path: Path, stored: dict[str, Any]) -> dict[str, Any]:
    from app import settings
    from app.store import db

    # A store as the release before migration 0017 left it: the migrations up to 0016 only.
    before = tmp_path / "migrations-0016"
    before.mkdir()
    for version, path in db.migrations():
        if version <= 16:
            (before / path.name).write_text(path.read_text())
    conn = db.connect(tmp_path / "app.db", migrate_schema=False)
    db.migrate(conn, before)
    conn.execute(
        "INSERT OR REPLACE INTO settings VALUES ('log_source_types', ?, 'admin', 0)", (json.dumps(stored),)
    )
    conn.commit()
    db.migrate(conn)
    value = settings.get("log_source_types", conn=conn)
    conn.close()
    return value


def test_upgrade_replaces_the_old_gcp_default_and_adds_workspace(tmp_path: Path) -> None:
    stored = {
        "AWS": [{"name": "Amazon AWS CloudTrail", "id": 347}],
        "GCP": [{"name": "Google Cloud Audit Logs", "id": 5001}],
    }
    assert _stored_types_after_upgrade(tmp_path, stored) == {
        "AWS": [{"name": "Amazon AWS CloudTrail", "id": 347}],
        "GCP": [{"name": "Google Cloud Audit", "id": 449}],
        "Google Workspace": [{"name": "Google G Suite", "id": 442}],
    }


def test_upgrade_keeps_a_gcp_type_an_administrator_chose(tmp_path: Path) -> None:
    stored = {"GCP": [{"name": "Our GCP DSM", "id": 4012}], "Google Workspace": [{"name": "GWS", "id": 4013}]}
    assert _stored_types_after_upgrade(tmp_path, stored) == stored
