"""Detection settings (`SETTINGS`, registered by the composition roots through `app.features`) and the
per-cycle configuration built from them."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from app import settings
from app.aql import detection as aqld
from app.detection import chains as chainlib
from app.detection.eventset import EVENT_NAME_KEYS, available_properties, resolve_type_ids
from app.qradar import Gateway

# Where the self-check (app.detection.selfcheck) looks for a configured event name among the QID records.
SELF_CHECK_SCOPES = ("log_source_type", "all")


def _check_scope(value: str) -> None:
    if value not in SELF_CHECK_SCOPES:
        raise settings.SettingError("self_check_qid_scope", f"must be one of {', '.join(SELF_CHECK_SCOPES)}")


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
        "twin_window_minutes",
        "int",
        chainlib.TWIN_WINDOW_MS // 60_000,
        "How far apart an Entra (Azure AD) creation and its Office 365 copy may be to count as one "
        "detection when either lacks its own event time (devicetime) and only QRadar's receipt time is "
        "known. Office 365 audit records reach QRadar 1-2 hours after Entra's, sometimes much later; "
        "the default, 6 hours, covers that delay. With both event times known, the copies must be within "
        "5 minutes (clock skew).",
        5,
        24 * 60,
    ),
    settings.Setting(
        "detection_base_severity",
        "int",
        7,
        "Severity (1-10) of a single account creation; chains raise it. The seed rates the detection 'high'.",
        1,
        10,
    ),
    # Chain windows (app.detection.chains): how far apart the steps of one attack may be.
    settings.Setting(
        "chain_entra_window_s",
        "int",
        chainlib.ENTRA_CHAIN_WINDOW_MS // 1000,
        "Entra application → service principal → credentials chain: the three steps must fall within "
        "this many seconds of the application's creation.",
        10,
        3600,
    ),
    settings.Setting(
        "chain_aws_credential_window_minutes",
        "int",
        chainlib.AWS_CREDENTIAL_WINDOW_MS // 60_000,
        "AWS CreateUser → CreateAccessKey / CreateLoginProfile chain: the credential must come within this "
        "many minutes of the user (default one hour: an assumed-role session lasts an hour by default).",
        1,
        1440,
    ),
    settings.Setting(
        "chain_privilege_window_hours",
        "int",
        chainlib.PRIVILEGE_WINDOW_MS // 3_600_000,
        "A privilege grant to a new identity joins its creation's chain when it comes within this many hours.",
        1,
        168,
    ),
    settings.Setting(
        "escalation_memory_days",
        "int",
        chainlib.ESCALATION_MEMORY_MS // 86_400_000,
        "Escalation memory: an administrator grant to an identity created in the last N days joins the "
        "creation's chain, also when the creation was stored by an earlier refresh.",
        0,
        90,
    ),
    settings.Setting(
        "self_check_interval_hours",
        "int",
        24,
        "How often the configured log source types and event names are checked against the console's "
        "log source types and QID records (also at every start and after a change; 0 = never).",
        0,
        168,
    ),
    settings.Setting(
        "self_check_qid_scope",
        "str",
        "log_source_type",
        "Which QID records a configured event name is looked for in: 'log_source_type' (those of the "
        "platform's log source types) or 'all' (every QID record, if this console's QID records do not "
        "carry their log source type: UNCONFIRMED).",
        validate=_check_scope,
    ),
    settings.Setting(
        "aws_non_iam_users",
        "bool",
        True,
        "Raise CreateUser events of non-IAM AWS services (Transfer Family, ElastiCache, MemoryDB, Amazon MQ, "
        "...) as low-severity 'Service user (not IAM)' detections; off: ignore them.",
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


def chain_windows(values: dict) -> chainlib.ChainWindows:
    """The chain windows from the settings' values (`settings.all_values`)."""
    return chainlib.ChainWindows(
        entra_ms=values["chain_entra_window_s"] * 1000,
        aws_credential_ms=values["chain_aws_credential_window_minutes"] * 60_000,
        privilege_ms=values["chain_privilege_window_hours"] * 3_600_000,
        escalation_ms=values["escalation_memory_days"] * 86_400_000,
        twin_ms=values["twin_window_minutes"] * 60_000,
    )


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
    # Raise non-IAM CreateUser events (setting aws_non_iam_users).
    aws_non_iam_users: bool = True
    windows: chainlib.ChainWindows = chainlib.DEFAULT_WINDOWS


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
        aws_non_iam_users=values["aws_non_iam_users"],
        windows=chain_windows(values),
    )
