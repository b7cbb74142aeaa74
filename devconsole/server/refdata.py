"""Reference data: ``/api/reference_data/sets``, ``/maps``, ``/map_of_sets`` and ``/tables`` with QRadar's
codes and TTL expiry.

Expired values are purged from the store before every reference-data read and before every Ariel search
executes, so ``GET`` and AQL's REFERENCESETCONTAINS / REFERENCEMAP (which read the same tables) agree.
"""

from __future__ import annotations

import ipaddress
import json
import math
import sqlite3
import time
from dataclasses import dataclass

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


@dataclass(frozen=True)
class _Collection:
    """Where reference sets or maps live: they are stored, looked up, purged and deleted the same way."""

    noun: str  # "set" or "map", as QRadar's messages say
    table: str
    values_table: str
    name_column: str  # the values table's column naming its set or map


_SETS = _Collection("set", "reference_sets", "reference_set_values", "set_name")
_MAPS = _Collection("map", "reference_maps", "reference_map_values", "map_name")
_MAPS_OF_SETS = _Collection(
    "map of sets", "reference_maps_of_sets", "reference_map_of_sets_values", "map_name"
)
_TABLES = _Collection("table", "reference_tables", "reference_table_values", "table_name")
_ALL = (_SETS, _MAPS, _MAPS_OF_SETS, _TABLES)
CODE_NAMESPACE = 1012  # API 26.0: "The namespace value of SHARED was expected"


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
    for collection in _ALL:
        for row in conn.execute(
            f"SELECT name, timeout_type, time_to_live FROM {collection.table} WHERE time_to_live IS NOT NULL"
        ).fetchall():
            try:
                ttl = ttl_ms(row[2])
            except ValueError:
                continue
            if ttl is None:
                continue
            column = "last_seen" if row[1] == "LAST_SEEN" else "first_seen"
            removed += conn.execute(
                f"DELETE FROM {collection.values_table} WHERE {collection.name_column} = ?"
                f" AND {column} + ? <= ?",
                (row[0], ttl, at_ms),
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


# --- what sets and maps share -----------------------------------------------------------------------
# Table and column names below come from _SETS/_MAPS, never from request data.


def _collection_row(db: sqlite3.Connection, collection: _Collection, name: str) -> sqlite3.Row:
    """The row of the reference set or map called ``name``, or QRadar's 404/1002."""
    row = db.execute(f"SELECT * FROM {collection.table} WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise ApiError(
            404,
            CODE_NOT_FOUND,
            f"The reference {collection.noun} '{name}' does not exist.",
            f"The reference {collection.noun} does not exist.",
        )
    return row


def _collection_json(db: sqlite3.Connection, collection: _Collection, row: sqlite3.Row) -> dict:
    """A set's or map's JSON without its data; a map also names its key and value labels."""
    count = db.execute(
        f"SELECT COUNT(*) FROM {collection.values_table} WHERE {collection.name_column} = ?", (row["name"],)
    ).fetchone()[0]
    labels = {"key_label": row["key_label"], "value_label": row["value_label"]} if collection is _MAPS else {}
    return {
        "name": row["name"],
        "element_type": row["element_type"],
        **labels,
        "number_of_elements": count,
        "time_to_live": row["time_to_live"],
        "timeout_type": row["timeout_type"],
        "creation_time": row["creation_time"],
        "namespace": "SHARED",
    }


def _element_json(value_row: sqlite3.Row) -> dict:
    """One value of a set (a list entry) or of a map (under its key), as QRadar shows it with its data."""
    return {
        "value": value_row["value"],
        "source": value_row["source"],
        "first_seen": value_row["first_seen"],
        "last_seen": value_row["last_seen"],
        "domain_id": None,
    }


def _create_collection(collection: _Collection, labels: dict[str, str | None]) -> Response:
    """``POST /reference_data/sets|maps``: 201 with the new set or map, 409/1004 when the name is taken."""
    require("REFERENCEDATA")
    name, element_type, timeout_type, time_to_live = _creation_params()
    columns = {
        "name": name,
        "element_type": element_type,
        **labels,
        "timeout_type": timeout_type,
        "time_to_live": time_to_live,
        "creation_time": now_ms(),
    }
    db = get_db()
    try:
        db.execute(
            f"INSERT INTO {collection.table}({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            tuple(columns.values()),
        )
        db.commit()
    except sqlite3.IntegrityError:
        db.rollback()
        raise ApiError(
            409, CODE_CONFLICT, f"The reference {collection.noun} name '{name}' is already in use."
        ) from None
    return object_response(_collection_json(db, collection, _collection_row(db, collection, name)), 201)


def _delete_collection(collection: _Collection, name: str) -> Response:
    """``DELETE /reference_data/sets|maps/<name>``: drops the set or map, or with purge_only=true only its
    values; 202 with the console task."""
    require("REFERENCEDATA")
    db = get_db()
    _collection_row(db, collection, name)
    purge_only = (request.values.get("purge_only") or "false").lower()
    if purge_only not in ("true", "false"):
        raise ApiError(422, CODE_BAD_PARAMETER, f"purge_only must be true or false, not '{purge_only}'")
    db.execute(f"DELETE FROM {collection.values_table} WHERE {collection.name_column} = ?", (name,))
    if purge_only == "false":
        db.execute(f"DELETE FROM {collection.table} WHERE name = ?", (name,))
    db.commit()
    task = console().add_task(
        f"Delete reference {collection.noun} {name}", "purged" if purge_only == "true" else "deleted"
    )
    response = object_response(task, 202)
    # API 26.0: the task's status URL is "also in the Location header"
    response.headers["Location"] = f"/api/system/task_management/tasks/{task['id']}"
    return response


# --- sets ------------------------------------------------------------------------------------------


def _set_row(db: sqlite3.Connection, name: str) -> sqlite3.Row:
    return _collection_row(db, _SETS, name)


def _set_json(db: sqlite3.Connection, row: sqlite3.Row, with_data: bool) -> dict:
    item = _collection_json(db, _SETS, row)
    if with_data:
        values = db.execute(
            "SELECT value, source, first_seen, last_seen FROM reference_set_values "
            "WHERE set_name = ? ORDER BY first_seen, value",
            (row["name"],),
        ).fetchall()
        data = [_element_json(v) for v in values]
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
    return _create_collection(_SETS, {})


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
    return _delete_collection(_SETS, name)


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
    return _collection_row(db, _MAPS, name)


def _map_json(db: sqlite3.Connection, row: sqlite3.Row, with_data: bool) -> dict:
    item = _collection_json(db, _MAPS, row)
    if with_data:
        values = db.execute(
            "SELECT key, value, source, first_seen, last_seen FROM reference_map_values "
            "WHERE map_name = ? ORDER BY key",
            (row["name"],),
        ).fetchall()
        item["data"] = {v["key"]: _element_json(v) for v in values}
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
    return _create_collection(_MAPS, {"key_label": _param("key_label"), "value_label": _param("value_label")})


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
    return _delete_collection(_MAPS, name)


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


# --- maps of sets and tables -------------------------------------------------------------------------


def _require_shared_namespace() -> None:
    namespace = request.values.get("namespace")
    if namespace is not None and namespace != "SHARED":
        raise ApiError(
            422,
            CODE_NAMESPACE,
            f"The namespace '{namespace}' is not available: this console has one domain, use SHARED",
            "The namespace value of SHARED was expected.",
        )


def _extended_json(db: sqlite3.Connection, collection: _Collection, row: sqlite3.Row) -> dict:
    """A map of sets or table without its data, with API 26.0's fields."""
    count = db.execute(
        f"SELECT COUNT(*) FROM {collection.values_table} WHERE {collection.name_column} = ?", (row["name"],)
    ).fetchone()[0]
    item = {
        "collection_id": row["rowid"],
        "creation_time": row["creation_time"],
        "description": row["description"],
        "element_type": row["element_type"],
        "key_label": row["key_label"],
    }
    if collection is _TABLES:
        item["key_name_types"] = json.loads(row["key_name_types"] or "{}")
    item.update(
        {
            "name": row["name"],
            "namespace": "SHARED",
            "number_of_elements": count,
            "time_to_live": row["time_to_live"],
            "timeout_type": row["timeout_type"],
        }
    )
    if collection is _MAPS_OF_SETS:
        item["value_label"] = row["value_label"]
    return item


def _extended_row(db: sqlite3.Connection, collection: _Collection, name: str) -> sqlite3.Row:
    row = db.execute(f"SELECT rowid, * FROM {collection.table} WHERE name = ?", (name,)).fetchone()
    if row is None:
        _collection_row(db, collection, name)  # raises QRadar's 404/1002
    return row


def _key_name_types() -> dict[str, str]:
    """``key_name_types``: API 26.0 takes a JSON array of {"key_name", "element_type"} objects."""
    text = request.values.get("key_name_types")
    if not text:
        return {}
    try:
        entries = json.loads(text)
    except (ValueError, RecursionError):
        raise ApiError(422, CODE_BAD_PARAMETER, "key_name_types must be a JSON array") from None
    types: dict[str, str] = {}
    if not isinstance(entries, list):
        raise ApiError(422, CODE_BAD_PARAMETER, "key_name_types must be a JSON array")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("key_name"), str):
            raise ApiError(
                422,
                CODE_BAD_PARAMETER,
                'key_name_types entries look like {"key_name": "k", "element_type": "IP"}',
            )
        element_type = str(entry.get("element_type", "")).upper()
        if element_type not in ELEMENT_TYPES:
            raise ApiError(
                422,
                CODE_BAD_PARAMETER,
                f"element_type '{element_type}' of key '{entry['key_name']}' is not one of {', '.join(ELEMENT_TYPES)}",
            )
        types[entry["key_name"]] = element_type
    return types


