"""Amazon AWS CloudTrail (log source type 347): one CloudTrail record (the elements of a
``{"Records": [...]}`` file) → a normalized event.

As IBM's DSM does: the event name (QID name) is ``eventName``; the log source is the AWS account;
``username`` is the actor (``userIdentity``), never the account the call acted on; the new account's
name (``requestParameters.userName``/``roleName``) goes to the "Account Name" custom property.
How QRadar fills Username for assumed roles is UNCONFIRMED: this console uses ``<role>/<session>``.
"""

from __future__ import annotations

from .common import (
    ACCOUNT_ADDED,
    ACCOUNT_CHANGED,
    ACCOUNT_REMOVED,
    CREDENTIAL_ADDED,
    GROUP_MEMBER_ADDED,
    LOGIN_SUCCEEDED,
    MANAGEMENT,
    PRIVILEGE_GRANTED,
    READ,
    TYPE_CLOUDTRAIL,
    ActionClass,
    ParsedEvent,
    RecordError,
    clean_ip,
    opt_obj,
    opt_str,
    parse_time_ms,
    req_event_name,
    verb_action,
)

SOURCE = "cloudtrail"

EVENT_ACTIONS: dict[str, ActionClass] = {
    "CreateUser": ACCOUNT_ADDED,
    "CreateRole": ACCOUNT_ADDED,
    "CreateServiceLinkedRole": ACCOUNT_ADDED,
    "CreateAccessKey": CREDENTIAL_ADDED,
    "CreateLoginProfile": CREDENTIAL_ADDED,
    "CreateVirtualMFADevice": CREDENTIAL_ADDED,
    "UploadSSHPublicKey": CREDENTIAL_ADDED,
    "CreateServiceSpecificCredential": CREDENTIAL_ADDED,
    "AttachUserPolicy": PRIVILEGE_GRANTED,
    "AttachRolePolicy": PRIVILEGE_GRANTED,
    "AttachGroupPolicy": PRIVILEGE_GRANTED,
    "PutUserPolicy": PRIVILEGE_GRANTED,
    "PutRolePolicy": PRIVILEGE_GRANTED,
    "AddUserToGroup": GROUP_MEMBER_ADDED,
    "DeleteUser": ACCOUNT_REMOVED,
    "DeleteRole": ACCOUNT_REMOVED,
    "DeleteServiceLinkedRole": ACCOUNT_REMOVED,
    "UpdateLoginProfile": ACCOUNT_CHANGED,
    "UpdateUser": ACCOUNT_CHANGED,
    "UpdateAccessKey": ACCOUNT_CHANGED,
    "DeleteAccessKey": ACCOUNT_CHANGED,
    "DeleteLoginProfile": ACCOUNT_CHANGED,
    "DetachUserPolicy": ACCOUNT_CHANGED,
    "ConsoleLogin": LOGIN_SUCCEEDED,
    # IAM groups, policies and MFA enrolment.
    "CreateGroup": ACCOUNT_ADDED,
    "PutGroupPolicy": PRIVILEGE_GRANTED,
    "CreatePolicy": ACCOUNT_CHANGED,
    "CreatePolicyVersion": ACCOUNT_CHANGED,
    "EnableMFADevice": CREDENTIAL_ADDED,
    # IAM Identity Center (sso-directory / identitystore / sso): the QID name is the eventName alone, as for
    # IAM, so Identity Center's CreateUser shares IAM's QID (UNCONFIRMED for IBM's DSM).
    "CreatePermissionSet": ACCOUNT_ADDED,
    "CreateAccountAssignment": PRIVILEGE_GRANTED,
    "AddMemberToGroup": GROUP_MEMBER_ADDED,
    "CreateGroupMembership": GROUP_MEMBER_ADDED,
    # AWS Organizations.
    "CreateAccount": ACCOUNT_ADDED,
    "CreateGovCloudAccount": ACCOUNT_ADDED,
    "InviteAccountToOrganization": ACCOUNT_ADDED,
}

# Where the account an IAM call acted on is named, per event (requestParameters first, then response).
# CloudTrail's placeholder for request fields it does not log (Identity Center, Organizations).
_HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
_ACCOUNT_KEYS = ("userName", "roleName", "groupName", "username", "accountName", "principalId", "displayName")


def looks_like(record: dict) -> bool:
    return "eventSource" in record and ("eventName" in record or "eventTime" in record)


def action_for(event_name: str) -> ActionClass:
    return verb_action(event_name, EVENT_ACTIONS)


def actor_username(identity: dict) -> str | None:
    """The actor as QRadar's Username: IAM user name, ``role/session`` for assumed roles, the calling
    service for AWS services, ``root`` for the root user."""
    kind = identity.get("type")
    if kind == "IAMUser" and isinstance(identity.get("userName"), str):
        return identity["userName"]
    if kind == "Root":
        return "root"
    if kind == "AWSService":
        return opt_str(identity, "invokedBy", "userIdentity.")
    arn = opt_str(identity, "arn", "userIdentity.")
    if arn and ":assumed-role/" in arn:
        return arn.split(":assumed-role/", 1)[1]
    if arn:
        return arn.rsplit("/", 1)[-1] if "/" in arn else arn
    user_name = identity.get("userName")
    if isinstance(user_name, str) and user_name:
        return user_name
    return opt_str(identity, "principalId", "userIdentity.")


def account_name_of(record: dict, action: ActionClass) -> str | None:
    if action in (READ, MANAGEMENT, LOGIN_SUCCEEDED):
        return None
    request = opt_obj(record, "requestParameters")
    event_name = record.get("eventName")
    if event_name == "CreatePermissionSet" and isinstance(request.get("name"), str):
        return request["name"] or None
    target = request.get("target")
    if event_name == "InviteAccountToOrganization" and isinstance(target, dict):
        value = target.get("id")
        return value if isinstance(value, str) and value and value != _HIDDEN else None
    for key in _ACCOUNT_KEYS:
        value = request.get(key)
        if isinstance(value, str) and value and value != _HIDDEN:
            return value
    response = opt_obj(record, "responseElements")
    for wrapper in ("user", "role", "accessKey", "loginProfile", "group", "createAccountStatus"):
        inner = response.get(wrapper)
        if isinstance(inner, dict):
            for key in _ACCOUNT_KEYS:
                value = inner.get(key)
                if isinstance(value, str) and value:
                    return value
    return None


def parse(record: dict) -> ParsedEvent:
    event_name = req_event_name(record, "eventName")
    if not isinstance(record.get("eventSource"), str):
        raise RecordError("eventSource must be a string")
    time_ms = parse_time_ms(record.get("eventTime"), "eventTime")
    identity = opt_obj(record, "userIdentity")
    account = opt_str(record, "recipientAccountId") or opt_str(identity, "accountId", "userIdentity.")
    action = action_for(event_name)
    error_code = record.get("errorCode")
    failed = bool(error_code)
    if event_name == "ConsoleLogin":
        response = opt_obj(record, "responseElements")
        failed = failed or response.get("ConsoleLogin") == "Failure"
    return ParsedEvent(
        source=SOURCE,
        type_id=TYPE_CLOUDTRAIL,
        log_source_name=f"AWS CloudTrail @ {account or 'unknown'}",
        event_name=event_name,
        action=action,
        time_ms=time_ms,
        username=actor_username(identity),
        sourceip=clean_ip(record.get("sourceIPAddress")),
        record_id=opt_str(record, "eventID"),
        account_name=account_name_of(record, action),
        failed=failed,
    )
