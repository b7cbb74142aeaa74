"""Platform from the log source type and service-account flag from what was created — including the
cases a query keyed on event names alone classifies wrongly."""

from __future__ import annotations

import pytest

from app.aql.detection import AWS, AZURE_AD, DEFAULT_LOG_SOURCE_TYPE_IDS, GCP, GOOGLE_WORKSPACE, OFFICE_365
from app.detection.classify import account_kind, is_service_account, platform_for
from app.detection.extract import Identifiers

TYPE_IDS = DEFAULT_LOG_SOURCE_TYPE_IDS


def seed_platform(qid_name: str) -> str:
    """The seed query's CASE for cloud_platform, transcribed literally (the behaviour we replace)."""
    n = qid_name.lower()
    if "createuser" in n or "createrole" in n:
        return "AWS"
    if "add user" in n or "add service principal" in n:
        return "AzureAD"
    if "new-msoluser" in n or "add user." in n:
        return "O365"
    return "Unknown"


def seed_is_service_account(qid_name: str) -> int:
    n = qid_name.lower()
    return int("service principal" in n or "role" in n or "application" in n)


@pytest.mark.parametrize(
    ("devicetype", "type_name", "expected"),
    [
        (347, "Amazon AWS CloudTrail", AWS),
        (445, "Microsoft Azure Active Directory", AZURE_AD),
        (413, "Microsoft Azure Platform", AZURE_AD),
        (397, "Microsoft Office 365", OFFICE_365),
        (449, "Google Cloud Audit", GCP),
        (9999, "Google Cloud Audit Logs", GCP),  # unknown ID: the type name still says GCP
        (442, "Google G Suite", GOOGLE_WORKSPACE),
        (9998, "Google G Suite", GOOGLE_WORKSPACE),  # not "Google Cloud": its own platform
        (9997, "Google Workspace Admin", GOOGLE_WORKSPACE),
        (12, "Linux OS", None),
    ],
)
def test_platform_comes_from_log_source_type(devicetype: int, type_name: str, expected: str | None) -> None:
    assert platform_for(devicetype, type_name, TYPE_IDS) == expected


def test_seed_bug_o365_add_user_is_office_365_not_azure_ad() -> None:
    assert seed_platform("Add user.") == "AzureAD"  # the seed's answer
    assert platform_for(397, "Microsoft Office 365", TYPE_IDS) == OFFICE_365


@pytest.mark.parametrize("name", ["CreateServiceLinkedRole", "CreateVirtualMFADevice"])
def test_seed_bug_aws_names_it_called_unknown(name: str) -> None:
    assert seed_platform(name) == "Unknown"
    assert platform_for(347, "Amazon AWS CloudTrail", TYPE_IDS) == AWS


def test_seed_bug_add_application_and_gcp_were_unknown() -> None:
    assert seed_platform("Add application") == "Unknown"
    assert seed_platform("google.iam.admin.v1.CreateServiceAccount") == "Unknown"
    assert platform_for(445, None, TYPE_IDS) == AZURE_AD
    assert platform_for(449, None, TYPE_IDS) == GCP


@pytest.mark.parametrize(
    ("platform", "name", "kind", "service"),
    [
        (AWS, "CreateUser", "user", False),
        (AWS, "CreateRole", "iam_role", True),
        (AWS, "CreateServiceLinkedRole", "service_linked_role", True),
        (AWS, "CreateVirtualMFADevice", "mfa_device", False),
        (AWS, "CreateAccessKey", "access_key", False),
        (AWS, "CreateLoginProfile", "login_profile", False),
        (AZURE_AD, "Add user", "user", False),
        (AZURE_AD, "Add service principal", "service_principal", True),
        (AZURE_AD, "Add application", "application", True),
        (AZURE_AD, "Add service principal credentials", "credential", True),
        (OFFICE_365, "Add user.", "user", False),
        (OFFICE_365, "Add User.", "user", False),
        (OFFICE_365, "Add service principal.", "service_principal", True),
        (OFFICE_365, "New-MsolUser", "user", False),
        (GCP, "google.iam.admin.v1.CreateServiceAccount", "service_account", True),
        (GCP, "google.iam.admin.v1.CreateServiceAccountKey", "service_account_key", True),
        (AZURE_AD, "Add member to role", "other", False),
    ],
)
def test_account_kind_and_service_flag(platform: str, name: str, kind: str, service: bool) -> None:
    assert account_kind(platform, name) == kind
    assert is_service_account(kind, Identifiers()) is service


@pytest.mark.parametrize(
    "name", ["Add member to role.", "Add eligible member to role", "Consent to application."]
)
def test_seed_bug_role_and_application_substrings(name: str) -> None:
    assert seed_is_service_account(name) == 1  # the seed flags these as service accounts
    assert not is_service_account(account_kind(OFFICE_365, name))


def test_seed_bug_gcp_service_account_was_not_a_service_account() -> None:
    assert seed_is_service_account("google.iam.admin.v1.CreateServiceAccount") == 0
    assert is_service_account(account_kind(GCP, "google.iam.admin.v1.CreateServiceAccount"))


def test_credential_on_a_user_object_is_not_a_service_account() -> None:
    assert is_service_account("credential", Identifiers(target_type="ServicePrincipal"))
    assert not is_service_account("credential", Identifiers(target_type="User"))
