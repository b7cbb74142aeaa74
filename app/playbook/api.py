"""Playbook JSON API: run a hunting query, check validation coverage.

* ``POST /api/hunting/run`` — body ``{"query": "<topic key>", "detection"?: id, "actor"?: str,
  "target"?: str, "around_ms"?: int}``. The AQL is rebuilt server-side from the topic and the values
  (never taken from the client) and run through the gateway *as the user* (their own token, so QRadar
  applies their security profile); it needs QRadar's Log Activity capability. Results come back inline.
* ``GET /api/validation/coverage?window=24h`` — for every validation test, whether the app recorded each
  expected signal in the window (``window``: ``<n>h`` or ``<n>d``, 1 h to 90 d).
"""

from __future__ import annotations

import re
import time
from typing import Any

from flask import Blueprint, request

from app import settings
from app.api.errors import ApiError
from app.api.openapi import errors, ok, query
from app.api.parsing import json_body
from app.api.schema import Body, components
from app.aql.hunting import TOPIC_KEYS, find_query
from app.aql.literals import AqlLiteralError
from app.aql.literals import string as aql_string
from app.auth import require
from app.auth.access import require_log_activity, user_gateway
from app.playbook import validation
from app.playbook.subject import subject_for_detection, target_property, type_ids
from app.store.db import get_db

bp = Blueprint("playbook_api", __name__, url_prefix="/api")

MAX_HUNT_ROWS = 500
_WINDOW = re.compile(r"(\d{1,4})([hd])")
MAX_WINDOW_MS = 90 * 86_400_000
MAX_TEXT = 1024
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_TEXT = {"type": "string", "nullable": True, "maxLength": MAX_TEXT}
HUNTING_RUN = Body(
    "HuntingRun",
    {
        "type": "object",
        "required": ["query"],
        "additionalProperties": False,
        "properties": {
            "query": {"type": "string", "enum": sorted(TOPIC_KEYS)},
            "detection": {"type": "integer", "nullable": True},
            "actor": _TEXT,
            "target": _TEXT,
            "around_ms": {"type": "integer", "nullable": True, "minimum": 0, "maximum": MAX_EPOCH_MS},
        },
    },
)


def parse_window(raw: str | None) -> int:
    """``24h`` / ``7d`` → milliseconds (1 h … 90 d)."""
    m = _WINDOW.fullmatch((raw or "24h").strip().lower())
    if not m:
        raise ApiError(400, "bad_field", "window must look like 24h or 7d", "window")
    ms = int(m.group(1)) * (3_600_000 if m.group(2) == "h" else 86_400_000)
    if not 3_600_000 <= ms <= MAX_WINDOW_MS:
        raise ApiError(400, "bad_field", "window must be between 1h and 90d", "window")
    return ms


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    return body.get(name) or None


def _fits_aql_string(value: str) -> bool:
    try:
        aql_string(value)
    except AqlLiteralError:
        return False
    return True


@bp.post("/hunting/run")
@require("view")
def run_hunting_query() -> Any:
    require_log_activity("hunting")
    body = json_body(HUNTING_RUN)
    key = body["query"]
    actor, target = _optional_text(body, "actor"), _optional_text(body, "target")
    around_ms = body.get("around_ms")
    if body.get("detection") is not None:
        subject = subject_for_detection(body["detection"])
        if subject is None:
            raise ApiError(404, "not_found", f"no detection {body['detection']}", "detection")
        actor, target, around_ms = subject.actor, subject.target, subject.event_time_ms
    try:
        query = find_query(
            key,
            actor=actor,
            target=target,
            around_ms=around_ms,
            type_ids=type_ids(),
            target_property=target_property(),
            row_limit=MAX_HUNT_ROWS,
        )
    except AqlLiteralError as exc:  # e.g. a control character, which no AQL string literal may hold
        field = (
            "detection"
            if body.get("detection") is not None
            else ("actor" if actor is not None and not _fits_aql_string(actor) else "target")
        )
        raise ApiError(400, "bad_field", f"{field} cannot be searched for in AQL: {exc}", field) from None
    rows = user_gateway().run_search(
        query.aql, timeout_s=settings.get("interactive_search_timeout_s"), page_size=MAX_HUNT_ROWS
    )
    columns = list(rows[0].keys()) if rows else []
    return {"query": key, "aql": query.aql, "columns": columns, "items": rows, "total": len(rows)}


@bp.get("/validation/coverage")
@require("view")
def validation_coverage() -> Any:
    window_ms = parse_window(request.args.get("window"))
    now = int(time.time() * 1000)
    items = validation.coverage(get_db(), now - window_ms, now + 1)
    return {
        "window": request.args.get("window") or "24h",
        "since_ms": now - window_ms,
        "until_ms": now,
        "items": items,
        "total": len(items),
    }


OPENAPI_SCHEMAS = components(HUNTING_RUN)
OPENAPI_PATHS: dict[str, Any] = {
    "/api/hunting/run": {
        "post": {
            "summary": "Run one playbook hunting query through QRadar and return its rows",
            "requestBody": HUNTING_RUN.request_body(),
            "responses": {
                "200": ok(
                    "rows",
                    {
                        "type": "object",
                        "properties": {
                            "query": {"type": "string"},
                            "aql": {"type": "string"},
                            "columns": {"type": "array", "items": {"type": "string"}},
                            "items": {"type": "array", "items": {"type": "object"}},
                            "total": {"type": "integer"},
                        },
                    },
                ),
                **errors(400, 403, 503),
            },
        }
    },
    "/api/validation/coverage": {
        "get": {
            "summary": "Whether each validation test's expected signals were recorded in the window",
            "parameters": [query("window", {"type": "string", "example": "24h"}, "<n>h or <n>d, 1h to 90d")],
            "responses": {
                "200": ok(
                    "one item per test",
                    {
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": {"type": "object"}},
                            "total": {"type": "integer"},
                        },
                    },
                ),
                **errors(400),
            },
        }
    },
}
