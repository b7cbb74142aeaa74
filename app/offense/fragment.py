"""What the Offense Summary fragment shows for one offense, within a time budget.

Order of answers (the fragment must never hold up QRadar's Offense Summary page):

1. a recent cached answer for the offense (store) — no QRadar call at all;
2. the offense unchanged since the cached answer (one quick REST call) — the cached answer;
3. a search already running for the offense — poll it until the budget is spent;
4. otherwise ONE bounded Ariel search (`app.aql.offense`), polled until the budget is spent.

A search still running when the budget is spent is left running and recorded in the store; the fragment
answers "still searching" and the next request picks the results up (the search is cancelled once it is
older than the interactive search time budget). Every QRadar call, and the search wait, goes through
``get_gateway().within(budget)``, so each ends within what is left of the budget. Rows are matched to
stored detections for the chain badge and the link into the tab.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from app import settings
from app.api.errors import ApiError
from app.aql import offense as offense_aql
from app.aql.detection import PlatformFilter
from app.auth.access import VisibilityPending, check_offense_access, visible_log_sources
from app.detection.classify import account_kind, is_service_account, platform_for
from app.detection.eventset import creation_filters, platform_filters, target_property
from app.detection.extract import extract
from app.detection.records import event_key
from app.qradar import Gateway, QRadarError, QRadarUnavailable, get_gateway
from app.store import offense_cache, offense_links
from app.store.db import get_db

log = logging.getLogger(__name__)

# Cached answers nobody has looked at for this long are dropped when a new search starts.
CACHE_KEEP_MS = 30 * 86_400_000


@dataclass
class FragmentAnswer:
    offense_id: int
    state: str  # rows | none | searching | error
    rows: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    # Set when QRadar failed but an earlier answer is shown: what went wrong, and when that answer was found.
    notice: str = ""
    as_of_ms: int | None = None
    retry_at_ms: int | None = None  # an error is shown until then (the backoff), then QRadar is asked again


def qradar_problem(exc: QRadarError | QRadarUnavailable) -> str:
    """What went wrong, in words that name QRadar (the fragment sits on QRadar's own page, where a bare
    "HTTP 500" would read as the console's fault or the app's)."""
    if isinstance(exc, QRadarUnavailable):
        return f"QRadar is not reachable right now ({exc})"
    if exc.description in ("search error", "search canceled"):
        return search_problem("CANCELED" if exc.description == "search canceled" else "ERROR", exc.message)
    if exc.http_status == 401:
        return f"QRadar refused the app's authorized service token (HTTP 401: {exc.message})"
    return f"QRadar answered HTTP {exc.http_status}: {exc.message}"


def search_problem(status: str, messages: str) -> str:
    if status == "CANCELED":
        return "the Ariel search was cancelled in QRadar" + (f" ({messages})" if messages else "")
    return "the Ariel search failed in QRadar" + (f": {messages}" if messages else "")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _type_ids(filters: dict[str, PlatformFilter]) -> dict[str, tuple[int, ...]]:
    return {p: f.type_ids for p, f in filters.items()}


def rows_from_results(
    conn: Any, results: list[dict[str, Any]], filters: dict[str, PlatformFilter]
) -> list[dict[str, Any]]:
    """Fragment rows from Ariel result rows, with the stored detection each one belongs to (if any)."""
    type_ids = _type_ids(filters)
    prepared = []
    for r in results:
        devicetype = r.get("devicetype")
        platform = platform_for(
            devicetype if isinstance(devicetype, int) else None, str(r.get("log_source_type") or ""), type_ids
        ) or str(r.get("cloud_platform") or "")
        event_name = str(r.get("event_name") or "")
        try:
            starttime = int(r.get("starttime") or 0)
        except (TypeError, ValueError):
            starttime = 0
        ids = extract(
            platform,
            event_name,
            r.get("payload"),
            {
                "actor": r.get("actor"),
                "source_ip": r.get("source_ip"),
                "target_account": r.get("target_account"),
            },
        )
        kind = account_kind(platform, event_name)
        prepared.append(
            {
                "event_key": event_key(r),
                "event_time": starttime,
                "platform": platform,
                "event_name": event_name,
                "actor": ids.actor or "",
                "target": ids.target_account or ids.target_id or "",
                "is_service_account": bool(is_service_account(kind, ids)),
                "detection_id": None,
                "log_source": str(r.get("log_source") or ""),
            }
        )
    stored = offense_cache.detections_for_event_keys(conn, [p["event_key"] for p in prepared])
    seen_detections: set[int] = set()
    rows = []
    for p in prepared:
        det = stored.get(p.pop("event_key"))
        if det is not None:
            if det["id"] in seen_detections:
                continue  # the O365 twin of an Entra event already listed
            seen_detections.add(det["id"])
            p["detection_id"] = det["id"]
        rows.append(p)
    return rows


def with_current_detections(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the current chain/actor/target of their stored detection (chains grow after caching)."""
    current = offense_cache.detections_by_id(conn, [r["detection_id"] for r in rows if r.get("detection_id")])
    out = []
    for r in rows:
        row = dict(r)
        det = current.get(r.get("detection_id")) if r.get("detection_id") else None
        if det is None:
            row["detection_id"] = None
            row["chain_kind"] = None
        else:
            row.update(
                actor=det["actor"] or row["actor"],
                target=det["target_account"] or row["target"],
                event_name=det["event_name"] or row.get("event_name") or "",
                is_service_account=bool(det["is_service_account"]),
                chain_kind=det["chain_kind"],
                platform=det["cloud_platform"] or row["platform"],
            )
        out.append(row)
    return out


