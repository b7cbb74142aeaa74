"""The refresher's offense sync: which QRadar offenses contain which detections, learnt without anyone
opening an Offense Summary widget (see docs/ARCHITECTURE.md, "Offense ↔ detection links").

The refresher's ``offense_links`` job (`OFFENSE_LINKS_JOB`), run after each detection cycle, doing work at
most every ``offense_link_interval_s``:

1. list open offenses updated in [watermark, detection watermark] through the gateway
   (``GET /api/siem/offenses`` with ``filter``, ``sort=+last_updated_time``, ``fields`` and ``Range`` pages);
   the upper bound is the detection refresher's watermark, so an offense is searched only once the events
   that updated it have had their chance to become detections;
2. skip offenses already searched at their current ``last_updated_time`` (``offense_sync``) and those last
   updated before the oldest stored detection (nothing to link), take at most ``offense_link_max_per_cycle``;
3. ONE Ariel search for the batch (`app.aql.offense.offense_links_query`: INOFFENSE per offense and the
   detection's event set, so QRadar does the filtering) mapping events to offense ids;
4. one transaction: links for the events that are stored detections (by event key, twins included), the
   offenses' sync state, and the watermark (the ``last_updated_time`` of the last offense handled).

Bounded: at most one list page walk of ``MAX_PAGES`` x ``PAGE_SIZE`` offenses and one search of at most
``ROW_LIMIT`` rows per run; a backlog continues after the next detection cycle, and so does a search
cut at ``ROW_LIMIT`` (from its last row's time, for the offenses it may not have read whole). QRadar
errors are recorded in ``refresh_state['offense_links']`` (and the job's status) and retried next time;
they never stop detection.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from typing import Any

from app import settings
from app.aql import offense as offense_aql
from app.detection.eventset import creation_filters
from app.detection.records import event_key
from app.jobs import Job, JobContext, JobFailed
from app.qradar import Gateway
from app.store import offense_cache, offense_links
from app.store.db import transaction
from app.store.refresh_state import get_refresh_state, save_refresh_state

log = logging.getLogger(__name__)

JOB = "offense_links"
DETECTION_JOB = "detection"
PAGE_SIZE = 50
MAX_PAGES = 20
ROW_LIMIT = 5_000
FIELDS = "id,start_time,last_updated_time"


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def changed_offense_pages(gw: Gateway, since_ms: int, until_ms: int) -> Iterator[list[tuple[int, int, int]]]:
    """Pages of (id, start_time, last_updated_time) of open offenses updated in [since, until], oldest
    update first (at most MAX_PAGES requests; the caller stops when it has enough).

    Paged by key, not by offset: each request starts at the last update time the previous page reached
    (skipping the offenses already listed at it). An offense updated while the pages are walked moves to
    the end of the list; with offsets that shifted every later offense one place earlier, and the one that
    slid onto an already-read page was never listed (the watermark passed it). An offense listed again
    with a newer update is yielded again, with that version."""
    seen: set[tuple[int, int]] = set()
    ties = 0  # offenses listed so far at exactly since_ms (the offset into them)
    for _page_no in range(MAX_PAGES):
        query = f"status=OPEN and last_updated_time>={int(since_ms)} and last_updated_time<={int(until_ms)}"
        page = gw.list_offenses(
            filter=query, sort="+last_updated_time", start=ties, limit=PAGE_SIZE, fields=FIELDS
        )
        found = []
        for item in page:
            oid, start, updated = (_int(item.get(k)) for k in ("id", "start_time", "last_updated_time"))
            if oid is None or not 0 < oid <= offense_aql.MAX_OFFENSE_ID or start is None or start < 0:
                log.warning("offense sync: skipping an offense QRadar listed without a usable id/start_time")
                continue
            version = (oid, updated if updated is not None and updated >= start else start)
            if version not in seen:
                seen.add(version)
                found.append((oid, start, version[1]))
        yield found
        if len(page) < PAGE_SIZE:
            return
        # The next page starts at the newest update QRadar listed here (as QRadar filters on it).
        listed = [u for u in (_int(item.get("last_updated_time")) for item in page) if u is not None]
        newest = max(listed, default=since_ms)
        at_newest = sum(1 for u in listed if u == newest)
        if newest > since_ms:
            since_ms, ties = newest, at_newest
        else:  # the whole page was offenses updated at since_ms: walk on through them
            ties += len(page)


def _due(conn: sqlite3.Connection, now_ms: int) -> bool:
    if not settings.get("offense_link_interval_s", conn=conn):
        return False
    due = (get_refresh_state(conn, JOB).get("details") or {}).get("next_ms")
    return due is None or now_ms >= int(due)


def _record_failure(conn: sqlite3.Connection, now_ms: int, exc: Exception) -> None:
    if conn.in_transaction:
        conn.rollback()
    log.warning("offense link sync failed; retrying next time: %s", exc)
    state = get_refresh_state(conn, JOB)
    interval_s = settings.get("offense_link_interval_s", conn=conn)
    with transaction(conn):
        save_refresh_state(
            conn,
            JOB,
            last_finished_ms=now_ms,
            last_status="error",
            last_error=str(exc)[:500],
            runs=int(state.get("runs") or 0) + 1,
            details={**(state.get("details") or {}), "next_ms": now_ms + interval_s * 1000},
        )


def sync_if_due(conn: sqlite3.Connection, gw: Gateway, now_ms: int) -> dict[str, Any] | None:
    """One run when due (or when a backlog is left); never raises (a failure is recorded, retried later)."""
    if not _due(conn, now_ms):
        return None
    try:
        return sync_once(conn, gw, now_ms)
    except Exception as exc:  # a QRadar fault or a bug here must not take the refresher down
        _record_failure(conn, now_ms, exc)
        return None


def run_job(ctx: JobContext) -> str:
    """The refresher's job: `sync_once` when due; a failure is recorded here and reported to the runner."""
    now = ctx.now_ms()
    if not _due(ctx.conn, now):
        return "not due"
    try:
        report = sync_once(ctx.conn, ctx.gateway, now)
    except Exception as exc:
        _record_failure(ctx.conn, now, exc)
        raise JobFailed(f"offense link sync: {exc}") from exc
    return (
        f"{report['listed']} listed, {len(report['searched'])} searched, {report['links_added']} new links"
        + (", backlog left" if report["backlog"] else "")
    )