def _create_extended(collection: _Collection, extra: dict[str, str | None]) -> Response:
    require("REFERENCEDATA")
    name, element_type, timeout_type, time_to_live = _creation_params()
    columns = {
        "name": name,
        "element_type": element_type,
        **extra,
        "description": request.values.get("description"),
        "timeout_type": timeout_type,
        "time_to_live": time_to_live,
        "creation_time": now_ms(),
    }
    db = get_db()
    try:
        db.execute(
            f"INSERT INTO {collection.table}({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            tuple(columns.values()),
        )
        db.commit()
    except sqlite3.IntegrityError:
        db.rollback()
        raise ApiError(
            409,
            CODE_CONFLICT,
            f"The reference {collection.noun} could not be created, the name '{name}' is already in use.",
        ) from None
    return object_response(_extended_json(db, collection, _extended_row(db, collection, name)), 201)


def _list_extended(collection: _Collection) -> Response:
    db = _fresh_db()
    rows = db.execute(f"SELECT rowid, * FROM {collection.table} ORDER BY name").fetchall()
    return list_response([_extended_json(db, collection, row) for row in rows])


@bp.get("/reference_data/map_of_sets")
def list_maps_of_sets() -> Response:
    return _list_extended(_MAPS_OF_SETS)


@bp.post("/reference_data/map_of_sets")
def create_map_of_sets() -> Response:
    return _create_extended(
        _MAPS_OF_SETS, {"key_label": _param("key_label"), "value_label": _param("value_label")}
    )


