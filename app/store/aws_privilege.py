"""The AWS privilege memory: customer-managed policies and groups the refresher has seen, and whether
each carries administrator power (`app/detection/aws_memory.py` fills and reads it)."""

from __future__ import annotations

import sqlite3


def remember_policy(conn: sqlite3.Connection, arn: str, admin: bool, event_time: int, event_key: str) -> None:
    """Record a policy's contents as admin or not; once admin, it stays admin (an older version may be
    made the default again)."""
    conn.execute(
        "INSERT INTO aws_policies (policy_arn, admin, event_time, event_key) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (policy_arn) DO UPDATE SET admin = max(admin, excluded.admin), "
        "event_time = max(event_time, excluded.event_time), event_key = excluded.event_key",
        (arn, int(admin), event_time, event_key),
    )


def remember_group(
    conn: sqlite3.Connection, name: str, admin: bool, granted: str | None, event_time: int, event_key: str
) -> None:
    """Record a policy given to a group; the group is admin once any admin policy was given to it."""
    conn.execute(
        "INSERT INTO aws_groups (group_name, admin, granted, event_time, event_key) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (group_name) DO UPDATE SET "
        "granted = CASE WHEN excluded.admin >= admin THEN excluded.granted ELSE granted END, "
        "admin = max(admin, excluded.admin), event_time = max(event_time, excluded.event_time), "
        "event_key = excluded.event_key",
        (name, int(admin), granted, event_time, event_key),
    )


def policy_is_admin(conn: sqlite3.Connection, arn: str) -> bool | None:
    """Whether a remembered policy is admin; None when its contents were never seen."""
    row = conn.execute("SELECT admin FROM aws_policies WHERE policy_arn = ?", (arn,)).fetchone()
    return None if row is None else bool(row[0])


def group_is_admin(conn: sqlite3.Connection, name: str) -> bool | None:
    """Whether a remembered group carries an admin policy; None when no policy grant to it was seen."""
    row = conn.execute("SELECT admin FROM aws_groups WHERE group_name = ?", (name,)).fetchone()
    return None if row is None else bool(row[0])
