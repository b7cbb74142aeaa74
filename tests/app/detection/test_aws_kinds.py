"""AWS kinds from the payload: the eventSource tells IAM's CreateUser from Identity Center's and from a
service's own users; CreateAccessKey for oneself is a rotation; MFA and IAM groups are context only;
chains take account assignments as grants and context events only into chains that exist."""

from __future__ import annotations

import json

import pytest

from app.aql.detection import AWS
from app.detection import chains
from app.detection.classify import account_kind, is_service_account
from app.detection.extract import extract
from app.kinds import CONTEXT_ONLY_KINDS, kind_of, severity_for


def trail(
    name: str, request: object, response: object = None, *, source: str = "iam.amazonaws.com", **kw
) -> str:
    identity = kw.get("identity") or {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::111122223333:assumed-role/Ops/x",
        "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/Ops"}},
    }
    return json.dumps(
        {
            "eventSource": source,
            "eventName": name,
            "userIdentity": identity,
            "requestParameters": request,
            "responseElements": response,
        }
    )


def kind(name: str, payload: str) -> tuple[str, object]:
    ids = extract(AWS, name, payload)
    return account_kind(AWS, name, ids), ids


@pytest.mark.parametrize(
    ("source", "label"),
    [
        ("transfer.amazonaws.com", "Transfer Family user"),
        ("elasticache.amazonaws.com", "ElastiCache user"),
        ("memorydb.amazonaws.com", "MemoryDB user"),
        ("mq.amazonaws.com", "Amazon MQ broker user"),
        ("newservice.amazonaws.com", "newservice user"),
    ],
)
def test_non_iam_create_user_is_a_service_user_not_iam(source: str, label: str) -> None:
    found, ids = kind("CreateUser", trail("CreateUser", {"userName": "u1"}, source=source))
    assert found == "service_user" and ids.target_type == label and ids.target_account == "u1"
    assert kind_of(found).label == "Service user (not IAM)" and severity_for(found, 7) == 3
    assert not is_service_account(found, ids)


def test_iam_create_user_stays_a_user_and_no_payload_means_iam() -> None:
    assert kind("CreateUser", trail("CreateUser", {"userName": "u1"}))[0] == "user"
    assert account_kind(AWS, "CreateUser") == "user"
    assert account_kind(AWS, "CreateAccount") == "aws_account"  # unambiguous without a payload


@pytest.mark.parametrize("source", ["sso-directory.amazonaws.com", "identitystore.amazonaws.com"])
def test_identity_center_user_is_labelled_identity_center(source: str) -> None:
    payload = trail(
        "CreateUser",
        {"identityStoreId": "d-1", "userName": "HIDDEN_DUE_TO_SECURITY_REASONS", "displayName": "Eve"},
        {"userId": "uid-1"},
        source=source,
    )
    found, ids = kind("CreateUser", payload)
    assert found == "identity_center_user" and kind_of(found).label == "Identity Center user"
    assert ids.target_account == "Eve" and ids.target_id == "uid-1"
    assert "hidden_due_to_security_reasons" not in ids.target_keys and "uid-1" in ids.target_keys


def test_identity_center_group_permission_set_assignment_and_organizations() -> None:
    group = trail(
        "CreateGroup", {"displayName": "g"}, {"groupId": "gid"}, source="identitystore.amazonaws.com"
    )
    assert kind("CreateGroup", group)[0] == "identity_center_group"
    assert kind("CreateGroup", trail("CreateGroup", {"groupName": "devs"}))[0] == "iam_group"
    pset = trail("CreatePermissionSet", {"name": "P"}, None, source="sso.amazonaws.com")
    assert kind("CreatePermissionSet", pset)[0] == "permission_set"
    assignment = trail(
        "CreateAccountAssignment",
        {"principalId": "uid-1", "principalType": "USER", "permissionSetArn": "arn:ps", "targetId": "4444"},
        source="sso.amazonaws.com",
    )
    found, ids = kind("CreateAccountAssignment", assignment)
    assert found == "account_assignment" and ids.target_account == "uid-1" and ids.granted == "arn:ps"
    org = "organizations.amazonaws.com"
    assert kind("CreateAccount", trail("CreateAccount", {"accountName": "a"}, source=org))[0] == "aws_account"
    assert kind("CreateGovCloudAccount", trail("CreateGovCloudAccount", {}, source=org))[0] == "aws_account"
    invite = trail("InviteAccountToOrganization", {"target": {"id": "7777"}}, source=org)
    assert kind("InviteAccountToOrganization", invite)[0] == "aws_account_invitation"
    # The same event name from another service is not an Organizations account.
    assert kind("CreateAccount", trail("CreateAccount", {}, source="chime.amazonaws.com"))[0] == "other"


