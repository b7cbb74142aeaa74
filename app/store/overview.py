"""Aggregate SQL for the tab's overview (owned by the console tab, kept apart from detections.py).

Reads the ``detections`` table of ``0002_detections.sql`` only. Suppressed detections are counted on
their own and left out of every other figure, like the table's default view.
"""

from __future__ import annotations

import sqlite3
from typing import Any

HOUR_MS = 3_600_000


def overview(conn: sqlite3.Connection, start_ms: int, end_ms: int, *, top_n: int = 10) -> dict[str, Any]:
    """Counts for [start_ms, end_ms): by platform, service accounts, chains, suppressed, an hourly
    timeline stacked by platform and the top initiators (by immutable actor ID, with a display name)."""
    window = {"start": start_ms, "end": end_ms}
    in_window = "event_time >= :start AND event_time < :end"
    active = f"{in_window} AND suppressed_by IS NULL"

    totals = conn.execute(
        f"SELECT COUNT(*) AS total,"
        f" COALESCE(SUM(CASE WHEN is_service_account THEN 1 ELSE 0 END), 0) AS service_accounts,"
        f" COUNT(DISTINCT chain_id) AS chains"
        f" FROM detections WHERE {active}", window).fetchone()
    suppressed = conn.execute(
        f"SELECT COUNT(*) FROM detections WHERE {in_window} AND suppressed_by IS NOT NULL", window
    ).fetchone()[0]
    by_platform = [
        {"platform": row["platform"], "count": row["n"]}
        for row in conn.execute(
            f"SELECT COALESCE(cloud_platform, 'Unknown') AS platform, COUNT(*) AS n FROM detections"
            f" WHERE {active} GROUP BY platform ORDER BY n DESC, platform", window)
    ]
    buckets: dict[int, dict[str, int]] = {}
    for row in conn.execute(
            f"SELECT (event_time / {HOUR_MS}) * {HOUR_MS} AS hour_ms,"
            f" COALESCE(cloud_platform, 'Unknown') AS platform, COUNT(*) AS n"
            f" FROM detections WHERE {active} GROUP BY hour_ms, platform", window):
        buckets.setdefault(row["hour_ms"], {})[row["platform"]] = row["n"]
    first_hour = start_ms - start_ms % HOUR_MS
    timeline = [{"hour_ms": hour, "counts": buckets.get(hour, {})}
                for hour in range(first_hour, end_ms, HOUR_MS)]
    top = [
        {"actor_id": row["actor_id"], "actor": row["actor"], "count": row["n"]}
        for row in conn.execute(
            f"SELECT COALESCE(NULLIF(actor_id, ''), actor) AS actor_id, MAX(actor) AS actor, COUNT(*) AS n"
            f" FROM detections WHERE {active} AND COALESCE(NULLIF(actor_id, ''), actor) IS NOT NULL"
            f" GROUP BY COALESCE(NULLIF(actor_id, ''), actor) ORDER BY n DESC, actor_id LIMIT :top",
            {**window, "top": top_n})
    ]
    return {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "total": totals["total"],
        "service_accounts": totals["service_accounts"],
        "chains": totals["chains"],
        "suppressed": suppressed,
        "by_platform": by_platform,
        "platforms": [item["platform"] for item in by_platform],
        "timeline": timeline,
        "top_initiators": top,
    }


def offenses_for_detection(conn: sqlite3.Connection, detection_id: int) -> list[int]:
    """QRadar offenses known to contain this detection's event: the Offense Summary fragment's cache
    (``offense_cache``, app/offense) records, per offense, which stored detection each of its creation
    events belongs to. Offenses nobody has opened yet are not known here."""
    rows = conn.execute(
        "SELECT DISTINCT c.offense_id FROM offense_cache AS c, json_each(c.rows) AS r"
        " WHERE c.status = 'done' AND json_extract(r.value, '$.detection_id') = ?"
        " ORDER BY c.offense_id", (detection_id,))
    return [int(row[0]) for row in rows]
