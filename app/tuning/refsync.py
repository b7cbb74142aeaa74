"""Keep a QRadar reference set (and a reference map) in step with the active entries, through the gateway.

* Set (element type ``ALN``): the actor IDs of active entries that mean exactly "this actor" — an exact
  actor ID and no other condition — so QRadar rules and building blocks can test
  ``REFERENCESETCONTAINS('<set>', <actor id property>)`` and allowlist no more than the app does.
* Map (``ALN``): the same actor IDs → ``expires=<ISO>; entries=<ids>; ticket=…; justification=…`` for
  analysts and rule authors.
* Entries narrowed by any other condition (source CIDRs, user agent, time window, target, an actor
  pattern, the invoking service) are **not mirrored**: a set holds bare IDs, so a rule using it would
  allowlist the actor everywhere. `mirror(entry)` says so with the conditions, the drift report lists
  them (``not_mirrored``), and the tuning page shows it per entry.
* TTL: QRadar's TTL is per collection, not per element, so both collections are created with
  ``time_to_live`` = the longest an entry may live (365 days, ``FIRST_SEEN``) as a backstop if the app
  stops; the app itself removes an actor ID the moment its last entry expires, is disabled or deleted.
  Values carry their exact expiry in the map. (Per-element TTL in the 26.0 collections API is UNCONFIRMED.)

``drift`` compares what QRadar holds with what it should; ``sync`` fixes the difference and records it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from app import settings
from app.qradar import QRadarError, QRadarUnavailable
from app.store import tuning as store

COLLECTION_TTL = "365 days"
TIMEOUT_TYPE = "FIRST_SEEN"
MAP_VALUE_MAX = 255
RESYNC_INTERVAL_MS = 3_600_000


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Conditions that narrow an entry below "this actor": such an entry is not mirrored.
NARROWING = (
    ("actor_pattern", "actor pattern"),
    ("source_service", "invoking service"),
    ("source_cidrs", "source subnets"),
    ("ua_pattern", "user agent"),
    ("window", "time window"),
    ("target_pattern", "target pattern"),
    ("target_type", "target type"),
)


def narrowing(entry: Mapping[str, Any]) -> list[str]:
    """The conditions (labels) besides the exact actor ID that narrow ``entry``."""
    return [label for key, label in NARROWING if entry.get(key)]


def mirrors_exactly(entry: Mapping[str, Any]) -> bool:
    """Whether the entry means exactly "this actor": an exact actor ID and no narrowing condition."""
    return bool(entry.get("actor_id")) and not narrowing(entry)


def mirror(entry: Mapping[str, Any], reference_set: str, now_ms: int) -> dict[str, Any]:
    """Whether and why ``entry`` is (not) in QRadar's allowlist reference set (shown with every entry)."""
    if not mirrors_exactly(entry):
        conditions = narrowing(entry) or ["no exact actor ID"]
        return {
            "mirrored": False,
            "reason": "not mirrored to QRadar: narrowed by " + ", ".join(conditions) + " — a reference set "
            "holds bare actor IDs, so a QRadar rule using it would allowlist more than this entry does",
        }
    active = entry["status"] == "active" and entry.get("enabled") and entry["expires_at"] > now_ms
    if not active:
        return {"mirrored": False, "reason": f"not mirrored: only active entries are in {reference_set}"}
    return {"mirrored": True, "reason": f"mirrored: its actor ID is in the reference set {reference_set}"}


def not_mirrored(conn: sqlite3.Connection, now_ms: int) -> list[dict[str, Any]]:
    """Active entries kept out of the reference set, with the conditions that narrow them."""
    return [
        {"entry_id": e["id"], "conditions": narrowing(e) or ["no exact actor ID"]}
        for e in store.active_entries(conn, now_ms)
        if not mirrors_exactly(e)
    ]


