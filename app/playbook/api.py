"""Playbook JSON API: run a hunting query, check validation coverage.

* ``POST /api/hunting/run`` — body ``{"query": "<topic key>", "detection"?: id, "actor"?: str,
  "target"?: str, "around_ms"?: int}``. The AQL is rebuilt server-side from the topic and the values
  (never taken from the client); the Ariel search is started and the answer (202) is its handle at once:
  ``{"search_id", "qradar_search_id", "status", "poll_url", "query", "aql"}``. No request waits for QRadar.
* ``GET /api/hunting/searches/<search_id>`` — one status call to QRadar: still running (``done`` false,
  ``progress``, ``elapsed_s``), or the rows (``done`` true, ``columns``, ``items``, ``total``), or
  QRadar's error. A search older than ``interactive_search_timeout_s`` is cancelled and answered as a
  timeout.
* ``DELETE /api/hunting/searches/<search_id>`` — cancel the search in QRadar.

QRadar answers an identical query from the same token with the search it already runs, so two hunts may
share one search: a finished search is left for QRadar to expire (never deleted here, which would end the
other hunt), and a cancel ends every hunt sharing it (they answer "cancelled").

``search_id`` is a handle the app signs (HMAC with the app's secret key) over QRadar's search id, its start
time and the user it was started for: it is refused (404) for anyone else, and a malformed one is a 400.
Every hunting call goes through `hunting_gateway()`: the gateway *as the user* (their own token, so QRadar
applies their security profile), bounded per call; hunting needs QRadar's Log Activity capability.
* ``GET /api/validation/coverage?window=24h`` — for every validation test, whether the app recorded each
  expected signal in the window (``window``: ``<n>h`` or ``<n>d``, 1 h to 90 d).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from typing import Any

from flask import Blueprint, current_app, request

from app import settings
from app.api.errors import ApiError
from app.api.openapi import errors, ok, path, query
from app.api.parsing import json_body
from app.api.schema import Body, components
from app.aql.hunting import TOPIC_KEYS, find_query
from app.aql.literals import AqlLiteralError
from app.aql.literals import string as aql_string
from app.auth import current_user, require
from app.auth.access import require_log_activity, user_gateway
from app.playbook import validation
from app.playbook.subject import subject_for_detection, target_property, type_ids
from app.qradar import Gateway, QRadarError, QRadarUnavailable, SearchStatus, SearchTimeout
from app.store.db import get_db

bp = Blueprint("playbook_api", __name__, url_prefix="/api")
log = logging.getLogger(__name__)

MAX_HUNT_ROWS = 500
# Every hunting call to QRadar ends within this (one status call, or the result pages of a finished search).
HUNT_CALL_BOUND_S = 10.0
# ``<QRadar search id>.<start, epoch ms>.<HMAC-SHA256, hex>``: QRadar's ids are UUIDs.
_HANDLE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]{0,99})\.(\d{1,15})\.([0-9a-f]{64})")
HANDLE_PATTERN = _HANDLE.pattern
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
    gw = hunting_gateway()
    search_id = gw.start_search(query.aql)
    handle = _sign(search_id, int(time.time() * 1000))
    return {
        "search_id": handle,
        "qradar_search_id": search_id,
        "status": "WAIT",
        "poll_url": f"/api/hunting/searches/{handle}",
        "query": key,
        "aql": query.aql,
    }, 202


def hunting_gateway() -> Gateway:
    """The gateway every hunting call goes through (start, poll, results, cancel): the logged-in user's own
    token, so QRadar applies their security profile, bounded per call."""
    return user_gateway().within(HUNT_CALL_BOUND_S)


def _signature(search_id: str, started_ms: int) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = f"hunting\0{current_user().name}\0{search_id}\0{started_ms}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _sign(search_id: str, started_ms: int) -> str:
    return f"{search_id}.{started_ms}.{_signature(search_id, started_ms)}"


def _verified(handle: str) -> tuple[str, int]:
    """QRadar's search id and the start time (epoch ms) of a handle signed for this user."""
    m = _HANDLE.fullmatch(handle)
    if not m:
        raise ApiError(
            400,
            "bad_field",
            "search_id is not a hunting search handle (as POST /api/hunting/run answers)",
            "search_id",
        )
    search_id, started_ms, signature = m.group(1), int(m.group(2)), m.group(3)
    if not hmac.compare_digest(signature, _signature(search_id, started_ms)):
        raise ApiError(404, "not_found", f"no hunting search {search_id} started for you", "search_id")
    return search_id, started_ms


