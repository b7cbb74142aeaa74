"""The validation guide: which tests to run, the signal each should produce, and whether the app saw it.

Tests: the seed's four (its "Testing Methodology") and the upstream Atomic Red Team T1136.003 atomics
#1–#3 with the follow-on T1098.001 / T1098.003 atomics (detection-and-tuning.md §2). A signal is a set of
event names on one platform, optionally with the account name the test creates; the coverage check asks
the store whether the app has recorded every one of those events (as a detection, a merged twin or a
follow-on event) in the chosen window.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.aql.detection import (
    AWS,
    AZURE_AD,
    DEFAULT_EVENT_NAMES,
    DEFAULT_FOLLOW_ON_EVENT_NAMES,
    GCP,
    GOOGLE_WORKSPACE,
    OFFICE_365,
    ilike_matches,
)
from app.store import dashboard as store

ART_T1136_003 = "https://github.com/redcanaryco/atomic-red-team/blob/master/atomics/T1136.003/T1136.003.md"
ART_T1098_001 = "https://github.com/redcanaryco/atomic-red-team/blob/master/atomics/T1098.001/T1098.001.md"
ART_T1098_003 = "https://github.com/redcanaryco/atomic-red-team/blob/master/atomics/T1098.003/T1098.003.md"


@dataclass(frozen=True)
class ValidationTest:
    key: str
    origin: str  # "seed", "atomic" or "coverage" (the product's own check of a family no atomic covers)
    name: str
    technique: str
    guid: str | None
    platform: str
    how: str  # what to run (the behaviour; commands live upstream)
    expected: str  # the expected telemetry
    event_names: tuple[str, ...]  # every one must be seen
    # Substring of the created account's name when the test fixes it (what tells two "Add user" tests
    # apart); the UPNs of the Entra atomics are inputs, so the guide says which ones to use.
    target_hint: str | None = None
    link: str | None = None


TESTS: tuple[ValidationTest, ...] = (
    ValidationTest(
        "seed-1",
        "seed",
        "Create Azure AD User via Azure CLI",
        "T1136.003",
        None,
        AZURE_AD,
        "az ad user create with display name df00tech-test-user.",
        "Azure AD AuditLogs: OperationName 'Add user', Result success, InitiatedBy.user.userPrincipalName = "
        "your admin UPN, TargetResources[0].displayName 'df00tech-test-user'; within 1–2 minutes.",
        ("Add user",),
        "df00tech-test-user",
    ),
    ValidationTest(
        "seed-2",
        "seed",
        "Create Azure Service Principal via PowerShell (AADInternals pattern)",
        "T1136.003",
        None,
        AZURE_AD,
        "Register an application, create its service principal and add a credential from PowerShell.",
        "Azure AD AuditLogs: 'Add application', then 'Add service principal', then 'Add service principal "
        "credentials', sharing a CorrelationId or the same minute and initiator.",
        ("Add application", "Add service principal", "Add service principal credentials"),
    ),
    ValidationTest(
        "seed-3",
        "seed",
        "Create AWS IAM User with Access Keys",
        "T1136.003",
        None,
        AWS,
        "aws iam create-user --user-name df00tech-atomic-test-user, then aws iam create-access-key.",
        "CloudTrail CreateUser with requestParameters.userName 'df00tech-atomic-test-user', then "
        "CreateAccessKey for the same userName, same sourceIPAddress and userIdentity.arn.",
        ("CreateUser", "CreateAccessKey"),
        "df00tech-atomic-test-user",
    ),
    ValidationTest(
        "seed-4",
        "seed",
        "Create Azure AD User via AADInternals PowerShell Module",
        "T1136.003",
        None,
        AZURE_AD,
        "New-AADIntUser from the AADInternals module, authenticated as a user.",
        "Azure AD AuditLogs 'Add user', Result success, InitiatedBy = the user's UPN (not an application). "
        "On the host: Sysmon 1 / PowerShell 4104 with 'AADInternals' and 'New-AADIntUser' (outside this "
        "app).",
        ("Add user",),
    ),
    ValidationTest(
        "art-t1136.003-1",
        "atomic",
        "AWS - Create a new IAM user",
        "T1136.003",
        "8d1c2368-b503-40c9-9057-8e42f21c58ad",
        AWS,
        "aws iam create-user --user-name atomicredteam (cleanup: aws iam delete-user).",
        "CloudTrail CreateUser (+ DeleteUser on cleanup); userAgent aws-cli/…",
        ("CreateUser",),
        "atomicredteam",
        ART_T1136_003,
    ),
    ValidationTest(
        "art-t1136.003-2",
        "atomic",
        "Azure AD - Create a new user",
        "T1136.003",
        "e62d23ef-3153-4837-8625-fa4a3829134d",
        AZURE_AD,
        "New-AzureADUser (display atomicredteam, UPN atomicredteam@yourdomain.com); deprecated AzureAD "
        "module.",
        "AuditLogs 'Add user' (+ 'Delete user' on cleanup); Unified Audit Log 'Add user.'",
        ("Add user",),
        "atomicredteam@",
        ART_T1136_003,
    ),
    ValidationTest(
        "art-t1136.003-3",
        "atomic",
        "Azure AD - Create a new user via Azure CLI",
        "T1136.003",
        "228c7498-be31-48e9-83b7-9cb906504ec8",
        AZURE_AD,
        "az ad user create --display-name … --password … --user-principal-name …",
        "Same as #2; the initiating app is the Azure CLI. Give it the UPN atomicredteam.cli@<your domain> "
        "so the check can tell it from #2.",
        ("Add user",),
        "atomicredteam.cli",
        ART_T1136_003,
    ),
    ValidationTest(
        "art-t1098.001-aws",
        "atomic",
        "AWS - Create Access Key and Secret Key",
        "T1098.001",
        "8822c3b0-d9f9-4daf-a043-491160a31122",
        AWS,
        "aws iam create-access-key for an existing user.",
        "CloudTrail CreateAccessKey.",
        ("CreateAccessKey",),
        None,
        ART_T1098_001,
    ),
    ValidationTest(
        "art-t1098.001-sp",
        "atomic",
        "Azure AD - adding service principal credentials (SP hijack)",
        "T1098.001",
        "b8e747c3-bdf7-4d71-bce2-f1df2a057406",
        AZURE_AD,
        "Add a certificate or secret to an existing service principal.",
        "AuditLogs 'Add service principal credentials'.",
        ("Add service principal credentials",),
        None,
        ART_T1098_001,
    ),
    ValidationTest(
        "art-t1098.001-app",
        "atomic",
        "Azure AD - adding application credentials (app registration hijack)",
        "T1098.001",
        "a12b5531-acab-4618-a470-0dafb294a87a",
        AZURE_AD,
        "Add a secret to an existing application registration.",
        "AuditLogs 'Update application – Certificates and secrets management'.",
        ("Update application \u2013 Certificates and secrets management",),
        None,
        ART_T1098_001,
    ),
    ValidationTest(
        "art-t1098.003-role",
        "atomic",
        "Azure AD - add Company Administrator role to a user",
        "T1098.003",
        "4d77f913-56f5-4a14-b4b1-bf7bb24298ad",
        AZURE_AD,
        "Add a user to the Global (Company) Administrator role.",
        "AuditLogs 'Add member to role'.",
        ("Add member to role",),
        None,
        ART_T1098_003,
    ),
    ValidationTest(
        "art-t1098.003-bec",
        "atomic",
        "Simulate BEC: password reset + admin role",
        "T1098.003",
        "14f3af20-61f1-45b8-ad31-4637815f3f44",
        AZURE_AD,
        "Reset a user's password and add the user to an administrator role.",
        "AuditLogs 'Reset user password' and 'Add member to role'.",
        ("Reset user password", "Add member to role"),
        None,
        ART_T1098_003,
    ),
    # The product's own coverage checks (origin "coverage"): each family the detection collects beyond the
    # seed and Atomic Red Team, with what the app must record.
    ValidationTest(
        "cov-aws-identity-center",
        "coverage",
        "AWS - IAM Identity Center user with an account assignment",
        "T1136.003",
        None,
        AWS,
        "aws identitystore create-user, then aws sso-admin create-account-assignment for that user's ID.",
        "CloudTrail CreateUser (eventSource identitystore or sso-directory) and CreateAccountAssignment "
        "(eventSource sso, principalId = the new user's ID): an 'Identity Center user' detection chained "
        "with the assignment.",
        ("CreateUser", "CreateAccountAssignment"),
    ),
    ValidationTest(
        "cov-aws-permission-set",
        "coverage",
        "AWS - IAM Identity Center permission set",
        "T1098.003",
        None,
        AWS,
        "aws sso-admin create-permission-set.",
        "CloudTrail CreatePermissionSet (eventSource sso): a severity-5 'Identity Center permission set'.",
        ("CreatePermissionSet",),
    ),
    ValidationTest(
        "cov-aws-organizations",
        "coverage",
        "AWS - Organizations member account and invitation",
        "T1136.003",
        None,
        AWS,
        "aws organizations create-account, and aws organizations invite-account-to-organization.",
        "CloudTrail CreateAccount and InviteAccountToOrganization (eventSource organizations).",
        ("CreateAccount", "InviteAccountToOrganization"),
    ),
    ValidationTest(
        "cov-aws-non-iam-user",
        "coverage",
        "AWS - non-IAM CreateUser (Transfer Family)",
        "T1136.003",
        None,
        AWS,
        "aws transfer create-user on an SFTP server.",
        "CloudTrail CreateUser with eventSource transfer: a severity-3 'Service user (not IAM)', never an IAM "
        "user (setting aws_non_iam_users turns it off).",
        ("CreateUser",),
    ),
    ValidationTest(
        "cov-aws-own-access-key",
        "coverage",
        "AWS - access key rotation (own key)",
        "T1098.001",
        None,
        AWS,
        "As an IAM user, aws iam create-access-key without --user-name.",
        "CloudTrail CreateAccessKey without requestParameters.userName: a severity-3 'Access key (own, "
        "rotation)'; a key for another user stays at the base severity.",
        ("CreateAccessKey",),
    ),
    ValidationTest(
        "cov-aws-mfa-context",
        "coverage",
        "AWS - MFA device enrolment (context only)",
        "T1098.001",
        None,
        AWS,
        "aws iam create-virtual-mfa-device, then aws iam enable-mfa-device.",
        "CloudTrail CreateVirtualMFADevice and EnableMFADevice: recorded (in the chain of a user created "
        "shortly before), never raised.",
        ("CreateVirtualMFADevice", "EnableMFADevice"),
    ),
    ValidationTest(
        "cov-aws-admin-group",
        "coverage",
        "AWS - group learned to carry admin, new user added to it",
        "T1098.003",
        None,
        AWS,
        "aws iam attach-group-policy (AdministratorAccess) to a group of any name, create a user, "
        "aws iam add-user-to-group.",
        "CloudTrail AttachGroupPolicy then AddUserToGroup: the new user's chain is an admin privilege grant.",
        ("AttachGroupPolicy", "AddUserToGroup"),
    ),
    ValidationTest(
        "cov-aws-customer-policy",
        "coverage",
        "AWS - customer-managed admin policy attached to a new user",
        "T1098.003",
        None,
        AWS,
        "aws iam create-policy with Action '*' (or 'IAM:*', or NotAction), create a user, aws iam "
        "attach-user-policy of the new ARN.",
        "CloudTrail CreatePolicy then AttachUserPolicy: judged by the policy's document, an admin grant.",
        ("CreatePolicy", "AttachUserPolicy"),
    ),
    ValidationTest(
        "coverage-gcp-service-account-token-creator",
        "coverage",
        "GCP - service account created, then its creator made a token creator on it",
        "T1136.003",
        None,
        GCP,
        "gcloud iam service-accounts create ci-runner, then gcloud iam service-accounts add-iam-policy-binding "
        "ci-runner@<project>.iam.gserviceaccount.com --member=user:<you> "
        "--role=roles/iam.serviceAccountTokenCreator (cleanup: gcloud iam service-accounts delete).",
        "Cloud Audit Logs (Admin Activity) google.iam.admin.v1.CreateServiceAccount, then "
        "google.iam.admin.v1.SetIAMPolicy on the account with serviceData.policyDelta adding the role; "
        "one privilege-grant chain.",
        ("google.iam.admin.v1.CreateServiceAccount", "google.iam.admin.v1.SetIAMPolicy"),
        "ci-runner",
    ),
    ValidationTest(
        "coverage-workspace-user-admin-role",
        "coverage",
        "Google Workspace - user created, then assigned an admin role",
        "T1136.003",
        None,
        GOOGLE_WORKSPACE,
        "Create the user svc-backup-admin@<domain> in the Admin console (or gam create user), then assign "
        "it an admin role (gam create admin svc-backup-admin@<domain> <role> customer); delete it after.",
        "Admin audit log (Reports API, admin application) CREATE_USER, then ASSIGN_ROLE with USER_EMAIL = "
        "the new user; one privilege-grant chain. Admin log events can take minutes to hours to arrive.",
        ("CREATE_USER", "ASSIGN_ROLE"),
        "svc-backup-admin",
    ),
)

# Entra ID / Office 365 persistence families (issue 12): behaviours to exercise in a test tenant, each
# with the audit operation(s) the app must record. No upstream atomic covers them; the reference names
# the operations (detection-and-tuning.md §1.1, §4 step 7; the domain and PIM names are UNCONFIRMED there).
ENTRA_FAMILY_TESTS: tuple[ValidationTest, ...] = (
    ValidationTest(
        "entra-guest-invite",
        "coverage",
        "Invite an external guest and redeem the invitation",
        "T1136.003",
        None,
        AZURE_AD,
        "Invite a guest (New-MgInvitation or the portal), then accept the invitation as that guest.",
        "AuditLogs 'Invite external user', then 'Redeem external user invite' for the same user.",
        ("Invite external user", "Redeem external user invite"),
    ),
    ValidationTest(
        "entra-app-credential",
        "coverage",
        "Add a client secret to an application",
        "T1098.001",
        None,
        AZURE_AD,
        "Add a secret to an application registration (portal or Add-MgApplicationPassword).",
        "AuditLogs 'Update application – Certificates and secrets management' (any dash, maybe a trailing "
        "space).",
        ("Update application \u2013 Certificates and secrets management",),
    ),
    ValidationTest(
        "entra-owner-added",
        "coverage",
        "Add an owner to an application",
        "T1098",
        None,
        AZURE_AD,
        "Make a test user owner of an application registration.",
        "AuditLogs 'Add owner to application'.",
        ("Add owner to application",),
    ),
    ValidationTest(
        "entra-federated-credential",
        "coverage",
        "Add a federated identity credential to an application",
        "T1098.001",
        None,
        AZURE_AD,
        "Add a federated credential (e.g. GitHub Actions issuer) to an application registration.",
        "AuditLogs 'Update application' with modified property FederatedIdentityCredentials.",
        ("Update application",),
    ),
    ValidationTest(
        "entra-domain-federation",
        "coverage",
        "Add, verify and federate a domain (AADInternals backdoor, in a lab tenant)",
        "T1484.002",
        None,
        AZURE_AD,
        "Add a test domain, verify it, then set its authentication to federated.",
        "AuditLogs 'Add unverified domain', 'Verify domain', 'Set domain authentication' and/or "
        "'Set federation settings on domain'.",
        ("Add unverified domain", "Verify domain", "Set domain authentication"),
    ),
    ValidationTest(
        "entra-pim-eligible",
        "coverage",
        "Make a test user eligible for an administrator role through PIM",
        "T1098.003",
        None,
        AZURE_AD,
        "Assign a test user as eligible for Privileged Role Administrator (permanent) in PIM.",
        "AuditLogs 'Add eligible member to role in PIM completed (permanent)'; judged admin by the role's "
        "template ID.",
        ("Add eligible member to role in PIM completed (permanent)",),
    ),
)
TESTS = TESTS + ENTRA_FAMILY_TESTS

TEST_KEYS = frozenset(t.key for t in TESTS)


def _platforms(platform: str) -> tuple[str, ...]:
    # An Entra ID change can reach QRadar only through the Office 365 feed (its "Add user." copy).
    return (AZURE_AD, OFFICE_365) if platform == AZURE_AD else (platform,)


def collected(test: ValidationTest) -> bool:
    """Whether the app's default event set includes every event the test produces (if not, the app can
    never mark it seen — the coverage check says so instead of blaming the test)."""
    patterns = {
        n.lower().rstrip(". ")
        for p in _platforms(test.platform)
        for n in (*DEFAULT_EVENT_NAMES.get(p, ()), *DEFAULT_FOLLOW_ON_EVENT_NAMES.get(p, ()))
    }
    # Configured names are ILIKE patterns (the credential operation's dash is a `_`).
    return all(any(ilike_matches(p, n.lower().rstrip(". ")) for p in patterns) for n in test.event_names)


def coverage(conn: object, since_ms: int, until_ms: int) -> list[dict[str, object]]:
    """For every test, whether each of its event names was recorded in [since_ms, until_ms)."""
    out = []
    for t in TESTS:
        found = {
            name: store.signal_count(
                conn,
                platforms=_platforms(t.platform),
                event_name=name,
                target_hint=t.target_hint,
                since_ms=since_ms,
                until_ms=until_ms,
            )
            for name in t.event_names
        }
        out.append(
            {
                "key": t.key,
                "origin": t.origin,
                "name": t.name,
                "technique": t.technique,
                "guid": t.guid,
                "platform": t.platform,
                "target_hint": t.target_hint,
                "signals": [{"event_name": n, "count": c, "seen": c > 0} for n, c in found.items()],
                "seen": all(c > 0 for c in found.values()),
                "collected": collected(t),
            }
        )
    return out
