"""All SQL for detections, chains, triage and refresh requests (migration 0002).

Functions take a ``sqlite3.Connection`` and leave committing to the caller unless they say otherwise, so
the refresher can commit rows and its watermark in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.store import audit


def outcome_label(outcome: str | None, eventcount: int | None, state: str | None) -> str:
    """``possible success, 4 coalesced`` / ``unknown (payload truncated)`` / ``success``."""
    if outcome == "possible_success":
        return f"possible success, {eventcount or 1} coalesced"
    if outcome == "unknown":
        return f"unknown (payload {state or 'unreadable'})"
    return "success"


TRIAGE_STATUSES = ("new", "investigating", "benign", "malicious", "escalated")

# Columns a caller may write when inserting a detection (everything but id, chain and triage state).
DETECTION_COLUMNS = (
    "event_key",
    "event_time",
    "device_time",
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
    "eventcount",
    "payload_state",
    "outcome",
)
# What `GET /api/detections` lists (the ARCHITECTURE.md record without the payload).
LIST_FIELDS = (
    "id",
    "event_key",
    "event_time",
    "device_time",
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
    "suppression_overridden_by",
    "triage_status",
    "triage_note",
    "triage_by",
    "triage_at",
    "eventcount",
    "payload_state",
    "outcome",
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
    "device_time",
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
    "account_kind",
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
    item["outcome_label"] = outcome_label(item["outcome"], item["eventcount"], item["payload_state"])
    overridden = item["suppression_overridden_by"]
    if overridden is not None:
        item["suppression"] = {
            "overridden_entry": overridden,
            "reason": "suppression overridden: joined a chain",
            "explanation": f"Suppression overridden: joined a chain. Allowlist entry #{overridden} matches "
            "this creation, but another actor that no entry allowlists then added credentials to the "
            "created identity or granted it privilege, so it is shown.",
        }
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


# A batch insert also writes suppressed_by (the refresher matches the allowlist before inserting) and
# found_by (migration 0012: which search found the row).
_BATCH_COLUMNS = (*DETECTION_COLUMNS, "suppressed_by", "found_by")
_INSERT_DETECTIONS = (
    f"INSERT INTO detections ({', '.join(_BATCH_COLUMNS)}) VALUES ({', '.join('?' * len(_BATCH_COLUMNS))})"
)
_JSON_COLUMNS = frozenset({"also_seen_in", "target_keys"})
_FLAG_COLUMNS = frozenset({"is_service_account", "payload_ok", "admin_grant"})


# Per column list, the positions of the columns whose values are converted on the way in.
_Conversions = tuple[list[int], list[int], int | None, list[tuple[int, Any]]]
_CONVERSIONS: dict[tuple[str, ...], _Conversions] = {}


def _conversions(columns: Sequence[str]) -> _Conversions:
    key = tuple(columns)
    found = _CONVERSIONS.get(key)
    if found is None:
        found = (
            [i for i, c in enumerate(key) if c in _JSON_COLUMNS],
            [i for i, c in enumerate(key) if c in _FLAG_COLUMNS],
            key.index("mfa") if "mfa" in key else None,
            [(i, _DELIVERY_DEFAULTS[c]) for i, c in enumerate(key) if c in _DELIVERY_DEFAULTS],
        )
        _CONVERSIONS[key] = found
    return found


def _row_values(record: Mapping[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    """The stored values of `columns`: JSON lists as sorted JSON text, flags as 0/1, mfa as NULL or 0/1,
    missing delivery fields as one whole event (`_DELIVERY_DEFAULTS`)."""
    json_at, flag_at, mfa_at, default_at = _conversions(columns)
    get = record.get
    values = [get(column) for column in columns]
    for i in json_at:
        values[i] = json.dumps(sorted(values[i] or []))
    for i in flag_at:
        values[i] = 1 if values[i] else 0
    if mfa_at is not None and values[mfa_at] is not None:
        values[mfa_at] = int(bool(values[mfa_at]))
    for i, default in default_at:
        if values[i] is None:
            values[i] = default
    return tuple(values)


# Migration 0014: a batch's rows go into the text index with one statement (`first_id` bound), and
# their distinct values of the repeating columns into `search_values`, while `detection_batch` holds the
# batch's row and the per-row trigger leaves both alone.
_INDEX_BATCH = (
    "INSERT INTO detections_search (rowid, target_account, target_id, correlation_id, triage_note) "
    "SELECT id, lower(target_account), lower(target_id), lower(correlation_id), lower(triage_note) "
    "FROM detections WHERE id > :first_id ORDER BY id"
)
_VALUE_AT = tuple(
    (column, _BATCH_COLUMNS.index(column))
    for column in ("event_name", "actor", "actor_id", "source_ip", "user_agent", "log_source")
)
_INSERT_VALUE = (
    "INSERT INTO search_values (column_name, value) VALUES (?, ?) ON CONFLICT (column_name, value) DO NOTHING"
)


def _search_values(rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, Any]]:
    """The distinct (column, value) pairs of the batch that the trigger would add: NULL and '' are not."""
    found = {(column, row[i]) for row in rows for column, i in _VALUE_AT}
    return sorted(
        ((column, value) for column, value in found if value is not None and value != ""),
        key=lambda pair: (pair[0], str(pair[1])),
    )


# Migration 0019: the batch's counts, while `detection_batch` holds its row and the per-row count triggers
# leave them alone. The bucket keys are computed by SQLite from the stored rows (the triggers' own
# expressions), read once, grouped here, and added with one upsert per bucket.
_BATCH_BUCKETS = (
    "SELECT (event_time / 3600000) * 3600000, (event_time / 86400000) * 86400000, cloud_platform, "
    "is_service_account, suppressed_by IS NOT NULL, IFNULL(actor_id, ''), IFNULL(actor, ''), actor IS NULL, "
    "triage_status FROM detections WHERE id > ?"
)
_ADD_HOUR_COUNT = (
    "INSERT INTO detection_hour_counts (hour_ms, cloud_platform, is_service_account, suppressed, n) "
    "VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (hour_ms, cloud_platform, is_service_account, suppressed) DO UPDATE SET n = n + excluded.n"
)
_ADD_ACTOR_DAY_COUNT = (
    "INSERT INTO detection_actor_day_counts (day_ms, actor_id, actor, actor_null, n) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (day_ms, actor_id, actor, actor_null) DO UPDATE SET n = n + excluded.n"
)
_ADD_STATE_COUNT = (
    "INSERT INTO detection_state_counts (cloud_platform, is_service_account, suppressed, triage_status, n) "
    "VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (cloud_platform, is_service_account, suppressed, triage_status) DO UPDATE SET n = n + excluded.n"
)


def _count_batch(conn: sqlite3.Connection, first_id: int) -> None:
    """Add the detections after `first_id` to the three count tables (what the insert triggers add)."""
    hours: Counter[tuple[Any, ...]] = Counter()
    actor_days: Counter[tuple[Any, ...]] = Counter()
    states: Counter[tuple[Any, ...]] = Counter()
    for hour, day, platform, service, suppressed, actor_id, actor, actor_null, triage in conn.execute(
        _BATCH_BUCKETS, (first_id,)
    ):
        hours[(hour, platform, service, suppressed)] += 1
        if not suppressed:
            actor_days[(day, actor_id, actor, actor_null)] += 1
        states[(platform, service, suppressed, triage)] += 1
    for statement, counter in (
        (_ADD_HOUR_COUNT, hours),
        (_ADD_ACTOR_DAY_COUNT, actor_days),
        (_ADD_STATE_COUNT, states),
    ):
        conn.executemany(statement, [(*key, n) for key, n in counter.items()])


def _indexes_batches(conn: sqlite3.Connection) -> bool:
    """Whether the store's text index trigger skips rows inserted while `detection_batch` holds a row
    (migration 0014 on a store with the index)."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'detections_search_insert'"
    ).fetchone()
    return row is not None and "detection_batch" in row[0]


