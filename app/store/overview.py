"""Aggregate SQL for the tab's overview (owned by the console tab, kept apart from detections.py).

Suppressed detections are counted on their own and left out of every other figure, like the table's default
view. The counts come from the per-hour and per-day tables of ``0005_overview_counts.sql`` (kept by
triggers in the same transaction as every change to ``detections``) for the whole buckets inside the
window, and from ``detections`` itself for the partial buckets at its two edges: O(buckets) rather than
O(rows) (a 30-day window over 1,000,000 detections read every row). tests/app/test_store_counts.py
checks the answers against plain queries over the rows on random data.
"""

from __future__ import annotations

import sqlite3
from typing import Any

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# Few detections are in chains: this partial index holds exactly the unsuppressed ones (named, since the
# planner would otherwise walk every unsuppressed row of the window through detections_suppressed_time).
CHAINED = "detections INDEXED BY detections_active_chain"


def bucket_ranges(start_ms: int, end_ms: int, step_ms: int) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """Split [start_ms, end_ms) into the whole buckets of `step_ms` inside it ([first, end) of their start
    times) and the one or two partial ranges at its edges, to be read from the rows.

    Buckets are keyed by ``(event_time / step) * step`` (SQLite truncates toward zero), which is the bucket's
    start only for times >= 0: a window starting before the epoch is read from the rows alone."""
    first = -(-start_ms // step_ms) * step_ms
    last = end_ms // step_ms * step_ms
    if start_ms < 0 or first >= last:
        return (0, 0), [(start_ms, end_ms)]
    return (first, last), [(start_ms, first), (last, end_ms)]


def _edges_sql(
    select: str, where: str, edges: list[tuple[int, int]], args: dict[str, Any], source: str = "detections"
) -> str:
    """``UNION ALL`` of `select` over the rows of each edge range (named parameters added to `args`)."""
    parts = []
    for i, (low, high) in enumerate(edges):
        args[f"edge{i}_start"], args[f"edge{i}_end"] = low, high
        parts.append(
            f" UNION ALL {select} FROM {source} WHERE event_time >= :edge{i}_start"
            f" AND event_time < :edge{i}_end{where}"
        )
    return "".join(parts)


def hour_counts_cte(start_ms: int, end_ms: int, args: dict[str, Any]) -> str:
    """``WITH counted (hour_ms, cloud_platform, is_service_account, suppressed, n)``: every detection in
    [start_ms, end_ms), grouped by hour where the hour is whole (fills `args`)."""
    (args["hours_start"], args["hours_end"]), edges = bucket_ranges(start_ms, end_ms, HOUR_MS)
    return (
        "WITH counted (hour_ms, cloud_platform, is_service_account, suppressed, n) AS ("
        " SELECT hour_ms, cloud_platform, is_service_account, suppressed, n FROM detection_hour_counts"
        " WHERE hour_ms >= :hours_start AND hour_ms < :hours_end"
        + _edges_sql(
            f"SELECT (event_time / {HOUR_MS}) * {HOUR_MS}, cloud_platform, is_service_account,"
            " suppressed_by IS NOT NULL, 1",
            "",
            edges,
            args,
        )
        + ") "
    )


def actor_counts_cte(start_ms: int, end_ms: int, args: dict[str, Any]) -> str:
    """``WITH initiators (actor_id, actor, n)``: the unsuppressed detections in [start_ms, end_ms) with their
    raw ``actor_id`` (NULL and '' alike, as NULLIF(actor_id, '') reads them) and ``actor``, grouped by day
    where the day is whole (fills `args`)."""
    (args["days_start"], args["days_end"]), edges = bucket_ranges(start_ms, end_ms, DAY_MS)
    return (
        "WITH initiators (actor_id, actor, n) AS ("
        " SELECT actor_id, CASE WHEN actor_null THEN NULL ELSE actor END, n FROM detection_actor_day_counts"
        " WHERE day_ms >= :days_start AND day_ms < :days_end"
        # The partial covering index holds exactly these rows' columns (the planner, without statistics,
        # would rather read every row through detections_suppressed_time).
        + _edges_sql(
            "SELECT actor_id, actor, 1",
            " AND suppressed_by IS NULL",
            edges,
            args,
            "detections INDEXED BY detections_active_actor",
        )
        + ") "
    )


def overview(conn: sqlite3.Connection, start_ms: int, end_ms: int, *, top_n: int = 10) -> dict[str, Any]:
    """Counts for [start_ms, end_ms): by platform, service accounts, chains, suppressed, an hourly
    timeline stacked by platform and the top initiators (by immutable actor ID, with a display name)."""
    args: dict[str, Any] = {"start": start_ms, "end": end_ms, "top": top_n}
    counted = hour_counts_cte(start_ms, end_ms, args)
    totals = conn.execute(
        f"{counted}SELECT COALESCE(SUM(CASE WHEN suppressed THEN 0 ELSE n END), 0) AS total,"
        " COALESCE(SUM(CASE WHEN NOT suppressed AND is_service_account THEN n ELSE 0 END), 0)"
        " AS service_accounts,"
        " COALESCE(SUM(CASE WHEN suppressed THEN n ELSE 0 END), 0) AS suppressed FROM counted",
        args,
    ).fetchone()
    chains = conn.execute(
        f"SELECT COUNT(DISTINCT chain_id) FROM {CHAINED} WHERE event_time >= :start AND event_time < :end"
        " AND chain_id IS NOT NULL AND suppressed_by IS NULL",
        args,
    ).fetchone()[0]
    by_platform = [
        {"platform": row["platform"], "count": row["total"]}
        for row in conn.execute(
            f"{counted}SELECT COALESCE(cloud_platform, 'Unknown') AS platform, SUM(n) AS total FROM counted"
            " WHERE NOT suppressed GROUP BY platform HAVING SUM(n) > 0 ORDER BY total DESC, platform",
            args,
        )
    ]
    buckets: dict[int, dict[str, int]] = {}
    for row in conn.execute(
        f"{counted}SELECT hour_ms, COALESCE(cloud_platform, 'Unknown') AS platform, SUM(n) AS total"
        " FROM counted WHERE NOT suppressed GROUP BY hour_ms, platform HAVING SUM(n) > 0"
        " ORDER BY hour_ms, platform",
        args,
    ):
        buckets.setdefault(row["hour_ms"], {})[row["platform"]] = row["total"]
    first_hour = start_ms - start_ms % HOUR_MS
    timeline = [
        {"hour_ms": hour, "counts": buckets.get(hour, {})} for hour in range(first_hour, end_ms, HOUR_MS)
    ]
    top = [
        {"actor_id": row["actor_key"], "actor": row["actor"], "count": row["total"]}
        for row in conn.execute(
            f"{actor_counts_cte(start_ms, end_ms, args)}"
            "SELECT COALESCE(NULLIF(actor_id, ''), actor) AS actor_key, MAX(actor) AS actor, SUM(n) AS total"
            " FROM initiators WHERE COALESCE(NULLIF(actor_id, ''), actor) IS NOT NULL"
            " GROUP BY actor_key ORDER BY total DESC, actor_key LIMIT :top",
            args,
        )
    ]
    return {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "total": totals["total"],
        "service_accounts": totals["service_accounts"],
        "chains": chains,
        "suppressed": totals["suppressed"],
        "by_platform": by_platform,
        "platforms": [item["platform"] for item in by_platform],
        "timeline": timeline,
        "top_initiators": top,
    }
