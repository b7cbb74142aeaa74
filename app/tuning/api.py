"""Tuning JSON API, everything under ``/api/tuning/``.

Viewing needs access to the app (``view``); creating, editing, approving, presets and import need a tuning
capability (``tune``), and the settings need ``admin`` — all checked against the logged-in user's own QRadar
role (app.auth), never the app's token. CSRF on every write is app.auth's before-request check. Entry writes
carry the ``version`` they were made against: a stale one is a 409 that returns the current entry, so the
client can re-apply its change (nothing is lost).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from app.api.errors import ApiError
from app.api.parsing import int_arg, json_body, list_response, paging
from app.auth import current_user, require
from app.qradar import get_gateway
from app.store import tuning as store
from app.store.db import get_db, now_ms, transaction
from app.tuning import approval, portable, presets, refsync, service
from app.tuning.approval import Actor
from app.tuning.entries import TuningError, validate_entry
from app.tuning.preview import DAY_MS, PREVIEW_DAYS, preview

log = logging.getLogger(__name__)
bp = Blueprint("tuning_api", __name__, url_prefix="/api/tuning")

STATUSES = ("pending", "active", "rejected", "expired", "deleted")
AUDIT_EXPORT_COLUMNS = ("id", "at_ms", "actor", "action", "object_type", "object_id", "before", "after")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@bp.errorhandler(TuningError)
def _tuning_error(exc: TuningError) -> Response:
    body: dict[str, Any] = {"error": {"status": exc.status, "code": exc.code, "message": exc.message}}
    if exc.field is not None:  # "" is a field name too (a client may send one)
        body["error"]["field"] = exc.field
    body.update(exc.extra)
    response = jsonify(body)
    response.status_code = exc.status
    return response


def actor() -> Actor:
    user = current_user()
    return Actor(name=user.name, can_tune=user.can_tune(), is_admin=user.is_admin)


def _after_change() -> dict[str, Any] | None:
    """Bring QRadar's reference set/map in step (best effort: a QRadar fault is recorded, not raised)."""
    if not current_app.config.get("TUNING_AUTO_REFSYNC", True):
        return None
    conn = get_db()
    try:
        result = refsync.sync(conn, get_gateway(), now_ms())
    finally:
        if conn.in_transaction:
            conn.commit()
    return {"status": result["status"], **({"error": result["error"]} if "error" in result else {})}


def _write(work: Callable[[Any], Any]) -> Any:
    conn = get_db()
    with transaction(conn):
        return work(conn)