def insert_detections(conn: sqlite3.Connection, records: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert new detections (and their `detection_events` rows) with one executemany each; returns the new
    ids in the order of `records`. `suppressed_by` is taken from each record (None when absent). The text
    index (migration 0014) and the counts (migration 0019) get the whole batch at once; call inside a
    transaction."""
    if not records:
        return []
    (before,) = conn.execute("SELECT IFNULL(MAX(id), 0) FROM detections").fetchone()
    values = [_row_values(r, _BATCH_COLUMNS) for r in records]
    conn.execute("INSERT INTO detection_batch (first_id) VALUES (?)", (before,))
    conn.executemany(_INSERT_DETECTIONS, values)
    _count_batch(conn, before)
    if _indexes_batches(conn):
        conn.execute(_INDEX_BATCH, {"first_id": before})
        conn.executemany(_INSERT_VALUE, _search_values(values))
    conn.execute("DELETE FROM detection_batch")
    # AUTOINCREMENT ids only grow, and one executemany inserts in order.
    ids = [r[0] for r in conn.execute("SELECT id FROM detections WHERE id > ? ORDER BY id", (before,))]
    if len(ids) != len(records):
        raise sqlite3.IntegrityError(f"inserted {len(records)} detections but found {len(ids)} new ids")
    conn.executemany(
        _INSERT_EVENT,
        [
            (r["event_key"], i, r["cloud_platform"], r["event_time"], r.get("event_name") or "")
            for r, i in zip(records, ids, strict=True)
        ],
    )
    return ids


def _column_value(record: Mapping[str, Any], column: str) -> Any:
    value = record.get(column)
    if column in ("also_seen_in", "target_keys"):
        return json.dumps(sorted(value or []))
    if column in ("is_service_account", "payload_ok"):
        return 1 if value else 0
    if column == "mfa":
        return None if value is None else int(bool(value))
    if value is None and column in _DELIVERY_DEFAULTS:
        return _DELIVERY_DEFAULTS[column]
    return value


# A record built without what QRadar's delivery did to its event: one whole event.
_DELIVERY_DEFAULTS = {"eventcount": 1, "payload_state": "parsed", "outcome": "success"}


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
    """Azure AD / Office 365 detections whose own time (device_time, else event_time) is in [start_ms,
    end_ms]: candidates for twin matching (migration 0013 indexes that expression)."""
    return conn.execute(
        "SELECT id, event_key, event_time, device_time, event_name, cloud_platform, account_kind, actor, "
        "actor_id, target_account, target_keys, correlation_id FROM detections "
        "WHERE cloud_platform IN ('Azure AD', 'Office 365') "
        "AND COALESCE(device_time, event_time) BETWEEN ? AND ?",
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


def insert_follow_ons(conn: sqlite3.Connection, records: Sequence[Mapping[str, Any]]) -> None:
    """Insert follow-on events (one executemany); an event key already stored is ignored."""
    if records:
        conn.executemany(
            f"INSERT OR IGNORE INTO follow_on_events ({', '.join(FOLLOW_ON_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(FOLLOW_ON_COLUMNS))})",
            [_row_values(r, FOLLOW_ON_COLUMNS) for r in records],
        )


def has_creations_since(conn: sqlite3.Connection, since_ms: int) -> bool:
    row = conn.execute("SELECT 1 FROM detections WHERE event_time >= ? LIMIT 1", (since_ms,)).fetchone()
    return row is not None


# -- chains ---------------------------------------------------------------------------------------------

_CHAIN_CREATION_COLUMNS = (
    "id, event_key, event_time, device_time, event_name, cloud_platform, account_kind, actor, "
    "actor_id, target_account, target_id, target_keys, correlation_id"
)


# Creations that can start or join a chain by their kind alone (migration 0008 indexes them).
CHAIN_CANDIDATE = (
    "((cloud_platform IN ('Azure AD', 'Office 365') "
    "AND account_kind IN ('application', 'service_principal', 'credential', 'federated_credential', "
    "'domain', 'domain_federation', 'app_owner')) OR "
    "(cloud_platform = 'AWS' AND account_kind IN ('access_key', 'login_profile', 'account_assignment')))"
)
# Without statistics the planner prefers the platform index, which reads every AWS row of the window.
_BY_CHAIN_CANDIDATES = "INDEXED BY detections_chain_candidates"


def chain_named_keys(conn: sqlite3.Connection, since_ms: int) -> set[str]:
    """Target keys (lower-cased) named by follow-on events and AWS credential creations from `since_ms` on:
    a creation whose target is one of them joins the chain inputs (`chain_inputs`)."""
    keys: set[str] = set()
    for (text,) in conn.execute(
        "SELECT target_keys FROM follow_on_events WHERE event_time >= ?", (since_ms,)
    ):
        keys.update(k for k in _json_list(text) if isinstance(k, str))
    for (text,) in conn.execute(
        f"SELECT target_keys FROM detections {_BY_CHAIN_CANDIDATES} WHERE event_time >= ? AND {CHAIN_CANDIDATE} "
        "AND (cloud_platform = 'AWS' OR account_kind = 'app_owner')",
        (since_ms,),
    ):
        keys.update(k for k in _json_list(text) if isinstance(k, str))
    return keys


def chain_inputs(conn: sqlite3.Connection, since_ms: int) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
    """Creations and follow-on events from `since_ms` on: what chains are recomputed from.

    Only creations that can be in a chain are read: Entra application / service principal / credential
    creations (the 60-second chain), AWS access keys and login profiles, and creations whose target a
    follow-on event or one of those credentials names.
    """
    follow_ons = conn.execute(
        "SELECT event_key, event_time, device_time, event_name, cloud_platform, actor, actor_id, "
        "target_account, target_keys, correlation_id, admin_grant, account_kind FROM follow_on_events "
        "WHERE event_time >= ? "
        "ORDER BY event_time, event_key",
        (since_ms,),
    ).fetchall()
    found: dict[int, sqlite3.Row] = {}
    for row in conn.execute(
        f"SELECT {_CHAIN_CREATION_COLUMNS} FROM detections {_BY_CHAIN_CANDIDATES} "
        f"WHERE event_time >= ? AND {CHAIN_CANDIDATE}",
        (since_ms,),
    ):
        found[row["id"]] = row
    # Creations a follow-on event or an AWS credential names (CreateUser → CreateAccessKey).
    # An Entra owner added is a detection and a grant: it names the creation it may chain to.
    named = [
        *follow_ons,
        *(r for r in found.values() if r["cloud_platform"] == "AWS" or r["account_kind"] == "app_owner"),
    ]
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


def _creations_named(
    conn: sqlite3.Connection, keys: Sequence[str], start_ms: int, end_ms: int
) -> dict[int, sqlite3.Row]:
    """Creations in [start_ms, end_ms) whose lower-cased target name or ID is one of `keys` (one indexed
    look-up per column and chunk: migration 0018)."""
    found: dict[int, sqlite3.Row] = {}
    for column in ("target_account", "target_id"):
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT {_CHAIN_CREATION_COLUMNS}, chain_id FROM detections "
                f"WHERE lower({column}) IN ({marks}) AND event_time >= ? AND event_time < ?",
                [*chunk, start_ms, end_ms],
            ):
                found[row["id"]] = row
    return found


def remembered_creations(
    conn: sqlite3.Connection, since_ms: int, memory_from_ms: int
) -> tuple[list[sqlite3.Row], list[sqlite3.Row], list[int]]:
    """Escalation memory: creations in [memory_from_ms, since_ms) — before what `chain_inputs` reads —
    whose target an administrator grant from `since_ms` on names, found by target key, plus the stored
    chains they are in (those chains' creations and follow-on events, so a chain rebuilt with the grant
    keeps its earlier steps). Returns (creations, follow-on events, ids of those chains)."""
    if memory_from_ms >= since_ms:
        return [], [], []
    keys = sorted(
        {
            k
            for (text,) in conn.execute(
                "SELECT target_keys FROM follow_on_events WHERE event_time >= ? AND admin_grant = 1",
                (since_ms,),
            )
            for k in _json_list(text)
            if isinstance(k, str)
        }
    )
    if not keys:
        return [], [], []
    found = _creations_named(conn, keys, memory_from_ms, since_ms)
    chain_ids = sorted({r["chain_id"] for r in found.values() if r["chain_id"] is not None})
    follow_ons: list[sqlite3.Row] = []
    if chain_ids:
        marks = ",".join("?" * len(chain_ids))
        members = conn.execute(
            f"SELECT event_key, detection_id FROM chain_events WHERE chain_id IN ({marks})", chain_ids
        ).fetchall()
        detection_ids = sorted(
            {m["detection_id"] for m in members if m["detection_id"] is not None} - set(found)
        )
        for i in range(0, len(detection_ids), 500):
            chunk = detection_ids[i : i + 500]
            for row in conn.execute(
                f"SELECT {_CHAIN_CREATION_COLUMNS}, chain_id FROM detections "
                f"WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                found[row["id"]] = row
        follow_keys = sorted({m["event_key"] for m in members if m["detection_id"] is None})
        for i in range(0, len(follow_keys), 500):
            chunk = follow_keys[i : i + 500]
            follow_ons += conn.execute(
                "SELECT event_key, event_time, event_name, cloud_platform, actor, actor_id, target_account, "
                f"target_keys, correlation_id, admin_grant FROM follow_on_events "
                f"WHERE event_key IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
    creations = sorted(found.values(), key=lambda r: (r["event_time"], r["id"]))
    return creations, follow_ons, chain_ids


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


def replace_chains(
    conn: sqlite3.Connection,
    since_ms: int,
    chains: Sequence[ChainRow],
    now_ms: int,
    also_replace: Sequence[int] = (),
) -> None:
    """Make the stored chains starting at or after `since_ms`, and the chains `also_replace` names (older
    chains an administrator grant reopened: `remembered_creations`), exactly `chains` (upsert by key), and
    set chain membership, severity and confidence on the detections involved."""
    older = sorted(set(also_replace))
    older_marks = ",".join("?" * len(older))
    older_clause = f" OR id IN ({older_marks})" if older else ""
    old = {
        r["chain_key"]: r["id"]
        for r in conn.execute(
            f"SELECT id, chain_key FROM chains WHERE first_time >= ?{older_clause}", (since_ms, *older)
        )
    }
    wanted = {c.chain_key for c in chains}
    stale = [cid for key, cid in old.items() if key not in wanted]
    # Reset the members of the chains being replaced (only chains raise severity, so every other
    # detection already has its base values), then apply the new membership.
    conn.execute(
        "UPDATE detections SET chain_id = NULL, chain_kind = NULL, severity = base_severity, "
        f"confidence = base_confidence WHERE chain_id IN (SELECT id FROM chains WHERE first_time >= ?{older_clause})",
        (since_ms, *older),
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


# What `q` searches: a detection matches when one of these contains the text, ASCII letters in any case
# (SQLite's LIKE). Migration 0007 indexes exactly these columns: the distinct values of the repeating ones
# (search_values_text, then the column's B-tree index to the detections), the others per detection
# (detections_search).
SEARCH_COLUMNS = (
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
# The trigram index finds texts of at least three characters; shorter ones are read from the rows.
MIN_INDEXED_TEXT = 3
# SQLite's lower() and LIKE fold ASCII letters only; so does this (str.lower folds every script).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def search_phrase(text: str) -> str | None:
    """The FTS5 query that finds `text` in the trigram indexes (one quoted phrase: inside double quotes
    nothing is query syntax but a doubled quote, so operators and wildcards in `text` are literal), or None
    when the index cannot answer it: fewer than three characters (no trigram), or a NUL (SQLite's LIKE
    stops at it)."""
    if len(text) < MIN_INDEXED_TEXT or "\x00" in text:
        return None
    return '"' + text.translate(_ASCII_LOWER).replace('"', '""') + '"'


def has_search_index(conn: sqlite3.Connection) -> bool:
    """Whether migration 0007 created the trigram indexes (an SQLite without FTS5's trigram tokenizer
    gets the store without them, and text search reads the rows)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'detections_search'"
    ).fetchone()
    return row is not None


