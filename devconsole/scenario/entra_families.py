"""Entra ID / Office 365 persistence beyond plain account creation (issue 12): guest invitations and their
redemption, application credentials in every dash and space spelling, owners added, federated identity
credentials, the AADInternals domain federation backdoor, PIM role assignments judged by role template
ID, cross-tenant synchronization — each attack with a benign variant that is not raised, or raised at its
documented low severity. Drawn after every other item, so the ids of those stay as they were."""

from __future__ import annotations

import json

from .facts import (
    APPID_AAD_POWERSHELL,
    APPID_SYNC_FABRIC,
    AZURE_AD,
    CHAIN_ENTRA_APP_SP_CREDENTIAL,
    CHAIN_ENTRA_DOMAIN_FEDERATION,
    CHAIN_ENTRA_GUEST_REDEMPTION,
    CHAIN_PRIVILEGE_GRANT,
    GLOBAL_ADMIN_TEMPLATE_ID,
    OFFICE_365,
    TENANT_DOMAIN,
    UA_BROWSER,
    UA_POWERSHELL,
)
from .feeds import Builder
from .model import ChainSpec, Item, entra_user_item, ref

# Item kinds of this module besides "attack": a benign variant of a family (raised at its documented low
# severity or not at all; nothing to allowlist) and a chain step taken by another actor (a guest redeeming).
BENIGN_VARIANT = "benign-variant"
CHAIN_STEP = "chain-step"

PRIVILEGED_ROLE_ADMIN_TEMPLATE_ID = "e8611ab8-c189-46e8-94e1-60213ab1f814"
MESSAGE_CENTER_READER_TEMPLATE_ID = "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b"


def _mod(name: str, new: object) -> dict:
    return {"displayName": name, "oldValue": None, "newValue": json.dumps(new)}


