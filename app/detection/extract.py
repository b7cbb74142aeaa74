"""Identifiers from the event payload, per platform.

Every payload is attacker-controlled and may be missing, truncated, not JSON or JSON of the wrong shape.
`extract()` never raises: whatever it cannot read falls back to the normalized fields Ariel returned
(username, sourceip, the target custom property), and `Identifiers.payload_ok` says whether the payload
was usable at all.

Field names come from `detection-and-tuning.md` §3. Keys are looked up case-insensitively and ignoring
`_`, so the diagnostic-settings shape (`initiatedBy`), the Sentinel shape (`InitiatedBy`) and GCP's
snake_case request fields (`account_id`) all work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.aql.detection import AWS, AZURE_AD, GCP, GOOGLE_WORKSPACE, OFFICE_365
from app.detection import aws_policy, entra_roles
from app.tuning.matcher import identity

_MISSING = object()
_DECODER = json.JSONDecoder()
# Longest string kept from a payload field; longer values are truncated (they are displayed, not parsed).
_MAX_FIELD = 1024


@dataclass
class Identifiers:
    """What the payload says about who did what to which account."""

    actor: str | None = None
    actor_id: str | None = None
    actor_type: str | None = None
    target_account: str | None = None
    target_id: str | None = None
    target_type: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    correlation_id: str | None = None
    result: str | None = None
    mfa: bool | None = None
    # Every name/ID of every target object, lower-cased: what chains and twin matching join on.
    target_keys: set[str] = field(default_factory=set)
    # Privilege grants: the policy or role granted and whether it is an administrator grant.
    granted: str | None = None
    admin_grant: bool = False
    invoked_by: str | None = None
    payload_ok: bool = False
    # The payload held a JSON object: its state is `PARSED` (`payload_state` would decode it a second time).
    payload_parsed: bool = False
    # Entra: the initiating application's appId (cross-tenant sync), the role template ID of a role grant,
    # and whether the change touched federated identity credentials ("Update application").
    initiator_app_id: str | None = None
    role_template_id: str | None = None
    federated_credential: bool = False
    # AWS: the CloudTrail eventSource (lower-cased), which tells IAM's CreateUser from Identity Center's,
    # Transfer Family's, ...
    event_source: str | None = None
    # AWS CreateAccessKey without another user's name: the caller's own key (a rotation).
    own_credential: bool = False
    # AWS privilege memory (app/detection/aws_memory.py): what this event teaches — ("policy", ARN, admin)
    # or ("group", name, admin) — and what a grant refers to: a policy ARN or a group name.
    aws_learned: tuple[str, str, bool] | None = None
    policy_ref: str | None = None
    group_ref: str | None = None


def parse_payload(payload: str | bytes | None) -> Any:
    """The JSON object inside a payload, or None.

    Tolerates a syslog-style prefix before the first `{` and trailing text after the object.
    """
    if payload is None:
        return None
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", errors="replace")
    if not isinstance(payload, str):
        return None
    start = payload.find("{")
    if start < 0:
        return None
    try:
        obj, _ = _DECODER.raw_decode(payload, start)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


PARSED, TRUNCATED, UNPARSABLE, MISSING = "parsed", "truncated", "unparsable", "missing"
PAYLOAD_STATES = (PARSED, TRUNCATED, UNPARSABLE, MISSING)


def payload_state(payload: str | bytes | None) -> str:
    """Whether a payload holds a JSON object (``parsed``), stops in the middle of one (``truncated``: the
    JSON is fine up to its end, as when QRadar cuts a payload at its maximum length), holds none that can
    be read (``unparsable``) or is empty (``missing``)."""
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", errors="replace")
    if not isinstance(payload, str) or not payload.strip():
        return MISSING
    start = payload.find("{")
    if start < 0:
        return UNPARSABLE
    try:
        obj, _ = _DECODER.raw_decode(payload, start)
    except RecursionError:
        return UNPARSABLE
    except ValueError as exc:
        if not isinstance(exc, json.JSONDecodeError):
            return UNPARSABLE
        at_end = exc.pos >= len(payload.rstrip()) or exc.msg.startswith("Unterminated string")
        return TRUNCATED if at_end else UNPARSABLE
    return PARSED if isinstance(obj, dict) else UNPARSABLE


def _norm(key: str) -> str:
    return key.replace("_", "").lower()


# Key shapes (the keys of a mapping, in order) → their normalized forms → the first key with that form.
# Payloads of one source share a few shapes, so a case- or underscore-insensitive lookup costs one dict
# lookup instead of normalizing every key of every mapping it looks into. Bounded: hostile payloads may
# bring any number of shapes, and a shape with many keys is not kept.
_SHAPES: dict[tuple[Any, ...], dict[str, str]] = {}
_MAX_SHAPES = 4096
_MAX_SHAPE_KEYS = 64


def _key_for(mapping: Mapping[str, Any], norm: str) -> str | None:
    """The key of `mapping` whose normalized form is `norm` (the first such key), or None."""
    shape = tuple(mapping)
    index = _SHAPES.get(shape)
    if index is None:
        index = {}
        for k in shape:
            if isinstance(k, str):
                index.setdefault(_norm(k), k)
        if len(_SHAPES) < _MAX_SHAPES and len(shape) <= _MAX_SHAPE_KEYS:
            _SHAPES[shape] = index
    return index.get(norm)


# Paths are literals of this module: parsed once each.
_PATHS: dict[str, tuple[tuple[str, bool, str], ...]] = {}


def _path(path: str) -> tuple[tuple[str, bool, str], ...]:
    parsed = _PATHS.get(path)
    if parsed is None:
        parsed = tuple((part, part.isdigit(), _norm(part)) for part in path.split("."))
        if len(_PATHS) < 1024:
            _PATHS[path] = parsed
    return parsed


def dig(obj: Any, path: str, default: Any = None) -> Any:
    """`dig(rec, "userIdentity.sessionContext.sessionIssuer.arn")`, case- and underscore-insensitive.

    A numeric path part indexes a list. Wrong types anywhere give `default`.
    """
    cur = obj
    for part, is_index, norm in _PATHS.get(path) or _path(path):
        if type(cur) is dict or isinstance(cur, Mapping):
            if part in cur:
                cur = cur[part]
            else:
                key = _key_for(cur, norm)
                cur = _MISSING if key is None else cur[key]
        elif is_index and isinstance(cur, list):
            idx = int(part)
            cur = cur[idx] if idx < len(cur) else _MISSING
        else:
            return default
        if cur is _MISSING:
            return default
    return cur


def _text(value: Any) -> str | None:
    """A displayable string from a scalar payload value; None for empty, objects and lists."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = str(value).strip()
    if not text:
        return None
    return text[:_MAX_FIELD]