def _failed(status: SearchStatus) -> QRadarError:
    """QRadar's words for a search that ended in ERROR or was cancelled."""
    first = status.error_messages[0] if status.error_messages else {}
    code = first.get("code")
    code = code if isinstance(code, int) else None
    if status.status == "CANCELED":
        return QRadarError(409, code, status.messages or f"Ariel search {status.search_id} was cancelled")
    return QRadarError(422, code, status.messages or f"Ariel search {status.search_id} failed")


def _quietly(action: Any, search_id: str) -> None:
    try:
        action(search_id)
    except (QRadarError, QRadarUnavailable) as exc:
        log.warning("hunting search %s: %s failed: %s", search_id, action.__name__, exc)


@bp.get("/hunting/searches/<search_id>")
@require("view")
def poll_hunting_search(search_id: str) -> Any:
    require_log_activity("hunting")
    qradar_id, started_ms = _verified(search_id)
    gw = hunting_gateway()
    status = gw.poll(qradar_id)  # one status call, no waiting: the page asks again
    elapsed_s = max(0.0, time.time() - started_ms / 1000)
    if status.status == "COMPLETED":
        rows = gw.fetch_results(qradar_id, MAX_HUNT_ROWS, min(status.record_count, MAX_HUNT_ROWS))
        columns = list(rows[0].keys()) if rows else []
        return {
            "search_id": search_id,
            "status": status.status,
            "done": True,
            "elapsed_s": round(elapsed_s, 1),
            "columns": columns,
            "items": rows,
            "total": len(rows),
        }
    if status.done:
        raise _failed(status)
    timeout_s = settings.get("interactive_search_timeout_s")
    if elapsed_s > timeout_s:
        _quietly(gw.cancel_search, qradar_id)
        raise SearchTimeout(qradar_id, timeout_s, status.progress)
    return {
        "search_id": search_id,
        "status": status.status,
        "done": False,
        "progress": status.progress,
        "elapsed_s": round(elapsed_s, 1),
    }


@bp.delete("/hunting/searches/<search_id>")
@require("view")
def cancel_hunting_search(search_id: str) -> Any:
    require_log_activity("hunting")
    qradar_id, _started_ms = _verified(search_id)
    gw = hunting_gateway()
    gw.cancel_search(qradar_id)
    return {"search_id": search_id, "status": "CANCELED", "done": True}


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
_SEARCH_ID = {
    **path("search_id", "string"),
    "description": "the handle POST /api/hunting/run answered",
}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/hunting/run": {
        "post": {
            "summary": "Start one playbook hunting query in QRadar; answers its handle at once",
            "requestBody": HUNTING_RUN.request_body(),
            "responses": {
                "202": ok(
                    "the search's handle: poll poll_url",
                    {
                        "type": "object",
                        "properties": {
                            "search_id": {"type": "string"},
                            "qradar_search_id": {"type": "string"},
                            "status": {"type": "string"},
                            "poll_url": {"type": "string"},
                            "query": {"type": "string"},
                            "aql": {"type": "string"},
                        },
                    },
                ),
                **errors(400, 401, 403, 404, 409, 422, 502, 503),
            },
        }
    },
    "/api/hunting/searches/{search_id}": {
        "get": {
            "summary": "A hunting search's state (one status call to QRadar), or its rows once it completed",
            "parameters": [_SEARCH_ID],
            "responses": {
                "200": ok(
                    "still running (done false) or the rows (done true)",
                    {
                        "type": "object",
                        "properties": {
                            "search_id": {"type": "string"},
                            "status": {"type": "string"},
                            "done": {"type": "boolean"},
                            "progress": {"type": "integer"},
                            "elapsed_s": {"type": "number"},
                            "columns": {"type": "array", "items": {"type": "string"}},
                            "items": {"type": "array", "items": {"type": "object"}},
                            "total": {"type": "integer"},
                        },
                    },
                ),
                **errors(400, 401, 403, 404, 409, 422, 502, 503),
            },
        },
        "delete": {
            "summary": "Cancel a hunting search in QRadar",
            "parameters": [_SEARCH_ID],
            "responses": {
                "200": ok(
                    "cancelled",
                    {
                        "type": "object",
                        "properties": {
                            "search_id": {"type": "string"},
                            "status": {"type": "string"},
                            "done": {"type": "boolean"},
                        },
                    },
                ),
                **errors(400, 401, 403, 404, 409, 422, 502, 503),
            },
        },
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
