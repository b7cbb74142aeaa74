"""SQL for the core tables (migration 0001): settings rows, refresh state, audit log.

Every function takes a ``sqlite3.Connection`` and leaves committing to the caller (``with conn:``),
except where noted, so a feature can audit in the same transaction as its change::

    with conn:
        conn.execute("UPDATE ...")
        record_audit(conn, actor="tuner1", action="tuning.entry.update", object_type="allowlist_entry",
                     object_id=42, before=old, after=new)
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any


def now_ms() -> int:
    return int(time.time() * 1000)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


# -- settings ---------------------------------------------------------------------------------------


def setting_rows(conn: sqlite3.Connection) -> dict[str, Any]:
    """Stored (non-default) setting values, decoded from JSON."""
    return {
        row["key"]: json.loads(row["value_json"])
        for row in conn.execute("SELECT key, value_json FROM settings")
    }


def put_setting(conn: sqlite3.Connection, key: str, value: Any, actor: str) -> None:
    conn.execute(
        "INSERT INTO settings (key, value_json, updated_by, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, "
        "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        (key, json.dumps(value), actor, now_ms()),
    )


def delete_setting(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM settings WHERE key = ?", (key,))


# -- audit log --------------------------------------------------------------------------------------


def record_audit(
    conn: sqlite3.Connection,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: Any = None,
    before: Any = None,
    after: Any = None,
    at_ms: int | None = None,
) -> int:
    """Append one audit row; returns its id."""
    cur = conn.execute(
        "INSERT INTO audit_log (at_ms, actor, action, object_type, object_id, before_json, after_json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            at_ms if at_ms is not None else now_ms(),
            actor,
            action,
            object_type,
            None if object_id is None else str(object_id),
            _dump(before),
            _dump(after),
        ),
    )
    return int(cur.lastrowid)


def list_audit(
    conn: sqlite3.Connection,
    *,
    object_type: str | None = None,
    object_id: Any = None,
    actor: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first; returns (items, total)."""
    where, args = [], []
    for column, value in (("object_type", object_type), ("actor", actor)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if object_id is not None:
        where.append("object_id = ?")
        args.append(str(object_id))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM audit_log {clause}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM audit_log {clause} ORDER BY at_ms DESC, id DESC LIMIT ? OFFSET ?",
        [*args, limit, offset],
    ).fetchall()
    items = [
        {
            "id": r["id"],
            "at_ms": r["at_ms"],
            "actor": r["actor"],
            "action": r["action"],
            "object_type": r["object_type"],
            "object_id": r["object_id"],
            "before": json.loads(r["before_json"]) if r["before_json"] else None,
            "after": json.loads(r["after_json"]) if r["after_json"] else None,
        }
        for r in rows
    ]
    return items, int(total)


# -- refresh state ----------------------------------------------------------------------------------

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
            ("details_json" if k == "details" else k): (_dump(v) if k == "details" else v)
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
    with conn:
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
