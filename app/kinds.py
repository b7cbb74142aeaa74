"""The catalogue of account kinds: what a detected event created, and how the product treats each kind.

One list for every layer (classification, chains, tuning's allowlist fields, the store's chain candidates),
so adding a kind is one entry here plus the event names that produce it (`app/detection/classify.py`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccountKind:
    name: str
    label: str
    # A non-human identity (service principal, role, service account) or something that belongs to one.
    service: bool = False
    # Gives an identity a way to sign in (key, secret, password): step two of a creation chain.
    credential: bool = False
    # Fixed severity (1-10) for kinds that are weaker signals; None = the detection_base_severity setting.
    severity: int | None = None
    # Kept for chains and the detail panel, never raised as a detection on its own.
    context_only: bool = False


KINDS: tuple[AccountKind, ...] = (
    AccountKind("user", "User"),
    AccountKind("service_principal", "Service principal", service=True),
    AccountKind("application", "Application", service=True),
    AccountKind("credential", "Credential", credential=True),
    AccountKind("iam_role", "IAM role", service=True),
    AccountKind("service_linked_role", "Service-linked role", service=True),
    AccountKind("service_account", "Service account", service=True),
    AccountKind("service_account_key", "Service account key", service=True, credential=True),
    # Enrolling MFA is good behaviour: kept as context of the identity's chain, never raised.
    AccountKind("mfa_device", "MFA device", context_only=True),
    AccountKind("login_profile", "Console password", credential=True),
    AccountKind("access_key", "Access key", credential=True),
    # Entra ID / Office 365 families (issue 12). Weaker signals carry a fixed severity.
    AccountKind("guest_user", "Guest user (invitation)", severity=5),
    AccountKind("cross_tenant_user", "Cross-tenant synchronized user", severity=6),
    AccountKind("app_owner", "Application / service principal owner", severity=6),
    AccountKind("federated_credential", "Federated identity credential", service=True, credential=True),
    AccountKind("domain", "Domain added or verified", severity=5),
    AccountKind("domain_federation", "Domain federation settings", severity=9),
    # AWS IAM Identity Center (sso-directory / identitystore / sso event sources).
    AccountKind("identity_center_user", "Identity Center user"),
    AccountKind("identity_center_group", "Identity Center group", severity=5),
    AccountKind("permission_set", "Identity Center permission set", severity=5),
    AccountKind("account_assignment", "Identity Center account assignment", severity=6),
    # AWS Organizations: a new member account (or an invitation of an existing one) under the attacker's control.
    AccountKind("aws_account", "AWS account (Organizations)"),
    AccountKind("aws_account_invitation", "AWS account invitation (Organizations)", severity=6),
    # CreateUser of a non-IAM service (Transfer Family, ElastiCache, MemoryDB, Amazon MQ…): a service's own
    # user, not an AWS identity; raised at low severity unless the aws_non_iam_users setting turns it off.
    AccountKind("service_user", "Service user (not IAM)", severity=3),
    # CreateAccessKey by an IAM user for itself: a key rotation, weaker than a key made for another user.
    AccountKind("own_access_key", "Access key (own, rotation)", credential=True, severity=3),
    AccountKind("iam_group", "IAM group", context_only=True),
    AccountKind("workspace_user", "Google Workspace user"),
    AccountKind("other", "Other"),
)

KIND_BY_NAME: dict[str, AccountKind] = {k.name: k for k in KINDS}
ACCOUNT_KINDS: tuple[str, ...] = tuple(k.name for k in KINDS)
SERVICE_KINDS: frozenset[str] = frozenset(k.name for k in KINDS if k.service)
CREDENTIAL_KINDS: tuple[str, ...] = tuple(k.name for k in KINDS if k.credential)
CONTEXT_ONLY_KINDS: frozenset[str] = frozenset(k.name for k in KINDS if k.context_only)


def kind_of(name: str | None) -> AccountKind:
    """The catalogue entry for a kind name; unknown names are "other"."""
    return KIND_BY_NAME.get(name or "", KIND_BY_NAME["other"])


def severity_for(kind: str | None, base_severity: int) -> int:
    """A single detection's severity: the kind's fixed severity, else the configured base."""
    fixed = kind_of(kind).severity
    return base_severity if fixed is None else fixed
