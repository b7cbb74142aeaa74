"""Allowlist entry model and validation.

An entry suppresses detections that meet *all* of its conditions. It must key on an immutable actor ID
(exact, or an ID pattern that pins one principal); user agent, display name / UPN patterns and source
CIDRs only narrow. An entry keyed only on such spoofable attributes is refused unless an admin
overrides it with a reason, and it stays flagged.

Keys that could be borrowed are refused outright (400 naming the field and the reason), admin or not:

* an actor-ID pattern must pin a principal: an AWS ARN fixes partition, account, principal type and at
  least one whole path segment before its first ``*`` (``arn:aws:iam::111122223333:role/pipelines/*``,
  ``arn:aws:sts::111122223333:assumed-role/deployer/*``); an e-mail-shaped ID (GCP principalEmail, a UPN)
  fixes its domain, so the GCP project or the Entra tenant is fixed; other IDs (Entra object GUIDs carry
  no tenant) are listed exactly;
* a cloud provider's service principal (``cloudformation.amazonaws.com``) acts for whoever called it, so
  it keys an entry only together with the calling actor's ID, or for service-linked roles;
* placeholders a log writes when it has no value (``Not Available``, ``N/A``, the all-zero GUID, …)
  identify nobody, and a Microsoft first-party display name (``Managed Service Identity``) is not an ID.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.aql.detection import PLATFORMS
from app.kinds import ACCOUNT_KINDS
from app.tuning.matcher import MAX_PATTERN_LENGTH, MAX_WILDCARDS, Glob, is_placeholder

ACTOR_PATTERN_FIELDS = ("actor_id", "actor")

DAY_MS = 86_400_000
MAX_EXPIRY_MS = 365 * DAY_MS
MAX_BREAK_GLASS_MS = DAY_MS
MAX_ACTOR_ID = 512
MAX_CIDRS = 64
MAX_JUSTIFICATION = 2000
MIN_JUSTIFICATION = 10
MAX_TICKET = 128
MAX_NAME = 200
MIN_LITERAL_CHARS = 3
# The literal prefix of an AWS ARN pattern: partition, service, 12-digit account, principal type and one
# whole path segment (for an assumed role, the role name).
_PINNED_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:(?:iam|sts)::\d{12}:"
    r"(?:user|role|assumed-role|federated-user|group)/[^/*]+/",
    re.IGNORECASE,
)
# An e-mail-shaped ID pinned to its domain: no wildcard from the '@' on, and a dotted domain.
_PINNED_EMAIL = re.compile(r"@[^@*\s]+\.[^@*\s]+$")
SERVICE_LINKED_ROLE = "service_linked_role"
# Display names of Microsoft first-party applications. Any tenant's app can take one, and the detection
# falls back to the display name when an Entra event names no ID: never an actor ID to key on.
MICROSOFT_FIRST_PARTY_NAMES = (
    "Managed Service Identity",
    "Microsoft Azure AD Internal - Jit Provisioning",
    "AAD App Management",
    "Windows Azure Service Management API",
    "Power Virtual Agents Service",
    "MS-PIM",
    "Microsoft.Azure.SyncFabric",
    "Microsoft Graph",
)
_FIRST_PARTY_NAMES = frozenset(name.casefold() for name in MICROSOFT_FIRST_PARTY_NAMES)

# What a client writes into an entry (in the order an export lists them). Everything else is refused
# (unknown fields are a 400); the store adds the history (status, who, when, version).
ENTRY_FIELDS = (
    "name",
    "platforms",
    "actor_id",
    "actor_pattern",
    "actor_pattern_field",
    "source_cidrs",
    "source_service",
    "ua_pattern",
    "target_pattern",
    "target_type",
    "window",
    "justification",
    "ticket",
    "expires_at",
    "break_glass",
    "enabled",
    "override_reason",
)
WRITABLE_FIELDS = frozenset(ENTRY_FIELDS)
# Request-only fields (not stored).
CONTROL_FIELDS = frozenset({"version", "confirm_partial_chain"})
# Free text: editable after approval without a new approval, but audited and shown as such.
TEXT_FIELDS = ("name", "justification", "ticket")
# Fields whose change can widen what an entry suppresses: changing them needs a fresh approval.
MATCHING_FIELDS = (
    "platforms",
    "actor_id",
    "source_service",
    "actor_pattern",
    "actor_pattern_field",
    "source_cidrs",
    "ua_pattern",
    "target_pattern",
    "target_type",
    "window",
    "expires_at",
    "break_glass",
    "override_reason",
)

_REGEX_HINTS = re.compile(r"^\^|\$$|\\|\.\*|\.\+|\(\?|\[\^")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# CloudTrail puts the calling AWS service (invokedBy) in sourceIPAddress; AWS sets it, a client cannot.
_AWS_SERVICE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,100}\.amazonaws\.com$")


class TuningError(Exception):
    """A request problem the API turns into ``{"error": {...}}`` with this status, code and field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.extra = extra or {}


