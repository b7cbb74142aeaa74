"""Microsoft Office 365 Management Activity API (log source type 397): Unified Audit Log records of any
workload; the AzureActiveDirectory workload carries the account operations.

Event name (QID name) = ``Operation`` as written, trailing period included (``Add user.``). Username =
``UserId``. Source IP = ``ActorIpAddress``, else ``ClientIP`` (often empty for the AAD workload; which
one QRadar's DSM reads is UNCONFIRMED). Log source = the organization (tenant). "Account Name" =
``ObjectId``, else the first UPN-typed (``Type: 5``) entry of ``Target``.
"""

from __future__ import annotations

from .common import (
    LOGIN_SUCCEEDED,
    MANAGEMENT,
    READ,
    TYPE_OFFICE_365,
    ParsedEvent,
    clean_ip,
    loose_str,
    microsoft_action,
    opt_list,
    opt_str,
    parse_time_ms,
    req_event_name,
)

SOURCE = "o365"
_FAILED_STATUSES = {"failed", "failure", "false"}


def looks_like(record: dict) -> bool:
    has_kind = "Workload" in record or "RecordType" in record
    return has_kind and ("Operation" in record or "CreationTime" in record)


def account_name_of(record: dict) -> str | None:
    object_id = record.get("ObjectId")
    if isinstance(object_id, str) and object_id:
        return object_id
    for target in opt_list(record, "Target"):
        if isinstance(target, dict) and target.get("Type") == 5 and isinstance(target.get("ID"), str):
            return target["ID"]
    return None


def parse(record: dict) -> ParsedEvent:
    event_name = req_event_name(record, "Operation")
    time_ms = parse_time_ms(record.get("CreationTime"), "CreationTime")
    org = opt_str(record, "OrganizationId") or "unknown"
    action = microsoft_action(event_name)
    status = str(record.get("ResultStatus") or "").lower()
    return ParsedEvent(
        source=SOURCE,
        type_id=TYPE_OFFICE_365,
        log_source_name=f"Office 365 @ {org}",
        event_name=event_name,
        action=action,
        time_ms=time_ms,
        username=opt_str(record, "UserId"),
        sourceip=clean_ip(record.get("ActorIpAddress") or record.get("ClientIP")),
        record_id=loose_str(record.get("Id")),
        account_name=None if action in (READ, MANAGEMENT, LOGIN_SUCCEEDED) else account_name_of(record),
        failed=status in _FAILED_STATUSES,
    )
