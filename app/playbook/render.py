"""Fill the playbook's command templates with a detection's or offense's actor and target.

Every value that came from a log is quoted for the command's shell (`app.playbook.quoting`); only times
the app formats itself (checked against a strict pattern) are inserted bare. A value that is not known
stays a visible ``<placeholder>`` so a half-filled command is obvious.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from app.playbook.content import Command
from app.playbook.quoting import logging_filter_string, quote

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
# Values the app formats itself and inserts bare (they sit inside JSON or OData text).
_TRUSTED = frozenset({"now_iso", "since_iso"})
_AWS_USER_ARN = re.compile(r"arn:aws[\w-]*:iam::\d{12}:user/(?:.*/)?([^/]+)")
_AWS_ROLE_ARN = re.compile(
    r"arn:aws[\w-]*:(?:sts::\d{12}:assumed-role/([^/]+)/.*"
    r"|iam::\d{12}:role/(?:.*/)?([^/]+))"
)

PLACEHOLDER_TEXT = {
    "target": "<new-account>",
    "target_id": "<new-account-object-id>",
    "actor": "<creator>",
    "actor_user": "<creator-iam-user>",
    "actor_role": "<creator-role-name>",
}


@dataclass(frozen=True)
class Subject:
    """What a playbook page is about: one creation (all fields optional)."""

    platform: str | None = None
    actor: str | None = None
    actor_id: str | None = None
    target: str | None = None
    target_id: str | None = None
    event_time_ms: int | None = None
    detection_id: int | None = None
    offense_id: int | None = None


@dataclass(frozen=True)
class FilledCommand:
    text: str
    shell: str
    note: str
    complete: bool  # every placeholder had a value


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aws_names(*candidates: str | None) -> tuple[str | None, str | None]:
    user = role = None
    for value in candidates:
        if not value:
            continue
        if user is None and (m := _AWS_USER_ARN.fullmatch(value)):
            user = m.group(1)
        if role is None and (m := _AWS_ROLE_ARN.fullmatch(value)):
            role = m.group(1) or m.group(2)
    return user, role


def raw_values(subject: Subject, now_ms: int) -> dict[str, str]:
    """Unquoted values for every placeholder the subject can fill."""
    values: dict[str, str] = {"now_iso": _iso(now_ms)}
    if subject.actor:
        values["actor"] = subject.actor
    if subject.target:
        values["target"] = subject.target
    values["target_id"] = subject.target_id or subject.target or ""
    if not values["target_id"]:
        del values["target_id"]
    user, role = _aws_names(subject.actor_id, subject.actor)
    if user:
        values["actor_user"] = user
    elif subject.actor and not re.search(r"[:/]", subject.actor):
        values["actor_user"] = subject.actor
    if role:
        values["actor_role"] = role
    if subject.target:
        values["ct_lookup_target"] = json.dumps(
            [{"AttributeKey": "ResourceName", "AttributeValue": subject.target}], ensure_ascii=False
        )
        values["gcp_member"] = "serviceAccount:" + subject.target
        values["gcp_member_filter"] = "bindings.members:serviceAccount:" + subject.target
        values["gcp_log_filter_target"] = "protoPayload.resourceName:" + logging_filter_string(subject.target)
    if subject.actor:
        values["ct_lookup_actor"] = json.dumps(
            [{"AttributeKey": "Username", "AttributeValue": values.get("actor_user", subject.actor)}],
            ensure_ascii=False,
        )
        values["gcp_log_filter_actor"] = (
            "protoPayload.authenticationInfo.principalEmail=" + logging_filter_string(subject.actor)
        )
    if subject.event_time_ms is not None:
        values["since_iso"] = _iso(max(0, subject.event_time_ms - 3_600_000))
        values["since_date"] = values["since_iso"]
        values["until_date"] = _iso(subject.event_time_ms + 24 * 3_600_000)
    return values


def fill(command: Command, values: Mapping[str, str]) -> FilledCommand:
    complete = True

    def replace(match: re.Match[str]) -> str:
        nonlocal complete
        name = match.group(1)
        value = values.get(name)
        if value is None:
            complete = False
            return PLACEHOLDER_TEXT.get(name, f"<{name.replace('_', '-')}>")
        if name in _TRUSTED:
            if not _ISO.fullmatch(value):
                raise ValueError(f"{name} is not an app-formatted time: {value!r}")
            return value
        return quote(value, command.shell)

    text = _PLACEHOLDER.sub(replace, command.template)
    return FilledCommand(text, command.shell, command.note, complete)
