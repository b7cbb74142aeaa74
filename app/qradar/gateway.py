"""The QRadar gateway: the only code in the app that talks to QRadar.

Usage::

    gw = Gateway.from_env()                       # SEC_ADMIN_TOKEN, QRADAR_CONSOLE_FQDN, REQUESTS_CA_BUNDLE
    rows = gw.run_search(aql, timeout_s=120)      # start + wait + all pages + delete
    offense = gw.within(2).get_offense(7)         # this call ends within 2 s, answered or not
    user = gw.current_user(user_token)            # always with the user's own token, over HTTP

Ariel lifecycle: `start_search` (AQL in the POST form body, never the URL: long AQL fails with 414 there;
returns the search id at once), `search_status` / `poll` (progress, ``Prefer: wait=N``; a search may be left
running and polled later, from another request or process), `wait_for_search` (until final; cancels on
timeout), `fetch_results` / `iter_result_pages` (inclusive ``Range: items=x-y``), `cancel_search`
(``status=CANCELED``, the API's spelling; qpylib's ``CANCELLED`` is not used), `delete_search`.

Time bounds: `within(seconds)` is a view of the gateway whose every call — REST calls, search waits, result
pages — ends by its deadline; a caller with a budget (the Offense Summary fragment) makes all its calls
through one. `columns(database)` is an Ariel database's column list, cached for the gateway's lifetime up to
``columns_ttl_s``.

Errors: `QRadarError` carrying QRadar's message, `QRadarUnavailable` for connection failures and timeouts.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from .errors import QRadarError, QRadarUnavailable, SearchCancelled, SearchTimeout
from .transport import HttpTransport, Transport, transport_from_env

log = logging.getLogger(__name__)

RUNNING_STATES = frozenset({"WAIT", "EXECUTE", "SORTING"})
FINAL_STATES = frozenset({"COMPLETED", "CANCELED", "ERROR"})
DEFAULT_USER_LOOKUP_PATH = "api/config/access/users?current_user=true"  # UNCONFIRMED on a real console
USER_ROLE_PATH = "api/config/access/user_roles?current_user_role=true"
# A call made when a `within` budget is (nearly) spent still gets this long: results of a search that
# completed at the deadline can still be read.
MIN_CALL_TIMEOUT_S = 0.5
# Time kept between a ``Prefer: wait=N`` and the deadline, for QRadar's 206 answer to arrive.
WAIT_MARGIN_S = 0.5
COLUMNS_TTL_S = 300.0
COLUMNS_RETRY_S = 60.0


def _seg(value: Any) -> str:
    """One URL path segment; hostile names/values cannot add segments or query strings."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class SearchStatus:
    search_id: str
    status: str
    progress: int = 0
    record_count: int = 0
    error_messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def messages(self) -> str:
        """QRadar's error messages for the search, joined ("" when none)."""
        return "; ".join(str(m.get("message", "")) for m in self.error_messages if m.get("message"))

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SearchStatus:
        return cls(
            search_id=str(body.get("search_id", "")),
            status=str(body.get("status", "")),
            progress=int(body.get("progress") or 0),
            record_count=int(body.get("record_count") or 0),
            error_messages=list(body.get("error_messages") or []),
        )


@dataclass(frozen=True)
class QRadarUser:
    """Who the logged-in user is, according to QRadar (their own token)."""

    name: str
    role: str
    capabilities: frozenset[str]
    user_id: int | None = None

    def has(self, capability: str) -> bool:
        return "ADMIN" in self.capabilities or capability in self.capabilities


class _UserTokenTransport:
    """An `HttpTransport` that sends one user's token on every call."""

    def __init__(self, transport: HttpTransport, user_token: str) -> None:
        self._transport = transport
        self._user_token = user_token
        self.read_timeout_s = transport.read_timeout_s  # what a deadline may shorten (Gateway._call_timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._transport.request(method, path, sec_token=self._user_token, **kwargs)


