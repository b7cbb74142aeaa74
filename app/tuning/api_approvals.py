"""Two-person approval: approve or reject an entry's pending version."""

from __future__ import annotations

from typing import Any

from app.api.openapi import path
from app.api.parsing import json_body
from app.api.schema import Body
from app.auth import require
from app.store.db import now_ms
from app.tuning import approval
from app.tuning.api_common import actor, after_change, bp, op, shown, write

DECISION = Body(
    "TuningDecision",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["version"],
        "properties": {
            "version": {"type": "integer", "description": "the pending version decided on"},
            "note": {"type": "string", "nullable": True, "maxLength": 2000},
            "confirm_partial_chain": {"type": "boolean"},
        },
    },
)


@bp.post("/entries/<int:entry_id>/approve")
@require("tune")
def approve_entry(entry_id: int) -> dict[str, Any]:
    payload, user = json_body(DECISION), actor()
    entry = write(
        lambda conn: approval.decide(conn, entry_id, payload, user=user, now_ms=now_ms(), approve=True)
    )
    return {"entry": shown(entry), "refsync": after_change()}


@bp.post("/entries/<int:entry_id>/reject")
@require("tune")
def reject_entry(entry_id: int) -> dict[str, Any]:
    payload, user = json_body(DECISION), actor()
    entry = write(
        lambda conn: approval.decide(conn, entry_id, payload, user=user, now_ms=now_ms(), approve=False)
    )
    return {"entry": shown(entry)}


_ID = path("entry_id")
BODIES = (DECISION,)
OPENAPI_PATHS: dict[str, Any] = {
    "/api/tuning/entries/{entry_id}/approve": {
        "post": op(
            "Approve the pending version (tune; not its submitter in two-person mode)",
            body=DECISION,
            params=[_ID],
        ),
    },
    "/api/tuning/entries/{entry_id}/reject": {
        "post": op("Reject the pending version (tune)", body=DECISION, params=[_ID]),
    },
}
