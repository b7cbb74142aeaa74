"""The detection query (the seed's intent, as valid AQL) and the bounded follow-on query for chains.

Pure functions: the caller (the refresher) resolves log source type IDs and reads settings, then passes a
`DetectionSpec`. See `app/aql/SEED_QUERY.md` for the seed query and why each part changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.aql import literals as lit

# Platform labels stored in `detections.cloud_platform` (ARCHITECTURE.md, the detection record).
AWS, AZURE_AD, OFFICE_365, GCP = "AWS", "Azure AD", "Office 365", "GCP"
# Google Workspace / Cloud Identity admin activity (Admin SDK Reports API), its own log source type.
GOOGLE_WORKSPACE = "Google Workspace"
PLATFORMS: tuple[str, ...] = (AWS, AZURE_AD, OFFICE_365, GCP, GOOGLE_WORKSPACE)

# Log source type names per platform (aql-and-rest-api.md §6.1); IDs are resolved from these at run time.
# "Microsoft Azure Platform" (413) carries Entra audit logs when they arrive through Event Hubs.
DEFAULT_LOG_SOURCE_TYPE_NAMES: dict[str, tuple[str, ...]] = {
    AWS: ("Amazon AWS CloudTrail",),
    AZURE_AD: ("Microsoft Azure Active Directory", "Microsoft Azure Platform"),
    OFFICE_365: ("Microsoft Office 365",),
    # IDs from IBM's pySigma QRadar backend (`GoogleCloudAudit` 449, `GoogleGSuite` 442); the display
    # names are read from those keys and are UNCONFIRMED (README, "Log source types").
    GCP: ("Google Cloud Audit",),
    GOOGLE_WORKSPACE: ("Google G Suite",),
}
# Used only when the console's log source type list cannot be read (pySigma backend IDs).
DEFAULT_LOG_SOURCE_TYPE_IDS: dict[str, tuple[int, ...]] = {
    AWS: (347,),
    AZURE_AD: (445, 413),
    OFFICE_365: (397,),
    GCP: (449,),
    GOOGLE_WORKSPACE: (442,),
}

# Entra ID / Office 365 coverage (issue 12). Names from detection-and-tuning.md where it has them ("Invite
# external user", "Update application – Certificates and secrets management", "Add owner to application/SP",
# "Add eligible member to role"); the rest are Microsoft's Entra audit activity names, UNCONFIRMED here.
#
# The credential operation is written with an en dash, a hyphen or an em dash, sometimes with a trailing
# space: one `_` stands for the dash (it matches exactly one character) and the trailing-space spelling is
# listed on its own, so the match stays the exact name, not a prefix.
ENTRA_APP_CREDENTIAL_PATTERNS: tuple[str, ...] = (
    "Update application _ Certificates and secrets management",
    "Update application _ Certificates and secrets management ",
)
ENTRA_COVERAGE_EVENT_NAMES: tuple[str, ...] = (
    "Invite external user",
    *ENTRA_APP_CREDENTIAL_PATTERNS,
    "Add owner to application",
    "Add owner to service principal",
    # Federated identity credentials: an application's ("Update application" is kept only when it changes
    # FederatedIdentityCredentials) and a managed identity's (Azure Activity log, type 413).
    "Update application",
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
    # Domains: the AADInternals federation backdoor adds, verifies and federates a domain.
    "Add unverified domain",
    "Add verified domain",
    "Verify domain",
    "Set domain authentication",
    "Set federation settings on domain",
)
ENTRA_COVERAGE_FOLLOW_ON_NAMES: tuple[str, ...] = (
    "Redeem external user invite",
    "Add owner to application",
    "Add owner to service principal",
    "Add eligible member to role",
    "Add scoped member to role",
    "Add member to role in PIM completed (permanent)",
    "Add member to role in PIM completed (timebound)",
    "Add eligible member to role in PIM completed (permanent)",
    "Add eligible member to role in PIM completed (timebound)",
    "Add member to role completed (PIM activation)",
)


def office_365_names(names: Sequence[str]) -> tuple[str, ...]:
    """The Unified Audit Log spelling of Entra operation names: a trailing period (the trailing-space
    spelling keeps its space before the period); Azure Activity operations have no O365 copy."""
    return tuple(n.rstrip() + "." if not n.endswith(" ") else n + "." for n in names if "/" not in n)


GCP_CREATION_EVENT_NAMES: tuple[str, ...] = (
    "google.iam.admin.v1.CreateServiceAccount",
    "google.iam.admin.v1.CreateServiceAccountKey",
    "google.iam.admin.v%.CreateServiceAccount",
    "google.iam.admin.v%.CreateServiceAccountKey",
)

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
        # The eventSource in the payload tells which service each name came from (app/detection/classify.py):
        # IAM Identity Center (sso-directory / identitystore: CreateUser, CreateGroup; sso: permission sets and
        # account assignments), Organizations, and non-IAM CreateUser (Transfer Family, ElastiCache, ...).
        # IAM's CreateGroup and the MFA events are context only (recorded, never raised).
        "CreateGroup",
        "CreatePermissionSet",
        "CreateAccountAssignment",
        "CreateAccount",
        "CreateGovCloudAccount",
        "InviteAccountToOrganization",
        "EnableMFADevice",
    ),
    AZURE_AD: (
        "Add user",
        "Add service principal",
        "Add application",
        "Add service principal credentials",
        *ENTRA_COVERAGE_EVENT_NAMES,
    ),
    OFFICE_365: (
        "Add user.",
        "Add service principal.",
        "Add application.",
        "Add service principal credentials.",
        *office_365_names(ENTRA_COVERAGE_EVENT_NAMES),
    ),
    # What the seed's description names but its query misses. IAM writes the method as
    # `google.iam.admin.v1.CreateServiceAccount`; other API surfaces and versions qualify it further
    # (`google.iam.admin.v1.IAM.CreateServiceAccount`). The `%` only spans the version and service
    # parts: each pattern still ends in the exact method name after a dot.
    GCP: GCP_CREATION_EVENT_NAMES,
    # Admin SDK Reports API event names (admin application), UNCONFIRMED as QRadar QID names.
    GOOGLE_WORKSPACE: ("CREATE_USER",),
}

# Events that follow a creation in an attack chain (issue item 5): credentials and privilege grants.
DEFAULT_FOLLOW_ON_EVENT_NAMES: dict[str, tuple[str, ...]] = {
    AWS: (
        "AttachUserPolicy",
        "AttachRolePolicy",
        "PutUserPolicy",
        "PutRolePolicy",
        "AddUserToGroup",
        # What the privilege memory learns from (app/detection/aws_memory.py): customer-managed policy
        # contents and the groups that carry an admin policy.
        "AttachGroupPolicy",
        "PutGroupPolicy",
        "CreatePolicy",
        "CreatePolicyVersion",
    ),
    AZURE_AD: (
        "Add member to role",
        "Add app role assignment to service principal",
        "Consent to application",
        *ENTRA_COVERAGE_FOLLOW_ON_NAMES,
    ),
    OFFICE_365: (
        "Add member to role.",
        "Add app role assignment to service principal.",
        "Consent to application.",
        *office_365_names(ENTRA_COVERAGE_FOLLOW_ON_NAMES),
    ),
    # Project/folder/organization policy (`SetIamPolicy`, fully qualified by Resource Manager v1-v3 as
    # `google.cloud.resourcemanager.v3.Projects.SetIamPolicy` and the like) and the service account's own
    # policy (`google.iam.admin.v1.SetIAMPolicy`: who may act as it). Patterns end in the exact method.
    GCP: (
        "SetIamPolicy",
        "google.iam.admin.v%.SetIAMPolicy",
        "google.cloud.resourcemanager.v%.SetIamPolicy",
        "google.iam.v1.IAMPolicy.SetIamPolicy",
    ),
    # Admin grants (UNCONFIRMED as QRadar QID names): super admin, an admin role, a delegated admin, and
    # membership of a group (admin only when the group's name says so as a word).
    GOOGLE_WORKSPACE: (
        "GRANT_ADMIN_PRIVILEGE",
        "ASSIGN_ROLE",
        "GRANT_DELEGATED_ADMIN_PRIVILEGES",
        "ADD_GROUP_MEMBER",
    ),
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
    *ENTRA_APP_CREDENTIAL_PATTERNS,
    *office_365_names(ENTRA_APP_CREDENTIAL_PATTERNS),
    *GCP_CREATION_EVENT_NAMES,
)


def ilike_matches(pattern: str, name: str) -> bool:
    """Whether QRadar's ``name ILIKE pattern`` holds (``%`` any run, ``_`` one character, no escapes):
    for checks made outside AQL against configured names, such as the playbook's coverage."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.IGNORECASE | re.DOTALL) is not None


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
    # The record's own time (the DSM parses it from the payload); starttime is when QRadar received it.
    "devicetime",
    # QRadar's coalescing count: a record standing for several events keeps only the first one's payload.
    "eventcount",
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
    target_property: str | None = None,
    *,
    ranges: Sequence[tuple[int, int]] | None = None,
) -> str:
    """The bounded second query: credential and privilege-grant events in [start_ms, stop_ms).

    No magnitude filter (a grant's magnitude says nothing about the creation it follows) and no values
    taken from logs: it is bounded by time window, log source types, event names and LIMIT. With
    ``target_property`` the console's normalized target comes along, so a follow-on whose payload is cut
    or unreadable still names the account it touched.
    """
    target = f"{lit.identifier(target_property)} AS target_account, " if target_property else ""
    return (
        "SELECT " + ", ".join(_IDENTITY_COLUMNS) + f", {target}UTF8(payload) AS payload FROM events"
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


# Coalescing merges events received within 10 s; a minute either side holds every event of the window.
COALESCED_PIVOT_MS = 60_000


def coalesced_events_query(
    qid: int, event_time_ms: int, log_source: str | None = None, source_ip: str | None = None
) -> str:
    """The raw events around a coalesced record: every event of its QID (and log source and source IP,
    when known) within a minute of it, with each record's ``eventcount`` and payload, oldest first.
    Values come from logs: each is an escaped literal."""
    where = [f"qid = {lit.integer(qid)}"]
    if log_source:
        where.append(f"LOGSOURCENAME(logsourceid) = {lit.string(log_source)}")
    if source_ip:
        where.append(f"sourceip = {lit.string(source_ip)}")
    return (
        "SELECT DATEFORMAT(starttime, 'yyyy-MM-dd HH:mm:ss') AS event_time, QIDNAME(qid) AS event_name,"
        " LOGSOURCENAME(logsourceid) AS log_source, username, sourceip, eventcount, UTF8(payload) AS payload"
        f" FROM events WHERE {' AND '.join(where)} ORDER BY starttime ASC"
        f" {lit.time_clause(event_time_ms - COALESCED_PIVOT_MS, event_time_ms + COALESCED_PIVOT_MS)}"
    )