def test_access_key_for_another_user_vs_for_oneself() -> None:
    alice = {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::1:user/alice"}
    other = trail("CreateAccessKey", {"userName": "bob"}, {"accessKey": {"userName": "bob"}}, identity=alice)
    assert kind("CreateAccessKey", other)[0] == "access_key"
    own_implicit = trail("CreateAccessKey", None, {"accessKey": {"userName": "alice"}}, identity=alice)
    own_named = trail("CreateAccessKey", {"userName": "alice"}, None, identity=alice)
    for payload in (own_implicit, own_named):
        found, ids = kind("CreateAccessKey", payload)
        assert found == "own_access_key" and ids.target_account == "alice"
        assert severity_for(found, 7) == 3
    # A role naming a user makes a key for that user, never its "own".
    assert kind("CreateAccessKey", trail("CreateAccessKey", {"userName": "alice"}))[0] == "access_key"
    # Without a readable payload the key is judged as one for another user (the stronger signal).
    assert account_kind(AWS, "CreateAccessKey", extract(AWS, "CreateAccessKey", "not json")) == "access_key"


def test_mfa_and_iam_groups_are_context_only() -> None:
    assert {"mfa_device", "iam_group"} <= CONTEXT_ONLY_KINDS
    assert kind("EnableMFADevice", trail("EnableMFADevice", {"userName": "u"}))[0] == "mfa_device"
    assert kind("CreateVirtualMFADevice", trail("CreateVirtualMFADevice", {}))[0] == "mfa_device"


def ev(key: str, t: int, name: str, kind_: str = "other", *, creation: bool = True, keys=("u",), admin=False):
    return chains.ChainEvent(
        event_key=key,
        event_time=t,
        platform=AWS,
        event_name=name,
        account_kind=kind_,
        actor_id="arn:role/ops",
        target_keys=frozenset(keys),
        admin_grant=admin,
        is_creation=creation,
    )


def test_account_assignment_chains_with_the_identity_center_user_and_never_alone() -> None:
    user = ev("u", 0, "CreateUser", "identity_center_user", keys=("eve", "uid-1"))
    assignment = ev("a", 3_600_000, "CreateAccountAssignment", "account_assignment", keys=("uid-1",))
    (chain,) = chains.build_chains([user, assignment], [])
    assert chain.kinds == [chains.PRIVILEGE_GRANT] and [e.event_key for e in chain.events] == ["u", "a"]
    assert chains.build_chains([assignment], []) == []
    assert chains.is_chain_candidate(AWS, "account_assignment")


def test_context_events_join_an_existing_chain_only() -> None:
    user = ev("u", 0, "CreateUser", "user")
    key = ev("k", 30_000, "CreateAccessKey", "access_key")
    mfa = ev("m", 60_000, "EnableMFADevice", "mfa_device", creation=False)
    (chain,) = chains.build_chains([user, key], [mfa])
    assert [e.event_key for e in chain.events] == ["u", "k", "m"] and not chain.admin
    # Alone with a creation, an MFA enrolment starts nothing.
    assert chains.build_chains([user], [mfa]) == []
    # Long after the chain, or for another target, it stays out.
    late = ev("late", 3 * 3_600_000, "EnableMFADevice", "mfa_device", creation=False)
    other = ev("o", 60_000, "EnableMFADevice", "mfa_device", creation=False, keys=("someone-else",))
    (chain,) = chains.build_chains([user, key], [late, other])
    assert [e.event_key for e in chain.events] == ["u", "k"]
