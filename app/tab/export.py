"""``GET /api/detections.csv``: every detection matching the table's filters, as CSV.

* Same filters and sort as ``GET /api/detections`` (parsed by `parse_filters`), every matching row (paged
  out of the store inside one read transaction, so rows do not shift between pages), streamed.
* The visible columns (``columns=``, default the table's), times in the viewer's zone (``tz=``) with the
  offset written out, and the time range in the file name.
* Log values are attacker-controlled: every cell goes through app.api.cells (a leading ``'`` on a cell a
  spreadsheet would run as a formula).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Response, current_app, request, stream_with_context

from app.api.cells import neutralise
from app.api.errors import ApiError
from app.api.openapi import errors, query
from app.auth import require
from app.detection import api as detection_api
from app.store import connect
from app.store import detections as detection_store
from app.store.detections import DetectionFilter

bp = Blueprint("tab_export", __name__)

PAGE_SIZE = 1000
DEFAULT_WINDOW_MS = 86_400_000
# Beyond the detection list's filters; its limit/offset/sort are accepted (sort is honoured, paging is not:
# the file has every matching row).
EXPORT_PARAMS = frozenset({"columns", "tz"})


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _chain(d: Mapping[str, Any]) -> str:
    if d.get("chain_id") is None:
        return ""
    return f"{d.get('chain_kind') or 'chain'} #{d['chain_id']}"


# Column key -> (header, value). The first ten are the table's visible columns, in its order.
COLUMNS: dict[str, tuple[str, Callable[[Mapping[str, Any]], str]]] = {
    "event_time": ("Time", lambda d: ""),  # formatted per request (time zone), see `_row`
    "event_category": ("Category", lambda d: _text(d.get("event_category") or d.get("event_name"))),
    "log_source": ("Log source", lambda d: _text(d.get("log_source"))),
    "actor": ("Actor", lambda d: _text(d.get("actor"))),
    "target_account": ("Target account", lambda d: _text(d.get("target_account"))),
    "source_ip": ("Source IP", lambda d: _text(d.get("source_ip"))),
    "cloud_platform": ("Cloud platform", lambda d: _text(d.get("cloud_platform"))),
    "is_service_account": ("Service account", lambda d: "yes" if d.get("is_service_account") else "no"),
    "chain_id": ("Chain", _chain),
    "triage_status": ("Triage status", lambda d: _text(d.get("triage_status"))),
    "event_name": ("Event", lambda d: _text(d.get("event_name"))),
    "actor_id": ("Actor immutable ID", lambda d: _text(d.get("actor_id"))),
    "target_id": ("Target ID", lambda d: _text(d.get("target_id"))),
    "account_kind": ("Account kind", lambda d: _text(d.get("account_kind"))),
    "user_agent": ("User agent", lambda d: _text(d.get("user_agent"))),
    "severity": ("Severity", lambda d: _text(d.get("severity"))),
    "suppressed_by": ("Suppressed by entry", lambda d: _text(d.get("suppressed_by"))),
    "triage_note": ("Triage note", lambda d: _text(d.get("triage_note"))),
}
DEFAULT_COLUMNS = tuple(list(COLUMNS)[:10])


def _bad(field: str, message: str) -> ApiError:
    return ApiError(400, "bad_field", message, field)


def parse_filters(now_ms: int) -> DetectionFilter:
    """The table's filters, parsed by the detection API (so the file matches the table exactly); without
    ``start`` the export covers the last 24 hours, never the whole store by accident."""
    f = detection_api.filter_from_request(EXPORT_PARAMS)
    until = f.until_ms if f.until_ms is not None else now_ms
    since = f.since_ms if f.since_ms is not None else until - DEFAULT_WINDOW_MS
    return dataclasses.replace(f, since_ms=since, until_ms=until)


def parse_sort(raw: str) -> str:
    """``-event_time`` → ``event_time DESC``; only the store's whitelisted sort columns."""
    raw = (raw or "-event_time").strip()
    descending = raw.startswith("-")
    key = raw.lstrip("-")
    if key not in detection_store.SORT_COLUMNS:
        raise _bad(
            "sort",
            f"sort must be one of {', '.join(sorted(detection_store.SORT_COLUMNS))} "
            "(prefix - for descending)",
        )
    return f"{detection_store.SORT_COLUMNS[key]} {'DESC' if descending else 'ASC'}"


