"""Reference data: ``/api/reference_data/sets`` and ``/maps`` with QRadar's codes and TTL expiry.

Expired values are purged from the store before every reference-data read and before every Ariel search
executes, so ``GET`` and AQL's REFERENCESETCONTAINS / REFERENCEMAP (which read the same tables) agree.
"""

from __future__ import annotations

import ipaddress
import json
import math
import sqlite3
import time

from flask import Response, request

from devconsole.server.api import bp, require
from devconsole.server.context import console, get_db
from devconsole.server.errors import (
    CODE_BAD_JSON,
    CODE_BAD_PARAMETER,
    CODE_CONFLICT,
    CODE_NOT_FOUND,
    CODE_NOT_READY,
    ApiError,
)
from devconsole.server.restquery import apply_range, list_response, object_response, parse_range
from devconsole.store import EventStore

ELEMENT_TYPES = ("ALN", "ALNIC", "IP", "NUM", "PORT", "DATE", "CIDR")
TIMEOUT_TYPES = ("FIRST_SEEN", "LAST_SEEN", "UNKNOWN")
MAX_TTL_SECONDS = 100 * 365 * 86400
_UNIT_SECONDS = {
    "second": 1,
    "sec": 1,
    "minute": 60,
    "min": 60,
    "hour": 3600,
    "day": 86400,
    "week": 604800,
    "mon": 30 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}


def now_ms() -> int:
    return int(time.time() * 1000)


def ttl_ms(text: str | None) -> int | None:
    """``'5 minutes'``, ``'1 month'``, ``'1 day 2 hours'`` -> milliseconds; ValueError when unreadable."""
    if text is None or not str(text).strip():
        return None
    parts = str(text).split()
    if len(parts) % 2:
        raise ValueError(f"time_to_live '{text}' must be pairs of a number and a unit, e.g. '5 minutes'")
    total = 0.0
    for count_text, unit_text in zip(parts[::2], parts[1::2], strict=True):
        try:
            count = float(count_text)
        except ValueError:
            raise ValueError(f"time_to_live '{text}': '{count_text}' is not a number") from None
        if not math.isfinite(count):
            raise ValueError(f"time_to_live '{text}': '{count_text}' is not a finite number")
        unit = unit_text.lower().rstrip(",")
        unit = unit[:-1] if unit.endswith("s") and unit[:-1] in _UNIT_SECONDS else unit
        if unit not in _UNIT_SECONDS or count < 0:
            raise ValueError(f"time_to_live '{text}': unknown unit '{unit_text}'")
        total += count * _UNIT_SECONDS[unit]
    if not math.isfinite(total) or total > MAX_TTL_SECONDS:
        raise ValueError(f"time_to_live '{text}' is out of range (at most 100 years)")
    return int(total * 1000)


def purge_expired(conn: sqlite3.Connection, at_ms: int | None = None) -> int:
    """Delete reference set and map values whose time to live has passed; returns how many.

    FIRST_SEEN counts from ``first_seen``, LAST_SEEN from ``last_seen``. A TTL with timeout_type UNKNOWN
    is treated as FIRST_SEEN (QRadar's behaviour for that combination is UNCONFIRMED).
    """
    at_ms = now_ms() if at_ms is None else at_ms
    removed = 0
    for table, values, key in (
        ("reference_sets", "reference_set_values", "set_name"),
        ("reference_maps", "reference_map_values", "map_name"),
    ):
        for row in conn.execute(
            f"SELECT name, timeout_type, time_to_live FROM {table} WHERE time_to_live IS NOT NULL"
        ).fetchall():
            try:
                ttl = ttl_ms(row[2])
            except ValueError:
                continue
            if ttl is None:
                continue
            column = "last_seen" if row[1] == "LAST_SEEN" else "first_seen"
            removed += conn.execute(
                f"DELETE FROM {values} WHERE {key} = ? AND {column} + ? <= ?", (row[0], ttl, at_ms)
            ).rowcount
    conn.commit()
    return removed


def purge_expired_in_store(store: EventStore) -> None:
    conn = store.connect()
    try:
        purge_expired(conn)
    finally:
        conn.close()


def normalize_value(element_type: str, value: object) -> str:
    """Validate a value for an element type; returns its stored text or raises ApiError 422/1005."""
    text = str(value).strip() if value is not None else ""
    bad = ApiError(422, CODE_BAD_PARAMETER, f"The value '{value}' is not a valid {element_type} value")
    if text == "":
        raise ApiError(422, CODE_BAD_PARAMETER, "The value must not be empty")
    try:
        if element_type == "NUM":
            number = float(text)
            if not math.isfinite(number):
                raise bad
            return str(int(number)) if number.is_integer() else str(number)
        if element_type == "PORT":
            port = int(text)
            if not 0 <= port <= 65535:
                raise bad
            return str(port)
        if element_type == "DATE":
            stamp = int(text)
            if not 0 <= stamp < 2**63:
                raise bad
            return str(stamp)
        if element_type == "IP":
            return str(ipaddress.ip_address(text))
        if element_type == "CIDR":
            return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise bad from None
    return text


