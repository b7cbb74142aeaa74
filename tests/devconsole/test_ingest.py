"""DSM-style ingestion (devconsole.ingest, devconsole.dsm) against a real SQLite event store: each source
format, the QID / category / log source mapping, envelopes and file formats, and malformed records of each
kind reported with their reasons."""

from __future__ import annotations

import copy
import gzip
import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from devconsole.ingest import MAX_RECORD_BYTES, ingest_files, ingest_records
from devconsole.store import EventStore

REPO_ROOT = Path(__file__).resolve().parents[2]
TENANT = "9d2f7a10-3c4b-4e5f-8a6b-7c8d9e0f1a2b"


# --- realistic sample records, one per source --------------------------------------------------------


def cloudtrail_create_user(**overrides) -> dict:
    record = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEROLEID1234:gha-run-4411",
            "arn": "arn:aws:sts::111122223333:assumed-role/TerraformDeployRole/gha-run-4411",
            "accountId": "111122223333",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": "arn:aws:iam::111122223333:role/TerraformDeployRole",
                    "userName": "TerraformDeployRole",
                },
                "attributes": {"mfaAuthenticated": "false"},
            },
        },
        "eventTime": "2026-03-11T16:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.24",
        "userAgent": "aws-cli/2.18.17 md/command#iam.create-user",
        "requestParameters": {"userName": "svc-backup", "path": "/"},
        "responseElements": {
            "user": {"userName": "svc-backup", "arn": "arn:aws:iam::111122223333:user/svc-backup"}
        },
        "eventID": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }
    record.update(overrides)
    return record


def entra_add_user(**overrides) -> dict:
    record = {
        "time": "2026-03-11T16:00:00.1234567Z",
        "resourceId": f"/tenants/{TENANT}/providers/Microsoft.aadiam",
        "operationName": "Add user",
        "category": "AuditLogs",
        "tenantId": TENANT,
        "callerIpAddress": "198.51.100.7",
        "correlationId": "6a1b2c3d-0000-4000-8000-000000000001",
        "properties": {
            "id": "Directory_6a1b2c3d_ABCDE_1",
            "category": "UserManagement",
            "result": "success",
            "activityDisplayName": "Add user",
            "activityDateTime": "2026-03-11T16:00:00.1234567+00:00",
            "loggedByService": "Core Directory",
            "initiatedBy": {
                "user": {
                    "id": "11111111-2222-4333-8444-555555555555",
                    "userPrincipalName": "alice@contoso.onmicrosoft.com",
                    "ipAddress": "198.51.100.7",
                }
            },
            "targetResources": [
                {
                    "id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
                    "displayName": "svc-new",
                    "type": "User",
                    "userPrincipalName": "svc-new@contoso.onmicrosoft.com",
                }
            ],
            "additionalDetails": [{"key": "User-Agent", "value": "AZURECLI/2.61.0"}],
        },
    }
    record.update(overrides)
    return record


def entra_signin(error_code: int = 0) -> dict:
    return {
        "time": "2026-03-11T16:05:00.0000000Z",
        "resourceId": f"/tenants/{TENANT}/providers/Microsoft.aadiam",
        "operationName": "Sign-in activity",
        "category": "SignInLogs",
        "tenantId": TENANT,
        "resultType": str(error_code),
        "callerIpAddress": "192.0.2.200",
        "properties": {
            "id": f"signin-{error_code}",
            "userPrincipalName": "bob@contoso.onmicrosoft.com",
            "ipAddress": "192.0.2.200",
            "status": {"errorCode": error_code},
        },
    }


