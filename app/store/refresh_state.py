"""SQL for the ``refresh_state`` table (migration 0001): the state of background work, one row per name.

The detection refresh keeps its watermark and progress here (``detection``), the offense sync its resume
point (``offense_links``), the runner its job status (``job:<name>``, `app.store.jobs`), and the planner
statistics when they last ran. Writes leave committing to the caller, except
`refresh_planner_statistics_if_due`.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from app.store.db import now_ms, to_json, transaction

REFRESH_FIELDS = (
    "watermark_ms",
    "last_started_ms",
    "last_finished_ms",
    "last_success_ms",
    "last_status",
    "last_error",
    "last_search_id",
    "runs",
    "details",
)


def get_refresh_state(conn: sqlite3.Connection, name: str) -> dict[str, Any]:
    """The job's state; a never-run job gets the defaults (status 'never', no watermark)."""
    row = conn.execute("SELECT * FROM refresh_state WHERE name = ?", (name,)).fetchone()
    if row is None:
        return {
            "name": name,
            "watermark_ms": None,
            "last_started_ms": None,
            "last_finished_ms": None,
            "last_success_ms": None,
            "last_status": "never",
            "last_error": None,
            "last_search_id": None,
            "runs": 0,
            "details": {},
        }
    state = dict(row)
    state["details"] = json.loads(state.pop("details_json") or "{}")
    return state


def save_refresh_state(conn: sqlite3.Connection, name: str, **changes: Any) -> dict[str, Any]:
    """Upsert the given fields (see REFRESH_FIELDS) of a job's state; returns the new state."""
    unknown = set(changes) - set(REFRESH_FIELDS)
    if unknown:
        raise ValueError(f"unknown refresh_state fields: {', '.join(sorted(unknown))}")
    conn.execute("INSERT OR IGNORE INTO refresh_state (name) VALUES (?)", (name,))
    if changes:
        columns = {
            ("details_json" if k == "details" else k): (to_json(v) if k == "details" else v)
            for k, v in changes.items()
        }
        assignments = ", ".join(f"{column} = ?" for column in columns)
        conn.execute(f"UPDATE refresh_state SET {assignments} WHERE name = ?", [*columns.values(), name])
    return get_refresh_state(conn, name)


# -- planner statistics ------------------------------------------------------------------------------

STATISTICS_JOB = "planner_statistics"
# Full ANALYZE of 1,000,000 detections takes about a second (bench.api prints it); every six hours keeps
# the statistics in step with a store that grows by at most a refresh interval's rows at a time.
STATISTICS_EVERY_MS = 6 * 3_600_000


def refresh_planner_statistics_if_due(
    conn: sqlite3.Connection, now: int, every_ms: int = STATISTICS_EVERY_MS
) -> bool:
    """Run ANALYZE when it never ran or ran ``every_ms`` ago; True when it ran.

    Without sqlite_stat1 SQLite guesses the selectivity of each index, and for the tab's "new, not
    suppressed" list it guessed a plan 7x slower than with statistics at 300,000 detections (17.9 s on a
    cold 1,000,000-row store). ``PRAGMA analysis_limit`` would make ANALYZE cheaper but its sampled
    statistics made two of the tab's queries slower than none at all, so the analysis is full.
    """
    state = get_refresh_state(conn, STATISTICS_JOB)
    last = state["last_success_ms"]
    if last is not None and now - int(last) < every_ms:
        return False
    started = now_ms()
    conn.execute("ANALYZE")
    with transaction(conn):
        save_refresh_state(
            conn,
            STATISTICS_JOB,
            last_started_ms=started,
            last_finished_ms=now_ms(),
            last_success_ms=now,
            last_status="ok",
            runs=int(state["runs"]) + 1,
        )
    return True