def _param(name: str, required: bool = False) -> str | None:
    value = request.values.get(name)
    if required and (value is None or value == ""):
        raise ApiError(422, CODE_BAD_PARAMETER, f"Missing required parameter '{name}'")
    return value


def _creation_params() -> tuple[str, str, str, str | None]:
    name = _param("name", True)
    element_type = _param("element_type", True).upper()
    if element_type not in ELEMENT_TYPES:
        raise ApiError(
            422, CODE_BAD_PARAMETER, f"element_type '{element_type}' is not one of {', '.join(ELEMENT_TYPES)}"
        )
    timeout_type = (_param("timeout_type") or "UNKNOWN").upper()
    if timeout_type not in TIMEOUT_TYPES:
        raise ApiError(
            422, CODE_BAD_PARAMETER, f"timeout_type '{timeout_type}' is not one of {', '.join(TIMEOUT_TYPES)}"
        )
    time_to_live = _param("time_to_live") or None
    try:
        ttl_ms(time_to_live)
    except ValueError as exc:
        raise ApiError(422, CODE_BAD_PARAMETER, str(exc)) from None
    if len(name) > 255 or not name.strip():
        raise ApiError(422, CODE_BAD_PARAMETER, "name must be 1 to 255 characters")
    return name, element_type, timeout_type, time_to_live


def _fresh_db() -> sqlite3.Connection:
    db = get_db()
    purge_expired(db)
    return db


# --- sets ------------------------------------------------------------------------------------------


# Reference sets and maps are looked up the same way; only the table and the noun differ.
_COLLECTION_TABLES = {"set": "reference_sets", "map": "reference_maps"}


def _collection_row(db: sqlite3.Connection, kind: str, name: str) -> sqlite3.Row:
    """The row of reference ``kind`` ("set" or "map") called ``name``, or QRadar's 404/1002."""
    table = _COLLECTION_TABLES[kind]  # a fixed table name, never request data
    row = db.execute(f"SELECT * FROM {table} WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise ApiError(
            404,
            CODE_NOT_FOUND,
            f"The reference {kind} '{name}' does not exist.",
            f"The reference {kind} does not exist.",
        )
    return row


def _set_row(db: sqlite3.Connection, name: str) -> sqlite3.Row:
    return _collection_row(db, "set", name)


def _set_json(db: sqlite3.Connection, row: sqlite3.Row, with_data: bool) -> dict:
    count = db.execute(
        "SELECT COUNT(*) FROM reference_set_values WHERE set_name = ?", (row["name"],)
    ).fetchone()[0]
    item = {
        "name": row["name"],
        "element_type": row["element_type"],
        "number_of_elements": count,
        "time_to_live": row["time_to_live"],
        "timeout_type": row["timeout_type"],
        "creation_time": row["creation_time"],
        "namespace": "SHARED",
    }
    if with_data:
        values = db.execute(
            "SELECT value, source, first_seen, last_seen FROM reference_set_values "
            "WHERE set_name = ? ORDER BY first_seen, value",
            (row["name"],),
        ).fetchall()
        data = [
            {
                "value": v["value"],
                "source": v["source"],
                "first_seen": v["first_seen"],
                "last_seen": v["last_seen"],
                "domain_id": None,
            }
            for v in values
        ]
        page, _ = apply_range(data, parse_range(request.headers.get("Range")))
        item["data"] = page
    return item


def _add_set_value(db: sqlite3.Connection, row: sqlite3.Row, value: object, source: str) -> None:
    text = normalize_value(row["element_type"], value)
    stamp = now_ms()
    if row["element_type"] == "ALNIC":
        existing = db.execute(
            "SELECT value FROM reference_set_values WHERE set_name = ? AND lower(value) = lower(?)",
            (row["name"], text),
        ).fetchone()
        if existing:
            text = existing["value"]
    db.execute(
        "INSERT INTO reference_set_values(set_name, value, source, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(set_name, value)"
        " DO UPDATE SET last_seen = excluded.last_seen, source = excluded.source",
        (row["name"], text, source, stamp, stamp),
    )


@bp.get("/reference_data/sets")
def list_sets() -> Response:
    db = _fresh_db()
    rows = db.execute("SELECT * FROM reference_sets ORDER BY name").fetchall()
    return list_response([_set_json(db, row, False) for row in rows])


