"""QRadar's delivery of events in the dev console: per-log-source coalescing (eventcount, first payload kept,
switchable through the log source API) and payload truncation at the maximum payload length."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from devconsole.aql import AqlEngine
from devconsole.coalesce import DEFAULT_MAX_PAYLOAD_BYTES, truncate_payload
from devconsole.ingest import ingest_records
from devconsole.store import EventStore

T0 = "2026-03-11T16:00:00Z"
T0_MS = int(dt.datetime(2026, 3, 11, 16, tzinfo=dt.UTC).timestamp() * 1000)


def create_user(second: int, event_id: str, *, failed: bool = False, user_name: str = "svc-new") -> dict:
    record = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE1",
            "arn": "arn:aws:iam::111122223333:user/build-agent",
            "accountId": "111122223333",
            "userName": "build-agent",
        },
        "eventTime": f"2026-03-11T16:00:{second:02d}Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.77",
        "userAgent": "Boto3/1.34.0",
        "requestParameters": {"userName": user_name},
        "responseElements": None if failed else {"user": {"userName": user_name}},
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }
    if failed:
        record["errorCode"] = "AccessDenied"
    return record


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore.in_dir(tmp_path)


def events(store: EventStore) -> list[sqlite3.Row]:
    with closing(store.connect(readonly=True)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM events ORDER BY id").fetchall()


def four_failed_then_success() -> list[dict]:
    return [create_user(2 * i, f"fail-{i}", failed=True) for i in range(4)] + [create_user(8, "success")]


def test_four_failed_calls_and_a_success_within_10_s_are_stored_as_qradar_coalesces_them(store):
    report = ingest_records(store, four_failed_then_success(), collect_ids=True)
    assert report.ingested == 5 and report.coalesced == 1
    rows = events(store)
    # The first three events stand alone; the fourth starts the coalesced record, which counts the fifth
    # and keeps the fourth's payload: the success is only visible as eventcount 2.
    assert [r["eventcount"] for r in rows] == [1, 1, 1, 2]
    kept = json.loads(rows[3]["payload"])
    assert kept["eventID"] == "fail-3" and kept["errorCode"] == "AccessDenied"
    ids = dict(report.event_ids)
    assert ids[4] == ids[3] == rows[3]["id"]
    assert report.coalesced_indices == {4}


def test_eventcount_is_an_ariel_column(store):
    ingest_records(store, four_failed_then_success())
    engine = AqlEngine(store, tz=dt.UTC)
    query = engine.prepare(
        "SELECT eventcount, UTF8(payload) AS p FROM events WHERE eventcount > 1"
        f" START {T0_MS - 60_000} STOP {T0_MS + 60_000}",
        T0_MS + 120_000,
    )
    rows = engine.execute(query)
    assert [r["eventcount"] for r in rows] == [2]
    total = engine.execute(
        engine.prepare(
            f"SELECT SUM(eventcount) AS n FROM events START {T0_MS - 60_000} STOP {T0_MS + 60_000}",
            T0_MS + 120_000,
        )
    )
    assert total[0]["n"] == 5


def test_events_more_than_10_s_apart_are_not_coalesced(store):
    records = [create_user(12 * i, f"e{i}") for i in range(5)]
    report = ingest_records(store, records)
    assert report.coalesced == 0
    assert [r["eventcount"] for r in events(store)] == [1] * 5


def test_events_differing_in_source_ip_or_username_are_not_coalesced(store):
    records = [create_user(i, f"e{i}") for i in range(5)]
    for i, record in enumerate(records):
        if i % 2:
            record["sourceIPAddress"] = f"203.0.113.{i}"
        else:
            record["userIdentity"] = {**record["userIdentity"], "userName": f"agent-{i}", "arn": f"arn:{i}"}
    report = ingest_records(store, records)
    assert report.coalesced == 0
    assert [r["eventcount"] for r in events(store)] == [1] * 5


def test_coalescing_switched_off_for_a_log_source_stores_every_event(store):
    ingest_records(store, [create_user(0, "first")])
    (log_source_id,) = store.log_source_coalescing()
    assert store.log_source_coalescing() == {log_source_id: True}  # on for a new log source
    assert store.set_log_source_coalescing(log_source_id, False)
    report = ingest_records(store, four_failed_then_success())
    assert report.coalesced == 0
    assert [r["eventcount"] for r in events(store)] == [1] * 6


def test_a_count_added_after_the_coalesced_event_was_written_reaches_it(store):
    records = [create_user(i, f"e{i}") for i in range(7)]
    report = ingest_records(store, records, batch_size=1)
    assert report.coalesced == 3
    assert [r["eventcount"] for r in events(store)] == [1, 1, 1, 4]


def test_payload_over_the_limit_is_cut_inside_the_json_and_normalized_fields_stay_whole(store):
    name = "svc-" + "n" * 60
    record = create_user(0, "long", user_name=name)
    record["requestParameters"] = {"tags": [{"key": "k", "value": "v" * 4000}], "userName": name}
    report = ingest_records(store, [record])
    assert report.truncated == 1
    (row,) = events(store)
    assert len(row["payload"]) == DEFAULT_MAX_PAYLOAD_BYTES
    with pytest.raises(ValueError):
        json.loads(row["payload"])
    assert json.loads(row["props"]) == {"Account Name": name}
    assert row["username"] == "build-agent"


def test_payload_limit_is_configurable_and_none_keeps_payloads_whole(store):
    record = create_user(0, "x")
    whole = len(json.dumps(record, separators=(",", ":")))
    ingest_records(store, [record], max_payload_bytes=100)
    ingest_records(store, [create_user(30, "y")], max_payload_bytes=None)
    first, second = events(store)
    assert len(first["payload"]) == 100
    assert len(second["payload"]) == whole


def test_truncation_never_splits_a_character():
    text = ("é" * 10).encode("utf-8")
    cut = truncate_payload(text, 5)
    assert cut == ("é" * 2).encode("utf-8")
    cut.decode("utf-8")


# --- the log source API --------------------------------------------------------------------------------

LOG_SOURCES = "/api/config/event_sources/log_source_management/log_sources"


def test_log_sources_expose_coalescing_and_an_admin_can_switch_it(devconsole, assert_qradar_error):
    admin = devconsole.api("admin")
    listed = admin.get(devconsole.url(LOG_SOURCES), timeout=30)
    assert listed.status_code == 200
    cloud = [s for s in listed.json() if s["type_id"] == 347]
    assert cloud and all(s["coalesce_events"] is True for s in cloud)
    target = cloud[0]["id"]
    url = devconsole.url(f"{LOG_SOURCES}/{target}")
    try:
        switched = admin.post(url, json={"coalesce_events": False}, timeout=30)
        assert switched.status_code == 200, switched.text
        assert switched.json()["coalesce_events"] is False
        assert admin.get(url, timeout=30).json()["coalesce_events"] is False
        assert_qradar_error(
            devconsole.api("analyst").post(url, json={"coalesce_events": True}, timeout=30), 403, 26
        )
        assert_qradar_error(admin.post(url, json={"coalesce_events": "no"}, timeout=30), 422, 1005)
        assert_qradar_error(admin.post(url, json={"name": "renamed"}, timeout=30), 422, 1005)
        assert_qradar_error(admin.post(url, data="not json", timeout=30), 400, 1005)
        assert_qradar_error(
            admin.post(devconsole.url(f"{LOG_SOURCES}/999999"), json={"coalesce_events": True}, timeout=30),
            404,
            1002,
        )
    finally:
        restored = admin.post(url, json={"coalesce_events": True}, timeout=30)
        assert restored.status_code == 200
