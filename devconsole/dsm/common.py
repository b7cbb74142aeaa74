"""What every DSM parser shares: the parsed-event shape, the rejection error, timestamp and IP parsing,
typed field access, and the action classes that decide an event's low-level category and severity.

Category IDs are the event store's built-ins (``devconsole.store.BUILTIN_LOW_LEVEL_CATEGORIES``) plus
"Privilege Escalation Succeeded" (3007, QRadar's documented ID). Which low-level category QRadar's real
CloudTrail / Azure AD / Office 365 / Google Cloud DSMs give each event is UNCONFIRMED; the mapping below is
this console's best guess, chosen so that account creations land in "User Account Added" under
"Authentication".
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

# Log source type IDs (aql-and-rest-api.md §6.1: IBM's pySigma QRadar backend). Google's display names
# are read from that backend's keys (GoogleCloudAudit, GoogleGSuite) and are UNCONFIRMED.
TYPE_CLOUDTRAIL = 347
TYPE_AZURE_AD = 445
TYPE_AZURE_PLATFORM = 413
TYPE_OFFICE_365 = 397
TYPE_GCP = 449
TYPE_GOOGLE_WORKSPACE = 442

LOG_SOURCE_TYPE_NAMES: dict[int, str] = {
    TYPE_CLOUDTRAIL: "Amazon AWS CloudTrail",
    TYPE_AZURE_AD: "Microsoft Azure Active Directory",
    TYPE_AZURE_PLATFORM: "Microsoft Azure Platform",
    TYPE_OFFICE_365: "Microsoft Office 365",
    TYPE_GCP: "Google Cloud Audit",
    TYPE_GOOGLE_WORKSPACE: "Google G Suite",
}

ACCOUNT_NAME_PROPERTY = "Account Name"

# Longest event name a QID record takes; longer names are a malformed record, not a new QID.
MAX_EVENT_NAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class ActionClass:
    """How a DSM files one kind of action: low-level category (and its high-level one) and severity."""

    name: str
    category_id: int
    category_name: str
    high_level_id: int
    severity: int
    relevance: int


ACCOUNT_ADDED = ActionClass("account_added", 3035, "User Account Added", 3000, 6, 7)
CREDENTIAL_ADDED = ActionClass("credential_added", 3037, "User Account Changed", 3000, 6, 7)
ACCOUNT_CHANGED = ActionClass("account_changed", 3037, "User Account Changed", 3000, 4, 5)
ACCOUNT_REMOVED = ActionClass("account_removed", 3036, "User Account Removed", 3000, 4, 5)
GROUP_MEMBER_ADDED = ActionClass("group_member_added", 3060, "Group Member Added", 3000, 7, 7)
PRIVILEGE_GRANTED = ActionClass("privilege_granted", 3007, "Privilege Escalation Succeeded", 3000, 7, 7)
LOGIN_SUCCEEDED = ActionClass("login_succeeded", 3014, "User Login Success", 3000, 1, 3)
LOGIN_FAILED = ActionClass("login_failed", 3015, "User Login Failure", 3000, 3, 4)
READ = ActionClass("read", 4001, "Access Permitted", 4000, 1, 1)
MANAGEMENT = ActionClass("management", 15001, "Audit Event", 15000, 3, 3)

ALL_ACTION_CLASSES: tuple[ActionClass, ...] = (
    ACCOUNT_ADDED,
    CREDENTIAL_ADDED,
    ACCOUNT_CHANGED,
    ACCOUNT_REMOVED,
    GROUP_MEMBER_ADDED,
    PRIVILEGE_GRANTED,
    LOGIN_SUCCEEDED,
    LOGIN_FAILED,
    READ,
    MANAGEMENT,
)

# Cloud audit trails are first-party records signed off by the provider: high credibility.
CLOUD_AUDIT_CREDIBILITY = 8


def magnitude_of(severity: int, credibility: int, relevance: int) -> int:
    """QRadar weighs relevance and severity above credibility; this is a simple weighted mean (1–10)."""
    return max(1, min(10, round((3 * relevance + 3 * severity + 2 * credibility) / 8)))


class RecordError(ValueError):
    """A record this DSM cannot parse; the message is the reason reported to the user."""


@dataclass(slots=True)
class ParsedEvent:
    """One raw record, normalized the way a QRadar DSM does before QID lookup."""

    source: str  # parser key: cloudtrail, entra_audit, entra_signin, o365, gcp, azure_platform
    type_id: int  # log source type (devicetype)
    log_source_name: str  # one log source per account / tenant / project / subscription
    event_name: str  # DSM event ID = QID name
    action: ActionClass
    time_ms: int
    username: str | None
    sourceip: str | None
    record_id: str | None = None
    account_name: str | None = None
    failed: bool = False

    @property
    def props(self) -> dict[str, str] | None:
        return {ACCOUNT_NAME_PROPERTY: self.account_name} if self.account_name else None


# --- typed field access -----------------------------------------------------------------------------

_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def opt_obj(record: dict, key: str, where: str = "") -> dict:
    """``record[key]`` as an object; missing or null is an empty object, anything else is an error."""
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{where}{key} must be an object (got {type_name(value)})")
    return value


def opt_list(record: dict, key: str, where: str = "") -> list:
    value = record.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{where}{key} must be an array (got {type_name(value)})")
    return value


def opt_str(record: dict, key: str, where: str = "") -> str | None:
    """``record[key]`` as a string; missing, null or empty is None, a non-string is an error."""
    value = record.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"{where}{key} must be a string (got {type_name(value)})")
    return value


def loose_str(value: Any) -> str | None:
    """A display value from a field whose type varies between feeds (strings kept, numbers stringified)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return None