# After each detection cycle: the upper bound of the offenses it lists is the detection watermark, and a
# backlog continues after the next detection cycle.
OFFENSE_LINKS_JOB = Job(
    name=JOB,
    description="Offense links: which open QRadar offenses contain stored detections.",
    run=run_job,
    interval_s=lambda conn: settings.get("offense_link_interval_s", conn=conn),
    after=DETECTION_JOB,
)


def sync_once(conn: sqlite3.Connection, gw: Gateway, now_ms: int) -> dict[str, Any]:
    """One run (module docstring); returns what it did. QRadar errors raise (`sync_if_due` records them)."""
    if conn.in_transaction:
        conn.commit()
    state = get_refresh_state(conn, JOB)
    interval_ms = settings.get("offense_link_interval_s", conn=conn) * 1000
    cap = settings.get("offense_link_max_per_cycle", conn=conn)
    ceiling = get_refresh_state(conn, DETECTION_JOB).get("watermark_ms")
    oldest = offense_links.oldest_detection_time(conn)
    report: dict[str, Any] = {
        "listed": 0,
        "searched": [],
        "links_added": 0,
        "rows": 0,
        "truncated": False,
        "backlog": False,
    }
    watermark = state.get("watermark_ms")
    if ceiling is None or oldest is None:
        # Nothing detected yet: nothing can be linked, and the watermark stays where it is.
        _save(conn, state, watermark, now_ms, now_ms + (interval_ms or 60_000), report)
        return report
    if watermark is None:
        watermark = ceiling - settings.get("lookback_hours", conn=conn) * 3_600_000
    batch: dict[int, tuple[int, int]] = {}
    nothing_to_link: dict[int, int] = {}
    new_watermark = watermark
    # A search cut at its row limit last time: continue it from its last row before listing anything new.
    resume = (state.get("details") or {}).get("resume") or {}
    not_before = oldest
    if resume:
        batch = {int(oid): (int(start), int(updated)) for oid, (_from, start, updated) in resume.items()}
        not_before = max(oldest, min(int(f) for f, _s, _u in resume.values()))
    for page in [] if resume else changed_offense_pages(gw, watermark, ceiling):
        done = offense_links.synced_versions(conn, (oid for oid, _s, _u in page))
        for oid, start, updated in page:
            if oid in batch:
                # Listed again: QRadar updated it during this walk. Search it at its newest version.
                batch[oid] = (start, max(updated, batch[oid][1]))
            elif done.get(oid, -1) >= updated:
                pass  # searched at this version already
            elif updated < oldest:
                nothing_to_link[oid] = updated  # it ended before the oldest detection: nothing to link
            elif len(batch) >= cap:
                report["backlog"] = True
                break
            else:
                batch[oid] = (start, updated)
            report["listed"] += 1
            # Sorted by last update: everything up to here is handled by this run.
            new_watermark = max(new_watermark, updated)
        if report["backlog"]:
            break

    links: dict[int, set[int]] = {oid: set() for oid in batch}
    unfinished: dict[str, list[int]] = {}
    if batch:
        aql = offense_aql.offense_links_query(
            batch, creation_filters(conn), not_before_ms=not_before, row_limit=ROW_LIMIT
        )
        rows = gw.run_search(aql, settings.get("search_timeout_s", conn=conn), page_size=1000)
        report["rows"] = len(rows)
        report["truncated"] = len(rows) >= ROW_LIMIT
        if report["truncated"]:
            unfinished = _unfinished(batch, rows, not_before)
            report["backlog"] = report["backlog"] or bool(unfinished)
        keyed = [(event_key(r), str(r.get("offense_ids") or "").split()) for r in rows]
        stored = offense_cache.detections_for_event_keys(conn, (k for k, _ids in keyed))
        for key, ids in keyed:
            detection = stored.get(key)
            if detection is None:
                continue
            for text in ids:
                oid = _int(text)
                if oid in links:
                    links[oid].add(int(detection["id"]))
        report["searched"] = sorted(batch)

    at = now_ms
    with transaction(conn):
        for oid, detection_ids in links.items():
            report["links_added"] += offense_links.record(conn, oid, detection_ids, source="sync", now_ms=at)
        # An offense whose search was cut is marked searched once its continuation is whole.
        versions = {
            **nothing_to_link,
            **{oid: updated for oid, (_s, updated) in batch.items() if str(oid) not in unfinished},
        }
        offense_links.mark_synced(
            conn, versions, {oid: len(links[oid]) for oid in versions if oid in links}, at
        )
        offense_links.purge_sync_older_than(conn, at - settings.get("retention_days", conn=conn) * 86_400_000)
        # A backlog continues after the next detection cycle rather than a whole interval later.
        next_ms = at if report["backlog"] else at + (interval_ms or 60_000)
        _save(conn, state, new_watermark, at, next_ms, report, resume=unfinished)
    log.info(
        "offense sync: %d listed, %d searched, %d rows, %d new links",
        report["listed"],
        len(report["searched"]),
        report["rows"],
        report["links_added"],
    )
    return report