def _entry_json(conn: Any, entry: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
    out = dict(entry)
    if detail:
        out["approvals"] = store.approvals(conn, entry["id"])
        out["suppressed_detections"] = store.count_suppressed_by(conn, entry["id"])
    return out


# -- entries ----------------------------------------------------------------------------------------------


@bp.get("/entries")
@require("view")
def list_entries() -> dict[str, Any]:
    page = paging(sort_fields=store.ENTRY_SORTS, default_sort="-id")
    statuses = [s for s in request.args.get("status", "").split(",") if s]
    for status in statuses:
        if status not in STATUSES:
            raise ApiError(400, "bad_parameter", f"status must be among {', '.join(STATUSES)}", "status")
    flagged = request.args.get("flagged")
    if flagged not in (None, "", "true", "false"):
        raise ApiError(400, "bad_parameter", "flagged must be true or false", "flagged")
    preset_id = request.args.get("preset") or None
    if preset_id is not None and preset_id not in presets.PRESETS_BY_ID:
        raise ApiError(400, "bad_parameter", f"no preset {preset_id!r}", "preset")
    items, total = store.list_entries(
        get_db(),
        status=statuses or None,
        preset_id=preset_id,
        flagged=None if not flagged else flagged == "true",
        actor_id=request.args.get("actor_id") or None,
        text=(request.args.get("q") or "")[:200] or None,
        limit=page.limit,
        offset=page.offset,
        sort=("-" if page.descending else "") + (page.sort or "id"),
    )
    return list_response(items, total)


@bp.post("/entries")
@require("tune")
def create_entry() -> tuple[dict[str, Any], int]:
    payload, user = json_body(), actor()
    entry, result = _write(lambda conn: service.create_entry(conn, payload, user=user, now_ms=now_ms()))
    return {"entry": entry, "preview": result, "refsync": _after_change()}, 201


@bp.get("/entries/<int:entry_id>")
@require("view")
def get_entry(entry_id: int) -> dict[str, Any]:
    conn = get_db()
    entry = store.get_entry(conn, entry_id)
    if entry is None:
        raise ApiError(404, "not_found", f"no tuning entry {entry_id}")
    return _entry_json(conn, entry, detail=True)


@bp.patch("/entries/<int:entry_id>")
@require("tune")
def update_entry(entry_id: int) -> dict[str, Any]:
    payload, user = json_body(), actor()
    entry = _write(lambda conn: service.update_entry(conn, entry_id, payload, user=user, now_ms=now_ms()))
    return {"entry": entry, "refsync": _after_change()}


@bp.delete("/entries/<int:entry_id>")
@require("tune")
def delete_entry(entry_id: int) -> dict[str, Any]:
    version: Any = request.args.get("version")
    if request.is_json:
        body = json_body({"version": int}, required=("version",))
        version = body["version"]
    elif version is not None:
        version = int_arg("version", 0)
    user = actor()
    entry = _write(lambda conn: service.delete_entry(conn, entry_id, version, user=user, now_ms=now_ms()))
    return {"entry": entry, "refsync": _after_change()}


@bp.post("/entries/<int:entry_id>/approve")
@require("tune")
def approve_entry(entry_id: int) -> dict[str, Any]:
    payload, user = json_body(), actor()
    entry = _write(
        lambda conn: approval.decide(conn, entry_id, payload, user=user, now_ms=now_ms(), approve=True)
    )
    return {"entry": entry, "refsync": _after_change()}


@bp.post("/entries/<int:entry_id>/reject")
@require("tune")
def reject_entry(entry_id: int) -> dict[str, Any]:
    payload, user = json_body(), actor()
    entry = _write(
        lambda conn: approval.decide(conn, entry_id, payload, user=user, now_ms=now_ms(), approve=False)
    )
    return {"entry": entry}


@bp.post("/preview")
@require("view")
def preview_entry() -> dict[str, Any]:
    """What an entry (new, or ``entry_id`` edited) would suppress over the last 30 days. Changes nothing."""
    payload = dict(json_body())
    entry_id = payload.pop("entry_id", None)
    if entry_id is not None and (isinstance(entry_id, bool) or not isinstance(entry_id, int)):
        raise ApiError(400, "bad_field", "entry_id must be a whole number", "entry_id")
    conn = get_db()
    current = None
    if entry_id is not None:
        current = store.get_entry(conn, entry_id)
        if current is None or current["status"] == "deleted":
            raise ApiError(404, "not_found", f"no tuning entry {entry_id}")
    payload.pop("version", None)
    user = actor()
    fields = validate_entry(payload, now_ms=now_ms(), is_admin=True, current=current)
    result = preview(conn, fields, now_ms(), entry_id=entry_id)
    result["spoofable_only"] = fields["flagged_spoofable"]
    result["you_may_save"] = user.can_tune and (user.is_admin or not fields["flagged_spoofable"])
    return result


# -- presets ----------------------------------------------------------------------------------------------


def _preset_json(conn: Any, preset: presets.Preset, live: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    entries = live.get(preset.id, [])
    return {
        **preset.as_json(),
        "enabled": bool(entries),
        "entries": [{"id": e["id"], "actor_id": e["actor_id"], "status": e["status"]} for e in entries],
    }


@bp.get("/presets")
@require("view")
def list_presets() -> dict[str, Any]:
    conn = get_db()
    live = store.entries_by_preset(conn)
    items = [_preset_json(conn, p, live) for p in presets.PRESETS]
    return list_response(items, len(items))


@bp.get("/presets/<preset_id>")
@require("view")
def get_preset(preset_id: str) -> dict[str, Any]:
    preset = presets.PRESETS_BY_ID.get(preset_id)
    if preset is None:
        raise ApiError(404, "not_found", f"no preset {preset_id!r}")
    conn = get_db()
    body = _preset_json(conn, preset, store.entries_by_preset(conn))
    since = now_ms() - PREVIEW_DAYS * DAY_MS
    detections = (d for batch in store.iter_detections_for_matching(conn, since_ms=since) for d in batch)
    body["candidates"] = presets.suggest_candidates(preset, detections)
    return body


@bp.post("/presets/<preset_id>/enable")
@require("tune")
def enable_preset(preset_id: str) -> tuple[dict[str, Any], int]:
    payload, user = json_body(), actor()
    created = _write(lambda conn: service.enable_preset(conn, preset_id, payload, user=user, now_ms=now_ms()))
    return {"entries": created, "refsync": _after_change()}, 201


@bp.post("/presets/<preset_id>/disable")
@require("tune")
def disable_preset(preset_id: str) -> dict[str, Any]:
    user = actor()
    removed = _write(lambda conn: service.disable_preset(conn, preset_id, user=user, now_ms=now_ms()))
    return {"entries": removed, "refsync": _after_change()}


# -- settings ---------------------------------------------------------------------------------------------


@bp.get("/settings")
@require("view")
def get_settings() -> dict[str, Any]:
    return service.get_settings(get_db())


@bp.put("/settings")
@require("admin")
def put_settings() -> dict[str, Any]:
    return service.update_settings(get_db(), json_body(), user=actor())


# -- audit ------------------------------------------------------------------------------------------------


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


def _csv_cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True) if value is not None else ""
    # A cell a spreadsheet would evaluate is kept as text (CSV formula injection).
    return "'" + text if text.startswith(_FORMULA_START) else text


@bp.get("/audit/export")
@require("view")
def export_audit() -> Response:
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "json"):
        raise ApiError(400, "bad_parameter", "format must be csv or json", "format")
    items, _ = store.list_audit(get_db(), **_audit_filters(), limit=None, descending=False)
    if fmt == "json":
        response = jsonify({"items": items, "total": len(items)})
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(AUDIT_EXPORT_COLUMNS)
        for item in items:
            writer.writerow([_csv_cell(item.get(c)) for c in AUDIT_EXPORT_COLUMNS])
        response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="tuning-audit.{fmt}"'
    return response