def bad(field: str, message: str, code: str = "bad_field") -> TuningError:
    return TuningError(400, code, message, field)


def _text(payload: Mapping[str, Any], field: str, max_len: int, *, required: bool = False) -> str | None:
    value = payload.get(field)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise bad(field, f"{field} is required")
        return None
    if not isinstance(value, str):
        raise bad(field, f"{field} must be a string")
    value = value.strip()
    if required and not value:
        raise bad(field, f"{field} is required")
    if len(value) > max_len:
        raise bad(field, f"{field} is longer than {max_len} characters")
    if _CONTROL_CHARS.search(value):
        raise bad(field, f"{field} contains control characters")
    return value


def validate_pattern(field: str, value: Any) -> str | None:
    """A glob pattern: bounded length and wildcards, some literal text, no regex syntax."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad(field, f"{field} must be a string")
    if len(value) > MAX_PATTERN_LENGTH:
        raise bad(field, f"{field} is longer than {MAX_PATTERN_LENGTH} characters", "pattern_too_long")
    if value.count("*") > MAX_WILDCARDS:
        raise bad(field, f"{field} has more than {MAX_WILDCARDS} '*' wildcards", "pattern_too_complex")
    if _CONTROL_CHARS.search(value):
        raise bad(field, f"{field} contains control characters")
    if _REGEX_HINTS.search(value):
        raise bad(
            field,
            f"{field} looks like a regular expression; patterns are globs where * matches any "
            "text (regex syntax such as ^ $ \\ .* is not supported)",
            "pattern_not_glob",
        )
    if len(value.replace("*", "").strip()) < MIN_LITERAL_CHARS:
        raise bad(
            field, f"{field} needs at least {MIN_LITERAL_CHARS} literal characters", "pattern_too_broad"
        )
    Glob(value)  # compiles (limits already checked)
    return value


def parse_time_ms(field: str, value: Any) -> int:
    """Epoch milliseconds from an int or an ISO-8601 string with a UTC offset."""
    if isinstance(value, bool):
        raise bad(field, f"{field} must be epoch milliseconds or an ISO-8601 time")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise bad(field, f"{field} is not an ISO-8601 time") from None
        if moment.tzinfo is None:
            raise bad(field, f"{field} needs a UTC offset (e.g. 2026-01-31T00:00:00Z)")
        return int(moment.timestamp() * 1000)
    raise bad(field, f"{field} must be epoch milliseconds or an ISO-8601 time")


def _window(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise bad("window", "window must be an object {days, start, end}")
    unknown = set(value) - {"days", "start", "end"}
    if unknown:
        raise bad(
            f"window.{sorted(unknown)[0]}", f"unknown window field {sorted(unknown)[0]!r}", "unknown_field"
        )
    days = value.get("days", [1, 2, 3, 4, 5, 6, 7])
    if (
        not isinstance(days, list)
        or not days
        or any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7 for d in days)
    ):
        raise bad("window.days", "window.days must be a non-empty list of ISO weekdays 1 (Mon) … 7 (Sun)")
    for part in ("start", "end"):
        if not isinstance(value.get(part), str) or not _HHMM.match(value[part]):
            raise bad(f"window.{part}", f"window.{part} must be HH:MM (UTC)")
    if value["start"] == value["end"]:
        raise bad("window.end", "window.end must differ from window.start")
    return {"days": sorted(set(days)), "start": value["start"], "end": value["end"]}


def _cidrs(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad("source_cidrs", "source_cidrs must be a list of CIDRs")
    if len(value) > MAX_CIDRS:
        raise bad("source_cidrs", f"source_cidrs has more than {MAX_CIDRS} entries")
    cidrs = []
    for item in value:
        if not isinstance(item, str):
            raise bad("source_cidrs", "source_cidrs must be a list of CIDRs")
        try:
            network = ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise bad("source_cidrs", f"{item[:80]!r} is not an IP network") from None
        if network.prefixlen == 0:
            raise bad("source_cidrs", "source_cidrs must not cover every address")
        cidrs.append(str(network))
    return cidrs


def is_service_principal(value: str | None) -> bool:
    """A cloud provider's own service (``cloudformation.amazonaws.com``), which acts for its callers."""
    return bool(value) and bool(_AWS_SERVICE.match(value.strip().lower()))  # type: ignore[union-attr]