def _unfinished(
    batch: dict[int, tuple[int, int]], rows: list[dict[str, Any]], not_before: int
) -> dict[str, list[int]]:
    """After a search cut at its row limit: the offenses whose events may run past its last row, each as
    [continue from, start_time, last_updated_time] (the rows come oldest first, so everything before the
    last row's time was read). {} when the cut rows all share one time (the search could not move past
    it by continuing: given up, logged)."""
    last = max((t for t in (_int(r.get("starttime")) for r in rows) if t is not None), default=not_before)
    if last <= not_before:
        log.warning(
            "offense sync: more than %d matching events at one time in offenses %s; their links are "
            "incomplete",
            ROW_LIMIT,
            sorted(batch),
        )
        return {}
    unfinished = {
        str(oid): [last, start, updated]
        for oid, (start, updated) in batch.items()
        if offense_aql.minute_window(start, updated)[1] > last
    }
    if unfinished:
        log.info(
            "offense sync: the search hit its %d-row limit at %d; continuing it next run for offenses %s",
            ROW_LIMIT,
            last,
            sorted(int(oid) for oid in unfinished),
        )
    return unfinished


def _save(
    conn: sqlite3.Connection,
    state: dict[str, Any],
    watermark: int | None,
    at: int,
    next_ms: int,
    report: dict[str, Any],
    *,
    resume: dict[str, list[int]] | None = None,
) -> None:
    details = {
        "next_ms": next_ms,
        "listed": report["listed"],
        "searched": len(report["searched"]),
        "rows": report["rows"],
        "links_added": report["links_added"],
        "truncated": report["truncated"],
        "backlog": report["backlog"],
        "resume": resume or {},
    }
    changes = {
        "watermark_ms": watermark,
        "last_started_ms": at,
        "last_finished_ms": at,
        "last_success_ms": at,
        "last_status": "ok",
        "last_error": None,
        "runs": int(state.get("runs") or 0) + 1,
        "details": details,
    }
    with transaction(conn):  # inside `sync_once`'s transaction this joins it
        save_refresh_state(conn, JOB, **changes)
