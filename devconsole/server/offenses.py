"""Offenses: ``GET /api/siem/offenses`` (filter, sort, Range, fields), ``/{id}``, offense types, notes,
closing reasons, the source and local destination addresses offenses involve, and the analytics rules
that raise them.

Counts, categories, log sources and addresses are computed from the events linked to each offense, so
they agree with what ``INOFFENSE(id)`` returns in AQL.
"""

from __future__ import annotations

import json
import sqlite3
import time

from flask import Response, request

from devconsole.aql.functions import local_network
from devconsole.server.api import bool_arg, bp, require
from devconsole.server.context import current_user, get_db
from devconsole.server.errors import (
    CODE_BAD_PARAMETER,
    CODE_CONFLICT,
    CODE_NOT_FOUND,
    CODE_NOT_READY,
    CODE_UNAVAILABLE,
    ApiError,
)
from devconsole.server.restquery import list_response, object_response

# API 26.0 answers an invalid filter on the address and rule lists with 422/1010.
CODE_BAD_FILTER = CODE_UNAVAILABLE
MAX_NOTE_CHARS = 10_000  # this console's limit on a note's text (QRadar's is UNCONFIRMED)

# QRadar's built-in offense types (id -> name, property); the numbering follows QRadar's documented list.
OFFENSE_TYPES: dict[int, tuple[str, str]] = {
    0: ("Source IP", "sourceIP"),
    1: ("Destination IP", "destinationIP"),
    2: ("Event Name", "qid"),
    3: ("Username", "userName"),
    4: ("Source MAC Address", "sourceMAC"),
    5: ("Destination MAC Address", "destinationMAC"),
    6: ("Log Source", "deviceId"),
    7: ("Hostname", "hostName"),
    8: ("Source Port", "sourcePort"),
    9: ("Destination Port", "destinationPort"),
    10: ("Source IPv6", "sourceIPv6"),
    11: ("Destination IPv6", "destinationIPv6"),
    12: ("Source ASN", "sourceASN"),
    13: ("Destination ASN", "destinationASN"),
    14: ("Rule", "creEventList"),
    15: ("App Id", "appId"),
    18: ("Scheduled Search", "scheduledSearch"),
}


def offense_json(db: sqlite3.Connection, row: sqlite3.Row) -> dict:
    oid = row["id"]
    stats = db.execute(
        "SELECT COALESCE(SUM(e.eventcount), 0) AS events, COUNT(DISTINCT e.sourceip) AS sources,"
        " COUNT(DISTINCT e.username) AS usernames, COUNT(DISTINCT e.logsourceid) AS devices"
        " FROM offense_events oe JOIN events e ON e.id = oe.event_id WHERE oe.offense_id = ?",
        (oid,),
    ).fetchone()
    categories = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT c.name FROM offense_events oe JOIN events e ON e.id = oe.event_id"
            " JOIN categories c ON c.id = e.category WHERE oe.offense_id = ? ORDER BY c.name",
            (oid,),
        )
    ]
    log_sources = [
        {"id": r[0], "name": r[1], "type_id": r[2], "type_name": r[3]}
        for r in db.execute(
            "SELECT DISTINCT ls.id, ls.name, ls.type_id, lst.name FROM offense_events oe"
            " JOIN events e ON e.id = oe.event_id JOIN log_sources ls ON ls.id = e.logsourceid"
            " LEFT JOIN log_source_types lst ON lst.id = ls.type_id WHERE oe.offense_id = ? ORDER BY ls.id",
            (oid,),
        )
    ]
    try:
        rules = json.loads(row["rules"] or "[]")
    except ValueError:
        rules = []
    return {
        "id": oid,
        "description": row["description"],
        "offense_type": row["offense_type"],
        "offense_source": row["offense_source"],
        "magnitude": row["magnitude"],
        "severity": row["severity"],
        "credibility": row["credibility"],
        "relevance": row["relevance"],
        "status": row["status"],
        "start_time": row["start_time"],
        "last_updated_time": row["last_updated_time"],
        "last_persisted_time": row["last_updated_time"],
        "first_persisted_time": row["start_time"],
        "close_time": row["close_time"],
        "closing_reason_id": None,
        "closing_user": None,
        "assigned_to": row["assigned_to"],
        "follow_up": bool(row["follow_up"]),
        "protected": bool(row["protected"]),
        "inactive": row["status"] != "OPEN",
        "domain_id": row["domain_id"],
        "categories": categories,
        "category_count": len(categories),
        "security_category_count": len(categories),
        "policy_category_count": 0,
        "log_sources": log_sources,
        "device_count": stats["devices"],
        "rules": rules,
        "event_count": stats["events"],
        "flow_count": 0,
        "source_count": stats["sources"],
        "username_count": stats["usernames"],
        "source_network": "other",
        "destination_networks": [],
        **_offense_address_fields(db, oid),
    }