_VALUE_COLUMNS = ("event_name", "actor", "actor_id", "source_ip", "user_agent", "log_source")
# The ids of the detections a search phrase matches (the phrase bound twice).
_SEARCH_MATCHES = (
    "WITH matched (column_name, value) AS (SELECT column_name, value FROM search_values WHERE id IN"
    " (SELECT rowid FROM search_values_text WHERE search_values_text MATCH ?))"
    " SELECT rowid FROM detections_search WHERE detections_search MATCH ?"
    + "".join(
        f" UNION SELECT id FROM detections WHERE {column} IN"
        f" (SELECT value FROM matched WHERE column_name = '{column}')"
        for column in _VALUE_COLUMNS
    )
)
_SEARCH_MATCH = f"id IN ({_SEARCH_MATCHES})"
# An index entry walked and tested in Python costs about this fraction of a row looked up by id.
_WALK_OVER_LOOKUP = 5
# Matches passed as parameters (SQLite before 3.32 allows 999 per statement); more: the index again.
_IDS_PER_STATEMENT = 500
# Filters the "new, not suppressed" list answers from its partial index (detections_new_active_time).
_NEW_ACTIVE_FIELDS = frozenset({"suppressed", "triage_statuses", "since_ms", "until_ms"})
# Filters the per-state counts of migration 0007 answer on their own (the list's total without the rows).
_COUNTED_FIELDS = frozenset({"platforms", "service_accounts_only", "suppressed", "triage_statuses"})


