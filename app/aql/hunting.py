"""Hunting queries: follow-on activity after a cloud account creation (playbook step 7).

For one platform and one creation (actor, target, time), each query looks for a kind of follow-on
persistence — access keys, login profiles, policy attachments, role membership, consent, credential
additions — done by the same actor or against (or by) the new identity within the next 24 hours
(detection-and-tuning.md §4, steps 3 and 7). Pure functions: the actor and target come from logs and are
attacker-controlled, so they reach AQL only through `app.aql.literals`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.aql import literals as lit
from app.aql.detection import (
    AWS,
    AZURE_AD,
    DEFAULT_LOG_SOURCE_TYPE_IDS,
    ENTRA_APP_CREDENTIAL_PATTERNS,
    GCP,
    GOOGLE_WORKSPACE,
    OFFICE_365,
    PLATFORMS,
    office_365_names,
)
from app.aql.offense import minute_time_clause

HOUR_MS = 3_600_000
# How far after the creation a follow-on step is looked for, and how far before (sibling events such as
# "Add application" come seconds before "Add service principal"; clocks of two feeds disagree a little).
FOLLOW_ON_WINDOW_MS = 24 * HOUR_MS
LEAD_MS = 1 * HOUR_MS
DEFAULT_ROW_LIMIT = 500
# Custom property that holds the account acted upon (the detection query reads the same property).
DEFAULT_TARGET_PROPERTY = "Account Name"


@dataclass(frozen=True)
class HuntingTopic:
    """One kind of follow-on activity on one platform: the event (QID) names that show it."""

    key: str
    title: str
    platform: str
    event_names: tuple[str, ...]
    why: str
    attack: str  # ATT&CK technique the activity maps to


@dataclass(frozen=True)
class HuntingQuery:
    """A ready-to-run AQL query for one topic, with what it pivots on."""

    key: str
    title: str
    platform: str
    why: str
    attack: str
    aql: str


def _topics() -> tuple[HuntingTopic, ...]:
    entra_role = (
        "Add member to role",
        "Add eligible member to role",
        "Add app role assignment to service principal",
        "Add app role assignment grant to user",
        "Add member to group",
        "Add owner to application",
        "Add owner to service principal",
        "Add scoped member to role",
        "Add member to role in PIM completed (permanent)",
        "Add member to role in PIM completed (timebound)",
        "Add eligible member to role in PIM completed (permanent)",
        "Add eligible member to role in PIM completed (timebound)",
        "Add member to role completed (PIM activation)",
    )
    entra_consent = ("Consent to application", "Add delegated permission grant", "Add OAuth2PermissionGrant")
    entra_creds = (
        "Add service principal credentials",
        # every dash and trailing-space spelling (`_` is the dash; app/aql/detection.py)
        *ENTRA_APP_CREDENTIAL_PATTERNS,
        # federated identity credentials show as "Update application" (FederatedIdentityCredentials)
        "Update application",
        "User registered security info",
        "Admin registered security info",
        "Reset user password",
        "Reset password (by admin)",
    )
    entra_guests = ("Invite external user", "Redeem external user invite")
    entra_domains = (
        "Add unverified domain",
        "Add verified domain",
        "Verify domain",
        "Set domain authentication",
        "Set federation settings on domain",
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
    )
    return (
        HuntingTopic(
            "aws-access-keys",
            "Access keys created",
            AWS,
            ("CreateAccessKey", "UpdateAccessKey"),
            "Long-term AKIA keys give the new identity API access that survives a password reset.",
            "T1098.001",
        ),
        HuntingTopic(
            "aws-login-profiles",
            "Console passwords (login profiles)",
            AWS,
            ("CreateLoginProfile", "UpdateLoginProfile"),
            "A login profile turns an API-only user into a console user.",
            "T1098",
        ),
        HuntingTopic(
            "aws-policy-attachments",
            "Policy attachments",
            AWS,
            (
                "AttachUserPolicy",
                "AttachRolePolicy",
                "AttachGroupPolicy",
                "PutUserPolicy",
                "PutRolePolicy",
                "PutGroupPolicy",
                "CreatePolicy",
                "CreatePolicyVersion",
                "SetDefaultPolicyVersion",
            ),
            "Privilege grants after a creation are the strongest sign of a backdoor account.",
            "T1098.003",
        ),
        HuntingTopic(
            "aws-role-membership",
            "Group membership and role trust",
            AWS,
            ("AddUserToGroup", "UpdateAssumeRolePolicy", "CreateRole"),
            "Group membership and trust-policy edits grant access indirectly; check trust "
            "policies for external account principals.",
            "T1098.003",
        ),
        HuntingTopic(
            "aws-credential-additions",
            "Other credentials (MFA, SSH, federation)",
            AWS,
            (
                "CreateVirtualMFADevice",
                "EnableMFADevice",
                "UploadSSHPublicKey",
                "UploadSigningCertificate",
                "CreateServiceSpecificCredential",
                "CreateSAMLProvider",
                "CreateOpenIDConnectProvider",
            ),
            "An attacker-owned MFA device or identity provider keeps access after key rotation.",
            "T1098.001",
        ),
        HuntingTopic(
            "aws-new-identity-use",
            "Activity by the new identity",
            AWS,
            ("ConsoleLogin", "GetCallerIdentity", "AssumeRole"),
            "First use of the new identity (the chain's last step).",
            "T1078.004",
        ),
        HuntingTopic(
            "aws-identity-center",
            "IAM Identity Center users, groups, permission sets and assignments",
            AWS,
            (
                "CreateUser",
                "CreateGroup",
                "CreateGroupMembership",
                "AddMemberToGroup",
                "CreatePermissionSet",
                "AttachManagedPolicyToPermissionSet",
                "PutInlinePolicyToPermissionSet",
                "CreateAccountAssignment",
            ),
            "An Identity Center user or group given a permission set on an account signs in to every account "
            "it is assigned; check the payload's eventSource (sso-directory, identitystore, sso).",
            "T1136.003",
        ),
        HuntingTopic(
            "aws-organizations",
            "Organizations accounts and invitations",
            AWS,
            (
                "CreateAccount",
                "CreateGovCloudAccount",
                "InviteAccountToOrganization",
                "AcceptHandshake",
                "LeaveOrganization",
            ),
            "A member account created or invited by the attacker comes with an OrganizationAccountAccessRole "
            "the management account can assume.",
            "T1136.003",
        ),
        HuntingTopic(
            "entra-role-membership",
            "Role membership and app role assignments",
            AZURE_AD,
            entra_role,
            "Directory roles and app roles are how a new identity gains privilege.",
            "T1098.003",
        ),
        HuntingTopic(
            "entra-consent",
            "Consent grants",
            AZURE_AD,
            entra_consent,
            "Consent gives an application delegated access to user data.",
            "T1098.003",
        ),
        HuntingTopic(
            "entra-credential-additions",
            "Credential additions",
            AZURE_AD,
            entra_creds,
            "Secrets or certificates on a service principal, or new authentication methods on a "
            "user, keep access after the password changes.",
            "T1098.001",
        ),
        HuntingTopic(
            "entra-guests",
            "Guest invitations and redemptions",
            AZURE_AD,
            entra_guests,
            "Invited guests are accounts from outside the tenant; a redemption followed by a role grant is "
            "a backdoor with a foreign password.",
            "T1136.003",
        ),
        HuntingTopic(
            "entra-domains-federation",
            "Domains and federation",
            AZURE_AD,
            entra_domains,
            "A domain added, verified and federated to an outside issuer lets that issuer sign in as any "
            "user of the domain (the AADInternals backdoor); managed identities trusting outside issuers too.",
            "T1484.002",
        ),
        HuntingTopic(
            "o365-role-membership",
            "Role membership and app role assignments",
            OFFICE_365,
            tuple(n + "." for n in entra_role),
            "The Unified Audit Log copy of Entra directory changes (operation names end in '.').",
            "T1098.003",
        ),
        HuntingTopic(
            "o365-consent",
            "Consent grants",
            OFFICE_365,
            tuple(n + "." for n in entra_consent),
            "Consent gives an application delegated access to mailboxes and files.",
            "T1098.003",
        ),
        HuntingTopic(
            "o365-credential-additions",
            "Credential additions and mailbox persistence",
            OFFICE_365,
            (*(n + "." for n in entra_creds), "New-InboxRule", "Set-Mailbox", "Add-MailboxPermission"),
            "Credentials on apps and users, and mailbox rules or forwarding set after the creation.",
            "T1098.002",
        ),
        HuntingTopic(
            "o365-guests",
            "Guest invitations and redemptions",
            OFFICE_365,
            office_365_names(entra_guests),
            "The Unified Audit Log copy of guest invitations and redemptions.",
            "T1136.003",
        ),
        HuntingTopic(
            "o365-domains-federation",
            "Domains and federation",
            OFFICE_365,
            office_365_names(entra_domains),
            "The Unified Audit Log copy of domain and federation changes.",
            "T1484.002",
        ),
        HuntingTopic(
            "gcp-keys",
            "Service account keys",
            GCP,
            (
                "google.iam.admin.v1.CreateServiceAccountKey",
                "google.iam.admin.v1.UploadServiceAccountKey",
                # Bare verbs also match every qualified form (`%.CreateServiceAccountKey`, below).
                "CreateServiceAccountKey",
                "UploadServiceAccountKey",
            ),
            "User-managed keys are long-lived credentials for the service account.",
            "T1098.001",
        ),
        HuntingTopic(
            "gcp-policy-attachments",
            "IAM policy bindings",
            GCP,
            (
                "SetIamPolicy",
                "google.iam.admin.v1.SetIAMPolicy",
                "google.iam.admin.v1.CreateRole",
                "google.iam.admin.v1.UpdateRole",
            ),
            "Role bindings grant the new service account privileges on projects and resources.",
            "T1098.003",
        ),
        HuntingTopic(
            "gcp-impersonation",
            "Token minting and impersonation",
            GCP,
            ("GenerateAccessToken", "GenerateIdToken", "SignBlob", "SignJwt"),
            "Short-lived tokens minted for the service account show it being used.",
            "T1078.004",
        ),
        # Admin SDK Reports API event names (admin application); UNCONFIRMED as QRadar QID names.
        HuntingTopic(
            "workspace-admin-grants",
            "Admin roles and admin groups",
            GOOGLE_WORKSPACE,
            ("GRANT_ADMIN_PRIVILEGE", "ASSIGN_ROLE", "GRANT_DELEGATED_ADMIN_PRIVILEGES", "ADD_GROUP_MEMBER"),
            "Super admin, an admin role or an admin group for the new user makes it a persistent administrator.",
            "T1098.003",
        ),
        HuntingTopic(
            "workspace-admin-roles",
            "Custom admin roles",
            GOOGLE_WORKSPACE,
            ("CREATE_ROLE", "ADD_PRIVILEGE", "UPDATE_ROLE"),
            "A custom role with powerful privileges prepares an admin grant that looks harmless by name.",
            "T1098.003",
        ),
        HuntingTopic(
            "workspace-access",
            "Passwords, 2-Step Verification and API access",
            GOOGLE_WORKSPACE,
            ("CHANGE_PASSWORD", "TURN_OFF_2_STEP_VERIFICATION", "AUTHORIZE_API_CLIENT_ACCESS"),
            "A password set by an admin, 2SV turned off or domain-wide delegation gives lasting access.",
            "T1098.001",
        ),
    )


TOPICS: tuple[HuntingTopic, ...] = _topics()
TOPIC_KEYS: frozenset[str] = frozenset(t.key for t in TOPICS)


def topics_for(platform: str) -> list[HuntingTopic]:
    return [t for t in TOPICS if t.platform == platform]


def _name_match(names: Sequence[str], platform: str) -> str:
    # GCP method names arrive fully qualified on some DSMs ("google.iam.v1.IAMPolicy.SetIamPolicy") and
    # short on others, so GCP also matches the suffix; elsewhere ILIKE without wildcards is a
    # case-insensitive equality.
    terms = []
    for name in names:
        terms.append(f"QIDNAME(qid) ILIKE {lit.string(name)}")
        if platform == GCP and "." not in name:
            terms.append(f"QIDNAME(qid) ILIKE {lit.string('%.' + name)}")
    return "(" + " OR ".join(terms) + ")"


def _same_value(column: str, *values: str) -> str:
    # Case-insensitive equality without LIKE wildcards: an underscore in "svc_backup" must not match
    # "svcXbackup", and a '%' in a hostile value must not widen the hunt.
    unique = list(dict.fromkeys(v.lower() for v in values))
    if len(unique) == 1:
        return f"LOWER({column}) = {lit.string(unique[0])}"
    return f"LOWER({column}) IN {lit.string_list(unique)}"


_AWS_SESSION_ARN = re.compile(r"arn:aws[\w-]*:sts::\d{12}:assumed-role/(.+)")
_AWS_USER_ARN = re.compile(r"arn:aws[\w-]*:iam::\d{12}:user/(?:.*/)?([^/]+)")


def actor_names(actor: str) -> tuple[str, ...]:
    """The actor as the detection shows it (an ARN from the payload) and as QRadar's CloudTrail DSM puts
    it in ``username`` (``Role/session`` for an assumed role, the user name for an IAM user)."""
    names = [actor]
    if (m := _AWS_SESSION_ARN.fullmatch(actor)) or (m := _AWS_USER_ARN.fullmatch(actor)):
        names.append(m.group(1))
    return tuple(names)


def pivot_clause(
    actor: str | None, target: str | None, target_property: str | None = DEFAULT_TARGET_PROPERTY
) -> str | None:
    """``(actor did it OR it was done to / by the target)``; None when neither is known."""
    terms = []
    if actor:
        terms.append(_same_value("username", *actor_names(actor)))
    if target:
        terms.append(_same_value("username", target))
        if target_property:
            terms.append(_same_value(lit.identifier(target_property), target))
    return "(" + " OR ".join(terms) + ")" if terms else None


def _columns(target_property: str | None) -> str:
    cols = [
        "DATEFORMAT(starttime, 'yyyy-MM-dd HH:mm:ss') AS event_time",
        "starttime",
        "QIDNAME(qid) AS event_name",
        "LOGSOURCETYPENAME(devicetype) AS log_source_type",
        "username AS actor",
    ]
    if target_property:
        cols.append(f"{lit.identifier(target_property)} AS target_account")
    cols += ["sourceip AS source_ip", "LOGSOURCENAME(logsourceid) AS log_source"]
    return ", ".join(cols)


def hunting_query(
    topic: HuntingTopic,
    *,
    actor: str | None,
    target: str | None,
    around_ms: int | None,
    type_ids: Sequence[int],
    target_property: str | None = DEFAULT_TARGET_PROPERTY,
    row_limit: int = DEFAULT_ROW_LIMIT,
) -> str:
    """The AQL for one topic.

    With ``around_ms`` (the creation time) the window is [around − 1 h, around + 24 h), applied both as
    an exact ``starttime`` filter and as a START/STOP search window; without it, ``LAST 24 HOURS``.
    With neither actor nor target the query lists the topic's events of the window for everyone.
    """
    where = [f"devicetype IN {lit.integer_list(type_ids)}", _name_match(topic.event_names, topic.platform)]
    pivot = pivot_clause(actor, target, target_property)
    if pivot:
        where.append(pivot)
    if around_ms is not None:
        start_ms = max(0, around_ms - LEAD_MS)
        stop_ms = around_ms + FOLLOW_ON_WINDOW_MS
        where.append(f"starttime >= {lit.epoch_ms(start_ms)} AND starttime < {lit.epoch_ms(stop_ms)}")
        time_clause = minute_time_clause(start_ms, stop_ms - 1)
    else:
        time_clause = "LAST 24 HOURS"
    return (
        f"SELECT {_columns(target_property)} FROM events"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY starttime ASC"
        f" LIMIT {lit.integer(row_limit, minimum=1, maximum=10_000)}"
        f" {time_clause}"
    )


def hunting_queries(
    platform: str,
    *,
    actor: str | None = None,
    target: str | None = None,
    around_ms: int | None = None,
    type_ids: Mapping[str, Sequence[int]] | None = None,
    target_property: str | None = DEFAULT_TARGET_PROPERTY,
    row_limit: int = DEFAULT_ROW_LIMIT,
) -> list[HuntingQuery]:
    """Every hunting query for one platform (unknown platform → ValueError)."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
    ids = (type_ids or DEFAULT_LOG_SOURCE_TYPE_IDS).get(platform) or DEFAULT_LOG_SOURCE_TYPE_IDS[platform]
    return [
        HuntingQuery(
            t.key,
            t.title,
            t.platform,
            t.why,
            t.attack,
            hunting_query(
                t,
                actor=actor,
                target=target,
                around_ms=around_ms,
                type_ids=ids,
                target_property=target_property,
                row_limit=row_limit,
            ),
        )
        for t in topics_for(platform)
    ]


def find_query(key: str, **kwargs: object) -> HuntingQuery:
    """The query for one topic key (KeyError when unknown)."""
    topic = next((t for t in TOPICS if t.key == key), None)
    if topic is None:
        raise KeyError(key)
    return next(q for q in hunting_queries(topic.platform, **kwargs) if q.key == key)  # type: ignore[arg-type]