@bp.post("/reference_data/sets")
def create_set() -> Response:
    require("REFERENCEDATA")
    name, element_type, timeout_type, time_to_live = _creation_params()
    db = get_db()
    try:
        db.execute(
            "INSERT INTO reference_sets(name, element_type, timeout_type, time_to_live, creation_time)"
            " VALUES (?, ?, ?, ?, ?)",
            (name, element_type, timeout_type, time_to_live, now_ms()),
        )
        db.commit()
    except sqlite3.IntegrityError:
        db.rollback()
        raise ApiError(409, CODE_CONFLICT, f"The reference set name '{name}' is already in use.") from None
    return object_response(_set_json(db, _set_row(db, name), False), 201)


@bp.get("/reference_data/sets/<name>")
def get_set(name: str) -> Response:
    db = _fresh_db()
    return object_response(_set_json(db, _set_row(db, name), True))


@bp.post("/reference_data/sets/<name>")
def add_set_value(name: str) -> Response:
    require("REFERENCEDATA")
    db = _fresh_db()
    row = _set_row(db, name)
    value = _param("value", True)
    _add_set_value(db, row, value, _param("source") or "reference data api")
    db.commit()
    return object_response(_set_json(db, row, False))


@bp.delete("/reference_data/sets/<name>/<path:value>")
def delete_set_value(name: str, value: str) -> Response:
    require("REFERENCEDATA")
    db = _fresh_db()
    row = _set_row(db, name)
    if row["element_type"] == "ALNIC":
        deleted = db.execute(
            "DELETE FROM reference_set_values WHERE set_name = ? AND lower(value) = lower(?)", (name, value)
        ).rowcount
    else:
        try:
            stored = normalize_value(row["element_type"], value)
        except ApiError:
            stored = value
        deleted = db.execute(
            "DELETE FROM reference_set_values WHERE set_name = ? AND value = ?", (name, stored)
        ).rowcount
    db.commit()
    if not deleted:
        raise ApiError(404, CODE_NOT_READY, f"The value '{value}' is not in the reference set '{name}'.")
    return object_response(_set_json(db, row, False))


@bp.delete("/reference_data/sets/<name>")
def delete_set(name: str) -> Response:
    require("REFERENCEDATA")
    db = get_db()
    _set_row(db, name)
    purge_only = (request.values.get("purge_only") or "false").lower()
    if purge_only not in ("true", "false"):
        raise ApiError(422, CODE_BAD_PARAMETER, f"purge_only must be true or false, not '{purge_only}'")
    db.execute("DELETE FROM reference_set_values WHERE set_name = ?", (name,))
    if purge_only == "false":
        db.execute("DELETE FROM reference_sets WHERE name = ?", (name,))
    db.commit()
    task = console().add_task(f"Delete reference set {name}", "purged" if purge_only == "true" else "deleted")
    return object_response(task, 202)


def _json_body_or_400() -> object:
    raw = request.get_data(cache=True, as_text=True)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, CODE_BAD_JSON, f"The request body is not valid JSON: {exc}") from None


@bp.post("/reference_data/sets/bulk_load/<name>")
def bulk_load_set(name: str) -> Response:
    require("REFERENCEDATA")
    db = _fresh_db()
    row = _set_row(db, name)
    body = _json_body_or_400()
    if not isinstance(body, list) or any(isinstance(v, (dict, list)) or v is None for v in body):
        raise ApiError(400, CODE_BAD_JSON, 'The body must be a JSON array of values, e.g. ["a", "b"]')
    try:
        for value in body:
            _add_set_value(db, row, value, "reference data api")
    except ApiError:
        db.rollback()
        raise
    db.commit()
    return object_response(_set_json(db, row, False))


# --- maps ------------------------------------------------------------------------------------------


def _map_row(db: sqlite3.Connection, name: str) -> sqlite3.Row:
    return _collection_row(db, "map", name)


def _map_json(db: sqlite3.Connection, row: sqlite3.Row, with_data: bool) -> dict:
    count = db.execute(
        "SELECT COUNT(*) FROM reference_map_values WHERE map_name = ?", (row["name"],)
    ).fetchone()[0]
    item = {
        "name": row["name"],
        "element_type": row["element_type"],
        "key_label": row["key_label"],
        "value_label": row["value_label"],
        "number_of_elements": count,
        "time_to_live": row["time_to_live"],
        "timeout_type": row["timeout_type"],
        "creation_time": row["creation_time"],
        "namespace": "SHARED",
    }
    if with_data:
        values = db.execute(
            "SELECT key, value, source, first_seen, last_seen FROM reference_map_values "
            "WHERE map_name = ? ORDER BY key",
            (row["name"],),
        ).fetchall()
        item["data"] = {
            v["key"]: {
                "value": v["value"],
                "source": v["source"],
                "first_seen": v["first_seen"],
                "last_seen": v["last_seen"],
                "domain_id": None,
            }
            for v in values
        }
    return item