def visible_to_user(db: sqlite3.Connection, offense_id: int) -> bool:
    """Whether the requesting user's security profile lets them see the offense: one of its events comes
    from a log source in the profile (every offense for a profile without limits)."""
    allowed = current_user().security_profile.visible_log_source_ids(db)
    if allowed is None:
        return True
    linked = db.execute(
        "SELECT DISTINCT e.logsourceid FROM offense_events oe JOIN events e ON e.id = oe.event_id"
        " WHERE oe.offense_id = ?",
        (offense_id,),
    )
    return any(int(r[0]) in allowed for r in linked)


@bp.get("/siem/offenses")
def list_offenses() -> Response:
    require("SEM")
    db = get_db()
    rows = db.execute("SELECT * FROM offenses ORDER BY id").fetchall()
    return list_response([offense_json(db, row) for row in rows if visible_to_user(db, row["id"])])


@bp.get("/siem/offenses/<offense_id>")
def get_offense(offense_id: str) -> Response:
    require("SEM")
    if not offense_id.isdigit():
        raise ApiError(422, CODE_BAD_PARAMETER, f"offense_id '{offense_id}' must be a whole number")
    db = get_db()
    row = db.execute("SELECT * FROM offenses WHERE id = ?", (int(offense_id),)).fetchone()
    if row is None or not visible_to_user(db, row["id"]):
        raise ApiError(
            404, CODE_NOT_FOUND, f"The offense {offense_id} does not exist.", "The offense does not exist."
        )
    return object_response(offense_json(db, row))


@bp.get("/siem/offense_types")
def offense_types() -> Response:
    require("SEM")
    items = [
        {"id": tid, "name": name, "property_name": prop, "database_type": "EVENTS", "custom": False}
        for tid, (name, prop) in OFFENSE_TYPES.items()
    ]
    return list_response(items)


def _whole_number(text: str, name: str) -> int:
    if not text.isdigit():
        raise ApiError(422, CODE_BAD_PARAMETER, f"{name} '{text}' must be a whole number")
    return int(text)


def _offense_or_404(db: sqlite3.Connection, offense_id: str) -> int:
    oid = _whole_number(offense_id, "offense_id")
    if db.execute("SELECT 1 FROM offenses WHERE id = ?", (oid,)).fetchone() is None or not visible_to_user(
        db, oid
    ):
        raise ApiError(
            404,
            CODE_NOT_FOUND,
            f"No offense was found for the offense_id {oid}.",
            "The offense does not exist.",
        )
    return oid


# --- notes -------------------------------------------------------------------------------------------


def _note_json(row: sqlite3.Row) -> dict:
    return {
        "create_time": row["create_time"],
        "id": row["id"],
        "note_text": row["note_text"],
        "username": row["username"],
    }


@bp.get("/siem/offenses/<offense_id>/notes")
def offense_notes(offense_id: str) -> Response:
    require("SEM")
    db = get_db()
    oid = _offense_or_404(db, offense_id)
    rows = db.execute("SELECT * FROM offense_notes WHERE offense_id = ? ORDER BY id", (oid,)).fetchall()
    return list_response([_note_json(row) for row in rows])


@bp.post("/siem/offenses/<offense_id>/notes")
def add_offense_note(offense_id: str) -> Response:
    require("SEM")
    db = get_db()
    oid = _offense_or_404(db, offense_id)
    text = request.values.get("note_text")
    if text is None or not text.strip():
        raise ApiError(
            422,
            CODE_BAD_PARAMETER,
            "Missing required parameter 'note_text'",
            "A request parameter is not valid.",
        )
    if len(text) > MAX_NOTE_CHARS:
        raise ApiError(422, CODE_BAD_PARAMETER, f"note_text is longer than {MAX_NOTE_CHARS} characters")
    note_id = db.execute(
        "INSERT INTO offense_notes(offense_id, create_time, username, note_text) VALUES (?, ?, ?, ?)",
        (oid, int(time.time() * 1000), current_user().username, text),
    ).lastrowid
    db.commit()
    row = db.execute("SELECT * FROM offense_notes WHERE id = ?", (note_id,)).fetchone()
    return object_response(_note_json(row), 201)


@bp.get("/siem/offenses/<offense_id>/notes/<note_id>")
def offense_note(offense_id: str, note_id: str) -> Response:
    require("SEM")
    db = get_db()
    oid = _offense_or_404(db, offense_id)
    nid = _whole_number(note_id, "note_id")
    row = db.execute("SELECT * FROM offense_notes WHERE id = ? AND offense_id = ?", (nid, oid)).fetchone()
    if row is None:
        raise ApiError(
            404, CODE_NOT_READY, f"No note was found for the note_id {nid}.", "The note does not exist."
        )
    return object_response(_note_json(row))


