"""Issue 14 item 4, end to end: an allowlisted pipeline's creation is suppressed; a later refresh learns
that another, non-allowlisted actor granted the created user admin, and the creation comes back, marked
"suppression overridden: joined a chain". The same grant by the allowlisted actor itself keeps it hidden.

CloudTrail records go through the dev console's DSM ingestion and real Ariel searches; two refresh cycles
run with fixed ``now`` values so the grant arrives in the second one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.detection import refresher
from app.qradar import Gateway
from app.store import db
from app.store import detections as detection_store
from app.store.db import transaction
from app.tuning import approval, service
from devconsole.launcher import stop_serve
from tests.app.detection.conftest import ACCOUNT, cloudtrail, console_env, ingest_records, serve_console
from tests.app.tuning.tuning_helpers import HOUR, TUNER1, TUNER2

PIPELINE = f"arn:aws:iam::{ACCOUNT}:role/pipelines/provisioner"
INTRUDER = f"arn:aws:iam::{ACCOUNT}:role/intruder"
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
BASE = int(time.time() * 1000) - 4 * HOUR  # the first cycle's "now"; the grants come after it


def _create_user(t: int, name: str) -> dict[str, Any]:
    arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    return cloudtrail(
        t,
        "CreateUser",
        {"userName": name},
        {"user": {"userName": name, "userId": f"AIDA{name.upper()}", "arn": arn}},
        actor_arn=PIPELINE,
    )


def _grant_admin(t: int, name: str, by: str) -> dict[str, Any]:
    return cloudtrail(t, "AttachUserPolicy", {"userName": name, "policyArn": ADMIN_POLICY}, actor_arn=by)


def _enable_own_mfa(t: int, name: str) -> dict[str, Any]:
    """The new user enrolling its own MFA device: context of its chain, nothing given to it."""
    return cloudtrail(
        t,
        "EnableMFADevice",
        {"userName": name, "serialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/{name}"},
        actor_arn=f"arn:aws:iam::{ACCOUNT}:user/{name}",
    )


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("chain_override_console")
    records = [
        _create_user(BASE - HOUR, "svc-hijacked"),
        _create_user(BASE - HOUR + 60_000, "svc-finished"),
        _grant_admin(BASE + 30 * 60_000, "svc-hijacked", INTRUDER),
        _grant_admin(BASE + 31 * 60_000, "svc-finished", PIPELINE),
        _enable_own_mfa(BASE + 33 * 60_000, "svc-finished"),
    ]
    ingest = ingest_records(data_dir, [json.dumps(r) for r in records])
    assert ingest.returncode == 0, ingest.stderr + ingest.stdout
    served = serve_console(data_dir)
    try:
        yield console_env(served, data_dir)
    finally:
        stop_serve(served.process)


def _creation(conn: Any, name: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT id FROM detections WHERE event_name = 'CreateUser' AND target_account = ?", (name,)
    ).fetchone()
    assert row is not None, f"no detection for {name}"
    return detection_store.get_detection(conn, row["id"])


def test_a_suppressed_creation_granted_admin_by_another_actor_comes_back(
    console: dict[str, Any], tmp_path: Path
) -> None:
    conn = db.connect(tmp_path / "app.db")
    gateway = Gateway.from_env(console, poll_wait_s=1)
    with transaction(conn):
        entry, _ = service.create_entry(
            conn,
            {
                "platforms": ["AWS"],
                "actor_id": PIPELINE,
                "justification": "Provisioning pipeline creates service users (CHG-42)",
                "expires_at": BASE + 30 * 24 * HOUR,
            },
            user=TUNER1,
            now_ms=BASE - 2 * HOUR,
        )
    with transaction(conn):
        approval.decide(
            conn,
            entry["id"],
            {"version": entry["version"]},
            user=TUNER2,
            now_ms=BASE - 2 * HOUR,
            approve=True,
        )

    first = refresher.refresh_once(conn, gateway, now=BASE)
    assert first.status == "ok", first.error
    for name in ("svc-hijacked", "svc-finished"):
        created = _creation(conn, name)
        assert created["suppressed_by"] == entry["id"] and "suppression" not in created

    second = refresher.refresh_once(conn, gateway, now=BASE + 2 * HOUR)
    assert second.status == "ok", second.error
    hijacked = _creation(conn, "svc-hijacked")
    assert hijacked["chain_id"] is not None
    assert hijacked["suppressed_by"] is None  # back in the default view
    assert hijacked["suppression_overridden_by"] == entry["id"]
    assert hijacked["suppression"]["reason"] == "suppression overridden: joined a chain"
    assert f"entry #{entry['id']}" in hijacked["suppression"]["explanation"]
    listed, _ = detection_store.list_detections(conn, detection_store.DetectionFilter(suppressed=False))
    assert hijacked["id"] in {d["id"] for d in listed}

    # The allowlisted pipeline granting its own user admin is its own work, and the user enrolling its own
    # MFA device (context, not a grant) gives it nothing: still suppressed.
    finished = _creation(conn, "svc-finished")
    assert finished["chain_id"] is not None
    context = conn.execute(
        "SELECT COUNT(*) FROM chain_events WHERE chain_id = ? AND event_name = 'EnableMFADevice'",
        (finished["chain_id"],),
    ).fetchone()[0]
    assert context == 1  # the enrolment is in the chain
    assert (finished["suppressed_by"], finished["suppression_overridden_by"]) == (entry["id"], None)
    conn.close()
