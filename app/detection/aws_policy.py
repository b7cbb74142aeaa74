"""Whether an AWS IAM policy makes its holder an administrator: a pure evaluator of policy documents,
AWS-managed policy ARNs and group names.

"Administrator" means able to take over the account's identities: every action (`*`), or any of the IAM
actions in `ESCALATION_ACTIONS` (each lets its holder give itself or a new identity any permission).
The evaluation is deliberately conservative (it flags rather than misses):

- action names are matched case-insensitively (IAM treats `IAM:*` and `iam:*` alike) with `*` and `?`
  wildcards (`iam:Create*`, `iam:*`, `*`);
- `Allow` + `NotAction` allows every action the list does not match, so `NotAction: s3:*` is admin;
- `Deny` statements, `Resource`/`NotResource` and `Condition` are ignored: a Deny or a resource scope may
  narrow the grant, but telling how far needs the account's whole policy set, which one event does not carry.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

# IAM actions that let their holder grant itself (or an identity it creates) any permission.
ESCALATION_ACTIONS: tuple[str, ...] = (
    "iam:createuser",
    "iam:createaccesskey",
    "iam:createloginprofile",
    "iam:updateloginprofile",
    "iam:attachuserpolicy",
    "iam:attachrolepolicy",
    "iam:attachgrouppolicy",
    "iam:putuserpolicy",
    "iam:putrolepolicy",
    "iam:putgrouppolicy",
    "iam:createpolicyversion",
    "iam:setdefaultpolicyversion",
    "iam:addusertogroup",
    "iam:updateassumerolepolicy",
)

# AWS-managed policies that grant administrator power, by name under `arn:<partition>:iam::aws:policy/`.
# PowerUserAccess excludes IAM but allows every other service (including Organizations-free takeovers of
# compute roles), so it is treated as administrator too.
MANAGED_ADMIN_POLICIES: tuple[str, ...] = (
    "AdministratorAccess",
    "IAMFullAccess",
    "PowerUserAccess",
    "AdministratorAccess-Amplify",
    "AdministratorAccess-AWSElasticBeanstalk",
    "AWSOrganizationsFullAccess",
    "AWSSSOMasterAccountAdministrator",
)
_MANAGED_ARN = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:[^/]+/)*([^/]+)$", re.IGNORECASE)
_MANAGED_ADMIN_NAMES = frozenset(n.lower() for n in MANAGED_ADMIN_POLICIES)

# Words in a group name that say the group holds administrators ("admins", "Administrators",
# "admin-team", "OrgAdmins"; never "badminton-club").
ADMIN_GROUP_WORDS: frozenset[str] = frozenset(
    {"admin", "admins", "administrator", "administrators", "superuser", "superusers", "root"}
)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# Longest policy document evaluated (IAM's own limit for a managed policy is 6,144 characters).
MAX_DOCUMENT_CHARS = 128 * 1024


def is_managed_admin_arn(policy_arn: str | None) -> bool:
    """An AWS-managed policy ARN from `MANAGED_ADMIN_POLICIES` (any partition, any path)."""
    if not policy_arn:
        return False
    match = _MANAGED_ARN.match(policy_arn.strip())
    return bool(match and match.group(1).lower() in _MANAGED_ADMIN_NAMES)


@lru_cache(maxsize=1024)
def _pattern(action: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in action.strip().lower())
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _field(statement: Mapping[str, Any], name: str) -> Any:
    for key, value in statement.items():
        if isinstance(key, str) and key.lower() == name:
            return value
    return None


def _allows_admin(actions: Iterable[str]) -> bool:
    patterns = [_pattern(a) for a in actions]
    if any(p.match("*") for p in patterns):
        return True
    return any(p.match(a) for p in patterns for a in ESCALATION_ACTIONS)


def _not_action_allows_admin(not_actions: Iterable[str]) -> bool:
    # Allow + NotAction allows every action outside the list: admin when an escalation action is outside it.
    patterns = [_pattern(a) for a in not_actions]
    return any(not any(p.match(a) for p in patterns) for a in ESCALATION_ACTIONS)


def parse_document(document: Any) -> Mapping[str, Any] | None:
    """A policy document as CloudTrail carries it (an object, JSON text, or URL-encoded JSON text)."""
    if isinstance(document, Mapping):
        return document
    if not isinstance(document, str) or len(document) > MAX_DOCUMENT_CHARS:
        return None
    text = document.strip()
    if not text.startswith("{"):
        text = urllib.parse.unquote(text)
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, Mapping) else None


def document_is_admin(document: Any) -> bool:
    """Whether a policy document grants administrator power (see the module docstring). Never raises."""
    doc = parse_document(document)
    if doc is None:
        return False
    statements = _field(doc, "statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        return False
    for statement in statements:
        if not isinstance(statement, Mapping):
            continue
        effect = _field(statement, "effect")
        if not isinstance(effect, str) or effect.strip().lower() != "allow":
            continue
        if _allows_admin(_as_list(_field(statement, "action"))):
            return True
        not_actions = _field(statement, "notaction")
        if not_actions is not None and _not_action_allows_admin(_as_list(not_actions)):
            return True
    return False


def policy_is_admin(policy_arn: str | None, document: Any = None) -> bool:
    """An AWS-managed admin policy by ARN, or a document that grants administrator power."""
    return is_managed_admin_arn(policy_arn) or document_is_admin(document)


def group_name_is_admin(name: str | None) -> bool:
    """A group name that names administrators, matched as words (camelCase, `-`, `_`, spaces split)."""
    if not name:
        return False
    return any(w.lower() in ADMIN_GROUP_WORDS for w in _WORD.findall(name[:256]))
