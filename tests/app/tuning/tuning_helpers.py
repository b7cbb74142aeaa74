"""Helpers for the tuning tests: a fixed clock, tuning users, detections written through the detection
store's own insert."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from app.store import detections as detection_store
from app.store.db import transaction
from app.tuning.approval import Actor

NOW = 1_780_000_000_000  # a fixed "now" (2026-05-28T20:26:40Z) so expiry and windows are exact
HOUR = 3_600_000
DAY = 24 * HOUR

# User IDs as the dev console's users have them (QRadar's numeric user IDs).
TUNER1 = Actor("tuner1", can_tune=True, is_admin=False, user_id=2)
TUNER2 = Actor("tuner2", can_tune=True, is_admin=False, user_id=3)
ADMIN = Actor("admin", can_tune=True, is_admin=True, user_id=1)
ANALYST = Actor("analyst", can_tune=False, is_admin=False, user_id=4)

_keys = itertools.count(1)


def add_detection(conn: Any, **fields: Any) -> int:
    """Insert one detection (committed) with sensible defaults; returns its id."""
    n = next(_keys)
    record = {
        "event_key": hashlib.sha256(f"tuning-test-{n}".encode()).hexdigest(),
        "event_time": NOW - HOUR,
        "event_name": "CreateUser",
        "cloud_platform": "AWS",
        "account_kind": "user",
        "actor": "deployer",
        "actor_id": "arn:aws:iam::111122223333:role/deployer",
        "target_account": f"user-{n}",
        "source_ip": "203.0.113.10",
        "user_agent": "aws-cli/2.18.17",
        "severity": 5,
        "confidence": "medium",
        "base_severity": 5,
        "base_confidence": "medium",
        "stored_at": NOW,
        **fields,
    }
    chain_id = record.pop("chain_id", None)
    with transaction(conn):
        detection_id = detection_store.insert_detection(conn, record)
        if chain_id is not None:
            conn.execute(
                "UPDATE detections SET chain_id = ?, chain_kind = 'test' WHERE id = ?",
                (chain_id, detection_id),
            )
    return detection_id


def suppressed_by(conn: Any, detection_id: int) -> int | None:
    return conn.execute("SELECT suppressed_by FROM detections WHERE id = ?", (detection_id,)).fetchone()[0]


def entry_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "platforms": ["AWS"],
        "actor_id": "arn:aws:iam::111122223333:role/deployer",
        "justification": "Terraform pipeline creates IAM users for new services (CHG-1)",
        "expires_at": NOW + 30 * DAY,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
