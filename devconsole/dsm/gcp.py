"""Google Cloud audit logs (log source type 449, "Google Cloud Audit" in IBM's pySigma QRadar backend; the
display name is UNCONFIRMED): Cloud Logging ``LogEntry`` records whose ``protoPayload`` is an ``AuditLog``.

Event name (QID name) = ``protoPayload.methodName`` as written (``google.iam.admin.v1.CreateServiceAccount``,
``google.iam.admin.v1.IAM.CreateServiceAccount``, ``google.cloud.resourcemanager.v3.Projects.SetIamPolicy``);
it is filed by its last part.
Username = ``authenticationInfo.principalEmail``; source IP = ``requestMetadata.callerIp`` (GCP writes
``private``/``gce-internal-ip`` for internal callers: no IP then). Log source = the project.
"Account Name" = the service account's e-mail for IAM service-account operations.
"""

from __future__ import annotations

from .common import (
    ACCOUNT_ADDED,
    ACCOUNT_CHANGED,
    ACCOUNT_REMOVED,
    CREDENTIAL_ADDED,
    PRIVILEGE_GRANTED,
    TYPE_GCP,
    ActionClass,
    ParsedEvent,
    RecordError,
    clean_ip,
    loose_str,
    opt_obj,
    opt_str,
    parse_time_ms,
    req_event_name,
    verb_action,
)

SOURCE = "gcp"

VERB_ACTIONS: dict[str, ActionClass] = {
    "CreateServiceAccount": ACCOUNT_ADDED,
    "CreateServiceAccountKey": CREDENTIAL_ADDED,
    "UploadServiceAccountKey": CREDENTIAL_ADDED,
    "DeleteServiceAccount": ACCOUNT_REMOVED,
    "DeleteServiceAccountKey": ACCOUNT_CHANGED,
    "DisableServiceAccount": ACCOUNT_CHANGED,
    "PatchServiceAccount": ACCOUNT_CHANGED,
    "SetIamPolicy": PRIVILEGE_GRANTED,
    "SetIAMPolicy": PRIVILEGE_GRANTED,
}


def looks_like(record: dict) -> bool:
    return "protoPayload" in record


def action_for(method: str) -> ActionClass:
    """``google.iam.admin.v1.CreateServiceAccount`` is filed by its last part, the verb."""
    return verb_action(method.rsplit(".", 1)[-1], VERB_ACTIONS)


def project_of(record: dict) -> str:
    labels = opt_obj(opt_obj(record, "resource"), "labels", "resource.")
    project = labels.get("project_id")
    if isinstance(project, str) and project:
        return project
    log_name = record.get("logName")
    if isinstance(log_name, str) and log_name.startswith("projects/"):
        return log_name.split("/")[1]
    return "unknown"


def service_account_of(proto: dict) -> str | None:
    """The service account an IAM admin call created or acted on, as its e-mail."""
    response = opt_obj(proto, "response", "protoPayload.")
    email = response.get("email")
    if isinstance(email, str) and email:
        return email
    for source in (response.get("name"), proto.get("resourceName")):
        if isinstance(source, str) and "/serviceAccounts/" in source:
            return source.split("/serviceAccounts/", 1)[1].split("/", 1)[0]
    return None


def parse(record: dict) -> ParsedEvent:
    proto = record.get("protoPayload")
    if not isinstance(proto, dict):
        raise RecordError("protoPayload must be an object")
    method = req_event_name(proto, "methodName", "protoPayload.")
    time_ms = parse_time_ms(record.get("timestamp") or record.get("receiveTimestamp"), "timestamp")
    auth = opt_obj(proto, "authenticationInfo", "protoPayload.")
    metadata = opt_obj(proto, "requestMetadata", "protoPayload.")
    status = opt_obj(proto, "status", "protoPayload.")
    action = action_for(method)
    account = None
    if action in (ACCOUNT_ADDED, CREDENTIAL_ADDED, ACCOUNT_REMOVED, ACCOUNT_CHANGED):
        account = service_account_of(proto)
    return ParsedEvent(
        source=SOURCE,
        type_id=TYPE_GCP,
        log_source_name=f"Google Cloud Audit @ {project_of(record)}",
        event_name=method,
        action=action,
        time_ms=time_ms,
        username=opt_str(auth, "principalEmail", "protoPayload.authenticationInfo."),
        sourceip=clean_ip(metadata.get("callerIp")),
        record_id=loose_str(record.get("insertId")),
        account_name=account,
        failed=status.get("code") not in (None, 0),
    )
