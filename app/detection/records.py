"""Ariel rows → detection and follow-on records: pure functions of a row and the cycle's configuration.

`event_key` is the exact de-duplication key every feature matches Ariel events by (the refresher when it
stores them, the offense sync and the Offense Summary fragment when they find stored detections again).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app import kinds
from app.detection import classify
from app.detection.extract import PARSED, Identifiers, extract, payload_state

if TYPE_CHECKING:
    from app.detection.config import DetectionConfig

MAX_PAYLOAD_CHARS = 256 * 1024


def event_key(row: Mapping[str, Any]) -> str:
    """Exact de-duplication key: sha256 of starttime, qid, logsourceid and payload."""
    payload = row.get("payload")
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", errors="replace")
    text = f"{row.get('starttime')}\x1f{row.get('qid')}\x1f{row.get('logsourceid')}\x1f{payload or ''}"
    return hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()


def as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def as_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# An event's own time is believed within these bounds of its receipt time: feeds arrive up to days late
# (a collector catching up) but never from the future beyond clock skew. Outside them it is a broken clock
# or a mis-parsed timestamp, and the receipt time is the better estimate.
DEVICE_TIME_MAX_LAG_MS = 7 * 86_400_000
DEVICE_TIME_MAX_LEAD_MS = 15 * 60_000


def device_time(row: Mapping[str, Any]) -> int | None:
    """The event's own time (Ariel ``devicetime``), or None when QRadar has none (0 or missing) or it is
    implausibly far from ``starttime``: chains and twin merges then fall back to ``starttime``, the
    receipt time."""
    value = as_int(row.get("devicetime"))
    received = as_int(row.get("starttime"))
    if value is None or value <= 0 or received is None:
        return None
    if not received - DEVICE_TIME_MAX_LAG_MS <= value <= received + DEVICE_TIME_MAX_LEAD_MS:
        return None
    return value


def failed(ids: Identifiers) -> bool:
    """The payload says the operation failed (AWS errorCode, Entra/O365 result, GCP status)."""
    return bool(ids.result and ids.result.strip().lower().startswith("fail"))


# What the stored record says about whether the creation happened.
SUCCESS, POSSIBLE_SUCCESS, UNKNOWN = "success", "possible_success", "unknown"
OUTCOMES = (SUCCESS, POSSIBLE_SUCCESS, UNKNOWN)


def outcome_of(ids: Identifiers, state: str, eventcount: int) -> str | None:
    """``success``; ``possible_success`` for a coalesced record whose kept (first) payload failed — the
    events counted with it may have succeeded; ``unknown`` when the payload cannot be read; None for a
    single event whose payload says it failed (nothing was created)."""
    if state != PARSED:
        return UNKNOWN
    if failed(ids):
        return POSSIBLE_SUCCESS if eventcount > 1 else None
    return SUCCESS


def build_detection(row: Mapping[str, Any], cfg: DetectionConfig, stored_at: int) -> dict[str, Any] | None:
    """A detection record from one Ariel row, or None if the row is not from one of our platforms."""
    starttime = as_int(row.get("starttime"))
    if starttime is None:
        return None
    platform = classify.platform_for(
        as_int(row.get("devicetype")), as_str(row.get("log_source_type")), cfg.type_ids
    )
    if platform is None:
        return None
    event_name = as_str(row.get("event_name")) or ""
    prop_target = as_str(row.get("target_account"))
    if prop_target and prop_target.upper() == "HIDDEN_DUE_TO_SECURITY_REASONS":
        prop_target = None  # CloudTrail's placeholder for a field it does not log: no name at all
    ids = extract(
        platform,
        event_name,
        row.get("payload"),
        {"actor": row.get("actor"), "source_ip": row.get("source_ip")},
    )
    # The custom property is authoritative when the console fills it; the payload is the fallback.
    if prop_target:
        ids.target_keys.add(prop_target.lower())
        ids.target_account = prop_target
    elif not cfg.payload_fallback:
        ids.target_account = None
    eventcount = max(1, as_int(row.get("eventcount")) or 1)
    state = PARSED if ids.payload_parsed else payload_state(row.get("payload"))
    outcome = outcome_of(ids, state, eventcount)
    if outcome is None:
        return None  # a failed creation created nothing (and is not the attack the chain rules mean)
    kind = classify.account_kind(platform, event_name, ids)
    refined = classify.refine_kind(platform, event_name, kind, ids)
    if refined is None:
        if state == PARSED:
            return None  # collected for what its payload may hold (federated credentials), and it holds none
        # Fail closed: an unreadable payload may hide what it was collected for (a padded "Update
        # application" cut before its federated credential): kept as that kind, outcome unknown.
    else:
        kind = refined
    if kind in kinds.CONTEXT_ONLY_KINDS:
        # Recorded for chains and the detail panel, never raised: stored as a follow-on event with its kind.
        return follow_on_record(row, platform, event_name, ids, stored_at, context_kind=kind)
    if kind == "service_user" and not cfg.aws_non_iam_users:
        return None
    # Fail closed: kept, but never as a certain success.
    severity = kinds.severity_for(kind, cfg.base_severity)
    confidence = "medium" if outcome == SUCCESS else "low"
    payload = row.get("payload")
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", errors="replace")
    return {
        "event_key": event_key(row),
        "event_time": starttime,
        "device_time": device_time(row),
        "event_name": event_name,
        "event_category": as_str(row.get("event_category")),
        "log_source": as_str(row.get("log_source")),
        "log_source_type": as_str(row.get("log_source_type")),
        "qid": as_int(row.get("qid")),
        "cloud_platform": platform,
        "is_service_account": classify.is_service_account(kind, ids),
        "account_kind": kind,
        "actor": ids.actor,
        "actor_id": ids.actor_id,
        "actor_type": ids.actor_type,
        "target_account": ids.target_account,
        "target_id": ids.target_id,
        "target_type": ids.target_type,
        "source_ip": ids.source_ip,
        "user_agent": ids.user_agent,
        "correlation_id": ids.correlation_id,
        "result": ids.result,
        "mfa": ids.mfa,
        "magnitude": as_int(row.get("magnitude")),
        "severity": severity,
        "confidence": confidence,
        "base_severity": severity,
        "base_confidence": confidence,
        "also_seen_in": [],
        "target_keys": sorted(ids.target_keys),
        "payload": payload[:MAX_PAYLOAD_CHARS] if isinstance(payload, str) else None,
        "payload_ok": ids.payload_ok,
        "stored_at": stored_at,
        "eventcount": eventcount,
        "payload_state": state,
        "outcome": outcome,
    }


def build_follow_on(row: Mapping[str, Any], cfg: DetectionConfig, stored_at: int) -> dict[str, Any] | None:
    starttime = as_int(row.get("starttime"))
    platform = classify.platform_for(
        as_int(row.get("devicetype")), as_str(row.get("log_source_type")), cfg.type_ids
    )
    if starttime is None or platform is None:
        return None
    event_name = as_str(row.get("event_name")) or ""
    ids: Identifiers = extract(
        platform,
        event_name,
        row.get("payload"),
        {
            "actor": row.get("actor"),
            "source_ip": row.get("source_ip"),
            "target_account": row.get("target_account"),
        },
    )
    # A cut or unreadable payload is kept on its normalized fields (actor, target custom property); a
    # failed payload standing for several coalesced events may hide the one that worked.
    if failed(ids) and (as_int(row.get("eventcount")) or 1) <= 1:
        return None
    return follow_on_record(row, platform, event_name, ids, stored_at)


def follow_on_record(
    row: Mapping[str, Any],
    platform: str,
    event_name: str,
    ids: Identifiers,
    stored_at: int,
    *,
    context_kind: str | None = None,
) -> dict[str, Any]:
    """A follow-on event record; `context_kind` marks a context-only creation (`kinds.CONTEXT_ONLY_KINDS`),
    which the refresher stores with the follow-on events instead of the detections."""
    payload = row.get("payload")
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", errors="replace")
    return {
        "context_only": context_kind is not None,
        "account_kind": context_kind,
        "aws_learned": ids.aws_learned,
        "policy_ref": ids.policy_ref,
        "group_ref": ids.group_ref,
        "event_key": event_key(row),
        "event_time": as_int(row.get("starttime")),
        "device_time": device_time(row),
        "event_name": event_name,
        "cloud_platform": platform,
        "log_source": as_str(row.get("log_source")),
        "actor": ids.actor,
        "actor_id": ids.actor_id,
        "target_account": ids.target_account,
        "target_keys": sorted(ids.target_keys),
        "correlation_id": ids.correlation_id,
        "granted": ids.granted,
        "admin_grant": ids.admin_grant,
        "source_ip": ids.source_ip,
        "payload": payload[:MAX_PAYLOAD_CHARS] if isinstance(payload, str) else None,
        "stored_at": stored_at,
    }
