"""JSON API of the detection feature: detections, chains, triage, refresh status and "refresh now".

Permissions: reading, triage and "refresh now"/cancel need only ``view`` (any QRadar user who reaches the
app): triage is the analyst's job, and a refresh request is queued and coalesced in the store, so asking
twice costs nothing. Every triage change is recorded with who and when, in the detection's history and in
the audit log.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from app import settings
from app.api.errors import ApiError
from app.api.parsing import json_body, list_response, paging
from app.auth import current_user, require
from app.detection import refresher
from app.detection.chains import CHAIN_KINDS
from app.store import detections as store
from app.store import get_db
from app.store.db import transaction

bp = Blueprint("detection_api", __name__, url_prefix="/api")

PLATFORMS = ("AWS", "Azure AD", "Office 365", "GCP")
LIST_PARAMS = frozenset(
    {
        "start",
        "end",
        "platform",
        "service_accounts",
        "actor",
        "target",
        "chains_only",
        "suppressed",
        "triage_status",
        "q",
        "sort",
        "limit",
        "offset",
        "offense",
    }
)
MAX_TEXT = 200
MAX_NOTE = 2000
MAX_BULK = 1000
MAX_OFFENSE_ID = 2**31 - 1  # QRadar offense ids are positive ints (the offense AQL builder's bound too)


def _bool_arg(name: str) -> bool | None:
    raw = request.args.get(name, "").strip().lower()
    if raw == "":
        return None
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise ApiError(400, "bad_parameter", f"{name} must be true or false", name)


def _ms_arg(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be a time in epoch milliseconds", name) from None
    if not 0 <= value <= 253_402_300_799_999:
        raise ApiError(400, "bad_parameter", f"{name} is out of range", name)
    return value


def _list_arg(name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = [v.strip() for raw in request.args.getlist(name) for v in raw.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ApiError(
            400, "bad_parameter", f"{name} must be one of: {', '.join(allowed)} (got {bad[0]!r})", name
        )
    return tuple(dict.fromkeys(values))


def _text_arg(name: str) -> str | None:
    raw = request.args.get(name, "").strip()
    if len(raw) > MAX_TEXT:
        raise ApiError(400, "bad_parameter", f"{name} is longer than {MAX_TEXT} characters", name)
    return raw or None


def _offense_arg(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    if raw == "":
        return None
    # isascii: "²".isdigit() is true but int() refuses it
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not 0 < int(raw) <= MAX_OFFENSE_ID:
        raise ApiError(
            400, "bad_parameter", f"{name} must be a QRadar offense id (1 to {MAX_OFFENSE_ID})", name
        )
    return int(raw)


def filter_from_request(extra_params: frozenset[str] = frozenset()) -> store.DetectionFilter:
    """The detection filter from query parameters (shared with the tab's CSV export)."""
    unknown = sorted(set(request.args) - LIST_PARAMS - extra_params)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown query parameter(s): {', '.join(unknown)}", unknown[0])
    since, until = _ms_arg("start"), _ms_arg("end")
    if since is not None and until is not None and until < since:
        raise ApiError(400, "bad_parameter", "end must not be before start", "end")
    return store.DetectionFilter(
        since_ms=since,
        until_ms=until,
        platforms=_list_arg("platform", PLATFORMS),
        service_accounts_only=bool(_bool_arg("service_accounts")),
        actor=_text_arg("actor"),
        target=_text_arg("target"),
        chains_only=bool(_bool_arg("chains_only")),
        suppressed=_bool_arg("suppressed"),
        triage_statuses=_list_arg("triage_status", store.TRIAGE_STATUSES),
        text=_text_arg("q"),
        offense_id=_offense_arg("offense"),
    )


def order_from_request(default_limit: int = 50, max_limit: int = 500) -> tuple[str, int, int]:
    """(ORDER BY text from the whitelist, limit, offset)."""
    page = paging(default_limit, max_limit, store.SORT_COLUMNS, "-event_time")
    return page.order_by(store.SORT_COLUMNS, "event_time"), page.limit, page.offset


@bp.get("/detections")
@require("view")
def list_detections() -> dict[str, Any]:
    f = filter_from_request()
    order_by, limit, offset = order_from_request()
    items, total = store.list_detections(get_db(), f, order_by=order_by, limit=limit, offset=offset)
    return list_response(items, total)


@bp.get("/detections/<int:detection_id>")
@require("view")
def get_detection(detection_id: int) -> dict[str, Any]:
    item = store.get_detection(get_db(), detection_id)
    if item is None:
        raise ApiError(404, "not_found", f"no detection with id {detection_id}")
    return item


def _triage_fields(data: dict[str, Any]) -> tuple[str, str | None]:
    status = data["status"]
    if status not in store.TRIAGE_STATUSES:
        allowed = ", ".join(store.TRIAGE_STATUSES)
        raise ApiError(400, "bad_field", f"status must be one of: {allowed}", "status")
    note = data.get("note")
    if note is not None:
        note = note.strip() or None
        if note and len(note) > MAX_NOTE:
            raise ApiError(400, "bad_field", f"note is longer than {MAX_NOTE} characters", "note")
    return status, note


@bp.post("/detections/<int:detection_id>/triage")
@require("view")
def triage_one(detection_id: int) -> dict[str, Any]:
    data = json_body({"status": str, "note": (str, type(None))}, required=("status",))
    status, note = _triage_fields(data)
    conn = get_db()
    with conn:
        updated = store.set_triage(
            conn, [detection_id], status, note, current_user().name, refresher.now_ms()
        )
    if not updated:
        raise ApiError(404, "not_found", f"no detection with id {detection_id}")
    return store.get_detection(conn, detection_id) or {}


@bp.post("/detections/triage")
@require("view")
def triage_bulk() -> dict[str, Any]:
    data = json_body({"ids": list, "status": str, "note": (str, type(None))}, required=("ids", "status"))
    ids = data["ids"]
    if not ids or len(ids) > MAX_BULK or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ApiError(400, "bad_field", f"ids must be a list of 1 to {MAX_BULK} detection ids", "ids")
    status, note = _triage_fields(data)
    conn = get_db()
    missing = sorted(set(ids) - store.existing_ids(conn, ids))
    if missing:
        raise ApiError(404, "not_found", f"no detection with id {missing[0]}", "ids")
    with conn:
        updated = store.set_triage(conn, ids, status, note, current_user().name, refresher.now_ms())
    return {"updated": updated, "status": status, "note": note}


@bp.get("/chains")
@require("view")
def list_chains() -> dict[str, Any]:
    unknown = sorted(set(request.args) - {"start", "end", "kind", "limit", "offset"})
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown query parameter(s): {', '.join(unknown)}", unknown[0])
    kinds = _list_arg("kind", CHAIN_KINDS)
    if len(kinds) > 1:
        raise ApiError(400, "bad_parameter", "give one kind", "kind")
    page = paging(50, 500)
    items, total = store.list_chains(
        get_db(),
        since_ms=_ms_arg("start"),
        until_ms=_ms_arg("end"),
        kind=kinds[0] if kinds else None,
        limit=page.limit,
        offset=page.offset,
    )
    return list_response(items, total)


@bp.get("/chains/<int:chain_id>")
@require("view")
def get_chain(chain_id: int) -> dict[str, Any]:
    chain = store.get_chain(get_db(), chain_id)
    if chain is None:
        raise ApiError(404, "not_found", f"no chain with id {chain_id}")
    return chain


@bp.get("/status")
@require("view")
def status() -> dict[str, Any]:
    return refresher.status(get_db(), settings.get("refresh_interval_s"))


def _queue(action: str) -> tuple[dict[str, Any], int]:
    if request.content_length:
        json_body({})  # an empty object is the only body accepted
    conn = get_db()
    # BEGIN IMMEDIATE before the look-up: check-then-insert must be atomic across workers, or simultaneous
    # clicks each queue a request of their own.
    with transaction(conn):
        pending = store.open_requests(conn, action)
        request_id = (
            pending[-1]["id"]
            if pending
            else store.request_refresh(conn, action, current_user().name, refresher.now_ms())
        )
    return {"requested": action, "request_id": request_id, "status": refresher.status(conn)}, 202


@bp.post("/refresh")
@require("view")
def refresh_now() -> tuple[dict[str, Any], int]:
    return _queue("refresh")


@bp.delete("/refresh")
@require("view")
def cancel_refresh() -> tuple[dict[str, Any], int]:
    return _queue("cancel")


@bp.post("/refresh/cancel")
@require("view")
def cancel_refresh_post() -> tuple[dict[str, Any], int]:
    return _queue("cancel")


_ERR = {"$ref": "#/components/responses/Error"}
_ID = {"name": "detection_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_JSON = "application/json"


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_LIST_PARAMETERS = [
    _q("start", {"type": "integer"}, "events at or after (epoch ms)"),
    _q("end", {"type": "integer"}, "events before (epoch ms)"),
    _q("platform", {"type": "string"}, "comma-separated: " + ", ".join(PLATFORMS)),
    _q("service_accounts", {"type": "boolean"}, "only service accounts"),
    _q("actor", {"type": "string"}, "actor or actor ID contains"),
    _q("target", {"type": "string"}, "target account or ID contains"),
    _q("chains_only", {"type": "boolean"}, "only detections in an attack chain"),
    _q("suppressed", {"type": "boolean"}, "true: only suppressed; false: only not suppressed; absent: both"),
    _q("triage_status", {"type": "string"}, "comma-separated: " + ", ".join(store.TRIAGE_STATUSES)),
    _q("q", {"type": "string"}, "text search over names, actor, target, IP, user agent, note"),
    _q(
        "offense",
        {"type": "integer", "minimum": 1, "maximum": MAX_OFFENSE_ID},
        "only detections known to be in this QRadar offense (learnt by the refresher's offense sync and the "
        "Offense Summary widget)",
    ),
    _q("sort", {"type": "string"}, "field, '-' prefix for descending: " + ", ".join(store.SORT_COLUMNS)),
    _q("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "page size"),
    _q("offset", {"type": "integer", "minimum": 0, "default": 0}, "rows to skip"),
]
_TRIAGE_BODY = {
    "type": "object",
    "required": ["status"],
    "additionalProperties": False,
    "properties": {
        "status": {"type": "string", "enum": list(store.TRIAGE_STATUSES)},
        "note": {"type": "string", "nullable": True, "maxLength": MAX_NOTE},
    },
}
_REFRESH_RESPONSES = {"202": {"description": "queued for the refresher process"}, "401": _ERR, "403": _ERR}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema:
        out["content"] = {_JSON: {"schema": schema}}
    return out


OPENAPI_SCHEMAS = {
    "Detection": {
        "type": "object",
        "properties": {
            **{
                f: {"type": "string", "nullable": True}
                for f in (
                    "event_key",
                    "event_name",
                    "event_category",
                    "log_source",
                    "log_source_type",
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
                    "chain_kind",
                    "triage_note",
                    "triage_by",
                )
            },
            **{
                f: {"type": "integer", "nullable": True}
                for f in (
                    "id",
                    "event_time",
                    "qid",
                    "magnitude",
                    "severity",
                    "chain_id",
                    "suppressed_by",
                    "triage_at",
                )
            },
            "cloud_platform": {"type": "string", "enum": list(PLATFORMS)},
            "is_service_account": {"type": "boolean"},
            "mfa": {"type": "boolean", "nullable": True},
            "confidence": {"type": "string", "enum": ["low", "medium", "high"]},
            "also_seen_in": {"type": "array", "items": {"type": "string"}},
            "triage_status": {"type": "string", "enum": list(store.TRIAGE_STATUSES)},
            "payload": {"type": "string", "description": "only in GET /api/detections/{id}"},
        },
    },
    "Chain": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": list(CHAIN_KINDS)},
            "kinds": {"type": "array", "items": {"type": "string"}},
            "first_time": {"type": "integer"},
            "last_time": {"type": "integer"},
            "severity": {"type": "integer"},
            "confidence": {"type": "string"},
            "admin": {"type": "boolean"},
            "events": {"type": "array", "items": {"type": "object"}},
        },
    },
}
_LIST = {"type": "object", "properties": {"total": {"type": "integer"}}}

OPENAPI_PATHS = {
    "/api/detections": {
        "get": {
            "summary": "Detections (cloud account creations), filtered, sorted and paged",
            "parameters": _LIST_PARAMETERS,
            "responses": {
                "200": _ok(
                    "{items, total}",
                    {
                        **_LIST,
                        "properties": {
                            **_LIST["properties"],
                            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Detection"}},
                        },
                    },
                ),
                "400": _ERR,
            },
        }
    },
    "/api/detections/{detection_id}": {
        "get": {
            "summary": "One detection: every field, the feeds it was seen in, its chain, triage history, payload",
            "parameters": [_ID],
            "responses": {
                "200": _ok("the detection", {"$ref": "#/components/schemas/Detection"}),
                "404": _ERR,
            },
        }
    },
    "/api/detections/{detection_id}/triage": {
        "post": {
            "summary": "Set the triage status and note of one detection (recorded with who and when; audited)",
            "parameters": [_ID],
            "requestBody": {"required": True, "content": {_JSON: {"schema": _TRIAGE_BODY}}},
            "responses": {"200": _ok("the updated detection"), "400": _ERR, "403": _ERR, "404": _ERR},
        }
    },
    "/api/detections/triage": {
        "post": {
            "summary": "Set the triage status and note of several detections at once",
            "requestBody": {
                "required": True,
                "content": {
                    _JSON: {
                        "schema": {
                            **_TRIAGE_BODY,
                            "required": ["ids", "status"],
                            "properties": {
                                **_TRIAGE_BODY["properties"],
                                "ids": {"type": "array", "items": {"type": "integer"}, "maxItems": MAX_BULK},
                            },
                        }
                    }
                },
            },
            "responses": {"200": _ok("{updated, status, note}"), "400": _ERR, "403": _ERR, "404": _ERR},
        }
    },
    "/api/chains": {
        "get": {
            "summary": "Attack chains, newest first, each with its events in order",
            "parameters": [
                _q("start", {"type": "integer"}, "chains active at or after (epoch ms)"),
                _q("end", {"type": "integer"}, "chains started before (epoch ms)"),
                _q("kind", {"type": "string", "enum": list(CHAIN_KINDS)}, "one chain kind"),
                _q("limit", {"type": "integer"}, "page size"),
                _q("offset", {"type": "integer"}, ""),
            ],
            "responses": {
                "200": _ok(
                    "{items, total}",
                    {
                        **_LIST,
                        "properties": {
                            **_LIST["properties"],
                            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Chain"}},
                        },
                    },
                ),
                "400": _ERR,
            },
        }
    },
    "/api/chains/{chain_id}": {
        "get": {
            "summary": "One attack chain",
            "parameters": [
                {"name": "chain_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "responses": {"200": _ok("the chain", {"$ref": "#/components/schemas/Chain"}), "404": _ERR},
        }
    },
    "/api/status": {
        "get": {
            "summary": "Background refresh: last and next refresh, watermark, running and progress, last error",
            "responses": {"200": _ok("status")},
        }
    },
    "/api/refresh": {
        "post": {
            "summary": "Ask the refresher to run now (any user; coalesced with a pending request)",
            "responses": _REFRESH_RESPONSES,
        },
        "delete": {"summary": "Cancel the running refresh", "responses": _REFRESH_RESPONSES},
    },
    "/api/refresh/cancel": {
        "post": {
            "summary": "Cancel the running refresh (same as DELETE /api/refresh)",
            "responses": _REFRESH_RESPONSES,
        }
    },
}