def req_event_name(record: dict, key: str, where: str = "") -> str:
    value = record.get(key)
    if value is None or value == "":
        raise RecordError(f"{where}{key} (the event name) is missing")
    if not isinstance(value, str):
        raise RecordError(f"{where}{key} (the event name) must be a string (got {type_name(value)})")
    if not value.strip():
        raise RecordError(f"{where}{key} (the event name) is blank")
    if len(value) > MAX_EVENT_NAME_LENGTH:
        raise RecordError(f"{where}{key} (the event name) is longer than {MAX_EVENT_NAME_LENGTH} characters")
    return value


# --- time -------------------------------------------------------------------------------------------

_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|z|[+-]\d{2}:?\d{2})?"
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@functools.lru_cache(maxsize=4096)
def _day_start_ms(year: int, month: int, day: int) -> int:
    return (dt.datetime(year, month, day, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(milliseconds=1)


def parse_time_ms(value: Any, field: str) -> int:
    """Epoch ms from an ISO-8601 timestamp as the cloud feeds write them.

    Accepts any number of fractional digits (Entra writes 7, Google 9), ``Z`` or an offset, and no zone
    at all (Office 365 ``CreationTime`` is UTC without a designator).
    """
    if value is None or value == "":
        raise RecordError(f"{field} (the event time) is missing")
    if not isinstance(value, str):
        raise RecordError(f"{field} (the event time) must be an ISO-8601 string (got {type_name(value)})")
    match = _TIME_RE.fullmatch(value.strip())
    if match is None:
        raise RecordError(f"{field} (the event time) is not an ISO-8601 timestamp: {value[:40]!r}")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    hour_n, minute_n, second_n = int(hour), int(minute), int(second)
    try:
        if hour_n > 23 or minute_n > 59 or second_n > 60:
            raise ValueError("hour, minute or second out of range")
        day_ms = _day_start_ms(int(year), int(month), int(day))
    except ValueError as exc:
        raise RecordError(f"{field} (the event time) is not a valid date: {exc}") from None
    ms = day_ms + ((hour_n * 60 + minute_n) * 60 + second_n) * 1000
    if frac:
        ms += int((frac + "00")[:3])
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60_000
    return ms


# --- IP addresses -----------------------------------------------------------------------------------

_IPV4_RE = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")


def clean_ip(value: Any) -> str | None:
    """An IP address for ``sourceip`` or None: drops ports (``1.2.3.4:5678``, ``[2001:db8::1]:443``) and
    non-addresses such as AWS service names (``cloudformation.amazonaws.com``) or GCP's ``private``."""
    if not isinstance(value, str) or not value:
        return None
    return _clean_ip_text(value)


@functools.lru_cache(maxsize=65_536)
def _clean_ip_text(value: str) -> str | None:
    text = value.strip()
    if _IPV4_RE.fullmatch(text):
        return text
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


# --- action classes by name -------------------------------------------------------------------------


_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"})


def normalize_operation(name: str) -> str:
    """Lower-case, trimmed, without the Office 365 trailing period, every dash folded to a hyphen and
    whitespace runs to one space."""
    return " ".join(name.strip().rstrip(".").strip().lower().translate(_DASHES).split())


# Entra ID audit operations and their Office 365 twins (the same names with a trailing period).
MICROSOFT_OPERATIONS: dict[str, ActionClass] = {
    "add user": ACCOUNT_ADDED,
    "add service principal": ACCOUNT_ADDED,
    "add application": ACCOUNT_ADDED,
    "invite external user": ACCOUNT_ADDED,
    "add service principal credentials": CREDENTIAL_ADDED,
    "update application - certificates and secrets management": CREDENTIAL_ADDED,
    "user registered security info": CREDENTIAL_ADDED,
    "add member to role": GROUP_MEMBER_ADDED,
    "add eligible member to role": GROUP_MEMBER_ADDED,
    "add member to group": GROUP_MEMBER_ADDED,
    "add app role assignment to service principal": PRIVILEGE_GRANTED,
    "add app role assignment grant to user": PRIVILEGE_GRANTED,
    "consent to application": PRIVILEGE_GRANTED,
    "add delegated permission grant": PRIVILEGE_GRANTED,
    "add owner to application": PRIVILEGE_GRANTED,
    "add owner to service principal": PRIVILEGE_GRANTED,
    "add scoped member to role": GROUP_MEMBER_ADDED,
    "add member to role in pim completed (permanent)": GROUP_MEMBER_ADDED,
    "add member to role in pim completed (timebound)": GROUP_MEMBER_ADDED,
    "add eligible member to role in pim completed (permanent)": GROUP_MEMBER_ADDED,
    "add eligible member to role in pim completed (timebound)": GROUP_MEMBER_ADDED,
    "add member to role completed (pim activation)": GROUP_MEMBER_ADDED,
    "redeem external user invite": ACCOUNT_CHANGED,
    "add unverified domain": MANAGEMENT,
    "add verified domain": MANAGEMENT,
    "verify domain": MANAGEMENT,
    "set domain authentication": PRIVILEGE_GRANTED,
    "set federation settings on domain": PRIVILEGE_GRANTED,
    "delete user": ACCOUNT_REMOVED,
    "hard delete user": ACCOUNT_REMOVED,
    "remove service principal": ACCOUNT_REMOVED,
    "delete application": ACCOUNT_REMOVED,
    "update user": ACCOUNT_CHANGED,
    "reset user password": ACCOUNT_CHANGED,
    "change user password": ACCOUNT_CHANGED,
    "disable account": ACCOUNT_CHANGED,
    "enable account": ACCOUNT_CHANGED,
    "update service principal": ACCOUNT_CHANGED,
    "update application": ACCOUNT_CHANGED,
    "remove member from role": ACCOUNT_CHANGED,
    "remove member from group": ACCOUNT_CHANGED,
    "sign-in activity": LOGIN_SUCCEEDED,
    "userloggedin": LOGIN_SUCCEEDED,
    "userloginfailed": LOGIN_FAILED,
    "fileaccessed": READ,
    "filedownloaded": READ,
    "filepreviewed": READ,
    "mailitemsaccessed": READ,
    "searchqueryperformed": READ,
}


def microsoft_action(name: str) -> ActionClass:
    return MICROSOFT_OPERATIONS.get(normalize_operation(name), MANAGEMENT)


_READ_PREFIXES = ("get", "list", "describe", "lookup", "head", "batchget", "search", "query", "check")


def is_read_verb(verb: str) -> bool:
    return verb.lower().startswith(_READ_PREFIXES)


def verb_action(verb: str, known: dict[str, ActionClass]) -> ActionClass:
    """How an API verb (``CreateUser``, ``CreateServiceAccountKey``) is filed: the DSM's own table of
    ``known`` verbs first, then a read for Get/List/Describe… verbs, else a management event."""
    action = known.get(verb)
    if action is not None:
        return action
    return READ if is_read_verb(verb) else MANAGEMENT
