"""A dev console of our own for the refresher tests: raw audit records we wrote (so every expected
detection, chain and twin is known exactly) ingested through the real DSM CLI
(``python -m devconsole ingest``) and served over HTTPS by ``python -m devconsole serve``.

`detection_console` is module-scoped; `store_conn` is a fresh app store (real SQLite, migrations applied)
and `gateway` an `app.qradar.Gateway` pointed at the console with the ``service`` token.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devconsole.launcher import start_serve, stop_serve  # noqa: E402

MIN, HOUR = 60_000, 3_600_000
ACCOUNT = "111122223333"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/OpsAdmin"
HOSTILE = "<script>alert(1)</script>' OR 1=1 --"


def iso(ms: int, *, zone: str = "Z", digits: int = 3) -> str:
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    frac = f"{stamp.microsecond:06d}0"[:digits]
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if digits else "") + zone


def cloudtrail(
    t: int,
    name: str,
    request: dict,
    response: dict | None = None,
    *,
    actor_arn: str = ROLE_ARN,
    ua: str = "aws-cli/2.18.17",
    ip: str = "203.0.113.24",
) -> dict:
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/OpsAdmin/mallory"
    return {
        "eventVersion": "1.10",
        "eventTime": iso(t, digits=0),
        "eventSource": "iam.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": ua,
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:mallory",
            "arn": session,
            "accountId": ACCOUNT,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": actor_arn, "userName": "OpsAdmin"},
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


def entra(
    t: int,
    op: str,
    target: dict,
    corr: str,
    *,
    category: str = "ApplicationManagement",
    upn: str = "alice@contoso.com",
    modified: list | None = None,
) -> dict:
    return {
        "time": iso(t, digits=7),
        "operationName": op,
        "category": "AuditLogs",
        "correlationId": corr,
        "resourceId": "/tenants/tenant-1/providers/Microsoft.aadiam",
        "tenantId": "tenant-1",
        "callerIpAddress": "198.51.100.7",
        "properties": {
            "activityDisplayName": op,
            "result": "success",
            "category": category,
            "correlationId": corr,
            "loggedByService": "Core Directory",
            "activityDateTime": iso(t, zone="+00:00", digits=7),
            "initiatedBy": {
                "user": {"id": "oid-alice", "userPrincipalName": upn, "ipAddress": "198.51.100.7"}
            },
            "targetResources": [{**target, "modifiedProperties": modified or []}],
            "additionalDetails": [{"key": "User-Agent", "value": "AADInternals"}],
        },
    }


def o365(t: int, op: str, object_id: str, corr: str) -> dict:
    return {
        "CreationTime": iso(t, zone="", digits=0),
        "Id": f"o365-{t}",
        "Operation": op,
        "OrganizationId": "tenant-1",
        "RecordType": 8,
        "ResultStatus": "Success",
        "UserKey": "1003BFFD@contoso",
        "UserType": 0,
        "Workload": "AzureActiveDirectory",
        "ObjectId": object_id,
        "UserId": "alice@contoso.com",
        "InterSystemsId": corr,
        "ActorIpAddress": "198.51.100.7",
        "Target": [{"ID": object_id, "Type": 5}],
    }


def gcp(t: int, method: str, request: dict, response: dict) -> dict:
    return {
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": {},
            "authenticationInfo": {"principalEmail": "mallory@example.com"},
            "requestMetadata": {"callerIp": "192.0.2.10", "callerSuppliedUserAgent": "gcloud/470.0.0"},
            "serviceName": "iam.googleapis.com",
            "methodName": method,
            "resourceName": "projects/demo",
            "request": request,
            "response": response,
        },
        "insertId": f"gcp-{t}",
        "timestamp": iso(t, digits=9),
        "severity": "NOTICE",
        "logName": "projects/demo/logs/cloudaudit.googleapis.com%2Factivity",
        "resource": {"type": "service_account", "labels": {"project_id": "demo"}},
    }


def scenario(now_ms: int) -> tuple[list[dict], dict[str, Any]]:
    """Raw records and what the detection must make of them."""
    t = now_ms - 6 * HOUR
    sa = "backdoor-sa@demo.iam.gserviceaccount.com"
    records = [
        # (b)+(c) AWS: CreateUser → CreateAccessKey (30 s) → admin policy (2 h): one chain.
        cloudtrail(
            t,
            "CreateUser",
            {"userName": "svc-evil"},
            {
                "user": {
                    "userName": "svc-evil",
                    "userId": "AIDAEVIL",
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/svc-evil",
                }
            },
        ),
        cloudtrail(
            t + 30_000,
            "CreateAccessKey",
            {"userName": "svc-evil"},
            {"accessKey": {"userName": "svc-evil", "accessKeyId": "AKIAEVIL", "status": "Active"}},
        ),
        cloudtrail(
            t + 2 * HOUR,
            "AttachUserPolicy",
            {"userName": "svc-evil", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        ),
        # AWS role: a service account, no chain.
        cloudtrail(
            t + 10 * MIN,
            "CreateRole",
            {"roleName": "ci-deploy", "path": "/"},
            {
                "role": {
                    "roleName": "ci-deploy",
                    "roleId": "AROACI",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/ci-deploy",
                }
            },
        ),
        # Hostile target name.
        cloudtrail(t + 20 * MIN, "CreateUser", {"userName": HOSTILE}, None),
        # A failed creation created nothing.
        {
            **cloudtrail(t + 23 * MIN, "CreateUser", {"userName": "never-made"}, None),
            "errorCode": "AccessDenied",
            "errorMessage": "not authorized",
        },
        # Benign, unrelated: reads and a password change.
        cloudtrail(t + 21 * MIN, "ListUsers", {}, None),
        cloudtrail(t + 22 * MIN, "GetUser", {"userName": "svc-evil"}, None),
        # (a) Entra AADInternals pattern: app → SP → credentials within 20 s, one correlation ID.
        entra(
            t + HOUR,
            "Add application",
            {"id": "app-1", "displayName": "evil-app", "type": "Application"},
            "corr-a",
        ),
        entra(
            t + HOUR + 5_000,
            "Add service principal",
            {"id": "sp-1", "displayName": "evil-app", "type": "ServicePrincipal"},
            "corr-a",
        ),
        entra(
            t + HOUR + 20_000,
            "Add service principal credentials",
            {"id": "sp-1", "displayName": "evil-app", "type": "ServicePrincipal"},
            "corr-a",
        ),
        # (d) Entra "Add user" also seen in the Office 365 audit: one detection.
        entra(
            t + 2 * HOUR,
            "Add user",
            {
                "id": "oid-df00",
                "displayName": "df00tech-test-user",
                "type": "User",
                "userPrincipalName": "df00tech-test-user@contoso.com",
            },
            "corr-d",
            category="UserManagement",
        ),
        o365(t + 2 * HOUR + 3_000, "Add user.", "df00tech-test-user@contoso.com", "corr-d"),
        # Entra benign: a sign-in-free read-like management event that is not a creation.
        entra(
            t + 2 * HOUR + 10 * MIN,
            "Update user",
            {"id": "oid-bob", "displayName": "bob", "type": "User", "userPrincipalName": "bob@contoso.com"},
            "corr-u",
            category="UserManagement",
        ),
        # GCP service account (what the seed missed) and its key.
        gcp(
            t + 3 * HOUR,
            "google.iam.admin.v1.CreateServiceAccount",
            {"account_id": "backdoor-sa", "name": "projects/demo"},
            {"email": sa, "unique_id": "1099", "name": f"projects/demo/serviceAccounts/{sa}"},
        ),
        gcp(
            t + 3 * HOUR + 60_000,
            "google.iam.admin.v1.CreateServiceAccountKey",
            {"name": f"projects/-/serviceAccounts/{sa}"},
            {"name": f"projects/demo/serviceAccounts/{sa}/keys/k1"},
        ),
        gcp(t + 3 * HOUR + 90_000, "google.iam.admin.v1.GetServiceAccount", {"name": sa}, {"email": sa}),
    ]
    expected = {
        # (event name, platform, service account, chain kind or None, target)
        "detections": {
            ("CreateUser", "AWS", False, "aws_user_credential", "svc-evil"),
            ("CreateAccessKey", "AWS", False, "aws_user_credential", "svc-evil"),
            ("CreateRole", "AWS", True, None, "ci-deploy"),
            ("CreateUser", "AWS", False, None, HOSTILE),
            ("Add application", "Azure AD", True, "entra_app_sp_credential", "evil-app"),
            ("Add service principal", "Azure AD", True, "entra_app_sp_credential", "evil-app"),
            ("Add service principal credentials", "Azure AD", True, "entra_app_sp_credential", "evil-app"),
            ("Add user", "Azure AD", False, None, "df00tech-test-user@contoso.com"),
            ("google.iam.admin.v1.CreateServiceAccount", "GCP", True, None, sa),
            ("google.iam.admin.v1.CreateServiceAccountKey", "GCP", True, None, sa),
        },
        "benign": {"ListUsers", "GetUser", "Update user", "google.iam.admin.v1.GetServiceAccount"},
    }
    return records, expected


def add_garbled_event(data_dir: Path, t: int) -> None:
    """A CreateUser whose payload is not JSON (truncated, invalid UTF-8), stored as a DSM would store an
    event it could only partly parse: the detection must come from the normalized fields."""
    from devconsole.store import EventStore

    store = EventStore(data_dir / "events.db")
    qid = store.ensure_qid(347, "CreateUser", 3035)
    ls = store.ensure_log_source("garbled-cloudtrail", 347)
    store.insert_events(
        [
            {
                "starttime": t,
                "qid": qid,
                "category": 3035,
                "highlevelcategory": 3000,
                "logsourceid": ls,
                "devicetype": 347,
                "magnitude": 6,
                "username": "garbler",
                "sourceip": "192.0.2.77",
                "payload": b'\xff\xfe{"eventName": "CreateUser", "requestParameters": {"userName": ',
                "props": {"Account Name": "garbled-user"},
            }
        ]
    )


def ingest_records(data_dir: Path, lines: Sequence[str], *options: str) -> subprocess.CompletedProcess:
    """Write ``lines`` (JSON texts) to ``DIR/records.jsonl`` and ingest them through the DSM CLI; the
    finished process, whose output has the ingested and rejected counts."""
    raw = data_dir / "records.jsonl"
    raw.write_text("\n".join(lines) + "\n")
    return subprocess.run(
        [sys.executable, "-m", "devconsole", "ingest", "--data", str(data_dir), *options, str(raw)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def serve_console(data_dir: Path, *options: str) -> Any:
    """``devconsole serve`` of ``data_dir`` with the app's manifest and no search reuse (stop it with
    ``stop_serve(served.process)``)."""
    return start_serve(data_dir, "--manifest", str(ROOT / "manifest.json"), "--search-reuse", "0", *options)


def console_env(served: Any, data_dir: Path) -> dict[str, str]:
    """The app's environment for a served dev console: its address, the service token, its CA."""
    tokens = json.loads((data_dir / "tokens.json").read_text())
    return {
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{served.port}",
        "SEC_ADMIN_TOKEN": tokens["service"],
        "REQUESTS_CA_BUNDLE": str(served.ca_path),
    }


