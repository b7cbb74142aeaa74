"""Unrelated events in bulk: sign-ins, reads, other services and failed attempts, streamed in time order."""

from __future__ import annotations

import time
from collections.abc import Iterator

from .facts import DEFAULT_SEED, GCP_PROJECT, HOUR_MS, TENANT_DOMAIN, UA_BOTO3_SCRIPT, UA_CONSOLE
from .feeds import Builder

NOISE_SPAN_MS = 48 * HOUR_MS

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


def noise_records(builder: Builder, count: int, span_ms: int = NOISE_SPAN_MS) -> Iterator[tuple[int, dict]]:
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
    builder = Builder(seed, int(time.time() * 1000) if now_ms is None else now_ms)
    return (record for _time, record in noise_records(builder, count))