def _first(*values: Any) -> str | None:
    for value in values:
        text = _text(value)
        if text is not None:
            return text
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _text(value)
    if text is None:
        return None
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _keys(*values: Any) -> set[str]:
    return {t.lower() for t in (_text(v) for v in values) if t}


def base_name(event_name: str | None) -> str:
    """Event name without a trailing period/space, lower-cased: O365 `Add user.` → `add user`;
    GCP `google.iam.admin.v1.CreateServiceAccount` → `createserviceaccount`."""
    name = (event_name or "").strip().rstrip(".").strip().lower()
    if name.startswith("google.") or name.count(".") >= 2:
        name = name.rsplit(".", 1)[-1]
    return name


# Dash-like characters Entra and the feeds that copy it use in operation names ("Update application –
# Certificates and secrets management" is written with an en dash, a hyphen or an em dash).
_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"})


def operation_key(event_name: str | None) -> str:
    """An Entra / Office 365 operation name compared by meaning: `base_name` (case, trailing period and
    spaces) with every dash folded to "-" and runs of whitespace to one space."""
    return " ".join(base_name(event_name).translate(_DASHES).split())


# --- AWS CloudTrail -------------------------------------------------------------------------------

IAM_SOURCE = "iam.amazonaws.com"
IDENTITY_CENTER_SOURCES = ("sso-directory.amazonaws.com", "identitystore.amazonaws.com")
SSO_SOURCE = "sso.amazonaws.com"
ORGANIZATIONS_SOURCE = "organizations.amazonaws.com"
# Services whose CreateUser makes a user of their own, not an AWS identity: what the target is.
NON_IAM_USER_SOURCES: dict[str, str] = {
    "transfer.amazonaws.com": "Transfer Family user",
    "elasticache.amazonaws.com": "ElastiCache user",
    "memorydb.amazonaws.com": "MemoryDB user",
    "mq.amazonaws.com": "Amazon MQ broker user",
    "appstream.amazonaws.com": "AppStream user",
    "workmail.amazonaws.com": "WorkMail user",
    "connect.amazonaws.com": "Amazon Connect user",
}
# Identity Center hides some request fields in CloudTrail (UNCONFIRMED which ones, per API version).
_HIDDEN = "hidden_due_to_security_reasons"


def _visible(value: Any) -> str | None:
    text = _text(value)
    return None if text is None or text.lower() == _HIDDEN else text