@bp.get("/reference_data/map_of_sets/<name>")
def get_map_of_sets(name: str) -> Response:
    _require_shared_namespace()
    db = _fresh_db()
    row = _extended_row(db, _MAPS_OF_SETS, name)
    item = _extended_json(db, _MAPS_OF_SETS, row)
    values = db.execute(
        "SELECT key, value, source, first_seen, last_seen FROM reference_map_of_sets_values"
        " WHERE map_name = ? ORDER BY key, value",
        (name,),
    ).fetchall()
    page, _ = apply_range(values, parse_range(request.headers.get("Range")))
    data: dict[str, list[dict]] = {}
    for value in page:
        data.setdefault(value["key"], []).append(_element_json(value))
    item["data"] = data
    return object_response(item)


@bp.post("/reference_data/map_of_sets/<name>")
def add_map_of_sets_value(name: str) -> Response:
    require("REFERENCEDATA")
    _require_shared_namespace()
    db = _fresh_db()
    row = _extended_row(db, _MAPS_OF_SETS, name)
    key, value = _param("key", True), _param("value", True)
    text = normalize_value(row["element_type"], value)
    stamp = now_ms()
    db.execute(
        "INSERT INTO reference_map_of_sets_values(map_name, key, value, source, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(map_name, key, value)"
        " DO UPDATE SET last_seen = excluded.last_seen, source = excluded.source",
        (name, key, text, _param("source") or "reference data api", stamp, stamp),
    )
    db.commit()
    return object_response(_extended_json(db, _MAPS_OF_SETS, row))


@bp.delete("/reference_data/map_of_sets/<name>")
def delete_map_of_sets(name: str) -> Response:
    _require_shared_namespace()
    return _delete_collection(_MAPS_OF_SETS, name)


@bp.get("/reference_data/tables")
def list_tables() -> Response:
    return _list_extended(_TABLES)


@bp.post("/reference_data/tables")
def create_table() -> Response:
    return _create_extended(
        _TABLES, {"key_label": _param("outer_key_label"), "key_name_types": json.dumps(_key_name_types())}
    )


@bp.get("/reference_data/tables/<name>")
def get_table(name: str) -> Response:
    _require_shared_namespace()
    db = _fresh_db()
    row = _extended_row(db, _TABLES, name)
    item = _extended_json(db, _TABLES, row)
    values = db.execute(
        "SELECT outer_key, inner_key, value, source, first_seen, last_seen FROM reference_table_values"
        " WHERE table_name = ? ORDER BY outer_key, inner_key",
        (name,),
    ).fetchall()
    page, _ = apply_range(values, parse_range(request.headers.get("Range")))
    data: dict[str, dict[str, dict]] = {}
    for value in page:
        data.setdefault(value["outer_key"], {})[value["inner_key"]] = _element_json(value)
    item["data"] = data
    return object_response(item)


@bp.post("/reference_data/tables/<name>")
def add_table_value(name: str) -> Response:
    require("REFERENCEDATA")
    _require_shared_namespace()
    db = _fresh_db()
    row = _extended_row(db, _TABLES, name)
    outer, inner, value = _param("outer_key", True), _param("inner_key", True), _param("value", True)
    # an inner key declared in key_name_types has its own element type; others take the table's
    element_type = json.loads(row["key_name_types"] or "{}").get(inner, row["element_type"])
    text = normalize_value(element_type, value)
    stamp = now_ms()
    db.execute(
        "INSERT INTO reference_table_values(table_name, outer_key, inner_key, value, source, first_seen,"
        " last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(table_name, outer_key, inner_key)"
        " DO UPDATE SET value = excluded.value, last_seen = excluded.last_seen, source = excluded.source",
        (name, outer, inner, text, _param("source") or "reference data api", stamp, stamp),
    )
    db.commit()
    return object_response(_extended_json(db, _TABLES, row))


@bp.delete("/reference_data/tables/<name>")
def delete_table(name: str) -> Response:
    _require_shared_namespace()
    return _delete_collection(_TABLES, name)
