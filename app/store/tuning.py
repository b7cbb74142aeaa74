"""All SQL for tuning: allowlist entries, approvals, tuning settings, reference-set sync state, the tuning
rows of the audit log, and the detection columns suppression reads and writes (``detections.suppressed_by``).

Writes never commit: callers own the transaction (``with transaction(conn):``), so an entry change, its
audit row and the suppression recompute land together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from app.store import audit as audit_log

ENTRY_OBJECT = "tuning_entry"
REFSYNC_OBJECT = "tuning_refsync"
PRESET_OBJECT = "tuning_preset"
IMPORT_OBJECT = "tuning_import"
AUDIT_OBJECT_TYPES = (ENTRY_OBJECT, REFSYNC_OBJECT, PRESET_OBJECT, IMPORT_OBJECT)
# Tuning settings live in the shared settings table (app/settings.py), audited there as `settings.update`;
# the tuning audit view includes those rows when they touch one of these keys.
TUNING_SETTING_KEYS = (
    "single_person_approval",
    "reference_set_name",
    "reference_map_name",
    "tuning_capabilities",
)

# Entry fields stored as JSON text.
_JSON_COLUMNS = {
    "platforms": "platforms_json",
    "source_cidrs": "source_cidrs_json",
    "window": "window_json",
    # Approval bookkeeping: who wrote a matching condition since the last approval, and text edits made
    # after it (both lists reset by an approval).
    "condition_writers": "condition_writers_json",
    "text_edits": "text_edits_json",
}
_BOOL_COLUMNS = ("break_glass", "enabled", "flagged_spoofable", "partial_chain_ok")
_PLAIN_COLUMNS = (
    "name",
    "actor_id",
    "actor_pattern",
    "actor_pattern_field",
    "source_service",
    "ua_pattern",
    "target_pattern",
    "target_type",
    "justification",
    "ticket",
    "expires_at",
    "override_reason",
)
ENTRY_SORTS = {
    "id": "id",
    "expires_at": "expires_at",
    "updated_at": "updated_at",
    "status": "status",
    "created_at": "created_at",
}
# Detection columns the matcher reads (names fixed by the detection record in ARCHITECTURE.md).
MATCH_COLUMNS = (
    "id",
    "event_time",
    "cloud_platform",
    "account_kind",
    "actor",
    "actor_id",
    "target_account",
    "target_id",
    "source_ip",
    "user_agent",
    "chain_id",
    "suppressed_by",
    "suppression_overridden_by",
)
EXAMPLE_COLUMNS = (*MATCH_COLUMNS, "event_name", "chain_kind")


# -- entries ----------------------------------------------------------------------------------------------


def entry_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        k: row[k]
        for k in (
            "id",
            "version",
            "status",
            "preset_id",
            *_PLAIN_COLUMNS,
            "created_by",
            "created_by_id",
            "created_at",
            "updated_by",
            "updated_by_id",
            "updated_at",
            "approved_by",
            "approved_by_id",
            "approved_at",
            "decision_note",
        )
    }
    for key, column in _JSON_COLUMNS.items():
        entry[key] = json.loads(row[column]) if row[column] is not None else None
    entry["source_cidrs"] = entry["source_cidrs"] or []
    entry["condition_writers"] = entry["condition_writers"] or []
    entry["text_edits"] = entry["text_edits"] or []
    for key in _BOOL_COLUMNS:
        entry[key] = bool(row[key])
    return entry


def _entry_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _JSON_COLUMNS:
            columns[_JSON_COLUMNS[key]] = json.dumps(value) if value is not None else None
        elif key in _BOOL_COLUMNS:
            columns[key] = 1 if value else 0
        elif key in _PLAIN_COLUMNS:
            columns[key] = value
            if key == "actor_id":
                columns["actor_id_key"] = value.casefold() if value else None
    return columns


def insert_entry(
    conn: sqlite3.Connection,
    fields: Mapping[str, Any],
    *,
    status: str,
    by: str,
    by_id: int | None,
    now_ms: int,
    preset_id: str | None = None,
    approved_by: str | None = None,
    approved_by_id: int | None = None,
) -> int:
    columns = _entry_columns(fields)
    columns.update(
        status=status,
        preset_id=preset_id,
        created_by=by,
        created_by_id=by_id,
        created_at=now_ms,
        updated_by=by,
        updated_by_id=by_id,
        updated_at=now_ms,
    )
    if approved_by:
        columns.update(approved_by=approved_by, approved_by_id=approved_by_id, approved_at=now_ms)
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    cur = conn.execute(f"INSERT INTO tuning_entries ({names}) VALUES ({marks})", tuple(columns.values()))
    bump_generation(conn)
    return int(cur.lastrowid)


def get_entry(conn: sqlite3.Connection, entry_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM tuning_entries WHERE id = ?", (entry_id,)).fetchone()
    return entry_from_row(row) if row else None


def update_entry(
    conn: sqlite3.Connection,
    entry_id: int,
    version: int,
    changes: Mapping[str, Any],
    *,
    by: str,
    now_ms: int,
    by_id: int | None = None,
    status: str | None = None,
    approved_by: str | None = None,
    approved_by_id: int | None = None,
    clear_approval: bool = False,
    decision_note: str | None = None,
) -> bool:
    """Compare-and-swap on ``version``; False when the entry changed meanwhile (nothing written).
    ``changes`` may carry ``condition_writers`` and ``text_edits`` (the approval bookkeeping lists)."""
    columns = _entry_columns(changes)
    columns.update(updated_by=by, updated_by_id=by_id, updated_at=now_ms)
    if status is not None:
        columns["status"] = status
    if approved_by is not None:
        columns.update(approved_by=approved_by, approved_by_id=approved_by_id, approved_at=now_ms)
    elif clear_approval:
        columns.update(approved_by=None, approved_by_id=None, approved_at=None)
    if decision_note is not None:
        columns["decision_note"] = decision_note
    assignments = ", ".join(f"{name} = ?" for name in columns)
    cur = conn.execute(
        f"UPDATE tuning_entries SET {assignments}, version = version + 1 WHERE id = ? AND version = ?",
        (*columns.values(), entry_id, version),
    )
    if cur.rowcount:
        bump_generation(conn)
    return cur.rowcount == 1


def list_entries(
    conn: sqlite3.Connection,
    *,
    status: Sequence[str] | None = None,
    preset_id: str | None = None,
    flagged: bool | None = None,
    actor_id: str | None = None,
    text: str | None = None,
    limit: int = 50,
    offset: int = 0,
    sort: str = "-id",
) -> tuple[list[dict[str, Any]], int]:
    where, params = _entry_filters(status, preset_id, flagged, actor_id, text)
    descending = sort.startswith("-")
    column = ENTRY_SORTS[sort.lstrip("-")]
    total = conn.execute(f"SELECT COUNT(*) FROM tuning_entries {where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM tuning_entries {where} ORDER BY {column} {'DESC' if descending else 'ASC'}, id "
        "LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    return [entry_from_row(r) for r in rows], int(total)


def _entry_filters(
    status: Sequence[str] | None,
    preset_id: str | None,
    flagged: bool | None,
    actor_id: str | None,
    text: str | None,
) -> tuple[str, tuple[Any, ...]]:
    clauses, params = [], []
    if status:
        clauses.append(f"status IN ({', '.join('?' for _ in status)})")
        params += list(status)
    if preset_id:
        clauses.append("preset_id = ?")
        params.append(preset_id)
    if flagged is not None:
        clauses.append("flagged_spoofable = ?")
        params.append(1 if flagged else 0)
    if actor_id:
        clauses.append("actor_id_key = ?")
        params.append(actor_id.casefold())
    if text:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(
            "(name LIKE ? ESCAPE '\\' OR justification LIKE ? ESCAPE '\\' OR ticket LIKE ? ESCAPE '\\'"
            " OR actor_id LIKE ? ESCAPE '\\' OR actor_pattern LIKE ? ESCAPE '\\')"
        )
        params += [like] * 5
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(params)


def all_entries(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [entry_from_row(r) for r in conn.execute("SELECT * FROM tuning_entries ORDER BY id")]


def active_entries(conn: sqlite3.Connection, now_ms: int) -> list[dict[str, Any]]:
    """Entries that suppress right now: approved, enabled, not expired."""
    rows = conn.execute(
        "SELECT * FROM tuning_entries WHERE status = 'active' AND enabled = 1 AND expires_at > ? ORDER BY id",
        (now_ms,),
    ).fetchall()
    return [entry_from_row(r) for r in rows]


def due_for_expiry(conn: sqlite3.Connection, now_ms: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM tuning_entries WHERE status IN ('active', 'pending') AND expires_at <= ? ORDER BY id",
        (now_ms,),
    ).fetchall()
    return [entry_from_row(r) for r in rows]


def max_entry_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'tuning_entries'").fetchone()
    return int(row[0]) if row else 0


def entries_by_preset(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(
        "SELECT * FROM tuning_entries WHERE preset_id IS NOT NULL "
        "AND status NOT IN ('deleted', 'expired', 'rejected') ORDER BY id"
    ):
        found.setdefault(row["preset_id"], []).append(entry_from_row(row))
    return found


def add_approval(
    conn: sqlite3.Connection,
    entry_id: int,
    entry_version: int,
    decision: str,
    by: str,
    now_ms: int,
    note: str | None,
) -> None:
    conn.execute(
        "INSERT INTO tuning_approvals (entry_id, entry_version, decision, decided_by, decided_at, note) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (entry_id, entry_version, decision, by, now_ms, note),
    )


def approvals(conn: sqlite3.Connection, entry_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT entry_version, decision, decided_by, decided_at, note FROM tuning_approvals "
        "WHERE entry_id = ? ORDER BY id",
        (entry_id,),
    ).fetchall()
    return [dict(r) for r in rows]


# -- cache generation and settings version ---------------------------------------------------------------


def generation(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT generation FROM tuning_state WHERE id = 1").fetchone()[0])


def bump_generation(conn: sqlite3.Connection) -> None:
    # A fresh random token, not a counter: a rolled-back transaction must never leave behind a cached
    # matcher whose generation a later, different change would reproduce.
    conn.execute("UPDATE tuning_state SET generation = random() WHERE id = 1")


def settings_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT settings_version FROM tuning_state WHERE id = 1").fetchone()[0])


def bump_settings_version(conn: sqlite3.Connection, expected: int) -> bool:
    """Compare-and-swap of the tuning settings version; False when someone else changed them first."""
    cur = conn.execute(
        "UPDATE tuning_state SET settings_version = settings_version + 1, generation = random() "
        "WHERE id = 1 AND settings_version = ?",
        (expected,),
    )
    return cur.rowcount == 1


# -- reference-set sync state -----------------------------------------------------------------------------


def get_refsync_state(conn: sqlite3.Connection) -> dict[str, Any]:
    row = conn.execute(
        "SELECT last_sync_ms, last_status, last_error, details_json FROM tuning_refsync WHERE id = 1"
    ).fetchone()
    state = dict(row)
    state["details"] = json.loads(state.pop("details_json") or "{}")
    return state


def set_refsync_state(
    conn: sqlite3.Connection, *, now_ms: int, status: str, error: str | None, details: Mapping[str, Any]
) -> None:
    conn.execute(
        "UPDATE tuning_refsync SET last_sync_ms = ?, last_status = ?, last_error = ?, details_json = ? "
        "WHERE id = 1",
        (now_ms, status, error, json.dumps(details)),
    )


# -- audit log (table from 0001_core.sql) ------------------------------------------------------------------


def audit(
    conn: sqlite3.Connection,
    *,
    at_ms: int,
    actor: str,
    action: str,
    object_type: str,
    object_id: Any,
    before: Any,
    after: Any,
) -> int:
    """One tuning row in the shared audit log (written by app.store.audit, the table's owner)."""
    return audit_log.record_audit(
        conn,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        at_ms=at_ms,
    )


def list_audit(
    conn: sqlite3.Connection,
    *,
    action: str | None = None,
    actor: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int | None = 50,
    offset: int = 0,
    descending: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    settings_touch = " OR ".join("after_json LIKE ?" for _ in TUNING_SETTING_KEYS)
    clauses = [
        f"(object_type IN ({', '.join('?' for _ in AUDIT_OBJECT_TYPES)})"
        f" OR (object_type = 'settings' AND ({settings_touch})))"
    ]
    params: list[Any] = [*AUDIT_OBJECT_TYPES, *(f'%"{key}"%' for key in TUNING_SETTING_KEYS)]
    for clause, value in (
        ("action = ?", action),
        ("actor = ?", actor),
        ("object_type = ?", object_type),
        ("object_id = ?", object_id),
        ("at_ms >= ?", since_ms),
        ("at_ms < ?", until_ms),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = " AND ".join(clauses)
    total = conn.execute(f"SELECT COUNT(*) FROM audit_log WHERE {where}", params).fetchone()[0]
    order = "DESC" if descending else "ASC"
    sql = f"SELECT * FROM audit_log WHERE {where} ORDER BY id {order}"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    items = []
    for row in conn.execute(sql, params):
        item = dict(row)
        item["before"] = json.loads(item.pop("before_json")) if row["before_json"] else None
        item["after"] = json.loads(item.pop("after_json")) if row["after_json"] else None
        items.append(item)
    return items, int(total)


# -- detections (suppression) ------------------------------------------------------------------------------


def iter_detections_for_matching(
    conn: sqlite3.Connection,
    *,
    detection_ids: Iterable[int] | None = None,
    since_ms: int | None = None,
    batch: int = 5000,
    columns: Sequence[str] = MATCH_COLUMNS,
) -> Iterator[list[dict[str, Any]]]:
    """Detections (the matcher's columns) in batches, by id."""
    select = ", ".join(columns)
    if detection_ids is not None:
        ids = sorted(set(int(i) for i in detection_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = conn.execute(
                f"SELECT {select} FROM detections WHERE id IN ({', '.join('?' for _ in chunk)}) ORDER BY id",
                chunk,
            ).fetchall()
            if rows:
                yield [dict(r) for r in rows]
        return
    last_id = 0
    while True:
        if since_ms is None:
            rows = conn.execute(
                f"SELECT {select} FROM detections WHERE id > ? ORDER BY id LIMIT ?", (last_id, batch)
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT {select} FROM detections WHERE id > ? AND event_time >= ? ORDER BY id LIMIT ?",
                (last_id, since_ms, batch),
            ).fetchall()
        if not rows:
            return
        yield [dict(r) for r in rows]
        last_id = rows[-1]["id"]


def chain_members(conn: sqlite3.Connection, chain_ids: Iterable[int]) -> list[dict[str, Any]]:
    ids = sorted(set(chain_ids))
    members: list[dict[str, Any]] = []
    select = ", ".join(MATCH_COLUMNS)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        members += [
            dict(r)
            for r in conn.execute(
                f"SELECT {select} FROM detections WHERE chain_id IN ({', '.join('?' for _ in chunk)}) "
                "ORDER BY id",
                chunk,
            )
        ]
    return members


def set_suppressed_by(conn: sqlite3.Connection, changes: Sequence[tuple[int | None, int]]) -> None:
    """``changes``: (entry id or None, detection id) pairs."""
    conn.executemany("UPDATE detections SET suppressed_by = ? WHERE id = ?", changes)


def set_suppression(conn: sqlite3.Connection, changes: Sequence[tuple[int | None, int | None, int]]) -> None:
    """``changes``: (suppressing entry id or None, overridden entry id or None, detection id) triples."""
    conn.executemany(
        "UPDATE detections SET suppressed_by = ?, suppression_overridden_by = ? WHERE id = ?", changes
    )


# What a chain member adds to the identity a creation made: credentials or privilege.


def chain_followers(conn: sqlite3.Connection, chain_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The events of the given chains, each with who did it and what it was: the chain's other
    detections (with the matcher's columns) and its follow-on events (privilege grants, credentials)."""
    ids = sorted(set(int(i) for i in chain_ids))
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        found += [
            dict(r)
            for r in conn.execute(
                "SELECT ce.chain_id, ce.event_key, ce.event_time, ce.event_name, ce.cloud_platform, "
                "ce.detection_id, COALESCE(d.actor, f.actor, ce.actor) AS actor, "
                "COALESCE(d.actor_id, f.actor_id) AS actor_id, COALESCE(d.account_kind, f.account_kind) AS account_kind, "
                "COALESCE(d.source_ip, f.source_ip) AS source_ip, d.user_agent, "
                "COALESCE(d.target_account, f.target_account, ce.target_account) AS target_account, "
                "d.target_id, f.event_key IS NOT NULL AS follow_on "
                "FROM chain_events ce LEFT JOIN detections d ON d.id = ce.detection_id "
                "LEFT JOIN follow_on_events f ON f.event_key = ce.event_key AND ce.detection_id IS NULL "
                f"WHERE ce.chain_id IN ({marks}) ORDER BY ce.chain_id, ce.position",
                chunk,
            )
        ]
    return found


def chained_detection_ids(conn: sqlite3.Connection, since_ms: int) -> list[int]:
    """Detections in a chain from ``since_ms`` on (a chain that grew may override their suppression)."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM detections WHERE chain_id IS NOT NULL AND event_time >= ?", (since_ms,)
        )
    ]


def detections_suppressed_by(conn: sqlite3.Connection, entry_ids: Sequence[int]) -> list[int]:
    ids = list(entry_ids)
    marks = ", ".join("?" for _ in ids)
    return [r[0] for r in conn.execute(f"SELECT id FROM detections WHERE suppressed_by IN ({marks})", ids)]


def count_suppressed_by(conn: sqlite3.Connection, entry_id: int, since_ms: int | None = None) -> int:
    if since_ms is None:
        return int(
            conn.execute("SELECT COUNT(*) FROM detections WHERE suppressed_by = ?", (entry_id,)).fetchone()[0]
        )
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM detections WHERE suppressed_by = ? AND event_time >= ?",
            (entry_id, since_ms),
        ).fetchone()[0]
    )


def detection_examples(conn: sqlite3.Connection, detection_ids: Sequence[int]) -> list[dict[str, Any]]:
    if not detection_ids:
        return []
    available = {r[1] for r in conn.execute("PRAGMA table_info(detections)")}
    select = ", ".join(c for c in EXAMPLE_COLUMNS if c in available)
    ids = list(detection_ids)
    rows = conn.execute(
        f"SELECT {select} FROM detections WHERE id IN ({', '.join('?' for _ in ids)}) "
        "ORDER BY event_time DESC, id DESC",
        ids,
    ).fetchall()
    return [dict(r) for r in rows]
