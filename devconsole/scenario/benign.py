"""Benign provisioning that looks like an attack: pipelines, configuration management, CloudFormation,
service-linked roles, directory sync, HR provisioning, managed identities and a break-glass account;
each with the allowlist entry that covers it."""

from __future__ import annotations

import json

from .facts import (
    APPID_SYNC_FABRIC,
    AWS,
    AWS_ACCOUNT,
    AZURE_AD,
    CHAIN_AWS_USER_CREDENTIAL,
    CHAIN_PRIVILEGE_GRANT,
    TENANT_DOMAIN,
    UA_ANSIBLE,
    UA_BROWSER,
    UA_PUPPET,
    UA_TERRAFORM,
)
from .feeds import Builder
from .formats import aws_create_date
from .model import ChainSpec, Item, aws_item, entra_user_item, ref


def benign_items(b: Builder, chains: list[ChainSpec]) -> list[Item]:
    """The benign items; the chains they form are appended to ``chains``."""
    items: list[Item] = []

    def upn(name: str) -> str:
        return f"{name}@{TENANT_DOMAIN}"

    # Terraform pipeline role: three runs (user + key, two roles).
    tf_events = []
    for hours, what in ((21, "user"), (13, "role"), (2, "role2")):
        session = f"gha-run-{b.rng.randrange(4000, 9000)}"
        identity = b.assumed_role("TerraformDeployRole", session)
        ip = f"10.20.4.{b.rng.randrange(10, 250)}"
        t = b.at(hours)
        if what == "user":
            u = b.create_user(t, identity, ip, UA_TERRAFORM, "svc-reporting")
            k = b.create_access_key(t + 3_000, identity, ip, UA_TERRAFORM, "svc-reporting")
            tf_events += [
                ref(u, "creation", True, False, "user", "svc-reporting"),
                ref(k, "credential", True, False, "access_key", "svc-reporting"),
            ]
        else:
            name = "app-lambda-exec" if what == "role" else "etl-glue-job"
            service = "lambda.amazonaws.com" if what == "role" else "glue.amazonaws.com"
            r = b.create_role(t, identity, ip, UA_TERRAFORM, name, service)
            tf_events.append(ref(r, "creation", True, True, "iam_role", name))
    tf_arn = f"arn:aws:iam::{AWS_ACCOUNT}:role/TerraformDeployRole"
    items.append(
        Item(
            "benign-terraform-pipeline",
            "benign",
            "Terraform pipeline role creating IAM users and roles",
            AWS,
            "TerraformDeployRole",
            tf_arn,
            "AssumedRole",
            tf_events,
            chain_kind=CHAIN_AWS_USER_CREDENTIAL,
            allowlist={
                "actor_id": tf_arn,
                "source_cidr": "10.20.0.0/16",
                "user_agent_regex": r"HashiCorp/1\.0 Terraform/",
                "justification": "GitHub Actions Terraform pipeline (infra-live repo)",
            },
        )
    )
    chains.append(ChainSpec(CHAIN_AWS_USER_CREDENTIAL, ["benign-terraform-pipeline"], tf_events[:2]))

    ansible = b.assumed_role("AnsibleProvisioner", "ansible-awx-01")
    t = b.at(17)
    a = b.create_user(t, ansible, "10.30.8.15", UA_ANSIBLE, "deploy-bot-07")
    ansible_arn = ansible["sessionContext"]["sessionIssuer"]["arn"]
    items.append(
        aws_item(
            "benign-ansible",
            "benign",
            "Ansible (amazon.aws) creating a deployment user",
            ansible,
            [ref(a, "creation", True, False, "user", "deploy-bot-07")],
            is_service_account=False,
            allowlist={
                "actor_id": ansible_arn,
                "source_cidr": "10.30.8.0/24",
                "user_agent_regex": r"Ansible/2\.",
                "justification": "AWX job template 'iam-users'",
            },
        )
    )

    puppet = b.assumed_role("PuppetProvisioner", "puppet-agent-02")
    t = b.at(11)
    p = b.create_user(t, puppet, "10.40.2.9", UA_PUPPET, "svc-monitoring")
    puppet_arn = puppet["sessionContext"]["sessionIssuer"]["arn"]
    items.append(
        aws_item(
            "benign-puppet",
            "benign",
            "Puppet creating a monitoring user",
            puppet,
            [ref(p, "creation", True, False, "user", "svc-monitoring")],
            is_service_account=False,
            allowlist={
                "actor_id": puppet_arn,
                "source_cidr": "10.40.2.0/24",
                "user_agent_regex": None,
                "justification": "Puppet aws module",
            },
        )
    )

    cfn = b.assumed_role(
        "CloudFormationExecutionRole", "AWSCloudFormation", invoked_by="cloudformation.amazonaws.com"
    )
    t = b.at(15)
    stack_role = f"orders-stack-LambdaExecutionRole-{b.upper_id('', 12)}"
    r = b.create_role(
        t,
        cfn,
        "cloudformation.amazonaws.com",
        "cloudformation.amazonaws.com",
        stack_role,
        "lambda.amazonaws.com",
    )
    cfn_arn = cfn["sessionContext"]["sessionIssuer"]["arn"]
    items.append(
        aws_item(
            "benign-cloudformation",
            "benign",
            "CloudFormation stack creating its Lambda execution role",
            cfn,
            [ref(r, "creation", True, True, "iam_role", stack_role)],
            is_service_account=True,
            allowlist={
                "actor_id": cfn_arn,
                "invoked_by": "cloudformation.amazonaws.com",
                "source_cidr": None,
                "user_agent_regex": None,
                "justification": "CloudFormation stack role",
            },
        )
    )

    sso = b.assumed_role(
        "AWSReservedSSO_AdministratorAccess_3f2a9c1d7e5b4a60",
        "alice@corp.example",
        mfa=True,
        invoked_by="resource-explorer-2.amazonaws.com",
    )
    t = b.at(19)
    service = "resource-explorer-2.amazonaws.com"
    slr_arn = f"arn:aws:iam::{AWS_ACCOUNT}:role/aws-service-role/{service}/AWSServiceRoleForResourceExplorer"
    slr = b.cloudtrail(
        t,
        "CreateServiceLinkedRole",
        sso,
        service,
        service,
        request={"aWSServiceName": service},
        response={
            "role": {
                "path": f"/aws-service-role/{service}/",
                "roleName": "AWSServiceRoleForResourceExplorer",
                "roleId": b.aws_principal(slr_arn, "AROA"),
                "arn": slr_arn,
                "createDate": aws_create_date(t),
            }
        },
    )
    items.append(
        Item(
            "benign-service-linked-role",
            "benign",
            "Service-linked role created by AWS Resource Explorer",
            AWS,
            service,
            service,
            "AWSService",
            [ref(slr, "creation", True, True, "service_linked_role", "AWSServiceRoleForResourceExplorer")],
            is_service_account=True,
            allowlist={
                "actor_id": service,
                "invoked_by": service,
                "source_cidr": None,
                "user_agent_regex": None,
                "justification": "AWS service creating its own service-linked role",
            },
        )
    )

    sync = upn(f"Sync_AADC01_{b.hexstr(12)}")
    sync_events = []
    for hours in (22, 14, 1.5):
        hire = (
            f"{b.rng.choice(['j', 'k', 'm', 's', 't'])}.{b.rng.choice(['smith', 'garcia', 'chen', 'okafor'])}"
        )
        hire_upn = f"{hire}{b.rng.randrange(10, 99)}@contoso.example"
        e = b.entra_add_user(b.at(hours), sync, "203.0.113.10", hire_upn, hire.title())
        sync_events.append(ref(e, "creation", True, False, "user", hire_upn))
    items.append(
        entra_user_item(
            b,
            "benign-entra-connect-sync",
            "benign",
            "Entra Connect sync account creating synchronized users",
            sync,
            sync_events,
            is_service_account=False,
            allowlist={
                "actor_id": b.object_id(sync),
                "source_cidr": "203.0.113.10/32",
                "user_agent_regex": None,
                "justification": "On-Premises Directory Synchronization Service Account (AADC01)",
            },
        )
    )

    workday = "Workday to Microsoft Entra ID User Provisioning"
    wd_events = []
    for hours in (18, 6.5):
        hire_upn = upn(f"new.hire{b.rng.randrange(100, 999)}")
        e = b.entra_audit(
            b.at(hours),
            "Add user",
            category="UserManagement",
            initiated_by=b.app_initiator(workday, APPID_SYNC_FABRIC),
            targets=[b.user_target(hire_upn, "New Hire")],
            logged_by="Account Provisioning",
        )
        wd_events.append(ref(e, "creation", True, False, "user", hire_upn))
    items.append(
        Item(
            "benign-workday-inbound",
            "benign",
            "Workday inbound provisioning creating new hires",
            AZURE_AD,
            workday,
            b.object_id(workday),
            "servicePrincipal",
            wd_events,
            is_service_account=False,
            allowlist={
                "actor_id": b.object_id(workday),
                "source_cidr": None,
                "user_agent_regex": None,
                "justification": "HR inbound provisioning (servicePrincipalId, not display name)",
            },
        )
    )

    msi = "Managed Service Identity"
    t = b.at(12.5)
    vm = "vm-web-01"
    msi_target = {
        "id": b.object_id(vm),
        "displayName": vm,
        "type": "ServicePrincipal",
        "modifiedProperties": [],
    }
    m1 = b.entra_audit(
        t,
        "Add service principal",
        category="ApplicationManagement",
        initiated_by=b.app_initiator(msi),
        targets=[msi_target],
    )
    m2 = b.entra_audit(
        t + 2_000,
        "Add service principal credentials",
        category="ApplicationManagement",
        initiated_by=b.app_initiator(msi),
        targets=[
            {
                **msi_target,
                "modifiedProperties": [
                    {
                        "displayName": "KeyDescription",
                        "oldValue": "[]",
                        "newValue": json.dumps(
                            [
                                f"[KeyIdentifier={b.uuid()},KeyType=AsymmetricX509Cert,"
                                "KeyUsage=Verify,DisplayName=CN=vm-web-01]"
                            ]
                        ),
                    }
                ],
            }
        ],
    )
    items.append(
        Item(
            "benign-managed-identity",
            "benign",
            "Managed Service Identity creating a VM's identity and certificate",
            AZURE_AD,
            msi,
            b.object_id(msi),
            "servicePrincipal",
            [
                ref(m1, "creation", True, True, "service_principal", vm),
                ref(m2, "credential", True, True, "credential", vm),
            ],
            is_service_account=True,
            allowlist={
                "actor_id": b.object_id(msi),
                "source_cidr": None,
                "user_agent_regex": None,
                "justification": "Microsoft first-party initiator (default allowlist)",
            },
        )
    )

    bg, bg_ip = upn("breakglass-01"), "203.0.113.200"
    t = b.at(2.5)
    temp = upn("ir-temp-admin")
    g1 = b.entra_add_user(t, bg, bg_ip, temp, "IR Temp Admin", user_agent=UA_BROWSER)
    g2 = b.entra_global_admin_grant(t + 120_000, bg, bg_ip, temp, "IR Temp Admin", UA_BROWSER)
    bg_item = entra_user_item(
        b,
        "benign-break-glass",
        "benign",
        "Break-glass account creating a temporary incident-response admin",
        bg,
        [ref(g1, "creation", True, False, "user", temp), ref(g2, "privilege", False, False, "user", temp)],
        is_service_account=False,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
        allowlist={
            "actor_id": b.object_id(bg),
            "source_cidr": "203.0.113.200/32",
            "user_agent_regex": None,
            "max_ttl_hours": 24,
            "justification": "IR-4711 break-glass use, approved by the CISO",
        },
    )
    items.append(bg_item)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [bg_item.key], bg_item.events[:]))
    return items
