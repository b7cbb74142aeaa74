"""AWS coverage against a dev console of its own: CloudTrail records of every AWS family (IAM Identity
Center, Organizations, non-IAM CreateUser, access keys for oneself or another user, MFA devices) and of
the privilege semantics (policy documents, customer-managed policies, admin groups), ingested through the
real DSM CLI (``python -m devconsole ingest``), served over HTTPS and read by the real refresher.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import settings
from app.detection import refresher
from app.qradar import Gateway
from app.store.db import connect
from devconsole.launcher import stop_serve
from tests.app.detection.conftest import console_env, ingest_records, serve_console

from .conftest import ACCOUNT, HOUR, MIN, iso

ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
IC_STORE = "d-9067642ac7"
IC_INSTANCE = "arn:aws:sso:::instance/ssoins-7223b0ba7b2f6b53"
PERMISSION_SET = f"{IC_INSTANCE}/ps-4b0c8a5e1f2d3c6a"


def record(
    t: int,
    name: str,
    request: Any,
    response: Any = None,
    *,
    source: str = "iam.amazonaws.com",
    identity: dict | None = None,
    error: str | None = None,
) -> dict:
    rec = {
        "eventVersion": "1.10",
        "eventTime": iso(t, digits=0),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.24",
        "userAgent": "aws-cli/2.18.17",
        "userIdentity": identity
        or {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:mallory",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/OpsAdmin/mallory",
            "accountId": ACCOUNT,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/OpsAdmin",
                    "userName": "OpsAdmin",
                },
                "attributes": {"mfaAuthenticated": "false"},
            },
        },
        "requestParameters": request,
        "responseElements": response,
        "requestID": f"req-{name}-{t}",
        "eventID": f"ev-{name}-{t}",
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    if error:
        rec["errorCode"], rec["errorMessage"] = error, "denied"
    return rec


def iam_user_identity(name: str) -> dict:
    return {
        "type": "IAMUser",
        "principalId": f"AIDA{name.upper()}",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "accountId": ACCOUNT,
        "userName": name,
    }


def create_user(t: int, name: str) -> dict:
    arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    return record(t, "CreateUser", {"userName": name}, {"user": {"userName": name, "arn": arn}})


def doc(**statement: Any) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", **statement}]}
    )


def records(now: int) -> list[dict]:
    t = now - 8 * HOUR
    return [
        # Identity Center user (identitystore API) and its account assignment an hour later: a chain.
        record(
            t,
            "CreateUser",
            {
                "identityStoreId": IC_STORE,
                "userName": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "displayName": "Eve Ops",
            },
            {"userId": "906755d3e1-ic-eve", "identityStoreId": IC_STORE},
            source="identitystore.amazonaws.com",
        ),
        record(
            t + HOUR,
            "CreateAccountAssignment",
            {
                "instanceArn": IC_INSTANCE,
                "targetId": "444455556666",
                "targetType": "AWS_ACCOUNT",
                "permissionSetArn": PERMISSION_SET,
                "principalType": "USER",
                "principalId": "906755d3e1-ic-eve",
            },
            {"accountAssignmentCreationStatus": {"status": "IN_PROGRESS", "requestId": "r-1"}},
            source="sso.amazonaws.com",
        ),
        # Identity Center console user (sso-directory), group and permission set.
        record(
            t + 5 * MIN,
            "CreateUser",
            {"userName": "ic.console.user", "name": {"givenName": "Ic", "familyName": "User"}},
            {"user": {"userId": "906755d3e1-ic-console", "userName": "ic.console.user"}},
            source="sso-directory.amazonaws.com",
        ),
        record(
            t + 6 * MIN,
            "CreateGroup",
            {"identityStoreId": IC_STORE, "displayName": "ic-break-glass"},
            {"groupId": "906755d3e1-ic-group", "identityStoreId": IC_STORE},
            source="identitystore.amazonaws.com",
        ),
        record(
            t + 7 * MIN,
            "CreatePermissionSet",
            {"instanceArn": IC_INSTANCE, "name": "ShadowAdmin"},
            {"permissionSet": {"name": "ShadowAdmin", "permissionSetArn": PERMISSION_SET}},
            source="sso.amazonaws.com",
        ),
        # Benign Identity Center look-alikes: an update, a removal.
        record(
            t + 8 * MIN, "UpdateUser", {"userId": "906755d3e1-ic-eve"}, source="identitystore.amazonaws.com"
        ),
        record(
            t + 9 * MIN,
            "DeleteAccountAssignment",
            {
                "instanceArn": IC_INSTANCE,
                "principalId": "906755d3e1-ic-eve",
                "permissionSetArn": PERMISSION_SET,
            },
            source="sso.amazonaws.com",
        ),
        # Organizations: a new member account, an invitation; a status read is benign.
        record(
            t + 10 * MIN,
            "CreateAccount",
            {"accountName": "shadow-prod", "email": "HIDDEN_DUE_TO_SECURITY_REASONS"},
            {"createAccountStatus": {"id": "car-7f2b", "accountName": "shadow-prod", "state": "IN_PROGRESS"}},
            source="organizations.amazonaws.com",
        ),
        record(
            t + 11 * MIN,
            "InviteAccountToOrganization",
            {"target": {"id": "777788889999", "type": "ACCOUNT"}},
            {"handshake": {"id": "h-6e1a", "state": "OPEN"}},
            source="organizations.amazonaws.com",
        ),
        record(
            t + 12 * MIN,
            "DescribeCreateAccountStatus",
            {"createAccountRequestId": "car-7f2b"},
            source="organizations.amazonaws.com",
        ),
        # Non-IAM CreateUser: Transfer Family and ElastiCache users.
        record(
            t + 13 * MIN,
            "CreateUser",
            {"serverId": "s-01234567890abcdef", "userName": "sftp-partner", "role": "arn:aws:iam::1:role/x"},
            {"serverId": "s-01234567890abcdef", "userName": "sftp-partner"},
            source="transfer.amazonaws.com",
        ),
        record(
            t + 14 * MIN,
            "CreateUser",
            {"userId": "cache-reader", "userName": "cache-reader", "engine": "redis"},
            {"userId": "cache-reader", "userName": "cache-reader", "status": "creating"},
            source="elasticache.amazonaws.com",
        ),
        # Access keys: one for another (existing) user, one by an IAM user for itself (rotation).
        record(
            t + 20 * MIN,
            "CreateAccessKey",
            {"userName": "backup-operator"},
            {"accessKey": {"userName": "backup-operator", "accessKeyId": "AKIAOTHER", "status": "Active"}},
        ),
        record(
            t + 21 * MIN,
            "CreateAccessKey",
            None,
            {"accessKey": {"userName": "alice", "accessKeyId": "AKIAALICE2", "status": "Active"}},
            identity=iam_user_identity("alice"),
        ),
        # A new user with a console password and an MFA device: the MFA events are context, never raised.
        create_user(t + 30 * MIN, "mfa-user"),
        record(
            t + 31 * MIN,
            "CreateLoginProfile",
            {"userName": "mfa-user"},
            {"loginProfile": {"userName": "mfa-user"}},
        ),
        record(
            t + 32 * MIN,
            "CreateVirtualMFADevice",
            {"virtualMFADeviceName": "mfa-user"},
            {"virtualMFADevice": {"serialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/mfa-user"}},
        ),
        record(
            t + 33 * MIN,
            "EnableMFADevice",
            {"userName": "mfa-user", "serialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/mfa-user"},
        ),
        # A lone MFA enrolment of an existing user: recorded, never raised, in no chain.
        record(
            t + 34 * MIN,
            "CreateVirtualMFADevice",
            {"virtualMFADeviceName": "bob"},
            {"virtualMFADevice": {"serialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/bob"}},
            identity=iam_user_identity("bob"),
        ),
        # Privilege semantics: `IAM:*` inline, NotAction inline, "badminton-club".
        create_user(t + 40 * MIN, "iam-star"),
        record(
            t + 41 * MIN,
            "PutUserPolicy",
            {"userName": "iam-star", "policyName": "x", "policyDocument": doc(Action="IAM:*")},
        ),
        create_user(t + 42 * MIN, "not-action"),
        record(
            t + 43 * MIN,
            "PutUserPolicy",
            {"userName": "not-action", "policyName": "y", "policyDocument": doc(NotAction="s3:*")},
        ),
        create_user(t + 44 * MIN, "shuttler"),
        record(t + 45 * MIN, "AddUserToGroup", {"userName": "shuttler", "groupName": "badminton-club"}),
        # A customer-managed policy with Action "*", attached to a new user later: judged by its contents.
        record(
            t + 50 * MIN,
            "CreatePolicy",
            {"policyName": "OpsBreakGlass", "policyDocument": doc(Action="*")},
            {
                "policy": {
                    "policyName": "OpsBreakGlass",
                    "arn": f"arn:aws:iam::{ACCOUNT}:policy/OpsBreakGlass",
                }
            },
        ),
        create_user(t + 51 * MIN, "glass-user"),
        record(
            t + 52 * MIN,
            "AttachUserPolicy",
            {"userName": "glass-user", "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/OpsBreakGlass"},
        ),
        # ... and one that only reads logs: no privilege chain.
        record(
            t + 53 * MIN,
            "CreatePolicy",
            {"policyName": "ReadLogs", "policyDocument": doc(Action=["logs:Get*", "logs:Describe*"])},
            {"policy": {"policyName": "ReadLogs", "arn": f"arn:aws:iam::{ACCOUNT}:policy/ReadLogs"}},
        ),
        create_user(t + 54 * MIN, "log-reader"),
        record(
            t + 55 * MIN,
            "AttachUserPolicy",
            {"userName": "log-reader", "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/ReadLogs"},
        ),
        # A group learned to carry admin (IAM CreateGroup: context only), then a new user added to it.
        record(
            t + 60 * MIN,
            "CreateGroup",
            {"groupName": "platform-team"},
            {"group": {"groupName": "platform-team"}},
        ),
        record(t + 61 * MIN, "AttachGroupPolicy", {"groupName": "platform-team", "policyArn": ADMIN_POLICY}),
        create_user(t + 62 * MIN, "platform-new"),
        record(t + 63 * MIN, "AddUserToGroup", {"userName": "platform-new", "groupName": "platform-team"}),
        # Hostile shapes of the new families: ingested (valid records), must not stop the refresh.
        record(
            t + 70 * MIN,
            "CreateAccountAssignment",
            {"principalId": {"$gt": ""}, "permissionSetArn": ["x"], "targetId": 1e308},
            {"accountAssignmentCreationStatus": "<script>alert(1)</script>"},
            source="sso.amazonaws.com",
        ),
        record(t + 71 * MIN, "CreatePolicy", {"policyDocument": "%7B" * 5000}, {"policy": [1, 2]}),
    ]


# What each detection must be: target → (kind, severity when alone or None when chained, target type).
EXPECTED = {
    "Eve Ops": ("identity_center_user", None, "IdentityCenterUser"),
    "ic.console.user": ("identity_center_user", 7, "IdentityCenterUser"),
    "ic-break-glass": ("identity_center_group", 5, "IdentityCenterGroup"),
    "ShadowAdmin": ("permission_set", 5, "PermissionSet"),
    "shadow-prod": ("aws_account", 7, "AWSAccount"),
    "777788889999": ("aws_account_invitation", 6, "AWSAccount"),
    "sftp-partner": ("service_user", 3, "Transfer Family user"),
    "cache-reader": ("service_user", 3, "ElastiCache user"),
    "backup-operator": ("access_key", 7, "AccessKey"),
    "alice": ("own_access_key", 3, "AccessKey"),
}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    data_dir = tmp_path_factory.mktemp("aws_console")
    lines = [json.dumps(r) for r in records(int(time.time() * 1000))]
    # Bad input: not JSON, an eventSource that is not a string, no event time.
    bad = [
        "{not json",
        json.dumps({**records(0)[1], "eventSource": 7}),
        json.dumps({k: v for k, v in records(0)[7].items() if k != "eventTime"}),
    ]
    ingest = ingest_records(data_dir, [*lines, *bad])
    assert ingest.returncode == 0, ingest.stderr + ingest.stdout
    assert f"ingested {len(lines)} records" in ingest.stdout, ingest.stdout
    assert "rejected 3 records" in ingest.stdout, ingest.stdout
    assert "eventSource must be a string" in ingest.stdout
    served = serve_console(data_dir)
    try:
        yield served, data_dir
    finally:
        stop_serve(served.process)


def gateway_for(served: Any, data_dir: Path) -> Gateway:
    return Gateway.from_env(console_env(served, data_dir), poll_wait_s=1)


@pytest.fixture(scope="module")
def refreshed(console, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    served, data_dir = console
    conn = connect(tmp_path_factory.mktemp("aws_store") / "app.db")
    result = refresher.refresh_once(conn, gateway_for(served, data_dir))
    assert result.status == "ok", result.error
    yield conn
    conn.close()


def detections(conn: sqlite3.Connection) -> dict[str, sqlite3.Row]:
    rows = conn.execute(
        "SELECT d.*, c.kinds AS chain_kinds, c.admin AS chain_admin FROM detections d "
        "LEFT JOIN chains c ON c.id = d.chain_id"
    ).fetchall()
    return {r["target_account"]: r for r in rows}


def test_every_aws_family_has_its_kind_severity_and_label(refreshed) -> None:
    found = detections(refreshed)
    for target, (kind, severity, target_type) in EXPECTED.items():
        row = found.get(target)
        assert row is not None, f"not detected: {target}"
        assert row["cloud_platform"] == "AWS", target
        assert row["account_kind"] == kind, target
        assert row["target_type"] == target_type, target
        if severity is not None:
            assert row["severity"] == severity and row["chain_id"] is None, target
    # The non-IAM users are not IAM users, the Identity Center user is not an IAM "user".
    assert found["sftp-partner"]["account_kind"] != "user"
    assert found["ic.console.user"]["account_kind"] != "user"


def test_identity_center_user_and_its_account_assignment_are_one_chain(refreshed) -> None:
    found = detections(refreshed)
    user = found["Eve Ops"]
    assignment = found["906755d3e1-ic-eve"]
    assert assignment["account_kind"] == "account_assignment" and assignment["target_type"] == "USER"
    # The hostile assignment (principalId an object, status a string) is stored without a target, alone.
    hostile = found[None]
    assert hostile["account_kind"] == "account_assignment" and hostile["chain_id"] is None
    assert assignment["chain_id"] == user["chain_id"] is not None
    assert "privilege_grant" in json.loads(user["chain_kinds"])
    assert user["severity"] >= 9 and user["confidence"] == "high"


def test_benign_look_alikes_and_failed_or_context_events_are_not_raised(refreshed) -> None:
    names = {r[0] for r in refreshed.execute("SELECT event_name FROM detections")}
    for benign in ("UpdateUser", "DeleteAccountAssignment", "DescribeCreateAccountStatus"):
        assert benign not in names
    for context in ("CreateVirtualMFADevice", "EnableMFADevice", "CreateGroup"):
        rows = refreshed.execute("SELECT account_kind FROM detections WHERE event_name = ?", (context,))
        assert all(r[0] in ("identity_center_group",) for r in rows), context
    kinds = {r[0] for r in refreshed.execute("SELECT account_kind FROM detections")}
    assert not kinds & {"mfa_device", "iam_group"}


def test_mfa_devices_are_recorded_as_context_and_join_the_users_chain(refreshed) -> None:
    stored = refreshed.execute(
        "SELECT event_name, account_kind, target_account FROM follow_on_events WHERE account_kind IS NOT NULL"
    ).fetchall()
    assert {(r[0], r[1], r[2]) for r in stored} >= {
        ("CreateVirtualMFADevice", "mfa_device", "mfa-user"),
        ("EnableMFADevice", "mfa_device", "mfa-user"),
        ("CreateVirtualMFADevice", "mfa_device", "bob"),
        ("CreateGroup", "iam_group", "platform-team"),
    }
    user = detections(refreshed)["mfa-user"]
    assert user["chain_id"] is not None and "aws_user_credential" in json.loads(user["chain_kinds"])
    members = {
        r[0]
        for r in refreshed.execute(
            "SELECT event_name FROM chain_events WHERE chain_id = ?", (user["chain_id"],)
        )
    }
    assert members == {"CreateUser", "CreateLoginProfile", "CreateVirtualMFADevice", "EnableMFADevice"}
    # The lone enrolment of an existing user starts no chain.
    assert not refreshed.execute(
        "SELECT 1 FROM chain_events WHERE event_name = 'CreateVirtualMFADevice' AND target_account = 'bob'"
    ).fetchone()


@pytest.mark.parametrize(
    ("user", "admin"),
    [
        ("iam-star", True),  # PutUserPolicy Action "IAM:*"
        ("not-action", True),  # PutUserPolicy NotAction "s3:*"
        ("glass-user", True),  # customer-managed policy whose CreatePolicy document was Action "*"
        ("platform-new", True),  # group learned to carry AdministratorAccess
        ("shuttler", False),  # "badminton-club" is not an admin group
        ("log-reader", False),  # customer-managed policy that reads logs
    ],
)
def test_privilege_semantics(refreshed, user: str, admin: bool) -> None:
    row = detections(refreshed)[user]
    if admin:
        assert row["chain_id"] is not None and bool(row["chain_admin"]), user
        assert "privilege_grant" in json.loads(row["chain_kinds"]) and row["severity"] == 10
    else:
        assert row["chain_id"] is None and row["severity"] == 7, user
    learned = refreshed.execute("SELECT policy_arn, admin FROM aws_policies ORDER BY policy_arn").fetchall()
    assert [tuple(r) for r in learned] == [
        (f"arn:aws:iam::{ACCOUNT}:policy/OpsBreakGlass", 1),
        (f"arn:aws:iam::{ACCOUNT}:policy/ReadLogs", 0),
    ]
    assert (
        refreshed.execute("SELECT admin FROM aws_groups WHERE group_name = 'PLATFORM-TEAM'").fetchone()[0]
        == 1
    )


def test_non_iam_users_can_be_switched_off(console, tmp_path: Path) -> None:
    served, data_dir = console
    conn = connect(tmp_path / "app.db")
    try:
        settings.update(conn, {"aws_non_iam_users": False}, actor="test")
        assert refresher.refresh_once(conn, gateway_for(served, data_dir)).status == "ok"
        kinds = {r[0] for r in conn.execute("SELECT account_kind FROM detections")}
        assert "service_user" not in kinds and "identity_center_user" in kinds
    finally:
        conn.close()


def test_detail_shows_the_targets_context_events(refreshed) -> None:
    from app.store import detections as store

    user = detections(refreshed)["mfa-user"]
    item = store.get_detection(refreshed, user["id"])
    assert [(c["event_name"], c["account_kind"]) for c in item["context"]] == [
        ("CreateVirtualMFADevice", "mfa_device"),
        ("EnableMFADevice", "mfa_device"),
    ]
    assert store.get_detection(refreshed, detections(refreshed)["iam-star"]["id"])["context"] == []
