"""The tuning settings, the tuning audit log (list and export) and the reference-data sync."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, jsonify, request

from app.api.cells import cell
from app.api.errors import ApiError
from app.api.openapi import PAGING, query
from app.api.parsing import int_arg, json_body, list_response, optional_json_body, paging
from app.api.schema import NO_INPUT, Body
from app.auth import require
from app.qradar import get_gateway
from app.store import tuning as store
from app.store.db import get_db, now_ms
from app.tuning import refsync, service
from app.tuning.api_common import actor, bp, op

AUDIT_EXPORT_COLUMNS = ("id", "at_ms", "actor", "action", "object_type", "object_id", "before", "after")

SETTINGS = Body(
    "TuningSettings",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["version"],
        "properties": {
            "version": {
                "type": "integer",
                "description": "the version read (409 when another change came first)",
            },
            "single_person_approval": {"type": "boolean"},
            "reference_set_name": {"type": "string"},
            "reference_map_name": {"type": "string"},
            "tuning_capabilities": {"type": "array", "items": {"type": "string"}},
        },
    },
)


@bp.get("/settings")
@require("view")
def get_settings() -> dict[str, Any]:
    return service.get_settings(get_db())


@bp.put("/settings")
@require("admin")
def put_settings() -> dict[str, Any]:
    return service.update_settings(get_db(), json_body(SETTINGS), user=actor())


def _audit_filters() -> dict[str, Any]:
    since = request.args.get("since")
    until = request.args.get("until")
    return {
        "action": request.args.get("action") or None,
        "actor": request.args.get("actor") or None,
        "object_type": request.args.get("object_type") or None,
        "object_id": request.args.get("object_id") or None,
        "since_ms": int_arg("since", 0) if since else None,
        "until_ms": int_arg("until", 0) if until else None,
    }


@bp.get("/audit")
@require("view")
def list_audit() -> dict[str, Any]:
    page = paging(sort_fields=("id",), default_sort="-id")
    items, total = store.list_audit(
        get_db(), **_audit_filters(), limit=page.limit, offset=page.offset, descending=page.descending
    )
    return list_response(items, total)


@bp.get("/audit/export")
@require("view")
def export_audit() -> Response:
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "json"):
        raise ApiError(400, "bad_parameter", "format must be csv or json", "format")
    items, _ = store.list_audit(get_db(), **_audit_filters(), limit=None, descending=False)
    if fmt == "json":
        response = jsonify(list_response(items, len(items)))
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(AUDIT_EXPORT_COLUMNS)
        for item in items:
            writer.writerow([cell(item.get(c)) for c in AUDIT_EXPORT_COLUMNS])
        response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="tuning-audit.{fmt}"'
    return response


@bp.get("/refsync")
@require("view")
def get_refsync() -> dict[str, Any]:
    """Drift between the active entries and QRadar's reference set/map, plus the last sync's outcome."""
    conn = get_db()
    return {"drift": refsync.drift(conn, get_gateway(), now_ms()), "last": store.get_refsync_state(conn)}


@bp.post("/refsync")
@require("tune")
def post_refsync() -> dict[str, Any]:
    optional_json_body(NO_INPUT)
    conn = get_db()
    result = refsync.sync(conn, get_gateway(), now_ms())
    if conn.in_transaction:
        conn.commit()
    return result


BODIES = (SETTINGS, NO_INPUT)
OPENAPI_PATHS: dict[str, Any] = {
    "/api/tuning/settings": {
        "get": op("Tuning settings (single-person approval, reference set/map names) with version"),
        "put": op(
            "Change tuning settings (admin; audited; 409 when version is stale). Same write path as "
            "PUT /api/settings",
            body=SETTINGS,
        ),
    },
    "/api/tuning/audit": {
        "get": op(
            "Tuning audit log: who, when, before and after",
            params=[
                query("action", "string", "e.g. tuning.entry.approve"),
                query("actor", "string", "QRadar user"),
                query("object_type", "string", "tuning_entry, tuning_preset, settings, …"),
                query("object_id", "string", "entry id"),
                query("since", "integer", "epoch ms"),
                query("until", "integer", "epoch ms"),
                *PAGING,
            ],
        ),
    },
    "/api/tuning/audit/export": {
        "get": op(
            "Export the tuning audit log (CSV, formula cells neutralised, unless format=json)",
            params=[
                query("format", "string", "csv (default) or json"),
                query("action", "string", "filter"),
                query("actor", "string", "filter"),
            ],
        ),
    },
    "/api/tuning/refsync": {
        "get": op("Drift between active entries and the QRadar reference set/map"),
        "post": op("Synchronise the QRadar reference set/map now (tune)", body=NO_INPUT),
    },
}
OPENAPI_PATHS["/api/tuning/audit/export"]["get"]["responses"]["200"]["content"]["text/csv"] = {
    "schema": {"type": "string"}
}
