"""Microsoft Azure Platform (log source type 413): Azure Activity Log records delivered through an Event
Hub (``resourceId`` under ``/SUBSCRIPTIONS/...``). Unrelated to account creation; it is here so that the
scenario has a second Azure feed whose names must not be mistaken for Entra ID operations.

Event name = ``operationName`` (``MICROSOFT.COMPUTE/VIRTUALMACHINES/START/ACTION``); username = the
caller's UPN claim (else its app id); log source = the subscription.
"""

from __future__ import annotations

from .common import (
    CREDENTIAL_ADDED,
    MANAGEMENT,
    PRIVILEGE_GRANTED,
    READ,
    TYPE_AZURE_PLATFORM,
    ActionClass,
    ParsedEvent,
    clean_ip,
    loose_str,
    opt_obj,
    parse_time_ms,
    req_event_name,
)

SOURCE = "azure_platform"
_UPN_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"


def looks_like(record: dict) -> bool:
    resource_id = record.get("resourceId")
    return (
        "operationName" in record
        and isinstance(resource_id, str)
        and resource_id.upper().startswith("/SUBSCRIPTIONS/")
    )


def action_for(operation: str) -> ActionClass:
    upper = operation.upper()
    if upper.endswith("/READ"):
        return READ
    if "ROLEASSIGNMENTS/WRITE" in upper:
        return PRIVILEGE_GRANTED
    if "/FEDERATEDIDENTITYCREDENTIALS/WRITE" in upper:
        return CREDENTIAL_ADDED  # a managed identity trusts an outside token issuer
    return MANAGEMENT


def parse(record: dict) -> ParsedEvent:
    operation = req_event_name(record, "operationName")
    time_ms = parse_time_ms(record.get("time"), "time")
    subscription = record["resourceId"].split("/")[2] or "unknown"
    claims = opt_obj(opt_obj(record, "identity"), "claims", "identity.")
    username = loose_str(claims.get(_UPN_CLAIM)) or loose_str(claims.get("appid"))
    result = str(record.get("resultType") or "").lower()
    return ParsedEvent(
        source=SOURCE,
        type_id=TYPE_AZURE_PLATFORM,
        log_source_name=f"Azure Platform @ {subscription}",
        event_name=operation,
        action=action_for(operation),
        time_ms=time_ms,
        username=username,
        sourceip=clean_ip(record.get("callerIpAddress")),
        record_id=loose_str(opt_obj(record, "properties").get("eventDataId") or record.get("correlationId")),
        failed=result == "failure",
    )