@dataclass
class Console:
    base_url: str
    port: int
    data_dir: Path
    ca_path: str
    tokens: dict[str, str]
    expected: dict[str, Any]
    process: subprocess.Popen

    def env(self) -> dict[str, str]:
        return {
            "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{self.port}",
            "SEC_ADMIN_TOKEN": self.tokens["service"],
            "REQUESTS_CA_BUNDLE": self.ca_path,
        }

    @property
    def faults(self):
        from devconsole.faults import FaultClient

        return FaultClient(self.base_url, self.tokens["admin"], self.ca_path)


@pytest.fixture(scope="module")
def detection_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data_dir = tmp_path_factory.mktemp("detection_console")
    records, expected = scenario(int(time.time() * 1000))
    ingest = ingest_records(data_dir, [json.dumps(r) for r in records])
    assert ingest.returncode == 0, ingest.stderr + ingest.stdout
    add_garbled_event(data_dir, int(time.time() * 1000) - 5 * HOUR)
    expected["detections"].add(("CreateUser", "AWS", False, None, "garbled-user"))
    served = serve_console(data_dir)
    console = Console(
        served.base_url,
        served.port,
        data_dir,
        served.ca_path,
        json.loads((data_dir / "tokens.json").read_text()),
        expected,
        served.process,
    )
    try:
        yield console
    finally:
        stop_serve(served.process)


@pytest.fixture
def gateway(detection_console: Console):
    from app.qradar import Gateway

    return Gateway.from_env(detection_console.env(), poll_wait_s=1)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "app.db"


@pytest.fixture
def store_conn(store_path: Path):
    from app.store.db import connect

    conn = connect(store_path)
    yield conn
    conn.close()
