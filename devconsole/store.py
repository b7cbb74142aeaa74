"""The dev console's event store: one SQLite file holding QRadar-normalized events and the config
tables (QID records, categories, log sources and their types, reference data, offenses) that AQL's
lookup functions read. Schema: ``schema.sql`` beside this file.

Each thread opens its own connection with :meth:`EventStore.connect` (sqlite3 connections are not
shared across threads). Writers batch rows into one transaction; readers see a consistent snapshot (WAL).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from devconsole import storedelay

SCHEMA_PATH = Path(__file__).with_name("schema.sql")

# Log source types the console knows out of the box. IDs 347/445/413/397 are those IBM's pySigma
# QRadar backend uses, as are 449 (Google Cloud Audit) and 442 (Google G Suite); the display strings of 445,
# 397, 449 and 442 are UNCONFIRMED there. The app resolves IDs from names at run time and falls back to the
# IDs, so either matching a console is enough.
BUILTIN_LOG_SOURCE_TYPES: dict[int, str] = {
    347: "Amazon AWS CloudTrail",
    445: "Microsoft Azure Active Directory",
    413: "Microsoft Azure Platform",
    397: "Microsoft Office 365",
    449: "Google Cloud Audit",
    442: "Google G Suite",
    11: "Linux OS",
    12: "Microsoft Windows Security Event Log",
    10: "Cisco ASA",
    4: "Palo Alto PA Series",
}

# High-level categories with QRadar's numbering (thousands); low-level ones below them. The low-level IDs
# are this console's choice (QRadar's own numbers for these names are UNCONFIRMED).
BUILTIN_HIGH_LEVEL_CATEGORIES: dict[int, str] = {
    1000: "Recon",
    2000: "DoS",
    3000: "Authentication",
    4000: "Access",
    5000: "Exploit",
    7000: "Suspicious Activity",
    8000: "System",
    9000: "Policy",
    10000: "Unknown",
    15000: "Audit",
}
BUILTIN_LOW_LEVEL_CATEGORIES: dict[int, tuple[str, int]] = {
    3035: ("User Account Added", 3000),
    3036: ("User Account Removed", 3000),
    3037: ("User Account Changed", 3000),
    3014: ("User Login Success", 3000),
    3015: ("User Login Failure", 3000),
    3060: ("Group Member Added", 3000),
    3070: ("Policy Added", 9000),
    4001: ("Access Permitted", 4000),
    4002: ("Access Denied", 4000),
    8050: ("Information", 8000),
    10009: ("Unknown", 10000),
    15001: ("Audit Event", 15000),
}

# The console's rules: (id, name, type, origin). The scenario's offenses cite these ids in their `rules`.
BUILTIN_RULES: tuple[tuple[int, str, str, str], ...] = (
    (100_411, "Cloud account created (T1136.003)", "EVENT", "USER"),
    (100_052, "Multiple login failures from one source", "EVENT", "USER"),
)
# QRadar's default offense closing reasons.
BUILTIN_CLOSING_REASONS: dict[int, str] = {1: "Non-Issue", 2: "False-Positive, Tuned", 3: "Policy Violation"}
# A fixed creation time for the built-in rules, so they read the same on every start.
_BUILTIN_CREATED_MS = 1_700_000_000_000

EVENT_COLUMNS: tuple[str, ...] = (
    "starttime",
    "endtime",
    "devicetime",
    "qid",
    "category",
    "highlevelcategory",
    "logsourceid",
    "devicetype",
    "username",
    "sourceip",
    "destinationip",
    "magnitude",
    "severity",
    "credibility",
    "relevance",
    "eventcount",
    "payload",
    "props",
    "searchable_at",
)
_EVENT_DEFAULTS: dict[str, Any] = {
    "username": None,
    "sourceip": None,
    "destinationip": None,
    "magnitude": 5,
    "severity": 5,
    "credibility": 5,
    "relevance": 5,
    "eventcount": 1,
    "payload": None,
    "props": None,
    "searchable_at": None,
}
# QIDs are allocated per log source type in blocks so that they read like QRadar's large numbers.
_QID_BLOCK = 1_000_000


class EventStore:
    """Owns ``events.db`` in a data directory and hands out per-thread connections."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()  # one writer at a time inside this process
        with self.connect() as conn:
            conn.executescript(SCHEMA_PATH.read_text())
            _add_missing_columns(conn)
            self._seed_builtins(conn)

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> EventStore:
        return cls(Path(data_dir) / "events.db")

    def connect(self, readonly: bool = False) -> sqlite3.Connection:
        """A new connection for the calling thread (autocommit off; use ``with conn:`` for transactions)."""
        if readonly:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            conn = sqlite3.connect(self.path, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    # -- config tables -------------------------------------------------------------------------

    def _seed_builtins(self, conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO log_source_types(id, name) VALUES (?, ?)",
            BUILTIN_LOG_SOURCE_TYPES.items(),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO categories(id, name, high_level_id) VALUES (?, ?, NULL)",
            BUILTIN_HIGH_LEVEL_CATEGORIES.items(),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO categories(id, name, high_level_id) VALUES (?, ?, ?)",
            [(cid, name, high) for cid, (name, high) in BUILTIN_LOW_LEVEL_CATEGORIES.items()],
        )
        for rule_id, name, rule_type, origin in BUILTIN_RULES:
            self._insert_rule(conn, rule_id, name, rule_type, origin, _BUILTIN_CREATED_MS)
        conn.executemany(
            "INSERT OR IGNORE INTO offense_closing_reasons(id, text) VALUES (?, ?)",
            BUILTIN_CLOSING_REASONS.items(),
        )

    @staticmethod
    def _insert_rule(
        conn: sqlite3.Connection, rule_id: int, name: str, rule_type: str, origin: str, created_ms: int
    ) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO rules(id, name, type, origin, identifier, creation_date, modification_date)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rule_id, name, rule_type, origin, str(uuid.uuid5(uuid.NAMESPACE_OID, f"rule-{rule_id}")),
             created_ms, created_ms),
        )  # fmt: skip

    def ensure_rule(self, rule_id: int, name: str, rule_type: str = "EVENT", origin: str = "USER") -> int:
        """Declare a rule (offenses cite it by id; AQL's RULENAME names it)."""
        with self._write_lock, self.connect() as conn:
            self._insert_rule(conn, rule_id, name, rule_type, origin, int(time.time() * 1000))
        return rule_id

    def add_closing_reason(self, text: str, *, reserved: bool = False, deleted: bool = False) -> int:
        with self._write_lock, self.connect() as conn:
            return conn.execute(
                "INSERT INTO offense_closing_reasons(text, is_reserved, is_deleted) VALUES (?, ?, ?)",
                (text, int(reserved), int(deleted)),
            ).lastrowid

    def ensure_log_source_type(self, type_id: int, name: str) -> int:
        with self._write_lock, self.connect() as conn:
            conn.execute("INSERT OR IGNORE INTO log_source_types(id, name) VALUES (?, ?)", (type_id, name))
        return type_id

    def ensure_category(self, category_id: int, name: str, high_level_id: int | None) -> int:
        with self._write_lock, self.connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO categories(id, name, high_level_id) VALUES (?, ?, ?)",
                (category_id, name, high_level_id),
            )
        return category_id

    def high_level_of(self, category_id: int) -> int:
        """The high-level category of a low-level one (a high-level id maps to itself)."""
        with self.connect(readonly=True) as conn:
            row = conn.execute("SELECT high_level_id FROM categories WHERE id = ?", (category_id,)).fetchone()
        if row is None:
            raise KeyError(f"unknown category {category_id}")
        return row[0] if row[0] is not None else category_id

    def ensure_log_source(self, name: str, type_id: int) -> int:
        """The id of the log source called ``name``, creating it on first sight (as auto-discovery does)."""
        with self._write_lock, self.connect() as conn:
            row = conn.execute("SELECT id FROM log_sources WHERE name = ?", (name,)).fetchone()
            if row:
                return row[0]
            return conn.execute(
                "INSERT INTO log_sources(name, type_id) VALUES (?, ?)", (name, type_id)
            ).lastrowid

    def log_source_coalescing(self) -> dict[int, bool]:
        """log source id -> whether it coalesces events (QRadar's ``coalesce_events``)."""
        with self.connect(readonly=True) as conn:
            return {
                row[0]: bool(row[1]) for row in conn.execute("SELECT id, coalesce_events FROM log_sources")
            }

    def set_log_source_coalescing(self, log_source_id: int, coalesce: bool) -> bool:
        """Switch coalescing of one log source; False when there is no such log source."""
        with self._write_lock, self.connect() as conn:
            changed = conn.execute(
                "UPDATE log_sources SET coalesce_events = ? WHERE id = ?", (int(coalesce), log_source_id)
            ).rowcount
        return changed > 0

    def add_event_counts(self, increments: Mapping[int, int], conn: sqlite3.Connection | None = None) -> None:
        """Add to the ``eventcount`` of stored events (events coalesced into a record already written)."""
        if not increments:
            return
        own = conn is None
        with self._write_lock:
            conn = conn or self.connect()
            try:
                with conn:
                    conn.executemany(
                        "UPDATE events SET eventcount = eventcount + ? WHERE id = ?",
                        [(count, event_id) for event_id, count in increments.items()],
                    )
            finally:
                if own:
                    conn.close()

    def ensure_qid(
        self, type_id: int, name: str, category_id: int, description: str = "", severity: int = 5
    ) -> int:
        """The QID of event ``name`` for a log source type, creating its record on first sight."""
        with self._write_lock, self.connect() as conn:
            # BEGIN IMMEDIATE: another process allocating a QID at the same moment waits here instead of
            # racing us to the same number (or to the same (type, name)).
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT qid FROM qid_records WHERE log_source_type_id = ? AND name = ?", (type_id, name)
            ).fetchone()
            if row:
                return row[0]
            base = type_id * _QID_BLOCK
            top = conn.execute(
                "SELECT MAX(qid) FROM qid_records WHERE qid >= ? AND qid < ?", (base, base + _QID_BLOCK)
            ).fetchone()[0]
            qid = (top or base) + 1
            conn.execute(
                "INSERT INTO qid_records(qid, name, description, severity, low_level_category_id,"
                " log_source_type_id) VALUES (?, ?, ?, ?, ?, ?)",
                (qid, name, description, severity, category_id, type_id),
            )
            return qid

    def declare_custom_property(self, name: str, value_type: str = "STRING") -> None:
        with self._write_lock, self.connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO custom_properties(name, value_type) VALUES (?, ?)", (name, value_type)
            )

    # -- events --------------------------------------------------------------------------------

    def insert_events(
        self, rows: Iterable[Mapping[str, Any]], conn: sqlite3.Connection | None = None
    ) -> list[int]:
        """Insert events in one transaction and return their ids in order.

        ``props`` may be a dict (stored as JSON); ``payload`` bytes or str (stored as bytes);
        ``endtime``/``devicetime`` default to ``starttime``; ``searchable_at`` to what the log source's
        store delay gives (`devconsole.storedelay`), or NULL (searchable at once).
        """
        rows = list(rows)
        if not rows:
            return []
        sql = f"INSERT INTO events({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
        own = conn is None
        with self._write_lock:
            conn = conn or self.connect()
            try:
                delays = storedelay.load_delays(conn)
                prepared = [_prepare_event(row, delays) for row in rows]
                if conn.in_transaction:
                    conn.commit()
                # BEGIN IMMEDIATE takes SQLite's write lock before reading MAX(id), so no other process
                # can insert in between: the new ids are contiguous from ``first``.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    first = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0] + 1
                    conn.executemany(sql, prepared)
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
                return list(range(first, first + len(prepared)))
            finally:
                if own:
                    conn.close()

    # -- store delay (devconsole.storedelay) ----------------------------------------------------

    def set_store_delay(self, logsourceid: int, delay: storedelay.StoreDelay | None) -> None:
        """Events of this log source ingested from now on become searchable as `delay` says (None: at once)."""
        with self._write_lock, self.connect() as conn:
            if delay is None:
                conn.execute("DELETE FROM store_delays WHERE logsourceid = ?", (logsourceid,))
            else:
                storedelay.save_delay(conn, logsourceid, delay)

    def clear_store_delays(self) -> None:
        with self._write_lock, self.connect() as conn:
            conn.execute("DELETE FROM store_delays")

    def store_delays(self) -> list[dict[str, Any]]:
        with self.connect(readonly=True) as conn:
            return storedelay.delays_json(conn)

    def release_pending(self, now_ms: int | None = None, logsourceid: int | None = None) -> int:
        """Events still held back (of one log source, or all) become searchable at `now_ms`; how many."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        with self._write_lock, self.connect() as conn:
            where, params = "searchable_at > ?", [now]
            if logsourceid is not None:
                where, params = where + " AND logsourceid = ?", [now, logsourceid]
            return conn.execute(f"UPDATE events SET searchable_at = ? WHERE {where}", [now, *params]).rowcount

    def pending_events(self, now_ms: int | None = None) -> list[dict[str, Any]]:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        with self.connect(readonly=True) as conn:
            return storedelay.pending_json(conn, now)

    def count_events(self) -> int:
        with self.connect(readonly=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    # -- offenses ------------------------------------------------------------------------------

    def add_offense(self, description: str, start_time: int, last_updated_time: int, **fields: Any) -> int:
        allowed = {
            "offense_type",
            "offense_source",
            "magnitude",
            "severity",
            "credibility",
            "relevance",
            "status",
            "close_time",
            "assigned_to",
            "follow_up",
            "protected",
            "domain_id",
            "rules",
            "id",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown offense fields: {sorted(unknown)}")
        if "rules" in fields and not isinstance(fields["rules"], str):
            fields["rules"] = json.dumps(fields["rules"])
        cols = ["description", "start_time", "last_updated_time", *fields]
        vals = [description, start_time, last_updated_time, *fields.values()]
        with self._write_lock, self.connect() as conn:
            return conn.execute(
                f"INSERT INTO offenses({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", vals
            ).lastrowid

    def link_offense_events(self, offense_id: int, event_ids: Iterable[int]) -> None:
        with self._write_lock, self.connect() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO offense_events(offense_id, event_id) VALUES (?, ?)",
                [(offense_id, eid) for eid in event_ids],
            )


# Columns added to tables after their first release: (table, column, definition). ``CREATE TABLE IF NOT
# EXISTS`` leaves an older events.db as it was, so these are added on open.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("log_sources", "coalesce_events", "INTEGER NOT NULL DEFAULT 1"),
    ("events", "searchable_at", "INTEGER"),  # store delays
)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, column, definition in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


def _prepare_event(
    row: Mapping[str, Any], delays: Mapping[int, storedelay.StoreDelay] | None = None
) -> tuple[Any, ...]:
    unknown = set(row) - set(EVENT_COLUMNS)
    if unknown:
        raise ValueError(f"unknown event columns: {sorted(unknown)}")
    values = {**_EVENT_DEFAULTS, **row}
    for required in ("starttime", "qid", "category", "highlevelcategory", "logsourceid", "devicetype"):
        if values.get(required) is None:
            raise ValueError(f"event is missing {required}")
    values.setdefault("endtime", values["starttime"])
    values.setdefault("devicetime", values["starttime"])
    if values["endtime"] is None:
        values["endtime"] = values["starttime"]
    if values["devicetime"] is None:
        values["devicetime"] = values["starttime"]
    if isinstance(values["payload"], str):
        values["payload"] = values["payload"].encode("utf-8")
    if values["searchable_at"] is None and delays:
        delay = delays.get(int(values["logsourceid"]))
        if delay is not None:
            values["searchable_at"] = delay.searchable_at(
                int(values["logsourceid"]), int(values["starttime"]), values["payload"]
            )
    if isinstance(values["props"], Mapping):
        values["props"] = json.dumps(values["props"], ensure_ascii=False) if values["props"] else None
    return tuple(values[c] for c in EVENT_COLUMNS)
