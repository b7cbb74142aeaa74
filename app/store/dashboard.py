"""Aggregates over detections for the dashboard item, the Pulse endpoints and the playbook's coverage
check (read-only SQL; detections and follow-on events are written by app/store/detections.py).

Suppressed detections (allowlisted) are left out of the dashboard figures: they are tuned-out noise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from app.store import overview

_ACTIVE = "suppressed_by IS NULL"


def _like_contains(value: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def summary(conn: sqlite3.Connection, since_ms: int, until_ms: int) -> dict[str, Any]:
    """Creations by platform, service accounts, chains and detections in [since_ms, until_ms)."""
    args: dict[str, Any] = {"start": since_ms, "end": until_ms}
    # Pre-aggregated per hour (migration 0005, see app/store/overview.py): O(hours), not O(rows).
    counted = overview.hour_counts_cte(since_ms, until_ms, args)
    by_platform = {
        r[0]: r[1]
        for r in conn.execute(
            f"{counted}SELECT cloud_platform, SUM(n) FROM counted WHERE NOT suppressed"
            " GROUP BY cloud_platform HAVING SUM(n) > 0 ORDER BY cloud_platform",
            args,
        )
    }
    row = conn.execute(
        f"{counted}SELECT COALESCE(SUM(CASE WHEN suppressed THEN 0 ELSE n END), 0),"
        " COALESCE(SUM(CASE WHEN suppressed THEN 0 ELSE is_service_account * n END), 0) FROM counted",
        args,
    ).fetchone()
    return {
        "total": row[0],
        "service_accounts": row[1],
        "chains": _chains(conn, args),
        "by_platform": by_platform,
    }


def _chains(conn: sqlite3.Connection, args: dict[str, Any]) -> int:
    return int(
        conn.execute(
            f"SELECT COUNT(DISTINCT chain_id) FROM {overview.CHAINED} WHERE {_ACTIVE} AND chain_id IS NOT NULL"
            " AND event_time >= :start AND event_time < :end",
            args,
        ).fetchone()[0]
    )


def top_initiators(
    conn: sqlite3.Connection, since_ms: int, until_ms: int, limit: int = 5
) -> list[dict[str, Any]]:
    """The most frequent initiators (by display name, '' for none) with the chains they are in."""
    args: dict[str, Any] = {"start": since_ms, "end": until_ms, "limit": limit}
    initiators = overview.actor_counts_cte(since_ms, until_ms, args)
    rows = conn.execute(
        f"{initiators}, top AS (SELECT COALESCE(actor, '') AS actor, SUM(n) AS n FROM initiators"
        " GROUP BY COALESCE(actor, '') ORDER BY n DESC, actor LIMIT :limit),"
        " chained AS (SELECT COALESCE(actor, '') AS actor, COUNT(DISTINCT chain_id) AS chains"
        f" FROM {overview.CHAINED} WHERE {_ACTIVE} AND chain_id IS NOT NULL"
        " AND event_time >= :start AND event_time < :end"
        " GROUP BY COALESCE(actor, ''))"
        " SELECT top.actor, top.n, COALESCE(chained.chains, 0) FROM top"
        " LEFT JOIN chained ON chained.actor = top.actor ORDER BY top.n DESC, top.actor",
        args,
    )
    return [{"actor": r[0], "count": r[1], "chains": r[2]} for r in rows]


def hourly_counts(conn: sqlite3.Connection, since_ms: int, until_ms: int) -> list[tuple[int, str, int]]:
    """(hour start ms, platform, count) for every hour with creations, oldest first."""
    args: dict[str, Any] = {}
    rows = conn.execute(
        f"{overview.hour_counts_cte(since_ms, until_ms, args)}SELECT hour_ms, cloud_platform, SUM(n)"
        " FROM counted WHERE NOT suppressed GROUP BY hour_ms, cloud_platform HAVING SUM(n) > 0"
        " ORDER BY hour_ms, cloud_platform",
        args,
    )
    return [(r[0], r[1], r[2]) for r in rows]


def recent(conn: sqlite3.Connection, since_ms: int, until_ms: int, limit: int = 25) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, event_time, cloud_platform, event_name, actor, target_account, is_service_account,"
        f" chain_kind, severity FROM detections WHERE {_ACTIVE} AND event_time >= ? AND event_time < ?"
        " ORDER BY event_time DESC, id DESC LIMIT ?",
        (since_ms, until_ms, limit),
    )
    return [dict(r) for r in rows]


def signal_count(
    conn: sqlite3.Connection,
    *,
    platforms: Sequence[str],
    event_name: str,
    target_hint: str | None,
    since_ms: int,
    until_ms: int,
) -> int:
    """Events named `event_name` (case-insensitive, O365's trailing period ignored) on `platforms`, recorded
    as a detection, a merged twin or a follow-on event in [since_ms, until_ms); with `target_hint`, only
    those whose target names contain it."""
    marks = ",".join("?" * len(platforms))
    name = event_name.lower().rstrip(". ")
    params: list[Any] = []
    target_sql = ""
    if target_hint:
        target_sql = (
            " AND (lower(COALESCE(target_account, '')) LIKE ? ESCAPE '\\'"
            " OR lower(target_keys) LIKE ? ESCAPE '\\')"
        )
    parts = []
    for table, platform_col in (("detections", "cloud_platform"), ("follow_on_events", "cloud_platform")):
        parts.append(
            f"SELECT COUNT(*) FROM {table} WHERE {platform_col} IN ({marks})"
            " AND rtrim(lower(event_name), '. ') = ? AND event_time >= ? AND event_time < ?" + target_sql
        )
        params += [*platforms, name, since_ms, until_ms]
        if target_hint:
            params += [_like_contains(target_hint)] * 2
    # Twins: an Office 365 copy merged into an Entra ID detection (the detection row holds the target).
    twin = (
        "SELECT COUNT(*) FROM detection_events e JOIN detections d ON d.id = e.detection_id"
        f" WHERE e.cloud_platform IN ({marks}) AND rtrim(lower(e.event_name), '. ') = ?"
        " AND e.event_key != d.event_key AND e.event_time >= ? AND e.event_time < ?"
        + target_sql.replace("target_account", "d.target_account").replace("target_keys", "d.target_keys")
    )
    parts.append(twin)
    params += [*platforms, name, since_ms, until_ms]
    if target_hint:
        params += [_like_contains(target_hint)] * 2
    return int(conn.execute("SELECT " + " + ".join(f"({p})" for p in parts), params).fetchone()[0])