def entra_family_items(b: Builder, chains: list[ChainSpec]) -> list[Item]:
    """The items; the chains they form are appended to ``chains``."""
    items: list[Item] = []

    def upn(name: str) -> str:
        return f"{name}@{TENANT_DOMAIN}"

    megan, megan_ip = upn("megan.bowen"), "198.51.100.23"
    nestor, nestor_ip = upn("nestor.wilke"), "198.51.100.77"
    patti, patti_ip = upn("patti.fernandez"), "10.50.1.20"

    def audit(t: int, op: str, actor: str, ip: str, targets: list[dict], **kw: object) -> dict:
        return b.entra_audit(
            t,
            op,
            category=str(kw.pop("category", "ApplicationManagement")),
            initiated_by=b.user_initiator(actor, ip),
            targets=targets,
            user_agent=str(kw.pop("user_agent", UA_POWERSHELL)),
            **kw,  # type: ignore[arg-type]
        )

    def role_target(name: str, template_id: str) -> dict:
        return {"id": template_id, "displayName": name, "type": "Role"}

    def member(upn_: str, display: str, role: str, template_id: str) -> dict:
        target = b.user_target(upn_, display)
        target["modifiedProperties"] = [_mod("Role.DisplayName", role), _mod("Role.TemplateId", template_id)]
        return target

    # -- guest invited, invitation redeemed, then made Global Administrator (one chain)
    t = b.at(15.5)
    guest = "mal.actor_evil-partner.example#EXT#@" + TENANT_DOMAIN
    guest_target = b.user_target(guest, "Mal Actor", member_type="Guest")
    invite = audit(t, "Invite external user", megan, megan_ip, [guest_target], category="UserManagement")
    redeem = b.entra_audit(
        t + 900_000,
        "Redeem external user invite",
        category="UserManagement",
        initiated_by=b.user_initiator(guest, "192.0.2.200"),
        targets=[{**guest_target, "modifiedProperties": []}],
        user_agent=UA_BROWSER,
        operation_type="Update",
    )
    ga = audit(
        t + 1_800_000,
        "Add member to role",
        megan,
        megan_ip,
        [member(guest, "Mal Actor", "Global Administrator", GLOBAL_ADMIN_TEMPLATE_ID)],
        category="RoleManagement",
        operation_type="Assign",
    )
    guest_item = entra_user_item(
        b,
        "entra-guest-invite-redeemed-admin",
        "attack",
        "External guest invited, then made Global Administrator once the invitation was redeemed",
        megan,
        [ref(invite, "creation", True, False, "guest_user", guest), ref(ga, "privilege", False)],
        is_service_account=False,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
        source="Elastic Entra ID External Guest User Invited; Atomic T1098.003",
    )
    items.append(guest_item)
    redemption = Item(
        "entra-guest-redemption",
        CHAIN_STEP,
        "The invited guest redeems the invitation",
        AZURE_AD,
        guest,
        b.object_id(guest),
        "user",
        [ref(redeem, "redemption", False)],
        follows=guest_item.key,
        chain_kind=CHAIN_ENTRA_GUEST_REDEMPTION,
    )
    items.append(redemption)
    chains.append(
        ChainSpec(
            CHAIN_ENTRA_GUEST_REDEMPTION,
            [guest_item.key, redemption.key],
            [guest_item.events[0], redemption.events[0]],
        )
    )
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [guest_item.key], guest_item.events[:]))

    # -- benign: a partner invited and redeemed, nothing else (raised at the documented severity 6)
    t = b.at(11.5)
    partner = "sam.lee_fabrikam.example#EXT#@" + TENANT_DOMAIN
    partner_target = b.user_target(partner, "Sam Lee (Fabrikam)", member_type="Guest")
    p_invite = audit(
        t,
        "Invite external user",
        patti,
        patti_ip,
        [partner_target],
        category="UserManagement",
        user_agent=UA_BROWSER,
    )
    p_redeem = b.entra_audit(
        t + 3_600_000,
        "Redeem external user invite",
        category="UserManagement",
        initiated_by=b.user_initiator(partner, "198.51.100.99"),
        targets=[{**partner_target, "modifiedProperties": []}],
        user_agent=UA_BROWSER,
        operation_type="Update",
    )
    partner_item = entra_user_item(
        b,
        "benign-entra-guest-partner",
        BENIGN_VARIANT,
        "Partner guest invited for a shared project and redeemed the invitation",
        patti,
        [ref(p_invite, "creation", True, False, "guest_user", partner), ref(p_redeem, "redemption", False)],
        is_service_account=False,
        chain_kind=CHAIN_ENTRA_GUEST_REDEMPTION,
        notes="raised at severity 6, medium confidence: invitation + redemption is the normal B2B flow",
    )
    items.append(partner_item)
    chains.append(ChainSpec(CHAIN_ENTRA_GUEST_REDEMPTION, [partner_item.key], partner_item.events[:]))

    # -- Office 365 only: a guest invitation in the Unified Audit Log (trailing-period name)
    t = b.at(10.5)
    o365_guest = "contractor_freemail.example#EXT#@" + TENANT_DOMAIN
    o_invite = b.o365(
        t,
        "Invite external user.",
        megan,
        object_id=o365_guest,
        actor_ip=megan_ip,
        extra={"Target": [{"ID": o365_guest, "Type": 5}]},
    )
    items.append(
        entra_user_item(
            b,
            "o365-guest-invite",
            "attack",
            "Guest invitation seen only in the Office 365 audit",
            megan,
            [ref(o_invite, "creation", True, False, "guest_user", o365_guest)],
            is_service_account=False,
        )
    )
    items[-1].platform = OFFICE_365

    # -- application credentials on existing apps: hyphen, em dash, en dash with a trailing space
    cred_events = []
    for n, (op, app_name) in enumerate(
        (
            ("Update application - Certificates and secrets management", "Payroll Connector"),
            ("Update application \u2014 Certificates and secrets management", "HR Sync"),
            ("Update application \u2013 Certificates and secrets management ", "Expense Bot"),
        )
    ):
        app_target = {
            "id": b.object_id(f"app:{app_name}"),
            "displayName": app_name,
            "type": "Application",
            "modifiedProperties": [
                {
                    "displayName": "KeyDescription",
                    "oldValue": "[]",
                    "newValue": json.dumps(
                        [f"[KeyIdentifier={b.uuid()},KeyType=Password,KeyUsage=Verify,DisplayName=sync]"]
                    ),
                }
            ],
        }
        e = audit(b.at(13.2 - n * 0.3), op, nestor, nestor_ip, [app_target], operation_type="Update")
        cred_events.append(ref(e, "credential", True, True, "credential", app_name))
    items.append(
        entra_user_item(
            b,
            "entra-app-credential-spellings",
            "attack",
            "Secrets added to existing applications (hyphen, em dash, trailing-space spellings)",
            nestor,
            cred_events,
            is_service_account=True,
            source="Atomic T1098.001 (app registration hijack)",
        )
    )
    # benign: an application's display name updated (collected for federated credentials, not one)
    t = b.at(12.8)
    rename = audit(
        t,
        "Update application",
        patti,
        patti_ip,
        [
            {
                "id": b.object_id("app:Payroll Connector"),
                "displayName": "Payroll Connector",
                "type": "Application",
                "modifiedProperties": [
                    {
                        "displayName": "DisplayName",
                        "oldValue": '["Payroll"]',
                        "newValue": '["Payroll Connector"]',
                    },
                    {
                        "displayName": "Included Updated Properties",
                        "oldValue": None,
                        "newValue": '"DisplayName"',
                    },
                ],
            }
        ],
        operation_type="Update",
        user_agent=UA_BROWSER,
    )
    items.append(
        entra_user_item(
            b,
            "benign-entra-app-rename",
            BENIGN_VARIANT,
            "Application renamed: an 'Update application' without federated credentials",
            patti,
            [ref(rename, "update", False)],
        )
    )

    # -- federated identity credential on a new app: app → SP → FIC within a minute (chain a)
    t = b.at(14.6)
    corr = b.uuid()
    fic_app = "GitHub Deployer"
    fic_app_target = {"id": b.object_id(f"app:{fic_app}"), "displayName": fic_app, "type": "Application"}
    fic_sp_target = {"id": b.object_id(fic_app), "displayName": fic_app, "type": "ServicePrincipal"}
    f_app = audit(
        t,
        "Add application",
        nestor,
        nestor_ip,
        [{**fic_app_target, "modifiedProperties": []}],
        correlation_id=corr,
    )
    f_sp = audit(
        t + 4_000,
        "Add service principal",
        nestor,
        nestor_ip,
        [{**fic_sp_target, "modifiedProperties": []}],
        correlation_id=corr,
    )
    f_fic = audit(
        t + 30_000,
        "Update application",
        nestor,
        nestor_ip,
        [
            {
                **fic_app_target,
                "modifiedProperties": [
                    {
                        "displayName": "FederatedIdentityCredentials",
                        "oldValue": "[]",
                        "newValue": json.dumps(
                            [
                                {
                                    "Name": "gh",
                                    "Issuer": "https://token.actions.githubusercontent.com",
                                    "Subject": "repo:evil-org/infra:ref:refs/heads/main",
                                }
                            ]
                        ),
                    },
                    {
                        "displayName": "Included Updated Properties",
                        "oldValue": None,
                        "newValue": '"FederatedIdentityCredentials"',
                    },
                ],
            }
        ],
        correlation_id=corr,
        operation_type="Update",
        app_id=APPID_AAD_POWERSHELL,
    )
    fic_item = entra_user_item(
        b,
        "entra-federated-credential-new-app",
        "attack",
        "New application trusts an outside token issuer (federated identity credential) within a minute",
        nestor,
        [
            ref(f_app, "creation", True, True, "application", fic_app),
            ref(f_sp, "creation", True, True, "service_principal", fic_app),
            ref(f_fic, "credential", True, True, "federated_credential", fic_app),
        ],
        is_service_account=True,
        chain_kind=CHAIN_ENTRA_APP_SP_CREDENTIAL,
    )
    items.append(fic_item)
    chains.append(ChainSpec(CHAIN_ENTRA_APP_SP_CREDENTIAL, [fic_item.key], fic_item.events[:]))

    # -- federated identity credential on a managed identity (Azure Activity log, type 413)
    t = b.at(13.9)
    mi = "id-build-agent"
    arm_op = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"
    mi_fic = b.azure_activity(
        t,
        arm_op,
        nestor,
        nestor_ip,
        f"MICROSOFT.MANAGEDIDENTITY/USERASSIGNEDIDENTITIES/{mi.upper()}/FEDERATEDIDENTITYCREDENTIALS/EXT-CI",
    )
    items.append(
        entra_user_item(
            b,
            "azure-managed-identity-federated-credential",
            "attack",
            "Managed identity given a federated credential for an outside issuer (Azure Activity log)",
            nestor,
            [ref(mi_fic, "credential", True, True, "federated_credential", mi.upper())],
            is_service_account=True,
        )
    )

    # -- a new user made owner of an existing application (privilege grant chain, not admin)
    t = b.at(12.4)
    helper = upn("app-helper")
    h_user = b.entra_add_user(t, megan, megan_ip, helper, "App Helper", user_agent=UA_POWERSHELL)
    owned = {"id": b.object_id("app:Mail Archiver"), "displayName": "Mail Archiver", "type": "Application"}
    h_owner = audit(
        t + 300_000,
        "Add owner to application",
        megan,
        megan_ip,
        [
            {**b.user_target(helper, "App Helper"), "modifiedProperties": []},
            {**owned, "modifiedProperties": []},
        ],
        operation_type="Assign",
    )
    owner_item = entra_user_item(
        b,
        "entra-owner-added-new-user",
        "attack",
        "New user made owner of an existing application (can then add its secrets)",
        megan,
        [
            ref(h_user, "creation", True, False, "user", helper),
            ref(h_owner, "owner", True, False, "app_owner", helper),
        ],
        is_service_account=False,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
        source="Elastic Entra ID user added as owner for application",
    )
    items.append(owner_item)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [owner_item.key], owner_item.events[:]))
    # benign: a long-standing engineer made co-owner of a service principal (severity 6, no chain)
    t = b.at(9.8)
    eng = upn("diego.siciliani")
    sp_owned = {
        "id": b.object_id("Reporting Portal"),
        "displayName": "Reporting Portal",
        "type": "ServicePrincipal",
    }
    co_owner = audit(
        t,
        "Add owner to service principal",
        patti,
        patti_ip,
        [
            {**b.user_target(eng, "Diego Siciliani"), "modifiedProperties": []},
            {**sp_owned, "modifiedProperties": []},
        ],
        operation_type="Assign",
        user_agent=UA_BROWSER,
    )
    items.append(
        entra_user_item(
            b,
            "benign-entra-sp-co-owner",
            BENIGN_VARIANT,
            "Engineer made co-owner of a service principal (raised at severity 6)",
            patti,
            [ref(co_owner, "owner", True, False, "app_owner", eng)],
            is_service_account=False,
        )
    )

    # -- AADInternals federation backdoor: domain added, verified, federated (chain, severity 10)
    t = b.at(7.5)
    evil_domain = "login-contoso-sso.example"
    d_target = {"id": b.object_id(f"domain:{evil_domain}"), "displayName": evil_domain, "type": "Other"}
    fed_mods = [_mod("LiveType", "Federated"), _mod("IssuerUri", f"http://{evil_domain}/adfs/services/trust")]
    d_events = [
        audit(
            t,
            "Add unverified domain",
            nestor,
            nestor_ip,
            [{**d_target, "modifiedProperties": []}],
            category="DirectoryManagement",
        ),
        audit(
            t + 120_000,
            "Verify domain",
            nestor,
            nestor_ip,
            [{**d_target, "modifiedProperties": []}],
            category="DirectoryManagement",
            operation_type="Update",
        ),
        audit(
            t + 240_000,
            "Set domain authentication",
            nestor,
            nestor_ip,
            [{**d_target, "modifiedProperties": [_mod("LiveType", "Federated")]}],
            category="DirectoryManagement",
            operation_type="Update",
        ),
        audit(
            t + 250_000,
            "Set federation settings on domain",
            nestor,
            nestor_ip,
            [{**d_target, "modifiedProperties": fed_mods}],
            category="DirectoryManagement",
            operation_type="Update",
        ),
    ]
    kinds = ("domain", "domain", "domain_federation", "domain_federation")
    domain_item = entra_user_item(
        b,
        "entra-domain-federation-backdoor",
        "attack",
        "AADInternals backdoor: a domain added, verified and federated to an attacker's issuer",
        nestor,
        [ref(e, "domain-change", True, False, k, evil_domain) for e, k in zip(d_events, kinds, strict=True)],
        is_service_account=False,
        chain_kind=CHAIN_ENTRA_DOMAIN_FEDERATION,
        source="seed: AADInternals (ConvertTo-AADIntBackdoor)",
    )
    items.append(domain_item)
    chains.append(ChainSpec(CHAIN_ENTRA_DOMAIN_FEDERATION, [domain_item.key], domain_item.events[:]))
    # benign: a marketing domain added and verified, never federated (two severity-5 detections)
    t = b.at(6.5)
    good_domain = "contoso-marketing.example"
    g_target = {
        "id": b.object_id(f"domain:{good_domain}"),
        "displayName": good_domain,
        "type": "Other",
        "modifiedProperties": [],
    }
    g1 = audit(
        t,
        "Add unverified domain",
        patti,
        patti_ip,
        [g_target],
        category="DirectoryManagement",
        user_agent=UA_BROWSER,
    )
    g2 = audit(
        t + 600_000,
        "Verify domain",
        patti,
        patti_ip,
        [g_target],
        category="DirectoryManagement",
        user_agent=UA_BROWSER,
        operation_type="Update",
    )
    items.append(
        entra_user_item(
            b,
            "benign-entra-domain-verified",
            BENIGN_VARIANT,
            "Marketing domain added and verified (raised at severity 5, no chain)",
            patti,
            [
                ref(g1, "domain-change", True, False, "domain", good_domain),
                ref(g2, "domain-change", True, False, "domain", good_domain),
            ],
            is_service_account=False,
        )
    )

    # -- PIM: a new user made eligible for Privileged Role Administrator, the role renamed in the event
    t = b.at(5.5)
    tier0 = upn("tier0-ops")
    p_user = b.entra_add_user(t, nestor, nestor_ip, tier0, "Tier0 Ops", user_agent=UA_POWERSHELL)
    p_role = b.entra_audit(
        t + 600_000,
        "Add eligible member to role in PIM completed (permanent)",
        category="RoleManagement",
        initiated_by=b.user_initiator(nestor, nestor_ip),
        targets=[
            member(tier0, "Tier0 Ops", "Tier0 Operators", PRIVILEGED_ROLE_ADMIN_TEMPLATE_ID),
            role_target("Tier0 Operators", PRIVILEGED_ROLE_ADMIN_TEMPLATE_ID),
        ],
        user_agent=UA_BROWSER,
        logged_by="PIM",
        operation_type="Assign",
    )
    pim_item = entra_user_item(
        b,
        "entra-pim-eligible-privileged-role",
        "attack",
        "New user made eligible (PIM, permanent) for Privileged Role Administrator under another name",
        nestor,
        [ref(p_user, "creation", True, False, "user", tier0), ref(p_role, "privilege", False)],
        is_service_account=False,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
        notes="admin by role template ID although the display name says 'Tier0 Operators'",
    )
    items.append(pim_item)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [pim_item.key], pim_item.events[:]))
    # benign: an existing user given Message Center Reader for a day (a follow-on, not admin, no detection)
    t = b.at(4.5)
    reader = upn("lee.gu")
    r_role = b.entra_audit(
        t,
        "Add member to role in PIM completed (timebound)",
        category="RoleManagement",
        initiated_by=b.user_initiator(patti, patti_ip),
        targets=[
            member(reader, "Lee Gu", "Message Center Reader", MESSAGE_CENTER_READER_TEMPLATE_ID),
            role_target("Message Center Reader", MESSAGE_CENTER_READER_TEMPLATE_ID),
        ],
        user_agent=UA_BROWSER,
        logged_by="PIM",
        operation_type="Assign",
    )
    items.append(
        entra_user_item(
            b,
            "benign-entra-pim-reader",
            BENIGN_VARIANT,
            "Existing user given Message Center Reader for a day through PIM (not an admin role)",
            patti,
            [ref(r_role, "privilege", False)],
        )
    )

    # -- cross-tenant synchronization provisions an outside tenant's user (by the SyncFabric app ID)
    t = b.at(3.5)
    synced = "eve_attacker-tenant.example#EXT#@" + TENANT_DOMAIN
    x_user = b.entra_audit(
        t,
        "Add user",
        category="UserManagement",
        initiated_by=b.app_initiator("Cross-tenant synchronization", APPID_SYNC_FABRIC),
        targets=[b.user_target(synced, "Eve (attacker tenant)")],
        logged_by="Account Provisioning",
    )
    items.append(
        entra_user_item(
            b,
            "entra-cross-tenant-sync-user",
            "attack",
            "User from another tenant provisioned by cross-tenant synchronization",
            "Cross-tenant synchronization",
            [ref(x_user, "creation", True, False, "cross_tenant_user", synced)],
            is_service_account=False,
            notes="HR inbound provisioning (benign-workday-inbound) uses the same app for members: kind user",
        )
    )
    items[-1].actor_id = b.object_id("Cross-tenant synchronization")
    items[-1].actor_type = "app"
    assert all(i.platform in (AZURE_AD, OFFICE_365) for i in items)
    return items
