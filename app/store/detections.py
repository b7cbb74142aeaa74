"""All SQL for detections, chains, triage and refresh requests (migration 0002).

Functions take a ``sqlite3.Connection`` and leave committing to the caller unless they say otherwise, so
the refresher can commit rows and its watermark in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.store import audit

TRIAGE_STATUSES = ("new", "investigating", "benign", "malicious", "escalated")

# Columns a caller may write when inserting a detection (everything but id, chain and triage state).
DETECTION_COLUMNS = (
    "event_key",
    "event_time",
    "event_name",
    "event_category",
    "log_source",
    "log_source_type",
    "qid",
    "cloud_platform",
    "is_service_account",
    "account_kind",
    "actor",
    "actor_id",
    "actor_type",
    "target_account",
    "target_id",
    "target_type",
    "source_ip",
    "user_agent",
    "correlation_id",
    "result",
    "mfa",
    "magnitude",
    "severity",
    "confidence",
    "base_severity",
    "base_confidence",
    "also_seen_in",
    "target_keys",
    "payload",
    "payload_ok",
    "stored_at",
)
# What `GET /api/detections` lists (the ARCHITECTURE.md record without the payload).
LIST_FIELDS = (
    "id",
    "event_key",
    "event_time",
    "event_name",
    "event_category",
    "log_source",
    "log_source_type",
    "qid",
    "cloud_platform",
    "is_service_account",
    "account_kind",
    "actor",
    "actor_id",
    "actor_type",
    "target_account",
    "target_id",
    "target_type",
    "source_ip",
    "user_agent",
    "correlation_id",
    "result",
    "mfa",
    "magnitude",
    "severity",
    "confidence",
    "chain_id",
    "chain_kind",
    "also_seen_in",
    "suppressed_by",
    "triage_status",
    "triage_note",
    "triage_by",
    "triage_at",
)
# API sort name -> SQL column (whitelist; never user text in SQL).
SORT_COLUMNS = {
    name: name
    for name in (
        "event_time",
        "severity",
        "cloud_platform",
        "actor",
        "target_account",
        "event_name",
        "event_category",
        "log_source",
        "source_ip",
        "is_service_account",
        "chain_id",
        "triage_status",
        "account_kind",
        "confidence",
        "id",
    )
}
FOLLOW_ON_COLUMNS = (
    "event_key",
    "event_time",
    "event_name",
    "cloud_platform",
    "log_source",
    "actor",
    "actor_id",
    "target_account",
    "target_keys",
    "correlation_id",
    "granted",
    "admin_grant",
    "source_ip",
    "payload",
    "stored_at",
)


_INSERT_EVENT = (
    "INSERT OR IGNORE INTO detection_events (event_key, detection_id, cloud_platform, "
    "event_time, event_name) VALUES (?, ?, ?, ?, ?)"
)


def _json_list(text: str | None) -> list[Any]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def detection_to_json(row: sqlite3.Row, *, with_payload: bool = False) -> dict[str, Any]:
    item = {name: row[name] for name in LIST_FIELDS}
    item["is_service_account"] = bool(item["is_service_account"])
    item["mfa"] = None if item["mfa"] is None else bool(item["mfa"])
    item["also_seen_in"] = _json_list(item["also_seen_in"])
    if with_payload:
        item["payload"] = row["payload"]
        item["payload_parsed"] = bool(row["payload_ok"])
    return item


# -- de-duplication and inserts -----------------------------------------------------------------------


def known_event_keys(conn: sqlite3.Connection, keys: Iterable[str]) -> set[str]:
    """Which of `keys` are already stored (as a detection, a merged twin or a follow-on event)."""
    keys = list(dict.fromkeys(keys))
    found: set[str] = set()
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for table in ("detection_events", "follow_on_events"):
            found.update(
                r[0]
                for r in conn.execute(f"SELECT event_key FROM {table} WHERE event_key IN ({marks})", chunk)
            )
    return found


def insert_detection(conn: sqlite3.Connection, record: Mapping[str, Any]) -> int:
    values = [_column_value(record, c) for c in DETECTION_COLUMNS]
    cur = conn.execute(
        f"INSERT INTO detections ({', '.join(DETECTION_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(DETECTION_COLUMNS))})",
        values,
    )
    detection_id = int(cur.lastrowid)
    conn.execute(
        "INSERT INTO detection_events (event_key, detection_id, cloud_platform, event_time, event_name) "
        "VALUES (?, ?, ?, ?, ?)",
        (
            record["event_key"],
            detection_id,
            record["cloud_platform"],
            record["event_time"],
            record.get("event_name") or "",
        ),
    )
    return detection_id


def _column_value(record: Mapping[str, Any], column: str) -> Any:
    value = record.get(column)
    if column in ("also_seen_in", "target_keys"):
        return json.dumps(sorted(value or []))
    if column in ("is_service_account", "payload_ok"):
        return 1 if value else 0
    if column == "mfa":
        return None if value is None else int(bool(value))
    return value


def add_twin(
    conn: sqlite3.Connection,
    detection_id: int,
    *,
    event_key: str,
    platform: str,
    event_time: int,
    event_name: str,
) -> None:
    """Record an Office 365 copy of an Azure AD detection (or vice versa) without a second detection."""
    conn.execute(_INSERT_EVENT, (event_key, detection_id, platform, event_time, event_name))
    row = conn.execute(
        "SELECT cloud_platform, also_seen_in FROM detections WHERE id = ?", (detection_id,)
    ).fetchone()
    seen = set(_json_list(row["also_seen_in"]))
    if platform != row["cloud_platform"]:
        seen.add(platform)
    conn.execute(
        "UPDATE detections SET also_seen_in = ? WHERE id = ?", (json.dumps(sorted(seen)), detection_id)
    )


def promote_twin(conn: sqlite3.Connection, detection_id: int, record: Mapping[str, Any]) -> None:
    """An Azure AD event arrived for a detection first stored from its Office 365 copy: the richer Azure
    AD fields replace the copy's, and Office 365 moves to `also_seen_in`."""
    old = conn.execute(
        "SELECT cloud_platform, also_seen_in FROM detections WHERE id = ?", (detection_id,)
    ).fetchone()
    seen = set(_json_list(old["also_seen_in"])) | {old["cloud_platform"]}
    seen.discard(record["cloud_platform"])
    columns = [c for c in DETECTION_COLUMNS if c not in ("event_key", "stored_at", "also_seen_in")]
    assignments = ", ".join(f"{c} = ?" for c in columns)
    conn.execute(
        f"UPDATE detections SET {assignments}, also_seen_in = ? WHERE id = ?",
        [*(_column_value(record, c) for c in columns), json.dumps(sorted(seen)), detection_id],
    )
    conn.execute(
        _INSERT_EVENT,
        (
            record["event_key"],
            detection_id,
            record["cloud_platform"],
            record["event_time"],
            record.get("event_name") or "",
        ),
    )


