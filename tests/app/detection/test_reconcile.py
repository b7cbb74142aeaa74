"""Late-data reconciliation against the dev console with its store delay switched on: an event QRadar
stores 3 hours after its starttime is missed by the incremental refresh, found by the reconciliation
(once, marked, lag reported); a fault-free run gives exactly one detection per creation."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter

from app.detection import reconcile, refresher
from app.store import late_data
from app.store.db import connect
from devconsole.ingest import ingest_records
from devconsole.store import EventStore
from devconsole.storedelay import StoreDelayClient
from tests.app.detection.conftest import HOUR, MIN, cloudtrail

LATE_ACCOUNT = "999988887777"


def creations(conn: sqlite3.Connection) -> Counter:
    return Counter(
        (r["event_name"], r["cloud_platform"], r["target_account"])
        for r in conn.execute("SELECT event_name, cloud_platform, target_account FROM detections")
    )


def table(conn: sqlite3.Connection, name: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(f"SELECT * FROM {name} ORDER BY 1, 2")]


def test_fault_free_run_gives_one_detection_per_creation(detection_console, gateway, store_conn) -> None:
    first = refresher.refresh_once(store_conn, gateway)
    assert first.status == "ok", first.error
    before = {t: table(store_conn, t) for t in ("detections", "detection_events", "chains", "chain_events")}
    found = creations(store_conn)
    assert set(found.values()) == {1}, found  # one detection per creation
    assert len(found) == len(detection_console.expected["detections"])

    result = reconcile.reconcile_once(store_conn, gateway)
    assert result.status == "ok", result.error
    assert result.count_rows > 0  # it did compare QRadar's per-minute counts with what the refresh read
    assert result.changed_minutes == {"detections": 0, "follow_on": 0}
    assert (result.rows_fetched, result.inserted) == (0, 0)
    assert {t: table(store_conn, t) for t in before} == before  # nothing added, nothing touched

    again = refresher.refresh_once(store_conn, gateway)
    assert again.status == "ok", again.error
    assert reconcile.reconcile_once(store_conn, gateway).inserted == 0
    assert creations(store_conn) == found
    status = refresher.status(store_conn)["late_data"]
    assert status["reconciled_detections"] == 0
    assert status["max_lag_ms"] is None  # nothing arrived late


def test_event_stored_three_hours_late_is_found_by_reconciliation(
    detection_console, gateway, store_conn, tmp_path
) -> None:
    events = EventStore(detection_console.data_dir / "events.db")
    log_source = events.ensure_log_source(f"AWS CloudTrail @ {LATE_ACCOUNT}", 347)
    # Searchable 3 h after its starttime, and held back a while longer: the backlog is released below.
    StoreDelayClient(
        detection_console.base_url, detection_console.tokens["admin"], detection_console.ca_path
    ).set(log_source, lag_seconds=3 * 3600 + 600)
    now = int(time.time() * 1000)
    # A minute of its own (the scenario's GCP creation is at now - 3 h): a user and its access key.
    t = (now - 3 * HOUR - 2 * MIN) // MIN * MIN + 5_000
    arn = f"arn:aws:iam::{LATE_ACCOUNT}:user/late-user"
    late = [
        cloudtrail(
            t,
            "CreateUser",
            {"userName": "late-user"},
            {"user": {"userName": "late-user", "userId": "AIDALATE", "arn": arn}},
        ),
        cloudtrail(
            t + 30_000,
            "CreateAccessKey",
            {"userName": "late-user"},
            {"accessKey": {"userName": "late-user", "accessKeyId": "AKIALATE", "status": "Active"}},
        ),
    ]
    for record in late:
        record["recipientAccountId"] = LATE_ACCOUNT
    assert ingest_records(events, late).ingested == 2
    pending = events.pending_events()
    assert [(p["log_source_id"], p["events"]) for p in pending] == [(log_source, 2)]

    first = refresher.refresh_once(store_conn, gateway)  # the 24 h backfill: the event is not searchable
    assert first.status == "ok", first.error
    assert ("CreateUser", "AWS", "late-user") not in creations(store_conn)
    held = reconcile.reconcile_once(store_conn, gateway)
    assert (held.status, held.inserted) == ("ok", 0)

    assert events.release_pending() == 2  # QRadar stores them now, 3 h after it received them
    incremental = refresher.refresh_once(store_conn, gateway)
    assert incremental.status == "ok", incremental.error
    assert ("CreateUser", "AWS", "late-user") not in creations(store_conn)  # behind the 10-minute overlap

    result = reconcile.reconcile_once(store_conn, gateway)
    assert result.status == "ok", result.error
    assert result.inserted == 2
    assert result.changed_minutes["detections"] == 1
    assert result.rows_fetched == 2  # only the minute whose count changed was read
    rows = store_conn.execute("SELECT * FROM detections WHERE target_account = 'late-user'").fetchall()
    assert [(r["event_name"], r["found_by"], r["event_time"]) for r in rows] == [
        ("CreateUser", late_data.RECONCILIATION, t),
        ("CreateAccessKey", late_data.RECONCILIATION, t + 30_000),
    ]
    assert {r["chain_kind"] for r in rows} == {"aws_user_credential"}  # chained as the refresh would

    found = creations(store_conn)
    assert set(found.values()) == {1}, found  # the scenario's detections once each, the late one once
    assert reconcile.reconcile_once(store_conn, gateway).inserted == 0  # idempotent
    assert refresher.refresh_once(store_conn, gateway).status == "ok"
    assert creations(store_conn) == found

    status = refresher.status(store_conn)
    assert status["late_data"]["reconciled_detections"] == 2
    lag = status["late_data"]["max_lag_ms"]
    assert 3 * HOUR <= lag < 3 * HOUR + 10 * MIN, lag  # receipt (starttime) to first seen

    assert status["late_data"]["last_reconciliation"]["inserted"] == 0

    # A store that reads the same events in one refresh holds the same detections, chains and severities.
    fresh = connect(tmp_path / "fresh.db")
    try:
        assert refresher.refresh_once(fresh, gateway).status == "ok"
        assert outcome(fresh) == outcome(store_conn)
    finally:
        fresh.close()
    events.clear_store_delays()


def outcome(conn: sqlite3.Connection) -> list[tuple]:
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT d.event_key, d.severity, d.confidence, d.chain_kind, d.suppressed_by, d.also_seen_in,"
            " c.kinds FROM detections d LEFT JOIN chains c ON c.id = d.chain_id ORDER BY d.event_key"
        )
    ]


def test_the_reconciliation_is_a_refresher_job_hourly_over_24_hours(store_conn) -> None:
    from app import settings
    from app.refresher import JOBS

    assert reconcile.RECONCILE_JOB in JOBS
    assert JOBS.index(reconcile.RECONCILE_JOB) > JOBS.index(refresher.REFRESH_JOB)
    assert reconcile.RECONCILE_JOB.interval_s(store_conn) == 3600
    assert settings.get("reconcile_window_hours", store_conn) == 24


def test_changed_minutes_become_merged_ranges() -> None:
    counts = {0: 2, MIN: 1, 3 * MIN: 4}
    known = {0: 2, MIN: 0, 2 * MIN: 1, 3 * MIN: 4, 5 * MIN: 1}
    changed = reconcile.changed_minutes(counts, known)
    assert changed == [MIN, 2 * MIN, 5 * MIN]
    assert reconcile.minute_ranges(changed) == [(MIN, 3 * MIN), (5 * MIN, 6 * MIN)]


def test_a_qradar_fault_fails_the_run_and_the_next_one_recovers(
    detection_console, gateway, store_conn
) -> None:
    from app.jobs import JobContext, JobRunner

    assert refresher.refresh_once(store_conn, gateway).status == "ok"
    before = table(store_conn, "detections")
    runner = JobRunner([reconcile.RECONCILE_JOB], JobContext(store_conn, gateway))
    detection_console.faults.error_searches(1, "Injected: the count search failed.")
    try:
        assert runner.run(reconcile.RECONCILE_JOB) is False
    finally:
        detection_console.faults.clear()
    job = next(j for j in refresher.status(store_conn)["jobs"] if j["name"] == reconcile.JOB)
    assert job["last_status"] == "error" and "Injected" in job["last_error"]
    assert refresher.status(store_conn)["late_data"]["last_reconciliation"]["status"] == "error"
    assert table(store_conn, "detections") == before
    assert runner.run(reconcile.RECONCILE_JOB) is True
    assert refresher.status(store_conn)["late_data"]["last_reconciliation"]["status"] == "ok"
    assert table(store_conn, "detections") == before
