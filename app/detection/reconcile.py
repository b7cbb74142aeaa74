"""Late-data reconciliation, the refresher's `RECONCILE_JOB`: what the incremental refresh could not see.

QRadar's ``starttime`` is when it received an event, but the event may become searchable much later (a
pipeline backlog, store-and-forward, a collector catching up). The incremental refresh re-reads only its
overlap (``overlap_minutes``) behind the watermark, so an event stored later than that is never seen by it.
Every ``reconcile_interval_s`` (default hourly) this job looks back ``reconcile_window_hours`` (default
24 h) up to the detection watermark, at a small cost:

1. QRadar's per-hour row counts of the window, for the detection query and (while a creation can still
   gain a chain) the follow-on query — at most one row per hour (`aqld.detection_minute_counts` with an
   hour bucket), compared with the rows the refresh read (``ariel_minute_counts``, migration 0012, written
   by every refresh cycle and reconciliation for the minutes they read in full, summed per hour);
2. for the hours that differ, QRadar's per-minute counts, compared likewise;
3. only the minutes whose count differs are searched (one search per query, its window the changed
   minutes' ranges) and read through the refresher's own page pipeline (`refresher._drain`,
   `refresher._Cycle`): event-key de-duplication, twin merges, allowlist suppression and chains exactly as
   for the incremental path. New detections get ``found_by = 'reconciliation'``; the watermark is not
   moved; the minutes read get their new counts.

A fault-free run finds every count equal and fetches nothing but the counts. The largest lag
(``stored_at − starttime`` of a detection, i.e. receipt to when the app first saw it) and how many
detections only the reconciliation found are in ``GET /api/status`` ``late_data`` (`app.store.late_data`).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from app import settings
from app.aql import detection as aqld
from app.detection import refresher
from app.detection.config import DetectionConfig, load_config
from app.detection.records import build_detection, build_follow_on
from app.jobs import Job, JobContext, JobFailed
from app.qradar import Gateway, QRadarError, QRadarUnavailable, SearchCancelled
from app.store import detections as store
from app.store import late_data
from app.store.db import transaction
from app.store.refresh_state import get_refresh_state

log = logging.getLogger(__name__)

JOB = "late_data_reconciliation"
MINUTE_MS = aqld.MINUTE_MS
HOUR_MS = 60 * MINUTE_MS


@dataclass
class ReconcileResult:
    status: str  # ok | skipped | error | cancelled
    window: tuple[int, int] | None = None
    count_rows: int = 0  # per-minute count rows QRadar returned
    changed_minutes: dict[str, int] = field(default_factory=dict)
    rows_fetched: int = 0  # event rows of the re-read minutes, both queries
    inserted: int = 0
    seconds: float = 0.0
    error: str | None = None

    def figures(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "window": list(self.window) if self.window else None,
            "count_rows": self.count_rows,
            "changed_minutes": self.changed_minutes,
            "rows_fetched": self.rows_fetched,
            "inserted": self.inserted,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "at_ms": refresher.now_ms(),
        }


def changed_minutes(qradar: dict[int, int], known: dict[int, int]) -> list[int]:
    """Minutes whose row count QRadar gives differently from what the app read, oldest first."""
    return sorted(m for m in set(qradar) | set(known) if qradar.get(m, 0) != known.get(m, 0))


def minute_ranges(minutes: list[int]) -> list[tuple[int, int]]:
    """Sorted minutes as [start, stop) ranges, neighbours merged."""
    ranges: list[tuple[int, int]] = []
    for m in minutes:
        if ranges and ranges[-1][1] == m:
            ranges[-1] = (ranges[-1][0], m + MINUTE_MS)
        else:
            ranges.append((m, m + MINUTE_MS))
    return ranges


def reconcile_once(
    conn: sqlite3.Connection, gw: Gateway, *, now: int | None = None, cfg: DetectionConfig | None = None
) -> ReconcileResult:
    """One reconciliation (see the module docstring). QRadar errors are returned as status 'error'."""
    if conn.in_transaction:
        conn.commit()
    began = time.perf_counter()
    at = now if now is not None else refresher.now_ms()
    result = ReconcileResult(status="ok")
    details: dict[str, Any] = {"phase": "reconciliation"}
    progress = refresher._Progress(conn, details, name=JOB)  # its heartbeat, apart from the refresh's
    searches: list[str] = []
    try:
        watermark = get_refresh_state(conn, refresher.JOB)["watermark_ms"]
        if watermark is None:
            result.status = "skipped"
            return result
        cfg = cfg or load_config(conn, gw)
        window_ms = int(settings.get("reconcile_window_hours", conn)) * 3_600_000
        stop = refresher._minute(min(int(watermark), at))
        start = refresher._minute(at - window_ms)
        result.window = (start, stop)
        if start >= stop:
            result.status = "skipped"
            return result
        queries: list[tuple[str, Any, Any]] = [
            (
                "detections",
                lambda a, b, **kw: aqld.detection_minute_counts(cfg.spec, a, b, **kw),
                lambda ranges: aqld.detection_query(cfg.spec, ranges[0][0], ranges[-1][1], ranges=ranges),
            )
        ]
        if cfg.follow_on and store.has_creations_since(
            conn, start - refresher.chain_lookback_ms(cfg.windows)
        ):
            queries.append(
                (
                    "follow_on",
                    lambda a, b, **kw: aqld.follow_on_minute_counts(cfg.follow_on, a, b, **kw),
                    lambda ranges: aqld.follow_on_query(
                        cfg.follow_on,
                        ranges[0][0],
                        ranges[-1][1],
                        cfg.spec.row_limit,
                        cfg.spec.target_property,
                        ranges=ranges,
                    ),
                )
            )
        changed: dict[str, list[int]] = {}
        for name, count_aql, _ in queries:
            # Per hour first (at most one row an hour), then per minute only within the hours that differ.
            hours, rows = refresher._minute_counts(
                gw, cfg, progress, count_aql(start, stop, bucket_ms=HOUR_MS), name
            )
            result.count_rows += rows
            known_hours = late_data.bucket_counts(conn, name, start, stop, HOUR_MS)
            hour_ranges = [
                (max(h, start), min(h + HOUR_MS, stop)) for h in changed_minutes(hours, known_hours)
            ]
            changed[name] = []
            if hour_ranges:
                low, high = hour_ranges[0][0], hour_ranges[-1][1]
                counts, rows = refresher._minute_counts(
                    gw, cfg, progress, count_aql(low, high, ranges=hour_ranges), name
                )
                result.count_rows += rows
                known = late_data.minute_counts(conn, name, low, high)
                changed[name] = [
                    m for m in changed_minutes(counts, known) if any(a <= m < b for a, b in hour_ranges)
                ]
            result.changed_minutes[name] = len(changed[name])
        streams: list[refresher._Stream] = []
        stored_at = refresher.now_ms()
        builders = {
            "detections": lambda row: build_detection(row, cfg, stored_at),
            "follow_on": lambda row: build_follow_on(row, cfg, stored_at),
        }
        if not any(changed.values()):
            return result
        for name, _, query in queries:
            ranges = minute_ranges(changed[name])
            search_id, count = "", 0  # nothing changed: an empty stream keeps the pipeline's shape
            if ranges:
                search_id, count = refresher._open_search(gw, query(ranges), cfg, progress, name, (5, 50))
                searches.append(search_id)
            streams.append(
                refresher._Stream(
                    gw,
                    search_id,
                    count,
                    start=ranges[0][0] if ranges else stop,
                    stop=ranges[-1][1] if ranges else stop,
                    row_limit=cfg.spec.row_limit,
                    page_size=cfg.page_size,
                    build=builders[name],
                    counted_from=ranges[0][0] if ranges else stop,
                )
            )
        cycle = refresher._Cycle(
            conn,
            cfg,
            details,
            start=min(s.start for s in streams),
            watermark=int(watermark),
            state_job=None,
            found_by=late_data.RECONCILIATION,
            late_before=int(watermark),
        )
        before = cycle.inserted
        refresher._drain(streams, cycle, progress, min(s.start for s in streams))
        while searches:
            refresher._delete_search(gw, searches.pop())
        upto = min(s.limit() for s in streams)
        read_in_full = []
        for name, stream in zip(refresher.STREAM_QUERIES, streams, strict=False):
            minutes = [m for m in changed.get(name, []) if m + MINUTE_MS <= min(upto, stream.limit())]
            read_in_full.append((name, minutes, stream.minute_counts))
        cycle.commit(
            streams[0].take_before(upto),
            streams[1].take_before(upto) if len(streams) > 1 else [],
            upto,
            minute_counts=read_in_full,
        )
        result.rows_fetched = sum(s.rows for s in streams)
        result.inserted = cycle.inserted - before
        return result
    except SearchCancelled:
        result.status, result.error = "cancelled", "cancelled by a user"
        return result
    except (QRadarError, QRadarUnavailable) as exc:
        if conn.in_transaction:
            conn.rollback()
        log.warning("late-data reconciliation failed: %s", exc)
        result.status, result.error = "error", f"QRadar: {exc}"
        return result
    except Exception as exc:  # recorded by the job runner too; the figures say it failed
        result.status, result.error = "error", f"internal error: {type(exc).__name__}: {exc}"
        raise
    finally:
        for search_id in searches:
            refresher._delete_search(gw, search_id)
        result.seconds = time.perf_counter() - began
        if conn.in_transaction:
            conn.rollback()
        with transaction(conn):
            late_data.save_reconciliation(conn, result.figures())
            if result.window is not None and result.status == "ok":
                late_data.purge_minute_counts(conn, result.window[0] - 3_600_000)


def run_job(ctx: JobContext) -> str:
    result = reconcile_once(ctx.conn, ctx.gateway)
    summary = (
        f"{result.status}: {result.count_rows} count rows, changed minutes {result.changed_minutes}, "
        f"{result.rows_fetched} rows re-read, {result.inserted} new"
    )
    log.info("late-data reconciliation %s", summary)
    if result.status == "error":
        raise JobFailed(result.error or "the reconciliation failed")
    return summary


RECONCILE_JOB = Job(
    name=JOB,
    description="Late-data reconciliation: per-minute counts over the last hours, re-reads the minutes "
    "whose events were stored too late for the refresh.",
    run=run_job,
    interval_s=lambda conn: settings.get("reconcile_interval_s", conn=conn),
)
