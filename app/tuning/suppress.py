"""Recompute ``detections.suppressed_by`` from the active entries.

Suppression never deletes: it only sets (or clears) the id of the entry that hides a detection. An entry
that expires, is disabled or removed stops matching, and the next ``apply`` brings its detections back.
Entries whose expiry has passed are marked ``expired`` here (audited once, by ``system``).

Chain-aware: a creation an entry matches is *not* hidden when it joined a chain in which another actor —
one no active entry allowlists — added credentials to the created identity or granted it privilege. Its
``suppressed_by`` stays empty and ``suppression_overridden_by`` names the entry, so the tab shows
"Suppression overridden: joined a chain". An event whose actor is unknown counts as another actor.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from typing import Any

from app import kinds
from app.store import tuning as store
from app.tuning.matcher import Matcher

SYSTEM_ACTOR = "system"
OVERRIDE_REASON = "suppression overridden: joined a chain"

_cache_lock = threading.Lock()
_matcher_cache: dict[str, tuple[int, Matcher]] = {}


def _db_key(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return str(row[2] or id(conn))


def expire_due(conn: sqlite3.Connection, now_ms: int) -> list[int]:
    """Mark entries past their expiry as expired, with one audit row each; returns their ids."""
    expired = []
    for entry in store.due_for_expiry(conn, now_ms):
        if store.update_entry(
            conn, entry["id"], entry["version"], {}, by=SYSTEM_ACTOR, now_ms=now_ms, status="expired"
        ):
            after = store.get_entry(conn, entry["id"])
            store.audit(
                conn,
                at_ms=now_ms,
                actor=SYSTEM_ACTOR,
                action="tuning.entry.expire",
                object_type=store.ENTRY_OBJECT,
                object_id=entry["id"],
                before=entry,
                after=after,
            )
            expired.append(entry["id"])
    return expired


def active_matcher(conn: sqlite3.Connection, now_ms: int) -> Matcher:
    """The compiled matcher for the active entries, rebuilt only when the entries changed.

    Entries whose expiry passed are excluded even before ``expire_due`` marks them (the SQL filters
    ``expires_at > now``), so the cache is keyed on the generation and the next expiry instant.
    """
    key = _db_key(conn)
    gen = store.generation(conn)
    with _cache_lock:
        cached = _matcher_cache.get(key)
    if cached is not None and cached[0] == gen and cached[1].built_at_ms <= now_ms < cached[1].valid_until_ms:
        return cached[1]
    matcher = Matcher(store.active_entries(conn, now_ms), built_at_ms=now_ms)
    with _cache_lock:
        _matcher_cache[key] = (gen, matcher)
    return matcher


def matcher_for_new_rows(conn: sqlite3.Connection, now_ms: int) -> Matcher:
    """The matcher that gives detections about to be inserted their ``suppressed_by`` (the refresher calls
    it once per page). Entries whose expiry has passed are marked expired first and the detections they
    suppressed are recomputed, as ``apply`` does. Runs in the caller's transaction."""
    expired = expire_due(conn, now_ms)
    if expired:
        apply(conn, now_ms, store.detections_suppressed_by(conn, expired))
    return active_matcher(conn, now_ms)


def apply(conn: sqlite3.Connection, now_ms: int, detection_ids: Iterable[int] | None = None) -> int:
    """Recompute ``suppressed_by`` for ``detection_ids`` (all detections when None); returns how many changed.

    Entries whose expiry has passed are marked expired first, and the detections they suppressed are
    recomputed too — whatever ``detection_ids`` says — so they come back at the expiry, not at the next
    entry change. Joins the caller's open transaction if there is one (the refresher commits it with its
    rows); otherwise commits its own.
    """
    owns_transaction = not conn.in_transaction
    try:
        expired = expire_due(conn, now_ms)
        if detection_ids is not None and expired:
            detection_ids = {*detection_ids, *store.detections_suppressed_by(conn, expired)}
        matcher = active_matcher(conn, now_ms)
        changed = 0
        for batch in store.iter_detections_for_matching(conn, detection_ids=detection_ids):
            matched = {d["id"]: matcher.match(d) if matcher.size else None for d in batch}
            overridden = _chain_overrides(
                conn, matcher, [d for d in batch if matched[d["id"]] and d["chain_id"]]
            )
            updates = []
            for detection in batch:
                entry_id = matched[detection["id"]]
                state = (None, entry_id) if detection["id"] in overridden else (entry_id, None)
                if state != (detection["suppressed_by"], detection["suppression_overridden_by"]):
                    updates.append((*state, detection["id"]))
            if updates:
                store.set_suppression(conn, updates)
                changed += len(updates)
    except BaseException:
        if owns_transaction and conn.in_transaction:
            conn.rollback()
        raise
    if owns_transaction and conn.in_transaction:
        conn.commit()
    return changed


# Follow-on events in a chain that give the new identity nothing: the invited guest accepting its own
# invitation (Entra / Office 365 spelling).
_NOT_GIVING = frozenset({"redeem external user invite"})


def _gives(event: dict[str, Any]) -> bool:
    """Did this chain event give an identity credentials or privilege? Grants and credentials do; context
    (an MFA device enrolled, a group created: `kinds.CONTEXT_ONLY_KINDS`) and an invitation's redemption
    do not."""
    kind = event["account_kind"]
    if kind in kinds.CONTEXT_ONLY_KINDS:
        return False
    if event["follow_on"]:
        return (event["event_name"] or "").rstrip(". ").casefold() not in _NOT_GIVING
    return kind in kinds.CREDENTIAL_KINDS


def _chain_overrides(conn: sqlite3.Connection, matcher: Matcher, matched: list[dict[str, Any]]) -> set[int]:
    """Ids of the ``matched`` detections (each matched by an entry, each in a chain) that another,
    non-allowlisted actor later gave credentials or privilege within their chain."""
    if not matched:
        return set()
    followers: dict[int, list[dict[str, Any]]] = {}
    for event in store.chain_followers(conn, (d["chain_id"] for d in matched)):
        followers.setdefault(event["chain_id"], []).append(event)
    overridden = set()
    for detection in matched:
        own_actor = (detection.get("actor_id") or "").casefold()
        for event in followers.get(detection["chain_id"], []):
            if event["detection_id"] == detection["id"] or event["event_time"] < detection["event_time"]:
                continue
            if not _gives(event):
                continue
            actor_id = (event["actor_id"] or "").casefold()
            if actor_id and actor_id == own_actor:
                continue  # the allowlisted actor finishing its own work
            as_detection = {
                "id": event["detection_id"] or 0,
                "event_time": event["event_time"],
                "cloud_platform": event["cloud_platform"],
                "account_kind": event["account_kind"] or "other",
                "actor": event["actor"],
                "actor_id": event["actor_id"],
                "target_account": event["target_account"],
                "target_id": event["target_id"],
                "source_ip": event["source_ip"],
                "user_agent": event["user_agent"],
            }
            if actor_id and matcher.size and matcher.match(as_detection):
                continue  # that actor is allowlisted too
            overridden.add(detection["id"])
            break
    return overridden
