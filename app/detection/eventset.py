"""The detection's event set, read from its settings: which log source types and event names it means.

One home for what the refresher, the offense sync, the Offense Summary fragment and the playbook ask:
`type_ids` / `resolve_type_ids` (log source type IDs per platform), `platform_filters` and
`creation_filters` (AQL event filters, no QRadar call), and `target_property` (the custom property holding
the new account's name, when this console defines it).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from app import settings
from app.aql import detection as aqld
from app.aql.detection import PLATFORMS, PlatformFilter
from app.qradar import Gateway, QRadarError, QRadarUnavailable

log = logging.getLogger(__name__)

# Setting key per platform for its account-creation event names.
EVENT_NAME_KEYS = {
    aqld.AWS: "event_names_aws",
    aqld.AZURE_AD: "event_names_azure_ad",
    aqld.OFFICE_365: "event_names_office_365",
    aqld.GCP: "event_names_gcp",
    aqld.GOOGLE_WORKSPACE: "event_names_google_workspace",
}


def resolve_type_ids(
    gw: Gateway | None, configured: dict[str, list[dict[str, Any]]]
) -> dict[str, tuple[int, ...]]:
    """Log source type IDs per platform: the console's ID for each configured name, else the configured ID."""
    by_name: dict[str, int] = {}
    if gw is not None:
        try:
            by_name = {t["name"].lower(): int(t["id"]) for t in gw.log_source_types()}
        except (QRadarError, QRadarUnavailable, KeyError, TypeError, ValueError) as exc:
            log.warning("log source types could not be read; using configured IDs: %s", exc)
    out: dict[str, tuple[int, ...]] = {}
    for platform, entries in configured.items():
        ids = []
        for entry in entries:
            type_id = by_name.get(str(entry.get("name", "")).lower(), entry.get("id"))
            if isinstance(type_id, int) and type_id not in ids:
                ids.append(type_id)
        if ids:
            out[platform] = tuple(ids)
    return out


def type_ids(conn: sqlite3.Connection | None = None) -> dict[str, tuple[int, ...]]:
    """Configured log source type IDs per platform (``log_source_types``; no QRadar call), in platform order."""
    ids = resolve_type_ids(None, settings.get("log_source_types", conn=conn))
    return {p: ids[p] for p in PLATFORMS if ids.get(p)}


def platform_filters(conn: sqlite3.Connection | None = None) -> dict[str, PlatformFilter]:
    """Platforms by configured log source type IDs (no QRadar call) — to label result rows."""
    ids = type_ids(conn)
    return {p: PlatformFilter(ids[p], ()) for p in ids}


def creation_filters(conn: sqlite3.Connection | None = None) -> dict[str, PlatformFilter]:
    """The detection's event set from its settings (no QRadar call): configured type IDs and the
    account-creation event names per platform (``event_names_<platform>``)."""
    ids = resolve_type_ids(None, settings.get("log_source_types", conn=conn))
    out = {}
    for platform, key in EVENT_NAME_KEYS.items():
        names = tuple(settings.get(key, conn=conn))
        if ids.get(platform) and names:
            out[platform] = PlatformFilter(ids[platform], names)
    return out


def available_properties(gw: Gateway | None) -> frozenset[str] | None:
    """Column names of the events database (custom properties included), or None if unknown. The gateway
    caches the list (``Gateway.columns``)."""
    return None if gw is None else gw.columns("events")


def target_property(gw: Gateway | None = None) -> str | None:
    """The custom property holding the new account's name, or None when this console does not define it
    (an unknown column would make every query fail). While QRadar's column list cannot be read the
    configured name is used. ``gw``: the gateway to ask (a time-bounded one), else the app's."""
    from app.qradar import get_gateway

    name = settings.get("custom_properties").get("account_name")
    if not name:
        return None
    columns = (gw or get_gateway()).columns("events")
    return name if columns is None or name in columns else None
