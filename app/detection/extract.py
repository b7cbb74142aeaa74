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
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.aql.detection import AWS, AZURE_AD, GCP, OFFICE_365

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


# --- AWS CloudTrail -------------------------------------------------------------------------------

_ADMIN_POLICY_SUFFIXES = ("/administratoraccess", "/iamfullaccess", "/poweruseraccess")


def _aws_policy_is_admin(policy_arn: str | None, policy_document: Any) -> bool:
    if policy_arn and policy_arn.lower().endswith(_ADMIN_POLICY_SUFFIXES):
        return True
    doc = policy_document
    if isinstance(doc, str):
        try:
            doc = json.loads(urllib.parse.unquote(doc))
        except ValueError:
            return False
    statements = dig(doc, "Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        return False
    for st in statements:
        if not isinstance(st, Mapping) or str(dig(st, "Effect", "")).lower() != "allow":
            continue
        actions = dig(st, "Action")
        actions = actions if isinstance(actions, list) else [actions]
        if any(a in ("*", "iam:*") for a in actions if isinstance(a, str)):
            return True
    return False


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
        ids.target_account = _first(
            dig(req, "userName"), dig(resp, "accessKey.userName"), dig(ident, "userName")
        )
        ids.target_id = _text(dig(resp, "accessKey.accessKeyId"))
        ids.target_keys |= _keys(ids.target_account)
    elif name in ("createloginprofile", "addusertogroup"):
        ids.target_type = "User"
        ids.target_account = _first(dig(req, "userName"), dig(resp, "loginProfile.userName"))
        ids.target_keys |= _keys(ids.target_account)
        ids.granted = _text(dig(req, "groupName"))
        ids.admin_grant = bool(ids.granted and "admin" in ids.granted.lower())
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
        ids.admin_grant = _aws_policy_is_admin(_text(dig(req, "policyArn")), dig(req, "policyDocument"))
    else:
        ids.target_account = _first(dig(req, "userName"), dig(req, "roleName"))
        ids.target_keys |= _keys(ids.target_account)


# --- Entra ID audit (Azure AD) ---------------------------------------------------------------------

_ADMIN_ROLE_WORDS = ("administrator", "owner", "contributor")


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
                if isinstance(m, Mapping) and str(dig(m, "displayName", "")).lower() == "role.displayname":
                    ids.granted = _text(str(dig(m, "newValue", "")).strip('"'))
            if str(dig(t, "type", "")).lower() == "role" and not ids.granted:
                ids.granted = _text(dig(t, "displayName"))
    if ids.granted:
        ids.admin_grant = any(w in ids.granted.lower() for w in _ADMIN_ROLE_WORDS)


# --- Office 365 Unified Audit Log (AzureActiveDirectory workload) ----------------------------------

# UNCONFIRMED: UserType codes beyond 0 (regular user).
_O365_USER_TYPES = {"0": "User", "2": "Admin", "4": "System", "5": "Application"}


def _extract_o365(rec: Mapping[str, Any], ids: Identifiers) -> None:
    ids.actor = _text(dig(rec, "UserId"))
    ids.actor_id = _first(dig(rec, "UserKey"), dig(rec, "UserId"))
    user_type = _text(dig(rec, "UserType"))
    ids.actor_type = _O365_USER_TYPES.get(user_type or "", user_type)
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
    for m in _list(dig(rec, "ModifiedProperties")):
        if isinstance(m, Mapping) and str(dig(m, "Name", "")).lower() == "role.displayname":
            ids.granted = _text(str(dig(m, "NewValue", "")).strip('"'))
    if ids.granted:
        ids.admin_grant = any(w in ids.granted.lower() for w in _ADMIN_ROLE_WORDS)


# --- Google Cloud audit logs -------------------------------------------------------------------------

_GCP_ADMIN_ROLES = (
    "roles/owner",
    "roles/editor",
    "roles/iam.securityadmin",
    "roles/resourcemanager.organizationadmin",
)


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
        bindings = dig(req, "policy.bindings")
        for b in bindings if isinstance(bindings, list) else []:
            role = _text(dig(b, "role")) or ""
            members = dig(b, "members")
            for m in members if isinstance(members, list) else []:
                member = (_text(m) or "").split(":", 1)[-1]
                ids.target_keys |= _keys(member)
                if role.lower() in _GCP_ADMIN_ROLES:
                    ids.admin_grant = True
                    ids.granted = role
                    ids.target_account = ids.target_account or member
        ids.target_type = "IamPolicy"
    else:
        ids.target_account = _first(dig(resp, "email"), dig(proto, "resourceName"))


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
            elif platform in _EXTRACTORS:
                _EXTRACTORS[platform](rec, ids)
            ids.payload_ok = True
        except Exception:  # a hostile payload must never fail the refresh
            ids = Identifiers()
    norm = normalized or {}
    ids.actor = ids.actor or _text(norm.get("actor"))
    ids.actor_id = ids.actor_id or ids.actor
    ids.source_ip = ids.source_ip or _text(norm.get("source_ip"))
    ids.target_account = ids.target_account or _text(norm.get("target_account"))
    if ids.target_account:
        ids.target_keys.add(ids.target_account.lower())
    if ids.target_id:
        ids.target_keys.add(ids.target_id.lower())
    return ids
