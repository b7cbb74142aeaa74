"""Allowlist entries: list, create, read, edit and delete (``/api/tuning/entries``).

Entry writes carry the ``version`` they were made against: a stale one is a 409 that returns the current
entry, so the client can re-apply its change (nothing is lost).
"""

from __future__ import annotations

from typing import Any

from flask import request

from app.api.errors import ApiError
from app.api.openapi import PAGING, path, query
from app.api.parsing import int_arg, json_body, list_response, paging
from app.api.schema import Body
from app.aql.detection import PLATFORMS
from app.auth import require
from app.store import tuning as store
from app.store.db import get_db, now_ms
from app.tuning import presets, service
from app.tuning.api_common import actor, after_change, bp, op, shown, write
from app.tuning.entries import ACCOUNT_KINDS, ACTOR_PATTERN_FIELDS, MAX_CIDRS

STATUSES = ("pending", "active", "rejected", "expired", "deleted")

_TEXT = {"type": "string", "nullable": True}
# What a client writes into an entry; null leaves an optional condition out. app.tuning.entries checks
# the meaning (patterns, CIDRs, expiry, the immutable-ID rule) and names the field it refuses.
ENTRY_PROPERTIES: dict[str, Any] = {
    "name": _TEXT,
    "platforms": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(PLATFORMS)}},
    "actor_id": {**_TEXT, "description": "immutable ID, exact (case-insensitive)"},
    "actor_pattern": {**_TEXT, "description": "glob: * matches any text; no regex"},
    "actor_pattern_field": {
        **_TEXT,
        "description": " or ".join(ACTOR_PATTERN_FIELDS) + " (default actor_id)",
    },
    "source_cidrs": {"type": "array", "nullable": True, "maxItems": MAX_CIDRS, "items": {"type": "string"}},
    "source_service": {**_TEXT, "description": "AWS service principal that invoked the call (invokedBy)"},
    "ua_pattern": _TEXT,
    "target_pattern": _TEXT,
    "target_type": {**_TEXT, "description": "an account kind: " + ", ".join(ACCOUNT_KINDS)},
    "window": {
        "type": "object",
        "nullable": True,
        "additionalProperties": False,
        "required": ["start", "end"],
        "properties": {
            "days": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "integer", "minimum": 1, "maximum": 7},
                "description": "ISO weekdays, 1 (Mon) … 7 (Sun); default every day",
            },
            "start": {"type": "string", "description": "HH:MM UTC"},
            "end": {"type": "string", "description": "HH:MM UTC"},
        },
    },
    "justification": {"type": "string"},
    "ticket": _TEXT,
    "expires_at": {"description": "epoch ms or ISO-8601 with an offset; at most 365 days (break-glass 24 h)"},
    "break_glass": {"type": "boolean", "nullable": True},
    "enabled": {"type": "boolean", "nullable": True},
    "override_reason": {**_TEXT, "description": "admin only: allow a spoofable-only entry (flagged)"},
    "confirm_partial_chain": {"type": "boolean"},
}
ENTRY_INPUT = Body(
    "TuningEntryInput",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["platforms", "justification", "expires_at"],
        "properties": ENTRY_PROPERTIES,
    },
)
ENTRY_CHANGE = Body(
    "TuningEntryChange",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["version"],
        "properties": {
            "version": {"type": "integer", "description": "the version edited"},
            **ENTRY_PROPERTIES,
        },
    },
)
# DELETE may name the version in its body instead of the query.
ENTRY_VERSION = Body(
    "TuningEntryVersion",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["version"],
        "properties": {"version": {"type": "integer"}},
    },
)


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
    conn = get_db()
    return list_response([shown(e, conn) for e in items], total)


@bp.post("/entries")
@require("tune")
def create_entry() -> tuple[dict[str, Any], int]:
    payload, user = json_body(ENTRY_INPUT), actor()
    entry, result = write(lambda conn: service.create_entry(conn, payload, user=user, now_ms=now_ms()))
    return {"entry": shown(entry), "preview": result, "refsync": after_change()}, 201


@bp.get("/entries/<int:entry_id>")
@require("view")
def get_entry(entry_id: int) -> dict[str, Any]:
    conn = get_db()
    entry = store.get_entry(conn, entry_id)
    if entry is None:
        raise ApiError(404, "not_found", f"no tuning entry {entry_id}")
    return {
        **shown(entry, conn),
        "approvals": store.approvals(conn, entry_id),
        "suppressed_detections": store.count_suppressed_by(conn, entry_id),
    }


@bp.patch("/entries/<int:entry_id>")
@require("tune")
def update_entry(entry_id: int) -> dict[str, Any]:
    payload, user = json_body(ENTRY_CHANGE), actor()
    entry = write(lambda conn: service.update_entry(conn, entry_id, payload, user=user, now_ms=now_ms()))
    return {"entry": shown(entry), "refsync": after_change()}


@bp.delete("/entries/<int:entry_id>")
@require("tune")
def delete_entry(entry_id: int) -> dict[str, Any]:
    version: Any = request.args.get("version")
    if request.is_json:
        version = json_body(ENTRY_VERSION)["version"]
    elif version is not None:
        version = int_arg("version", 0)
    user = actor()
    entry = write(lambda conn: service.delete_entry(conn, entry_id, version, user=user, now_ms=now_ms()))
    return {"entry": entry, "refsync": after_change()}


_ID = path("entry_id")
BODIES = (ENTRY_INPUT, ENTRY_CHANGE, ENTRY_VERSION)
OPENAPI_PATHS: dict[str, Any] = {
    "/api/tuning/entries": {
        "get": op(
            "List allowlist entries",
            params=[
                query("status", "string", "comma-separated: " + ",".join(STATUSES)),
                query("preset", "string", "preset id"),
                query("flagged", "string", "true: admin-overridden spoofable-only entries"),
                query("actor_id", "string", "exact actor immutable ID"),
                query("q", "string", "text search"),
                *PAGING,
            ],
        ),
        "post": op(
            "Create an entry (tune). Pending until a second tuner approves (two-person mode); "
            "returns the preview",
            body=ENTRY_INPUT,
            ok_status="201",
        ),
    },
    "/api/tuning/entries/{entry_id}": {
        "get": op("An entry with its approvals and suppressed-detection count", params=[_ID]),
        "patch": op(
            "Update an entry (tune); carries version, 409 when stale; widening changes need approval again",
            body=ENTRY_CHANGE,
            params=[_ID],
        ),
        "delete": op(
            "Delete (soft) an entry (tune); its detections come back. The version edited goes in the "
            "query or in a TuningEntryVersion body",
            params=[_ID, query("version", "integer", "the version deleted")],
        ),
    },
}
