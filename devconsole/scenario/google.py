"""Google items: service accounts under every method name Google writes, project- and service-account-level
policy grants read from the change (``serviceData.policyDelta``), and Google Workspace admin activity
(user creation, then a super-admin grant, an admin role, or a harmless group) — attacks and look-alikes."""

from __future__ import annotations

from .facts import CHAIN_PRIVILEGE_GRANT, GCP, GCP_PROJECT, UA_GCLOUD
from .feeds import Builder
from .model import ChainSpec, EventRef, Item, ref

GOOGLE_WORKSPACE = "Google Workspace"
WORKSPACE_DOMAIN = "acme.example"
HOUR_MS = 3_600_000


def _policy_delta(*adds: tuple[str, str]) -> dict:
    return {
        "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
        "policyDelta": {"bindingDeltas": [{"action": "ADD", "role": r, "member": m} for r, m in adds]},
    }


def _create_sa(b: Builder, t: int, method: str, actor: str, ip: str, account_id: str) -> tuple[dict, str]:
    email = f"{account_id}@{GCP_PROJECT}.iam.gserviceaccount.com"
    unique = str(b.rng.randrange(10**20, 10**21))
    record = b.gcp(
        t,
        method,
        actor,
        ip,
        UA_GCLOUD.format(command="create", invocation=b.uuid()),
        permission="iam.serviceAccounts.create",
        request={
            "@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountRequest",
            "account_id": account_id,
            "name": f"projects/{GCP_PROJECT}",
        },
        response={
            "@type": "type.googleapis.com/google.iam.admin.v1.ServiceAccount",
            "email": email,
            "name": f"projects/{GCP_PROJECT}/serviceAccounts/{email}",
            "project_id": GCP_PROJECT,
            "unique_id": unique,
        },
    )
    return record, email