def _extract_aws_other_sources(
    source: str, name: str, req: Any, resp: Any, ident: Any, ids: Identifiers
) -> bool:
    """Identity Center, Organizations and non-IAM services; False when the event is none of theirs."""
    if source in IDENTITY_CENTER_SOURCES and name == "createuser":
        ids.target_type = "IdentityCenterUser"
        ids.target_account = _first(
            _visible(dig(req, "userName")),
            _visible(dig(resp, "user.userName")),
            _visible(dig(req, "displayName")),
            dig(resp, "userId"),
            dig(resp, "user.userId"),
        )
        ids.target_id = _first(dig(resp, "userId"), dig(resp, "user.userId"))
        ids.target_keys |= _keys(ids.target_account, ids.target_id)
    elif source in IDENTITY_CENTER_SOURCES and name == "creategroup":
        ids.target_type = "IdentityCenterGroup"
        ids.target_account = _first(
            _visible(dig(req, "displayName")),
            _visible(dig(resp, "group.displayName")),
            _visible(dig(req, "groupName")),
            dig(resp, "groupId"),
            dig(resp, "group.groupId"),
        )
        ids.target_id = _first(dig(resp, "groupId"), dig(resp, "group.groupId"))
        ids.target_keys |= _keys(ids.target_account, ids.target_id)
    elif source == SSO_SOURCE and name == "createpermissionset":
        ids.target_type = "PermissionSet"
        ids.target_account = _first(dig(req, "name"), dig(resp, "permissionSet.name"))
        ids.target_id = _text(dig(resp, "permissionSet.permissionSetArn"))
        ids.target_keys |= _keys(ids.target_account, ids.target_id)
    elif source == SSO_SOURCE and name == "createaccountassignment":
        # The assignment gives a user or group (principalId: the Identity Center user/group ID) a
        # permission set on an account (targetId).
        status = "accountAssignmentCreationStatus"
        ids.target_type = (
            _first(dig(req, "principalType"), dig(resp, f"{status}.principalType")) or "Principal"
        )
        ids.target_account = _first(dig(req, "principalId"), dig(resp, f"{status}.principalId"))
        ids.target_id = _first(dig(req, "targetId"), dig(resp, f"{status}.targetId"))
        ids.granted = _first(dig(req, "permissionSetArn"), dig(resp, f"{status}.permissionSetArn"))
        ids.target_keys |= _keys(ids.target_account)
    elif source == ORGANIZATIONS_SOURCE and name in ("createaccount", "creategovcloudaccount"):
        ids.target_type = "AWSAccount"
        ids.target_account = _first(
            dig(req, "accountName"), dig(resp, "createAccountStatus.accountName"), _visible(dig(req, "email"))
        )
        ids.target_id = _first(
            dig(resp, "createAccountStatus.accountId"), dig(resp, "createAccountStatus.id")
        )
        ids.target_keys |= _keys(ids.target_account, ids.target_id)
    elif source == ORGANIZATIONS_SOURCE and name == "inviteaccounttoorganization":
        ids.target_type = "AWSAccount"
        ids.target_account = _first(_visible(dig(req, "target.id")), dig(resp, "handshake.parties.0.id"))
        ids.target_id = _text(dig(resp, "handshake.id"))
        ids.target_keys |= _keys(ids.target_account)
    elif name == "createuser" and source and source != IAM_SOURCE:
        service = source.split(".", 1)[0]
        ids.target_type = NON_IAM_USER_SOURCES.get(source, f"{service} user")
        ids.target_account = _first(
            dig(req, "userName"), dig(req, "username"), dig(req, "userId"), dig(resp, "userName")
        )
        ids.target_id = _first(
            dig(resp, "arn"), dig(resp, "user.arn"), dig(req, "serverId"), dig(req, "brokerId")
        )
        ids.target_keys |= _keys(ids.target_account)
    else:
        return False
    return True


