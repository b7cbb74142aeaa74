"""The detection refresh, the refresher's main job (`REFRESH_JOB`): Ariel → detections, chains, store.

One cycle (`refresh_once`):

1. window = [watermark − overlap, now) — or [now − lookback, now) the first time;
2. the detection query over that window (`app.aql.detection.detection_query`), oldest first, bounded;
3. the follow-on query over the same window, only while a creation of the last 24 h can still gain a chain;
4. one transaction: new rows (exact de-duplication by event key; O365/Azure AD twins merged), chains
   recomputed for the last 24 h, retention purge, suppression of the inserted rows, **and the watermark**.

A crash or kill before the commit leaves the previous watermark, so the next run re-reads the window and
the event keys drop what was already stored: nothing is lost or duplicated. QRadar errors roll back, are
recorded (`last_error`) and retried with backoff. The refresher process (`app.refresher`) runs a cycle
every `refresh_interval_s` (`due_ms`), or at once when any gunicorn worker queued a "refresh now" request
in the store; "cancel" requests stop the running search. Records are built by `app.detection.records`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app import settings
from app.aql import detection as aqld
from app.detection import chains as chainlib
from app.detection.config import DetectionConfig, load_config
from app.detection.records import as_int, build_detection, build_follow_on
from app.jobs import Job, JobContext, JobFailed, backoff_s
from app.qradar import Gateway, QRadarError, QRadarUnavailable, SearchCancelled
from app.store import detections as store
from app.store import jobs as job_store
from app.store import tuning as tuning_rows
from app.store.db import transaction
from app.store.refresh_state import get_refresh_state, save_refresh_state

log = logging.getLogger(__name__)

JOB = "detection"
# A cycle's status row is "running" while its heartbeat is younger than this.
HEARTBEAT_STALE_MS = 90_000
# Re-correlate this far back each cycle: the longest chain window plus slack for late events.
CHAIN_LOOKBACK_MS = chainlib.PRIVILEGE_WINDOW_MS + 10 * 60_000


def now_ms() -> int:
    return int(time.time() * 1000)


def _chain_event(row: Mapping[str, Any], *, is_creation: bool) -> chainlib.ChainEvent:
    keys = row["target_keys"]
    keys = json.loads(keys) if isinstance(keys, str) else (keys or [])
    return chainlib.ChainEvent(
        event_key=row["event_key"],
        event_time=row["event_time"],
        platform=row["cloud_platform"],
        event_name=row["event_name"] or "",
        account_kind=row["account_kind"] if is_creation else "other",
        actor=row["actor"],
        actor_id=row["actor_id"],
        target_account=row["target_account"],
        target_keys=frozenset(k for k in keys if isinstance(k, str)),
        correlation_id=row["correlation_id"],
        admin_grant=bool(row["admin_grant"]) if not is_creation else False,
        detection_id=row["id"] if is_creation else None,
        is_creation=is_creation,
    )


# -- the store transaction ----------------------------------------------------------------------------


def store_detections(conn: sqlite3.Connection, records: Iterable[dict[str, Any]]) -> list[int]:
    """Insert new detections, merging Azure AD / Office 365 twins; returns ids of rows inserted or changed.
    Runs inside the caller's transaction."""
    records = sorted(records, key=lambda r: (r["event_time"], r["cloud_platform"] != aqld.AZURE_AD))
    known = store.known_event_keys(conn, (r["event_key"] for r in records))
    touched: list[int] = []
    for rec in records:
        if rec["event_key"] in known:
            continue
        known.add(rec["event_key"])
        if rec["cloud_platform"] in (aqld.AZURE_AD, aqld.OFFICE_365):
            twin = _find_twin(conn, rec)
            if twin is not None:
                if rec["cloud_platform"] == aqld.OFFICE_365:
                    store.add_twin(
                        conn,
                        twin,
                        event_key=rec["event_key"],
                        platform=rec["cloud_platform"],
                        event_time=rec["event_time"],
                        event_name=rec["event_name"],
                    )
                else:
                    store.promote_twin(conn, twin, rec)
                touched.append(twin)
                continue
        touched.append(store.insert_detection(conn, rec))
    return touched