# --- closing reasons ----------------------------------------------------------------------------------


def _closing_reason_json(row: sqlite3.Row) -> dict:
    return {
        "id": row["id"],
        "is_deleted": bool(row["is_deleted"]),
        "is_reserved": bool(row["is_reserved"]),
        "text": row["text"],
    }


@bp.get("/siem/offense_closing_reasons")
def closing_reasons() -> Response:
    require("SEM")
    include_reserved, include_deleted = bool_arg("include_reserved"), bool_arg("include_deleted")
    rows = get_db().execute("SELECT * FROM offense_closing_reasons ORDER BY id").fetchall()
    items = [
        _closing_reason_json(row)
        for row in rows
        if (include_reserved or not row["is_reserved"]) and (include_deleted or not row["is_deleted"])
    ]
    return list_response(items)


@bp.post("/siem/offense_closing_reasons")
def create_closing_reason() -> Response:
    require("ADMIN")
    text = request.values.get("reason")
    if text is None or not 5 <= len(text) <= 60:
        raise ApiError(
            422,
            CODE_BAD_PARAMETER,
            "The text of the offense closing reason (parameter 'reason') must be 5 - 60 characters in length",
            "A request parameter is not valid.",
        )
    db = get_db()
    if db.execute("SELECT 1 FROM offense_closing_reasons WHERE text = ?", (text,)).fetchone():
        raise ApiError(409, CODE_CONFLICT, f"The closing reason '{text}' already exists.")
    reason_id = db.execute("INSERT INTO offense_closing_reasons(text) VALUES (?)", (text,)).lastrowid
    db.commit()
    row = db.execute("SELECT * FROM offense_closing_reasons WHERE id = ?", (reason_id,)).fetchone()
    return object_response(_closing_reason_json(row), 201)


@bp.get("/siem/offense_closing_reasons/<closing_reason_id>")
def closing_reason(closing_reason_id: str) -> Response:
    require("SEM")
    rid = _whole_number(closing_reason_id, "closing_reason_id")
    row = get_db().execute("SELECT * FROM offense_closing_reasons WHERE id = ?", (rid,)).fetchone()
    if row is None:
        raise ApiError(404, CODE_NOT_FOUND, f"No closing reason was found for the closing_reason_id {rid}.")
    return object_response(_closing_reason_json(row))


# --- source and local destination addresses ---------------------------------------------------------
# An address is one of an offense's when an event linked to the offense has it as source (any address)
# or destination (local addresses only): local as AQL's eventdirection reads it.
def network_of(ip: str) -> str | None:
    """The network hierarchy name of a local address; None for a remote (or unreadable) one."""
    return local_network(ip)


def _address_stats(db: sqlite3.Connection, column: str) -> dict[str, dict]:
    """Per address in ``column`` of offense-linked events: magnitude, counts, times, offenses, peers."""
    stats: dict[str, dict] = {}
    peer_column = "destinationip" if column == "sourceip" else "sourceip"
    rows = db.execute(
        f"SELECT e.id AS event_id, e.{column} AS ip, e.{peer_column} AS peer, oe.offense_id, e.magnitude,"
        " e.eventcount, e.starttime"
        " FROM offense_events oe JOIN events e ON e.id = oe.event_id"
        f" WHERE e.{column} IS NOT NULL ORDER BY e.id"
    ).fetchall()
    counted: set[int] = set()  # an event linked to two offenses counts once
    for row in rows:
        ip = row["ip"]
        if column == "destinationip" and network_of(ip) is None:
            continue  # only local destinations
        entry = stats.setdefault(
            ip, {"magnitude": 0, "count": 0, "first": None, "last": None, "offenses": set(), "peers": set()}
        )
        entry["magnitude"] = max(entry["magnitude"], row["magnitude"] or 0)
        if row["event_id"] not in counted:
            counted.add(row["event_id"])
            entry["count"] += row["eventcount"] or 0
        entry["first"] = row["starttime"] if entry["first"] is None else min(entry["first"], row["starttime"])
        entry["last"] = row["starttime"] if entry["last"] is None else max(entry["last"], row["starttime"])
        entry["offenses"].add(row["offense_id"])
        if row["peer"] is not None:
            entry["peers"].add(row["peer"])
    return stats


def _address_ids(db: sqlite3.Connection, kind: str, ips: list[str]) -> dict[str, int]:
    """Stable ids of addresses (assigned on first sight, so an address keeps its id)."""
    known = {
        row["ip"]: row["id"]
        for row in db.execute("SELECT ip, id FROM offense_addresses WHERE kind = ?", (kind,))
    }
    missing = sorted(ip for ip in ips if ip not in known)
    if missing:
        db.executemany(
            "INSERT OR IGNORE INTO offense_addresses(kind, ip) VALUES (?, ?)", [(kind, ip) for ip in missing]
        )
        db.commit()
        known = {
            row["ip"]: row["id"]
            for row in db.execute("SELECT ip, id FROM offense_addresses WHERE kind = ?", (kind,))
        }
    return known


