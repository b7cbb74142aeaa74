"""Recompute ``detections.suppressed_by`` from the active entries.

Suppression never deletes: it only sets (or clears) the id of the entry that hides a detection. An entry
that expires, is disabled or removed stops matching, and the next ``apply`` brings its detections back.
Entries whose expiry has passed are marked ``expired`` here (audited once, by ``system``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable

from app.store import tuning as store
from app.tuning.matcher import Matcher

SYSTEM_ACTOR = "system"

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
            updates = []
            for detection in batch:
                entry_id = matcher.match(detection) if matcher.size else None
                if entry_id != detection["suppressed_by"]:
                    updates.append((entry_id, detection["id"]))
            if updates:
                store.set_suppressed_by(conn, updates)
                changed += len(updates)
    except BaseException:
        if owns_transaction and conn.in_transaction:
            conn.rollback()
        raise
    if owns_transaction and conn.in_transaction:
        conn.commit()
    return changed
