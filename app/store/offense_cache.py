"""All SQL for the Offense Summary fragment's per-offense cache (migration 0004).

A row is 'searching' while its one Ariel search runs (``search_id``), 'done' with the offense's
cloud-account-creation events in ``rows`` (JSON), or 'error'. Functions commit their own writes: each is
one small unit of work done while the fragment answers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.store.db import transaction


def get(conn: sqlite3.Connection, offense_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM offense_cache WHERE offense_id = ?", (offense_id,)).fetchone()
    if row is None:
        return None
    out = dict(row)
    try:
        out["rows"] = json.loads(row["rows"] or "[]")
    except ValueError:
        out["rows"] = []
    return out


def start(
    conn: sqlite3.Connection,
    offense_id: int,
    *,
    search_id: str,
    offense_start: int | None,
    offense_updated: int | None,
    now_ms: int,
) -> None:
    """Record that a search for the offense is running (replaces any earlier answer)."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO offense_cache (offense_id, status, search_id, offense_start, offense_updated, rows,"
            " error, started_at, finished_at, checked_at) VALUES (?, 'searching', ?, ?, ?, '[]', NULL, ?,"
            " NULL, ?) ON CONFLICT (offense_id) DO UPDATE SET status = 'searching',"
            " search_id = excluded.search_id, offense_start = excluded.offense_start,"
            " offense_updated = excluded.offense_updated, rows = '[]', error = NULL,"
            " started_at = excluded.started_at, finished_at = NULL, checked_at = excluded.checked_at",
            (offense_id, search_id, offense_start, offense_updated, now_ms, now_ms),
        )


def finish(conn: sqlite3.Connection, offense_id: int, rows: Sequence[Mapping[str, Any]], now_ms: int) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE offense_cache SET status = 'done', search_id = NULL, rows = ?, error = NULL,"
            " finished_at = ?, checked_at = ? WHERE offense_id = ?",
            (json.dumps(list(rows), separators=(",", ":")), now_ms, now_ms, offense_id),
        )


def fail(conn: sqlite3.Connection, offense_id: int, message: str, now_ms: int) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE offense_cache SET status = 'error', search_id = NULL, error = ?, finished_at = ?,"
            " checked_at = ? WHERE offense_id = ?",
            (message[:500], now_ms, now_ms, offense_id),
        )


def touch(conn: sqlite3.Connection, offense_id: int, now_ms: int) -> None:
    with transaction(conn):
        conn.execute("UPDATE offense_cache SET checked_at = ? WHERE offense_id = ?", (now_ms, offense_id))


def purge_older_than(conn: sqlite3.Connection, cutoff_ms: int) -> int:
    """Drop answers not looked at since `cutoff_ms` (offenses nobody opens any more); returns how many."""
    with transaction(conn):
        return conn.execute("DELETE FROM offense_cache WHERE checked_at < ?", (cutoff_ms,)).rowcount


def forget(conn: sqlite3.Connection, offense_id: int) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM offense_cache WHERE offense_id = ?", (offense_id,))


_DETECTION_FIELDS = ", ".join(
    "d." + c
    for c in (
        "id",
        "event_time",
        "event_name",
        "cloud_platform",
        "actor",
        "actor_id",
        "target_account",
        "target_id",
        "is_service_account",
        "account_kind",
        "chain_id",
        "chain_kind",
        "severity",
        "confidence",
        "suppressed_by",
        "triage_status",
    )
)


def detections_for_event_keys(conn: sqlite3.Connection, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Stored detections for Ariel events given by event key (``app.detection.records.event_key``).

    ``detection_events`` holds every event merged into a detection — its own and its twins in other
    feeds — so an offense built on the Office 365 copy still finds the Entra ID detection.
    """
    wanted = sorted(set(keys))
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        rows = conn.execute(
            f"SELECT e.event_key AS matched_key, {_DETECTION_FIELDS} FROM detection_events e"
            " JOIN detections d ON d.id = e.detection_id"
            f" WHERE e.event_key IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        for r in rows:
            found[r["matched_key"]] = dict(r)
    return found


def detections_by_id(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Current state (chain, triage) of the given detections."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    rows = conn.execute(
        f"SELECT {_DETECTION_FIELDS} FROM detections d WHERE d.id IN ({marks})", wanted
    ).fetchall()
    return {r["id"]: dict(r) for r in rows}
