"""Ariel search manager: runs AQL searches in background threads, as QRadar's Ariel does.

A search moves WAIT -> EXECUTE -> SORTING -> COMPLETED (or CANCELED / ERROR). At most
``max_concurrent`` searches execute at once (this machine has two cores); the rest wait in WAIT, as
searches queue on a busy console. Finished searches are kept for ``retention_seconds`` (unless saved),
and an identical query from the same user within ``reuse_seconds`` returns the existing search, as the
API reference describes for ``POST /ariel/searches`` (the reuse window itself is UNCONFIRMED).
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devconsole.faults import FaultInjector

RUNNING = ("WAIT", "EXECUTE", "SORTING")
FINISHED = ("COMPLETED", "CANCELED", "ERROR")


def now_ms() -> int:
    return int(time.time() * 1000)


class SearchNotFound(LookupError):
    pass


class SearchIdInUse(ValueError):
    """``INTO <name>`` names a search id another search already has (API: 409/1004)."""


@dataclass
class Search:
    search_id: str
    query_string: str
    owner: str
    created_ms: int
    status: str = "WAIT"
    progress: int = 0
    record_count: int = 0
    processed_record_count: int = 0
    error_messages: list[dict] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[dict] | None = None
    save_results: bool = False
    started_ms: int | None = None
    finished_ms: int | None = None
    cancel_requested: bool = False
    deleted: bool = False
    database: str = "events"  # the key of the result list: "events" or "flows"
    snapshot_size: int | None = None  # PARAMETERS SNAPSHOTSIZE
    progress_details: list[int] = field(default_factory=list)  # PARAMETERS PROGRESSDETAILSRESOLUTION
    done: threading.Event = field(default_factory=threading.Event)

    def to_json(self) -> dict:
        elapsed = ((self.finished_ms or now_ms()) - self.started_ms) if self.started_ms else 0
        return {
            "search_id": self.search_id,
            "cursor_id": self.search_id,
            "status": self.status,
            "progress": self.progress,
            "progress_details": self.progress_details,
            "record_count": self.record_count,
            "processed_record_count": self.processed_record_count,
            "query_execution_time": elapsed,
            "query_string": self.query_string,
            "error_messages": self.error_messages,
            "desired_retention_time_msec": 86_400_000,
            "save_results": self.save_results,
            "data_file_count": 0,
            "data_total_size": 0,
            "index_file_count": 0,
            "index_total_size": 0,
            "compressed_data_file_count": 0,
            "compressed_data_total_size": 0,
            "subsearch_ids": [],
            "snapshot": (
                None
                if self.snapshot_size is None
                else {self.database: (self.rows or [])[: self.snapshot_size]}
            ),
        }


def _json_value(value: Any) -> Any:
    # Raw payload bytes cannot travel in JSON; QRadar's encoding of a bare `payload` column is
    # UNCONFIRMED, we send base64 (UTF8(payload) gives text, as queries should use).
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


class SearchManager:
    """Creates, runs, tracks and expires Ariel searches."""

    def __init__(
        self,
        engine_factory: Callable[[], Any],
        faults: FaultInjector | None = None,
        before_execute: Callable[[], None] | None = None,
        max_concurrent: int = 2,
        retention_seconds: float = 1800.0,
        reuse_seconds: float = 30.0,
        max_kept: int = 500,
    ) -> None:
        self._engine_factory = engine_factory
        self._faults = faults or FaultInjector()
        self._before_execute = before_execute
        self._slots = threading.Semaphore(max_concurrent)
        self._lock = threading.Lock()
        self._searches: dict[str, Search] = {}
        self.retention_seconds = retention_seconds
        self.reuse_seconds = reuse_seconds
        self.max_kept = max_kept

    # --- lifecycle -------------------------------------------------------------------------------
    def validate(self, aql: str) -> list:
        """AqlError list for ``aql`` ([] when valid); raises nothing for bad AQL."""
        return self._engine_factory().validate(aql, now_ms())

    def create(
        self, aql: str, owner: str, log_source_ids: frozenset[int] | None = None
    ) -> tuple[Search, bool]:
        """Prepare ``aql`` (raising AqlError when invalid) and start it; returns (search, reused).
        ``log_source_ids`` is the owner's security profile (None: every log source)."""
        self._expire()
        with self._lock:
            for search in self._searches.values():
                if (
                    search.query_string == aql
                    and search.owner == owner
                    and not search.deleted
                    and search.status not in ("CANCELED", "ERROR")
                    and now_ms() - search.created_ms <= self.reuse_seconds * 1000
                ):
                    return search, True
        engine = self._engine_factory()
        created = now_ms()
        if log_source_ids is None:
            prepared = engine.prepare(aql, created)  # AqlError propagates: 422/2000 to the caller
        else:
            prepared = engine.prepare(aql, created, log_source_ids=log_source_ids)
        parameters = getattr(prepared, "parameters", {}) or {}
        resolution = parameters.get("PROGRESSDETAILSRESOLUTION")
        search = Search(
            getattr(prepared, "into", None) or str(uuid.uuid4()),
            aql,
            owner,
            created,
            columns=list(getattr(prepared, "columns", [])),
            database=getattr(prepared, "database", "events"),
            snapshot_size=parameters.get("SNAPSHOTSIZE"),
            progress_details=[0] * resolution if resolution else [],
        )
        with self._lock:
            existing = self._searches.get(search.search_id)
            if existing is not None and not existing.deleted:
                raise SearchIdInUse(search.search_id)
            self._searches[search.search_id] = search
        thread = threading.Thread(
            target=self._run,
            args=(search, engine, prepared),
            name=f"ariel-{search.search_id[:8]}",
            daemon=True,
        )
        thread.start()
        return search, False

    def _run(self, search: Search, engine: Any, prepared: Any) -> None:
        with self._slots:
            if search.cancel_requested:
                self._finish(search, "CANCELED", [])
                return
            search.status = "EXECUTE"
            search.started_ms = now_ms()
            try:
                extra = self._faults.search_extra_seconds()
                if extra > 0 and self._slow_ramp(search, extra):
                    self._finish(search, "CANCELED", [])
                    return
                injected_error = self._faults.take_search_error()
                if injected_error:
                    search.error_messages = [self._message(injected_error, code="1020")]
                    self._finish(search, "ERROR", [])
                    return
                if self._before_execute:
                    self._before_execute()
                rows = engine.execute(
                    prepared,
                    on_progress=lambda *args: self._on_progress(search, args),
                    should_cancel=lambda: search.cancel_requested,
                )
            except Exception as exc:  # the engine's failure becomes the search's ERROR, never a crash
                if search.cancel_requested:
                    self._finish(search, "CANCELED", [])
                    return
                search.error_messages = [self._message(str(exc) or type(exc).__name__)]
                self._finish(search, "ERROR", [])
                return
            if search.cancel_requested:
                # "results so far are kept" on cancel
                self._finish(search, "CANCELED", rows or [])
                return
            if search.progress_details and hasattr(engine, "progress_details"):
                search.progress_details = engine.progress_details(prepared, len(search.progress_details))
            search.status = "SORTING"
            search.progress = max(search.progress, 99)
            self._finish(search, "COMPLETED", rows or [])

    def _slow_ramp(self, search: Search, seconds: float) -> bool:
        """Injected slowness: spend ``seconds`` in EXECUTE with rising progress, or less when the fault is
        cleared meanwhile (a slowed search must not hold a search slot after its test). True if canceled."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if search.cancel_requested:
                return True
            if self._faults.search_extra_seconds() <= 0:
                break
            search.progress = max(search.progress, int(90 * (1 - left / seconds)))
            time.sleep(min(0.25, left))
        return search.cancel_requested

    @staticmethod
    def _on_progress(search: Search, args: tuple) -> None:
        if args and isinstance(args[0], (int, float)):
            search.progress = max(search.progress, min(98, int(args[0])))

    @staticmethod
    def _message(text: str, code: str = "2000") -> dict:
        return {"code": code, "contexts": [], "message": text, "severity": "ERROR"}

    def _finish(self, search: Search, status: str, rows: list[dict]) -> None:
        search.rows = [{k: _json_value(v) for k, v in row.items()} for row in rows]
        search.record_count = len(search.rows)
        search.processed_record_count = len(search.rows)
        search.progress = 100
        search.finished_ms = now_ms()
        search.status = status
        search.done.set()

    # --- access ----------------------------------------------------------------------------------
    def get(self, search_id: str) -> Search:
        with self._lock:
            search = self._searches.get(search_id)
        if search is None or search.deleted:
            raise SearchNotFound(search_id)
        return search

    def list_ids(self, owner: str | None = None) -> list[str]:
        self._expire()
        with self._lock:
            return [
                s.search_id
                for s in self._searches.values()
                if not s.deleted and (owner is None or s.owner == owner)
            ]

    def wait(self, search_id: str, seconds: float) -> Search:
        search = self.get(search_id)
        search.done.wait(max(0.0, seconds))
        return search

    def cancel(self, search_id: str) -> Search:
        search = self.get(search_id)
        if search.status in RUNNING:
            search.cancel_requested = True
        return search

    def save(self, search_id: str) -> Search:
        search = self.get(search_id)
        search.save_results = True
        return search

    def delete(self, search_id: str) -> Search:
        search = self.get(search_id)
        search.cancel_requested = True
        search.deleted = True
        with self._lock:
            self._searches.pop(search_id, None)
        return search

    def _expire(self) -> None:
        cutoff = now_ms() - self.retention_seconds * 1000
        with self._lock:
            finished = [s for s in self._searches.values() if s.status in FINISHED and not s.save_results]
            for search in finished:
                if (search.finished_ms or 0) < cutoff:
                    self._searches.pop(search.search_id, None)
            overflow = len(self._searches) - self.max_kept
            if overflow > 0:
                for search in sorted(finished, key=lambda s: s.finished_ms or 0)[:overflow]:
                    self._searches.pop(search.search_id, None)