def pattern_pins_principal(pattern: str) -> bool:
    """Whether an actor-ID pattern names one principal (see the module docstring), not a family anyone
    could join."""
    if "*" not in pattern:
        return True
    prefix = pattern.split("*", 1)[0]
    if pattern.lower().startswith("arn:"):
        return bool(_PINNED_ARN.match(prefix))
    return bool(_PINNED_EMAIL.search(pattern))


def _check_keys(out: Mapping[str, Any]) -> None:
    """Refuse keys that could be borrowed (placeholders, unpinned ID patterns, a service principal alone)."""
    for field in ("actor_id", "actor_pattern"):
        value = out.get(field)
        if value and is_placeholder(value.replace("*", "")):
            raise bad(
                field,
                f"{field} {value[:80]!r} is a placeholder a log writes when it has no value; it would match "
                "every actor without an ID",
                "placeholder",
            )
    actor_id = out.get("actor_id")
    if actor_id and actor_id.strip().casefold() in _FIRST_PARTY_NAMES:
        raise bad(
            "actor_id",
            f"actor_id {actor_id[:80]!r} is the display name of a Microsoft first-party application, which "
            "any tenant's app can copy: first-party applications are recognised by their application ID, so "
            "list the service principal's object ID instead",
            "display_name_not_id",
        )
    pattern = out.get("actor_pattern")
    if pattern and out.get("actor_pattern_field") == "actor_id" and not pattern_pins_principal(pattern):
        raise bad(
            "actor_pattern",
            f"actor_pattern {pattern[:80]!r} does not pin one principal: an AWS ARN pattern must fix the "
            "account, the principal type and at least one whole path segment before its first * "
            "(arn:aws:iam::111122223333:role/pipelines/*); a GCP or Entra ID pattern must fix the domain "
            "after @ (the project or tenant); list other IDs exactly",
            "pattern_not_pinned",
        )
    service_keyed = out.get("source_service") or (
        out.get("actor_id") if is_service_principal(out.get("actor_id")) else None
    )
    if service_keyed and out.get("target_type") != SERVICE_LINKED_ROLE:
        caller_pinned = (out.get("actor_id") and not is_service_principal(out.get("actor_id"))) or (
            out.get("actor_pattern") and out.get("actor_pattern_field") == "actor_id"
        )
        if not caller_pinned:
            field = "source_service" if out.get("source_service") else "actor_id"
            raise bad(
                field,
                f"{service_keyed} is a cloud provider's service acting for whoever calls it (e.g. anyone's "
                "stack): key the entry on the calling actor's ID too, or limit it to target_type "
                "service_linked_role",
                "service_principal_alone",
            )


def is_anchored(entry: Mapping[str, Any]) -> bool:
    """True when the entry keys on an immutable actor identity (not on spoofable attributes alone)."""
    if entry.get("actor_id") or entry.get("source_service"):
        return True
    pattern = entry.get("actor_pattern")
    if pattern and (entry.get("actor_pattern_field") or "actor_id") == "actor_id":
        return pattern_pins_principal(pattern)
    return False