def _addresses(db: sqlite3.Connection, kind: str) -> list[dict]:
    sources = _address_stats(db, "sourceip")
    destinations = _address_stats(db, "destinationip")
    source_ids = _address_ids(db, "source", list(sources))
    destination_ids = _address_ids(db, "local_destination", list(destinations))
    own, ids, peer_ids = (
        (sources, source_ids, destination_ids)
        if kind == "source"
        else (destinations, destination_ids, source_ids)
    )
    items = []
    for ip, entry in own.items():
        item = {
            "id": ids[ip],
            ("source_ip" if kind == "source" else "local_destination_ip"): ip,
            "magnitude": entry["magnitude"],
            "network": network_of(ip) or "other",
            "offense_ids": sorted(entry["offenses"]),
            ("local_destination_address_ids" if kind == "source" else "source_address_ids"): sorted(
                peer_ids[peer] for peer in entry["peers"] if peer in peer_ids
            ),
            "event_flow_count": entry["count"],
            "first_event_flow_seen": entry["first"],
            "last_event_flow_seen": entry["last"],
            "domain_id": 0,
        }
        items.append(item)
    return sorted(items, key=lambda item: item["id"])


def _offense_address_fields(db: sqlite3.Connection, offense_id: int) -> dict:
    rows = db.execute(
        "SELECT DISTINCT e.sourceip, e.destinationip FROM offense_events oe JOIN events e ON e.id = oe.event_id"
        " WHERE oe.offense_id = ?",
        (offense_id,),
    ).fetchall()
    sources = sorted({r[0] for r in rows if r[0] is not None})
    destinations = {r[1] for r in rows if r[1] is not None}
    local = sorted(ip for ip in destinations if network_of(ip) is not None)
    source_ids = _address_ids(db, "source", sources) if sources else {}
    local_ids = _address_ids(db, "local_destination", local) if local else {}
    return {
        "source_address_ids": sorted(source_ids[ip] for ip in sources),
        "local_destination_address_ids": sorted(local_ids[ip] for ip in local),
        "local_destination_count": len(local),
        "remote_destination_count": len(destinations) - len(local),
    }


def _one_address(kind: str, address_id: str) -> Response:
    require("SEM")
    aid = _whole_number(address_id, f"{kind}_address_id")
    for item in _addresses(get_db(), kind):
        if item["id"] == aid:
            return object_response(item)
    noun = "source address" if kind == "source" else "local destination address"
    raise ApiError(404, CODE_NOT_FOUND, f"No {noun} was found for the {kind}_address_id {aid}.")


@bp.get("/siem/source_addresses")
def source_addresses() -> Response:
    require("SEM")
    return list_response(_addresses(get_db(), "source"), filter_code=CODE_BAD_FILTER)


@bp.get("/siem/source_addresses/<source_address_id>")
def source_address(source_address_id: str) -> Response:
    return _one_address("source", source_address_id)


@bp.get("/siem/local_destination_addresses")
def local_destination_addresses() -> Response:
    require("SEM")
    return list_response(_addresses(get_db(), "local_destination"), filter_code=CODE_BAD_FILTER)


@bp.get("/siem/local_destination_addresses/<local_destination_address_id>")
def local_destination_address(local_destination_address_id: str) -> Response:
    return _one_address("local_destination", local_destination_address_id)


# --- analytics rules ---------------------------------------------------------------------------------


def _rule_json(row: sqlite3.Row) -> dict:
    return {
        "average_capacity": 0,
        "base_capacity": 0,
        "base_host_id": 0,
        "capacity_timestamp": 0,
        "creation_date": row["creation_date"],
        "enabled": bool(row["enabled"]),
        "id": row["id"],
        "identifier": row["identifier"],
        "linked_rule_identifier": None,
        "modification_date": row["modification_date"],
        "name": row["name"],
        "origin": row["origin"],
        "owner": row["owner"],
        "type": row["type"],
    }


@bp.get("/analytics/rules")
def analytics_rules() -> Response:
    require("SEM")
    rows = get_db().execute("SELECT * FROM rules ORDER BY id").fetchall()
    return list_response([_rule_json(row) for row in rows], filter_code=CODE_BAD_FILTER)


@bp.get("/analytics/rules/<rule_id>")
def analytics_rule(rule_id: str) -> Response:
    require("SEM")
    rid = _whole_number(rule_id, "id")
    row = get_db().execute("SELECT * FROM rules WHERE id = ?", (rid,)).fetchone()
    if row is None:
        raise ApiError(404, CODE_NOT_FOUND, f"The rule {rid} does not exist.", "The rule does not exist.")
    return object_response(_rule_json(row))
