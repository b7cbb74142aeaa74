"""The Offense Summary query: an offense's cloud-account-creation events.

``INOFFENSE(id)`` limited to the detection's event set (the same log source types and event names as the
detection query), searched over a START/STOP window covering the offense from ``start_time`` to
``last_updated_time`` (aql-and-rest-api.md §5). START/STOP here have minute granularity
(``'yyyy-MM-dd HH:mm'``: START '15:51' STOP '17:00' covers 15:51:00–16:59:59), so START is floored to its
minute and STOP is moved to the minute *after* the last update — even when the last update falls exactly
on a minute boundary, since STOP is exclusive. Pure functions; every value goes through `app.aql.literals`.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.aql import literals as lit
from app.aql.detection import PlatformFilter

MINUTE_MS = 60_000
DEFAULT_ROW_LIMIT = 200
# Offense ids are positive ints; QRadar's are far below this.
MAX_OFFENSE_ID = 2**31 - 1


def minute_window(start_ms: int, last_updated_ms: int) -> tuple[int, int]:
    """[floor(start) to the minute, the minute after last_updated) in epoch ms."""
    lit.epoch_ms(start_ms)
    lit.epoch_ms(last_updated_ms)
    last = max(start_ms, last_updated_ms)
    start = start_ms - start_ms % MINUTE_MS
    stop = last - last % MINUTE_MS + MINUTE_MS
    return start, stop


def _minute_literal(ms: int) -> str:
    return lit.time_literal(ms)  # UTC with the trailing 'Z', whatever zone the console runs in


def minute_time_clause(start_ms: int, last_updated_ms: int) -> str:
    """``START '<start minute>Z' STOP '<minute after last_updated>Z'``."""
    start, stop = minute_window(start_ms, last_updated_ms)
    return f"START {_minute_literal(start)} STOP {_minute_literal(stop)}"


def _creation_match(platforms: Mapping[str, PlatformFilter]) -> str:
    parts = []
    for f in platforms.values():
        if not (f.type_ids and f.event_names):
            continue
        names = " OR ".join(f"QIDNAME(qid) ILIKE {lit.string(n)}" for n in f.event_names)
        parts.append(f"(devicetype IN {lit.integer_list(f.type_ids)} AND ({names}))")
    if not parts:
        raise lit.AqlLiteralError("no platform has both log source type IDs and event names")
    return "(" + " OR ".join(parts) + ")"


def _platform_case(platforms: Mapping[str, PlatformFilter]) -> str:
    whens = " ".join(
        f"WHEN devicetype IN {lit.integer_list(f.type_ids)} THEN {lit.string(p)}"
        for p, f in platforms.items()
        if f.type_ids
    )
    return f"CASE {whens} ELSE 'Unknown' END"


def offense_events_query(
    offense_id: int,
    start_ms: int,
    last_updated_ms: int,
    platforms: Mapping[str, PlatformFilter],
    *,
    target_property: str | None = "Account Name",
    row_limit: int = DEFAULT_ROW_LIMIT,
) -> str:
    """AQL for the offense's cloud-account-creation events, oldest first.

    Selects the columns the detection's event key is built from (starttime, qid, logsourceid, payload)
    so rows can be matched to stored detections, plus what the fragment shows when they are not stored.
    """
    columns = [
        "starttime",
        "qid",
        "logsourceid",
        "devicetype",
        "QIDNAME(qid) AS event_name",
        "LOGSOURCETYPENAME(devicetype) AS log_source_type",
        "LOGSOURCENAME(logsourceid) AS log_source",
        "CATEGORYNAME(category) AS event_category",
        "username AS actor",
        "sourceip AS source_ip",
        "magnitude",
    ]
    if target_property:
        columns.append(f"{lit.identifier(target_property)} AS target_account")
    columns += [f"{_platform_case(platforms)} AS cloud_platform", "UTF8(payload) AS payload"]
    return (
        "SELECT " + ", ".join(columns) + " FROM events"
        f" WHERE INOFFENSE({lit.integer(offense_id, minimum=1, maximum=MAX_OFFENSE_ID)})"
        f" AND {_creation_match(platforms)}"
        " ORDER BY starttime ASC"
        f" LIMIT {lit.integer(row_limit, minimum=1, maximum=10_000)}"
        f" {minute_time_clause(start_ms, last_updated_ms)}"
    )


MAX_LINK_BATCH = 50


def offense_links_query(
    offenses: Mapping[int, tuple[int, int]],
    platforms: Mapping[str, PlatformFilter],
    *,
    not_before_ms: int | None = None,
    row_limit: int = 5_000,
) -> str:
    """ONE search mapping the cloud-account-creation events of several offenses to their offense ids.

    ``offenses`` is offense id -> (start_time, last_updated_time) in epoch ms. Each row carries the columns
    the detection's event key is built from (starttime, qid, logsourceid, payload) and ``offense_ids``:
    the ids of the batch's offenses that contain the event, space-separated (an event may be in several).
    The window covers every offense from its start (or ``not_before_ms``, the oldest stored detection —
    nothing earlier can be linked) to the minute after its last update. Work stays in AQL: INOFFENSE and
    the detection's event set filter the events; only matching rows come back.
    """
    if not offenses:
        raise lit.AqlLiteralError("no offenses to search")
    if len(offenses) > MAX_LINK_BATCH:
        raise lit.AqlLiteralError(f"at most {MAX_LINK_BATCH} offenses per search, got {len(offenses)}")
    ids = [lit.integer(oid, minimum=1, maximum=MAX_OFFENSE_ID) for oid in offenses]
    for start, updated in offenses.values():
        lit.epoch_ms(start)
        lit.epoch_ms(updated)
    start = min(s for s, _u in offenses.values())
    stop = max(max(s, u) for s, u in offenses.values())
    not_before = ""
    if not_before_ms is not None:
        start = min(max(start, not_before_ms), stop)
        # Exact, not just the window's minute: a search continued from its last row's time (a cut one)
        # must not read the rows before it again.
        not_before = f" AND starttime >= {lit.epoch_ms(not_before_ms)}"
    # CONCAT of one CASE per offense ('' last: CONCAT always gets two or more arguments).
    membership = ", ".join(f"CASE WHEN INOFFENSE({i}) THEN {lit.string(i + ' ')} ELSE '' END" for i in ids)
    in_any = " OR ".join(f"INOFFENSE({i})" for i in ids)
    return (
        "SELECT starttime, qid, logsourceid, UTF8(payload) AS payload,"
        f" CONCAT({membership}, '') AS offense_ids FROM events"
        f" WHERE ({in_any}) AND {_creation_match(platforms)}{not_before}"
        " ORDER BY starttime ASC"
        f" LIMIT {lit.integer(row_limit, minimum=1, maximum=100_000)}"
        f" {minute_time_clause(start, stop)}"
    )
