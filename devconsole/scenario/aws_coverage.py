"""AWS coverage beyond IAM users and roles: IAM Identity Center users, groups, permission sets and account
assignments; Organizations accounts and invitations; policies judged by their contents and groups learned
to carry admin; MFA enrolments kept as context; and their look-alikes (non-IAM CreateUser, a key rotation,
an Identity Center update, a "badminton-club" group, a lone MFA enrolment).

Drawn from a builder of its own (`generate.py`), so adding these items changes no other item's ids.
"""

from __future__ import annotations

import json

from .facts import (
    ADMIN_POLICY_ARN,
    AWS_ACCOUNT,
    CHAIN_AWS_USER_CREDENTIAL,
    CHAIN_PRIVILEGE_GRANT,
    UA_AWS_CLI,
    UA_BOTO3_SCRIPT,
)
from .feeds import Builder
from .model import ChainSpec, Item, aws_item, ref

IDENTITY_STORE = "d-9067642ac7"
SSO_INSTANCE = "arn:aws:sso:::instance/ssoins-7223b0ba7b2f6b53"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
# Items of this kind are raised at a documented low severity (kinds with a fixed severity in app/kinds.py):
# look-alikes of an attack that are detections, unlike noise samples.
LOOK_ALIKE = "look-alike"


def _policy(statement: dict) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", **statement}]}
    )