def entra_detections_between(conn: sqlite3.Connection, start_ms: int, end_ms: int) -> list[sqlite3.Row]:
    """Azure AD / Office 365 detections in [start_ms, end_ms]: candidates for twin matching."""
    return conn.execute(
        "SELECT id, event_key, event_time, event_name, cloud_platform, account_kind, actor, actor_id, "
        "target_account, target_keys, correlation_id FROM detections "
        "WHERE cloud_platform IN ('Azure AD', 'Office 365') AND event_time BETWEEN ? AND ?",
        (start_ms, end_ms),
    ).fetchall()


def insert_follow_on(conn: sqlite3.Connection, record: Mapping[str, Any]) -> None:
    values = [
        _column_value(record, c) if c != "admin_grant" else int(bool(record.get(c)))
        for c in FOLLOW_ON_COLUMNS
    ]
    conn.execute(
        f"INSERT OR IGNORE INTO follow_on_events ({', '.join(FOLLOW_ON_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(FOLLOW_ON_COLUMNS))})",
        values,
    )


def has_creations_since(conn: sqlite3.Connection, since_ms: int) -> bool:
    row = conn.execute("SELECT 1 FROM detections WHERE event_time >= ? LIMIT 1", (since_ms,)).fetchone()
    return row is not None


# -- chains ---------------------------------------------------------------------------------------------

_CHAIN_CREATION_COLUMNS = (
    "id, event_key, event_time, event_name, cloud_platform, account_kind, actor, "
    "actor_id, target_account, target_id, target_keys, correlation_id"
)


