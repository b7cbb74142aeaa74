"""All SQL for offense ↔ detection links (migration 0006): which QRadar offenses contain which detections.

Written by the refresher's offense sync (``app/offense/sync.py``, source ``sync``) and by the Offense Summary
fragment when its search finishes (``source = 'fragment'``); read by the tab's detail panel (offense links)
and its ``offense`` filter (``app/store/detections.py``). Links only grow — an event stays in its offense —
and go with their detection (``ON DELETE CASCADE``) when retention purges it.

Functions leave committing to the caller, so the sync can commit links with its per-offense state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

SOURCES = ("sync", "fragment")


def record(
    conn: sqlite3.Connection, offense_id: int, detection_ids: Iterable[int], *, source: str, now_ms: int
) -> int:
    """Link the offense to the given detections (ids no longer stored are skipped); returns how many links
    are new."""
    if source not in SOURCES:
        raise ValueError(f"unknown link source {source!r}")
    wanted = sorted({int(i) for i in detection_ids})
    added = 0
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        # INSERT … SELECT from detections: a detection purged meanwhile cannot leave a dangling link.
        added += conn.execute(
            "INSERT OR IGNORE INTO offense_links (offense_id, detection_id, source, linked_at)"
            f" SELECT ?, id, ?, ? FROM detections WHERE id IN ({','.join('?' * len(chunk))})",
            [offense_id, source, now_ms, *chunk],
        ).rowcount
    return added


def offenses_for_detection(conn: sqlite3.Connection, detection_id: int) -> list[int]:
    """Offense ids known to contain the detection, ascending."""
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT offense_id FROM offense_links WHERE detection_id = ? ORDER BY offense_id", (detection_id,)
        )
    ]


def detection_count(conn: sqlite3.Connection, offense_id: int) -> int:
    return int(
        conn.execute("SELECT COUNT(*) FROM offense_links WHERE offense_id = ?", (offense_id,)).fetchone()[0]
    )


# -- the sync's per-offense state -----------------------------------------------------------------------


def synced_versions(conn: sqlite3.Connection, offense_ids: Iterable[int]) -> dict[int, int]:
    """offense id -> the last_updated_time its links were last searched for (only offenses searched)."""
    wanted = sorted({int(i) for i in offense_ids})
    found: dict[int, int] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        for row in conn.execute(
            "SELECT offense_id, last_updated_time FROM offense_sync"
            f" WHERE offense_id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            found[int(row[0])] = int(row[1])
    return found


def mark_synced(
    conn: sqlite3.Connection, versions: Mapping[int, int], links: Mapping[int, int], now_ms: int
) -> None:
    """Record that each offense's links are complete up to its ``last_updated_time`` (``versions``)."""
    conn.executemany(
        "INSERT INTO offense_sync (offense_id, last_updated_time, links, synced_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (offense_id) DO UPDATE SET last_updated_time = excluded.last_updated_time,"
        " links = excluded.links, synced_at = excluded.synced_at",
        [(oid, updated, int(links.get(oid, 0)), now_ms) for oid, updated in versions.items()],
    )


def purge_sync_older_than(conn: sqlite3.Connection, cutoff_ms: int) -> int:
    """Forget the sync state of offenses not updated since ``cutoff_ms`` (their links stay)."""
    return conn.execute("DELETE FROM offense_sync WHERE last_updated_time < ?", (cutoff_ms,)).rowcount


def oldest_detection_time(conn: sqlite3.Connection) -> int | None:
    """The oldest stored detection's event time: no link can be made to an event before it."""
    row = conn.execute("SELECT MIN(event_time) FROM detections").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT COUNT(*), COUNT(DISTINCT offense_id) FROM offense_links").fetchone()
    return {"links": int(row[0]), "offenses": int(row[1])}
