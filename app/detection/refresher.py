"""The detection refresh, the refresher's main job (`REFRESH_JOB`): Ariel → detections, chains, store.

One cycle (`refresh_once`):

1. where to read from, per query (detections; follow-on events): the lookback the first time; after a
   search cut by its LIMIT, exactly where it stopped; otherwise QRadar's per-minute row counts of the
   overlap [watermark − overlap, watermark) are compared with what the last cycle read there, and the
   query re-reads from the first minute whose count changed (an event stored late), or from the watermark;
2. the detection search, and the follow-on search while a stored creation can still gain a chain (within
   the longest chain window or the escalation memory)
   (each oldest first, bounded by ``detection_row_limit``);
3. their result pages, read in time order across both searches (about 4 MiB each), each row parsed once
   into a record; every page commits in **one transaction**: its new rows (exact de-duplication by event
   key, O365/Azure AD twins merged, batched inserts, ``suppressed_by`` from the allowlist matcher), the
   chains recomputed when the page changes their inputs, and the watermark moved to the time before which
   both searches have been read in full (never back);
4. the last commit adds the retention purge, the overlap's per-minute counts, the rows read per minute
   for the minutes read in full (``ariel_minute_counts``, which the late-data reconciliation,
   `app.detection.reconcile`, compares with QRadar's) and the cycle's status.

Memory is bounded by a page, never a cycle. The store always equals a clean cycle up to its watermark:
a crash or a QRadar error keeps the pages committed before it, and the next cycle goes on from their
watermark (re-reading the overlap in full, as the counts of an unfinished cycle are not kept); event keys
drop what was already stored, so nothing is lost or duplicated and the next good cycle stores exactly
what a fault-free one would. QRadar errors are recorded (`last_error`) and retried with backoff; a cycle
whose search was cut by its LIMIT is followed at once by the next. The refresher process (`app.refresher`)
runs a cycle every `refresh_interval_s` (`due_ms`), or at once when any gunicorn worker queued a "refresh
now" request in the store; "cancel" requests stop the running search. Records are built by
`app.detection.records`.
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
from app.detection import aws_memory, coalescing, selfcheck
from app.detection import chains as chainlib
from app.detection.config import DetectionConfig, load_config
from app.detection.records import as_int, build_detection, build_follow_on
from app.jobs import Job, JobContext, JobFailed, backoff_s
from app.qradar import Gateway, QRadarError, QRadarUnavailable, SearchCancelled
from app.store import detections as store
from app.store import jobs as job_store
from app.store import late_data
from app.store import tuning as tuning_rows
from app.store.db import transaction
from app.store.refresh_state import get_refresh_state, save_refresh_state

log = logging.getLogger(__name__)

JOB = "detection"
# A cycle's status row is "running" while its heartbeat is younger than this.
HEARTBEAT_STALE_MS = 90_000
# Slack for late events on top of the longest chain window each cycle re-correlates.
CHAIN_SLACK_MS = 10 * 60_000


def chain_lookback_ms(windows: chainlib.ChainWindows) -> int:
    """How far back of a cycle's window its chains are recomputed in full (older creations join through
    the escalation memory's look-up by target)."""
    return windows.recent_ms + CHAIN_SLACK_MS


def now_ms() -> int:
    return int(time.time() * 1000)


def _follow_on_kind(row: Mapping[str, Any]) -> str | None:
    """A follow-on event's kind: set for context-only creations (MFA devices, IAM groups), else None."""
    keys = row.keys() if isinstance(row, sqlite3.Row) else row
    return row["account_kind"] if "account_kind" in keys else None