def chain_inputs(conn: sqlite3.Connection, since_ms: int) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
    """Creations and follow-on events from `since_ms` on: what chains are recomputed from.

    Only creations that can be in a chain are read: Entra application / service principal / credential
    creations (the 60-second chain), AWS access keys and login profiles, and creations whose target a
    follow-on event or one of those credentials names.
    """
    follow_ons = conn.execute(
        "SELECT event_key, event_time, event_name, cloud_platform, actor, actor_id, target_account, "
        "target_keys, correlation_id, admin_grant FROM follow_on_events WHERE event_time >= ? "
        "ORDER BY event_time, event_key",
        (since_ms,),
    ).fetchall()
    found: dict[int, sqlite3.Row] = {}
    for row in conn.execute(
        f"SELECT {_CHAIN_CREATION_COLUMNS} FROM detections WHERE event_time >= ? AND ("
        "(cloud_platform IN ('Azure AD', 'Office 365') "
        " AND account_kind IN ('application', 'service_principal', 'credential')) OR "
        "(cloud_platform = 'AWS' AND account_kind IN ('access_key', 'login_profile')))",
        (since_ms,),
    ):
        found[row["id"]] = row
    # Creations a follow-on event or an AWS credential names (CreateUser → CreateAccessKey).
    named = [*follow_ons, *(r for r in found.values() if r["cloud_platform"] == "AWS")]
    keys = sorted({k for f in named for k in _json_list(f["target_keys"]) if isinstance(k, str)})
    for i in range(0, len(keys), 400):
        chunk = keys[i : i + 400]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT {_CHAIN_CREATION_COLUMNS} FROM detections WHERE event_time >= ? AND "
            f"(lower(target_account) IN ({marks}) OR lower(target_id) IN ({marks}))",
            [since_ms, *chunk, *chunk],
        ):
            found[row["id"]] = row
    creations = sorted(found.values(), key=lambda r: (r["event_time"], r["id"]))
    return creations, follow_ons


@dataclass(frozen=True)
class ChainRow:
    """A computed chain as the store needs it (built by the refresher from `app.detection.chains`)."""

    chain_key: str
    kind: str
    kinds: Sequence[str]
    first_time: int
    last_time: int
    severity: int
    confidence: str
    admin: bool
    # (event_key, event_time, event_name, platform, actor, target_account, detection_id | None)
    events: Sequence[tuple[str, int, str, str, str | None, str | None, int | None]]


def replace_chains(conn: sqlite3.Connection, since_ms: int, chains: Sequence[ChainRow], now_ms: int) -> None:
    """Make the stored chains starting at or after `since_ms` exactly `chains` (upsert by key), and set
    chain membership, severity and confidence on the detections involved."""
    old = {
        r["chain_key"]: r["id"]
        for r in conn.execute("SELECT id, chain_key FROM chains WHERE first_time >= ?", (since_ms,))
    }
    wanted = {c.chain_key for c in chains}
    stale = [cid for key, cid in old.items() if key not in wanted]
    # Reset the members of the chains being replaced (only chains raise severity, so every other
    # detection already has its base values), then apply the new membership.
    conn.execute(
        "UPDATE detections SET chain_id = NULL, chain_kind = NULL, severity = base_severity, "
        "confidence = base_confidence WHERE chain_id IN (SELECT id FROM chains WHERE first_time >= ?)",
        (since_ms,),
    )
    for cid in stale:
        conn.execute("DELETE FROM chains WHERE id = ?", (cid,))
    for chain in chains:
        conn.execute(
            "INSERT INTO chains (chain_key, kind, kinds, first_time, last_time, severity, confidence, admin, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(chain_key) DO UPDATE SET "
            "kind = excluded.kind, kinds = excluded.kinds, first_time = excluded.first_time, "
            "last_time = excluded.last_time, severity = excluded.severity, confidence = excluded.confidence, "
            "admin = excluded.admin, updated_at = CASE WHEN chains.kinds = excluded.kinds AND "
            "chains.last_time = excluded.last_time THEN chains.updated_at ELSE excluded.updated_at END",
            (
                chain.chain_key,
                chain.kind,
                json.dumps(list(chain.kinds)),
                chain.first_time,
                chain.last_time,
                chain.severity,
                chain.confidence,
                int(chain.admin),
                now_ms,
            ),
        )
        cid = conn.execute("SELECT id FROM chains WHERE chain_key = ?", (chain.chain_key,)).fetchone()[0]
        conn.execute("DELETE FROM chain_events WHERE chain_id = ?", (cid,))
        conn.executemany(
            "INSERT INTO chain_events (chain_id, position, event_key, event_time, event_name, "
            "cloud_platform, actor, target_account, detection_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(cid, pos, *ev) for pos, ev in enumerate(chain.events)],
        )
        member_ids = [ev[6] for ev in chain.events if ev[6] is not None]
        conn.executemany(
            "UPDATE detections SET chain_id = ?, chain_kind = ?, severity = MAX(base_severity, ?), "
            "confidence = ? WHERE id = ?",
            [(cid, chain.kind, chain.severity, chain.confidence, did) for did in member_ids],
        )


