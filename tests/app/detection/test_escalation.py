"""Escalation memory and chain windows end to end: raw CloudTrail records ingested DSM-style into a dev
console of our own, read by refresh cycles that walk forward in time as the refresher would, so a grant
days after a creation arrives in a later cycle whose window no longer holds the creation."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.detection import refresher
from app.store.db import connect
from devconsole.launcher import stop_serve
from tests.app.detection.conftest import ACCOUNT, cloudtrail, console_env, ingest_records, serve_console

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
PIPELINE = f"arn:aws:iam::{ACCOUNT}:role/pipelines/provisioner"
INTRUDER = f"arn:aws:iam::{ACCOUNT}:role/intruder"


def create_user(t: int, name: str, **actor: str) -> dict:
    return cloudtrail(
        t,
        "CreateUser",
        {"userName": name},
        {"user": {"userName": name, "userId": f"AIDA{name}", "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}"}},
        **actor,
    )


def admin_grant(t: int, name: str, **actor: str) -> dict:
    return cloudtrail(t, "AttachUserPolicy", {"userName": name, "policyArn": ADMIN_POLICY}, **actor)


def access_key(t: int, name: str) -> dict:
    return cloudtrail(
        t,
        "CreateAccessKey",
        {"userName": name},
        {"accessKey": {"userName": name, "accessKeyId": f"AKIA{name}", "status": "Active"}},
    )


@pytest.fixture(scope="module")
def escalation_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, int]]:
    now = int(time.time() * 1000)
    records = [
        # Created 3 days before its administrator grant: chained (escalation memory, 7 days).
        create_user(now - 3 * DAY - HOUR, "esc-3d"),
        admin_grant(now - HOUR, "esc-3d"),
        # Created 8 days before its grant: beyond the memory, not chained.
        create_user(now - 8 * DAY - HOUR, "esc-8d"),
        admin_grant(now - HOUR + MIN, "esc-8d"),
        # A key 11 minutes after the user, read by the next cycle: chained (AWS credential window, 1 h).
        create_user(now - 100 * MIN, "key-11m"),
        access_key(now - 89 * MIN, "key-11m"),
        # An allowlisted pipeline's user, granted admin days later by an actor no entry allows.
        create_user(now - 3 * DAY - 2 * HOUR, "esc-hijacked", actor_arn=PIPELINE),
        admin_grant(now - 50 * MIN, "esc-hijacked", actor_arn=INTRUDER),
    ]
    data_dir = tmp_path_factory.mktemp("escalation_console")
    ingest = ingest_records(data_dir, [json.dumps(r) for r in records])
    assert ingest.returncode == 0, ingest.stderr + ingest.stdout
    served = serve_console(data_dir)
    env = console_env(served, data_dir)
    try:
        yield env, now
    finally:
        stop_serve(served.process)


CYCLES = (-8 * DAY - 30 * MIN, -3 * DAY - 30 * MIN, -95 * MIN, 0)


def walk_forward(
    conn: sqlite3.Connection, env: dict, now: int, cycles: tuple[int, ...] = CYCLES
) -> list[refresher.CycleResult]:
    """Refresh cycles at increasing times, the way a refresher that ran all along would have: each reads
    from its watermark, so the last one's window holds the grants but not the creations days before."""
    from app.qradar import Gateway

    gw = Gateway.from_env(env, poll_wait_s=1)
    results = []
    for at in (now + offset for offset in cycles):
        result = refresher.refresh_once(conn, gw, now=at)
        assert result.status == "ok", result.error
        results.append(result)
    return results


def by_target(conn: sqlite3.Connection, target: str, event_name: str) -> sqlite3.Row:
    return conn.execute(
        "SELECT * FROM detections WHERE target_account = ? AND event_name = ?", (target, event_name)
    ).fetchone()


def chain_steps(conn: sqlite3.Connection, chain_id: int) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT event_name FROM chain_events WHERE chain_id = ? ORDER BY position", (chain_id,)
        )
    ]


@pytest.fixture
def store_conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    from app import features

    features.register_settings()
    conn = connect(tmp_path / "store" / "app.db")
    yield conn
    conn.close()


