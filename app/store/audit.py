"""SQL for the shared ``audit_log`` table (migration 0001).

`record_audit` leaves committing to the caller, so a feature audits in the same transaction as its change::

    with transaction(conn):
        conn.execute("UPDATE ...")
        record_audit(conn, actor="tuner1", action="tuning.entry.update", object_type="allowlist_entry",
                     object_id=42, before=old, after=new)
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from app.store.db import now_ms, to_json


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
            to_json(before),
            to_json(after),
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


def oldest_audit_ms(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MIN(at_ms) FROM audit_log").fetchone()
    return None if row[0] is None else int(row[0])


def audit_rows_before(conn: sqlite3.Connection, cutoff_ms: int, limit: int) -> list[dict[str, Any]]:
    """The oldest audit rows recorded before ``cutoff_ms`` (at most ``limit``), oldest first, as stored."""
    rows = conn.execute(
        "SELECT id, at_ms, actor, action, object_type, object_id, before_json, after_json FROM audit_log "
        "WHERE at_ms < ? ORDER BY at_ms, id LIMIT ?",
        (cutoff_ms, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def delete_audit_rows(conn: sqlite3.Connection, ids: list[int]) -> int:
    """Delete these audit rows (the retention job, after exporting them); returns how many went."""
    deleted = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        deleted += conn.execute(f"DELETE FROM audit_log WHERE id IN ({marks})", chunk).rowcount
    return deleted