def _extract_aws(rec: Mapping[str, Any], event_name: str, ids: Identifiers) -> None:
    ident = dig(rec, "userIdentity") or {}
    ids.actor_type = _text(dig(ident, "type"))
    ids.actor = _first(dig(ident, "arn"), dig(ident, "userName"), dig(ident, "principalId"))
    # Key on the stable role ARN for assumed roles, not the per-session ARN (detection-and-tuning §0 #3).
    ids.actor_id = _first(
        dig(ident, "sessionContext.sessionIssuer.arn"), dig(ident, "arn"), dig(ident, "principalId")
    )
    ids.invoked_by = _text(dig(ident, "invokedBy"))
    ids.source_ip = _text(dig(rec, "sourceIPAddress"))
    ids.user_agent = _text(dig(rec, "userAgent"))
    ids.correlation_id = _first(dig(rec, "requestID"), dig(rec, "eventID"))
    error = _text(dig(rec, "errorCode"))
    ids.result = f"failure: {error}" if error else "success"
    ids.mfa = _bool(dig(ident, "sessionContext.attributes.mfaAuthenticated"))
    if ids.mfa is None:
        ids.mfa = _bool(dig(rec, "additionalEventData.MFAUsed"))

    req = dig(rec, "requestParameters") or {}
    resp = dig(rec, "responseElements") or {}
    name = base_name(event_name)
    source = (_text(dig(rec, "eventSource")) or "").lower() or None
    ids.event_source = source
    if source and _extract_aws_other_sources(source, name, req, resp, ident, ids):
        return
    if name == "createuser":
        ids.target_type = "User"
        ids.target_account = _first(dig(req, "userName"), dig(resp, "user.userName"))
        ids.target_id = _first(dig(resp, "user.arn"), dig(resp, "user.userId"))
        ids.target_keys |= _keys(ids.target_account, dig(resp, "user.arn"), dig(resp, "user.userId"))
    elif name in ("createrole", "createservicelinkedrole"):
        ids.target_type = "Role"
        ids.target_account = _first(
            dig(req, "roleName"), dig(resp, "role.roleName"), dig(req, "aWSServiceName")
        )
        ids.target_id = _first(dig(resp, "role.arn"), dig(resp, "role.roleId"))
        ids.target_keys |= _keys(ids.target_account, dig(resp, "role.arn"), dig(resp, "role.roleId"))
    elif name == "createaccesskey":
        ids.target_type = "AccessKey"
        # Without requestParameters.userName a user created a key for itself.
        for_user = _text(dig(req, "userName"))
        caller = _text(dig(ident, "userName")) if _text(dig(ident, "type")) == "IAMUser" else None
        ids.own_credential = for_user is None or (caller is not None and for_user == caller)
        ids.target_account = _first(for_user, dig(resp, "accessKey.userName"), dig(ident, "userName"))
        ids.target_id = _text(dig(resp, "accessKey.accessKeyId"))
        ids.target_keys |= _keys(ids.target_account)
    elif name in ("createloginprofile", "addusertogroup"):
        ids.target_type = "User"
        ids.target_account = _first(dig(req, "userName"), dig(resp, "loginProfile.userName"))
        ids.target_keys |= _keys(ids.target_account)
        ids.granted = _text(dig(req, "groupName"))
        ids.group_ref = ids.granted
        ids.admin_grant = aws_policy.group_name_is_admin(ids.granted)
    elif name == "enablemfadevice":
        ids.target_type = "MFADevice"
        ids.target_account = _text(dig(req, "userName"))
        ids.target_id = _text(dig(req, "serialNumber"))
        ids.target_keys |= _keys(ids.target_account, ids.target_id)
    elif name == "creategroup":
        ids.target_type = "Group"
        ids.target_account = _first(dig(req, "groupName"), dig(resp, "group.groupName"))
        ids.target_id = _first(dig(resp, "group.arn"), dig(resp, "group.groupId"))
        ids.target_keys |= _keys(ids.target_account, ids.target_id)
    elif name in ("attachgrouppolicy", "putgrouppolicy"):
        ids.target_type = "Group"
        ids.target_account = _text(dig(req, "groupName"))
        ids.granted = _first(dig(req, "policyArn"), dig(req, "policyName"))
        arn = _text(dig(req, "policyArn"))
        ids.admin_grant = aws_policy.policy_is_admin(arn, dig(req, "policyDocument"))
        ids.policy_ref = arn
        if ids.target_account:
            ids.aws_learned = ("group", ids.target_account, ids.admin_grant)
    elif name in ("createpolicy", "createpolicyversion"):
        ids.target_type = "Policy"
        arn = _first(dig(resp, "policy.arn"), dig(req, "policyArn"))
        ids.target_account = _first(dig(req, "policyName"), arn)
        ids.target_id = arn
        if arn:
            ids.aws_learned = ("policy", arn, aws_policy.document_is_admin(dig(req, "policyDocument")))
    elif name == "createvirtualmfadevice":
        ids.target_type = "MFADevice"
        ids.target_account = _first(dig(req, "virtualMFADeviceName"))
        ids.target_id = _text(dig(resp, "virtualMFADevice.serialNumber"))
        ids.target_keys |= _keys(ids.target_account, ids.target_id)
    elif name in ("attachuserpolicy", "putuserpolicy", "attachrolepolicy", "putrolepolicy"):
        is_user = "user" in name
        ids.target_type = "User" if is_user else "Role"
        ids.target_account = _first(dig(req, "userName") if is_user else dig(req, "roleName"))
        ids.target_keys |= _keys(ids.target_account)
        ids.granted = _first(dig(req, "policyArn"), dig(req, "policyName"))
        ids.policy_ref = _text(dig(req, "policyArn"))
        ids.admin_grant = aws_policy.policy_is_admin(ids.policy_ref, dig(req, "policyDocument"))
    else:
        ids.target_account = _first(dig(req, "userName"), dig(req, "roleName"))
        ids.target_keys |= _keys(ids.target_account)


# --- Entra ID audit (Azure AD) ---------------------------------------------------------------------


def _unquote(value: str | None) -> str | None:
    return _text((value or "").strip().strip("[]").strip().strip('"'))