def o365_add_user(**overrides) -> dict:
    record = {
        "CreationTime": "2026-03-11T16:00:02",
        "Id": "b567caf0-1111-4222-8333-944455556666",
        "Operation": "Add user.",
        "OrganizationId": TENANT,
        "RecordType": 8,
        "ResultStatus": "Success",
        "UserKey": "1003BFFD8EC47CA6@contoso.onmicrosoft.com",
        "UserType": 0,
        "Workload": "AzureActiveDirectory",
        "ClientIP": "",
        "ObjectId": "svc-new@contoso.onmicrosoft.com",
        "UserId": "alice@contoso.onmicrosoft.com",
        "ActorIpAddress": "198.51.100.7",
        "Actor": [{"ID": "alice@contoso.onmicrosoft.com", "Type": 5}],
        "Target": [{"ID": "svc-new@contoso.onmicrosoft.com", "Type": 5}],
    }
    record.update(overrides)
    return record


def gcp_create_service_account(method: str = "google.iam.admin.v1.CreateServiceAccount", **proto) -> dict:
    payload = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {},
        "authenticationInfo": {"principalEmail": "mallory@partner.example"},
        "requestMetadata": {
            "callerIp": "192.0.2.140",
            "callerSuppliedUserAgent": "google-cloud-sdk gcloud/470.0.0",
        },
        "serviceName": "iam.googleapis.com",
        "methodName": method,
        "resourceName": "projects/acme-prod",
        "response": {"email": "backup-exporter@acme-prod.iam.gserviceaccount.com"},
    }
    payload.update(proto)
    return {
        "protoPayload": payload,
        "insertId": "1abc2def3ghi",
        "resource": {"type": "service_account", "labels": {"project_id": "acme-prod"}},
        "timestamp": "2026-03-11T16:00:00.123456789Z",
        "severity": "NOTICE",
        "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
    }


def azure_activity() -> dict:
    return {
        "time": "2026-03-11T16:10:00.0000000Z",
        "resourceId": "/SUBSCRIPTIONS/0F6D1C2B/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES",
        "operationName": "MICROSOFT.COMPUTE/VIRTUALMACHINES/START/ACTION",
        "category": "Administrative",
        "resultType": "Success",
        "callerIpAddress": "203.0.113.9",
        "identity": {
            "claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "ops@contoso.example"}
        },
        "properties": {"eventDataId": "azure-activity-1"},
    }


# --- helpers --------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore.in_dir(tmp_path)


def stored_events(store: EventStore) -> list[dict]:
    """Every event joined with its QID record, categories, log source and log source type."""
    with closing(store.connect(readonly=True)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT e.*, q.name AS qid_name, q.log_source_type_id AS qid_type,"
            " q.low_level_category_id AS qid_cat,"
            " c.name AS category_name, h.name AS high_level_name, ls.name AS log_source_name,"
            " ls.type_id AS log_source_type, t.name AS log_source_type_name"
            " FROM events e JOIN qid_records q ON q.qid = e.qid JOIN categories c ON c.id = e.category"
            " JOIN categories h ON h.id = e.highlevelcategory JOIN log_sources ls ON ls.id = e.logsourceid"
            " JOIN log_source_types t ON t.id = e.devicetype ORDER BY e.id"
        ).fetchall()
    return [dict(row) for row in rows]


def only_event(store: EventStore, record: dict) -> dict:
    report = ingest_records(store, [record])
    assert report.rejected == []
    assert report.ingested == 1
    (event,) = stored_events(store)
    return event


def ms(iso: str) -> int:
    import datetime as dt

    return int(dt.datetime.fromisoformat(iso).timestamp() * 1000)


# --- each source ----------------------------------------------------------------------------------------


def test_cloudtrail_create_user_is_mapped_like_the_dsm(store):
    record = cloudtrail_create_user()
    event = only_event(store, record)
    assert event["devicetype"] == 347
    assert event["log_source_type_name"] == "Amazon AWS CloudTrail"
    assert event["qid_name"] == "CreateUser"
    assert event["qid_type"] == 347
    assert (event["category_name"], event["high_level_name"]) == ("User Account Added", "Authentication")
    assert event["qid_cat"] == event["category"]
    assert event["log_source_name"] == "AWS CloudTrail @ 111122223333"
    assert event["log_source_type"] == 347
    assert event["username"] == "TerraformDeployRole/gha-run-4411"  # the actor, not the new account
    assert event["sourceip"] == "203.0.113.24"
    assert event["starttime"] == event["devicetime"] == event["endtime"] == ms("2026-03-11T16:00:00+00:00")
    assert json.loads(event["payload"]) == record
    assert json.loads(event["props"]) == {"Account Name": "svc-backup"}
    assert event["magnitude"] >= 3
    assert all(1 <= event[k] <= 10 for k in ("magnitude", "severity", "credibility", "relevance"))