def parse_columns(raw: str) -> tuple[str, ...]:
    if not raw.strip():
        return DEFAULT_COLUMNS
    columns = tuple(c.strip() for c in raw.split(",") if c.strip())
    for column in columns:
        if column not in COLUMNS:
            raise _bad("columns", f"unknown column {column[:60]!r}; use {', '.join(COLUMNS)}")
    return columns


def parse_zone(raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw.strip() or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad("tz", "tz must be an IANA time zone such as UTC or Europe/Berlin") from None


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y%m%dT%H%MZ")


def filename(f: DetectionFilter) -> str:
    return f"cloud-account-detections_{_stamp(f.since_ms or 0)}_{_stamp(f.until_ms or 0)}.csv"


def iter_matching(conn: sqlite3.Connection, f: DetectionFilter, order_by: str) -> Iterator[dict[str, Any]]:
    """Every matching detection, page by page, in one read transaction (a consistent snapshot)."""
    conn.execute("BEGIN")
    try:
        offset = 0
        while True:
            items, _total = detection_store.list_detections(
                conn, f, order_by=order_by, limit=PAGE_SIZE, offset=offset
            )
            yield from items
            if len(items) < PAGE_SIZE:
                return
            offset += PAGE_SIZE
    finally:
        conn.rollback()


def csv_lines(rows: Iterator[Mapping[str, Any]], columns: tuple[str, ...], zone: ZoneInfo) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    headers = [COLUMNS[c][0] + (f" ({zone.key})" if c == "event_time" else "") for c in columns]
    writer.writerow(headers)
    yield flush()
    for row in rows:
        cells = []
        for column in columns:
            if column == "event_time":
                # The event's own time, as the tab shows it; its receipt time where it has none.
                own = row.get("device_time")
                moment = datetime.fromtimestamp((own if own else row["event_time"]) / 1000, tz=zone)
                value = moment.isoformat(timespec="seconds")
            else:
                value = COLUMNS[column][1](row)
            cells.append(neutralise(value))
        writer.writerow(cells)
        if buffer.tell() > 64 * 1024:
            yield flush()
    yield flush()


@bp.get("/api/detections.csv")
@require("view")
def detections_csv() -> Response:
    """The filtered detections as a CSV download (all rows, visible columns, range in the file name)."""
    now_ms = int(time.time() * 1000)
    f = parse_filters(now_ms)
    order_by = parse_sort(request.args.get("sort", ""))
    columns = parse_columns(request.args.get("columns", ""))
    zone = parse_zone(request.args.get("tz", "UTC"))
    database = current_app.config["DATABASE"]

    def generate() -> Iterator[str]:
        conn = connect(database, migrate_schema=False)
        try:
            yield "\ufeff"  # BOM: spreadsheet apps then read the file as UTF-8
            yield from csv_lines(iter_matching(conn, f, order_by), columns, zone)
        finally:
            conn.close()

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename(f)}"'
    response.headers["Cache-Control"] = "no-store"
    return response


OPENAPI_PATHS = {
    "/api/detections.csv": {
        "get": {
            "summary": "Every detection matching the filters as CSV (formula cells neutralised)",
            "description": "Same filters and sort as GET /api/detections; `columns` (comma-separated, "
            "default the table's), `tz` (IANA zone for the Time column). The file name carries "
            "the time range.",
            "parameters": [
                query(n) for n in sorted(detection_api.LIST_PARAMS - {"limit", "offset"} | EXPORT_PARAMS)
            ],
            "responses": {"200": {"description": "CSV", "content": {"text/csv": {}}}, **errors(400)},
        }
    },
}