def _entra_grant(
    changes: list[tuple[str, str | None]], role_targets: list[tuple[str | None, str | None]], ids: Identifiers
) -> None:
    """What an Entra grant gave and whether it makes an administrator (`entra_roles`): a directory role by
    its template ID (display name only without one), an app role or consent by its permission."""
    props: dict[str, str | None] = {}
    for name, value in changes:
        key = name.strip().lower()
        props.setdefault(key, value)
        if "federatedidentitycredential" in key.replace(" ", "") or (
            key == "included updated properties" and "federatedidentitycredential" in (value or "").lower()
        ):
            ids.federated_credential = True
    role_name = _unquote(props.get("role.displayname"))
    template = _unquote(props.get("role.templateid"))
    if not template:
        # A role target's id is the role definition id; for built-in roles that is the template ID.
        template = next((i for _, i in role_targets if entra_roles.role_name_for(i)), None)
    role_name = role_name or next((n for n, _ in role_targets if n), None)
    app_role = [props.get("approle.id"), props.get("approle.value")]
    scopes = [props.get("consentaction.permissions"), props.get("delegatedpermissiongrant.scope")]
    if template or role_name:
        ids.role_template_id = template
        ids.granted = role_name or entra_roles.role_name_for(template) or template
        ids.admin_grant = entra_roles.role_is_privileged(template, role_name)
    elif any(app_role):
        ids.granted = _unquote(app_role[1]) or _unquote(app_role[0])
        ids.admin_grant = entra_roles.permission_is_dangerous(app_role)
    elif any(scopes):
        ids.granted = _unquote(scopes[0] or scopes[1])
        ids.admin_grant = entra_roles.permission_is_dangerous(scopes)


def _extract_entra(rec: Mapping[str, Any], ids: Identifiers) -> None:
    # Diagnostic-settings JSON nests the audit record under "properties"; Graph/Sentinel shapes do not.
    props = dig(rec, "properties")
    body = props if isinstance(props, Mapping) else rec
    user = dig(body, "initiatedBy.user")
    app = dig(body, "initiatedBy.app")
    if isinstance(user, Mapping) and _first(dig(user, "id"), dig(user, "userPrincipalName")):
        ids.actor_type = "User"
        ids.actor = _first(dig(user, "userPrincipalName"), dig(user, "displayName"), dig(user, "id"))
        ids.actor_id = _first(dig(user, "id"), dig(user, "userPrincipalName"))
        ids.source_ip = _text(dig(user, "ipAddress"))
    elif isinstance(app, Mapping):
        ids.actor_type = "ServicePrincipal"
        ids.actor = _first(dig(app, "displayName"), dig(app, "servicePrincipalName"), dig(app, "appId"))
        ids.actor_id = _first(dig(app, "servicePrincipalId"), dig(app, "appId"), dig(app, "displayName"))
    ids.source_ip = _first(ids.source_ip, dig(rec, "callerIpAddress"), dig(body, "callerIpAddress"))
    ids.correlation_id = _first(dig(body, "correlationId"), dig(rec, "correlationId"))
    ids.result = _first(dig(body, "result"), dig(rec, "resultType"), dig(rec, "resultSignature"))
    details = dig(body, "additionalDetails")
    if isinstance(details, list):
        for d in details:
            if isinstance(d, Mapping) and str(dig(d, "key", "")).lower() == "user-agent":
                ids.user_agent = _text(dig(d, "value"))
    targets = dig(body, "targetResources")
    changes: list[tuple[str, str | None]] = []
    role_targets: list[tuple[str | None, str | None]] = []
    if isinstance(targets, list):
        for i, t in enumerate(targets):
            if not isinstance(t, Mapping):
                continue
            if i == 0:
                ids.target_account = _first(dig(t, "userPrincipalName"), dig(t, "displayName"), dig(t, "id"))
                ids.target_id = _text(dig(t, "id"))
                ids.target_type = _text(dig(t, "type"))
            if str(dig(t, "type", "")).lower() != "role":
                ids.target_keys |= _keys(dig(t, "userPrincipalName"), dig(t, "displayName"), dig(t, "id"))
            mods = dig(t, "modifiedProperties")
            for m in mods if isinstance(mods, list) else []:
                if isinstance(m, Mapping):
                    changes.append((str(dig(m, "displayName", "")), _text(dig(m, "newValue"))))
            if str(dig(t, "type", "")).lower() == "role":
                role_targets.append((_text(dig(t, "displayName")), _text(dig(t, "id"))))
    if isinstance(app, Mapping):
        ids.initiator_app_id = _text(dig(app, "appId"))
    _entra_grant(changes, role_targets, ids)
    resource = _text(dig(rec, "resourceId")) or ""
    if "/federatedidentitycredentials/" in resource.lower():
        # Azure Activity log (ARM) write of a managed identity's federated credential: the identity is the
        # resource path's parent (…/userAssignedIdentities/<name>/federatedIdentityCredentials/<cred>).
        parts = resource.split("/")
        ids.federated_credential = True
        ids.target_type = "ManagedIdentity"
        ids.target_account = ids.target_account or (parts[-3] if len(parts) >= 3 else None)
        ids.target_keys |= _keys(ids.target_account)