def _gcp_items(b: Builder) -> tuple[list[Item], list[ChainSpec]]:
    items: list[Item] = []
    chains: list[ChainSpec] = []
    mallory, mallory_ip = "mallory.contractor@acme-partner.example", "192.0.2.140"

    # Service account and key under the IAM service's qualified method names, then the project's owner role
    # for it (Resource Manager v3's fully qualified SetIamPolicy): a persistent admin identity.
    t = b.at(8)
    sa, email = _create_sa(
        b, t, "google.iam.admin.v1.IAM.CreateServiceAccount", mallory, mallory_ip, "sync-agent"
    )
    key = b.gcp(
        t + 40_000,
        "google.iam.admin.v1.IAM.CreateServiceAccountKey",
        mallory,
        mallory_ip,
        UA_GCLOUD.format(command="keys.create", invocation=b.uuid()),
        resource_name=f"projects/-/serviceAccounts/{email}",
        permission="iam.serviceAccountKeys.create",
        request={"name": f"projects/-/serviceAccounts/{email}", "private_key_type": 2},
        response={"name": f"projects/{GCP_PROJECT}/serviceAccounts/{email}/keys/{b.hexstr(40)}"},
    )
    owner = b.gcp(
        t + 2 * HOUR_MS,
        "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
        mallory,
        mallory_ip,
        "google-cloud-sdk gcloud/470.0.0 command/gcloud.projects.add-iam-policy-binding",
        service="cloudresourcemanager.googleapis.com",
        resource_name=f"projects/{GCP_PROJECT}",
        resource_type="project",
        permission="resourcemanager.projects.setIamPolicy",
        request={
            "resource": f"projects/{GCP_PROJECT}",
            "policy": {
                "bindings": [
                    {
                        "role": "roles/owner",
                        "members": ["user:ops-lead@acme.example", f"serviceAccount:{email}"],
                    }
                ]
            },
        },
        service_data=_policy_delta(("roles/owner", f"serviceAccount:{email}")),
    )
    item = Item(
        "gcp-qualified-service-account-owner",
        "attack",
        "GCP service account and key (qualified method names), then project owner for it",
        GCP,
        mallory,
        mallory,
        "user",
        [
            ref(sa, "creation", True, True, "service_account", email),
            ref(key, "credential", True, True, "service_account_key", email),
            ref(owner, "privilege", False),
        ],
        is_service_account=True,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
    )
    items.append(item)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [item.key], item.events[:]))

    # A new service account others may impersonate: token creator on the account's own policy.
    t = b.at(6)
    sa2, email2 = _create_sa(
        b, t, "google.iam.admin.v1.CreateServiceAccount", mallory, mallory_ip, "ci-runner"
    )
    impersonate = b.gcp(
        t + 5 * 60_000,
        "google.iam.admin.v1.SetIAMPolicy",
        mallory,
        mallory_ip,
        UA_GCLOUD.format(command="add-iam-policy-binding", invocation=b.uuid()),
        resource_name=f"projects/{GCP_PROJECT}/serviceAccounts/{email2}",
        permission="iam.serviceAccounts.setIamPolicy",
        request={
            "resource": f"projects/{GCP_PROJECT}/serviceAccounts/{email2}",
            "policy": {
                "bindings": [{"role": "roles/iam.serviceAccountTokenCreator", "members": [f"user:{mallory}"]}]
            },
        },
        service_data=_policy_delta(("roles/iam.serviceAccountTokenCreator", f"user:{mallory}")),
    )
    item2 = Item(
        "gcp-service-account-impersonation-grant",
        "attack",
        "GCP service account created, then its creator made a token creator on it",
        GCP,
        mallory,
        mallory,
        "user",
        [ref(sa2, "creation", True, True, "service_account", email2), ref(impersonate, "privilege", False)],
        is_service_account=True,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
    )
    items.append(item2)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [item2.key], item2.events[:]))

    # Look-alike: a log shipper gets only roles/logging.logWriter in a project that has an owner. The whole
    # policy (request.policy) names the owner; the change (policyDelta) adds the logging role only.
    platform, platform_ip = "platform-bot@acme.example", "198.51.100.23"
    t = b.at(5)
    sa3, email3 = _create_sa(
        b, t, "google.iam.admin.v1.CreateServiceAccount", platform, platform_ip, "log-shipper"
    )
    writer = b.gcp(
        t + 3 * 60_000,
        "SetIamPolicy",
        platform,
        platform_ip,
        "google-api-go-client/0.5 Terraform/1.5.6",
        service="cloudresourcemanager.googleapis.com",
        resource_name=f"projects/{GCP_PROJECT}",
        resource_type="project",
        permission="resourcemanager.projects.setIamPolicy",
        request={
            "resource": f"projects/{GCP_PROJECT}",
            "policy": {
                "bindings": [
                    {"role": "roles/owner", "members": ["user:ops-lead@acme.example"]},
                    {"role": "roles/logging.logWriter", "members": [f"serviceAccount:{email3}"]},
                ]
            },
        },
        service_data=_policy_delta(("roles/logging.logWriter", f"serviceAccount:{email3}")),
    )
    items.append(
        Item(
            "benign-gcp-log-writer",
            "benign",
            "Terraform creates a log shipper service account with a logging role (project has an owner)",
            GCP,
            platform,
            platform,
            "user",
            [ref(sa3, "creation", True, True, "service_account", email3), ref(writer, "privilege", False)],
            is_service_account=True,
            allowlist={
                "actor_id": platform,
                "source_cidr": "198.51.100.23/32",
                "user_agent_regex": None,
                "justification": "Platform Terraform pipeline",
            },
            notes="single detection at base severity: the logging role is not an admin grant",
        )
    )
    return items, chains