class Gateway:
    """Typed calls to the QRadar REST API over a transport (qpylib inside QRadar, HTTP outside)."""

    def __init__(
        self,
        transport: Transport,
        *,
        user_transport: HttpTransport | None = None,
        api_version: str = "26.0",
        user_lookup_path: str = DEFAULT_USER_LOOKUP_PATH,
        poll_wait_s: int = 5,
        poll_interval_s: float = 0.5,
        columns_ttl_s: float = COLUMNS_TTL_S,
        columns_retry_s: float = COLUMNS_RETRY_S,
    ) -> None:
        self.transport = transport
        self._user_transport = user_transport
        self.api_version = api_version
        self.user_lookup_path = user_lookup_path
        self.poll_wait_s = poll_wait_s
        self.poll_interval_s = poll_interval_s
        self.columns_ttl_s = columns_ttl_s
        self.columns_retry_s = columns_retry_s
        self.deadline: float | None = None  # time.monotonic() by which every call ends (see `within`)
        # Shared with every `within` view: database name -> (fetched at, column names).
        self._columns: dict[str, tuple[float, frozenset[str] | None]] = {}
        self._columns_lock = threading.Lock()

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, api_version: str = "26.0", **kwargs: Any
    ) -> Gateway:
        """qpylib inside QRadar; `HttpTransport` from ``env`` (default ``os.environ``) outside."""
        transport = transport_from_env(env, api_version=api_version)
        return cls(transport, api_version=api_version, **kwargs)

    # -- time bounds --------------------------------------------------------------------------------

    def within(self, seconds: float) -> Gateway:
        """This gateway with a deadline ``seconds`` from now (or its own, if sooner): each call's timeout
        is what is left of it, at least `MIN_CALL_TIMEOUT_S`, and search waits end by it. Transport, user
        transport and column cache are shared with this gateway."""
        view = copy.copy(self)
        end = time.monotonic() + max(0.0, float(seconds))
        view.deadline = end if self.deadline is None else min(end, self.deadline)
        return view

    def remaining_s(self) -> float | None:
        """Seconds left before the deadline (0 when past it); None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def _call_timeout(self, requested: float | None) -> float | None:
        left = self.remaining_s()
        if left is None:
            return requested
        # one decimal: "did not answer within 2 s" in a timeout message, not 1.9997
        bounded = max(MIN_CALL_TIMEOUT_S, round(left, 1))
        if requested is None:  # a deadline shortens the transport's own read timeout, never extends it
            requested = getattr(self.transport, "read_timeout_s", None)
        return bounded if requested is None else min(requested, bounded)

    def _fit_wait(self, wait_s: int | None) -> int | None:
        """A ``Prefer: wait`` that ends before the deadline (None when no whole second fits)."""
        left = self.remaining_s()
        if wait_s and left is not None:
            wait_s = min(wait_s, int(left - WAIT_MARGIN_S))
        return wait_s if wait_s and wait_s > 0 else None

    # -- plumbing -----------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200,),
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """One REST call; returns the parsed JSON body (None when empty); QRadar errors raise.
        ``timeout`` bounds this call (seconds; default: the transport's), as does `within`'s deadline."""
        resp = self.transport.request(
            method, path, version=self.api_version, timeout=self._call_timeout(timeout), **kwargs
        )
        return self._parse(resp, expect)

    @staticmethod
    def _parse(resp: requests.Response, expect: tuple[int, ...]) -> Any:
        try:
            body = resp.json() if resp.content else None
        except ValueError:
            body = None
        if resp.status_code not in expect:
            raise QRadarError.from_response(resp.status_code, body, resp.text if body is None else "")
        return body

    def user_transport(self) -> HttpTransport:
        """HTTP transport for calls made as the logged-in user (never carries SEC_ADMIN_TOKEN)."""
        if self._user_transport is None:
            base = self.transport if isinstance(self.transport, HttpTransport) else None
            if base is not None:
                self._user_transport = HttpTransport(
                    base.base_url[len("https://") :].rstrip("/"),
                    admin_token=None,
                    ca_bundle=base.verify if isinstance(base.verify, str) else None,
                    api_version=self.api_version,
                    proxy=(base.proxies or {}).get("https"),
                )
            else:  # inside QRadar: same console, same CA bundle, the user's token only
                env = dict(os.environ)
                env.pop("SEC_ADMIN_TOKEN", None)
                self._user_transport = HttpTransport.from_env(env, api_version=self.api_version)
        return self._user_transport

    def as_user(self, user_token: str) -> Gateway:
        """This gateway acting as the logged-in user: every call carries ``user_token`` (never the service
        token), so QRadar applies that user's capabilities and security profile. Deadline and column cache
        are shared with this gateway."""
        if not user_token:
            raise QRadarError(401, None, "no QRadar session token (SEC cookie) in the request")
        view = copy.copy(self)
        view.transport = _UserTokenTransport(self.user_transport(), user_token)
        return view

    # -- Ariel --------------------------------------------------------------------------------------

    def start_search(self, aql: str) -> str:
        """Start an Ariel search; the AQL travels in the form body, never the URL."""
        body = self.call("POST", "api/ariel/searches", data={"query_expression": aql}, expect=(200, 201))
        return str(body["search_id"])

    def search_status(self, search_id: str, wait_s: int | None = None) -> SearchStatus:
        """The search's state; with ``wait_s``, QRadar holds the answer up to that long for COMPLETED."""
        wait_s = self._fit_wait(wait_s)
        headers = {"Prefer": f"wait={int(wait_s)}"} if wait_s else None
        timeout = (wait_s + 30) if wait_s else None
        body = self.call(
            "GET",
            f"api/ariel/searches/{_seg(search_id)}",
            headers=headers,
            expect=(200, 206),
            timeout=timeout,
        )
        return SearchStatus.from_json(body)

    def _statuses(self, search_id: str, end: float) -> Iterator[SearchStatus]:
        """The search's status, polled until it is final or ``end`` (monotonic) has passed."""
        if self.deadline is not None:
            end = min(end, self.deadline)
        while True:
            remaining = end - time.monotonic()
            wait_s = self._fit_wait(max(0, min(self.poll_wait_s, int(remaining))))
            status = self.search_status(search_id, wait_s=wait_s)
            yield status
            if status.done or time.monotonic() >= end:
                return
            if not wait_s:
                time.sleep(min(self.poll_interval_s, max(0.0, end - time.monotonic())))

    def poll(
        self,
        search_id: str,
        within_s: float = 0.0,
        on_progress: Callable[[SearchStatus], None] | None = None,
    ) -> SearchStatus:
        """The search's status after waiting up to ``within_s`` (and the deadline) for it to end: final
        (COMPLETED, ERROR, CANCELED — read `SearchStatus.messages`) or still running. Never cancels: a
        running search is left for a later `poll`, `cancel_search` or `delete_search`."""
        statuses = self._statuses(search_id, time.monotonic() + within_s)
        status = next(statuses)  # at least one status call, even with nothing left to wait
        while True:
            if on_progress is not None:
                on_progress(status)
            following = next(statuses, None)
            if following is None:
                return status
            status = following

    def wait_for_search(
        self,
        search_id: str,
        timeout_s: float,
        on_progress: Callable[[SearchStatus], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> SearchStatus:
        """Poll until the search is final. Raises SearchTimeout / SearchCancelled (search cancelled),
        QRadarError when the search ends in ERROR (QRadar's message) or was cancelled elsewhere."""
        status = None
        for status in self._statuses(search_id, time.monotonic() + timeout_s):
            if on_progress is not None:
                on_progress(status)
            if status.status == "COMPLETED":
                return status
            if status.status in ("ERROR", "CANCELED"):
                raise self._search_failed(status)
            if should_cancel is not None and should_cancel():
                self._quiet_cancel(search_id)
                raise SearchCancelled(search_id)
        self._quiet_cancel(search_id)
        raise SearchTimeout(search_id, timeout_s, status.progress if status is not None else 0)

    @staticmethod
    def _search_failed(status: SearchStatus) -> QRadarError:
        first = status.error_messages[0] if status.error_messages else {}
        message = status.messages
        code = first.get("code")
        try:
            code = int(code) if code is not None else None
        except (TypeError, ValueError):
            code = None
        if status.status == "CANCELED":
            return QRadarError(
                409, code, message or f"Ariel search {status.search_id} was cancelled", "search canceled"
            )
        return QRadarError(422, code, message or f"Ariel search {status.search_id} failed", "search error")

    def results(self, search_id: str, start: int, end: int) -> list[dict[str, Any]]:
        """Rows ``start``..``end`` inclusive (zero-based) of a completed search."""
        if start < 0 or end < start:
            raise ValueError(f"bad result range {start}-{end}")
        body = self.call(
            "GET", f"api/ariel/searches/{_seg(search_id)}/results", headers={"Range": f"items={start}-{end}"}
        )
        if isinstance(body, dict):
            for key in ("events", "flows"):
                if key in body:
                    return list(body[key])
            return next((list(v) for v in body.values() if isinstance(v, list)), [])
        return []

    def iter_result_pages(
        self, search_id: str, page_size: int = 1000, record_count: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the results page by page using inclusive ``Range`` headers."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if record_count is None:
            record_count = self.search_status(search_id).record_count
        start = 0
        while start < record_count:
            end = min(start + page_size, record_count) - 1
            page = self.results(search_id, start, end)
            if not page:
                return
            yield page
            start += len(page)

    def fetch_results(
        self, search_id: str, page_size: int = 1000, record_count: int | None = None
    ) -> list[dict[str, Any]]:
        """Every row of a completed search, read page by page."""
        rows: list[dict[str, Any]] = []
        for page in self.iter_result_pages(search_id, page_size, record_count):
            rows.extend(page)
        return rows

    def cancel_search(self, search_id: str) -> SearchStatus:
        """Ask QRadar to stop the search (asynchronous: `poll` sees CANCELED once it has stopped)."""
        body = self.call("POST", f"api/ariel/searches/{_seg(search_id)}", params={"status": "CANCELED"})
        return SearchStatus.from_json(body or {"search_id": search_id, "status": "CANCELED"})

    def delete_search(self, search_id: str) -> None:
        self.call("DELETE", f"api/ariel/searches/{_seg(search_id)}", expect=(200, 202, 204))

    def _quiet_cancel(self, search_id: str) -> None:
        try:
            self.cancel_search(search_id)
        except (QRadarError, QRadarUnavailable) as exc:
            log.warning("cancelling Ariel search %s failed: %s", search_id, exc)

    def run_search(
        self,
        aql: str,
        timeout_s: float,
        *,
        page_size: int = 1000,
        on_progress: Callable[[SearchStatus], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Start, wait, read every page, then delete the search (also on failure)."""
        search_id = self.start_search(aql)
        try:
            status = self.wait_for_search(search_id, timeout_s, on_progress, should_cancel)
            return self.fetch_results(search_id, page_size, status.record_count)
        finally:
            try:
                self.delete_search(search_id)
            except (QRadarError, QRadarUnavailable) as exc:
                log.warning("deleting Ariel search %s failed: %s", search_id, exc)

    def validate_aql(self, aql: str) -> list[dict[str, Any]]:
        """QRadar's AQL validator; [] when valid, else its error messages."""
        body = self.call("POST", "api/ariel/validators/aql", data={"query_expression": aql})
        return list((body or {}).get("error_messages") or [])

    def columns(self, database: str = "events") -> frozenset[str] | None:
        """Names of the columns an Ariel database offers in SELECT, custom properties included (an unknown
        column fails the whole query); None when QRadar could not be asked (the failure is logged).
        Answers are kept for ``columns_ttl_s``, failures for ``columns_retry_s`` (a failing console is not
        asked on every page view)."""
        now = time.monotonic()
        with self._columns_lock:
            cached = self._columns.get(database)
        if cached is not None:
            fetched_at, names = cached
            if now - fetched_at < (self.columns_ttl_s if names is not None else self.columns_retry_s):
                return names
        try:
            body = self.call("GET", f"api/ariel/databases/{_seg(database)}")
        except (QRadarError, QRadarUnavailable) as exc:
            log.warning("the columns of Ariel database %s could not be read: %s", database, exc)
            body = None
        listed = body.get("columns") if isinstance(body, dict) else None
        names = None
        if isinstance(listed, list):
            names = frozenset(str(c["name"]) for c in listed if isinstance(c, dict) and c.get("name"))
        with self._columns_lock:
            self._columns[database] = (now, names)
        return names

    # -- reference sets -----------------------------------------------------------------------------

    def create_reference_set(
        self,
        name: str,
        element_type: str = "ALN",
        *,
        time_to_live: str | None = None,
        timeout_type: str | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "element_type": element_type}
        if time_to_live:
            params["time_to_live"] = time_to_live
        if timeout_type:
            params["timeout_type"] = timeout_type
        return self.call("POST", "api/reference_data/sets", params=params, expect=(200, 201))

    def ensure_reference_set(self, name: str, element_type: str = "ALN") -> dict[str, Any]:
        """Create the set unless it exists (409/1004 means it does)."""
        try:
            return self.create_reference_set(name, element_type)
        except QRadarError as exc:
            if exc.http_status == 409:
                return self.get_reference_set(name, limit=0)
            raise

    def get_reference_set(self, name: str, *, limit: int | None = None, offset: int = 0) -> dict[str, Any]:
        """The set with its ``data`` (all values, or ``limit`` from ``offset``)."""
        headers = None
        if limit is not None:
            headers = {"Range": f"items={offset}-{offset + max(limit, 1) - 1}"}
        return self.call("GET", f"api/reference_data/sets/{_seg(name)}", headers=headers)

    def add_to_reference_set(self, name: str, value: str, source: str | None = None) -> dict[str, Any]:
        params = {"value": value}
        if source:
            params["source"] = source
        return self.call("POST", f"api/reference_data/sets/{_seg(name)}", params=params)

    def delete_reference_set_value(self, name: str, value: str) -> dict[str, Any]:
        return self.call("DELETE", f"api/reference_data/sets/{_seg(name)}/{_seg(value)}")

    def bulk_load_reference_set(self, name: str, values: list[str]) -> dict[str, Any]:
        return self.call("POST", f"api/reference_data/sets/bulk_load/{_seg(name)}", json_body=list(values))

    def delete_reference_set(self, name: str, *, purge_only: bool = False) -> Any:
        return self.call(
            "DELETE",
            f"api/reference_data/sets/{_seg(name)}",
            params={"purge_only": "true" if purge_only else "false"},
            expect=(200, 202),
        )

    # -- reference maps -----------------------------------------------------------------------------

    def create_reference_map(
        self,
        name: str,
        element_type: str = "ALN",
        *,
        key_label: str | None = None,
        value_label: str | None = None,
        time_to_live: str | None = None,
        timeout_type: str | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "element_type": element_type}
        for key, value in (
            ("key_label", key_label),
            ("value_label", value_label),
            ("time_to_live", time_to_live),
            ("timeout_type", timeout_type),
        ):
            if value:
                params[key] = value
        return self.call("POST", "api/reference_data/maps", params=params, expect=(200, 201))

    def ensure_reference_map(self, name: str, element_type: str = "ALN", **labels: str) -> dict[str, Any]:
        try:
            return self.create_reference_map(name, element_type, **labels)
        except QRadarError as exc:
            if exc.http_status == 409:
                return self.get_reference_map(name)
            raise

    def get_reference_map(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"api/reference_data/maps/{_seg(name)}")

    def add_to_reference_map(
        self, name: str, key: str, value: str, source: str | None = None
    ) -> dict[str, Any]:
        params = {"key": key, "value": value}
        if source:
            params["source"] = source
        return self.call("POST", f"api/reference_data/maps/{_seg(name)}", params=params)

    def delete_reference_map_value(self, name: str, key: str, value: str) -> dict[str, Any]:
        return self.call(
            "DELETE", f"api/reference_data/maps/{_seg(name)}/{_seg(key)}", params={"value": value}
        )

    def bulk_load_reference_map(self, name: str, mapping: Mapping[str, str]) -> dict[str, Any]:
        return self.call("POST", f"api/reference_data/maps/bulk_load/{_seg(name)}", json_body=dict(mapping))

    def delete_reference_map(self, name: str, *, purge_only: bool = False) -> Any:
        return self.call(
            "DELETE",
            f"api/reference_data/maps/{_seg(name)}",
            params={"purge_only": "true" if purge_only else "false"},
            expect=(200, 202),
        )

    # -- offenses, log source types -----------------------------------------------------------------

    def get_offense(self, offense_id: int, fields: str | None = None) -> dict[str, Any]:
        params = {"fields": fields} if fields else None
        return self.call("GET", f"api/siem/offenses/{int(offense_id)}", params=params)

    def list_offenses(
        self,
        *,
        filter: str | None = None,
        sort: str | None = None,
        start: int = 0,
        limit: int = 50,
        fields: str | None = None,
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("filter", filter), ("sort", sort), ("fields", fields)) if v}
        headers = {"Range": f"items={start}-{start + max(limit, 1) - 1}"}
        return list(self.call("GET", "api/siem/offenses", params=params or None, headers=headers) or [])

    def log_source_types(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """``[{"id", "name"}]`` of log source types; filtered client-side by exact name when given
        (whether QRadar's ``filter`` grammar accepts names with quotes is not relied upon)."""
        body = self.call(
            "GET",
            "api/config/event_sources/log_source_management/log_source_types",
            params={"fields": "id,name"},
        )
        types = [{"id": int(t["id"]), "name": str(t["name"])} for t in body or []]
        if names is not None:
            wanted = set(names)
            types = [t for t in types if t["name"] in wanted]
        return types

    def qid_records(
        self, log_source_type_id: int | None = None, *, page_size: int = 500, max_records: int = 200_000
    ) -> list[dict[str, Any]]:
        """``[{"qid", "name", "log_source_type_id"}]``: QRadar's QID records, of one log source type
        (``filter=log_source_type_id=N``, the ``=`` of QRadar's filter grammar) or all of them, read in
        ``Range`` pages until a short page or `max_records`. Names are matched by the caller (whether the
        filter grammar takes ``ILIKE`` is not relied upon)."""
        params = {"fields": "qid,name,log_source_type_id"}
        if log_source_type_id is not None:
            params["filter"] = f"log_source_type_id={int(log_source_type_id)}"
        records: list[dict[str, Any]] = []
        while len(records) < max_records:
            start = len(records)
            headers = {"Range": f"items={start}-{start + page_size - 1}"}
            page = self.call("GET", "api/data_classification/qid_records", params=params, headers=headers)
            page = [r for r in page or [] if isinstance(r, dict)]
            records += [
                {
                    "qid": r.get("qid"),
                    "name": str(r.get("name") or ""),
                    "log_source_type_id": r.get("log_source_type_id"),
                }
                for r in page
            ]
            if len(page) < page_size:
                break
        return records

    def log_sources(self, fields: str = "id,name,type_id,coalesce_events") -> list[dict[str, Any]]:
        """The console's log sources with ``fields`` (API 26.0 log source objects; a console that does not
        expose a field leaves it out of each object)."""
        body = self.call(
            "GET", "api/config/event_sources/log_source_management/log_sources", params={"fields": fields}
        )
        return [s for s in body or [] if isinstance(s, dict)]

    # -- the logged-in user -------------------------------------------------------------------------

    def current_user(self, user_token: str) -> QRadarUser:
        """Who owns ``user_token`` and what their role may do — asked with that token only."""
        if not user_token:
            raise QRadarError(401, None, "no QRadar session token (SEC cookie) in the request")
        transport = self.user_transport()

        def get(path: str) -> Any:
            resp = transport.request(
                "GET", path, version=self.api_version, sec_token=user_token, timeout=self._call_timeout(None)
            )
            return self._parse(resp, (200,))

        roles = get(USER_ROLE_PATH) or []
        role = roles[0] if isinstance(roles, list) and roles else {}
        capabilities = frozenset(str(c.get("name")) for c in role.get("capabilities") or [] if c.get("name"))
        # Who the user is must come from QRadar: a failed or empty lookup is an error, never a guess,
        # because tuning's four-eyes rule and the audit log rest on the user's ID.
        users = get(self.user_lookup_path) or []
        found = users[0] if isinstance(users, list) and users and isinstance(users[0], dict) else {}
        user_id = found.get("id")
        if isinstance(user_id, bool) or not isinstance(user_id, int):
            raise QRadarError(
                502, None, f"GET {self.user_lookup_path} did not name the logged-in user (no numeric user id)"
            )
        name = str(found.get("username") or "")
        return QRadarUser(
            name=name,
            role=str(role.get("name") or ""),
            capabilities=capabilities,
            user_id=user_id,
        )
