"""The detection query (the seed's intent, as valid AQL) and the bounded follow-on query for chains.

Pure functions: the caller (the refresher) resolves log source type IDs and reads settings, then passes a
`DetectionSpec`. See `app/aql/SEED_QUERY.md` for the seed query and why each part changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.aql import literals as lit

# Platform labels stored in `detections.cloud_platform` (ARCHITECTURE.md, the detection record).
AWS, AZURE_AD, OFFICE_365, GCP = "AWS", "Azure AD", "Office 365", "GCP"
PLATFORMS: tuple[str, ...] = (AWS, AZURE_AD, OFFICE_365, GCP)

# Log source type names per platform (aql-and-rest-api.md §6.1); IDs are resolved from these at run time.
# "Microsoft Azure Platform" (413) carries Entra audit logs when they arrive through Event Hubs.
DEFAULT_LOG_SOURCE_TYPE_NAMES: dict[str, tuple[str, ...]] = {
    AWS: ("Amazon AWS CloudTrail",),
    AZURE_AD: ("Microsoft Azure Active Directory", "Microsoft Azure Platform"),
    OFFICE_365: ("Microsoft Office 365",),
    # UNCONFIRMED: the real QRadar name and ID of the Google Cloud audit DSM.
    GCP: ("Google Cloud Audit Logs",),
}
# Used only when the console's log source type list cannot be read (pySigma backend IDs; 5001 is ours).
DEFAULT_LOG_SOURCE_TYPE_IDS: dict[str, tuple[int, ...]] = {
    AWS: (347,),
    AZURE_AD: (445, 413),
    OFFICE_365: (397,),
    GCP: (5001,),  # UNCONFIRMED
}

# Account-creation event names (QID names) per platform. Matched with ILIKE, i.e. case-insensitively; an
# administrator may add `%`/`_` wildcards in settings. AWS QID names = CloudTrail eventName, Entra = the
# audit operationName, Office 365 = Operation (trailing period), GCP = methodName.
DEFAULT_EVENT_NAMES: dict[str, tuple[str, ...]] = {
    # CreateAccessKey / CreateLoginProfile give an identity its credentials: reported as access_key /
    # login_profile detections and step two of the CreateUser chain.
    AWS: (
        "CreateUser",
        "CreateRole",
        "CreateServiceLinkedRole",
        "CreateVirtualMFADevice",
        "CreateAccessKey",
        "CreateLoginProfile",
    ),
    AZURE_AD: (
        "Add user",
        "Add service principal",
        "Add application",
        "Add service principal credentials",
    ),
    OFFICE_365: (
        "Add user.",
        "Add service principal.",
        "Add application.",
        "Add service principal credentials.",
        # The seed's PowerShell names; O365 normally records New-MsolUser as "Add user." (reference §6.2).
        "New-MsolUser",
        "New-AzureADUser",
    ),
    # What the seed's description names but its query misses.
    GCP: ("google.iam.admin.v1.CreateServiceAccount", "google.iam.admin.v1.CreateServiceAccountKey"),
}

# Events that follow a creation in an attack chain (issue item 5): credentials and privilege grants.
DEFAULT_FOLLOW_ON_EVENT_NAMES: dict[str, tuple[str, ...]] = {
    AWS: ("AttachUserPolicy", "AttachRolePolicy", "PutUserPolicy", "PutRolePolicy", "AddUserToGroup"),
    AZURE_AD: (
        "Add member to role",
        "Add app role assignment to service principal",
        "Consent to application",
    ),
    OFFICE_365: (
        "Add member to role.",
        "Add app role assignment to service principal.",
        "Consent to application.",
    ),
    GCP: ("SetIamPolicy",),
}

# Creation events that create a non-human identity: what the seed's is_service_account meant.
SERVICE_IDENTITY_EVENT_NAMES: tuple[str, ...] = (
    "CreateRole",
    "CreateServiceLinkedRole",
    "Add service principal",
    "Add service principal.",
    "Add application",
    "Add application.",
    "Add service principal credentials",
    "Add service principal credentials.",
    "google.iam.admin.v1.CreateServiceAccount",
    "google.iam.admin.v1.CreateServiceAccountKey",
)

DEFAULT_MAGNITUDE_MIN = 3
DEFAULT_LOOKBACK_MS = 24 * 3600 * 1000
DEFAULT_ROW_LIMIT = 50_000


@dataclass(frozen=True)
class PlatformFilter:
    """One platform's slice of the WHERE clause: its log source type IDs and event names."""

    type_ids: tuple[int, ...]
    event_names: tuple[str, ...]


