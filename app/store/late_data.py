"""SQL of late data (migration 0012): rows read per minute by the refresher's queries, the detections
only the reconciliation found, and the largest receipt-to-searchable lag seen (``refresh_state`` row
``late_data``). Writes leave committing to the caller."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from app.store.refresh_state import get_refresh_state, save_refresh_state

STATE = "late_data"
RECONCILIATION = "reconciliation"  # detections.found_by of a row only the reconciliation found


def minute_counts(conn: sqlite3.Connection, query: str, from_ms: int, to_ms: int) -> dict[int, int]:
    """Rows read per minute (epoch ms) in [from_ms, to_ms) for `query`; minutes without rows are absent."""
    rows = conn.execute(
        "SELECT minute, n FROM ariel_minute_counts WHERE query = ? AND minute >= ? AND minute < ?",
        (query, from_ms, to_ms),
    )
    return {int(m): int(n) for m, n in rows}


def bucket_counts(
    conn: sqlite3.Connection, query: str, from_ms: int, to_ms: int, bucket_ms: int
) -> dict[int, int]:
    """The same rows summed per `bucket_ms` (e.g. per hour: the reconciliation's first comparison)."""
    rows = conn.execute(
        "SELECT minute - minute % ? AS bucket, SUM(n) FROM ariel_minute_counts"
        " WHERE query = ? AND minute >= ? AND minute < ? GROUP BY bucket",
        (bucket_ms, query, from_ms, to_ms),
    )
    return {int(b): int(n) for b, n in rows}


def replace_minute_counts(
    conn: sqlite3.Connection, query: str, minutes: Iterable[int], counts: Mapping[int, int]
) -> None:
    """What was read in full for each of `minutes`: its count from `counts` (0 when absent)."""
    values = [(query, int(m), int(counts.get(m, 0))) for m in minutes]
    conn.executemany(
        "DELETE FROM ariel_minute_counts WHERE query = ? AND minute = ?", [v[:2] for v in values]
    )
    conn.executemany(
        "INSERT INTO ariel_minute_counts (query, minute, n) VALUES (?, ?, ?)", [v for v in values if v[2]]
    )


def purge_minute_counts(conn: sqlite3.Connection, before_ms: int) -> int:
    return conn.execute("DELETE FROM ariel_minute_counts WHERE minute < ?", (before_ms,)).rowcount


def note_lags(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]], late_before_ms: int) -> None:
    """Keep the largest ``stored_at − event_time`` of `records` (just inserted) that arrived late: whose
    event time is before `late_before_ms`, a time the app had already searched past (the watermark before
    the cycle that found them). The first backfill and a catch-up after downtime are not lags."""
    details = dict(get_refresh_state(conn, STATE).get("details") or {})
    best = details.get("max_lag_ms")
    found = None
    for rec in records:
        event_time, stored_at = rec.get("event_time"), rec.get("stored_at")
        if event_time is None or stored_at is None or event_time >= late_before_ms:
            continue
        lag = int(stored_at) - int(event_time)
        if (best is None or lag > best) and (found is None or lag > found[0]):
            found = (lag, int(event_time), rec.get("event_key"))
    if found is not None:
        details.update(max_lag_ms=found[0], max_lag_event_time=found[1], max_lag_event_key=found[2])
        save_refresh_state(conn, STATE, details=details)


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    """What ``GET /api/status`` reports as ``late_data``."""
    details = get_refresh_state(conn, STATE).get("details") or {}
    (reconciled,) = conn.execute(
        "SELECT COUNT(*) FROM detections WHERE found_by = ?", (RECONCILIATION,)
    ).fetchone()
    return {
        "max_lag_ms": details.get("max_lag_ms"),
        "max_lag_event_time": details.get("max_lag_event_time"),
        "reconciled_detections": int(reconciled),
        "last_reconciliation": details.get("last_reconciliation"),
    }


def save_reconciliation(conn: sqlite3.Connection, figures: Mapping[str, Any]) -> None:
    """The last reconciliation's figures (window, minutes changed, rows fetched, added)."""
    details = dict(get_refresh_state(conn, STATE).get("details") or {})
    details["last_reconciliation"] = dict(figures)
    save_refresh_state(conn, STATE, details=details)
