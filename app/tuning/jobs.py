"""The tuning feature's refresher jobs: allowlist expiry and the QRadar reference-data sync."""

from __future__ import annotations

from app.jobs import Job, JobContext, JobFailed
from app.tuning import refsync, suppress

# An entry's expiry takes effect within this long: its detections come back, then QRadar's set follows.
ALLOWLIST_EXPIRY_EVERY_S = 60
REFERENCE_DATA_EVERY_S = 60


def expire_allowlist(ctx: JobContext) -> str:
    """Entries whose expiry passed are marked expired and their detections come back (`suppress.apply`
    over no new rows does exactly that), in a quiet cycle too, not only at the next tuning change."""
    changed = suppress.apply(ctx.conn, ctx.now_ms(), [])
    return f"{changed} detections recomputed"


def sync_reference_data(ctx: JobContext) -> str:
    """QRadar's allowlist reference set and map brought in step when the active entries changed, after a
    failed sync, or hourly (`refsync.sync_if_due` decides)."""
    outcome = refsync.sync_if_due(ctx.conn, ctx.gateway, ctx.now_ms())
    if outcome is None:
        return "in step"
    if outcome.get("status") == "error":
        raise JobFailed(f"reference data sync: {outcome.get('error')}")
    return f"synced: {outcome.get('added', 0)} added, {outcome.get('removed', 0)} removed"


ALLOWLIST_EXPIRY_JOB = Job(
    name="allowlist_expiry",
    description="Allowlist expiry: expired entries stop suppressing their detections.",
    run=expire_allowlist,
    interval_s=lambda _conn: ALLOWLIST_EXPIRY_EVERY_S,
)
REFERENCE_DATA_JOB = Job(
    name="reference_data_sync",
    description="Reference data: QRadar's allowlist reference set and map follow the active entries.",
    run=sync_reference_data,
    interval_s=lambda _conn: REFERENCE_DATA_EVERY_S,
)
