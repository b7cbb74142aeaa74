"""What each user may see of QRadar's data — asked of QRadar with the user's own token, never the service's.

* Log Activity: event payloads and hunting need one of the ``log_activity_capabilities`` (or ADMIN).
* Offenses: offense data (the Offense Summary fragment, the playbook for an offense, offense links) needs
  the user's own token to read ``GET /api/siem/offenses/{id}``; QRadar answers 404 for an offense outside
  the user's security profile.
* Security profile: QRadar filters every Ariel search by the searching user's security profile, so one
  search run with the user's token over the log sources the stored detections came from
  (`app.aql.visibility`) names the log sources that user may see; detections from any other log source are
  not shown to them. Admins (ADMIN) see every log source without the search.

Limits (also in docs/ARCHITECTURE.md): the probe matches log sources by name, as stored with each
detection, over the stored detections' time span — a log source renamed since, or whose events QRadar no
longer holds in the user's view, is not shown to a restricted user (it fails closed); a user whose Ariel
searches QRadar refuses (no Log Activity) sees no detections. Answers are cached per token for
``visibility_cache_s`` seconds, so a profile change reaches the app within that time.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import current_app, request

from app import settings
from app.api.errors import ApiError
from app.aql.visibility import visible_log_sources_query
from app.auth import User, current_user
from app.qradar import Gateway, QRadarError, QRadarUnavailable, get_gateway
from app.store import detections as detection_store
from app.store import user_visibility as visibility_store
from app.store.db import get_db

# Log source names in one probe: one AQL IN list (a console with more cloud log sources than this shows a
# restricted user only the first ones, by name).
MAX_PROBED_LOG_SOURCES = 1000
# While QRadar cannot answer, a user's last known answer is used for this long after it expired (as the
# fragment shows its last rows): an outage does not hide everything, and nothing is shown beyond it.
STALE_KEEP_S = 3600.0


class _VisibilityCache:
    """Per-user answers (log sources, offense access) in the store (shared by every web worker), each
    fresh for ``visibility_cache_s``; the last answer is kept for `STALE_KEEP_S` more, used only while
    QRadar cannot answer (`stale`). A running probe search is remembered per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], tuple[float, Any]] = {}

    @staticmethod
    def _user(token: str) -> str:
        # Per store too: what a user may see is learned over that store's detections.
        store = str(current_app.config.get("DATABASE", ""))
        return hashlib.sha256(f"{store}\x1f{token}".encode()).hexdigest()

    @staticmethod
    def _now() -> int:
        return int(time.time() * 1000)

    def get(self, token: str, what: str) -> tuple[bool, Any]:
        if what == "log_sources_search":
            with self._lock:
                entry = self._running.get((self._user(token), what))
            return (True, entry[1]) if entry and entry[0] > time.monotonic() else (False, None)
        found, value = visibility_store.fresh(get_db(), self._user(token), what, self._now())
        return found, _decode(what, value)

    def stale(self, token: str, what: str) -> tuple[bool, Any]:
        """The last answer, fresh or not (within `STALE_KEEP_S` after it expired)."""
        found, value = visibility_store.last_known(
            get_db(), self._user(token), what, self._now() - int(STALE_KEEP_S * 1000)
        )
        return found, _decode(what, value)

    def put(self, token: str, what: str, value: Any) -> None:
        ttl = settings.get("visibility_cache_s")
        if ttl <= 0:
            return
        if what == "log_sources_search":
            with self._lock:
                now = time.monotonic()
                self._running = {k: v for k, v in self._running.items() if v[0] > now}
                self._running[(self._user(token), what)] = (now + ttl, value)
            return
        visibility_store.put(
            get_db(),
            self._user(token),
            what,
            _encode(value),
            self._now(),
            ttl * 1000,
            int(STALE_KEEP_S * 1000),
        )

    def forget(self, token: str, what: str) -> None:
        with self._lock:
            self._running.pop((self._user(token), what), None)


def _encode(value: Any) -> Any:
    if isinstance(value, tuple):  # (probed names, visible names)
        return [sorted(value[0]), sorted(value[1])]
    return value


def _decode(what: str, value: Any) -> Any:
    if what == "log_sources" and value is not None:
        return frozenset(value[0]), frozenset(value[1])
    return value


visibility_cache = _VisibilityCache()


def _token() -> str:
    return request.cookies.get("SEC", "")


def user_gateway(gateway: Gateway | None = None) -> Gateway:
    """``gateway`` (default: the app's) acting as the logged-in user (their token: QRadar applies their
    capabilities and security profile); a `Gateway.within` view keeps its deadline."""
    return (gateway or get_gateway()).as_user(_token())


def has_log_activity(user: User) -> bool:
    return user.is_admin or bool(user.capabilities & set(settings.get("log_activity_capabilities")))


def require_log_activity(what: str) -> None:
    """403 unless the logged-in user has QRadar's Log Activity capability."""
    user = current_user()
    if not has_log_activity(user):
        names = ", ".join(settings.get("log_activity_capabilities"))
        raise ApiError(
            403,
            "forbidden",
            f"{what} needs QRadar's Log Activity capability ({names}), which {user.name} does not have",
        )