def test_cloudtrail_actor_kinds_and_service_callers(store):
    iam_user = cloudtrail_create_user(
        userIdentity={
            "type": "IAMUser",
            "arn": "arn:aws:iam::111122223333:user/ci-deployer",
            "userName": "ci-deployer",
            "accountId": "111122223333",
        }
    )
    service = cloudtrail_create_user(
        eventName="CreateServiceLinkedRole",
        sourceIPAddress="cloudformation.amazonaws.com",
        requestParameters={"aWSServiceName": "resource-explorer-2.amazonaws.com"},
        responseElements={"role": {"roleName": "AWSServiceRoleForResourceExplorer"}},
    )
    root = cloudtrail_create_user(userIdentity={"type": "Root", "arn": "arn:aws:iam::111122223333:root"})
    report = ingest_records(store, [iam_user, service, root])
    assert report.ingested == 3
    first, second, third = stored_events(store)
    assert first["username"] == "ci-deployer"
    assert second["sourceip"] is None  # a service name is not an IP address
    assert json.loads(second["props"]) == {"Account Name": "AWSServiceRoleForResourceExplorer"}
    assert second["category_name"] == "User Account Added"
    assert third["username"] == "root"


def test_cloudtrail_follow_on_and_read_events_get_their_own_categories(store):
    records = [
        cloudtrail_create_user(
            eventName="AttachUserPolicy",
            requestParameters={
                "userName": "svc-backup",
                "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
            },
        ),
        cloudtrail_create_user(eventName="CreateAccessKey", requestParameters={"userName": "svc-backup"}),
        cloudtrail_create_user(eventName="ListUsers", requestParameters=None, readOnly=True),
    ]
    ingest_records(store, records)
    policy, key, read = stored_events(store)
    assert policy["category_name"] == "Privilege Escalation Succeeded"
    assert json.loads(policy["props"]) == {"Account Name": "svc-backup"}
    assert key["category_name"] == "User Account Changed"
    assert read["category_name"] == "Access Permitted"
    assert read["props"] is None
    assert read["magnitude"] < key["magnitude"]


def test_cloudtrail_records_envelope_is_unpacked(store):
    envelope = {"Records": [cloudtrail_create_user(), cloudtrail_create_user(eventName="CreateAccessKey")]}
    report = ingest_records(store, [envelope])
    assert report.ingested == 2
    assert [e["qid_name"] for e in stored_events(store)] == ["CreateUser", "CreateAccessKey"]
    # each member is stored as its own record, not the envelope
    assert json.loads(stored_events(store)[0]["payload"])["eventName"] == "CreateUser"


def test_entra_audit_add_user(store):
    event = only_event(store, entra_add_user())
    assert event["devicetype"] == 445
    assert event["log_source_type_name"] == "Microsoft Azure Active Directory"
    assert event["qid_name"] == "Add user"
    assert event["category_name"] == "User Account Added"
    assert event["log_source_name"] == f"Azure AD @ {TENANT}"
    assert event["username"] == "alice@contoso.onmicrosoft.com"
    assert event["sourceip"] == "198.51.100.7"
    assert event["starttime"] == ms("2026-03-11T16:00:00.123+00:00")  # 7 fractional digits
    assert json.loads(event["props"]) == {"Account Name": "svc-new@contoso.onmicrosoft.com"}