def _put_map_value(db: sqlite3.Connection, row: sqlite3.Row, key: object, value: object, source: str) -> None:
    key_text = str(key) if key is not None else ""
    if not key_text:
        raise ApiError(422, CODE_BAD_PARAMETER, "The key must not be empty")
    text = normalize_value(row["element_type"], value)
    stamp = now_ms()
    db.execute(
        "INSERT INTO reference_map_values(map_name, key, value, source, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(map_name, key) DO UPDATE SET value = excluded.value,"
        " last_seen = excluded.last_seen, source = excluded.source",
        (row["name"], key_text, text, source, stamp, stamp),
    )


@bp.get("/reference_data/maps")
def list_maps() -> Response:
    db = _fresh_db()
    rows = db.execute("SELECT * FROM reference_maps ORDER BY name").fetchall()
    return list_response([_map_json(db, row, False) for row in rows])


@bp.post("/reference_data/maps")
def create_map() -> Response:
    require("REFERENCEDATA")
    name, element_type, timeout_type, time_to_live = _creation_params()
    db = get_db()
    try:
        db.execute(
            "INSERT INTO reference_maps(name, element_type, key_label, value_label, timeout_type,"
            " time_to_live, creation_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                element_type,
                _param("key_label"),
                _param("value_label"),
                timeout_type,
                time_to_live,
                now_ms(),
            ),
        )
        db.commit()
    except sqlite3.IntegrityError:
        db.rollback()
        raise ApiError(409, CODE_CONFLICT, f"The reference map name '{name}' is already in use.") from None
    return object_response(_map_json(db, _map_row(db, name), False), 201)


@bp.get("/reference_data/maps/<name>")
def get_map(name: str) -> Response:
    db = _fresh_db()
    return object_response(_map_json(db, _map_row(db, name), True))


@bp.post("/reference_data/maps/<name>")
def add_map_value(name: str) -> Response:
    require("REFERENCEDATA")
    db = _fresh_db()
    row = _map_row(db, name)
    _put_map_value(
        db, row, _param("key", True), _param("value", True), _param("source") or "reference data api"
    )
    db.commit()
    return object_response(_map_json(db, row, False))


@bp.delete("/reference_data/maps/<name>/<path:key>")
def delete_map_value(name: str, key: str) -> Response:
    require("REFERENCEDATA")
    db = _fresh_db()
    row = _map_row(db, name)
    current = db.execute(
        "SELECT value FROM reference_map_values WHERE map_name = ? AND key = ?", (name, key)
    ).fetchone()
    wanted = request.values.get("value")
    if current is None or (wanted is not None and wanted != current["value"]):
        raise ApiError(
            404, CODE_NOT_READY, f"The key '{key}' with that value is not in the reference map '{name}'."
        )
    db.execute("DELETE FROM reference_map_values WHERE map_name = ? AND key = ?", (name, key))
    db.commit()
    return object_response(_map_json(db, row, False))


@bp.delete("/reference_data/maps/<name>")
def delete_map(name: str) -> Response:
    require("REFERENCEDATA")
    db = get_db()
    _map_row(db, name)
    purge_only = (request.values.get("purge_only") or "false").lower()
    if purge_only not in ("true", "false"):
        raise ApiError(422, CODE_BAD_PARAMETER, f"purge_only must be true or false, not '{purge_only}'")
    db.execute("DELETE FROM reference_map_values WHERE map_name = ?", (name,))
    if purge_only == "false":
        db.execute("DELETE FROM reference_maps WHERE name = ?", (name,))
    db.commit()
    task = console().add_task(f"Delete reference map {name}", "purged" if purge_only == "true" else "deleted")
    return object_response(task, 202)


@bp.post("/reference_data/maps/bulk_load/<name>")
def bulk_load_map(name: str) -> Response:
    require("REFERENCEDATA")
    db = _fresh_db()
    row = _map_row(db, name)
    body = _json_body_or_400()
    if not isinstance(body, dict) or any(isinstance(v, (dict, list)) or v is None for v in body.values()):
        raise ApiError(400, CODE_BAD_JSON, 'The body must be a JSON object of key: value, e.g. {"k": "v"}')
    try:
        for key, value in body.items():
            _put_map_value(db, row, key, value, "reference data api")
    except ApiError:
        db.rollback()
        raise
    db.commit()
    return object_response(_map_json(db, row, False))
