"""The incremental background refresher: Ariel → detections, chains, store.

One cycle (`refresh_once`):

1. window = [watermark − overlap, now) — or [now − lookback, now) the first time;
2. the detection query over that window (`app.aql.detection.detection_query`), oldest first, bounded;
3. the follow-on query over the same window, only while a creation of the last 24 h can still gain a chain;
4. one transaction: new rows (exact de-duplication by event key; O365/Azure AD twins merged), chains
   recomputed for the last 24 h, retention purge, suppression of the inserted rows, **and the watermark**.

A crash or kill before the commit leaves the previous watermark, so the next run re-reads the window and
the event keys drop what was already stored: nothing is lost or duplicated. QRadar errors roll back, are
recorded (`last_error`) and retried with backoff. `serve()` runs cycles every `refresh_interval_s`, or at
once when any gunicorn worker queued a "refresh now" request in the store; "cancel" requests stop the
running search.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.aql import detection as aqld
from app.detection import chains as chainlib
from app.detection import classify
from app.detection.config import DetectionConfig, load_config
from app.detection.extract import Identifiers, extract
from app.qradar import Gateway, QRadarError, QRadarUnavailable, SearchCancelled
from app.store import core
from app.store import detections as store

log = logging.getLogger(__name__)

JOB = "detection"
# A cycle's status row is "running" while its heartbeat is younger than this.
HEARTBEAT_STALE_MS = 90_000
BACKOFF_BASE_S = 15
MAX_PAYLOAD_CHARS = 256 * 1024
# Re-correlate this far back each cycle: the longest chain window plus slack for late events.
CHAIN_LOOKBACK_MS = chainlib.PRIVILEGE_WINDOW_MS + 10 * 60_000


def now_ms() -> int:
    return int(time.time() * 1000)


def event_key(row: Mapping[str, Any]) -> str:
    """Exact de-duplication key: sha256 of starttime, qid, logsourceid and payload."""
    payload = row.get("payload")
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", errors="replace")
    text = f"{row.get('starttime')}\x1f{row.get('qid')}\x1f{row.get('logsourceid')}\x1f{payload or ''}"
    return hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# -- rows → records -----------------------------------------------------------------------------------


def failed(ids: Identifiers) -> bool:
    """The payload says the operation failed (AWS errorCode, Entra/O365 result, GCP status)."""
    return bool(ids.result and ids.result.strip().lower().startswith("fail"))


def build_detection(row: Mapping[str, Any], cfg: DetectionConfig, stored_at: int) -> dict[str, Any] | None:
    """A detection record from one Ariel row, or None if the row is not from one of our platforms."""
    starttime = _int(row.get("starttime"))
    if starttime is None:
        return None
    platform = classify.platform_for(
        _int(row.get("devicetype")), _str(row.get("log_source_type")), cfg.type_ids
    )
    if platform is None:
        return None
    event_name = _str(row.get("event_name")) or ""
    prop_target = _str(row.get("target_account"))
    ids = extract(
        platform,
        event_name,
        row.get("payload"),
        {"actor": row.get("actor"), "source_ip": row.get("source_ip")},
    )
    # The custom property is authoritative when the console fills it; the payload is the fallback.
    if prop_target:
        ids.target_keys.add(prop_target.lower())
        ids.target_account = prop_target
    elif not cfg.payload_fallback:
        ids.target_account = None
    if failed(ids):
        return None  # a failed creation created nothing (and is not the attack the chain rules mean)
    kind = classify.account_kind(platform, event_name)
    severity, confidence = cfg.base_severity, "medium"
    payload = row.get("payload")
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", errors="replace")
    return {
        "event_key": event_key(row),
        "event_time": starttime,
        "event_name": event_name,
        "event_category": _str(row.get("event_category")),
        "log_source": _str(row.get("log_source")),
        "log_source_type": _str(row.get("log_source_type")),
        "qid": _int(row.get("qid")),
        "cloud_platform": platform,
        "is_service_account": classify.is_service_account(kind, ids),
        "account_kind": kind,
        "actor": ids.actor,
        "actor_id": ids.actor_id,
        "actor_type": ids.actor_type,
        "target_account": ids.target_account,
        "target_id": ids.target_id,
        "target_type": ids.target_type,
        "source_ip": ids.source_ip,
        "user_agent": ids.user_agent,
        "correlation_id": ids.correlation_id,
        "result": ids.result,
        "mfa": ids.mfa,
        "magnitude": _int(row.get("magnitude")),
        "severity": severity,
        "confidence": confidence,
        "base_severity": severity,
        "base_confidence": confidence,
        "also_seen_in": [],
        "target_keys": sorted(ids.target_keys),
        "payload": payload[:MAX_PAYLOAD_CHARS] if isinstance(payload, str) else None,
        "payload_ok": ids.payload_ok,
        "stored_at": stored_at,
    }


def build_follow_on(row: Mapping[str, Any], cfg: DetectionConfig, stored_at: int) -> dict[str, Any] | None:
    starttime = _int(row.get("starttime"))
    platform = classify.platform_for(
        _int(row.get("devicetype")), _str(row.get("log_source_type")), cfg.type_ids
    )
    if starttime is None or platform is None:
        return None
    event_name = _str(row.get("event_name")) or ""
    ids: Identifiers = extract(
        platform,
        event_name,
        row.get("payload"),
        {"actor": row.get("actor"), "source_ip": row.get("source_ip")},
    )
    if failed(ids):
        return None
    payload = row.get("payload")
    return {
        "event_key": event_key(row),
        "event_time": starttime,
        "event_name": event_name,
        "cloud_platform": platform,
        "log_source": _str(row.get("log_source")),
        "actor": ids.actor,
        "actor_id": ids.actor_id,
        "target_account": ids.target_account,
        "target_keys": sorted(ids.target_keys),
        "correlation_id": ids.correlation_id,
        "granted": ids.granted,
        "admin_grant": ids.admin_grant,
        "source_ip": ids.source_ip,
        "payload": payload[:MAX_PAYLOAD_CHARS] if isinstance(payload, str) else None,
        "stored_at": stored_at,
    }


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


def _sync_allowlist(conn: sqlite3.Connection, gw: Gateway) -> None:
    """After each cycle (outside its transaction): entries whose expiry passed are marked expired and
    their detections come back (``suppress.apply`` over no new rows does exactly that), then QRadar's
    allowlist reference set is brought in step — so an expiry takes effect even in a quiet cycle, not
    only at the next tuning change. A failure is recorded and retried next cycle; it never stops detection."""
    from app.tuning import refsync, suppress

    try:
        suppress.apply(conn, now_ms(), [])
        refsync.sync_if_due(conn, gw, now_ms())
    except Exception:  # a QRadar fault or a bug in the sync must not take the refresher down
        log.exception("allowlist reference-set sync failed; retrying next cycle")
        if conn.in_transaction:
            conn.rollback()


def _refresh_statistics(conn: sqlite3.Connection) -> None:
    """The store's query-planner statistics, when due; a failure is logged and retried next cycle."""
    try:
        if core.refresh_planner_statistics_if_due(conn, now_ms()):
            log.info("query planner statistics refreshed")
    except sqlite3.Error:
        log.exception("refreshing the query planner statistics failed; retrying next cycle")
        if conn.in_transaction:
            conn.rollback()


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
            with self.conn:
                core.save_refresh_state(self.conn, JOB, details=self.details)

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
    state = core.get_refresh_state(conn, JOB)
    details: dict[str, Any] = {
        "pid": os.getpid(),
        "started_ms": stop,
        "progress": 0,
        "phase": "starting",
        "failures": int((state.get("details") or {}).get("failures", 0)),
    }
    with conn:
        core.save_refresh_state(conn, JOB, last_started_ms=stop, last_status="running", details=details)
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
            new_watermark = max(start + 1, _int(rows[-1].get("starttime")) or start + 1)
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
                    new_watermark, max(start + 1, _int(follow_rows[-1].get("starttime")) or start + 1)
                )
        result.follow_on_rows = len(follow_rows)
        follow_records = [
            r for r in (build_follow_on(row, cfg, stored_at) for row in follow_rows) if r is not None
        ]
        progress.update(force=True, phase="storing", progress=90)

        # Everything below commits together with the watermark, or not at all.
        at = now_ms()
        with conn:
            touched = store_detections(conn, records)
            known = store.known_event_keys(conn, (f["event_key"] for f in follow_records))
            new_follow = [f for f in follow_records if f["event_key"] not in known]
            for f in new_follow:
                store.insert_follow_on(conn, f)
            if touched or new_follow:
                result.chains = recorrelate(conn, start - CHAIN_LOOKBACK_MS, cfg.base_severity, at)
            purged = store.purge_older_than(conn, stop - cfg.retention_ms)
            suppressed = _apply_suppression(conn, at, touched) if touched else False
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
            core.save_refresh_state(
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


def backoff_s(failures: int, interval_s: int) -> int:
    """Seconds before retrying after `failures` consecutive failures: 15, 30, 60, … capped at the interval."""
    return int(min(interval_s, BACKOFF_BASE_S * 2 ** max(0, failures - 1)))


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
    with conn:
        core.save_refresh_state(
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
    """What `GET /api/status` reports: last and next refresh, watermark, running and progress, last error."""
    state = core.get_refresh_state(conn, JOB)
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
    }


# -- the long-running process -------------------------------------------------------------------------


def serve(
    conn_factory: Callable[[], sqlite3.Connection],
    gw_factory: Callable[[sqlite3.Connection], Gateway],
    *,
    once: bool = False,
    stop_event: threading.Event | None = None,
    poll_s: float = 1.0,
) -> None:
    """Run cycles when due or requested until `stop_event` is set (SIGTERM/SIGINT set it)."""
    stop_event = stop_event or threading.Event()
    conn = conn_factory()
    gw = gw_factory(conn)
    try:
        while not stop_event.is_set():
            state = core.get_refresh_state(conn, JOB)
            details = state.get("details") or {}
            requested = store.open_requests(conn, "refresh")
            due_ms = details.get("next_refresh_ms")
            if (
                once
                or requested
                or state["last_status"] in ("never", "running")
                or due_ms is None
                or now_ms() >= int(due_ms)
            ):
                last_request = requested[-1]["id"] if requested else None
                result = refresh_once(conn, gw)
                if last_request is not None:
                    with conn:
                        store.mark_requests_handled(conn, "refresh", now_ms(), up_to_id=last_request)
                log.info(
                    "detection refresh %s: %s rows, %s new, watermark %s",
                    result.status,
                    result.rows_fetched,
                    result.inserted,
                    result.watermark_ms,
                )
                _sync_allowlist(conn, gw)
                from app.offense import sync as offense_sync  # here: app.offense imports this module

                offense_sync.sync_if_due(conn, gw, now_ms())  # which offenses hold detections (never raises)
                _refresh_statistics(conn)
                if once:
                    return
            stop_event.wait(poll_s)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m app.refresher [--once] [--db PATH]``: the refresher process (supervisord runs it)."""
    import argparse

    from app import settings
    from app.qradar import qpylib_available
    from app.store.db import connect, default_db_path

    parser = argparse.ArgumentParser(prog="python -m app.refresher", description=__doc__.split("\n")[0])
    parser.add_argument("--once", action="store_true", help="run one cycle and exit")
    parser.add_argument("--db", default=os.environ.get("APP_DATABASE") or None, help="SQLite store file")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    db_path = args.db or str(default_db_path())
    log.info(
        "refresher started: QRadar through %s, store %s", "qpylib" if qpylib_available() else "HTTP", db_path
    )

    def gw_factory(conn: sqlite3.Connection) -> Gateway:
        return Gateway.from_env(
            api_version=settings.get("api_version", conn),
            poll_wait_s=settings.get("search_poll_wait_s", conn),
        )

    stop_event = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_event.set())
    serve(lambda: connect(db_path), gw_factory, once=args.once, stop_event=stop_event)
    return 0