@dataclass(frozen=True)
class DetectionSpec:
    """Everything the detection query depends on; built by the refresher from settings."""

    platforms: Mapping[str, PlatformFilter]
    magnitude_min: int = DEFAULT_MAGNITUDE_MIN
    # Custom property holding the new account's name on this console; None = take it from the payload.
    target_property: str | None = "Account Name"
    row_limit: int = DEFAULT_ROW_LIMIT
    service_identity_event_names: tuple[str, ...] = field(default=SERVICE_IDENTITY_EVENT_NAMES)


def default_platform_filters(
    type_ids: Mapping[str, Sequence[int]] | None = None,
    event_names: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, PlatformFilter]:
    """Platform filters from the defaults, overridden per platform by the given maps."""
    ids = {p: tuple(v) for p, v in (type_ids or DEFAULT_LOG_SOURCE_TYPE_IDS).items()}
    names = {p: tuple(v) for p, v in (event_names or DEFAULT_EVENT_NAMES).items()}
    return {p: PlatformFilter(ids[p], names[p]) for p in PLATFORMS if ids.get(p) and names.get(p)}


def _name_match(names: Sequence[str]) -> str:
    # ILIKE without wildcards is a case-insensitive equality: exact names, no "%role%" misfires.
    return "(" + " OR ".join(f"QIDNAME(qid) ILIKE {lit.string(n)}" for n in names) + ")"


def _platform_where(platforms: Mapping[str, PlatformFilter]) -> str:
    parts = [
        f"(devicetype IN {lit.integer_list(f.type_ids)} AND {_name_match(f.event_names)})"
        for f in platforms.values()
        if f.type_ids and f.event_names
    ]
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


def _window_where(start_ms: int, stop_ms: int) -> str:
    return f"starttime >= {lit.epoch_ms(start_ms)} AND starttime < {lit.epoch_ms(stop_ms)}"


def _ranges_where(start_ms: int, stop_ms: int, ranges: Sequence[tuple[int, int]] | None) -> str:
    """[start_ms, stop_ms), or only the given [start, stop) ranges of it (the late-data reconciliation
    re-reads the minutes whose counts changed)."""
    if ranges is None:
        return _window_where(start_ms, stop_ms)
    if not ranges:
        raise lit.AqlLiteralError("no time range to search")
    return "(" + " OR ".join(f"({_window_where(max(a, start_ms), min(b, stop_ms))})" for a, b in ranges) + ")"


# Columns every refresher query selects; the app keys rows on starttime/qid/logsourceid/payload.
_IDENTITY_COLUMNS = (
    "starttime",
    "qid",
    "logsourceid",
    "devicetype",
    "magnitude",
    "QIDNAME(qid) AS event_name",
    "LOGSOURCETYPENAME(devicetype) AS log_source_type",
    "CATEGORYNAME(category) AS event_category",
    "LOGSOURCENAME(logsourceid) AS log_source",
    "username AS actor",
    "sourceip AS source_ip",
)


def detection_query(
    spec: DetectionSpec, start_ms: int, stop_ms: int, *, ranges: Sequence[tuple[int, int]] | None = None
) -> str:
    """The detection AQL over [start_ms, stop_ms), oldest first.

    Keeps the seed's output columns (event_time, event_category, log_source, actor, target_account,
    source_ip, cloud_platform, is_service_account) and adds what the app needs (starttime, qid,
    event name, log source type, payload). Oldest first with a LIMIT so a truncated page still advances
    the refresher's watermark to the last row it saw. `ranges`: only these [start, stop) parts of the window.
    """
    columns = [
        "DATEFORMAT(starttime, 'yyyy-MM-dd HH:mm:ss') AS event_time",
        *_IDENTITY_COLUMNS,
    ]
    if spec.target_property:
        columns.append(f"{lit.identifier(spec.target_property)} AS target_account")
    columns += [
        f"{_platform_case(spec.platforms)} AS cloud_platform",
        f"CASE WHEN {_name_match(spec.service_identity_event_names)} THEN 1 ELSE 0 END AS is_service_account",
        "UTF8(payload) AS payload",
    ]
    return (
        "SELECT " + ", ".join(columns) + " FROM events"
        f" WHERE {_platform_where(spec.platforms)}"
        f" AND magnitude >= {lit.integer(spec.magnitude_min, minimum=0, maximum=10)}"
        f" AND {_ranges_where(start_ms, stop_ms, ranges)}"
        " ORDER BY starttime ASC"
        f" LIMIT {lit.integer(spec.row_limit, minimum=1, maximum=1_000_000)}"
        f" {lit.time_clause(start_ms, stop_ms)}"
    )


