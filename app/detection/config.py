"""Detection settings (`SETTINGS`, registered by the composition roots through `app.features`) and the
per-cycle configuration built from them."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from app import settings
from app.aql import detection as aqld
from app.detection.eventset import EVENT_NAME_KEYS, available_properties, resolve_type_ids
from app.qradar import Gateway

SETTINGS = [
    *(
        settings.Setting(
            key,
            "str_list",
            list(aqld.DEFAULT_EVENT_NAMES[platform]),
            f"{platform} account-creation event (QID) names the detection searches for. Matched "
            "case-insensitively (ILIKE); % and _ are wildcards.",
        )
        for platform, key in EVENT_NAME_KEYS.items()
    ),
    settings.Setting(
        "detection_row_limit",
        "int",
        aqld.DEFAULT_ROW_LIMIT,
        "Most events one refresh reads per query; a larger backlog is read over several refreshes.",
        100,
        1_000_000,
    ),
    settings.Setting(
        "detection_base_severity",
        "int",
        7,
        "Severity (1-10) of a single account creation; chains raise it. The seed rates the detection 'high'.",
        1,
        10,
    ),
    # Late-data reconciliation (app/detection/reconcile.py).
    settings.Setting(
        "reconcile_interval_s",
        "int",
        3600,
        "Seconds between late-data reconciliations: each compares QRadar's per-minute event counts over "
        "the reconciliation window with what the refresh read, and stores what arrived too late for it "
        "(0 turns it off).",
        0,
        86_400,
    ),
    settings.Setting(
        "reconcile_window_hours",
        "int",
        24,
        "How far back the late-data reconciliation looks (hours): events stored in QRadar up to this long "
        "after they were received are still detected.",
        1,
        24 * 30,
    ),
]


@dataclass(frozen=True)
class DetectionConfig:
    spec: aqld.DetectionSpec
    follow_on: dict[str, aqld.PlatformFilter]
    type_ids: dict[str, tuple[int, ...]]
    lookback_ms: int
    overlap_ms: int
    interval_s: int
    retention_ms: int
    search_timeout_s: int
    page_size: int
    base_severity: int
    # Fill fields the custom property left empty from the payload (setting custom_property_payload_fallback).
    payload_fallback: bool


def load_config(conn: sqlite3.Connection, gw: Gateway | None) -> DetectionConfig:
    values = settings.all_values(conn)
    type_ids = resolve_type_ids(gw, values["log_source_types"])
    names = {p: tuple(values[k]) for p, k in EVENT_NAME_KEYS.items()}
    platforms = {
        p: aqld.PlatformFilter(type_ids[p], names[p])
        for p in aqld.PLATFORMS
        if type_ids.get(p) and names.get(p)
    }
    follow_on = {
        p: aqld.PlatformFilter(type_ids[p], aqld.DEFAULT_FOLLOW_ON_EVENT_NAMES[p])
        for p in aqld.PLATFORMS
        if type_ids.get(p)
    }
    target_property = values["custom_properties"].get("account_name")
    columns = available_properties(gw)
    if columns is not None and target_property not in columns:
        target_property = None  # not defined on this console: an unknown column would fail the query
    spec = aqld.DetectionSpec(
        platforms=platforms,
        magnitude_min=values["magnitude_minimum"],
        target_property=target_property,
        row_limit=values["detection_row_limit"],
    )
    return DetectionConfig(
        spec=spec,
        follow_on=follow_on,
        type_ids=type_ids,
        lookback_ms=values["lookback_hours"] * 3_600_000,
        overlap_ms=values["overlap_minutes"] * 60_000,
        interval_s=values["refresh_interval_s"],
        retention_ms=values["retention_days"] * 86_400_000,
        search_timeout_s=values["search_timeout_s"],
        page_size=values["search_page_size"],
        base_severity=values["detection_base_severity"],
        payload_fallback=values["custom_property_payload_fallback"],
    )
