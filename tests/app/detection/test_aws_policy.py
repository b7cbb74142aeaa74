"""The AWS policy evaluator: what makes a policy document, a managed policy ARN or a group name
administrator, with the spellings attackers use to step around a naive check."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from app.detection.aws_policy import (
    document_is_admin,
    group_name_is_admin,
    is_managed_admin_arn,
    policy_is_admin,
)


def doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@pytest.mark.parametrize(
    "action",
    [
        "*",
        "iam:*",
        "IAM:*",
        "Iam:CreateAccessKey",
        "iam:Create*",
        "iam:Attach?serPolicy",
        ["s3:GetObject", "iam:*"],
    ],
)
def test_allow_actions_that_are_admin(action) -> None:
    assert document_is_admin(doc({"Effect": "Allow", "Action": action, "Resource": "*"}))


@pytest.mark.parametrize(
    "action", ["s3:*", "iam:Get*", "iam:List*", "logs:CreateLogGroup", "iam:PassRole", [], "iamx:*"]
)
def test_allow_actions_that_are_not_admin(action) -> None:
    assert not document_is_admin(doc({"Effect": "Allow", "Action": action, "Resource": "*"}))


def test_not_action_with_allow_is_admin_unless_it_excludes_every_escalation() -> None:
    assert document_is_admin(doc({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}))
    assert document_is_admin(
        doc({"Effect": "Allow", "NotAction": ["iam:Get*", "iam:List*"], "Resource": "*"})
    )
    assert not document_is_admin(doc({"Effect": "Allow", "NotAction": ["IAM:*", "organizations:*"]}))
    assert not document_is_admin(doc({"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}))


def test_deny_is_ignored_and_keys_are_case_insensitive() -> None:
    assert document_is_admin(
        doc({"Effect": "Allow", "Action": "*", "Resource": "*"}, {"Effect": "Deny", "Action": "iam:*"})
    )
    assert document_is_admin({"statement": {"effect": "allow", "action": "*"}})
    assert not document_is_admin(doc({"Effect": "Deny", "Action": "*", "Resource": "*"}))


def test_document_as_json_text_and_url_encoded_text() -> None:
    text = json.dumps(doc({"Effect": "Allow", "Action": "iam:*", "Resource": "*"}))
    assert document_is_admin(text)
    assert document_is_admin(urllib.parse.quote(text))


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "",
        "not json",
        "{",
        "[]",
        42,
        {"Statement": "x"},
        {"Statement": [1, None, "s"]},
        "[" * 100_000,
        {"Statement": [{"Effect": ["Allow"], "Action": {"a": 1}}]},
        "%7B" * 50_000,
    ],
)
def test_garbage_is_not_admin_and_never_raises(garbage) -> None:
    assert document_is_admin(garbage) is False


def test_managed_admin_arns() -> None:
    assert is_managed_admin_arn("arn:aws:iam::aws:policy/AdministratorAccess")
    assert is_managed_admin_arn("arn:aws-us-gov:iam::aws:policy/IAMFullAccess")
    assert is_managed_admin_arn("arn:aws:iam::aws:policy/PowerUserAccess")
    assert is_managed_admin_arn("arn:aws:iam::aws:policy/job-function/AdministratorAccess")
    # A customer policy merely named like one is judged by its contents, not its name.
    assert not is_managed_admin_arn("arn:aws:iam::111122223333:policy/AdministratorAccess")
    assert not is_managed_admin_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert not is_managed_admin_arn("arn:aws:iam::aws:policy/NotAdministratorAccess")
    assert not is_managed_admin_arn(None)
    assert policy_is_admin(None, doc({"Effect": "Allow", "Action": "*"}))


@pytest.mark.parametrize(
    "name", ["admins", "Administrators", "admin-team", "OrgAdmins", "cloud_admin", "ROOT"]
)
def test_admin_group_names(name: str) -> None:
    assert group_name_is_admin(name)


@pytest.mark.parametrize("name", ["badminton-club", "developers", "adminton", "sysadministration", "", None])
def test_non_admin_group_names(name) -> None:
    assert not group_name_is_admin(name)
