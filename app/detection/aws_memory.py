"""The AWS privilege memory at work: follow-on events teach which customer-managed policies and groups
carry administrator power, and later grants are judged by it.

- `CreatePolicy` / `CreatePolicyVersion`: the policy's document is evaluated (`aws_policy`) and remembered
  by ARN, so a later `AttachUserPolicy`/`AttachRolePolicy` of that ARN is an admin grant when it was admin;
- `AttachGroupPolicy` / `PutGroupPolicy` of an admin policy (managed by ARN, remembered, or inline): the
  group is remembered as admin, so a later `AddUserToGroup` to it is an admin grant, whatever its name.

Events are applied in the order of their own time (`device_time`, else receipt time) within what one
refresh page reads; a grant seen before the policy or group
it refers to was learned keeps the judgement it had (its own document, ARN and group name).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from app.aql.detection import AWS
from app.detection.aws_policy import is_managed_admin_arn
from app.store import aws_privilege


def apply(conn: sqlite3.Connection, records: Iterable[dict[str, Any]]) -> None:
    """Learn from and judge AWS follow-on records (in place: `admin_grant`), inside the caller's
    transaction."""
    # In the events' own order (receipt order can put a grant before the policy it refers to).
    ordered = sorted(
        records, key=lambda r: (r.get("device_time") or r.get("event_time") or 0, r.get("event_key") or "")
    )
    for rec in ordered:
        if rec.get("cloud_platform") != AWS:
            continue
        policy, group = rec.get("policy_ref"), rec.get("group_ref")
        if not rec.get("admin_grant"):
            learned_policy = bool(
                policy and not is_managed_admin_arn(policy) and aws_privilege.policy_is_admin(conn, policy)
            )
            learned_group = bool(group and aws_privilege.group_is_admin(conn, group))
            rec["admin_grant"] = learned_policy or learned_group
        learned = rec.get("aws_learned")
        if not learned:
            continue
        what, name, admin = learned
        admin = bool(admin or rec.get("admin_grant"))
        if what == "policy":
            aws_privilege.remember_policy(conn, name, admin, rec["event_time"], rec["event_key"])
        elif what == "group":
            aws_privilege.remember_group(
                conn, name, admin, rec.get("granted"), rec["event_time"], rec["event_key"]
            )