def _chain_event(row: Mapping[str, Any], *, is_creation: bool) -> chainlib.ChainEvent:
    keys = row["target_keys"]
    keys = json.loads(keys) if isinstance(keys, str) else (keys or [])
    # Chains and twins correlate on the event's own time; the receipt time stands in when it is unknown.
    try:
        own_time = row["device_time"]
    except (KeyError, IndexError):  # a record built without it (sqlite3.Row raises IndexError)
        own_time = None
    return chainlib.ChainEvent(
        event_key=row["event_key"],
        event_time=row["event_time"] if own_time is None else own_time,
        received_time=None if own_time is None else row["event_time"],
        platform=row["cloud_platform"],
        event_name=row["event_name"] or "",
        account_kind=(row["account_kind"] if is_creation else _follow_on_kind(row)) or "other",
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


def store_detections(
    conn: sqlite3.Connection,
    records: Iterable[dict[str, Any]],
    matcher: Any = None,
    twin_window_ms: int = chainlib.TWIN_WINDOW_MS,
) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """Insert new detections, merging Azure AD / Office 365 twins; returns (records inserted, their ids,
    ids of stored detections a twin changed). Runs inside the caller's transaction. With `matcher`, each new row gets its
    ``suppressed_by`` on insert. Rows go in one batch; a twin candidate first flushes the rows before it,
    so it sees them (and ids keep the records' order)."""
    records = sorted(records, key=lambda r: (r["event_time"], r["cloud_platform"] != aqld.AZURE_AD))
    known = store.known_event_keys(conn, (r["event_key"] for r in records))
    new: list[dict[str, Any]] = []
    inserted: list[int] = []
    twinned: list[int] = []
    batch: list[dict[str, Any]] = []
    for rec in records:
        if rec["event_key"] in known:
            continue
        known.add(rec["event_key"])
        if matcher is not None:
            rec["suppressed_by"] = matcher.match(rec) if matcher.size else None
        if rec["cloud_platform"] in (aqld.AZURE_AD, aqld.OFFICE_365):
            inserted += store.insert_detections(conn, batch)
            new += batch
            batch = []
            twin = _find_twin(conn, rec, twin_window_ms)
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
                twinned.append(twin)
                continue
        batch.append(rec)
    inserted += store.insert_detections(conn, batch)
    new += batch
    return new, inserted, twinned


def _find_twin(conn: sqlite3.Connection, rec: dict[str, Any], window: int) -> int | None:
    """The stored detection `rec` is the Azure AD / Office 365 twin of, matched by the events' own times
    (the Office 365 copy reaches QRadar minutes to hours after Entra's record)."""
    new = _chain_event({**rec, "id": None, "admin_grant": 0}, is_creation=True)
    for row in store.entra_detections_between(conn, new.event_time - window, new.event_time + window):
        old = _chain_event({**dict(row), "admin_grant": 0}, is_creation=True)
        seen = set(
            json.loads(
                conn.execute("SELECT also_seen_in FROM detections WHERE id = ?", (row["id"],)).fetchone()[0]
                or "[]"
            )
        )
        if (
            new.platform == aqld.OFFICE_365
            and aqld.OFFICE_365 not in seen
            and chainlib.twin_match(old, new, window)
        ):
            return int(row["id"])
        if new.platform == aqld.AZURE_AD and chainlib.twin_match(new, old, window):
            return int(row["id"])
    return None


def recorrelate(
    conn: sqlite3.Connection,
    since_ms: int,
    base_severity: int,
    at_ms: int,
    windows: chainlib.ChainWindows = chainlib.DEFAULT_WINDOWS,
) -> tuple[int, list[int]]:
    """Recompute chains from `since_ms` (receipt time) on and store them, with the older creations an administrator grant
    of that span names (escalation memory, `windows.escalation_ms` back); returns how many chains there
    are and the ids of the older detections whose chains were rebuilt. Chains order and window events by
    their own time; the stored chain's first/last time are receipt times, the window the store replaces
    chains by."""
    creations, follow_ons = store.chain_inputs(conn, since_ms)
    memory_from = since_ms - windows.escalation_ms
    older, older_follow_ons, older_chains = store.remembered_creations(conn, since_ms, memory_from)
    creation_events = {r["event_key"]: _chain_event(r, is_creation=True) for r in (*creations, *older)}
    follow_events = {
        r["event_key"]: _chain_event(r, is_creation=False) for r in (*follow_ons, *older_follow_ons)
    }
    built = chainlib.build_chains(creation_events.values(), follow_events.values(), windows)
    rows = []
    for chain in built:
        severity, confidence = chainlib.chain_severity(base_severity, chain)
        rows.append(
            store.ChainRow(
                chain_key=chain.key,
                kind=chain.kind,
                kinds=chain.kinds,
                first_time=chain.first_received,
                last_time=chain.last_received,
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
    store.replace_chains(conn, since_ms, rows, at_ms, also_replace=older_chains)
    return len(rows), [int(r["id"]) for r in older]


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

    def __init__(
        self, conn: sqlite3.Connection, details: dict[str, Any], interval_s: float = 1.0, name: str = JOB
    ) -> None:
        self.conn = conn
        self.name = name  # the refresh_state row it writes
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
                save_refresh_state(self.conn, self.name, details=self.details)

    def cancel_requested(self) -> bool:
        now = time.monotonic()
        if now - self._last_cancel_check < self.interval_s:
            return False
        self._last_cancel_check = now
        return bool(store.open_requests(self.conn, "cancel"))


# Ariel results per page: at most `search_page_size` rows and about PAGE_BYTES, so that a page of large
# payloads (tags, policy documents) keeps the refresher's memory bounded.
PAGE_BYTES = 4 * 1024 * 1024
FIRST_PAGE_ROWS = 500
MIN_PAGE_ROWS = 10
ROW_OVERHEAD_BYTES = 600  # the row's other columns and JSON punctuation


class _Stream:
    """One Ariel search read page by page, oldest first: its records wait in `buffer` until committed.

    `limit()` is the time before which every row of the search has been read: the last row's starttime
    while pages remain (rows of that millisecond may continue on the next page), then the window's end —
    or, for a search cut by its LIMIT, the starttime of its last row (the next cycle re-reads it)."""

    def __init__(
        self,
        gw: Gateway,
        search_id: str,
        record_count: int,
        *,
        start: int,
        stop: int,
        row_limit: int,
        page_size: int,
        build: Any,
        counted_from: int,
    ) -> None:
        self.gw = gw
        self.search_id = search_id
        self.page_size = page_size
        # The first page is small; later ones hold about PAGE_BYTES of results (payload sizes vary widely).
        self.next_rows = min(page_size, FIRST_PAGE_ROWS)
        self.record_count = record_count
        self.truncated = record_count >= row_limit > 0
        self.start = start
        self.stop = stop
        self.frontier = start
        self.done = record_count == 0
        self.rows = 0
        self.build = build
        self.buffer: list[dict[str, Any]] = []
        # Rows read per minute from `counted_from` on (the next cycle's overlap), by their starttime.
        self.counted_from = counted_from
        self.minute_counts: dict[int, int] = {}

    def limit(self) -> int:
        return (self.frontier if self.truncated else self.stop) if self.done else self.frontier

    def read_page(self) -> None:
        page = (
            self.gw.results(self.search_id, self.rows, min(self.rows + self.next_rows, self.record_count) - 1)
            if self.rows < self.record_count
            else []
        )
        if not page:
            self.done = True
            return
        self.rows += len(page)
        payload_chars = sum(len(p) for p in (row.get("payload") for row in page) if isinstance(p, str))
        row_bytes = ROW_OVERHEAD_BYTES + payload_chars // len(page)
        self.next_rows = min(self.page_size, max(MIN_PAGE_ROWS, PAGE_BYTES // row_bytes))
        build = self.build
        counts = self.minute_counts
        for row in page:
            record = build(row)
            if record is not None:
                self.buffer.append(record)
            t = as_int(row.get("starttime"))
            if t is not None and t >= self.counted_from:
                minute = t - t % aqld.MINUTE_MS
                counts[minute] = counts.get(minute, 0) + 1
        last = as_int(page[-1].get("starttime"))
        if last is not None:
            self.frontier = max(self.frontier, min(last, self.stop))
        if self.rows >= self.record_count:
            self.done = True
            if self.truncated:
                self.frontier = max(self.start + 1, self.frontier)

    def take_before(self, limit: int) -> list[dict[str, Any]]:
        """The buffered records older than `limit` (the buffer is in time order)."""
        cut = 0
        for record in self.buffer:
            if record["event_time"] >= limit:
                break
            cut += 1
        taken, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return taken


def _open_search(
    gw: Gateway, aql: str, cfg: DetectionConfig, progress: _Progress, phase: str, weight: tuple[int, int]
) -> tuple[str, int]:
    """Start one Ariel search and wait for it (progress and cancel wired to the store); (id, row count)."""
    low, high = weight

    def on_progress(status: Any) -> None:
        progress.update(phase=phase, progress=low + (high - low) * int(status.progress or 0) // 100)

    search_id = gw.start_search(aql)
    try:
        status = gw.wait_for_search(
            search_id, cfg.search_timeout_s, on_progress, should_cancel=progress.cancel_requested
        )
    except BaseException:
        _delete_search(gw, search_id)
        raise
    return search_id, int(status.record_count or 0)


def _delete_search(gw: Gateway, search_id: str) -> None:
    try:
        gw.delete_search(search_id)
    except (QRadarError, QRadarUnavailable) as exc:
        log.warning("deleting Ariel search %s failed: %s", search_id, exc)


class _Cycle:
    """The store side of one cycle: each call to `commit` is one transaction holding a page's new rows,
    the chains they change, suppression, and the watermark they allow."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        cfg: DetectionConfig,
        details: dict[str, Any],
        *,
        start: int,
        watermark: int | None,
        state_job: str | None = JOB,
        found_by: str | None = None,
        late_before: int | None = None,
    ) -> None:
        self.conn = conn
        self.cfg = cfg
        self.details = details
        self.start = start
        self.watermark = watermark
        # The refresh_state row whose watermark and details each commit saves (None: the reconciliation,
        # which reads behind the watermark and keeps its own state).
        self.state_job = state_job
        self.found_by = found_by  # detections.found_by of the rows it inserts
        # Rows older than this arrived late (the watermark before the cycle): their lag is noted.
        self.late_before = late_before
        self.chain_since = start - chain_lookback_ms(cfg.windows)
        self.named_keys: set[str] | None = None
        self.inserted = 0
        self.chains: int | None = None

    def _needs_chains(
        self, new: list[dict[str, Any]], new_follow: list[dict[str, Any]], twinned: bool
    ) -> bool:
        """Whether this page changes what chains are built from (`store.chain_inputs`): follow-on events,
        twin merges, creations of a chain kind, or creations whose target a follow-on event or an AWS
        credential names. Otherwise the chains stay as they are and recomputing them is skipped."""
        if new_follow or twinned:
            return True
        if self.named_keys is None:
            self.named_keys = store.chain_named_keys(self.conn, self.chain_since)
        for rec in new:
            if chainlib.is_chain_candidate(rec["cloud_platform"], rec["account_kind"]):
                return True
            target, target_id = rec.get("target_account"), rec.get("target_id")
            if (target and target.lower() in self.named_keys) or (
                target_id and target_id.lower() in self.named_keys
            ):
                return True
        return False

    def commit(
        self,
        records: list[dict[str, Any]],
        follow_records: list[dict[str, Any]],
        upto: int,
        *,
        final: dict[str, Any] | None = None,
        answers_request: int | None = None,
        minute_counts: Iterable[tuple[str, Iterable[int], Mapping[int, int]]] = (),
    ) -> None:
        """Store `records` and `follow_records` (all older than `upto`) and move the watermark to `upto`
        (never back), in one transaction. `final`: the cycle's last commit, with its closing state.
        `minute_counts`: (query, minutes read in full, rows per minute) for the reconciliation's check."""
        conn = self.conn
        at = now_ms()
        if any(r.get("context_only") for r in records):
            # Context-only creations (kinds.CONTEXT_ONLY_KINDS) are kept with the follow-on events.
            follow_records = [*follow_records, *(r for r in records if r.get("context_only"))]
            records = [r for r in records if not r.get("context_only")]
        with transaction(conn):
            matcher = _matcher_for_new_rows(conn, at)
            if self.found_by is not None:
                for rec in records:
                    rec["found_by"] = self.found_by
            new, inserted, twinned = store_detections(conn, records, matcher, self.cfg.windows.twin_ms)
            if new and self.late_before is not None:
                late_data.note_lags(conn, new, self.late_before)
            for query, minutes, counts in minute_counts:
                late_data.replace_minute_counts(conn, query, minutes, counts)
            new_follow: list[dict[str, Any]] = []
            if follow_records:
                known = store.known_event_keys(conn, (f["event_key"] for f in follow_records))
                new_follow = [f for f in follow_records if f["event_key"] not in known]
                aws_memory.apply(conn, new_follow)
                store.insert_follow_ons(conn, new_follow)
            recheck = set(twinned)
            if (inserted or twinned or new_follow) and self._needs_chains(new, new_follow, bool(twinned)):
                self.chains, older = recorrelate(
                    conn, self.chain_since, self.cfg.base_severity, at, self.cfg.windows
                )
                self.named_keys = None
                # A chain that grew can override an earlier creation's suppression: recheck its members.
                recheck.update(tuning_rows.chained_detection_ids(conn, self.chain_since))
                recheck.update(older)
            if recheck:
                _apply_suppression(conn, at, sorted(recheck))
            self.inserted += len(inserted) + len(twinned)
            self.watermark = upto if self.watermark is None else max(self.watermark, upto)
            self.details.update(heartbeat_ms=at, inserted=self.inserted)
            if self.state_job is None:
                return
            if final is None:
                save_refresh_state(conn, self.state_job, watermark_ms=self.watermark, details=self.details)
                return
            purged = store.purge_older_than(conn, final.pop("purge_before"))
            if answers_request is not None:
                store.mark_requests_handled(conn, "refresh", at, up_to_id=answers_request)
            self.details.update(purged=purged, **final)
            save_refresh_state(
                conn,
                JOB,
                watermark_ms=self.watermark,
                last_finished_ms=at,
                last_success_ms=at,
                last_status="ok",
                last_error=None,
                details=self.details,
            )


def _matcher_for_new_rows(conn: sqlite3.Connection, at_ms: int) -> Any:
    """Tuning's allowlist matcher for rows about to be inserted, when that package is installed."""
    try:
        from app.tuning import suppress
    except ImportError:
        return None
    return suppress.matcher_for_new_rows(conn, at_ms)


def _minute(t: int) -> int:
    return t - t % aqld.MINUTE_MS


def _changed_since(
    gw: Gateway,
    cfg: DetectionConfig,
    progress: _Progress,
    count_aql: Any,
    before: dict[str, int] | None,
    watermark: int,
    phase: str,
) -> tuple[int, dict[int, int] | None, int]:
    """Where one query's re-read of the overlap starts: the first minute of [watermark − overlap,
    watermark) whose row count differs from what the last cycle read (an event stored late), else the
    watermark. Returns (start, the counts QRadar gave now or None when not asked, rows fetched). Without
    counts from the last cycle the whole overlap is re-read, as the first time."""
    low = _minute(watermark - cfg.overlap_ms)
    if before is None:
        return low, None, 0
    now_counts, rows = _minute_counts(gw, cfg, progress, count_aql(low, watermark), phase)
    old = {int(k): int(v) for k, v in before.items() if int(k) >= low}
    changed = [m for m in set(now_counts) | set(old) if now_counts.get(m, 0) != old.get(m, 0)]
    return (min(changed) if changed else watermark), now_counts, rows


def _minute_counts(
    gw: Gateway, cfg: DetectionConfig, progress: _Progress, aql: str, phase: str
) -> tuple[dict[int, int], int]:
    """Rows per minute QRadar holds for one query's window (a `*_minute_counts` AQL); (counts, rows read)."""
    search_id, count = _open_search(gw, aql, cfg, progress, phase, (0, 5))
    try:
        rows = (
            [r for page in gw.iter_result_pages(search_id, max(count, 1), count) for r in page]
            if count
            else []
        )
    finally:
        _delete_search(gw, search_id)
    counts: dict[int, int] = {}
    for row in rows:
        minute, n = as_int(row.get("minute_ms")), as_int(row.get("n"))
        if minute is not None and n:
            counts[minute] = counts.get(minute, 0) + n
    return counts, len(rows)


def _tail_counts(
    stream: _Stream | None,
    checked: dict[int, int] | None,
    checked_from: int | None,
    watermark: int,
    overlap_ms: int,
) -> dict[str, int] | None:
    """Rows per minute over [watermark − overlap, watermark) for the next cycle's check, or None when this
    cycle did not see all of them. `checked`: the counts QRadar gave, before this cycle read anything, for
    [checked_from, stream.start)."""
    if stream is None:
        return None
    low = _minute(watermark - overlap_ms)
    covered_from = (
        stream.start if checked is None or checked_from is None else min(checked_from, stream.start)
    )
    if low < covered_from or stream.counted_from > low:
        return None
    counts: dict[int, int] = {}
    if checked is not None:
        # The overlap check's minutes that were not re-read (all of them when the start is the watermark).
        counts.update({m: n for m, n in checked.items() if m < stream.start})
    for minute, n in stream.minute_counts.items():
        if minute < watermark:
            counts[minute] = counts.get(minute, 0) + n
    return {str(m): n for m, n in sorted(counts.items()) if m >= low}


def refresh_once(
    conn: sqlite3.Connection,
    gw: Gateway,
    *,
    now: int | None = None,
    cfg: DetectionConfig | None = None,
    answers_request: int | None = None,
) -> CycleResult:
    """One refresh cycle (see the module docstring). Never raises for QRadar errors: they are recorded
    in refresh_state and returned as status 'error'. `answers_request`: the last "refresh now" request
    this cycle answers, marked handled in the cycle's last commit."""
    if conn.in_transaction:
        conn.commit()
    stop = now if now is not None else now_ms()
    state = get_refresh_state(conn, JOB)
    details: dict[str, Any] = {
        "pid": os.getpid(),
        "started_ms": stop,
        # Beating from the first commit: without it a status read before the first progress write would
        # take this cycle for one that died mid-way ("interrupted").
        "heartbeat_ms": now_ms(),
        "progress": 0,
        "phase": "starting",
        "failures": int((state.get("details") or {}).get("failures", 0)),
        # Unknown until this cycle ends (a crash or error: the next cycle re-reads the whole overlap);
        # a search cut by its LIMIT is resumed exactly where it stopped, also after a failure.
        "tail_counts": None,
        "resume_ms": (state.get("details") or {}).get("resume_ms"),
    }
    with transaction(conn):
        save_refresh_state(
            conn,
            JOB,
            last_started_ms=stop,
            last_status="running",
            runs=int(state.get("runs") or 0) + 1,
            details=details,
        )
        # Cancel requests made while nothing ran are void; a new one will stop this cycle.
        store.mark_requests_handled(conn, "cancel", stop)
    progress = _Progress(conn, details)
    result = CycleResult(status="ok", stop_ms=stop)
    searches: list[str] = []
    try:
        cfg = cfg or load_config(conn, gw)
        watermark = state.get("watermark_ms")
        before = state.get("details") or {}
        tails = before.get("tail_counts") or {}
        resume = before.get("resume_ms")
        counted_from = _minute(stop - cfg.overlap_ms)
        count_rows = 0
        checked: dict[str, tuple[dict[int, int] | None, int | None]] = {"detections": (None, None)}

        def stream_start(name: str, phase: str, count_aql: Any) -> int:
            """Where this cycle reads `name` from: the lookback the first time; after a search cut by its
            LIMIT, exactly where it stopped; else the overlap's first changed minute (or the watermark)."""
            nonlocal count_rows
            if watermark is None:
                begin = stop - cfg.lookback_ms
            elif resume is not None:
                begin = int(resume)
                # Counted before reading (an event stored meanwhile is then read or seen as a change next
                # time): the overlap's part before the resume point, which the cut cycles read.
                low = _minute(stop - cfg.overlap_ms)
                if low < begin:
                    counts, rows = _minute_counts(gw, cfg, progress, count_aql(low, begin), phase)
                    count_rows += rows
                    checked[name] = (counts, low)
            else:
                upto = min(watermark, stop)
                begin, counts, rows = _changed_since(
                    gw, cfg, progress, count_aql, tails.get(name), upto, phase
                )
                count_rows += rows
                checked[name] = (counts, _minute(upto - cfg.overlap_ms) if counts is not None else None)
            return max(0, min(begin, stop - 1))

        progress.update(force=True, phase="detections")
        row_limit = cfg.spec.row_limit
        start = stream_start(
            "detections", "detections", lambda a, b: aqld.detection_minute_counts(cfg.spec, a, b)
        )
        result.start_ms = start
        progress.update(force=True, window=[start, stop], phase="detections")
        stored_at = now_ms()

        search_id, count = _open_search(
            gw, aqld.detection_query(cfg.spec, start, stop), cfg, progress, "detections", (5, 45)
        )
        searches.append(search_id)
        streams = [
            _Stream(
                gw,
                search_id,
                count,
                start=start,
                stop=stop,
                row_limit=row_limit,
                page_size=cfg.page_size,
                build=lambda row: build_detection(row, cfg, stored_at),
                counted_from=min(counted_from, _minute(start)),
            )
        ]
        chain_reach = max(chain_lookback_ms(cfg.windows), cfg.windows.escalation_ms)
        if cfg.follow_on and (count or store.has_creations_since(conn, start - chain_reach)):
            follow_start = stream_start(
                "follow_on",
                "follow-on events",
                lambda a, b: aqld.follow_on_minute_counts(cfg.follow_on, a, b),
            )
            search_id, count = _open_search(
                gw,
                aqld.follow_on_query(cfg.follow_on, follow_start, stop, row_limit, cfg.spec.target_property),
                cfg,
                progress,
                "follow-on events",
                (45, 50),
            )
            searches.append(search_id)
            streams.append(
                _Stream(
                    gw,
                    search_id,
                    count,
                    start=follow_start,
                    stop=stop,
                    row_limit=row_limit,
                    page_size=cfg.page_size,
                    build=lambda row: build_follow_on(row, cfg, stored_at),
                    counted_from=min(counted_from, _minute(follow_start)),
                )
            )
        detections_stream = streams[0]
        follow_stream = streams[1] if len(streams) > 1 else None
        cycle = _Cycle(
            conn,
            cfg,
            details,
            start=min(s.start for s in streams),
            watermark=watermark,
            late_before=watermark,
        )
        _drain(streams, cycle, progress, start)
        while searches:  # read in full: free QRadar's result sets before the last commit
            _delete_search(gw, searches.pop())
        upto = min(s.limit() for s in streams)
        truncated = any(s.truncated for s in streams)
        result.rows_fetched = detections_stream.rows
        result.follow_on_rows = follow_stream.rows if follow_stream else 0
        at = now_ms()
        final_watermark = upto if watermark is None else max(watermark, upto)
        tail_counts = None
        if not truncated:
            tail_counts = {
                "detections": _tail_counts(
                    detections_stream, *checked["detections"], final_watermark, cfg.overlap_ms
                ),
                "follow_on": _tail_counts(
                    follow_stream, *checked.get("follow_on", (None, None)), final_watermark, cfg.overlap_ms
                ),
            }
        cycle.commit(
            detections_stream.take_before(upto),
            follow_stream.take_before(upto) if follow_stream else [],
            upto,
            minute_counts=_read_in_full(streams, upto, tail_counts),
            answers_request=answers_request,
            final={
                "tail_counts": tail_counts,
                "resume_ms": upto if truncated else None,
                "count_rows": count_rows,
                "purge_before": stop - cfg.retention_ms,
                "phase": "done",
                "progress": 100,
                "failures": 0,
                "rows_fetched": result.rows_fetched,
                "follow_on_rows": result.follow_on_rows,
                "suppression_applied": True,
                # A search cut by its LIMIT: the backlog continues at once.
                "next_refresh_ms": at if truncated else at + cfg.interval_s * 1000,
            },
        )
        result.inserted = cycle.inserted
        result.chains = cycle.chains or 0
        result.watermark_ms = cycle.watermark
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
    finally:
        for search_id in searches:
            _delete_search(gw, search_id)


def _drain(streams: list[_Stream], cycle: _Cycle, progress: _Progress, committed: int) -> None:
    """The page pipeline: the searches' pages in time order (read the one that lags), each commit holding
    what all of them have read; the records of the last, still buffered, are left for the caller's final
    commit. `streams[0]` is the detection search, `streams[1]` (optional) the follow-on one."""
    detections_stream = streams[0]
    follow_stream = streams[1] if len(streams) > 1 else None
    total = sum(s.record_count for s in streams) or 1
    while not all(s.done for s in streams):
        if progress.cancel_requested():
            raise SearchCancelled(detections_stream.search_id)
        lagging = min((s for s in streams if not s.done), key=lambda s: s.limit())
        lagging.read_page()
        upto = min(s.limit() for s in streams)
        if upto > committed and not all(s.done for s in streams):
            cycle.commit(
                detections_stream.take_before(upto),
                follow_stream.take_before(upto) if follow_stream else [],
                upto,
            )
            committed = upto
        read = sum(s.rows for s in streams)
        progress.update(phase="storing", progress=50 + 50 * read // total, rows_fetched=read)


STREAM_QUERIES = ("detections", "follow_on")  # the names of streams[0] and streams[1]


def _read_in_full(
    streams: list[_Stream], upto: int, tail_counts: Mapping[str, Mapping[str, int] | None] | None
) -> list[tuple[str, Iterable[int], Mapping[int, int]]]:
    """Per query, the minutes this cycle read in full before `upto` and their row counts, for the
    reconciliation's comparison (`app.detection.reconcile`): the minutes from the stream's first whole
    minute, and those of the overlap's tail counts (which add up a minute read in parts by two cycles)."""
    found = []
    for name, stream in zip(STREAM_QUERIES, streams, strict=False):
        first = -(-stream.start // aqld.MINUTE_MS) * aqld.MINUTE_MS
        last = _minute(upto)
        counts = {m: n for m, n in stream.minute_counts.items() if first <= m < last}
        tail = (tail_counts or {}).get(name)
        if tail is not None:
            tail_minutes = {int(m): int(n) for m, n in tail.items() if int(m) < last}
            if tail_minutes:
                first = min(first, min(tail_minutes))
            counts.update(tail_minutes)
        if first < last:
            found.append((name, range(first, last, aqld.MINUTE_MS), counts))
    return found


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
    ``jobs``, the status of every job of the refresher (`app.store.jobs.list_jobs`); and ``self_check``,
    what the last check of the configured names against the console found (`app.detection.selfcheck`)."""
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
        # Events stored late in QRadar: the largest receipt-to-first-seen lag, what only the reconciliation found.
        "late_data": late_data.summary(conn),
        "jobs": job_store.list_jobs(conn),
        "self_check": selfcheck.status(conn),
        "coalescing": coalescing.status(conn),
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
    result = refresh_once(ctx.conn, ctx.gateway, answers_request=last_request)
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
