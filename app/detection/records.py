"""Ariel rows → detection and follow-on records: pure functions of a row and the cycle's configuration.

`event_key` is the exact de-duplication key every feature matches Ariel events by (the refresher when it
stores them, the offense sync and the Offense Summary fragment when they find stored detections again).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
    state = payload_state(row.get("payload"))
    outcome = outcome_of(ids, state, eventcount)
    if outcome is None:
        return None  # a failed creation created nothing (and is not the attack the chain rules mean)
    kind = classify.account_kind(platform, event_name)
    # Fail closed: kept, but never as a certain success.
    severity, confidence = cfg.base_severity, "medium" if outcome == SUCCESS else "low"
    payload = row.get("payload")
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", errors="replace")
    return {
        "event_key": event_key(row),
        "event_time": starttime,
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
    payload = row.get("payload")
    return {
        "event_key": event_key(row),
        "event_time": starttime,
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