def check_offense_access(offense_id: int, gateway: Gateway | None = None) -> None:
    """404 unless QRadar lets the logged-in user read offense ``offense_id`` with their own token
    (asked through ``gateway``, e.g. a time-bounded view, when given)."""
    user = current_user()
    what = f"offense:{int(offense_id)}"
    found, allowed = visibility_cache.get(_token(), what)
    if not found:
        try:
            user_gateway(gateway).get_offense(int(offense_id), fields="id")
            allowed = True
        except (QRadarError, QRadarUnavailable) as exc:
            if isinstance(exc, QRadarError) and exc.http_status in (403, 404, 422):
                allowed = False
            else:
                known, allowed = visibility_cache.stale(_token(), what)
                if not known:
                    raise
        visibility_cache.put(_token(), what, allowed)
    if not allowed:
        raise ApiError(
            404, "not_found", f"QRadar does not show offense {offense_id} to {user.name}", "offense"
        )


class VisibilityPending(ApiError):
    """The search learning which log sources the user may see is still running in QRadar (a 503 asking
    to try again; the fragment answers "still searching")."""

    def __init__(self, search_id: str) -> None:
        super().__init__(
            503,
            "visibility_pending",
            "QRadar is still finding which log sources your security profile shows you; try again shortly",
        )
        self.search_id = search_id


def visible_log_sources(
    gateway: Gateway | None = None,
    wait_s: float | None = None,
    extra: Mapping[str, int] | None = None,
) -> frozenset[str] | None:
    """Names of the log sources whose detections the logged-in user may see; None: every one (ADMIN).

    Probed: the log sources of the stored detections, plus ``extra`` (name -> an event time, e.g. the
    Offense Summary rows QRadar returned). The probe search runs as the user and is waited for up to
    ``wait_s`` (default: the interactive search budget) through ``gateway`` (e.g. a time-bounded view); a
    search still running then is left running and picked up by the next call (`VisibilityPending`). While
    QRadar cannot answer, the user's last known answer is used (`STALE_KEEP_S`)."""
    user = current_user()
    if user.is_admin:
        return None
    token = _token()
    spans = {name: (first, last) for name, first, last in detection_store.log_source_spans(get_db())}
    for name, at_ms in (extra or {}).items():
        if name and at_ms > 0:
            first, last = spans.get(name, (at_ms, at_ms))
            spans[name] = (min(first, at_ms), max(last, at_ms))
    wanted = frozenset(sorted(spans)[:MAX_PROBED_LOG_SOURCES])
    found, cached = visibility_cache.get(token, "log_sources")
    if found and wanted <= cached[0]:
        return cached[1]
    if not wanted:
        return frozenset()
    try:
        probed, visible = _probe(user_gateway(gateway), token, wanted, spans, wait_s)
    except (QRadarError, QRadarUnavailable):
        known, last = visibility_cache.stale(token, "log_sources")
        if not known:
            raise
        return last[1]
    visibility_cache.put(token, "log_sources", (probed, visible))
    return visible


def _probe(
    gw: Gateway,
    token: str,
    wanted: frozenset[str],
    spans: Mapping[str, tuple[int, int]],
    wait_s: float | None,
) -> tuple[frozenset[str], frozenset[str]]:
    """(names probed, names visible): one Ariel search as the user, or the one already running for them."""
    running, pending = visibility_cache.get(token, "log_sources_search")
    try:
        if running and wanted <= pending[1]:
            search_id, probed = pending
        else:
            probed = wanted
            aql = visible_log_sources_query(
                sorted(probed), min(spans[n][0] for n in probed), max(spans[n][1] for n in probed) + 1
            )
            search_id = gw.start_search(aql)
            visibility_cache.put(token, "log_sources_search", (search_id, probed))
        budget = settings.get("interactive_search_timeout_s") if wait_s is None else wait_s
        status = gw.poll(search_id, within_s=budget)
        if not status.done:
            raise VisibilityPending(search_id)
        visibility_cache.forget(token, "log_sources_search")
        if status.status != "COMPLETED":
            raise QRadarUnavailable(
                "the search for the log sources you may see ended "
                f"{status.status} in QRadar" + (f": {status.messages}" if status.messages else "")
            )
        rows = gw.fetch_results(search_id, record_count=status.record_count)
        _quiet_delete(gw, search_id)
    except QRadarError as exc:
        if exc.http_status != 403:
            if exc.http_status == 404:  # QRadar no longer knows the search: the next call starts another
                visibility_cache.forget(token, "log_sources_search")
            raise
        rows = []  # QRadar refuses this user's searches: nothing shows which log sources they may see
    return probed, frozenset(str(r.get("log_source")) for r in rows if r.get("log_source"))


def _quiet_delete(gw: Gateway, search_id: str) -> None:
    with contextlib.suppress(QRadarError, QRadarUnavailable):  # QRadar expires finished searches itself
        gw.delete_search(search_id)


def require_visible_detection(detection_id: int) -> None:
    """404 (as for a detection that does not exist) when the user may not see its log source."""
    allowed = visible_log_sources()
    if allowed is None:
        return
    source = detection_store.log_source_of(get_db(), [detection_id]).get(detection_id)
    if source is None or source not in allowed:
        raise ApiError(404, "not_found", f"no detection with id {detection_id}")


def visible_offenses(offense_ids: list[int]) -> list[int]:
    """The offenses among ``offense_ids`` QRadar shows the logged-in user (order kept)."""
    out = []
    for oid in offense_ids:
        try:
            check_offense_access(oid)
        except ApiError:
            continue
        out.append(oid)
    return out