def test_entra_operation_names_are_kept_verbatim(store):
    en_dash = "Update application \u2013 Certificates and secrets management "
    app_initiated = entra_add_user(operationName="Add service principal")
    app_initiated["properties"] = {
        **app_initiated["properties"],
        "initiatedBy": {
            "app": {
                "displayName": "Managed Service Identity",
                "servicePrincipalId": "b9810000-0000-4000-8000-000000000000",
            }
        },
        "targetResources": [{"id": "sp-1", "displayName": "vm-web-01", "type": "ServicePrincipal"}],
    }
    ingest_records(store, [entra_add_user(operationName=en_dash), app_initiated])
    credential, principal = stored_events(store)
    assert credential["qid_name"] == en_dash
    assert credential["category_name"] == "User Account Changed"
    assert principal["username"] == "Managed Service Identity"
    assert principal["sourceip"] == "198.51.100.7"
    assert json.loads(principal["props"]) == {"Account Name": "vm-web-01"}


def test_entra_sign_ins_succeed_or_fail(store):
    ingest_records(store, [entra_signin(0), entra_signin(50126)])
    ok, failed = stored_events(store)
    assert ok["qid_name"] == failed["qid_name"] == "Sign-in activity"
    assert ok["category_name"] == "User Login Success"
    assert failed["category_name"] == "User Login Failure"
    assert ok["username"] == "bob@contoso.onmicrosoft.com"


def test_o365_keeps_the_trailing_period_and_is_a_different_qid(store):
    ingest_records(store, [entra_add_user(), o365_add_user()])
    entra, o365 = stored_events(store)
    assert o365["qid_name"] == "Add user."
    assert o365["devicetype"] == 397
    assert o365["log_source_type_name"] == "Microsoft Office 365"
    assert o365["qid"] != entra["qid"]
    assert o365["category_name"] == "User Account Added"
    assert o365["log_source_name"] == f"Office 365 @ {TENANT}"
    assert o365["username"] == "alice@contoso.onmicrosoft.com"
    assert o365["sourceip"] == "198.51.100.7"
    assert o365["starttime"] == ms("2026-03-11T16:00:02+00:00")  # no zone designator: UTC
    assert json.loads(o365["props"]) == {"Account Name": "svc-new@contoso.onmicrosoft.com"}


def test_o365_client_ip_with_port(store):
    record = o365_add_user(ClientIP="[2001:db8::5]:443")
    del record["ActorIpAddress"]
    assert only_event(store, record)["sourceip"] == "2001:db8::5"


def test_gcp_service_account_and_key(store):
    key = gcp_create_service_account(
        "google.iam.admin.v1.CreateServiceAccountKey",
        response={
            "name": "projects/acme-prod/serviceAccounts/backup-exporter@acme-prod.iam.gserviceaccount.com"
            "/keys/abc123"
        },
        requestMetadata={"callerIp": "private"},
    )
    key["insertId"] = "2xyz"
    ingest_records(store, [gcp_create_service_account(), key])
    account, credential = stored_events(store)
    assert account["devicetype"] == credential["devicetype"] == 449
    assert account["log_source_type_name"] == "Google Cloud Audit"
    assert account["qid_name"] == "google.iam.admin.v1.CreateServiceAccount"
    assert account["category_name"] == "User Account Added"
    assert account["log_source_name"] == "Google Cloud Audit @ acme-prod"
    assert account["username"] == "mallory@partner.example"
    assert account["sourceip"] == "192.0.2.140"
    assert account["starttime"] == ms("2026-03-11T16:00:00.123+00:00")
    assert json.loads(account["props"]) == {
        "Account Name": "backup-exporter@acme-prod.iam.gserviceaccount.com"
    }
    assert credential["qid_name"] == "google.iam.admin.v1.CreateServiceAccountKey"
    assert credential["sourceip"] is None
    assert json.loads(credential["props"]) == {
        "Account Name": "backup-exporter@acme-prod.iam.gserviceaccount.com"
    }


def test_unrelated_azure_activity_source(store):
    event = only_event(store, azure_activity())
    assert event["devicetype"] == 413
    assert event["log_source_type_name"] == "Microsoft Azure Platform"
    assert event["qid_name"] == "MICROSOFT.COMPUTE/VIRTUALMACHINES/START/ACTION"
    assert event["username"] == "ops@contoso.example"
    assert event["log_source_name"] == "Azure Platform @ 0F6D1C2B"


