"""JSON API of the detection feature: detections, chains, triage, refresh status and "refresh now".

Permissions: reading, triage and "refresh now" need only ``view`` (any QRadar user who reaches the app):
triage is the analyst's job, and a refresh request is queued and coalesced in the store, so asking twice
costs nothing. Cancelling the refresh needs ``tune`` (repeated cancels would keep detection blind). Each
user sees only detections from log sources their QRadar security profile shows them, payloads only with
Log Activity, and offense filters only for offenses QRadar shows them (`app.auth.access`). Every triage
change is recorded with who and when, in the detection's history and in the audit log (one record per
bulk call).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from app import settings
from app.api.errors import ApiError
from app.api.openapi import errors, list_of, ok, path, query
from app.api.parsing import (
    MAX_OFFENSE_ID,
    json_body,
    list_response,
    offense_id_arg,
    optional_json_body,
    paging,
)
from app.api.schema import NO_INPUT, Body, components
from app.aql.detection import PLATFORMS
from app.auth import current_user, require
from app.auth.access import (
    check_offense_access,
    has_log_activity,
    require_visible_detection,
    visible_log_sources,
)
from app.detection import refresher
from app.detection.chains import CHAIN_KINDS
from app.store import detections as store
from app.store import get_db
from app.store.db import transaction

bp = Blueprint("detection_api", __name__, url_prefix="/api")

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

_TRIAGE_PROPERTIES = {
    "status": {"type": "string", "enum": list(store.TRIAGE_STATUSES)},
    "note": {"type": "string", "nullable": True, "maxLength": MAX_NOTE},
}
TRIAGE = Body(
    "TriageChange",
    {
        "type": "object",
        "required": ["status"],
        "additionalProperties": False,
        "properties": _TRIAGE_PROPERTIES,
    },
)
BULK_TRIAGE = Body(
    "BulkTriageChange",
    {
        "type": "object",
        "required": ["ids", "status"],
        "additionalProperties": False,
        "properties": {
            "ids": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 1,
                "maxItems": MAX_BULK,
            },
            **_TRIAGE_PROPERTIES,
        },
    },
)


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


def filter_from_request(extra_params: frozenset[str] = frozenset()) -> store.DetectionFilter:
    """The detection filter from query parameters (shared with the tab's CSV export)."""
    unknown = sorted(set(request.args) - LIST_PARAMS - extra_params)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown query parameter(s): {', '.join(unknown)}", unknown[0])
    since, until = _ms_arg("start"), _ms_arg("end")
    if since is not None and until is not None and until < since:
        raise ApiError(400, "bad_parameter", "end must not be before start", "end")
    offense = offense_id_arg("offense")
    if offense is not None:
        check_offense_access(offense)
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
        offense_id=offense,
        log_sources=visible_log_sources(),
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
    require_visible_detection(detection_id)
    item = store.get_detection(get_db(), detection_id)
    if item is None:
        raise ApiError(404, "not_found", f"no detection with id {detection_id}")
    allowed = visible_log_sources()
    if allowed is not None and item.get("chain") is not None:
        item["chain"] = store.get_chain(get_db(), item["chain"]["id"], allowed)
    if allowed is not None:
        item["context"] = [c for c in item.get("context", []) if c["log_source"] in allowed]
    if not has_log_activity(current_user()):
        item["payload"] = None  # the raw event is Log Activity data
        item["payload_parsed"] = False
    return item


def _triage_fields(data: dict[str, Any]) -> tuple[str, str | None]:
    note = data.get("note")
    return data["status"], (note.strip() or None) if note is not None else None


@bp.post("/detections/<int:detection_id>/triage")
@require("view")
def triage_one(detection_id: int) -> dict[str, Any]:
    data = json_body(TRIAGE)
    status, note = _triage_fields(data)
    require_visible_detection(detection_id)
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
    data = json_body(BULK_TRIAGE)
    ids = data["ids"]
    status, note = _triage_fields(data)
    conn = get_db()
    missing = sorted(set(ids) - store.existing_ids(conn, ids))
    allowed = visible_log_sources()
    if allowed is not None and not missing:
        sources = store.log_source_of(conn, ids)
        missing = sorted(i for i in set(ids) if sources.get(i) not in allowed)
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
        log_sources=visible_log_sources(),
    )
    return list_response(items, total)


@bp.get("/chains/<int:chain_id>")
@require("view")
def get_chain(chain_id: int) -> dict[str, Any]:
    chain = store.get_chain(get_db(), chain_id, visible_log_sources())
    if chain is None:
        raise ApiError(404, "not_found", f"no chain with id {chain_id}")
    return chain


@bp.get("/status")
@require("view")
def status() -> dict[str, Any]:
    return refresher.status(get_db(), settings.get("refresh_interval_s"))


def _queue(action: str) -> tuple[dict[str, Any], int]:
    optional_json_body(NO_INPUT)
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
@require("tune")
def cancel_refresh() -> tuple[dict[str, Any], int]:
    return _queue("cancel")


@bp.post("/refresh/cancel")
@require("tune")
def cancel_refresh_post() -> tuple[dict[str, Any], int]:
    return _queue("cancel")