def chain_to_json(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    events = conn.execute(
        "SELECT position, event_key, event_time, event_name, cloud_platform, actor, target_account, "
        "detection_id FROM chain_events WHERE chain_id = ? ORDER BY position",
        (row["id"],),
    ).fetchall()
    return {
        "id": row["id"],
        "kind": row["kind"],
        "kinds": _json_list(row["kinds"]),
        "first_time": row["first_time"],
        "last_time": row["last_time"],
        "severity": row["severity"],
        "confidence": row["confidence"],
        "admin": bool(row["admin"]),
        "events": [dict(e) for e in events],
    }


def _chain_visible_clause(log_sources: frozenset[str] | None) -> tuple[str, list[Any]]:
    """SQL true for a chain all of whose events (detections and follow-ons) come from ``log_sources``
    (None: every chain)."""
    if log_sources is None:
        return "1", []
    names = sorted(log_sources)
    if not names:
        return "0", []
    allowed = f"NOT IN ({','.join('?' * len(names))})"
    return (
        "NOT EXISTS (SELECT 1 FROM chain_events ce "
        "LEFT JOIN detections d ON d.id = ce.detection_id "
        "LEFT JOIN follow_on_events f ON f.event_key = ce.event_key "
        "WHERE ce.chain_id = chains.id AND (COALESCE(d.log_source, f.log_source) IS NULL "
        f"OR COALESCE(d.log_source, f.log_source) {allowed}))"
    ), names


def get_chain(
    conn: sqlite3.Connection, chain_id: int, log_sources: frozenset[str] | None = None
) -> dict[str, Any] | None:
    """The chain; None when it does not exist or an event of it comes from outside ``log_sources``."""
    visible, args = _chain_visible_clause(log_sources)
    row = conn.execute(f"SELECT * FROM chains WHERE id = ? AND {visible}", (chain_id, *args)).fetchone()
    return None if row is None else chain_to_json(conn, row)


def list_chains(
    conn: sqlite3.Connection,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
    log_sources: frozenset[str] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Chains, newest first; with ``log_sources``, only those whose every event comes from one of them."""
    where, args = [], []
    if log_sources is not None:
        visible, visible_args = _chain_visible_clause(log_sources)
        where.append(visible)
        args.extend(visible_args)
    if since_ms is not None:
        where.append("last_time >= ?")
        args.append(since_ms)
    if until_ms is not None:
        where.append("first_time <= ?")
        args.append(until_ms)
    if kind is not None:
        where.append("kind = ?")
        args.append(kind)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM chains {clause}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM chains {clause} ORDER BY first_time DESC, id DESC LIMIT ? OFFSET ?",
        [*args, limit, offset],
    ).fetchall()
    return [chain_to_json(conn, r) for r in rows], int(total)


# -- listing --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectionFilter:
    since_ms: int | None = None
    until_ms: int | None = None
    platforms: tuple[str, ...] = ()
    service_accounts_only: bool = False
    actor: str | None = None
    target: str | None = None
    chains_only: bool = False
    suppressed: bool | None = None  # None = both
    triage_statuses: tuple[str, ...] = ()
    text: str | None = None
    ids: tuple[int, ...] = ()
    offense_id: int | None = None  # only detections linked to this QRadar offense (offense_links)
    # Only detections from these log sources (the user's security profile); None = every log source.
    log_sources: frozenset[str] | None = None


def _like(value: str) -> str:
    """A LIKE 'contains' pattern for user text (wildcards in the text are literal; ESCAPE '\\')."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(f: DetectionFilter) -> tuple[str, list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if f.since_ms is not None:
        where.append("event_time >= ?")
        args.append(f.since_ms)
    if f.until_ms is not None:
        where.append("event_time < ?")
        args.append(f.until_ms)
    if f.platforms:
        where.append(f"cloud_platform IN ({','.join('?' * len(f.platforms))})")
        args.extend(f.platforms)
    if f.service_accounts_only:
        where.append("is_service_account = 1")
    if f.actor:
        where.append("(actor LIKE ? ESCAPE '\\' OR actor_id LIKE ? ESCAPE '\\')")
        args += [_like(f.actor)] * 2
    if f.target:
        where.append("(target_account LIKE ? ESCAPE '\\' OR target_id LIKE ? ESCAPE '\\')")
        args += [_like(f.target)] * 2
    if f.chains_only:
        where.append("chain_id IS NOT NULL")
    if f.suppressed is True:
        where.append("suppressed_by IS NOT NULL")
    elif f.suppressed is False:
        where.append("suppressed_by IS NULL")
    if f.triage_statuses:
        where.append(f"triage_status IN ({','.join('?' * len(f.triage_statuses))})")
        args.extend(f.triage_statuses)
    if f.text:
        cols = (
            "event_name",
            "actor",
            "actor_id",
            "target_account",
            "target_id",
            "source_ip",
            "user_agent",
            "log_source",
            "correlation_id",
            "triage_note",
        )
        where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in cols) + ")")
        args += [_like(f.text)] * len(cols)
    if f.ids:
        where.append(f"id IN ({','.join('?' * len(f.ids))})")
        args.extend(f.ids)
    if f.offense_id is not None:
        where.append("id IN (SELECT detection_id FROM offense_links WHERE offense_id = ?)")
        args.append(f.offense_id)
    if f.log_sources is not None:
        names = sorted(f.log_sources)
        where.append(f"log_source IN ({','.join('?' * len(names))})" if names else "0")
        args.extend(names)
    return (f"WHERE {' AND '.join(where)}" if where else ""), args


