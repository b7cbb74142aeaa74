"""Look-alikes that are not creations (failed or denied creations, a group membership, a password spray
with its offense): the manifest names them so tests can check nothing is detected for them."""

from __future__ import annotations

from .facts import (
    AZURE_AD,
    GCP,
    GCP_PROJECT,
    TENANT_DOMAIN,
    UA_AWS_CLI,
    UA_BROWSER,
    UA_GCLOUD,
)
from .feeds import Builder
from .model import Item, OffenseSpec, aws_item, entra_user_item, ref
from .offenses import LOGIN_FAILURE_RULES, OFFENSE_TYPE_SOURCE_IP


def noise_samples(b: Builder, offenses: list[OffenseSpec]) -> list[Item]:
    """The noise-sample items; the password spray's offense is appended to ``offenses``."""
    items: list[Item] = []
    intern = b.iam_user("intern-readonly")
    t = b.at(9.5)
    f1 = b.create_user(
        t,
        intern,
        "203.0.113.90",
        UA_AWS_CLI.format(command="iam.create-user"),
        "shadow-admin",
        error=(
            "AccessDenied",
            "User: arn:aws:iam::111122223333:user/intern-readonly is not "
            "authorized to perform: iam:CreateUser on resource: "
            "arn:aws:iam::111122223333:user/shadow-admin",
        ),
    )
    items.append(
        aws_item(
            "noise-failed-aws-create-user",
            "noise-sample",
            "Failed CreateUser (AccessDenied): not a creation",
            intern,
            [ref(f1, "failed", False)],
        )
    )

    pradeep, ip = f"pradeep.gupta@{TENANT_DOMAIN}", "203.0.113.91"
    t = b.at(7.5)
    target = f"shadow.admin@{TENANT_DOMAIN}"
    f2 = b.entra_add_user(
        t,
        pradeep,
        ip,
        target,
        "Shadow Admin",
        result="failure",
        result_reason="Insufficient privileges to complete the operation.",
        user_agent=UA_BROWSER,
    )
    f3 = b.o365(t + 2_000, "Add user.", pradeep, object_id=target, result="Failed", actor_ip=ip)
    items.append(
        entra_user_item(
            b,
            "noise-failed-entra-add-user",
            "noise-sample",
            "Failed Add user (Entra and Office 365): not a creation",
            pradeep,
            [ref(f2, "failed", False), ref(f3, "failed", False)],
        )
    )

    t = b.at(11.5)
    f4 = b.gcp(
        t,
        "google.iam.admin.v1.CreateServiceAccount",
        "dev.sandbox@acme.example",
        "203.0.113.92",
        UA_GCLOUD.format(command="create", invocation=b.uuid()),
        permission="iam.serviceAccounts.create",
        denied=True,
        request={
            "@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountRequest",
            "account_id": "sandbox-runner",
            "name": f"projects/{GCP_PROJECT}",
        },
    )
    items.append(
        Item(
            "noise-failed-gcp-service-account",
            "noise-sample",
            "Denied CreateServiceAccount: not a creation",
            GCP,
            "dev.sandbox@acme.example",
            "dev.sandbox@acme.example",
            "user",
            [ref(f4, "failed", False)],
        )
    )

    t = b.at(5.5)
    group = b.entra_audit(
        t,
        "Add member to group",
        category="GroupManagement",
        initiated_by=b.user_initiator(f"adele.vance@{TENANT_DOMAIN}", "203.0.113.45"),
        targets=[
            b.user_target(f"diego.siciliani@{TENANT_DOMAIN}", "Diego Siciliani"),
            {"id": b.uuid(), "displayName": "Sales Team", "type": "Group"},
        ],
        operation_type="Assign",
    )
    items.append(
        entra_user_item(
            b,
            "noise-group-membership",
            "noise-sample",
            "Add member to group: a look-alike name, not a role grant",
            f"adele.vance@{TENANT_DOMAIN}",
            [ref(group, "look-alike", False)],
        )
    )

    # Password spray: failed sign-ins from one address; its offense holds no cloud-account events.
    t = b.at(1)
    spray_ip = "192.0.2.200"
    spray = []
    for i, name in enumerate(
        ["adele.vance", "megan.bowen", "lidia.holloway", "diego.siciliani", "alex.wilber", "pradeep.gupta"]
    ):
        e = b.entra_signin(t + i * 7_000, f"{name}@{TENANT_DOMAIN}", spray_ip, error_code=50126)
        spray.append(ref(e, "sign-in-failure", False))
    items.append(
        Item(
            "noise-password-spray",
            "noise-sample",
            "Password spray: failed sign-ins from one address",
            AZURE_AD,
            spray_ip,
            spray_ip,
            "ip",
            spray,
        )
    )
    offenses.append(
        OffenseSpec(
            "Multiple Login Failures from the Same Source",
            spray,
            ["noise-password-spray"],
            OFFENSE_TYPE_SOURCE_IP,
            spray_ip,
            5,
            6,
            8,
            5,
            rules=LOGIN_FAILURE_RULES,
            has_cloud_account_events=False,
        )
    )
    return items
