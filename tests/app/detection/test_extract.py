"""Payload identifiers per platform, from payloads shaped like the reference tables (§3), and hostile or
broken payloads that must degrade to the normalized fields without raising."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from app.aql.detection import AWS, AZURE_AD, GCP, OFFICE_365
from app.detection.extract import PARSED, base_name, dig, extract, parse_payload, payload_state

AWS_CREATE_USER = {
    "eventVersion": "1.10",
    "eventSource": "iam.amazonaws.com",
    "eventName": "CreateUser",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "203.0.113.24",
    "userAgent": "aws-cli/2.18.17 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0 md/command#iam.create-user",
    "userIdentity": {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:gha-run-4411",
        "arn": "arn:aws:sts::111122223333:assumed-role/TerraformDeployRole/gha-run-4411",
        "accountId": "111122223333",
        "accessKeyId": "ASIAEXAMPLE",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "arn": "arn:aws:iam::111122223333:role/TerraformDeployRole",
                "userName": "TerraformDeployRole",
            },
            "attributes": {"creationDate": "2026-03-11T16:00:00Z", "mfaAuthenticated": "false"},
        },
    },
    "requestParameters": {"userName": "df00tech-atomic-test-user", "path": "/"},
    "responseElements": {
        "user": {
            "path": "/",
            "userName": "df00tech-atomic-test-user",
            "userId": "AIDAEXAMPLE",
            "arn": "arn:aws:iam::111122223333:user/df00tech-atomic-test-user",
            "createDate": "Oct 3, 2025, 8:41:04 AM",
        }
    },
    "requestID": "5b1f0c3e-0000-4000-8000-000000000001",
    "eventID": "e1",
    "readOnly": False,
}

ENTRA_ADD_SP_CREDS = {  # diagnostic-settings shape
    "time": "2026-03-11T16:00:00.1234567Z",
    "operationName": "Add service principal credentials",
    "category": "AuditLogs",
    "correlationId": "11111111-2222-3333-4444-555555555555",
    "callerIpAddress": "198.51.100.7",
    "properties": {
        "activityDisplayName": "Add service principal credentials",
        "result": "success",
        "category": "ApplicationManagement",
        "loggedByService": "Core Directory",
        "correlationId": "11111111-2222-3333-4444-555555555555",
        "initiatedBy": {
            "user": {
                "id": "aaaaaaaa-0000-0000-0000-000000000001",
                "userPrincipalName": "alice@contoso.com",
                "ipAddress": "198.51.100.7",
            }
        },
        "targetResources": [
            {
                "id": "bbbbbbbb-0000-0000-0000-000000000002",
                "displayName": "backdoor-app",
                "type": "ServicePrincipal",
                "modifiedProperties": [
                    {
                        "displayName": "KeyDescription",
                        "newValue": "[KeyIdentifier=x,KeyType=Password,KeyUsage=Verify]",
                    }
                ],
            }
        ],
        "additionalDetails": [
            {"key": "User-Agent", "value": "python-requests/2.31 AADInternals"},
            {"key": "AppId", "value": "cccc"},
        ],
    },
}

ENTRA_APP_INITIATED = {  # Graph / directoryAudits shape, initiated by an app
    "activityDisplayName": "Add user",
    "result": "success",
    "correlationId": "corr-2",
    "initiatedBy": {
        "app": {
            "appId": None,
            "displayName": "Managed Service Identity",
            "servicePrincipalId": "b981-sp-id",
            "servicePrincipalName": None,
        }
    },
    "targetResources": [
        {
            "id": "u-1",
            "displayName": "svc-new",
            "type": "User",
            "userPrincipalName": "svc-new@contoso.onmicrosoft.com",
        }
    ],
}

O365_ADD_USER = {
    "CreationTime": "2026-03-11T16:00:02",
    "Id": "b567caf0-0000",
    "Operation": "Add user.",
    "OrganizationId": "tenant",
    "RecordType": 8,
    "ResultStatus": "Success",
    "UserKey": "1003BFFD8EC47CA6@contoso.onmicrosoft.com",
    "UserType": 0,
    "Workload": "AzureActiveDirectory",
    "ObjectId": "df00tech-test-user@contoso.onmicrosoft.com",
    "UserId": "admin@contoso.onmicrosoft.com",
    "ActorIpAddress": "198.51.100.7",
    "InterSystemsId": "corr-3",
    "Target": [
        {"ID": "User_u-9", "Type": 2},
        {"ID": "df00tech-test-user@contoso.onmicrosoft.com", "Type": 5},
    ],
    "ExtendedProperties": [
        {"Name": "additionalDetails", "Value": '{"User-Agent":"Mozilla/5.0"}'},
        {"Name": "extendedAuditEventCategory", "Value": "User"},
    ],
}

GCP_CREATE_SA = {
    "protoPayload": {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {},
        "authenticationInfo": {"principalEmail": "mallory@example.com"},
        "requestMetadata": {
            "callerIp": "192.0.2.10",
            "callerSuppliedUserAgent": "google-cloud-sdk gcloud/470.0.0",
        },
        "serviceName": "iam.googleapis.com",
        "methodName": "google.iam.admin.v1.CreateServiceAccount",
        "resourceName": "projects/demo-project",
        "request": {
            "account_id": "backdoor-sa",
            "name": "projects/demo-project",
            "@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountRequest",
        },
        "response": {
            "email": "backdoor-sa@demo-project.iam.gserviceaccount.com",
            "unique_id": "1099",
            "name": "projects/demo-project/serviceAccounts/backdoor-sa@demo-project.iam.gserviceaccount.com",
        },
    },
    "insertId": "abc",
    "severity": "NOTICE",
}


def test_aws_assumed_role_keys_on_the_role_arn() -> None:
    ids = extract(AWS, "CreateUser", json.dumps(AWS_CREATE_USER))
    assert ids.payload_ok
    assert ids.actor_id == "arn:aws:iam::111122223333:role/TerraformDeployRole"
    assert ids.actor == "arn:aws:sts::111122223333:assumed-role/TerraformDeployRole/gha-run-4411"
    assert ids.actor_type == "AssumedRole"
    assert ids.target_account == "df00tech-atomic-test-user"
    assert ids.target_id == "arn:aws:iam::111122223333:user/df00tech-atomic-test-user"
    assert ids.source_ip == "203.0.113.24"
    assert ids.user_agent.startswith("aws-cli/2.18.17")
    assert ids.mfa is False
    assert ids.result == "success"
    assert "df00tech-atomic-test-user" in ids.target_keys


def test_aws_with_syslog_prefix_and_error_code() -> None:
    record = {**AWS_CREATE_USER, "errorCode": "AccessDenied", "errorMessage": "nope"}
    ids = extract(AWS, "CreateUser", "<14>Mar 11 16:00:00 cloudtrail " + json.dumps(record))
    assert ids.payload_ok and ids.result == "failure: AccessDenied"


def test_aws_admin_policy_grant() -> None:
    record = {
        "eventName": "AttachUserPolicy",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"},
        "requestParameters": {
            "userName": "svc-backup",
            "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
        },
    }
    ids = extract(AWS, "AttachUserPolicy", json.dumps(record))
    assert (
        ids.admin_grant and ids.granted.endswith("AdministratorAccess") and ids.target_account == "svc-backup"
    )
    inline = {
        "eventName": "PutUserPolicy",
        "requestParameters": {
            "userName": "svc-backup",
            "policyName": "p",
            "policyDocument": urllib.parse.quote(
                json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
            ),
        },
    }
    assert extract(AWS, "PutUserPolicy", json.dumps(inline)).admin_grant
    readonly = {
        "eventName": "AttachUserPolicy",
        "requestParameters": {
            "userName": "svc-backup",
            "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess",
        },
    }
    assert not extract(AWS, "AttachUserPolicy", json.dumps(readonly)).admin_grant


def test_entra_user_initiated_credentials() -> None:
    ids = extract(AZURE_AD, "Add service principal credentials", json.dumps(ENTRA_ADD_SP_CREDS))
    assert ids.actor == "alice@contoso.com"
    assert ids.actor_id == "aaaaaaaa-0000-0000-0000-000000000001"
    assert ids.actor_type == "User"
    assert ids.target_account == "backdoor-app" and ids.target_type == "ServicePrincipal"
    assert ids.target_id == "bbbbbbbb-0000-0000-0000-000000000002"
    assert ids.correlation_id == "11111111-2222-3333-4444-555555555555"
    assert ids.result == "success"
    assert ids.user_agent == "python-requests/2.31 AADInternals"
    assert ids.source_ip == "198.51.100.7"


def test_entra_app_initiated_uses_service_principal_id() -> None:
    ids = extract(AZURE_AD, "Add user", json.dumps(ENTRA_APP_INITIATED))
    assert ids.actor == "Managed Service Identity"
    assert ids.actor_id == "b981-sp-id"
    assert ids.actor_type == "ServicePrincipal"
    assert ids.target_account == "svc-new@contoso.onmicrosoft.com"


def test_entra_sentinel_pascal_case() -> None:
    record = {
        "OperationName": "Add user",
        "Result": "success",
        "CorrelationId": "c-9",
        "InitiatedBy": {"user": {"id": "u-7", "userPrincipalName": "bob@contoso.com"}},
        "TargetResources": [{"id": "t-1", "userPrincipalName": "new@contoso.com", "type": "User"}],
    }
    ids = extract(AZURE_AD, "Add user", json.dumps(record))
    assert (ids.actor_id, ids.target_account, ids.correlation_id) == ("u-7", "new@contoso.com", "c-9")


def test_entra_role_grant_names_the_role() -> None:
    record = {
        "operationName": "Add member to role",
        "properties": {
            "initiatedBy": {"user": {"id": "u-1", "userPrincipalName": "alice@contoso.com"}},
            "targetResources": [
                {
                    "id": "u-9",
                    "userPrincipalName": "new@contoso.com",
                    "type": "User",
                    "modifiedProperties": [
                        {"displayName": "Role.DisplayName", "newValue": '"Global Administrator"'}
                    ],
                }
            ],
        },
    }
    ids = extract(AZURE_AD, "Add member to role", json.dumps(record))
    assert ids.granted == "Global Administrator" and ids.admin_grant
    assert {"new@contoso.com", "u-9"} <= ids.target_keys


def test_o365_fields() -> None:
    ids = extract(OFFICE_365, "Add user.", json.dumps(O365_ADD_USER))
    assert ids.actor == "admin@contoso.onmicrosoft.com"
    assert ids.actor_id == "1003BFFD8EC47CA6@contoso.onmicrosoft.com"
    assert ids.target_account == "df00tech-test-user@contoso.onmicrosoft.com"
    assert ids.result == "Success"
    assert ids.user_agent == "Mozilla/5.0"
    assert ids.correlation_id == "corr-3"
    assert ids.source_ip == "198.51.100.7"


def test_gcp_service_account_creation() -> None:
    ids = extract(GCP, "google.iam.admin.v1.CreateServiceAccount", json.dumps(GCP_CREATE_SA))
    assert ids.actor == ids.actor_id == "mallory@example.com"
    assert ids.actor_type == "User"
    assert ids.target_account == "backdoor-sa@demo-project.iam.gserviceaccount.com"
    assert ids.target_id == "1099"
    assert ids.source_ip == "192.0.2.10"
    assert ids.user_agent.startswith("google-cloud-sdk")
    assert ids.result == "success"


def test_gcp_key_creation_targets_the_service_account() -> None:
    record = {
        "protoPayload": {
            "authenticationInfo": {"principalEmail": "ci@demo.iam.gserviceaccount.com"},
            "methodName": "google.iam.admin.v1.CreateServiceAccountKey",
            "request": {
                "name": "projects/-/serviceAccounts/backdoor-sa@demo-project.iam.gserviceaccount.com"
            },
            "response": {
                "name": "projects/demo/serviceAccounts/backdoor-sa@demo-project.iam.gserviceaccount.com"
                "/keys/k1"
            },
            "status": {"code": 7, "message": "PERMISSION_DENIED"},
        }
    }
    ids = extract(GCP, "google.iam.admin.v1.CreateServiceAccountKey", json.dumps(record))
    assert ids.actor_type == "ServiceAccount"
    assert ids.target_account == "backdoor-sa@demo-project.iam.gserviceaccount.com"
    assert ids.result == "failure: PERMISSION_DENIED"


NORMALIZED = {"actor": "fallback-user", "source_ip": "192.0.2.99", "target_account": "from-property"}


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "",
        "not json at all",
        "{",
        '{"userIdentity": ',
        "[1, 2, 3]",
        '{"userIdentity": "a string"}',
        '{"userIdentity": {"arn": {"nested": [1]}}, "requestParameters": ["x"]}',
        "{" * 5000 + "}" * 5000,
        b"\xff\xfe\x00garbage",
        '{"properties": {"targetResources": "oops"}}',
        '{"protoPayload": {"request": {"policy": {"bindings": "x"}}, "methodName": 5}}',
    ],
)
@pytest.mark.parametrize("platform", [AWS, AZURE_AD, OFFICE_365, GCP, None])
def test_malformed_payloads_degrade_to_normalized_fields(payload: object, platform: str | None) -> None:
    ids = extract(platform, "CreateUser", payload, NORMALIZED)  # type: ignore[arg-type]
    assert (ids.actor, ids.source_ip, ids.target_account) == ("fallback-user", "192.0.2.99", "from-property")


def test_missing_payload_uses_normalized_values_exactly() -> None:
    ids = extract(AWS, "CreateUser", None, NORMALIZED)
    assert not ids.payload_ok
    assert (ids.actor, ids.actor_id, ids.source_ip, ids.target_account) == (
        "fallback-user",
        "fallback-user",
        "192.0.2.99",
        "from-property",
    )


def test_hostile_strings_are_kept_as_text() -> None:
    record = dict(AWS_CREATE_USER, requestParameters={"userName": "<script>alert(1)</script>' OR 1=1 --"})
    ids = extract(AWS, "CreateUser", json.dumps(record))
    assert ids.target_account == "<script>alert(1)</script>' OR 1=1 --"


def test_helpers() -> None:
    assert parse_payload('prefix {"a": 1} trailing') == {"a": 1}
    assert dig({"UserIdentity": {"Session_Context": {"x": 1}}}, "userIdentity.sessionContext.x") == 1
    assert dig({"a": [{"b": 2}]}, "a.0.b") == 2 and dig({"a": [1]}, "a.5") is None
    assert base_name("Add user.") == "add user"
    assert base_name("google.iam.admin.v1.CreateServiceAccount") == "createserviceaccount"
    assert base_name("CreateUser") == "createuser"


_WHOLE = json.dumps(AWS_CREATE_USER)


@pytest.mark.parametrize(
    "payload",
    [
        _WHOLE,
        _WHOLE.encode(),
        "<13>Mar 11 16:00:00 host " + _WHOLE + " trailing text",
        _WHOLE[: len(_WHOLE) // 2],  # cut by QRadar's maximum payload length
        "<13>Mar 11 16:00:00 host not json at all",
        "[1, 2, 3]",
        '{"a": [1, 2}',
        '{"a":' * 50_000,  # nesting deeper than the decoder goes
        "   ",
        "",
        None,
    ],
    ids=[
        "object",
        "bytes",
        "syslog-prefix",
        "truncated",
        "text",
        "array",
        "broken",
        "deep",
        "blank",
        "empty",
        "none",
    ],
)
def test_extract_decodes_a_payload_once_and_agrees_with_payload_state(payload) -> None:
    # The refresher takes the state from extract's own decoding when it found an object (one decode per
    # payload); payload_state decides every other case, so both must agree on what is an object.
    ids = extract(AWS, "CreateUser", payload)
    assert ids.payload_parsed == (payload_state(payload) == PARSED)
