"""Platform, account kind and service-account flag: the seed's CASE columns, fixed.

The platform comes from the log source type (the seed guessed it from event-name substrings and called
Office 365's `Add user.` "AzureAD"); `is_service_account` comes from what was created (the seed flagged
any event name containing "role" or "application").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.aql.detection import AWS, AZURE_AD, GCP, GOOGLE_WORKSPACE, OFFICE_365
from app.detection.extract import (
    IAM_SOURCE,
    IDENTITY_CENTER_SOURCES,
    ORGANIZATIONS_SOURCE,
    SSO_SOURCE,
    Identifiers,
    base_name,
    operation_key,
)
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
    "enablemfadevice": "mfa_device",
    "creategroup": "iam_group",
}
# Creations of other AWS services, by (eventSource, base event name): the same event name means something
# else in each service (IAM's CreateUser is an AWS identity, Transfer Family's a file-transfer login).
_AWS_SOURCE_KINDS = {
    **{(s, "createuser"): "identity_center_user" for s in IDENTITY_CENTER_SOURCES},
    **{(s, "creategroup"): "identity_center_group" for s in IDENTITY_CENTER_SOURCES},
    (SSO_SOURCE, "createpermissionset"): "permission_set",
    (SSO_SOURCE, "createaccountassignment"): "account_assignment",
    (ORGANIZATIONS_SOURCE, "createaccount"): "aws_account",
    (ORGANIZATIONS_SOURCE, "creategovcloudaccount"): "aws_account",
    (ORGANIZATIONS_SOURCE, "inviteaccounttoorganization"): "aws_account_invitation",
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
_WORKSPACE_KINDS = {"create_user": "workspace_user"}


def aws_kind(name: str, ids: Identifiers | None) -> str:
    """An AWS creation's kind from its base event name and, when the payload gave it, its eventSource
    (no eventSource: IAM, as the event names were before other services were collected)."""
    source = ids.event_source if ids else None
    if source and source != IAM_SOURCE:
        kind = _AWS_SOURCE_KINDS.get((source, name))
        if kind is not None:
            return kind
        if name == "createuser":
            return "service_user"
        return "other"
    kind = _AWS_KINDS.get(name)
    if kind is None:
        # Without an eventSource only the event name is known: the non-IAM names are unambiguous.
        return next((k for (_, n), k in _AWS_SOURCE_KINDS.items() if n == name), "other")
    if kind == "access_key" and ids is not None and ids.own_credential:
        return "own_access_key"
    return kind


def account_kind(platform: str | None, event_name: str | None, ids: Identifiers | None = None) -> str:
    """What the event created (one of ACCOUNT_KINDS); `ids` (the payload's identifiers) refines AWS kinds."""
    name = base_name(event_name)
    if platform == AWS:
        return aws_kind(name, ids)
    if platform in (AZURE_AD, OFFICE_365):
        return _ENTRA_KINDS.get(operation_key(event_name), "other")
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