def follow_on_query(
    platforms: Mapping[str, PlatformFilter],
    start_ms: int,
    stop_ms: int,
    row_limit: int = DEFAULT_ROW_LIMIT,
    *,
    ranges: Sequence[tuple[int, int]] | None = None,
) -> str:
    """The bounded second query: credential and privilege-grant events in [start_ms, stop_ms).

    No magnitude filter (a grant's magnitude says nothing about the creation it follows) and no values
    taken from logs: it is bounded by time window, log source types, event names and LIMIT.
    """
    return (
        "SELECT " + ", ".join(_IDENTITY_COLUMNS) + ", UTF8(payload) AS payload FROM events"
        f" WHERE {_platform_where(platforms)}"
        f" AND {_ranges_where(start_ms, stop_ms, ranges)}"
        " ORDER BY starttime ASC"
        f" LIMIT {lit.integer(row_limit, minimum=1, maximum=1_000_000)}"
        f" {lit.time_clause(start_ms, stop_ms)}"
    )


MINUTE_MS = 60_000


def _minute_counts(
    where: str,
    start_ms: int,
    stop_ms: int,
    bucket_ms: int = MINUTE_MS,
    ranges: Sequence[tuple[int, int]] | None = None,
) -> str:
    bucket = lit.integer(bucket_ms, minimum=1000, maximum=86_400_000)
    return (
        f"SELECT starttime - starttime % {bucket} AS minute_ms, COUNT(*) AS n FROM events"
        f" WHERE {where} AND {_ranges_where(start_ms, stop_ms, ranges)}"
        f" GROUP BY minute_ms {lit.time_clause(start_ms, stop_ms)}"
    )


def detection_minute_counts(
    spec: DetectionSpec,
    start_ms: int,
    stop_ms: int,
    *,
    bucket_ms: int = MINUTE_MS,
    ranges: Sequence[tuple[int, int]] | None = None,
) -> str:
    """How many rows `detection_query` gives per minute (epoch ms of the minute) in [start_ms, stop_ms): the
    refresher compares them with what it read before to re-read only the minutes that changed. The
    reconciliation also counts per hour (`bucket_ms`) and within the `ranges` of changed hours."""
    where = (
        f"{_platform_where(spec.platforms)}"
        f" AND magnitude >= {lit.integer(spec.magnitude_min, minimum=0, maximum=10)}"
    )
    return _minute_counts(where, start_ms, stop_ms, bucket_ms, ranges)


def follow_on_minute_counts(
    platforms: Mapping[str, PlatformFilter],
    start_ms: int,
    stop_ms: int,
    *,
    bucket_ms: int = MINUTE_MS,
    ranges: Sequence[tuple[int, int]] | None = None,
) -> str:
    """How many rows `follow_on_query` gives per minute (or `bucket_ms`) in [start_ms, stop_ms)."""
    return _minute_counts(_platform_where(platforms), start_ms, stop_ms, bucket_ms, ranges)


def log_activity_query(spec: DetectionSpec, hours: int = 24) -> str:
    """The detection as an analyst would paste it into Log Activity: ``LAST n HOURS`` instead of the
    refresher's exact window, newest first as in the seed."""
    columns = [
        "DATEFORMAT(starttime, 'yyyy-MM-dd HH:mm:ss') AS event_time",
        "CATEGORYNAME(category) AS event_category",
        "LOGSOURCENAME(logsourceid) AS log_source",
        "username AS actor",
    ]
    if spec.target_property:
        columns.append(f"{lit.identifier(spec.target_property)} AS target_account")
    columns += [
        "sourceip AS source_ip",
        f"{_platform_case(spec.platforms)} AS cloud_platform",
        f"CASE WHEN {_name_match(spec.service_identity_event_names)} THEN 1 ELSE 0 END AS is_service_account",
        "QIDNAME(qid) AS event_name",
    ]
    return (
        "SELECT " + ", ".join(columns) + " FROM events"
        f" WHERE {_platform_where(spec.platforms)}"
        f" AND magnitude >= {lit.integer(spec.magnitude_min, minimum=0, maximum=10)}"
        " ORDER BY starttime DESC"
        f" LIMIT {lit.integer(spec.row_limit, minimum=1, maximum=1_000_000)}"
        f" LAST {lit.integer(hours, minimum=1, maximum=24 * 366)} HOURS"
    )
