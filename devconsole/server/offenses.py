"""Offenses: ``GET /api/siem/offenses`` (filter, sort, Range, fields), ``/{id}`` and offense types.

Counts, categories and log sources are computed from the events linked to each offense, so they agree
with what ``INOFFENSE(id)`` returns in AQL.
"""

from __future__ import annotations

import json
import sqlite3

from flask import Response

from devconsole.server.api import bp, require
from devconsole.server.context import get_db
from devconsole.server.errors import CODE_BAD_PARAMETER, CODE_NOT_FOUND, ApiError
from devconsole.server.restquery import list_response, object_response

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
        "source_address_ids": [],
        "local_destination_address_ids": [],
        "local_destination_count": 0,
        "remote_destination_count": 0,
    }


@bp.get("/siem/offenses")
def list_offenses() -> Response:
    require("SEM")
    db = get_db()
    rows = db.execute("SELECT * FROM offenses ORDER BY id").fetchall()
    return list_response([offense_json(db, row) for row in rows])


@bp.get("/siem/offenses/<offense_id>")
def get_offense(offense_id: str) -> Response:
    require("SEM")
    if not offense_id.isdigit():
        raise ApiError(422, CODE_BAD_PARAMETER, f"offense_id '{offense_id}' must be a whole number")
    db = get_db()
    row = db.execute("SELECT * FROM offenses WHERE id = ?", (int(offense_id),)).fetchone()
    if row is None:
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