def _answer_rows(conn: Any, offense_id: int, rows: list[dict[str, Any]]) -> FragmentAnswer:
    if not rows:
        return FragmentAnswer(offense_id, "none")
    return FragmentAnswer(offense_id, "rows", with_current_detections(conn, rows))


def _poll(
    gw: Gateway, conn: Any, offense_id: int, search_id: str, filters: dict[str, PlatformFilter]
) -> FragmentAnswer | None:
    """Poll the search for what is left of the budget; the answer when it ended, None when it is still
    running (left running in QRadar for the next request)."""
    status = gw.poll(search_id, within_s=gw.remaining_s() or 0.0)
    if status.status == "COMPLETED":
        results = gw.fetch_results(search_id, 500, status.record_count)
        rows = rows_from_results(conn, results, filters)
        offense_cache.finish(conn, offense_id, rows, _now_ms())
        with conn:  # what the tab's offense filter and detail panel learn from this answer
            offense_links.record(
                conn,
                offense_id,
                (r["detection_id"] for r in rows if r["detection_id"]),
                source="fragment",
                now_ms=_now_ms(),
            )
        _quiet_delete(gw, search_id)
        return _answer_rows(conn, offense_id, rows)
    if status.status in ("ERROR", "CANCELED"):
        message = search_problem(status.status, status.messages)
        offense_cache.fail(conn, offense_id, message, _now_ms())
        return _failed(conn, offense_id, message, _now_ms())
    return None


def _quiet_delete(gw: Gateway, search_id: str) -> None:
    try:
        gw.delete_search(search_id)
    except (QRadarError, QRadarUnavailable) as exc:
        log.info("deleting fragment search %s failed: %s", search_id, exc)


def _still_searching(gw: Gateway, conn: Any, offense_id: int, cached: dict[str, Any]) -> FragmentAnswer:
    max_age_ms = settings.get("interactive_search_timeout_s", conn=conn) * 1000
    if _now_ms() - cached["started_at"] > max_age_ms:
        try:
            gw.cancel_search(cached["search_id"])
        except (QRadarError, QRadarUnavailable) as exc:
            log.info("cancelling fragment search %s failed: %s", cached["search_id"], exc)
        message = f"the Ariel search did not finish in QRadar within {max_age_ms // 1000} s"
        offense_cache.fail(conn, offense_id, message, _now_ms())
        return _failed(conn, offense_id, message, _now_ms())
    return FragmentAnswer(offense_id, "searching")


def _retry_after_ms(conn: Any) -> int:
    return settings.get("offense_retry_after_error_s", conn=conn) * 1000


def _failed(conn: Any, offense_id: int, message: str, failed_at_ms: int | None) -> FragmentAnswer:
    """The error answer; when it was recorded, with the time QRadar is asked again."""
    retry_at = failed_at_ms + _retry_after_ms(conn) if failed_at_ms is not None else None
    return FragmentAnswer(offense_id, "error", message=message, retry_at_ms=retry_at)


def _stale(conn: Any, offense_id: int, cached: dict[str, Any], problem: str) -> FragmentAnswer:
    """The cached rows, saying why they were not re-checked and when they were found."""
    answer = _answer_rows(conn, offense_id, cached["rows"])
    answer.notice = problem
    answer.as_of_ms = cached.get("finished_at") or cached.get("checked_at")
    return answer


