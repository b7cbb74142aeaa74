"""Presets (one-click allowlists for known automation) and the live preview of an entry."""

from __future__ import annotations

from typing import Any

from app.api.errors import ApiError
from app.api.openapi import path
from app.api.parsing import json_body, list_response, read_json_object
from app.api.schema import Body
from app.auth import require
from app.store import tuning as store
from app.store.db import get_db, now_ms
from app.tuning import presets, service
from app.tuning.api_common import actor, after_change, bp, op, write
from app.tuning.api_entries import ENTRY_PROPERTIES
from app.tuning.entries import validate_entry
from app.tuning.preview import DAY_MS, PREVIEW_DAYS, preview

PREVIEW = Body(
    "TuningPreview",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "entry_id": {
                "type": "integer",
                "nullable": True,
                "description": "the entry being edited, if any",
            },
            "version": {
                "type": "integer",
                "nullable": True,
                "description": "ignored (an edit form sends it)",
            },
            **ENTRY_PROPERTIES,
        },
    },
)
PRESET_ENABLE = Body(
    "TuningPresetEnable",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["identities", "justification", "expires_at"],
        "properties": {
            "identities": {
                "type": "array",
                "minItems": 1,
                "maxItems": service.MAX_IDENTITIES,
                "items": {"type": "string"},
                "description": "the organisation's immutable IDs for the preset's automation",
            },
            "justification": {"type": "string"},
            "expires_at": ENTRY_PROPERTIES["expires_at"],
            "ticket": {"type": "string", "nullable": True},
            "confirm_partial_chain": {"type": "boolean"},
        },
    },
)


@bp.post("/preview")
@require("view")
def preview_entry() -> dict[str, Any]:
    """What an entry (new, or ``entry_id`` edited) would suppress over the last 30 days. Changes nothing."""
    payload = dict(json_body(PREVIEW))
    entry_id = payload.pop("entry_id", None)
    payload.pop("version", None)
    conn = get_db()
    current = None
    if entry_id is not None:
        current = store.get_entry(conn, entry_id)
        if current is None or current["status"] == "deleted":
            raise ApiError(404, "not_found", f"no tuning entry {entry_id}")
    user = actor()
    fields = validate_entry(payload, now_ms=now_ms(), is_admin=True, current=current)
    result = preview(conn, fields, now_ms(), entry_id=entry_id)
    result["spoofable_only"] = fields["flagged_spoofable"]
    result["you_may_save"] = user.can_tune and (user.is_admin or not fields["flagged_spoofable"])
    return result


def _preset_json(preset: presets.Preset, live: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    entries = live.get(preset.id, [])
    return {
        **preset.as_json(),
        "enabled": bool(entries),
        "entries": [{"id": e["id"], "actor_id": e["actor_id"], "status": e["status"]} for e in entries],
    }


@bp.get("/presets")
@require("view")
def list_presets() -> dict[str, Any]:
    live = store.entries_by_preset(get_db())
    items = [_preset_json(p, live) for p in presets.PRESETS]
    return list_response(items, len(items))


def _preset(preset_id: str) -> presets.Preset:
    preset = presets.PRESETS_BY_ID.get(preset_id)
    if preset is None:
        raise ApiError(404, "not_found", f"no preset {preset_id!r}")
    return preset


@bp.get("/presets/<preset_id>")
@require("view")
def get_preset(preset_id: str) -> dict[str, Any]:
    preset = _preset(preset_id)
    conn = get_db()
    body = _preset_json(preset, store.entries_by_preset(conn))
    since = now_ms() - PREVIEW_DAYS * DAY_MS
    # The payload holds the acting application's ID, the immutable evidence of Microsoft presets.
    columns = (*store.MATCH_COLUMNS, "payload") if preset.app_ids else store.MATCH_COLUMNS
    detections = (
        d
        for batch in store.iter_detections_for_matching(conn, since_ms=since, columns=columns)
        for d in batch
    )
    body["candidates"] = presets.suggest_candidates(preset, detections)
    return body


@bp.post("/presets/<preset_id>/enable")
@require("tune")
def enable_preset(preset_id: str) -> tuple[dict[str, Any], int]:
    sent = read_json_object()  # a body too large is a 413 whatever the path names
    _preset(preset_id)  # an unknown preset is a 404 whatever the body says
    payload, user = PRESET_ENABLE.validate(sent), actor()
    created = write(lambda conn: service.enable_preset(conn, preset_id, payload, user=user, now_ms=now_ms()))
    return {"entries": created, "refsync": after_change()}, 201


@bp.post("/presets/<preset_id>/disable")
@require("tune")
def disable_preset(preset_id: str) -> dict[str, Any]:
    user = actor()
    removed = write(lambda conn: service.disable_preset(conn, preset_id, user=user, now_ms=now_ms()))
    return {"entries": removed, "refsync": after_change()}


_PRESET = path("preset_id", "string")
BODIES = (PREVIEW, PRESET_ENABLE)
OPENAPI_PATHS: dict[str, Any] = {
    "/api/tuning/preview": {
        "post": op(
            "Preview: detections of the last 30 days an entry would suppress, chains touched, examples",
            body=PREVIEW,
        ),
    },
    "/api/tuning/presets": {"get": op("Preset toggles and whether each is on")},
    "/api/tuning/presets/{preset_id}": {
        "get": op("A preset with candidate identities from recent detections", params=[_PRESET]),
    },
    "/api/tuning/presets/{preset_id}/enable": {
        "post": op(
            "Turn a preset on for the organisation's immutable identities (tune)",
            body=PRESET_ENABLE,
            ok_status="201",
            params=[_PRESET],
        ),
    },
    "/api/tuning/presets/{preset_id}/disable": {
        "post": op("Turn a preset off: its entries are deleted (tune)", params=[_PRESET]),
    },
}