def desired(conn: sqlite3.Connection, now_ms: int) -> dict[str, str]:
    """actor ID → map value, for every active entry that means exactly "this actor" (several entries for
    one ID: latest expiry). Narrowed entries are left out (see the module docstring)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for entry in store.active_entries(conn, now_ms):
        if mirrors_exactly(entry):
            grouped.setdefault(entry["actor_id"], []).append(entry)
    values = {}
    for actor_id, entries in grouped.items():
        latest = max(entries, key=lambda e: e["expires_at"])
        parts = [
            f"expires={_iso(latest['expires_at'])}",
            "entries=" + ",".join(str(e["id"]) for e in entries),
        ]
        if latest["ticket"]:
            parts.append(f"ticket={latest['ticket']}")
        parts.append(f"justification={latest['justification']}")
        values[actor_id] = "; ".join(parts)[:MAP_VALUE_MAX]
    return values


def collection_names(conn: sqlite3.Connection) -> dict[str, str]:
    """The reference set and map names (admin settings)."""
    return {
        "reference_set": settings.get("reference_set_name", conn=conn),
        "reference_map": settings.get("reference_map_name", conn=conn),
    }


def _set_values(gateway: Any, name: str) -> set[str]:
    body = gateway.get_reference_set(name)
    return {str(item.get("value")) for item in body.get("data") or []}


def _map_values(gateway: Any, name: str) -> dict[str, str]:
    body = gateway.get_reference_map(name)
    data = body.get("data") or {}
    if isinstance(data, Mapping):  # QRadar: {"key": {"value": ..., "source": ...}}
        return {str(k): str(v.get("value") if isinstance(v, Mapping) else v) for k, v in data.items()}
    return {str(item.get("key")): str(item.get("value")) for item in data}  # list form


def _missing(exc: QRadarError) -> bool:
    return exc.http_status == 404


def drift(conn: sqlite3.Connection, gateway: Any, now_ms: int) -> dict[str, Any]:
    """What QRadar holds versus what it should (read-only)."""
    names = collection_names(conn)
    want = desired(conn, now_ms)
    report: dict[str, Any] = {
        "reference_set": names["reference_set"],
        "reference_map": names["reference_map"],
        "expected": len(want),
        "not_mirrored": not_mirrored(conn, now_ms),
    }
    try:
        have_set = _set_values(gateway, names["reference_set"])
        report["set_exists"] = True
    except QRadarError as exc:
        if not _missing(exc):
            raise
        have_set, report["set_exists"] = set(), False
    try:
        have_map = _map_values(gateway, names["reference_map"])
        report["map_exists"] = True
    except QRadarError as exc:
        if not _missing(exc):
            raise
        have_map, report["map_exists"] = {}, False
    report["missing_in_qradar"] = sorted(set(want) - have_set)
    report["unexpected_in_qradar"] = sorted(have_set - set(want))
    report["map_missing"] = sorted(set(want) - set(have_map))
    report["map_unexpected"] = sorted(set(have_map) - set(want))
    report["map_outdated"] = sorted(k for k in set(want) & set(have_map) if have_map[k] != want[k])
    report["in_sync"] = (
        report["set_exists"]
        and report["map_exists"]
        and not any(
            report[k]
            for k in (
                "missing_in_qradar",
                "unexpected_in_qradar",
                "map_missing",
                "map_unexpected",
                "map_outdated",
            )
        )
    )
    return report


def sync(conn: sqlite3.Connection, gateway: Any, now_ms: int) -> dict[str, Any]:
    """Make QRadar match the active entries; records the outcome (never raises for QRadar faults)."""
    names = collection_names(conn)
    generation = store.generation(conn)
    try:
        before = drift(conn, gateway, now_ms)
        if not before["set_exists"]:
            _create(
                gateway.create_reference_set,
                names["reference_set"],
                "ALN",
                time_to_live=COLLECTION_TTL,
                timeout_type=TIMEOUT_TYPE,
            )
        if not before["map_exists"]:
            _create(
                gateway.create_reference_map,
                names["reference_map"],
                "ALN",
                key_label="actor_id",
                value_label="allowlist",
                time_to_live=COLLECTION_TTL,
                timeout_type=TIMEOUT_TYPE,
            )
        want = desired(conn, now_ms)
        if before["missing_in_qradar"]:
            gateway.bulk_load_reference_set(names["reference_set"], before["missing_in_qradar"])
        for value in before["unexpected_in_qradar"]:
            _ignore_404(gateway.delete_reference_set_value, names["reference_set"], value)
        have_map = _map_values(gateway, names["reference_map"]) if before["map_exists"] else {}
        for key in [*before["map_unexpected"], *before["map_outdated"]]:
            # Another worker's sync may have removed the key since `before` was read.
            if key in have_map:
                _ignore_404(gateway.delete_reference_map_value, names["reference_map"], key, have_map[key])
        load = {k: want[k] for k in [*before["map_missing"], *before["map_outdated"]]}
        if load:
            gateway.bulk_load_reference_map(names["reference_map"], load)
        after = drift(conn, gateway, now_ms)
        outcome = {
            "status": "ok",
            "before": before,
            "after": after,
            "added": len(before["missing_in_qradar"]),
            "removed": len(before["unexpected_in_qradar"]),
        }
        store.set_refsync_state(
            conn,
            now_ms=now_ms,
            status="ok" if after["in_sync"] else "error",
            error=None if after["in_sync"] else "still drifting after sync",
            details={k: outcome[k] for k in ("added", "removed")}
            | {"in_sync": after["in_sync"], "generation": generation},
        )
        return outcome
    except (QRadarError, QRadarUnavailable) as exc:
        message = str(exc) or exc.__class__.__name__
        store.set_refsync_state(conn, now_ms=now_ms, status="error", error=message[:1000], details={})
        return {"status": "error", "error": message}


def sync_if_due(
    conn: sqlite3.Connection, gateway: Any, now_ms: int, max_age_ms: int = RESYNC_INTERVAL_MS
) -> dict[str, Any] | None:
    """For the refresher's cycle: sync when the active entries changed since the last successful sync
    (an entry expired, was approved, disabled, …), when the last sync failed, or hourly (to repair drift
    made in QRadar). Returns the outcome, or None when nothing was due. Commits its state row."""
    state = store.get_refsync_state(conn)
    due = (
        state["last_status"] != "ok"
        or state["details"].get("generation") != store.generation(conn)
        or now_ms - int(state["last_sync_ms"] or 0) >= max_age_ms
    )
    if not due:
        return None
    outcome = sync(conn, gateway, now_ms)
    if conn.in_transaction:
        conn.commit()
    return outcome


def _create(create: Any, name: str, element_type: str, **kwargs: Any) -> None:
    try:
        create(name, element_type, **kwargs)
    except QRadarError as exc:
        if exc.http_status != 409:  # 409/1004: created meanwhile
            raise


def _ignore_404(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except QRadarError as exc:
        if exc.http_status != 404:
            raise
