"""All tuning as one JSON document: export, and import (entries resubmitted for approval)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from app.api.parsing import json_body
from app.api.schema import Body
from app.auth import require
from app.store.db import get_db, now_ms
from app.tuning import portable
from app.tuning.api_common import actor, after_change, bp, op

DOCUMENT = Body(
    "TuningDocument",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["format", "format_version", "entries"],
        "properties": {
            "format": {"type": "string", "enum": [portable.FORMAT]},
            "format_version": {"type": "integer", "enum": [portable.FORMAT_VERSION]},
            "exported_at": {"type": "integer", "nullable": True},
            "settings": {"type": "object", "nullable": True},
            "entries": {
                "type": "array",
                "maxItems": portable.MAX_IMPORT_ENTRIES,
                "items": {"type": "object"},
            },
        },
    },
)


@bp.get("/export")
@require("view")
def export_tuning() -> Response:
    response = jsonify(portable.export_document(get_db(), now_ms()))
    response.headers["Content-Disposition"] = 'attachment; filename="cloud-account-watch-tuning.json"'
    return response


@bp.post("/import")
@require("tune")
def import_tuning() -> dict[str, Any]:
    summary = portable.import_document(get_db(), json_body(DOCUMENT), user=actor(), now_ms=now_ms())
    return {**summary, "refsync": after_change()}


BODIES = (DOCUMENT,)
OPENAPI_PATHS: dict[str, Any] = {
    "/api/tuning/export": {"get": op("All tuning as one JSON document")},
    "/api/tuning/import": {
        "post": op("Import a tuning document (tune); entries are resubmitted for approval", body=DOCUMENT),
    },
}
