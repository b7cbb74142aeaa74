"""Platform, account kind and service-account flag: the seed's CASE columns, fixed.

The platform comes from the log source type (the seed guessed it from event-name substrings and called
Office 365's `Add user.` "AzureAD"); `is_service_account` comes from what was created (the seed flagged
any event name containing "role" or "application").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.aql.detection import AWS, AZURE_AD, GCP, GOOGLE_WORKSPACE, OFFICE_365
from app.detection.extract import Identifiers, base_name
from app.kinds import SERVICE_KINDS

# Fallback when a devicetype is not among the resolved IDs: match the log source type *name*.
_TYPE_NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("cloudtrail", AWS),
    ("amazon aws", AWS),
    ("office 365", OFFICE_365),
    ("microsoft 365", OFFICE_365),
    ("azure active directory", AZURE_AD),
    ("entra", AZURE_AD),
    ("azure", AZURE_AD),
    # Before "google cloud": Workspace's type names ("Google G Suite") name no cloud.
    ("g suite", GOOGLE_WORKSPACE),
    ("gsuite", GOOGLE_WORKSPACE),
    ("google workspace", GOOGLE_WORKSPACE),
    ("google cloud", GCP),
    ("gcp", GCP),
)


def platform_for(
    devicetype: int | None, log_source_type: str | None, type_ids: Mapping[str, Sequence[int]]
) -> str | None:
    """The cloud platform of an event's log source type, or None if it is none of ours."""
    for platform, ids in type_ids.items():
        if devicetype is not None and devicetype in ids:
            return platform
    name = (log_source_type or "").lower()
    for hint, platform in _TYPE_NAME_HINTS:
        if hint in name:
            return platform
    return None


# What each creation event creates, by platform family and base event name (see extract.base_name).
_AWS_KINDS = {
    "createuser": "user",
    "createrole": "iam_role",
    "createservicelinkedrole": "service_linked_role",
    "createaccesskey": "access_key",
    "createloginprofile": "login_profile",
    "createvirtualmfadevice": "mfa_device",
}
_ENTRA_KINDS = {
    "add user": "user",
    "invite external user": "user",
    "new-msoluser": "user",
    "new-azureaduser": "user",
    "add service principal": "service_principal",
    "add application": "application",
    "add service principal credentials": "credential",
    "update application – certificates and secrets management": "credential",
}
_GCP_KINDS = {"createserviceaccount": "service_account", "createserviceaccountkey": "service_account_key"}
_WORKSPACE_KINDS = {"create_user": "workspace_user"}


def account_kind(platform: str | None, event_name: str | None) -> str:
    """What the event created (one of ACCOUNT_KINDS)."""
    name = base_name(event_name)
    if platform == AWS:
        return _AWS_KINDS.get(name, "other")
    if platform in (AZURE_AD, OFFICE_365):
        return _ENTRA_KINDS.get(" ".join(name.split()), "other")
    if platform == GCP:
        return _GCP_KINDS.get(name, "other")
    if platform == GOOGLE_WORKSPACE:
        return _WORKSPACE_KINDS.get(name, "other")
    return "other"


def is_service_account(kind: str, ids: Identifiers | None = None) -> bool:
    """True when the created object is a non-human identity.

    Credentials count when they were added to a service principal or application (Entra "Add service
    principal credentials"); an IAM access key counts when its user is not the one a human created it
    for — we cannot know that, so it does not.
    """
    if kind in SERVICE_KINDS:
        return True
    if kind == "credential":
        target_type = ((ids.target_type if ids else None) or "ServicePrincipal").lower()
        return target_type in ("serviceprincipal", "application")
    return False