def test_qid_records_are_created_on_first_sight_and_reused(store):
    ingest_records(store, [cloudtrail_create_user()])
    ingest_records(store, [cloudtrail_create_user(eventID="second"), o365_add_user(), entra_add_user()])
    events = stored_events(store)
    assert events[0]["qid"] == events[1]["qid"]
    with closing(store.connect(readonly=True)) as conn:
        names = conn.execute(
            "SELECT log_source_type_id, name FROM qid_records ORDER BY log_source_type_id, name"
        ).fetchall()
        custom = conn.execute("SELECT name, value_type FROM custom_properties").fetchall()
        sources = conn.execute("SELECT name, type_id FROM log_sources ORDER BY name").fetchall()
    assert names == [(347, "CreateUser"), (397, "Add user."), (445, "Add user")]
    assert ("Account Name", "STRING") in custom
    assert sources == [
        ("AWS CloudTrail @ 111122223333", 347),
        (f"Azure AD @ {TENANT}", 445),
        (f"Office 365 @ {TENANT}", 397),
    ]


def test_one_log_source_per_account(store):
    other = cloudtrail_create_user(recipientAccountId="444455556666")
    ingest_records(store, [cloudtrail_create_user(), other])
    first, second = stored_events(store)
    assert first["logsourceid"] != second["logsourceid"]
    assert second["log_source_name"] == "AWS CloudTrail @ 444455556666"


def test_failed_creation_keeps_its_qid_and_its_error_in_the_payload(store):
    denied = cloudtrail_create_user(
        errorCode="AccessDenied", errorMessage="not authorized", responseElements=None
    )
    event = only_event(store, denied)
    assert event["qid_name"] == "CreateUser"
    assert json.loads(event["payload"])["errorCode"] == "AccessDenied"


# --- malformed records -----------------------------------------------------------------------------------


def _without(record: dict, *path: str) -> dict:
    copied = copy.deepcopy(record)
    target = copied
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copied


MALFORMED = [
    ("bad-json", '{"eventSource": "iam.amazonaws.com", "eventName": ', "invalid JSON"),
    ("not-an-object", "[1, 2, 3]", "not a JSON object (got array)"),
    ("a-number", 42, "not a JSON object (got number)"),
    ("unknown-source", {"hello": "world", "time": "2026-03-11T16:00:00Z"}, "unknown source"),
    (
        "cloudtrail-missing-time",
        _without(cloudtrail_create_user(), "eventTime"),
        "eventTime (the event time) is missing",
    ),
    ("cloudtrail-bad-time", cloudtrail_create_user(eventTime="yesterday"), "not an ISO-8601 timestamp"),
    (
        "cloudtrail-impossible-date",
        cloudtrail_create_user(eventTime="2026-13-45T10:00:00Z"),
        "not a valid date",
    ),
    ("cloudtrail-numeric-time", cloudtrail_create_user(eventTime=1741708800), "must be an ISO-8601 string"),
    (
        "cloudtrail-name-not-string",
        cloudtrail_create_user(eventName=17),
        "eventName (the event name) must be a string",
    ),
    ("cloudtrail-empty-name", cloudtrail_create_user(eventName=""), "eventName (the event name) is missing"),
    (
        "cloudtrail-missing-name",
        _without(cloudtrail_create_user(), "eventName"),
        "eventName (the event name) is missing",
    ),
    (
        "entra-missing-operation",
        _without(entra_add_user(), "operationName"),
        "operationName (the event name) is missing",
    ),
    (
        "o365-missing-operation",
        _without(o365_add_user(), "Operation"),
        "Operation (the event name) is missing",
    ),
    (
        "cloudtrail-identity-string",
        cloudtrail_create_user(userIdentity="alice"),
        "userIdentity must be an object",
    ),
    (
        "cloudtrail-request-list",
        cloudtrail_create_user(requestParameters=["svc"]),
        "requestParameters must be an object",
    ),
    (
        "entra-missing-time",
        _without(_without(entra_add_user(), "time"), "properties", "activityDateTime"),
        "time (the event time) is missing",
    ),
    ("entra-properties-string", entra_add_user(properties="oops"), "properties must be an object"),
    (
        "entra-targets-not-list",
        entra_add_user(properties={**entra_add_user()["properties"], "targetResources": "x"}),
        "targetResources must be an array",
    ),
    (
        "entra-upn-number",
        entra_add_user(
            properties={**entra_add_user()["properties"], "initiatedBy": {"user": {"userPrincipalName": 5}}}
        ),
        "userPrincipalName must be a string",
    ),
    (
        "o365-missing-time",
        _without(o365_add_user(), "CreationTime"),
        "CreationTime (the event time) is missing",
    ),
    (
        "o365-operation-object",
        o365_add_user(Operation={"name": "Add user."}),
        "Operation (the event name) must be",
    ),
    (
        "gcp-proto-string",
        {**gcp_create_service_account(), "protoPayload": "x"},
        "protoPayload must be an object",
    ),
    (
        "gcp-missing-method",
        {**gcp_create_service_account(), "protoPayload": {"serviceName": "iam.googleapis.com"}},
        "methodName (the event name) is missing",
    ),
    (
        "gcp-missing-time",
        _without(gcp_create_service_account(), "timestamp"),
        "timestamp (the event time) is missing",
    ),
    ("name-too-long", cloudtrail_create_user(eventName="X" * 300), "longer than 255 characters"),
    (
        "huge-record",
        cloudtrail_create_user(requestParameters={"userName": "a", "blob": "x" * (MAX_RECORD_BYTES + 1)}),
        "record too large",
    ),
    ("huge-line", '{"x": "' + "y" * (MAX_RECORD_BYTES + 10) + '"}', "record too large"),
    ("deeply-nested", "[" * 100_000 + "]" * 100_000, "invalid JSON"),
]