def _workspace_items(b: Builder) -> tuple[list[Item], list[ChainSpec]]:
    items: list[Item] = []
    chains: list[ChainSpec] = []

    def mail(name: str) -> str:
        return f"{name}@{WORKSPACE_DOMAIN}"

    def workspace_item(
        key: str, kind: str, title: str, actor: str, events: list[EventRef], **kw: object
    ) -> Item:
        # The actor is known by its Google profile ID (immutable), as the detection keys it.
        actor_id = b.workspace_profile_id(actor)
        return Item(key, kind, title, GOOGLE_WORKSPACE, actor, actor_id, "USER", events, **kw)  # type: ignore[arg-type]

    attacker, attacker_ip = mail("it-helpdesk"), "192.0.2.188"
    # New user, then the super admin role three hours later.
    t = b.at(11)
    backup = mail("svc-backup-admin")
    c1 = b.workspace(t, "CREATE_USER", "USER_SETTINGS", attacker, attacker_ip, {"USER_EMAIL": backup})
    g1 = b.workspace(
        t + 3 * HOUR_MS,
        "ASSIGN_ROLE",
        "DELEGATED_ADMIN_SETTINGS",
        attacker,
        attacker_ip,
        {"ROLE_NAME": "_SEED_ADMIN_ROLE", "USER_EMAIL": backup},
    )
    item = workspace_item(
        "workspace-user-then-admin-role",
        "attack",
        "Google Workspace user created, then assigned the super admin role",
        attacker,
        [ref(c1, "creation", True, False, "workspace_user", backup), ref(g1, "privilege", False)],
        is_service_account=False,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
    )
    items.append(item)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [item.key], item.events[:]))

    # New user, then the legacy super admin grant twenty minutes later.
    t = b.at(9)
    shadow = mail("j.doe2")
    c2 = b.workspace(t, "CREATE_USER", "USER_SETTINGS", attacker, attacker_ip, {"USER_EMAIL": shadow})
    g2 = b.workspace(
        t + 20 * 60_000,
        "GRANT_ADMIN_PRIVILEGE",
        "USER_SETTINGS",
        attacker,
        attacker_ip,
        {"USER_EMAIL": shadow},
    )
    item2 = workspace_item(
        "workspace-user-super-admin",
        "attack",
        "Google Workspace user created, then made a super administrator",
        attacker,
        [ref(c2, "creation", True, False, "workspace_user", shadow), ref(g2, "privilege", False)],
        is_service_account=False,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
    )
    items.append(item2)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [item2.key], item2.events[:]))

    # Look-alike: HR onboarding creates a user and adds them to a club's group ("badminton" is no admin).
    hr, hr_ip = mail("people-ops"), "198.51.100.61"
    t = b.at(4)
    hire = mail("new.hire")
    c3 = b.workspace(t, "CREATE_USER", "USER_SETTINGS", hr, hr_ip, {"USER_EMAIL": hire})
    g3 = b.workspace(
        t + 2 * 60_000,
        "ADD_GROUP_MEMBER",
        "GROUP_SETTINGS",
        hr,
        hr_ip,
        {"USER_EMAIL": hire, "GROUP_EMAIL": mail("badminton-club")},
    )
    items.append(
        workspace_item(
            "benign-workspace-onboarding",
            "benign",
            "HR onboarding: a new user added to the badminton club's group",
            hr,
            [ref(c3, "creation", True, False, "workspace_user", hire), ref(g3, "privilege", False)],
            is_service_account=False,
            allowlist={
                "actor_id": b.workspace_profile_id(hr),
                "source_cidr": "198.51.100.61/32",
                "user_agent_regex": None,
                "justification": "HR onboarding account",
            },
            notes="single detection at base severity: the group is not an admin group",
        )
    )
    return items, chains


def google_items(b: Builder, chains: list[ChainSpec]) -> list[Item]:
    """The Google Cloud and Google Workspace items; the chains they form are appended to ``chains``."""
    gcp_items, gcp_chains = _gcp_items(b)
    workspace_items, workspace_chains = _workspace_items(b)
    chains.extend(gcp_chains + workspace_chains)
    return gcp_items + workspace_items