def _find_twin(conn: sqlite3.Connection, rec: dict[str, Any]) -> int | None:
    window = chainlib.TWIN_WINDOW_MS
    new = _chain_event({**rec, "id": None, "admin_grant": 0}, is_creation=True)
    for row in store.entra_detections_between(conn, rec["event_time"] - window, rec["event_time"] + window):
        old = _chain_event({**dict(row), "admin_grant": 0}, is_creation=True)
        seen = set(
            json.loads(
                conn.execute("SELECT also_seen_in FROM detections WHERE id = ?", (row["id"],)).fetchone()[0]
                or "[]"
            )
        )
        if new.platform == aqld.OFFICE_365 and aqld.OFFICE_365 not in seen and chainlib.twin_match(old, new):
            return int(row["id"])
        if new.platform == aqld.AZURE_AD and chainlib.twin_match(new, old):
            return int(row["id"])
    return None


def recorrelate(conn: sqlite3.Connection, since_ms: int, base_severity: int, at_ms: int) -> int:
    """Recompute chains from `since_ms` on and store them; returns how many chains there are."""
    creations, follow_ons = store.chain_inputs(conn, since_ms)
    built = chainlib.build_chains(
        [_chain_event(r, is_creation=True) for r in creations],
        [_chain_event(r, is_creation=False) for r in follow_ons],
    )
    rows = []
    for chain in built:
        severity, confidence = chainlib.chain_severity(base_severity, chain)
        rows.append(
            store.ChainRow(
                chain_key=chain.key,
                kind=chain.kind,
                kinds=chain.kinds,
                first_time=chain.first_time,
                last_time=chain.last_time,
                severity=severity,
                confidence=confidence,
                admin=chain.admin,
                events=[
                    (
                        e.event_key,
                        e.event_time,
                        e.event_name,
                        e.platform,
                        e.actor,
                        e.target_account,
                        e.detection_id,
                    )
                    for e in chain.events
                ],
            )
        )
    store.replace_chains(conn, since_ms, rows, at_ms)
    return len(rows)


def _apply_suppression(conn: sqlite3.Connection, at_ms: int, detection_ids: list[int]) -> bool:
    """Tuning's hook (`app.tuning.suppress.apply`), when that package is installed."""
    try:
        from app.tuning import suppress
    except ImportError:
        return False
    suppress.apply(conn, at_ms, detection_ids)
    return True


# -- one cycle ----------------------------------------------------------------------------------------


@dataclass
class CycleResult:
    status: str  # ok | error | cancelled
    start_ms: int = 0
    stop_ms: int = 0
    watermark_ms: int | None = None
    rows_fetched: int = 0
    follow_on_rows: int = 0
    inserted: int = 0
    chains: int = 0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class _Progress:
    """Writes progress and a heartbeat to refresh_state (throttled) and checks for cancel requests."""

    def __init__(self, conn: sqlite3.Connection, details: dict[str, Any], interval_s: float = 1.0) -> None:
        self.conn = conn
        self.details = details
        self.interval_s = interval_s
        self._last = 0.0
        self._last_cancel_check = 0.0

    def update(self, force: bool = False, **changes: Any) -> None:
        self.details.update(changes)
        now = time.monotonic()
        if force or now - self._last >= self.interval_s:
            self._last = now
            self.details["heartbeat_ms"] = now_ms()
            with transaction(self.conn):
                save_refresh_state(self.conn, JOB, details=self.details)

    def cancel_requested(self) -> bool:
        now = time.monotonic()
        if now - self._last_cancel_check < self.interval_s:
            return False
        self._last_cancel_check = now
        return bool(store.open_requests(self.conn, "cancel"))