def _where(f: DetectionFilter, *, indexed_search: bool = True) -> tuple[str, list[Any]]:
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
        # Known statuses are written as literals: the planner matches a partial index's WHERE
        # (detections_new_active_time) against literals only, never against bound parameters.
        known = [s for s in f.triage_statuses if s in TRIAGE_STATUSES]
        unknown = [s for s in f.triage_statuses if s not in TRIAGE_STATUSES]
        terms = [f"'{s}'" for s in dict.fromkeys(known)] + ["?"] * len(unknown)
        where.append(
            f"triage_status = {terms[0]}" if len(terms) == 1 else f"triage_status IN ({', '.join(terms)})"
        )
        args.extend(unknown)
    if f.text:
        phrase = search_phrase(f.text) if indexed_search else None
        if phrase is not None:
            where.append(_SEARCH_MATCH)
            args += [phrase, phrase]
        else:
            where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in SEARCH_COLUMNS) + ")")
            args += [_like(f.text)] * len(SEARCH_COLUMNS)
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
    indexed_search: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """(items, total). `order_by` must come from SORT_COLUMNS (the API layer builds it).

    `indexed_search=False` answers text search by reading the rows (what the index must equal; tests)."""
    indexed = indexed_search and has_search_index(conn)
    clause, args = _where(f, indexed_search=indexed)
    fields = _filter_fields(f)
    phrase = search_phrase(f.text) if f.text and indexed else None
    if fields == {"text"} and phrase is not None:
        page, total = _search_page(conn, phrase, clause, args, order_by=order_by, limit=limit, offset=offset)
    else:
        total = _total(conn, f, clause, args)
        source = "detections"
        new_active = f.suppressed is False and f.triage_statuses == ("new",)
        if new_active and fields <= _NEW_ACTIVE_FIELDS and order_by.startswith("event_time "):
            # Without statistics the planner prefers detections_triage_time, whose page reads the rows to
            # test suppressed_by (a deep page reads every row before it).
            source = "detections INDEXED BY detections_new_active_time"
        # The page's ids first (the sort carries the sort column and id only, not 33 columns per
        # candidate), then their rows.
        page = [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM {source} {clause} ORDER BY {order_by}, id DESC LIMIT ? OFFSET ?",
                [*args, limit, offset],
            )
        ]
    rows = {
        r["id"]: r
        for r in conn.execute(
            f"SELECT {', '.join(LIST_FIELDS)} FROM detections WHERE id IN ({','.join('?' * len(page))})", page
        )
    }
    # A detection deleted between the two reads is left out of the page.
    return [detection_to_json(rows[i]) for i in page if i in rows], int(total)