def list_detections(
    conn: sqlite3.Connection,
    f: DetectionFilter,
    *,
    order_by: str = "event_time DESC",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """(items, total). `order_by` must come from SORT_COLUMNS (the API layer builds it)."""
    clause, args = _where(f)
    total = conn.execute(f"SELECT COUNT(*) FROM detections {clause}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT {', '.join(LIST_FIELDS)} FROM detections {clause} ORDER BY {order_by}, id DESC "
        "LIMIT ? OFFSET ?",
        [*args, limit, offset],
    ).fetchall()
    return [detection_to_json(r) for r in rows], int(total)


def log_source_spans(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
    """(log source name, first and last event time) of every log source detections came from."""
    rows = conn.execute(
        "SELECT log_source, MIN(event_time), MAX(event_time) FROM detections "
        "WHERE log_source IS NOT NULL AND log_source != '' GROUP BY log_source ORDER BY log_source"
    ).fetchall()
    return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]


def log_source_of(conn: sqlite3.Connection, detection_ids: Sequence[int]) -> dict[int, str | None]:
    """Detection id -> the log source it came from (only ids that exist)."""
    if not detection_ids:
        return {}
    marks = ",".join("?" * len(detection_ids))
    rows = conn.execute(f"SELECT id, log_source FROM detections WHERE id IN ({marks})", list(detection_ids))
    return {int(r[0]): r[1] for r in rows}


def get_detection(conn: sqlite3.Connection, detection_id: int) -> dict[str, Any] | None:
    """Every field, the payload, the feeds it was seen in, its chain and triage history."""
    row = conn.execute("SELECT * FROM detections WHERE id = ?", (detection_id,)).fetchone()
    if row is None:
        return None
    item = detection_to_json(row, with_payload=True)
    item["events"] = [
        dict(r)
        for r in conn.execute(
            "SELECT event_key, cloud_platform, event_time, event_name FROM detection_events "
            "WHERE detection_id = ? ORDER BY event_time, event_key",
            (detection_id,),
        )
    ]
    item["chain"] = get_chain(conn, row["chain_id"]) if row["chain_id"] is not None else None
    item["triage_history"] = [
        dict(r)
        for r in conn.execute(
            "SELECT status, note, by_user AS by, at_ms AS at FROM triage_history WHERE detection_id = ? "
            "ORDER BY at_ms, id",
            (detection_id,),
        )
    ]
    return item


# -- triage ---------------------------------------------------------------------------------------------


def set_triage(
    conn: sqlite3.Connection, detection_ids: Sequence[int], status: str, note: str | None, by: str, at_ms: int
) -> list[int]:
    """Set triage on the given detections, with history; returns the ids that exist. The audit log gets
    one row for one detection, and one row for a call naming several (``triage.bulk_update``). The caller
    commits."""
    if status not in TRIAGE_STATUSES:
        raise ValueError(f"unknown triage status {status!r}")
    single = len(set(detection_ids)) == 1
    previous: dict[str, list[int]] = {}
    updated = []
    for did in dict.fromkeys(detection_ids):
        before = conn.execute(
            "SELECT triage_status, triage_note, triage_by, triage_at FROM detections WHERE id = ?", (did,)
        ).fetchone()
        if before is None:
            continue
        conn.execute(
            "UPDATE detections SET triage_status = ?, triage_note = ?, triage_by = ?, triage_at = ? "
            "WHERE id = ?",
            (status, note, by, at_ms, did),
        )
        conn.execute(
            "INSERT INTO triage_history (detection_id, status, note, by_user, at_ms) VALUES (?, ?, ?, ?, ?)",
            (did, status, note, by, at_ms),
        )
        if single:
            audit.record_audit(
                conn,
                actor=by,
                action="triage.update",
                object_type="detection",
                object_id=did,
                before=dict(before),
                after={"triage_status": status, "triage_note": note, "triage_by": by, "triage_at": at_ms},
                at_ms=at_ms,
            )
        previous.setdefault(before["triage_status"], []).append(did)
        updated.append(did)
    if not single and updated:
        # One record per bulk call: which detections, what each had before (by status), what they got.
        audit.record_audit(
            conn,
            actor=by,
            action="triage.bulk_update",
            object_type="detection",
            object_id=None,
            before={"ids_by_status": previous},
            after={"ids": updated, "triage_status": status, "triage_note": note, "triage_at": at_ms},
            at_ms=at_ms,
        )
    return updated


def existing_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    return {r[0] for r in conn.execute(f"SELECT id FROM detections WHERE id IN ({marks})", list(ids))}


# -- retention ------------------------------------------------------------------------------------------


def purge_older_than(conn: sqlite3.Connection, cutoff_ms: int) -> dict[str, int]:
    """Delete detections, follow-on events and chains older than `cutoff_ms`; returns counts."""
    chains = conn.execute("DELETE FROM chains WHERE last_time < ?", (cutoff_ms,)).rowcount
    detections = conn.execute("DELETE FROM detections WHERE event_time < ?", (cutoff_ms,)).rowcount
    follow_ons = conn.execute("DELETE FROM follow_on_events WHERE event_time < ?", (cutoff_ms,)).rowcount
    conn.execute("DELETE FROM refresh_requests WHERE handled_at IS NOT NULL AND handled_at < ?", (cutoff_ms,))
    return {"detections": detections, "follow_on_events": follow_ons, "chains": chains}


# -- refresh requests and counts ----------------------------------------------------------------------


def request_refresh(conn: sqlite3.Connection, action: str, by: str, at_ms: int) -> int:
    """Queue 'refresh' or 'cancel' for the refresher process. The caller commits."""
    cur = conn.execute(
        "INSERT INTO refresh_requests (action, requested_by, requested_at) VALUES (?, ?, ?)",
        (action, by, at_ms),
    )
    return int(cur.lastrowid)


def open_requests(conn: sqlite3.Connection, action: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM refresh_requests WHERE handled_at IS NULL AND action = ? ORDER BY id", (action,)
    ).fetchall()


def mark_requests_handled(
    conn: sqlite3.Connection, action: str, at_ms: int, up_to_id: int | None = None
) -> None:
    if up_to_id is None:
        conn.execute(
            "UPDATE refresh_requests SET handled_at = ? WHERE handled_at IS NULL AND action = ?",
            (at_ms, action),
        )
    else:
        conn.execute(
            "UPDATE refresh_requests SET handled_at = ? WHERE handled_at IS NULL AND action = ? AND id <= ?",
            (at_ms, action, up_to_id),
        )


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Row counts for the status endpoint (each one an index-only count)."""
    queries = {
        "detections": "SELECT COUNT(*) FROM detections",
        "suppressed": "SELECT COUNT(*) FROM detections WHERE suppressed_by IS NOT NULL",
        "in_chains": "SELECT COUNT(*) FROM detections WHERE chain_id IS NOT NULL",
        "chains": "SELECT COUNT(*) FROM chains",
        "follow_on_events": "SELECT COUNT(*) FROM follow_on_events",
    }
    return {name: int(conn.execute(sql).fetchone()[0]) for name, sql in queries.items()}