def answer(offense_id: int) -> FragmentAnswer:
    """The fragment's answer for one offense (see module docstring)."""
    conn = get_db()
    budget_s = settings.get("offense_fragment_budget_s", conn=conn)
    recheck_ms = settings.get("offense_cache_recheck_s", conn=conn) * 1000
    cached = offense_cache.get(conn, offense_id)
    now = _now_ms()
    if cached and cached["status"] == "done" and now - cached["checked_at"] < recheck_ms:
        return _answer_rows(conn, offense_id, cached["rows"])
    if cached and cached["status"] == "error" and now - cached["checked_at"] < _retry_after_ms(conn):
        return _failed(
            conn, offense_id, cached["error"] or "the Ariel search failed in QRadar", cached["checked_at"]
        )

    # Every QRadar call below, and the search wait, ends within the budget: a hanging console must not
    # hold the Offense Summary page.
    gw = get_gateway().within(budget_s)
    filters = platform_filters(conn)
    try:
        if cached and cached["status"] == "searching" and cached["search_id"]:
            try:
                polled = _poll(gw, conn, offense_id, cached["search_id"], filters)
                return polled or _still_searching(gw, conn, offense_id, cached)
            except QRadarError as exc:
                if exc.http_status != 404:
                    raise
                # QRadar no longer knows the search (expired or deleted): search again below.
                offense_cache.forget(conn, offense_id)
                cached = None

        offense = gw.get_offense(offense_id, fields="id,start_time,last_updated_time")
        start_ms = int(offense.get("start_time") or 0)
        updated_ms = int(offense.get("last_updated_time") or start_ms)
        if cached and cached["status"] == "done" and cached["offense_updated"] == updated_ms:
            offense_cache.touch(conn, offense_id, _now_ms())
            return _answer_rows(conn, offense_id, cached["rows"])

        # The detection's configured event set, and its target property unless the console lacks it.
        aql = offense_aql.offense_events_query(
            offense_id,
            start_ms,
            updated_ms,
            creation_filters(conn),
            target_property=target_property(gw),
        )
        search_id = gw.start_search(aql)
        offense_cache.purge_older_than(conn, _now_ms() - CACHE_KEEP_MS)
        offense_cache.start(
            conn,
            offense_id,
            search_id=search_id,
            offense_start=start_ms,
            offense_updated=updated_ms,
            now_ms=_now_ms(),
        )
        polled = _poll(gw, conn, offense_id, search_id, filters)
        return polled or FragmentAnswer(offense_id, "searching")
    except QRadarError as exc:
        if exc.http_status == 404:
            return FragmentAnswer(offense_id, "error", message=f"QRadar has no offense {offense_id}")
        problem = qradar_problem(exc)
        if cached and cached["status"] == "done":
            return _stale(conn, offense_id, cached, problem)
        if cached:
            at = _now_ms()
            offense_cache.fail(conn, offense_id, problem, at)
            return _failed(conn, offense_id, problem, at)
        return _failed(conn, offense_id, problem, None)
    except QRadarUnavailable as exc:
        problem = qradar_problem(exc)
        if cached and cached["status"] == "done":
            return _stale(conn, offense_id, cached, problem)
        return _failed(conn, offense_id, problem, None)


def answer_for_user(offense_id: int) -> FragmentAnswer:
    """`answer` as the logged-in user may see it: only when QRadar shows them the offense (their own
    token; 404 otherwise), and only rows from log sources their security profile shows them (a cached row
    without its log source is not shown to a restricted user)."""
    # Asked within the fragment's budget too: a hanging console must not hold QRadar's page.
    bounded = get_gateway().within(settings.get("offense_fragment_budget_s"))
    try:
        check_offense_access(offense_id, bounded)
    except ApiError:
        return FragmentAnswer(offense_id, "error", message=f"QRadar has no offense {offense_id} you may see")
    except (QRadarError, QRadarUnavailable) as exc:
        return FragmentAnswer(
            offense_id, "error", message="QRadar could not say what you may see: " + qradar_problem(exc)
        )
    found = answer(offense_id)
    if not found.rows:
        return found
    # The rows' own log sources are probed too: they come from QRadar, not only from stored detections.
    extra = {str(r.get("log_source") or ""): int(r.get("event_time") or 0) for r in found.rows}
    try:
        allowed = visible_log_sources(bounded, wait_s=bounded.remaining_s() or 0.0, extra=extra)
    except VisibilityPending:
        return FragmentAnswer(offense_id, "searching")
    except (QRadarError, QRadarUnavailable) as exc:
        return FragmentAnswer(
            offense_id, "error", message="QRadar could not say what you may see: " + qradar_problem(exc)
        )
    if allowed is None:
        return found
    rows = [r for r in found.rows if r.get("log_source") in allowed]
    return dataclasses.replace(found, rows=rows, state=found.state if rows else "none")
