"""The attacks: the seed methodology's and Atomic Red Team's account creations, the chains and privilege
follow-ons they start, GCP and AWS backdoors, hostile names; with the offenses QRadar raised for them.
The order of the steps is the order their random ids are drawn: reordering them changes every id."""

from __future__ import annotations

import json

from .facts import (
    APPID_AAD_POWERSHELL,
    APPID_AZURE_CLI,
    APPID_MS_GRAPH,
    CHAIN_AWS_USER_CREDENTIAL,
    CHAIN_ENTRA_APP_SP_CREDENTIAL,
    CHAIN_PRIVILEGE_GRANT,
    GCP,
    GCP_PROJECT,
    HOSTILE_CSV,
    HOSTILE_SQL,
    HOSTILE_XSS,
    MINUTE_MS,
    OFFICE_365,
    RECEIPT_DELAY,
    TENANT_DOMAIN,
    UA_AAD_GRAPH,
    UA_AWS_CLI,
    UA_AZ_CLI,
    UA_BOTO3_SCRIPT,
    UA_BROWSER,
    UA_GCLOUD,
    UA_POWERSHELL,
)
from .feeds import Builder
from .model import ChainSpec, EventRef, Item, OffenseSpec, aws_item, entra_user_item, ref
from .offenses import account_offense