def _filter_fields(f: DetectionFilter) -> set[str]:
    """The names of the filter's fields that restrict the list."""
    empty = DetectionFilter()
    return {name for name in DetectionFilter.__dataclass_fields__ if getattr(f, name) != getattr(empty, name)}


def _search_page(
    conn: sqlite3.Connection,
    phrase: str,
    clause: str,
    args: list[Any],
    *,
    order_by: str,
    limit: int,
    offset: int,
) -> tuple[list[int], int]:
    """Text search alone: (the page's ids, the total), the matches read once from the trigram indexes."""
    matches = [r[0] for r in conn.execute(_SEARCH_MATCHES, [phrase, phrase])]
    total = len(matches)
    if offset >= total:
        return [], total
    stored = conn.execute("SELECT MAX(id) FROM detections").fetchone()[0] or 0
    if order_by == "event_time DESC" and (offset + limit) * stored <= _WALK_OVER_LOOKUP * total * total:
        # Many matches: the time index newest first, each id tested against the matches, reads about
        # (offset + limit) * stored / matches index entries and no row.
        wanted, page, skip = set(matches), [], offset
        cursor = conn.execute(
            "SELECT id FROM detections INDEXED BY detections_time ORDER BY event_time DESC, id DESC"
        )
        try:
            for (did,) in cursor:
                if did in wanted:
                    if skip:
                        skip -= 1
                    else:
                        page.append(did)
                        if len(page) == limit:
                            break
        finally:
            cursor.close()
        return page, total
    # Few matches (or another order): each match looked up by id and sorted.
    if total <= _IDS_PER_STATEMENT:
        sql = f"SELECT id FROM detections WHERE id IN ({','.join('?' * total)})"
        params = list(matches)
    else:
        sql, params = f"SELECT id FROM detections {clause}", list(args)
    rows = conn.execute(f"{sql} ORDER BY {order_by}, id DESC LIMIT ? OFFSET ?", [*params, limit, offset])
    return [r[0] for r in rows], total