# -- reference data ---------------------------------------------------------------------------------------


@bp.get("/refsync")
@require("view")
def get_refsync() -> dict[str, Any]:
    """Drift between the active entries and QRadar's reference set/map, plus the last sync's outcome."""
    conn = get_db()
    return {"drift": refsync.drift(conn, get_gateway(), now_ms()), "last": store.get_refsync_state(conn)}


@bp.post("/refsync")
@require("tune")
def post_refsync() -> dict[str, Any]:
    json_body({})
    conn = get_db()
    result = refsync.sync(conn, get_gateway(), now_ms())
    if conn.in_transaction:
        conn.commit()
    return result


# -- import / export --------------------------------------------------------------------------------------


@bp.get("/export")
@require("view")
def export_tuning() -> Response:
    response = jsonify(portable.export_document(get_db(), now_ms()))
    response.headers["Content-Disposition"] = 'attachment; filename="cloud-account-watch-tuning.json"'
    return response


@bp.post("/import")
@require("tune")
def import_tuning() -> dict[str, Any]:
    summary = portable.import_document(get_db(), json_body(), user=actor(), now_ms=now_ms())
    return {**summary, "refsync": _after_change()}


# -- OpenAPI ----------------------------------------------------------------------------------------------


def _op(summary: str, *, body: str | None = None, ok: str = "200", params: list | None = None) -> dict:
    op: dict[str, Any] = {
        "tags": ["tuning"],
        "summary": summary,
        "responses": {
            ok: {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
            **{
                code: {"$ref": "#/components/responses/Error"} for code in ("400", "401", "403", "404", "409")
            },
        },
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    if params:
        op["parameters"] = params
    return op


def _q(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind},
    }


_ID = {"name": "entry_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_PRESET = {"name": "preset_id", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGING = [
    _q("limit", "page size", "integer"),
    _q("offset", "first item", "integer"),
    _q("sort", "field, -desc"),
]

OPENAPI_PATHS: dict[str, Any] = {
    "/api/tuning/entries": {
        "get": _op(
            "List allowlist entries",
            params=[
                _q("status", "comma-separated: pending,active,rejected,expired,deleted"),
                _q("preset", "preset id"),
                _q("flagged", "true: admin-overridden spoofable-only entries"),
                _q("actor_id", "exact actor immutable ID"),
                _q("q", "text search"),
                *_PAGING,
            ],
        ),
        "post": _op(
            "Create an entry (tune). Pending until a second tuner approves (two-person mode); "
            "returns the preview",
            body="TuningEntryInput",
            ok="201",
        ),
    },
    "/api/tuning/entries/{entry_id}": {
        "get": _op("An entry with its approvals and suppressed-detection count", params=[_ID]),
        "patch": _op(
            "Update an entry (tune); carries version, 409 when stale; widening changes need approval again",
            body="TuningEntryInput",
            params=[_ID],
        ),
        "delete": _op(
            "Delete (soft) an entry (tune); its detections come back",
            params=[
                _ID,
                {"name": "version", "in": "query", "required": False, "schema": {"type": "integer"}},
            ],
        ),
    },
    "/api/tuning/entries/{entry_id}/approve": {
        "post": _op(
            "Approve the pending version (tune; not its submitter in two-person mode)",
            body="TuningDecision",
            params=[_ID],
        ),
    },
    "/api/tuning/entries/{entry_id}/reject": {
        "post": _op("Reject the pending version (tune)", body="TuningDecision", params=[_ID]),
    },
    "/api/tuning/preview": {
        "post": _op(
            "Preview: detections of the last 30 days an entry would suppress, chains touched, examples",
            body="TuningEntryInput",
        ),
    },
    "/api/tuning/presets": {"get": _op("Preset toggles and whether each is on")},
    "/api/tuning/presets/{preset_id}": {
        "get": _op("A preset with candidate identities from recent detections", params=[_PRESET]),
    },
    "/api/tuning/presets/{preset_id}/enable": {
        "post": _op(
            "Turn a preset on for the organisation's immutable identities (tune)",
            body="TuningPresetEnable",
            ok="201",
            params=[_PRESET],
        ),
    },
    "/api/tuning/presets/{preset_id}/disable": {
        "post": _op("Turn a preset off: its entries are deleted (tune)", params=[_PRESET]),
    },
    "/api/tuning/settings": {
        "get": _op("Tuning settings (single-person approval, reference set/map names) with version"),
        "put": _op(
            "Change tuning settings (admin; audited; 409 when version is stale)", body="TuningSettings"
        ),
    },
    "/api/tuning/audit": {
        "get": _op(
            "Tuning audit log: who, when, before and after",
            params=[
                _q("action", "e.g. tuning.entry.approve"),
                _q("actor", "QRadar user"),
                _q("object_type", "tuning_entry, tuning_preset, settings, …"),
                _q("object_id", "entry id"),
                _q("since", "epoch ms", "integer"),
                _q("until", "epoch ms", "integer"),
                *_PAGING,
            ],
        ),
    },
    "/api/tuning/audit/export": {
        "get": _op(
            "Export the tuning audit log",
            params=[_q("format", "csv (default) or json"), _q("action", "filter"), _q("actor", "filter")],
        ),
    },
    "/api/tuning/refsync": {
        "get": _op("Drift between active entries and the QRadar reference set/map"),
        "post": _op("Synchronise the QRadar reference set/map now (tune)"),
    },
    "/api/tuning/export": {"get": _op("All tuning as one JSON document")},
    "/api/tuning/import": {
        "post": _op(
            "Import a tuning document (tune); entries are resubmitted for approval", body="TuningDocument"
        ),
    },
}
# The audit export is CSV unless format=json.
OPENAPI_PATHS["/api/tuning/audit/export"]["get"]["responses"]["200"]["content"]["text/csv"] = {
    "schema": {"type": "string"}
}

_STR = {"type": "string"}
OPENAPI_SCHEMAS: dict[str, Any] = {
    "TuningEntryInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["platforms", "justification", "expires_at"],
        "properties": {
            "version": {"type": "integer", "description": "required on update"},
            "entry_id": {"type": "integer", "description": "preview only: the entry being edited"},
            "name": _STR,
            "platforms": {
                "type": "array",
                "items": {"type": "string", "enum": ["AWS", "Azure AD", "Office 365", "GCP"]},
            },
            "actor_id": {**_STR, "description": "immutable ID, exact (case-insensitive)"},
            "actor_pattern": {**_STR, "description": "glob: * matches any text; no regex"},
            "actor_pattern_field": {"type": "string", "enum": ["actor_id", "actor"]},
            "source_cidrs": {"type": "array", "items": _STR},
            "source_service": {
                **_STR,
                "description": "AWS service principal that invoked the call (invokedBy)",
            },
            "ua_pattern": _STR,
            "target_pattern": _STR,
            "target_type": {**_STR, "description": "an account_kind"},
            "window": {
                "type": "object",
                "properties": {
                    "days": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}},
                    "start": {**_STR, "description": "HH:MM UTC"},
                    "end": {**_STR, "description": "HH:MM UTC"},
                },
            },
            "justification": _STR,
            "ticket": _STR,
            "expires_at": {"description": "epoch ms or ISO-8601; at most 365 days (break-glass 24 h)"},
            "break_glass": {"type": "boolean"},
            "enabled": {"type": "boolean"},
            "override_reason": {**_STR, "description": "admin only: allow a spoofable-only entry (flagged)"},
            "confirm_partial_chain": {"type": "boolean"},
        },
    },
    "TuningDecision": {
        "type": "object",
        "required": ["version"],
        "properties": {
            "version": {"type": "integer"},
            "note": _STR,
            "confirm_partial_chain": {"type": "boolean"},
        },
    },
    "TuningPresetEnable": {
        "type": "object",
        "required": ["identities", "justification", "expires_at"],
        "properties": {
            "identities": {"type": "array", "items": _STR},
            "justification": _STR,
            "expires_at": {},
            "ticket": _STR,
            "confirm_partial_chain": {"type": "boolean"},
        },
    },
    "TuningSettings": {
        "type": "object",
        "required": ["version"],
        "properties": {
            "version": {"type": "integer"},
            "single_person_approval": {"type": "boolean"},
            "reference_set_name": _STR,
            "reference_map_name": _STR,
            "tuning_capabilities": {"type": "array", "items": _STR},
        },
    },
    "TuningDocument": {
        "type": "object",
        "required": ["format", "format_version", "entries"],
        "properties": {
            "format": _STR,
            "format_version": {"type": "integer"},
            "settings": {"type": "object"},
            "entries": {"type": "array", "items": {"type": "object"}},
        },
    },
}
