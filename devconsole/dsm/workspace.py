"""Google Workspace / Cloud Identity admin activity (log source type 442, "Google G Suite" in IBM's pySigma
QRadar backend; the display name is UNCONFIRMED): Admin SDK Reports API ``activity`` records of the admin
application, as ``activities.list`` returns them (``kind: admin#reports#activity``).

Event name (QID name) = the activity's event ``name`` (``CREATE_USER``, ``ASSIGN_ROLE``). An activity may
carry several events; this console files it by its first (that QRadar's DSM does the same is UNCONFIRMED).
Username = ``actor.email``; source IP = ``ipAddress``. Log source = the customer (``id.customerId``).
"Account Name" = the event's ``USER_EMAIL`` parameter (the user created or granted something).
"""

from __future__ import annotations

from .common import (
    ACCOUNT_ADDED,
    ACCOUNT_CHANGED,
    ACCOUNT_REMOVED,
    GROUP_MEMBER_ADDED,
    LOGIN_SUCCEEDED,
    MANAGEMENT,
    PRIVILEGE_GRANTED,
    TYPE_GOOGLE_WORKSPACE,
    ActionClass,
    ParsedEvent,
    RecordError,
    clean_ip,
    loose_str,
    opt_list,
    opt_obj,
    opt_str,
    parse_time_ms,
    req_event_name,
    type_name,
)

SOURCE = "workspace"
KIND = "admin#reports#activity"

EVENT_ACTIONS: dict[str, ActionClass] = {
    "CREATE_USER": ACCOUNT_ADDED,
    "DELETE_USER": ACCOUNT_REMOVED,
    "SUSPEND_USER": ACCOUNT_CHANGED,
    "CHANGE_PASSWORD": ACCOUNT_CHANGED,
    "GRANT_ADMIN_PRIVILEGE": PRIVILEGE_GRANTED,
    "ASSIGN_ROLE": PRIVILEGE_GRANTED,
    "GRANT_DELEGATED_ADMIN_PRIVILEGES": PRIVILEGE_GRANTED,
    "ADD_PRIVILEGE": PRIVILEGE_GRANTED,
    "ADD_GROUP_MEMBER": GROUP_MEMBER_ADDED,
    "CREATE_ROLE": ACCOUNT_CHANGED,
    "login_success": LOGIN_SUCCEEDED,
}


def looks_like(record: dict) -> bool:
    if record.get("kind") == KIND:
        return True
    ident = record.get("id")
    return isinstance(ident, dict) and "applicationName" in ident and "events" in record


def parameter(event: dict, name: str) -> str | None:
    """A parameter's value (``value``, else the first of ``multiValue``); wrong shapes are ignored."""
    for p in opt_list(event, "parameters", "events[0]."):
        if isinstance(p, dict) and p.get("name") == name:
            value = p.get("value")
            if value is None and isinstance(p.get("multiValue"), list) and p["multiValue"]:
                value = p["multiValue"][0]
            return loose_str(value)
    return None


def parse(record: dict) -> ParsedEvent:
    ident = opt_obj(record, "id")
    events = opt_list(record, "events")
    if not events:
        raise RecordError("events must be a non-empty array (the admin activity's events)")
    first = events[0]
    if not isinstance(first, dict):
        raise RecordError(f"events[0] must be an object (got {type_name(first)})")
    event_name = req_event_name(first, "name", "events[0].")
    time_ms = parse_time_ms(ident.get("time"), "id.time")
    actor = opt_obj(record, "actor")
    customer = opt_str(ident, "customerId", "id.") or "unknown"
    return ParsedEvent(
        source=SOURCE,
        type_id=TYPE_GOOGLE_WORKSPACE,
        log_source_name=f"Google Workspace @ {customer}",
        event_name=event_name,
        action=EVENT_ACTIONS.get(event_name, MANAGEMENT),
        time_ms=time_ms,
        username=opt_str(actor, "email", "actor."),
        sourceip=clean_ip(record.get("ipAddress")),
        record_id=loose_str(ident.get("uniqueQualifier")),
        account_name=parameter(first, "USER_EMAIL"),
    )