def aws_coverage_items(b: Builder) -> tuple[list[Item], list[ChainSpec]]:
    """The items and the chains they form."""
    items: list[Item] = []
    chains: list[ChainSpec] = []
    ip = "198.51.100.77"
    # A stolen session of the identity administrators' role.
    mallory = b.assumed_role("IdentityAdminRole", "mallory-laptop")

    def cli(command: str) -> str:
        return UA_AWS_CLI.format(command=command)

    # -- Identity Center user (identitystore API) then an account assignment for it: a privilege chain.
    t = b.at(15)
    user_id = f"906755d3e1-{b.hexstr(8)}-{b.hexstr(4)}"
    ic_user = b.cloudtrail(
        t,
        "CreateUser",
        mallory,
        ip,
        cli("identitystore.create-user"),
        source="identitystore.amazonaws.com",
        request={"identityStoreId": IDENTITY_STORE, "userName": HIDDEN, "displayName": "Eve Backdoor"},
        response={"userId": user_id, "identityStoreId": IDENTITY_STORE},
    )
    permission_set = f"{SSO_INSTANCE}/ps-{b.hexstr(16)}"
    assignment = b.cloudtrail(
        t + 9 * 60_000,
        "CreateAccountAssignment",
        mallory,
        ip,
        cli("sso-admin.create-account-assignment"),
        source="sso.amazonaws.com",
        request={
            "instanceArn": SSO_INSTANCE,
            "targetId": AWS_ACCOUNT,
            "targetType": "AWS_ACCOUNT",
            "permissionSetArn": permission_set,
            "principalType": "USER",
            "principalId": user_id,
        },
        response={"accountAssignmentCreationStatus": {"status": "IN_PROGRESS", "requestId": b.uuid()}},
    )
    ic_item = aws_item(
        "aws-identity-center-user-assignment",
        "attack",
        "IAM Identity Center user given a permission set on the production account",
        mallory,
        [
            ref(ic_user, "creation", True, False, "identity_center_user", "Eve Backdoor"),
            ref(assignment, "grant", True, False, "account_assignment", user_id),
        ],
        is_service_account=False,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
    )
    items.append(ic_item)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [ic_item.key], ic_item.events[:]))

    # -- Identity Center group and permission set (standalone, documented lower severities).
    t = b.at(14)
    group = b.cloudtrail(
        t,
        "CreateGroup",
        mallory,
        ip,
        cli("identitystore.create-group"),
        source="identitystore.amazonaws.com",
        request={"identityStoreId": IDENTITY_STORE, "displayName": "shadow-operators"},
        response={"groupId": f"906755d3e1-{b.hexstr(8)}", "identityStoreId": IDENTITY_STORE},
    )
    pset = b.cloudtrail(
        t + 120_000,
        "CreatePermissionSet",
        mallory,
        ip,
        cli("sso-admin.create-permission-set"),
        source="sso.amazonaws.com",
        request={"instanceArn": SSO_INSTANCE, "name": "ShadowAdmin", "sessionDuration": "PT12H"},
        response={"permissionSet": {"name": "ShadowAdmin", "permissionSetArn": permission_set}},
    )
    items.append(
        aws_item(
            "aws-identity-center-group-permission-set",
            "attack",
            "IAM Identity Center group and permission set",
            mallory,
            [
                ref(group, "creation", True, False, "identity_center_group", "shadow-operators"),
                ref(pset, "creation", True, False, "permission_set", "ShadowAdmin"),
            ],
            is_service_account=False,
        )
    )

    # -- Organizations: a member account created and another invited.
    t = b.at(13)
    create_account = b.cloudtrail(
        t,
        "CreateAccount",
        mallory,
        ip,
        cli("organizations.create-account"),
        source="organizations.amazonaws.com",
        request={"accountName": "shadow-sandbox", "email": HIDDEN},
        response={"createAccountStatus": {"id": f"car-{b.hexstr(12)}", "state": "IN_PROGRESS"}},
    )
    invite = b.cloudtrail(
        t + 300_000,
        "InviteAccountToOrganization",
        mallory,
        ip,
        cli("organizations.invite-account-to-organization"),
        source="organizations.amazonaws.com",
        request={"target": {"id": "777788889999", "type": "ACCOUNT"}},
        response={"handshake": {"id": f"h-{b.hexstr(10)}", "state": "OPEN"}},
    )
    items.append(
        aws_item(
            "aws-organizations-account-invitation",
            "attack",
            "Organizations member account created, another invited",
            mallory,
            [
                ref(create_account, "creation", True, False, "aws_account", "shadow-sandbox"),
                ref(invite, "creation", True, False, "aws_account_invitation", "777788889999"),
            ],
            is_service_account=False,
        )
    )

    # -- A new user with a console password and an MFA device: the MFA events join its chain as context.
    t = b.at(12)
    c_user = b.create_user(t, mallory, ip, cli("iam.create-user"), "helpdesk-temp")
    c_login = b.create_login_profile(
        t + 20_000, mallory, ip, cli("iam.create-login-profile"), "helpdesk-temp"
    )
    serial = f"arn:aws:iam::{AWS_ACCOUNT}:mfa/helpdesk-temp"
    c_mfa = b.cloudtrail(
        t + 40_000,
        "CreateVirtualMFADevice",
        mallory,
        ip,
        cli("iam.create-virtual-mfa-device"),
        request={"virtualMFADeviceName": "helpdesk-temp"},
        response={"virtualMFADevice": {"serialNumber": serial}},
    )
    c_enable = b.cloudtrail(
        t + 60_000,
        "EnableMFADevice",
        mallory,
        ip,
        cli("iam.enable-mfa-device"),
        request={"userName": "helpdesk-temp", "serialNumber": serial},
    )
    mfa_item = aws_item(
        "aws-user-login-mfa-context",
        "attack",
        "IAM user with a console password and the attacker's MFA device (MFA kept as context)",
        mallory,
        [
            ref(c_user, "creation", True, False, "user", "helpdesk-temp"),
            ref(c_login, "credential", True, False, "login_profile", "helpdesk-temp"),
            ref(c_mfa, "context", False),
            ref(c_enable, "context", False),
        ],
        is_service_account=False,
        chain_kind=CHAIN_AWS_USER_CREDENTIAL,
    )
    items.append(mfa_item)
    chains.append(ChainSpec(CHAIN_AWS_USER_CREDENTIAL, [mfa_item.key], mfa_item.events[:]))

    # -- A customer-managed policy allowing "*" (created first), attached to a new user: judged by contents.
    t = b.at(11)
    policy_arn = f"arn:aws:iam::{AWS_ACCOUNT}:policy/HelpdeskTooling"
    c_policy = b.cloudtrail(
        t,
        "CreatePolicy",
        mallory,
        ip,
        cli("iam.create-policy"),
        request={"policyName": "HelpdeskTooling", "policyDocument": _policy({"Action": "*"})},
        response={"policy": {"policyName": "HelpdeskTooling", "arn": policy_arn, "defaultVersionId": "v1"}},
    )
    p_user = b.create_user(t + 60_000, mallory, ip, cli("iam.create-user"), "tooling-svc")
    p_attach = b.cloudtrail(
        t + 90_000,
        "AttachUserPolicy",
        mallory,
        ip,
        cli("iam.attach-user-policy"),
        request={"userName": "tooling-svc", "policyArn": policy_arn},
    )
    policy_item = aws_item(
        "aws-customer-policy-admin",
        "attack",
        "Customer-managed policy allowing every action, attached to a new user",
        mallory,
        [
            ref(c_policy, "policy", False),
            ref(p_user, "creation", True, False, "user", "tooling-svc"),
            ref(p_attach, "grant", False),
        ],
        is_service_account=False,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
    )
    items.append(policy_item)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [policy_item.key], policy_item.events[1:]))

    # -- A group learned to carry AdministratorAccess (neutral name), then a new user added to it.
    t = b.at(10)
    g_attach = b.cloudtrail(
        t,
        "AttachGroupPolicy",
        mallory,
        ip,
        cli("iam.attach-group-policy"),
        request={"groupName": "platform-ops", "policyArn": ADMIN_POLICY_ARN},
    )
    g_user = b.create_user(t + 60_000, mallory, ip, cli("iam.create-user"), "ops-oncall-2")
    g_add = b.cloudtrail(
        t + 90_000,
        "AddUserToGroup",
        mallory,
        ip,
        cli("iam.add-user-to-group"),
        request={"userName": "ops-oncall-2", "groupName": "platform-ops"},
    )
    group_item = aws_item(
        "aws-admin-group-membership",
        "attack",
        "New user added to a group that carries AdministratorAccess",
        mallory,
        [
            ref(g_attach, "policy", False),
            ref(g_user, "creation", True, False, "user", "ops-oncall-2"),
            ref(g_add, "grant", False),
        ],
        is_service_account=False,
        chain_kind=CHAIN_PRIVILEGE_GRANT,
    )
    items.append(group_item)
    chains.append(ChainSpec(CHAIN_PRIVILEGE_GRANT, [group_item.key], group_item.events[1:]))

    # -- Look-alikes raised at their low severity: non-IAM users and a key rotation.
    t = b.at(9)
    dev = b.assumed_role("PlatformDeployRole", "deploy-2291")
    transfer = b.cloudtrail(
        t,
        "CreateUser",
        dev,
        "10.40.2.17",
        UA_BOTO3_SCRIPT,
        source="transfer.amazonaws.com",
        request={"serverId": "s-0f3b6c1d2e4a59870", "userName": "partner-acme-sftp", "homeDirectory": "/in"},
        response={"serverId": "s-0f3b6c1d2e4a59870", "userName": "partner-acme-sftp"},
    )
    cache = b.cloudtrail(
        t + 300_000,
        "CreateUser",
        dev,
        "10.40.2.17",
        UA_BOTO3_SCRIPT,
        source="elasticache.amazonaws.com",
        request={"userId": "orders-reader", "userName": "orders-reader", "engine": "redis"},
        response={"userId": "orders-reader", "userName": "orders-reader", "status": "creating"},
    )
    items.append(
        aws_item(
            "look-alike-aws-service-users",
            LOOK_ALIKE,
            "Transfer Family and ElastiCache users (not IAM): severity 3",
            dev,
            [
                ref(transfer, "creation", True, False, "service_user", "partner-acme-sftp"),
                ref(cache, "creation", True, False, "service_user", "orders-reader"),
            ],
            is_service_account=False,
        )
    )
    carol = b.iam_user("carol.devops")
    rotation = b.cloudtrail(
        b.at(8),
        "CreateAccessKey",
        carol,
        "203.0.113.140",
        cli("iam.create-access-key"),
        request=None,
        response={
            "accessKey": {"userName": "carol.devops", "accessKeyId": b.upper_id("AKIA"), "status": "Active"}
        },
    )
    items.append(
        aws_item(
            "look-alike-aws-own-key-rotation",
            LOOK_ALIKE,
            "IAM user rotating its own access key: severity 3",
            carol,
            [ref(rotation, "credential", True, False, "own_access_key", "carol.devops")],
            is_service_account=False,
        )
    )

    # -- Not raised: an Identity Center update, a "badminton-club" membership, a lone MFA enrolment.
    t = b.at(7)
    update = b.cloudtrail(
        t,
        "UpdateUser",
        dev,
        "10.40.2.17",
        UA_BOTO3_SCRIPT,
        source="identitystore.amazonaws.com",
        request={"identityStoreId": IDENTITY_STORE, "userId": user_id},
    )
    badminton = b.cloudtrail(
        t + 60_000,
        "AddUserToGroup",
        dev,
        "10.40.2.17",
        UA_BOTO3_SCRIPT,
        request={"userName": "carol.devops", "groupName": "badminton-club"},
    )
    enrol = b.cloudtrail(
        t + 120_000,
        "CreateVirtualMFADevice",
        carol,
        "203.0.113.140",
        UA_BOTO3_SCRIPT,
        request={"virtualMFADeviceName": "carol.devops"},
        response={"virtualMFADevice": {"serialNumber": f"arn:aws:iam::{AWS_ACCOUNT}:mfa/carol.devops"}},
    )
    items.append(
        aws_item(
            "noise-aws-identity-center-update",
            "noise-sample",
            "Identity Center user update and a 'badminton-club' membership (not admin)",
            dev,
            [ref(update, "update", False), ref(badminton, "grant", False)],
        )
    )
    items.append(
        aws_item(
            "noise-aws-mfa-enrolment",
            "noise-sample",
            "An existing user enrolling MFA: context, never raised",
            carol,
            [ref(enrol, "context", False)],
        )
    )
    return items, chains
