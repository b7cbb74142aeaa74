"""The coalescing health check: which cloud log sources coalesce events.

With coalescing on, QRadar stores repeated events (same QID, source and destination IP, destination port
and username within 10 s, after the third) as one record that keeps the first payload and counts the rest
in ``eventcount``. Four failed creations and the real one become a record whose payload says "failed":
the detection keeps such a record as a possible success (`app.detection.records.outcome_of`), and this job
says which cloud log sources are set that way, so an administrator can switch coalescing off for them.
It reads each log source's ``coalesce_events`` where the log source API gives it; a log source without
the field is counted as unknown, never as off.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from app import settings
from app.detection.eventset import resolve_type_ids
from app.jobs import Job, JobContext
from app.store.db import transaction
from app.store.refresh_state import get_refresh_state, save_refresh_state

log = logging.getLogger(__name__)

JOB = "coalescing_check"
CHECK_EVERY_S = 3600
# Names listed in the status; the counts cover all.
MAX_LISTED = 50


def check(ctx: JobContext) -> str:
    type_ids = resolve_type_ids(ctx.gateway, settings.get("log_source_types", conn=ctx.conn))
    cloud = {type_id for ids in type_ids.values() for type_id in ids}
    sources = [s for s in ctx.gateway.log_sources() if s.get("type_id") in cloud]
    on = [s for s in sources if s.get("coalesce_events") is True]
    unknown = [s for s in sources if not isinstance(s.get("coalesce_events"), bool)]
    details = {
        "cloud_log_sources": len(sources),
        "coalescing_on": len(on),
        "unknown": len(unknown),
        "log_sources_on": [{"id": s.get("id"), "name": s.get("name")} for s in on[:MAX_LISTED]],
    }
    at = ctx.now_ms()
    with transaction(ctx.conn):
        save_refresh_state(
            ctx.conn, JOB, last_finished_ms=at, last_success_ms=at, last_status="ok", details=details
        )
    if on:
        log.warning("coalescing is on for %d of %d cloud log sources", len(on), len(sources))
    return f"{len(on)} of {len(sources)} cloud log sources coalesce events ({len(unknown)} unknown)"


def status(conn: sqlite3.Connection) -> dict[str, Any]:
    """What `GET /api/status` reports under ``coalescing``: the last check and a warning when any cloud log
    source coalesces events (None before the first check)."""
    state = get_refresh_state(conn, JOB)
    details = state.get("details") or {}
    on = int(details.get("coalescing_on") or 0)
    return {
        "checked_ms": state.get("last_success_ms"),
        "cloud_log_sources": details.get("cloud_log_sources"),
        "coalescing_on": on,
        "unknown": details.get("unknown"),
        "log_sources_on": details.get("log_sources_on") or [],
        "warning": (
            f"Coalescing is on for {on} cloud log source(s): QRadar keeps only the first payload of "
            "repeated events, so a creation after failed attempts is reported as a possible success. "
            "Switch coalescing off for these log sources."
            if on
            else None
        ),
    }


COALESCING_JOB = Job(
    name=JOB,
    description="Coalescing health check: which cloud log sources coalesce events (hourly).",
    run=check,
    interval_s=lambda _conn: CHECK_EVERY_S,
)