def validate_entry(
    payload: Mapping[str, Any], *, now_ms: int, is_admin: bool, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Validate a create (``current`` None) or a partial update merged onto ``current``.

    Returns the normalized stored fields. Raises ``TuningError`` naming the first bad field.
    """
    if not isinstance(payload, Mapping):
        raise bad("body", "the request body must be a JSON object")
    unknown = set(payload) - WRITABLE_FIELDS - CONTROL_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise bad(name, f"unknown field {name!r}", "unknown_field")
    merged: dict[str, Any] = {k: current.get(k) for k in WRITABLE_FIELDS} if current else {}
    merged.update({k: v for k, v in payload.items() if k in WRITABLE_FIELDS})

    out: dict[str, Any] = {"name": _text(merged, "name", MAX_NAME)}
    platforms = merged.get("platforms")
    if not isinstance(platforms, list) or not platforms or any(p not in PLATFORMS for p in platforms):
        raise bad("platforms", f"platforms must be a non-empty list drawn from {', '.join(PLATFORMS)}")
    out["platforms"] = [p for p in PLATFORMS if p in platforms]
    out["actor_id"] = _text(merged, "actor_id", MAX_ACTOR_ID)
    out["actor_pattern"] = validate_pattern("actor_pattern", merged.get("actor_pattern"))
    field = merged.get("actor_pattern_field") or "actor_id"
    if field not in ACTOR_PATTERN_FIELDS:
        raise bad("actor_pattern_field", "actor_pattern_field must be 'actor_id' or 'actor'")
    out["actor_pattern_field"] = field
    out["source_cidrs"] = _cidrs(merged.get("source_cidrs"))
    source_service = merged.get("source_service") or None
    if source_service is not None and (
        not isinstance(source_service, str) or not _AWS_SERVICE.match(source_service.strip().lower())
    ):
        raise bad(
            "source_service",
            "source_service must be an AWS service principal such as "
            "autoscaling.amazonaws.com (the invoking service CloudTrail records)",
        )
    out["source_service"] = source_service.strip().lower() if source_service else None
    out["ua_pattern"] = validate_pattern("ua_pattern", merged.get("ua_pattern"))
    out["target_pattern"] = validate_pattern("target_pattern", merged.get("target_pattern"))
    target_type = merged.get("target_type") or None
    if target_type is not None and target_type not in ACCOUNT_KINDS:
        raise bad("target_type", f"target_type must be one of {', '.join(ACCOUNT_KINDS)}")
    out["target_type"] = target_type
    out["window"] = _window(merged.get("window"))
    out["justification"] = _text(merged, "justification", MAX_JUSTIFICATION, required=True)
    if len(out["justification"]) < MIN_JUSTIFICATION:
        raise bad("justification", f"justification must say why, in at least {MIN_JUSTIFICATION} characters")
    out["ticket"] = _text(merged, "ticket", MAX_TICKET)
    for flag in ("break_glass", "enabled"):
        value = merged.get(flag, flag == "enabled")
        if value is None:
            value = flag == "enabled"
        if not isinstance(value, bool):
            raise bad(flag, f"{flag} must be true or false")
        out[flag] = value

    if merged.get("expires_at") is None:
        raise bad(
            "expires_at", "expires_at is required (at most 365 days ahead; break-glass at most 24 hours)"
        )
    expires_at = parse_time_ms("expires_at", merged["expires_at"])
    expiry_changed = (
        current is None
        or expires_at != current.get("expires_at")
        or out["break_glass"] != bool(current.get("break_glass"))
    )
    if expiry_changed:
        if expires_at <= now_ms:
            raise bad("expires_at", "expires_at must be in the future")
        if out["break_glass"] and expires_at - now_ms > MAX_BREAK_GLASS_MS:
            raise bad("expires_at", "a break-glass entry expires within 24 hours")
        if expires_at - now_ms > MAX_EXPIRY_MS:
            raise bad("expires_at", "expires_at is at most 365 days ahead")
    out["expires_at"] = expires_at
    if out["break_glass"] and not out["ticket"]:
        raise bad("ticket", "a break-glass entry needs a ticket reference")

    keys = ("actor_id", "source_service", "actor_pattern", "ua_pattern", "target_pattern", "source_cidrs")
    if not any(out[k] for k in keys):
        raise bad("actor_id", "an entry needs an actor ID (or actor pattern) to key on", "no_condition")
    _check_keys(out)
    override_reason = _text(merged, "override_reason", MAX_JUSTIFICATION)
    anchored = is_anchored(out)
    out["override_reason"] = None
    out["flagged_spoofable"] = not anchored
    if not anchored:
        if not override_reason:
            raise bad(
                "actor_id",
                "this entry keys only on spoofable attributes (user agent, display name, UPN "
                "pattern, source address); give an actor immutable ID, or an admin may "
                "override with override_reason",
                "spoofable_only",
            )
        if not is_admin:
            changed = (
                current is None
                or override_reason != current.get("override_reason")
                or any(out[k] != current.get(k) for k in MATCHING_FIELDS if k in out)
            )
            if changed:
                raise TuningError(
                    403,
                    "admin_required",
                    "only an admin may override the spoofable-attribute rule",
                    "override_reason",
                )
        out["override_reason"] = override_reason
    return out


def changes_widen(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether an update can make the entry suppress more than the approved version: re-enabling, a later
    expiry or any other change of a matching condition does; disabling, an earlier expiry or editing text
    (name, justification, ticket) does not."""
    if after.get("enabled") and not before.get("enabled"):
        return True
    if int(after.get("expires_at") or 0) > int(before.get("expires_at") or 0):
        return True
    return any(before.get(k) != after.get(k) for k in MATCHING_FIELDS if k != "expires_at")