def attack_items(b: Builder) -> tuple[list[Item], list[OffenseSpec], list[ChainSpec]]:
    """The attack, follow-on and hostile items with the offenses and chains they form."""
    items: list[Item] = []
    offenses: list[OffenseSpec] = []
    chains: list[ChainSpec] = []

    def upn(name: str) -> str:
        return f"{name}@{TENANT_DOMAIN}"

    # -- seed Testing Methodology, test 1: Azure AD user via Azure CLI
    admin, admin_ip = upn("adele.vance"), "203.0.113.45"
    t = b.at(20.5)
    target = upn("df00tech-test-user")
    cli = {"user_agent": UA_AZ_CLI, "app_id": APPID_AZURE_CLI}
    add = b.entra_add_user(t, admin, admin_ip, target, "df00tech-test-user", **cli)
    cleanup = b.entra_delete_user(t + 600_000, admin, admin_ip, target, "df00tech-test-user", **cli)
    items.append(
        entra_user_item(
            b,
            "seed-test-1-azure-cli-user",
            "attack",
            "Azure AD user created via Azure CLI",
            admin,
            [ref(add, "creation", True, False, "user", target), ref(cleanup, "cleanup", False)],
            is_service_account=False,
            source="seed Testing Methodology test 1",
        )
    )

    # -- seed test 2: AADInternals pattern — Add application → Add service principal → credentials (< 60 s)
    megan, megan_ip = upn("megan.bowen"), "198.51.100.23"
    t = b.at(16)
    corr = b.uuid()
    app_name = "Graph Sync Helper"
    app_id = b.uuid()
    app_target = {
        "id": b.object_id(f"app:{app_name}"),
        "displayName": app_name,
        "type": "Application",
        "modifiedProperties": [{"displayName": "AppId", "oldValue": None, "newValue": json.dumps([app_id])}],
    }
    sp_target = {
        "id": b.object_id(app_name),
        "displayName": app_name,
        "type": "ServicePrincipal",
        "modifiedProperties": [{"displayName": "AppId", "oldValue": None, "newValue": json.dumps([app_id])}],
    }
    key_id = b.uuid()
    cred_target = {
        **sp_target,
        "modifiedProperties": [
            {
                "displayName": "KeyDescription",
                "oldValue": "[]",
                "newValue": json.dumps(
                    [f"[KeyIdentifier={key_id},KeyType=Password,KeyUsage=Verify,DisplayName=sync]"]
                ),
            }
        ],
    }
    initiator = b.user_initiator(megan, megan_ip)
    common = {
        "category": "ApplicationManagement",
        "initiated_by": initiator,
        "correlation_id": corr,
        "user_agent": UA_POWERSHELL,
        "app_id": APPID_AAD_POWERSHELL,
    }
    e_app = b.entra_audit(t, "Add application", targets=[app_target], **common)
    e_sp = b.entra_audit(t + 3_000, "Add service principal", targets=[sp_target], **common)
    e_cred = b.entra_audit(t + 21_000, "Add service principal credentials", targets=[cred_target], **common)
    aadint_sp = entra_user_item(
        b,
        "seed-test-2-aadinternals-service-principal",
        "attack",
        "AADInternals pattern: application, service principal and credentials within a minute",
        megan,
        [
            ref(e_app, "creation", True, True, "application", app_name),
            ref(e_sp, "creation", True, True, "service_principal", app_name),
            ref(e_cred, "credential", True, True, "credential", app_name),
        ],
        is_service_account=True,
        chain_kind=CHAIN_ENTRA_APP_SP_CREDENTIAL,
        source="seed Testing Methodology test 2",
    )
    items.append(aadint_sp)
    role_assignment = b.entra_audit(
        t + 240_000,
        "Add app role assignment to service principal",
        category="ApplicationManagement",
        initiated_by=initiator,
        user_agent=UA_POWERSHELL,
        app_id=APPID_AAD_POWERSHELL,
        targets=[
            {
                **sp_target,
                "modifiedProperties": [
                    {
                        "displayName": "AppRole.Value",
                        "oldValue": None,
                        "newValue": '"RoleManagement.ReadWrite.Directory"',
                    },
                    {
                        "displayName": "ServicePrincipal.AppId",
                        "oldValue": None,
                        "newValue": json.dumps(APPID_MS_GRAPH),
                    },
                ],
            }
        ],
        operation_type="Assign",
    )
    consent = b.entra_audit(
        t + 360_000,
        "Consent to application",
        category="ApplicationManagement",
        initiated_by=initiator,
        user_agent=UA_BROWSER,
        targets=[
            {
                **sp_target,
                "modifiedProperties": [
                    {"displayName": "ConsentContext.IsAdminConsent", "oldValue": None, "newValue": '"True"'},
                    {
                        "displayName": "ConsentAction.Permissions",
                        "oldValue": None,
                        "newValue": '"Scope: Directory.ReadWrite.All Mail.Read"',
                    },
                ],
            }
        ],
        operation_type="Assign",
    )
    items.append(
        entra_user_item(
            b,
            "follow-on-entra-app-role-assignment",
            "follow-on",
            "Graph app role RoleManagement.ReadWrite.Directory granted to the new service principal",
            megan,
            [ref(role_assignment, "privilege", False, True, "service_principal", app_name)],
            follows=aadint_sp.key,
            chain_kind=CHAIN_PRIVILEGE_GRANT,
            source="Atomic T1098.001 (SP hijack)",
        )
    )
    items.append(
        entra_user_item(
            b,
            "follow-on-entra-consent",
            "follow-on",
            "Admin consent granted to the new application",
            megan,
            [ref(consent, "privilege", False, True, "service_principal", app_name)],
            follows=aadint_sp.key,
            chain_kind=CHAIN_PRIVILEGE_GRANT,
        )
    )
    chains.append(ChainSpec(CHAIN_ENTRA_APP_SP_CREDENTIAL, [aadint_sp.key], aadint_sp.events[:]))
    chains.append(
        ChainSpec(
            CHAIN_PRIVILEGE_GRANT,
            [aadint_sp.key, "follow-on-entra-app-role-assignment", "follow-on-entra-consent"],
            [aadint_sp.events[1], items[-2].events[0], items[-1].events[0]],
        )
    )
    offenses.append(
        account_offense(
            "Service principal with credentials and directory permissions created by a user",
            [*aadint_sp.events, items[-2].events[0], items[-1].events[0]],
            [aadint_sp.key, "follow-on-entra-app-role-assignment", "follow-on-entra-consent"],
            megan,
            (8, 8, 8, 9),
        )
    )

    # -- seed test 3: AWS IAM user followed by an access key, then AdministratorAccess (follow-on)
    ops = b.assumed_role("OpsAdminRole", "jdoe-cli")
    ops_ip = "203.0.113.77"
    t = b.at(12)
    new_user = "df00tech-atomic-test-user"
    c_user = b.create_user(t, ops, ops_ip, UA_AWS_CLI.format(command="iam.create-user"), new_user)
    c_key = b.create_access_key(
        t + 6_000, ops, ops_ip, UA_AWS_CLI.format(command="iam.create-access-key"), new_user
    )
    c_policy = b.attach_user_policy(
        t + 120_000, ops, ops_ip, UA_AWS_CLI.format(command="iam.attach-user-policy"), new_user
    )
    # Out-of-order arrival: the access key reaches QRadar before the user it belongs to.
    b.arrives_after(c_user, 12 * MINUTE_MS)
    b.arrives_after(c_key, 1 * MINUTE_MS)
    aws_user = aws_item(
        "seed-test-3-aws-user-access-key",
        "attack",
        "AWS IAM user created, then an access key for it",
        ops,
        [
            ref(c_user, "creation", True, False, "user", new_user),
            ref(c_key, "credential", True, False, "access_key", new_user),
        ],
        is_service_account=False,
        chain_kind=CHAIN_AWS_USER_CREDENTIAL,
        source="seed Testing Methodology test 3",
        depends_on={
            RECEIPT_DELAY: "the access key is received 11 minutes before the user it was created for: "
            "chained only when chains order events by their own time (devicetime)"
        },
    )
    items.append(aws_user)
    items.append(
        aws_item(
            "follow-on-aws-admin-policy",
            "follow-on",
            "AdministratorAccess attached to the new IAM user",
            ops,
            [ref(c_policy, "privilege", False, False, "user", new_user)],
            follows=aws_user.key,
            chain_kind=CHAIN_PRIVILEGE_GRANT,
        )
    )
    chains.append(ChainSpec(CHAIN_AWS_USER_CREDENTIAL, [aws_user.key], aws_user.events[:]))
    chains.append(
        ChainSpec(
            CHAIN_PRIVILEGE_GRANT,
            [aws_user.key, "follow-on-aws-admin-policy"],
            [aws_user.events[0], items[-1].events[0]],
        )
    )
    offenses.append(
        account_offense(
            "IAM user created with an access key and AdministratorAccess",
            [*aws_user.events, items[-1].events[0]],
            [aws_user.key, "follow-on-aws-admin-policy"],
            "OpsAdminRole/jdoe-cli",
            (8, 8, 8, 9),
        )
    )

    # -- seed test 4: AADInternals PowerShell user, then Global Administrator (follow-on)
    lidia, lidia_ip = upn("lidia.holloway"), "198.51.100.61"
    t = b.at(8)
    backdoor = upn("aadint-backdoor")
    e_user = b.entra_add_user(t, lidia, lidia_ip, backdoor, "AADInt Backdoor", user_agent=UA_POWERSHELL)
    e_role = b.entra_global_admin_grant(
        t + 180_000, lidia, lidia_ip, backdoor, "AADInt Backdoor", UA_POWERSHELL
    )
    aadint_user = entra_user_item(
        b,
        "seed-test-4-aadinternals-user",
        "attack",
        "Azure AD user created with AADInternals (as a user)",
        lidia,
        [ref(e_user, "creation", True, False, "user", backdoor)],
        is_service_account=False,
        source="seed Testing Methodology test 4",
    )
    items.append(aadint_user)
    items.append(
        entra_user_item(
            b,
            "follow-on-entra-global-admin",
            "follow-on",
            "New user added to Global Administrator",
            lidia,
            [ref(e_role, "privilege", False, False, "user", backdoor)],
            follows=aadint_user.key,
            chain_kind=CHAIN_PRIVILEGE_GRANT,
            source="Atomic T1098.003",
        )
    )
    chains.append(
        ChainSpec(
            CHAIN_PRIVILEGE_GRANT,
            [aadint_user.key, "follow-on-entra-global-admin"],
            [aadint_user.events[0], items[-1].events[0]],
        )
    )
    offenses.append(
        account_offense(
            "Cloud account created and made Global Administrator",
            [aadint_user.events[0], items[-1].events[0]],
            [aadint_user.key, "follow-on-entra-global-admin"],
            lidia,
            (9, 9, 8, 9),
        )
    )

    # -- Atomic Red Team T1136.003 #1: aws iam create-user --user-name atomicredteam (+ cleanup)
    operator = b.iam_user("redteam-operator")
    t = b.at(6)
    rt_ip = "192.0.2.15"
    a1 = b.create_user(t, operator, rt_ip, UA_AWS_CLI.format(command="iam.create-user"), "atomicredteam")
    a1_cleanup = b.cloudtrail(
        t + 120_000,
        "DeleteUser",
        operator,
        rt_ip,
        UA_AWS_CLI.format(command="iam.delete-user"),
        request={"userName": "atomicredteam"},
    )
    atomic1 = aws_item(
        "atomic-1-aws-create-user",
        "attack",
        "Atomic T1136.003 #1: AWS - Create a new IAM user",
        operator,
        [ref(a1, "creation", True, False, "user", "atomicredteam"), ref(a1_cleanup, "cleanup", False)],
        is_service_account=False,
        source="Atomic Red Team T1136.003 #1 (8d1c2368-b503-40c9-9057-8e42f21c58ad)",
    )
    items.append(atomic1)
    offenses.append(
        account_offense(
            "IAM user created by a red-team operator (exercise, closed)",
            [atomic1.events[0]],
            [atomic1.key],
            "redteam-operator",
            (5, 6, 8, 5),
            status="CLOSED",
            closed=True,
        )
    )

    # -- Atomic #2: AzureAD New-AzureADUser, seen in Entra audit AND in the Office 365 audit (twin)
    rt_upn, rt_upn_ip = upn("redteam.operator"), "192.0.2.16"
    t = b.at(5)
    atomic_upn = upn("atomicredteam")
    azuread_module = {"user_agent": UA_AAD_GRAPH, "app_id": APPID_AAD_POWERSHELL}
    a2 = b.entra_add_user(t, rt_upn, rt_upn_ip, atomic_upn, "atomicredteam", **azuread_module)
    a2_twin = b.o365_add_user(t + 2_000, rt_upn, atomic_upn, "atomicredteam", rt_upn_ip)
    # Office 365's copy reaches QRadar 40 minutes after the Entra record: far outside a receipt-time window.
    b.arrives_after(a2, 2 * MINUTE_MS)
    b.arrives_after(a2_twin, 40 * MINUTE_MS)
    a2_cleanup = b.entra_delete_user(
        t + 240_000, rt_upn, rt_upn_ip, atomic_upn, "atomicredteam", **azuread_module
    )
    creation = ref(a2, "creation", True, False, "user", atomic_upn)
    items.append(
        entra_user_item(
            b,
            "atomic-2-azuread-new-user",
            "attack",
            "Atomic T1136.003 #2: Azure AD - Create a new user (AzureAD module)",
            rt_upn,
            [
                creation,
                EventRef(a2_twin, "twin", False, False, "user", atomic_upn, twin_of=creation),
                ref(a2_cleanup, "cleanup", False),
            ],
            is_service_account=False,
            also_seen_in=[OFFICE_365],
            source="Atomic Red Team T1136.003 #2 (e62d23ef-3153-4837-8625-fa4a3829134d)",
            notes="one creation in two feeds: expect one detection with also_seen_in Office 365 (rule d)",
            depends_on={
                RECEIPT_DELAY: "the Office 365 copy is received 38 minutes after the Entra record: one "
                "detection only when twins are matched by the events' own time (devicetime)"
            },
        )
    )

    # -- Atomic #3: az ad user create
    t = b.at(4)
    cli_upn = upn("atomicredteam.cli")
    a3 = b.entra_add_user(t, rt_upn, rt_upn_ip, cli_upn, "atomicredteam", **cli)
    a3_cleanup = b.entra_delete_user(t + 150_000, rt_upn, rt_upn_ip, cli_upn, "atomicredteam", **cli)
    items.append(
        entra_user_item(
            b,
            "atomic-3-az-ad-user-create",
            "attack",
            "Atomic T1136.003 #3: Azure AD - Create a new user via Azure CLI",
            rt_upn,
            [ref(a3, "creation", True, False, "user", cli_upn), ref(a3_cleanup, "cleanup", False)],
            is_service_account=False,
            source="Atomic Red Team T1136.003 #3 (228c7498-be31-48e9-83b7-9cb906504ec8)",
        )
    )

    # -- GCP: service account and a key for it, by an outside contractor account
    mallory, mallory_ip = "mallory.contractor@acme-partner.example", "192.0.2.140"
    t = b.at(10)
    sa_email = f"backup-exporter@{GCP_PROJECT}.iam.gserviceaccount.com"
    sa_unique = str(b.rng.randrange(10**20, 10**21))
    g_sa = b.gcp(
        t,
        "google.iam.admin.v1.CreateServiceAccount",
        mallory,
        mallory_ip,
        UA_GCLOUD.format(command="create", invocation=b.uuid()),
        permission="iam.serviceAccounts.create",
        request={
            "@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountRequest",
            "account_id": "backup-exporter",
            "name": f"projects/{GCP_PROJECT}",
            "service_account": {"display_name": "Backup exporter"},
        },
        response={
            "@type": "type.googleapis.com/google.iam.admin.v1.ServiceAccount",
            "email": sa_email,
            "name": f"projects/{GCP_PROJECT}/serviceAccounts/{sa_email}",
            "project_id": GCP_PROJECT,
            "unique_id": sa_unique,
            "display_name": "Backup exporter",
            "etag": "MDEwMjE5MjA=",
        },
    )
    key_name = f"projects/{GCP_PROJECT}/serviceAccounts/{sa_email}/keys/{b.hexstr(40)}"
    g_key = b.gcp(
        t + 35_000,
        "google.iam.admin.v1.CreateServiceAccountKey",
        mallory,
        mallory_ip,
        UA_GCLOUD.format(command="keys.create", invocation=b.uuid()),
        resource_name=f"projects/-/serviceAccounts/{sa_unique}",
        permission="iam.serviceAccountKeys.create",
        request={
            "@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest",
            "name": f"projects/-/serviceAccounts/{sa_unique}",
            "private_key_type": 2,
        },
        response={
            "@type": "type.googleapis.com/google.iam.admin.v1.ServiceAccountKey",
            "name": key_name,
            "key_algorithm": 2,
            "key_origin": 2,
            "key_type": 1,
        },
    )
    gcp_item = Item(
        "gcp-service-account-and-key",
        "attack",
        "GCP service account created, then a key for it",
        GCP,
        mallory,
        mallory,
        "user",
        [
            ref(g_sa, "creation", True, True, "service_account", sa_email),
            ref(g_key, "credential", True, True, "service_account_key", sa_email),
        ],
        is_service_account=True,
        notes="no chain rule covers GCP; both events are detections",
    )
    items.append(gcp_item)
    offenses.append(
        account_offense(
            "Service account and key created by an external principal",
            gcp_item.events[:],
            [gcp_item.key],
            mallory,
            (7, 7, 8, 8),
        )
    )

    # -- AWS backdoor console user: stolen CI keys create a user and a login profile (chain b)
    ci = b.iam_user("ci-deployer")
    ci_ip = "192.0.2.66"
    t = b.at(14)
    backdoor_user = "support-helpdesk2"
    l_user = b.create_user(t, ci, ci_ip, UA_BOTO3_SCRIPT, backdoor_user)
    l_profile = b.create_login_profile(t + 75_000, ci, ci_ip, UA_BOTO3_SCRIPT, backdoor_user)
    login_item = aws_item(
        "aws-user-login-profile",
        "attack",
        "IAM user created with stolen CI keys, then a console password",
        ci,
        [
            ref(l_user, "creation", True, False, "user", backdoor_user),
            ref(l_profile, "credential", True, False, "login_profile", backdoor_user),
        ],
        is_service_account=False,
        chain_kind=CHAIN_AWS_USER_CREDENTIAL,
    )
    items.append(login_item)
    chains.append(ChainSpec(CHAIN_AWS_USER_CREDENTIAL, [login_item.key], login_item.events[:]))
    offenses.append(
        account_offense(
            "IAM user created with a console login profile from an unusual address",
            login_item.events[:],
            [login_item.key],
            "ci-deployer",
            (7, 7, 8, 8),
        )
    )

    # -- hostile values: attacker-controlled names that must render as text and stay out of formulas
    t = b.at(7)
    xss_upn = f"{HOSTILE_XSS}@{TENANT_DOMAIN}"
    h1 = b.entra_add_user(t, megan, megan_ip, xss_upn, HOSTILE_XSS, user_agent=UA_POWERSHELL)
    items.append(
        entra_user_item(
            b,
            "hostile-entra-user-html",
            "hostile",
            "Entra user whose name is an HTML injection",
            megan,
            [ref(h1, "creation", True, False, "user", xss_upn)],
            is_service_account=False,
            hostile_fields={"target_account": xss_upn, "target_display_name": HOSTILE_XSS},
        )
    )
    t = b.at(9)
    h2 = b.create_user(t, ci, ci_ip, UA_BOTO3_SCRIPT, HOSTILE_SQL)
    items.append(
        aws_item(
            "hostile-aws-user-sql",
            "hostile",
            "IAM user whose name is an SQL/AQL injection",
            ci,
            [ref(h2, "creation", True, False, "user", HOSTILE_SQL)],
            is_service_account=False,
            hostile_fields={"target_account": HOSTILE_SQL},
        )
    )
    t = b.at(3)
    csv_target = {
        "id": b.object_id(HOSTILE_CSV),
        "displayName": HOSTILE_CSV,
        "type": "ServicePrincipal",
        "modifiedProperties": [
            {"displayName": "AppId", "oldValue": None, "newValue": json.dumps([b.uuid()])}
        ],
    }
    h3 = b.entra_audit(
        t,
        "Add service principal",
        category="ApplicationManagement",
        initiated_by=b.user_initiator(megan, megan_ip),
        targets=[csv_target],
        user_agent=UA_POWERSHELL,
    )
    items.append(
        entra_user_item(
            b,
            "hostile-entra-sp-formula",
            "hostile",
            "Service principal whose name is a spreadsheet formula",
            megan,
            [ref(h3, "creation", True, True, "service_principal", HOSTILE_CSV)],
            is_service_account=True,
            hostile_fields={"target_account": HOSTILE_CSV},
        )
    )
    return items, offenses, chains
