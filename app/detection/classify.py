"""Platform, account kind and service-account flag: the seed's CASE columns, fixed.

The platform comes from the log source type (the seed guessed it from event-name substrings and called
Office 365's `Add user.` "AzureAD"); `is_service_account` comes from what was created (the seed flagged
any event name containing "role" or "application").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.aql.detection import AWS, AZURE_AD, GCP, OFFICE_365
from app.detection.extract import Identifiers, base_name, operation_key
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
    "invite external user": "guest_user",
    "new-msoluser": "user",
    "new-azureaduser": "user",
    "add service principal": "service_principal",
    "add application": "application",
    "add service principal credentials": "credential",
    # Every dash and space spelling folds to this key (`operation_key`).
    "update application - certificates and secrets management": "credential",
    "add owner to application": "app_owner",
    "add owner to service principal": "app_owner",
    # "Update application" is a detection only when it adds a federated identity credential (`refine_kind`).
    "update application": "federated_credential",
    "add federated identity credential": "federated_credential",
    "microsoft.managedidentity/userassignedidentities/federatedidentitycredentials/write": "federated_credential",
    "add unverified domain": "domain",
    "add verified domain": "domain",
    "verify domain": "domain",
    "set domain authentication": "domain_federation",
    "set federation settings on domain": "domain_federation",
}
_GCP_KINDS = {"createserviceaccount": "service_account", "createserviceaccountkey": "service_account_key"}


def account_kind(platform: str | None, event_name: str | None) -> str:
    """What the event created (one of ACCOUNT_KINDS)."""
    name = base_name(event_name)
    if platform == AWS:
        return _AWS_KINDS.get(name, "other")
    if platform in (AZURE_AD, OFFICE_365):
        return _ENTRA_KINDS.get(operation_key(event_name), "other")
    if platform == GCP:
        return _GCP_KINDS.get(name, "other")
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


# Microsoft's provisioning first-party app (detection-and-tuning.md §3.4): it creates the users of HR
# inbound provisioning and of cross-tenant synchronization alike.
SYNC_FABRIC_APP_ID = "00000014-0000-0000-c000-000000000000"


def refine_kind(platform: str | None, event_name: str | None, kind: str, ids: Identifiers) -> str | None:
    """The kind once the payload is read; None when the event is not a detection after all.

    * "Update application" is collected for federated identity credentials: any other update is dropped.
    * "Add user" by the provisioning app (by appId, never display name) of an external (``#EXT#``) user is
      cross-tenant synchronization; HR provisioning creates members of the tenant itself. (That cross-tenant
      sync users carry ``#EXT#`` UPNs and SyncFabric as initiator in audit logs is UNCONFIRMED.)
    """
    if platform not in (AZURE_AD, OFFICE_365):
        return kind
    if operation_key(event_name) == "update application" and not ids.federated_credential:
        return None
    if (
        kind == "user"
        and (ids.initiator_app_id or "").lower() == SYNC_FABRIC_APP_ID
        and "#ext#" in (ids.target_account or "").lower()
    ):
        return "cross_tenant_user"
    return kind
