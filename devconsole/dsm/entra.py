"""Microsoft Entra ID / Azure AD (log source type 445), diagnostic-settings / Event Hub shape: audit
records (``category: AuditLogs``) and sign-in records (``SignInLogs`` and its siblings).

Event name (QID name) = ``operationName`` exactly as written (en dash and any trailing space kept, as a
DSM maps the string it receives). Username = the initiator: ``initiatedBy.user.userPrincipalName``, else
the initiating app's display name. Log source = the tenant. "Account Name" = the target's UPN (else its
display name) for account-management operations.
"""

from __future__ import annotations

from .common import (
    LOGIN_FAILED,
    LOGIN_SUCCEEDED,
    MANAGEMENT,
    READ,
    TYPE_AZURE_AD,
    ParsedEvent,
    RecordError,
    clean_ip,
    loose_str,
    microsoft_action,
    opt_list,
    opt_obj,
    opt_str,
    parse_time_ms,
    req_event_name,
    type_name,
)

AUDIT_SOURCE = "entra_audit"
SIGNIN_SOURCE = "entra_signin"
AUDIT_CATEGORIES = {"auditlogs"}
SIGNIN_CATEGORIES = {
    "signinlogs",
    "noninteractiveusersigninlogs",
    "serviceprincipalsigninlogs",
    "managedidentitysigninlogs",
}


def looks_like(record: dict) -> bool:
    category = record.get("category")
    if isinstance(category, str) and category.lower() in AUDIT_CATEGORIES | SIGNIN_CATEGORIES:
        return True
    resource_id = record.get("resourceId")
    return (
        "operationName" in record
        and isinstance(resource_id, str)
        and "/providers/microsoft.aadiam" in resource_id.lower()
    )


def tenant_of(record: dict) -> str:
    tenant = opt_str(record, "tenantId")
    if tenant:
        return tenant
    resource_id = record.get("resourceId")
    if isinstance(resource_id, str) and resource_id.lower().startswith("/tenants/"):
        return resource_id.split("/")[2] or "unknown"
    return "unknown"


def initiator(properties: dict) -> tuple[str | None, str | None]:
    """(username, ip) of whoever initiated an audit operation."""
    initiated = opt_obj(properties, "initiatedBy", "properties.")
    user = opt_obj(initiated, "user", "properties.initiatedBy.")
    if user:
        name = opt_str(user, "userPrincipalName", "initiatedBy.user.") or opt_str(
            user, "displayName", "initiatedBy.user."
        )
        return name, opt_str(user, "ipAddress", "initiatedBy.user.")
    app = opt_obj(initiated, "app", "properties.initiatedBy.")
    if app:
        name = opt_str(app, "displayName", "initiatedBy.app.") or opt_str(
            app, "servicePrincipalName", "initiatedBy.app."
        )
        return name, None
    return None, None


def target_account(properties: dict) -> str | None:
    targets = opt_list(properties, "targetResources", "properties.")
    for target in targets:
        if not isinstance(target, dict):
            raise RecordError(f"properties.targetResources[] must hold objects (got {type_name(target)})")
    for target in targets:
        upn = target.get("userPrincipalName")
        if isinstance(upn, str) and upn:
            return upn
    for target in targets:
        if target.get("type") == "Role":
            continue
        name = target.get("displayName")
        if isinstance(name, str) and name:
            return name
    return None


def parse(record: dict) -> ParsedEvent:
    event_name = req_event_name(record, "operationName")
    properties = opt_obj(record, "properties")
    category = str(record.get("category") or "").lower()
    # devicetime: an audit record's own activityDateTime (the Event Hub envelope's `time` repeats it)
    own_time = properties.get("activityDateTime") if category in AUDIT_CATEGORIES else None
    time_value = (
        own_time
        or record.get("time")
        or properties.get("activityDateTime")
        or properties.get("createdDateTime")
    )
    time_ms = parse_time_ms(time_value, "time")
    tenant = tenant_of(record)
    if category in SIGNIN_CATEGORIES:
        status = opt_obj(properties, "status", "properties.")
        error_code = status.get("errorCode", 0)
        failed = error_code not in (0, "0", None)
        username = opt_str(properties, "userPrincipalName", "properties.") or opt_str(
            properties, "servicePrincipalName", "properties."
        )
        ip = record.get("callerIpAddress") or properties.get("ipAddress")
        return ParsedEvent(
            source=SIGNIN_SOURCE,
            type_id=TYPE_AZURE_AD,
            log_source_name=f"Azure AD @ {tenant}",
            event_name=event_name,
            action=LOGIN_FAILED if failed else LOGIN_SUCCEEDED,
            time_ms=time_ms,
            username=username,
            sourceip=clean_ip(ip),
            record_id=loose_str(properties.get("id")),
            failed=failed,
        )
    action = microsoft_action(event_name)
    username, initiator_ip = initiator(properties)
    result = str(properties.get("result") or record.get("resultType") or "success").lower()
    account = None if action in (READ, MANAGEMENT, LOGIN_SUCCEEDED) else target_account(properties)
    return ParsedEvent(
        source=AUDIT_SOURCE,
        type_id=TYPE_AZURE_AD,
        log_source_name=f"Azure AD @ {tenant}",
        event_name=event_name,
        action=action,
        time_ms=time_ms,
        username=username,
        sourceip=clean_ip(record.get("callerIpAddress") or initiator_ip),
        record_id=loose_str(properties.get("id")),
        account_name=account,
        failed=result not in ("success", "0"),
    )