def _total(conn: sqlite3.Connection, f: DetectionFilter, clause: str, args: list[Any]) -> int:
    """How many detections the filter selects; from the counts of migration 0007 when they answer it alone
    (counting 1,000,000 index entries costs 10 to 100 times a whole-table COUNT(*))."""
    fields = _filter_fields(f)
    if fields and fields <= _COUNTED_FIELDS:
        where, params = ["1"], []
        if f.platforms:
            where.append(f"cloud_platform IN ({','.join('?' * len(f.platforms))})")
            params.extend(f.platforms)
        if f.service_accounts_only:
            where.append("is_service_account = 1")
        if f.suppressed is not None:
            where.append("suppressed = ?")
            params.append(int(f.suppressed))
        if f.triage_statuses:
            where.append(f"triage_status IN ({','.join('?' * len(f.triage_statuses))})")
            params.extend(f.triage_statuses)
        sql = f"SELECT COALESCE(SUM(n), 0) FROM detection_state_counts WHERE {' AND '.join(where)}"
    else:
        sql, params = f"SELECT COUNT(*) FROM detections {clause}", args
    return int(conn.execute(sql, params).fetchone()[0])


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
    item["context"] = context_events(conn, row)
    item["triage_history"] = [
        dict(r)
        for r in conn.execute(
            "SELECT status, note, by_user AS by, at_ms AS at FROM triage_history WHERE detection_id = ? "
            "ORDER BY at_ms, id",
            (detection_id,),
        )
    ]
    return item