_ID = path("detection_id")
_LIST_PARAMETERS = [
    query("start", "integer", "events at or after (epoch ms)"),
    query("end", "integer", "events before (epoch ms)"),
    query("platform", "string", "comma-separated: " + ", ".join(PLATFORMS)),
    query("service_accounts", "boolean", "only service accounts"),
    query("actor", "string", "actor or actor ID contains"),
    query("target", "string", "target account or ID contains"),
    query("chains_only", "boolean", "only detections in an attack chain"),
    query("suppressed", "boolean", "true: only suppressed; false: only not suppressed; absent: both"),
    query("triage_status", "string", "comma-separated: " + ", ".join(store.TRIAGE_STATUSES)),
    query("q", "string", "text search over names, actor, target, IP, user agent, note"),
    query(
        "offense",
        {"type": "integer", "minimum": 1, "maximum": MAX_OFFENSE_ID},
        "only detections known to be in this QRadar offense (learnt by the refresher's offense sync and the "
        "Offense Summary widget)",
    ),
    query("sort", "string", "field, '-' prefix for descending: " + ", ".join(store.SORT_COLUMNS)),
    query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "page size"),
    query("offset", {"type": "integer", "minimum": 0, "default": 0}, "rows to skip"),
]
_REFRESH = {
    "requestBody": NO_INPUT.request_body(),
    "responses": {"202": ok("queued for the refresher process"), **errors(400, 401, 403)},
}


OPENAPI_SCHEMAS = {
    **components(TRIAGE, BULK_TRIAGE, NO_INPUT),
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
                    "device_time",
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
            "context": {
                "type": "array",
                "items": {"type": "object"},
                "description": "only in GET /api/detections/{id}: context-only events of the target (MFA "
                "devices, IAM groups), recorded and never raised",
            },
            "eventcount": {
                "type": "integer",
                "description": "events the stored QRadar record stands for (coalescing); only the first "
                "one's payload is kept",
            },
            "payload_state": {"type": "string", "enum": ["parsed", "truncated", "unparsable", "missing"]},
            "outcome": {
                "type": "string",
                "enum": ["success", "possible_success", "unknown"],
                "description": "possible_success: a coalesced record whose kept payload failed; unknown: "
                "the payload could not be read (fields come from QRadar's normalized ones)",
            },
            "outcome_label": {"type": "string", "description": "e.g. 'possible success, 4 coalesced'"},
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
OPENAPI_PATHS = {
    "/api/detections": {
        "get": {
            "summary": "Detections (cloud account creations), filtered, sorted and paged",
            "parameters": _LIST_PARAMETERS,
            "responses": {
                "200": ok("{items, total}", list_of({"$ref": "#/components/schemas/Detection"})),
                **errors(400),
            },
        }
    },
    "/api/detections/{detection_id}": {
        "get": {
            "summary": "One detection: every field, the feeds it was seen in, its chain, triage history, payload",
            "parameters": [_ID],
            "responses": {
                "200": ok("the detection", {"$ref": "#/components/schemas/Detection"}),
                **errors(404),
            },
        }
    },
    "/api/detections/{detection_id}/triage": {
        "post": {
            "summary": "Set the triage status and note of one detection (recorded with who and when; audited)",
            "parameters": [_ID],
            "requestBody": TRIAGE.request_body(),
            "responses": {"200": ok("the updated detection"), **errors(400, 403, 404)},
        }
    },
    "/api/detections/triage": {
        "post": {
            "summary": "Set the triage status and note of several detections at once",
            "requestBody": BULK_TRIAGE.request_body(),
            "responses": {"200": ok("{updated, status, note}"), **errors(400, 403, 404)},
        }
    },
    "/api/chains": {
        "get": {
            "summary": "Attack chains, newest first, each with its events in order",
            "parameters": [
                query("start", "integer", "chains active at or after (epoch ms)"),
                query("end", "integer", "chains started before (epoch ms)"),
                query("kind", {"type": "string", "enum": list(CHAIN_KINDS)}, "one chain kind"),
                query("limit", "integer", "page size"),
                query("offset", "integer"),
            ],
            "responses": {
                "200": ok("{items, total}", list_of({"$ref": "#/components/schemas/Chain"})),
                **errors(400),
            },
        }
    },
    "/api/chains/{chain_id}": {
        "get": {
            "summary": "One attack chain",
            "parameters": [path("chain_id")],
            "responses": {"200": ok("the chain", {"$ref": "#/components/schemas/Chain"}), **errors(404)},
        }
    },
    "/api/status": {
        "get": {
            "summary": "Background refresh: last and next refresh, watermark, running and progress, last error",
            "description": "Also `jobs` (every refresher job's status) and `self_check`: `checked_ms`, "
            "`problems` (one sentence per configured log source type or event name the console does not "
            "know), `findings` (`kind`, `platform`, `role`, `name`, `message`), `counts`, `stale` (the "
            "checked settings changed since) and `last_error`; `coalescing` (the cloud log sources that "
            "coalesce events, with a warning); `late_data`: the largest receipt-to-first-seen lag and the "
            "detections only the late-data reconciliation found.",
            "responses": {"200": ok("status")},
        }
    },
    "/api/refresh": {
        "post": {
            "summary": "Ask the refresher to run now (any user; coalesced with a pending request)",
            **_REFRESH,
        },
        "delete": {"summary": "Cancel the running refresh", "responses": _REFRESH["responses"]},
    },
    "/api/refresh/cancel": {
        "post": {"summary": "Cancel the running refresh (same as DELETE /api/refresh)", **_REFRESH},
    },
}