def test_admin_grant_days_later_joins_the_creation_chain_and_keys_within_the_hour_chain(
    escalation_console, store_conn
) -> None:
    env, now = escalation_console
    results = walk_forward(store_conn, env, now)
    last = results[-1]
    # The last cycle's window and re-correlated span do not reach the creation three days back.
    assert last.start_ms - refresher.chain_lookback_ms(refresher.load_config(store_conn, None).windows) > (
        now - 3 * DAY
    )

    three_days = by_target(store_conn, "esc-3d", "CreateUser")
    assert three_days["chain_kind"] == "privilege_grant"
    assert chain_steps(store_conn, three_days["chain_id"]) == ["CreateUser", "AttachUserPolicy"]
    assert three_days["severity"] == 10 and three_days["confidence"] == "high"
    chain = store_conn.execute("SELECT * FROM chains WHERE id = ?", (three_days["chain_id"],)).fetchone()
    assert chain["admin"] == 1 and chain["first_time"] == three_days["event_time"]

    eight_days = by_target(store_conn, "esc-8d", "CreateUser")
    assert eight_days is not None and eight_days["chain_id"] is None
    assert eight_days["severity"] == eight_days["base_severity"]

    user = by_target(store_conn, "key-11m", "CreateUser")
    key = by_target(store_conn, "key-11m", "CreateAccessKey")
    assert key["event_time"] - user["event_time"] == 11 * MIN
    assert user["chain_kind"] == key["chain_kind"] == "aws_user_credential"
    assert user["chain_id"] == key["chain_id"]

    # Re-running adds and changes nothing: the reopened chain is rebuilt the same.
    before = store_conn.execute("SELECT * FROM chain_events ORDER BY chain_id, position").fetchall()
    from app.qradar import Gateway

    again = refresher.refresh_once(store_conn, Gateway.from_env(env, poll_wait_s=1), now=now + MIN)
    assert again.status == "ok", again.error
    after = store_conn.execute("SELECT * FROM chain_events ORDER BY chain_id, position").fetchall()
    assert [tuple(r) for r in after] == [tuple(r) for r in before]


def test_escalation_memory_is_a_setting(escalation_console, store_conn) -> None:
    from app import settings

    settings.update(store_conn, {"escalation_memory_days": 2}, actor="test")
    env, now = escalation_console
    walk_forward(store_conn, env, now)
    three_days = by_target(store_conn, "esc-3d", "CreateUser")
    assert three_days["chain_id"] is None


def test_a_suppressed_creation_granted_admin_days_later_by_another_actor_comes_back(
    escalation_console, store_conn
) -> None:
    from app.store import detections as detection_store
    from app.store.db import transaction
    from app.tuning import approval, service
    from tests.app.tuning.tuning_helpers import TUNER1, TUNER2

    env, now = escalation_console
    with transaction(store_conn):
        entry, _ = service.create_entry(
            store_conn,
            {
                "platforms": ["AWS"],
                "actor_id": PIPELINE,
                "justification": "Provisioning pipeline creates service users (CHG-42)",
                "expires_at": now + 30 * DAY,
            },
            user=TUNER1,
            now_ms=now - 9 * DAY,
        )
    with transaction(store_conn):
        approval.decide(
            store_conn,
            entry["id"],
            {"version": entry["version"]},
            user=TUNER2,
            now_ms=now - 9 * DAY,
            approve=True,
        )
    walk_forward(store_conn, env, now, CYCLES[:-1])
    hijacked = detection_store.get_detection(
        store_conn, by_target(store_conn, "esc-hijacked", "CreateUser")["id"]
    )
    assert hijacked["suppressed_by"] == entry["id"] and hijacked["chain_id"] is None
    walk_forward(store_conn, env, now, CYCLES[-1:])
    hijacked = detection_store.get_detection(store_conn, hijacked["id"])
    assert hijacked["chain_kind"] == "privilege_grant"
    assert hijacked["suppressed_by"] is None
    assert hijacked["suppression_overridden_by"] == entry["id"]


def test_creations_are_found_by_target_through_an_index(store_conn) -> None:
    plan = " ".join(
        str(r[-1])
        for r in store_conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM detections WHERE lower(target_account) IN ('a', 'b') "
            "AND event_time >= 0 AND event_time < 10"
        )
    )
    assert "detections_target_account_lower" in plan
    plan = " ".join(
        str(r[-1])
        for r in store_conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM detections WHERE lower(target_id) IN ('a', 'b') "
            "AND event_time >= 0 AND event_time < 10"
        )
    )
    assert "detections_target_id_lower" in plan
