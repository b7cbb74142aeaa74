"""``GET /api/overview?window=24h``: the figures above the detections table."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, request

from app.api.errors import ApiError
from app.api.openapi import errors, ok, query
from app.auth import require
from app.store import get_db
from app.store import overview as overview_store

bp = Blueprint("tab_overview", __name__)

WINDOWS_MS = {"1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000}


@bp.get("/api/overview")
@require("view")
def overview() -> dict[str, Any]:
    """Counts by platform, service accounts, chains, suppressed; hourly timeline; top initiators."""
    unknown = set(request.args) - {"window"}
    if unknown:
        name = sorted(unknown)[0]
        raise ApiError(400, "unknown_field", f"unknown query parameter {name!r}", name)
    window = request.args.get("window", "24h")
    if window not in WINDOWS_MS:
        raise ApiError(400, "bad_field", f"window must be one of {', '.join(WINDOWS_MS)}", "window")
    end_ms = int(time.time() * 1000)
    data = overview_store.overview(get_db(), end_ms - WINDOWS_MS[window], end_ms)
    return {"window": window, **data}


OPENAPI_PATHS = {
    "/api/overview": {
        "get": {
            "summary": "Overview of the detections in a window (suppressed ones counted apart)",
            "parameters": [query("window", {"type": "string", "enum": list(WINDOWS_MS), "default": "24h"})],
            "responses": {"200": ok("counts, hourly timeline by platform, top initiators"), **errors(400)},
        }
    },
}