# How far around a detection its context-only events are shown, and at most how many.
CONTEXT_BEFORE_MS = 3_600_000
CONTEXT_AFTER_MS = 24 * 3_600_000
CONTEXT_LIMIT = 50


def context_events(conn: sqlite3.Connection, row: sqlite3.Row) -> list[dict[str, Any]]:
    """Context-only events (stored follow-on events with an `account_kind`: MFA devices, IAM groups) of the
    detection's target on its platform, received from an hour before it to a day after, in the order of
    their own time (feeds deliver out of order)."""
    keys = sorted({k for k in _json_list(row["target_keys"]) if isinstance(k, str)})[:400]
    if not keys:
        return []
    marks = ",".join("?" * len(keys))
    return [
        dict(r)
        for r in conn.execute(
            "SELECT event_key, event_time, device_time, event_name, account_kind, actor, target_account, "
            "log_source FROM follow_on_events WHERE event_time BETWEEN ? AND ? AND account_kind IS NOT NULL "
            f"AND cloud_platform = ? AND lower(target_account) IN ({marks}) "
            "ORDER BY COALESCE(device_time, event_time), event_key "
            "LIMIT ?",
            (
                row["event_time"] - CONTEXT_BEFORE_MS,
                row["event_time"] + CONTEXT_AFTER_MS,
                row["cloud_platform"],
                *keys,
                CONTEXT_LIMIT,
            ),
        )
    ]


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
