"""JSON for QRadar Pulse's Generic API widget (a JSON array of flat objects; see the README).

* ``GET /api/pulse/timeseries?hours=24`` — one object per hour, oldest first:
  ``{"date": "<ISO hour, UTC>", "AWS": n, "Azure AD": n, "Office 365": n, "GCP": n, "Google Workspace": n, "Total": n}``.
* ``GET /api/pulse/table?hours=24&limit=25`` — newest creations as rows:
  ``{"time", "platform", "event", "actor", "target", "service_account", "chain", "href"}``.

Suppressed (allowlisted) detections are left out, as on the dashboard item.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify

from app.api.openapi import errors, ok, query
from app.api.parsing import int_arg
from app.api.urls import console_url
from app.aql.detection import PLATFORMS
from app.auth import require
from app.store import dashboard as store
from app.store.db import get_db

bp = Blueprint("pulse_api", __name__, url_prefix="/api/pulse")

HOUR_MS = 3_600_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timeseries(conn: Any, hours: int, now_ms: int) -> list[dict[str, Any]]:
    first_hour = (now_ms - (hours - 1) * HOUR_MS) // HOUR_MS * HOUR_MS
    buckets = {first_hour + i * HOUR_MS: dict.fromkeys(PLATFORMS, 0) for i in range(hours)}
    for hour, platform, count in store.hourly_counts(conn, first_hour, now_ms + 1):
        if hour in buckets and platform in buckets[hour]:
            buckets[hour][platform] += count
    return [
        {"date": _iso(h), **counts, "Total": sum(counts.values())} for h, counts in sorted(buckets.items())
    ]


@bp.get("/timeseries")
@require("view")
def pulse_timeseries() -> Any:
    hours = int_arg("hours", 24, 1, 24 * 30)
    return jsonify(timeseries(get_db(), hours, int(time.time() * 1000)))


@bp.get("/table")
@require("view")
def pulse_table() -> Any:
    hours = int_arg("hours", 24, 1, 24 * 30)
    limit = int_arg("limit", 25, 1, 500)
    now = int(time.time() * 1000)
    rows = []
    for r in store.recent(get_db(), now - hours * HOUR_MS, now + 1, limit):
        href = console_url("tab.index", detection=r["id"]) or ""
        rows.append(
            {
                "time": _iso(r["event_time"]),
                "platform": r["cloud_platform"],
                "event": r["event_name"],
                "actor": r["actor"] or "",
                "target": r["target_account"] or "",
                "service_account": "yes" if r["is_service_account"] else "no",
                "chain": r["chain_kind"] or "",
                "href": href,
            }
        )
    return jsonify(rows)


_HOURS = query("hours", {"type": "integer", "minimum": 1, "maximum": 720, "default": 24})
_TABLE_COLUMNS = ("time", "platform", "event", "actor", "target", "service_account", "chain", "href")
OPENAPI_PATHS: dict[str, Any] = {
    "/api/pulse/timeseries": {
        "get": {
            "summary": "Creations per hour and platform (QRadar Pulse Generic API time series)",
            "parameters": [_HOURS],
            "responses": {
                "200": ok(
                    "one object per hour, oldest first",
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "date": {"type": "string", "format": "date-time"},
                                **{p: {"type": "integer"} for p in PLATFORMS},
                                "Total": {"type": "integer"},
                            },
                        },
                    },
                ),
                **errors(400),
            },
        }
    },
    "/api/pulse/table": {
        "get": {
            "summary": "Newest creations as flat rows (QRadar Pulse Generic API table)",
            "parameters": [
                _HOURS,
                query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 25}),
            ],
            "responses": {
                "200": ok(
                    "rows, newest first",
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {k: {"type": "string"} for k in _TABLE_COLUMNS},
                        },
                    },
                ),
                **errors(400),
            },
        }
    },
}