def _search(
    gw: Gateway, aql: str, cfg: DetectionConfig, progress: _Progress, phase: str, weight: tuple[int, int]
) -> list[dict[str, Any]]:
    """Run one Ariel search with progress/cancel wired to the store; returns all rows."""
    low, high = weight

    def on_progress(status: Any) -> None:
        progress.update(phase=phase, progress=low + (high - low) * int(status.progress or 0) // 100)

    return gw.run_search(
        aql,
        cfg.search_timeout_s,
        page_size=cfg.page_size,
        on_progress=on_progress,
        should_cancel=progress.cancel_requested,
    )


def refresh_once(
    conn: sqlite3.Connection, gw: Gateway, *, now: int | None = None, cfg: DetectionConfig | None = None
) -> CycleResult:
    """One refresh cycle (see the module docstring). Never raises for QRadar errors: they are recorded
    in refresh_state and returned as status 'error'."""
    if conn.in_transaction:
        conn.commit()
    stop = now if now is not None else now_ms()
    state = get_refresh_state(conn, JOB)
    details: dict[str, Any] = {
        "pid": os.getpid(),
        "started_ms": stop,
        "progress": 0,
        "phase": "starting",
        "failures": int((state.get("details") or {}).get("failures", 0)),
    }
    with transaction(conn):
        save_refresh_state(conn, JOB, last_started_ms=stop, last_status="running", details=details)
        # Cancel requests made while nothing ran are void; a new one will stop this cycle.
        store.mark_requests_handled(conn, "cancel", stop)
    progress = _Progress(conn, details)
    result = CycleResult(status="ok", stop_ms=stop)
    try:
        cfg = cfg or load_config(conn, gw)
        watermark = state.get("watermark_ms")
        start = (watermark - cfg.overlap_ms) if watermark is not None else stop - cfg.lookback_ms
        start = max(0, min(start, stop - 1))
        result.start_ms = start
        progress.update(force=True, window=[start, stop], phase="detections")

        rows = _search(gw, aqld.detection_query(cfg.spec, start, stop), cfg, progress, "detections", (0, 70))
        result.rows_fetched = len(rows)
        new_watermark = stop
        if len(rows) >= cfg.spec.row_limit and rows:
            # Truncated: continue from the last row read (the overlap re-reads its millisecond).
            new_watermark = max(start + 1, as_int(rows[-1].get("starttime")) or start + 1)
        stored_at = now_ms()
        records = [r for r in (build_detection(row, cfg, stored_at) for row in rows) if r is not None]
        del rows

        follow_rows: list[dict[str, Any]] = []
        if cfg.follow_on and (records or store.has_creations_since(conn, start - CHAIN_LOOKBACK_MS)):
            follow_rows = _search(
                gw,
                aqld.follow_on_query(cfg.follow_on, start, new_watermark, cfg.spec.row_limit),
                cfg,
                progress,
                "follow-on events",
                (70, 90),
            )
            if len(follow_rows) >= cfg.spec.row_limit and follow_rows:
                new_watermark = min(
                    new_watermark, max(start + 1, as_int(follow_rows[-1].get("starttime")) or start + 1)
                )
        result.follow_on_rows = len(follow_rows)
        follow_records = [
            r for r in (build_follow_on(row, cfg, stored_at) for row in follow_rows) if r is not None
        ]
        progress.update(force=True, phase="storing", progress=90)

        # Everything below commits together with the watermark, or not at all.
        at = now_ms()
        with transaction(conn):
            touched = store_detections(conn, records)
            known = store.known_event_keys(conn, (f["event_key"] for f in follow_records))
            new_follow = [f for f in follow_records if f["event_key"] not in known]
            for f in new_follow:
                store.insert_follow_on(conn, f)
            if touched or new_follow:
                result.chains = recorrelate(conn, start - CHAIN_LOOKBACK_MS, cfg.base_severity, at)
            purged = store.purge_older_than(conn, stop - cfg.retention_ms)
            # A chain that grew can override an earlier creation's suppression: recheck its members too.
            recheck = touched
            if touched or new_follow:
                recheck = [*touched, *tuning_rows.chained_detection_ids(conn, start - CHAIN_LOOKBACK_MS)]
            suppressed = _apply_suppression(conn, at, recheck) if recheck else False
            details.update(
                phase="done",
                progress=100,
                failures=0,
                inserted=len(touched),
                rows_fetched=result.rows_fetched,
                follow_on_rows=result.follow_on_rows,
                purged=purged,
                suppression_applied=suppressed,
                heartbeat_ms=at,
                next_refresh_ms=at + cfg.interval_s * 1000,
            )
            save_refresh_state(
                conn,
                JOB,
                watermark_ms=new_watermark,
                last_finished_ms=at,
                last_success_ms=at,
                last_status="ok",
                last_error=None,
                runs=int(state.get("runs") or 0) + 1,
                details=details,
            )
        result.inserted = len(touched)
        result.watermark_ms = new_watermark
        result.details = details
        return result
    except SearchCancelled:
        return _finish_failed(conn, state, details, result, "cancelled", "cancelled by a user", cfg)
    except (QRadarError, QRadarUnavailable) as exc:
        log.warning("detection refresh failed: %s", exc)
        return _finish_failed(conn, state, details, result, "error", f"QRadar: {exc}", cfg)
    except Exception as exc:  # the store stays as it was; the loop retries with backoff instead of dying
        log.exception("detection refresh failed")
        return _finish_failed(conn, state, details, result, "error", f"internal error: {exc}", cfg)


def _finish_failed(
    conn: sqlite3.Connection,
    state: dict[str, Any],
    details: dict[str, Any],
    result: CycleResult,
    status: str,
    message: str,
    cfg: DetectionConfig | None,
) -> CycleResult:
    if conn.in_transaction:
        conn.rollback()
    at = now_ms()
    interval = cfg.interval_s if cfg else 300
    failures = int(details.get("failures", 0)) + (1 if status == "error" else 0)
    delay = backoff_s(failures, interval) if status == "error" else interval
    details.update(phase=status, failures=failures, heartbeat_ms=at, next_refresh_ms=at + delay * 1000)
    with transaction(conn):
        save_refresh_state(
            conn,
            JOB,
            last_finished_ms=at,
            last_status=status,
            last_error=message if status == "error" else None,
            runs=int(state.get("runs") or 0) + 1,
            details=details,
        )
        if status == "cancelled":
            store.mark_requests_handled(conn, "cancel", at)
    result.status = status
    result.error = message
    result.details = details
    return result


# -- status for the API ---------------------------------------------------------------------------------


def status(conn: sqlite3.Connection, interval_s: int | None = None) -> dict[str, Any]:
    """What `GET /api/status` reports: last and next refresh, watermark, running and progress, last error;
    and ``jobs``, the status of every job of the refresher (`app.store.jobs.list_jobs`)."""
    state = get_refresh_state(conn, JOB)
    details = state.get("details") or {}
    at = now_ms()
    fresh = at - int(details.get("heartbeat_ms") or 0) < HEARTBEAT_STALE_MS
    running = state["last_status"] == "running" and fresh
    last_status = state["last_status"]
    if last_status == "running" and not running:
        last_status = "interrupted"  # the process died mid-cycle; the next cycle redoes the window
    pending = store.open_requests(conn, "refresh")
    next_ms = details.get("next_refresh_ms")
    if next_ms is None and state.get("last_finished_ms") and interval_s:
        next_ms = state["last_finished_ms"] + interval_s * 1000
    return {
        "running": running,
        "progress": int(details.get("progress") or 0) if running else (100 if last_status == "ok" else 0),
        "phase": details.get("phase"),
        "last_status": last_status,
        "last_refresh_ms": state.get("last_success_ms"),
        "last_started_ms": state.get("last_started_ms"),
        "last_finished_ms": state.get("last_finished_ms"),
        "next_refresh_ms": at if pending and not running else next_ms,
        "watermark_ms": state.get("watermark_ms"),
        "last_error": state.get("last_error"),
        "consecutive_failures": int(details.get("failures") or 0),
        "refresh_requested": bool(pending),
        "runs": state.get("runs") or 0,
        "last_cycle": {
            k: details.get(k)
            for k in ("window", "rows_fetched", "follow_on_rows", "inserted", "purged", "suppression_applied")
        },
        "counts": store.counts(conn),
        "jobs": job_store.list_jobs(conn),
    }


# -- the refresher's job ------------------------------------------------------------------------------


def due_ms(ctx: JobContext) -> int | None:
    """When the next cycle is due: at once when asked ("refresh now"), when it never ran or was
    interrupted mid-cycle; else when the last cycle said (the interval, or the backoff after errors)."""
    state = get_refresh_state(ctx.conn, JOB)
    next_ms = (state.get("details") or {}).get("next_refresh_ms")
    if (
        store.open_requests(ctx.conn, "refresh")
        or state["last_status"] in ("never", "running")
        or next_ms is None
    ):
        return ctx.now_ms()
    return int(next_ms)


def run_job(ctx: JobContext) -> str:
    """One cycle, then the "refresh now" requests it answered are marked handled."""
    requested = store.open_requests(ctx.conn, "refresh")
    last_request = requested[-1]["id"] if requested else None
    result = refresh_once(ctx.conn, ctx.gateway)
    if last_request is not None:
        with transaction(ctx.conn):
            store.mark_requests_handled(ctx.conn, "refresh", now_ms(), up_to_id=last_request)
    summary = (
        f"{result.status}: {result.rows_fetched} rows, {result.inserted} new, watermark {result.watermark_ms}"
    )
    log.info("detection refresh %s", summary)
    if result.status == "error":
        raise JobFailed(result.error or "the refresh failed")
    return summary


REFRESH_JOB = Job(
    name=JOB,
    description="Detection refresh: Ariel search for new account creations, chains, retention purge.",
    run=run_job,
    interval_s=lambda conn: settings.get("refresh_interval_s", conn=conn),
    due_ms=due_ms,
)