@pytest.mark.parametrize(("item", "reason"), [(m[1], m[2]) for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_record_is_rejected_with_its_reason_and_the_rest_is_ingested(store, item, reason):
    good_before, good_after = cloudtrail_create_user(eventID="before"), o365_add_user(Id="after")
    report = ingest_records(store, [good_before, item, good_after])
    assert report.ingested == 2
    assert len(report.rejected) == 1
    index, message = report.rejected[0]
    assert index == 1
    assert reason in message
    assert [
        json.loads(e["payload"]).get("eventID") or json.loads(e["payload"]).get("Id")
        for e in stored_events(store)
    ] == ["before", "after"]


def test_every_item_is_either_ingested_or_rejected(store):
    items = [item for _, item, _ in MALFORMED] + [cloudtrail_create_user(eventID=str(i)) for i in range(20)]
    report = ingest_records(store, items)
    assert report.ingested + len(report.rejected) == len(items)
    assert sorted(index for index, _ in report.rejected) == list(range(len(MALFORMED)))


def test_bad_envelope_member_names_its_position(store):
    envelope = {"Records": [cloudtrail_create_user(), {"eventSource": "iam.amazonaws.com", "eventName": "X"}]}
    report = ingest_records(store, [envelope])
    assert report.ingested == 1
    assert report.rejected == [(0, "Records[1]: eventTime (the event time) is missing")]


def test_batches_commit_everything_and_ids_follow_input_order(store):
    records = [cloudtrail_create_user(eventID=f"e{i}") if i % 5 else "not json" for i in range(53)]
    report = ingest_records(store, records, batch_size=7, collect_ids=True, coalescing=False)
    assert report.ingested == 42
    assert len(report.rejected) == 11
    indices = [index for index, _ in report.event_ids]
    assert indices == [i for i in range(53) if i % 5]
    with closing(store.connect(readonly=True)) as conn:
        by_id = dict(conn.execute("SELECT id, payload FROM events").fetchall())
    for index, event_id in report.event_ids:
        assert json.loads(by_id[event_id])["eventID"] == f"e{index}"


# --- files ------------------------------------------------------------------------------------------


def test_files_in_every_shape(store, tmp_path):
    mixed = [
        cloudtrail_create_user(),
        entra_add_user(),
        o365_add_user(),
        gcp_create_service_account(),
        azure_activity(),
        entra_signin(),
    ]
    lines = tmp_path / "mixed.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in mixed) + "\n\n{broken\n")
    array = tmp_path / "array.json"
    array.write_text(json.dumps(mixed[:3], indent=2))
    envelope = tmp_path / "111122223333_CloudTrail_us-east-1_20260311T1600Z_abc.json.gz"
    with gzip.open(envelope, "wt") as handle:
        json.dump(
            {"Records": [cloudtrail_create_user(), cloudtrail_create_user(eventName="CreateAccessKey")]},
            handle,
            indent=2,
        )
    report = ingest_files(store, [lines, array, envelope])
    assert report.ingested == 6 + 3 + 2
    assert report.rejected == [
        (6, f"{lines}:8: invalid JSON: Expecting property name enclosed in double quotes at column 2")
    ]
    assert report.by_source == {
        "cloudtrail": 4,
        "entra_audit": 2,
        "entra_signin": 1,
        "o365": 2,
        "gcp": 1,
        "azure_platform": 1,
    }
    # a JSON line is stored byte for byte as its payload
    first = stored_events(store)[0]
    assert first["payload"] == json.dumps(mixed[0]).encode()


def test_broken_array_file_is_one_rejection(store, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"eventName": "CreateUser"}, ')
    report = ingest_files(store, [path])
    assert report.ingested == 0
    assert len(report.rejected) == 1
    assert "invalid JSON array" in report.rejected[0][1]


def test_missing_file_is_an_error_not_a_crash(store, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(cloudtrail_create_user()) + "\n")
    report = ingest_files(store, [tmp_path / "nope.jsonl", good])
    assert report.ingested == 1
    assert report.errors and "nope.jsonl" in report.errors[0]


def test_ingest_command_prints_counts_and_reasons(tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_text(
        "\n".join(
            [
                json.dumps(cloudtrail_create_user()),
                json.dumps(entra_add_user()),
                json.dumps({"what": "is this"}),
                json.dumps(_without(o365_add_user(), "CreationTime")),
            ]
        )
        + "\n"
    )
    data = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "devconsole", "ingest", "--data", str(data), str(records)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ingested 2 records" in proc.stdout
    assert "rejected 2 records" in proc.stdout
    assert "#2: " in proc.stdout and "unknown source" in proc.stdout
    assert "#3: " in proc.stdout and "CreationTime (the event time) is missing" in proc.stdout
    assert EventStore.in_dir(data).count_events() == 2


def test_lone_surrogates_are_stored_not_crashed_on(store):
    line = json.dumps(
        cloudtrail_create_user(
            requestParameters={"userName": "\ud800evil"},
            userIdentity={"type": "IAMUser", "userName": "a\udfffb"},
        )
    )
    as_dict = json.loads(line)
    as_dict["eventID"] = "dict-form"
    report = ingest_records(store, [line, as_dict])
    assert report.rejected == []
    assert report.ingested == 2
    from_line, from_dict = stored_events(store)
    assert from_line["username"] == from_dict["username"] == "a?b"
    assert json.loads(from_line["props"]) == {"Account Name": "?evil"}
    assert json.loads(from_dict["payload"])["requestParameters"]["userName"] == "\ud800evil"


def test_records_that_are_not_json_are_rejected(store):
    import datetime as dt

    not_serializable = cloudtrail_create_user(requestParameters={"userName": "x", "when": dt.datetime.now()})
    not_utf8 = b'{"eventSource": "iam.amazonaws.com", "eventName": "CreateUser\xff"}'
    report = ingest_records(store, [not_serializable, not_utf8, cloudtrail_create_user()])
    assert report.ingested == 1
    assert [index for index, _ in report.rejected] == [0, 1]
    assert "not JSON-serializable" in report.rejected[0][1]
    assert "not UTF-8" in report.rejected[1][1]