# --- Office 365 Unified Audit Log (AzureActiveDirectory workload) ----------------------------------

# UNCONFIRMED: UserType codes beyond 0 (regular user).
_O365_USER_TYPES = {"0": "User", "2": "Admin", "4": "System", "5": "Application"}
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_SP_PREFIX = "serviceprincipal_"


def _o365_actor(rec: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(actor, actor ID, actor type) of an Office 365 record.

    A user is keyed by ``UserKey`` (the PUID). An application acting on its own has no user: its
    ``UserKey`` (and often ``UserId``) is a placeholder such as ``Not Available``, which would make every
    application one actor. It is keyed by what the record says identifies it: the service principal's
    object id from an ``Actor[]`` entry ``ServicePrincipal_<id>`` (the ID Entra logs as
    ``initiatedBy.app.servicePrincipalId``), else the application ID (``AppId`` / ``ApplicationId``), else
    the first GUID among ``Actor[]`` entries that is not the tenant (``ActorContextId`` names the tenant,
    never the actor), else a UPN-typed (``Type: 5``) entry. Placeholders are never an actor or an ID.
    (The meaning of ``Actor[].Type`` codes other than 5 is UNCONFIRMED; only the ID shapes are relied on.)
    """
    user_id = identity(_text(dig(rec, "UserId")))
    user_key = identity(_text(dig(rec, "UserKey")))
    tenants = {t.lower() for t in (_text(dig(rec, "ActorContextId")), _text(dig(rec, "OrganizationId"))) if t}
    sp_id = guid_id = upn = name = None
    for entry in _list(dig(rec, "Actor")):
        if not isinstance(entry, Mapping):
            continue
        value = identity(_text(dig(entry, "ID")))
        if value is None:
            continue
        kind = _text(dig(entry, "Type"))
        lowered = value.lower()
        if lowered.startswith(_SP_PREFIX) and _GUID.fullmatch(value[len(_SP_PREFIX) :]):
            sp_id = sp_id or value[len(_SP_PREFIX) :]
        elif _GUID.fullmatch(value) and lowered not in tenants:
            guid_id = guid_id or value
        elif kind == "5" and "@" in value:
            upn = upn or value
        elif kind == "1":
            name = name or value
    app_id = identity(_first(dig(rec, "AppId"), dig(rec, "ApplicationId")))
    user_type = _text(dig(rec, "UserType"))
    actor_type = _O365_USER_TYPES.get(user_type or "", user_type)
    if user_key is not None:
        return user_id or upn or user_key, user_key, actor_type
    app_key = sp_id or app_id or guid_id
    if app_key is not None:
        return user_id or name or app_key, app_key, "ServicePrincipal" if sp_id else "Application"
    return user_id or upn or name, upn or user_id, actor_type


def _extract_o365(rec: Mapping[str, Any], ids: Identifiers) -> None:
    ids.actor, ids.actor_id, ids.actor_type = _o365_actor(rec)
    ids.source_ip = _first(dig(rec, "ActorIpAddress"), dig(rec, "ClientIP"))
    ids.result = _text(dig(rec, "ResultStatus"))
    # UNCONFIRMED: InterSystemsId carries the Entra audit correlationId in AzureActiveDirectory records.
    ids.correlation_id = _first(dig(rec, "InterSystemsId"), dig(rec, "CorrelationId"))
    ids.target_account = _text(dig(rec, "ObjectId"))
    ids.target_keys |= _keys(ids.target_account)
    targets = dig(rec, "Target")
    for t in targets if isinstance(targets, list) else []:
        if isinstance(t, Mapping):
            ids.target_keys |= _keys(dig(t, "ID"))
    for prop in _list(dig(rec, "ExtendedProperties")):
        if not isinstance(prop, Mapping):
            continue
        pname = str(dig(prop, "Name", "")).lower()
        if pname == "additionaldetails":
            details = parse_payload(_text(dig(prop, "Value")))
            ids.user_agent = _first(ids.user_agent, dig(details, "User-Agent"))
        elif pname == "user-agent":
            ids.user_agent = _first(ids.user_agent, dig(prop, "Value"))
        elif pname == "extendedauditeventcategory":
            ids.target_type = _text(dig(prop, "Value"))
    _entra_grant(
        [
            (str(dig(m, "Name", "")), _text(dig(m, "NewValue")))
            for m in _list(dig(rec, "ModifiedProperties"))
            if isinstance(m, Mapping)
        ],
        [],
        ids,
    )


# --- Google Cloud audit logs -------------------------------------------------------------------------

# Roles that give control of a project, of IAM, or of a service account's credentials. The first five
# are the issue's; organization admin, service account admin and role admin are as strong (they can grant
# the others or act as any service account).
GCP_PRIVILEGED_ROLES: frozenset[str] = frozenset(
    {
        "roles/owner",
        "roles/editor",
        "roles/iam.securityadmin",
        "roles/iam.serviceaccounttokencreator",
        "roles/iam.serviceaccountkeyadmin",
        "roles/resourcemanager.organizationadmin",
        "roles/iam.serviceaccountadmin",
        "roles/iam.roleadmin",
    }
)


def _gcp_added_bindings(proto: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(role, member) pairs a SetIamPolicy call added.

    Read from the change, `serviceData.policyDelta.bindingDeltas` (action ADD), or from
    `metadata.policyDelta` where newer services put it. Only when neither is present is the request's
    whole policy the fallback: then every binding counts as added, which is why callers judge a grant by
    the members of the privileged bindings only, not by whether the policy holds a privileged role.
    """
    for path in ("serviceData.policyDelta.bindingDeltas", "metadata.policyDelta.bindingDeltas"):
        deltas = dig(proto, path)
        if isinstance(deltas, list):
            return [
                (_text(dig(d, "role")) or "", _text(dig(d, "member")) or "")
                for d in deltas
                if isinstance(d, Mapping) and str(dig(d, "action", "")).upper() == "ADD"
            ]
    added = []
    for b in _list(dig(proto, "request.policy.bindings")):
        role = _text(dig(b, "role")) or ""
        added += [(role, _text(m) or "") for m in _list(dig(b, "members"))]
    return added


def _gcp_policy_grant(proto: Mapping[str, Any], ids: Identifiers) -> None:
    added = [(role, member.split(":", 1)[-1]) for role, member in _gcp_added_bindings(proto) if member]
    privileged = [(role, member) for role, member in added if role.lower() in GCP_PRIVILEGED_ROLES]
    # A grant joins a creation's chain through the identities it gave something to: for an admin grant
    # only the members of the privileged roles (a logging role for a new service account in a change that
    # also names an owner does not make that account an admin).
    chosen = privileged or added
    for _role, member in chosen:
        ids.target_keys |= _keys(member)
    if chosen:
        ids.granted, ids.target_account = chosen[0]
    ids.admin_grant = bool(privileged)
    ids.target_type = "IamPolicy"
    resource = _text(dig(proto, "resourceName")) or ""
    if privileged and "/serviceAccounts/" in resource:
        # Service-account policy (google.iam.admin.v1.SetIAMPolicy): a privileged role on the account
        # (token creator, key admin) lets the member act as it, so the grant also joins that account.
        ids.target_keys |= _keys(resource.split("/serviceAccounts/", 1)[1].split("/", 1)[0])


def _extract_gcp(rec: Mapping[str, Any], ids: Identifiers) -> None:
    proto = dig(rec, "protoPayload") or rec
    email = _text(dig(proto, "authenticationInfo.principalEmail"))
    ids.actor = email
    ids.actor_id = _first(email, dig(proto, "authenticationInfo.principalSubject"))
    if email:
        ids.actor_type = "ServiceAccount" if email.lower().endswith(".gserviceaccount.com") else "User"
    ids.source_ip = _text(dig(proto, "requestMetadata.callerIp"))
    ids.user_agent = _text(dig(proto, "requestMetadata.callerSuppliedUserAgent"))
    ids.correlation_id = _first(dig(rec, "operation.id"), dig(rec, "insertId"))
    code = dig(proto, "status.code")
    failure = _first(dig(proto, "status.message"), code)
    ids.result = "success" if code in (None, 0, "0") else f"failure: {failure}"
    method = base_name(_text(dig(proto, "methodName")))
    req = dig(proto, "request") or {}
    resp = dig(proto, "response") or {}
    if method == "createserviceaccount":
        ids.target_type = "ServiceAccount"
        ids.target_account = _first(dig(resp, "email"), dig(req, "accountId"))
        ids.target_id = _first(dig(resp, "uniqueId"), dig(resp, "name"))
        ids.target_keys |= _keys(dig(resp, "email"), dig(req, "accountId"), dig(resp, "uniqueId"))
    elif method == "createserviceaccountkey":
        ids.target_type = "ServiceAccountKey"
        sa_name = _first(dig(req, "name"), dig(proto, "resourceName")) or ""
        ids.target_account = sa_name.rsplit("/", 1)[-1] or None
        ids.target_id = _text(dig(resp, "name"))
        ids.target_keys |= _keys(ids.target_account)
    elif method == "setiampolicy":
        _gcp_policy_grant(proto, ids)
    else:
        ids.target_account = _first(dig(resp, "email"), dig(proto, "resourceName"))


# --- Google Workspace admin activity (Admin SDK Reports API) ---------------------------------------

# Events that make someone a Workspace administrator whatever their parameters: super admin, and an
# admin role (every Workspace role is an administrator role) or delegated admin. Names UNCONFIRMED as
# QRadar QID names (they are the Reports API's).
_WORKSPACE_ADMIN_EVENTS = ("grant_admin_privilege", "assign_role", "grant_delegated_admin_privileges")
# A group whose name has one of these as a word ("gcp-organization-admins", "Domain Admins"); not a
# substring ("badminton-club").
_ADMIN_GROUP_WORDS = frozenset({"admin", "admins", "administrator", "administrators", "superadmins"})


def group_name_is_admin(name: str | None) -> bool:
    """True when a group name or e-mail names administrators as a word (its local part for an e-mail)."""
    local = (name or "").split("@", 1)[0].lower()
    words = "".join(c if c.isalnum() else " " for c in local).split()
    return any(w in _ADMIN_GROUP_WORDS for w in words)


def _workspace_parameters(event: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in _list(dig(event, "parameters")):
        if not isinstance(p, Mapping):
            continue
        name = _text(dig(p, "name"))
        values = dig(p, "multiValue")
        value = _first(dig(p, "value"), dig(p, "intValue"), dig(p, "boolValue"))
        if value is None and isinstance(values, list):
            value = _first(*values)
        if name and value is not None:
            out.setdefault(name.upper(), value)
    return out


def _extract_workspace(rec: Mapping[str, Any], event_name: str, ids: Identifiers) -> None:
    ids.actor = _first(dig(rec, "actor.email"), dig(rec, "actor.profileId"))
    ids.actor_id = _first(dig(rec, "actor.profileId"), dig(rec, "actor.email"))
    ids.actor_type = _text(dig(rec, "actor.callerType"))
    ids.source_ip = _text(dig(rec, "ipAddress"))
    ids.correlation_id = _first(dig(rec, "id.uniqueQualifier"), dig(rec, "etag"))
    ids.result = "success"  # the admin log records changes that were made
    wanted = (event_name or "").strip().lower()
    events = [e for e in _list(dig(rec, "events")) if isinstance(e, Mapping)]
    # An activity may carry several events; the one this QID names, else the first.
    event = next(
        (e for e in events if str(dig(e, "name", "")).lower() == wanted), events[0] if events else {}
    )
    name = str(dig(event, "name", "") or wanted).lower()
    params = _workspace_parameters(event)
    user = params.get("USER_EMAIL")
    if name == "create_user":
        ids.target_type = "User"
    elif name in _WORKSPACE_ADMIN_EVENTS:
        ids.target_type = "User"
        ids.granted = params.get("ROLE_NAME") or ("Super Admin" if name == "grant_admin_privilege" else None)
        ids.admin_grant = True
    elif name == "add_group_member":
        ids.target_type = "User"
        ids.granted = params.get("GROUP_EMAIL") or params.get("GROUP_NAME")
        ids.admin_grant = group_name_is_admin(ids.granted)
    elif name in ("create_role", "add_privilege"):
        ids.target_type = "Role"
        user = params.get("ROLE_NAME")
        ids.granted = params.get("PRIVILEGE_NAME")
    ids.target_account = user
    ids.target_keys |= _keys(user)


_EXTRACTORS = {AZURE_AD: _extract_entra, OFFICE_365: _extract_o365, GCP: _extract_gcp}


def extract(
    platform: str | None,
    event_name: str | None,
    payload: str | bytes | None,
    normalized: Mapping[str, Any] | None = None,
) -> Identifiers:
    """Identifiers for one event. Never raises; missing pieces come from the normalized Ariel fields
    (`actor` = username, `source_ip`, `target_account` = the custom property)."""
    ids = Identifiers()
    rec = parse_payload(payload)
    if rec is not None:
        try:
            if platform == AWS:
                _extract_aws(rec, event_name or "", ids)
            elif platform == GOOGLE_WORKSPACE:
                _extract_workspace(rec, event_name or "", ids)
            elif platform in _EXTRACTORS:
                _EXTRACTORS[platform](rec, ids)
            ids.payload_ok = True
        except Exception:  # a hostile payload must never fail the refresh
            ids = Identifiers()
        ids.payload_parsed = True
    norm = normalized or {}
    # A placeholder (`Not Available`, `Unknown`, …) names nobody: never an actor, never a key for chains
    # or allowlists.
    ids.actor = identity(ids.actor) or identity(_text(norm.get("actor")))
    ids.actor_id = identity(ids.actor_id) or ids.actor
    ids.source_ip = ids.source_ip or _text(norm.get("source_ip"))
    ids.target_account = ids.target_account or _text(norm.get("target_account"))
    if ids.target_account:
        ids.target_keys.add(ids.target_account.lower())
    if ids.target_id:
        ids.target_keys.add(ids.target_id.lower())
    return ids
