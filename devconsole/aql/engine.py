"""The dev console's AQL engine: parse (lark), check, compile to SQLite SQL, execute over the event store.

    engine = AqlEngine(store, default_window_ms=5 * 60_000)
    errors = engine.validate(text)                  # [] when valid
    query = engine.prepare(text, now_ms)            # raises AqlError
    rows = engine.execute(query, on_progress=cb, should_cancel=fn)

Choices made where QRadar's behaviour is not documented (all UNCONFIRMED, see docs in this package):

* No time clause: the search covers ``default_window_ms`` before ``now`` (5 minutes per the AQL guide;
  API 26.0 says 60 s -- pass 60_000 to get that).
* ``START``/``STOP`` are read at minute granularity (``minute_granularity=True``): START is rounded down to
  its minute and STOP is exclusive at the start of its minute, so ``START '2014-04-25 15:51' STOP
  '2014-04-25 17:00'`` covers 15:51:00-16:59:59.999. Without STOP the search ends at ``now``.
  :attr:`PreparedQuery.start_ms` and :attr:`PreparedQuery.stop_ms` are both inclusive.
* Times without a zone and DATEFORMAT output use ``tz`` (None = this machine's local zone).
* Result values are JSON-ready: payload bytes become text (UTF-8, invalid bytes replaced by U+FFFD),
  conditions become true/false, non-finite numbers become null.
* Unaliased columns are named as in :func:`devconsole.aql.compiler.column_name` (``qidname_qid``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devconsole.aql.compiler import Compiler
from devconsole.aql.errors import AqlCancelled, AqlError
from devconsole.aql.functions import Runtime
from devconsole.aql.parser import parse

PROGRESS_EVERY_OPS = 2000  # SQLite VM instructions between progress/cancel checks
MAX_VALUES = 30_000  # bound parameters per query (SQLite allows 32,766)


@dataclass
class PreparedQuery:
    """A checked, compiled query, ready for :meth:`AqlEngine.execute`."""

    text: str
    now_ms: int
    columns: list[str]
    start_ms: int
    stop_ms: int
    is_aggregate: bool
    database: str  # "events" or "flows" (the key QRadar uses for the result list)
    sql: str
    params: list[Any] = field(repr=False)
    kinds: list[str] = field(repr=False)
    windows: list[tuple[int, int]] = field(repr=False)
    into: str | None = None  # INTO <name>: the search id the results are stored under
    parameters: dict[str, Any] = field(default_factory=dict)  # PARAMETERS, upper-case names


class AqlEngine:
    def __init__(
        self,
        store: Any,
        default_window_ms: int = 5 * 60_000,
        *,
        tz: dt.tzinfo | None = None,
        minute_granularity: bool = True,
    ) -> None:
        """``store`` is a :class:`devconsole.store.EventStore` (anything with ``connect(readonly=...)``)."""
        self.store = store
        self.default_window_ms = default_window_ms
        self.tz = tz
        self.minute_granularity = minute_granularity

    # -- checking ---------------------------------------------------------------------------------
    def _compile(
        self, text: str, now_ms: int | None, log_source_ids: frozenset[int] | None = None
    ) -> tuple[PreparedQuery | None, list[AqlError]]:
        now = int(time.time() * 1000) if now_ms is None else int(now_ms)
        try:
            tree = parse(text)
        except AqlError as exc:
            return None, [exc]
        conn = self.store.connect(readonly=True)
        try:
            rows = conn.execute("SELECT name, value_type FROM custom_properties").fetchall()
            # a name with a double quote cannot be written as a SQLite JSON path: treat it as unknown
            properties = {name.lower(): (name, value_type) for name, value_type in rows if '"' not in name}
            compiler = Compiler(
                now, self.default_window_ms, properties, self.tz, self.minute_granularity, log_source_ids
            )
            try:
                compiled = compiler.compile_query(tree)
            except RecursionError:
                return None, [AqlError("The query is nested too deeply", 1, 1)]
            if compiler.errors:
                return None, compiler.errors
            if len(compiler.params) > MAX_VALUES:
                return None, [AqlError(f"The query has more than {MAX_VALUES} literal values", 1, 1)]
            # Let SQLite compile the statement now, so limits it enforces (expression depth, terms)
            # are reported by validate/prepare rather than by a failed search.
            Runtime(conn, now, self.tz).register()
            try:
                conn.execute(f"EXPLAIN {compiled.sql}", compiler.params).fetchone()
            except (sqlite3.Error, OverflowError) as exc:
                return None, [AqlError(f"The query is too complex for the dev console: {exc}", 1, 1)]
        finally:
            conn.close()
        prepared = PreparedQuery(
            text=text,
            now_ms=now,
            columns=compiled.columns,
            start_ms=compiled.start_ms,
            stop_ms=compiled.stop_ms,
            is_aggregate=compiled.is_aggregate,
            database=compiled.database,
            sql=compiled.sql,
            params=compiler.params,
            kinds=compiled.kinds,
            windows=compiler.windows,
            into=compiled.into,
            parameters=compiled.parameters,
        )
        return prepared, []

    def validate(self, text: str, now_ms: int | None = None) -> list[AqlError]:
        """Every problem found in ``text`` ([] when it would run). Never raises for bad AQL."""
        return self._compile(text, now_ms)[1]

    def prepare(
        self, text: str, now_ms: int | None = None, log_source_ids: frozenset[int] | None = None
    ) -> PreparedQuery:
        """The compiled query; raises the first :class:`AqlError` (all of them in its ``errors``).
        ``log_source_ids`` limits the events it reads to those log sources (a security profile)."""
        prepared, errors = self._compile(text, now_ms, log_source_ids)
        if errors:
            first = errors[0]
            first.errors = errors  # type: ignore[attr-defined]
            raise first
        assert prepared is not None
        return prepared

    def progress_details(self, query: PreparedQuery, buckets: int) -> list[int]:
        """Records in each of ``buckets`` equal slices of the search's time range (oldest first), as the
        search object's ``progress_details`` with PARAMETERS PROGRESSDETAILSRESOLUTION=<buckets>."""
        counts = [0] * buckets
        if query.database != "events" or buckets < 1:
            return counts
        span = query.stop_ms - query.start_ms + 1
        conn = self.store.connect(readonly=True)
        try:
            rows = conn.execute(
                "SELECT (starttime - ?) * ? / ?, COUNT(*) FROM events WHERE starttime BETWEEN ? AND ?"
                " AND (searchable_at IS NULL OR searchable_at <= ?) GROUP BY 1",
                (query.start_ms, buckets, span, query.start_ms, query.stop_ms, query.now_ms),
            ).fetchall()
        finally:
            conn.close()
        for bucket, count in rows:
            counts[min(buckets - 1, max(0, int(bucket)))] += count
        return counts

    # -- running ----------------------------------------------------------------------------------
    def _estimate_ops(self, conn: sqlite3.Connection, query: PreparedQuery) -> int:
        """SQLite VM instructions the search will roughly take: rows in its time ranges (counted on the
        starttime index) times the length of the compiled program. Only used to report progress."""
        rows = 0
        for start, stop in query.windows:
            rows += conn.execute(
                "SELECT COUNT(*) FROM events WHERE starttime BETWEEN ? AND ?", (start, stop)
            ).fetchone()[0]
        program = len(conn.execute(f"EXPLAIN {query.sql}", query.params).fetchall())
        return max(1, rows * max(4, program // 3))

    def execute(
        self,
        query: PreparedQuery,
        on_progress: Callable[[int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> list[dict]:
        """Run a prepared query; rows are dicts keyed by :attr:`PreparedQuery.columns`.

        ``on_progress(percent)`` is called with rising values while SQLite works and with 100 at the end;
        ``should_cancel()`` is polled as often, and True aborts with :class:`AqlCancelled`.
        """
        conn = self.store.connect(readonly=True)
        try:
            Runtime(conn, query.now_ms, self.tz).register()
            if should_cancel is not None and should_cancel():
                raise AqlCancelled()
            expected = self._estimate_ops(conn, query) if on_progress is not None else 1
            state = {"ops": 0, "reported": -1, "cancelled": False}

            def progress() -> int:
                state["ops"] += PROGRESS_EVERY_OPS
                if should_cancel is not None and should_cancel():
                    state["cancelled"] = True
                    return 1  # SQLite stops the statement: "interrupted"
                if on_progress is not None:
                    percent = min(99, state["ops"] * 100 // expected)
                    if percent > state["reported"]:
                        state["reported"] = percent
                        on_progress(percent)
                return 0

            conn.set_progress_handler(progress, PROGRESS_EVERY_OPS)
            try:
                raw = conn.execute(query.sql, query.params).fetchall()
            except sqlite3.Error as exc:
                if state["cancelled"]:
                    raise AqlCancelled() from None
                raise AqlError(f"The search failed: {exc}", 1, 1) from None
            except (OverflowError, ValueError, MemoryError) as exc:
                raise AqlError(f"The search failed: {exc}", 1, 1) from None
            finally:
                conn.set_progress_handler(None, 0)
            rows = [_to_json_row(query.columns, query.kinds, row) for row in raw]
            if on_progress is not None:
                on_progress(100)
            return rows
        finally:
            conn.close()


def _json_value(value: Any, kind: str) -> Any:
    if kind == "list" and isinstance(value, str):
        return sorted(json.loads(value), key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if kind == "bool" and value is not None:
        return bool(value)
    return value


def _to_json_row(columns: list[str], kinds: list[str], row: tuple) -> dict:
    return {name: _json_value(value, kind) for name, kind, value in zip(columns, kinds, row, strict=True)}
