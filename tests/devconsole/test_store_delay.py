"""The dev console's store delay: events become searchable later than their starttime (a lag per log
source, occasional backlog bursts, deterministic under a seed); Ariel searches see only events whose
``searchable_at`` has come; the admin switches it and drains the backlog through ``/devconsole/store_delay``."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time

import pytest

from devconsole.aql import AqlEngine
from devconsole.ingest import ingest_records
from devconsole.store import EventStore
from devconsole.storedelay import StoreDelay, StoreDelayClient

MIN, HOUR = 60_000, 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR  # an hour boundary


def test_lag_jitter_and_bursts_are_deterministic_under_a_seed() -> None:
    delay = StoreDelay(lag_ms=2 * MIN, jitter_ms=MIN, burst_probability=0.5, burst_ms=20 * MIN, seed=42)
    times = [T0 + i * 7 * MIN for i in range(200)]
    first = [delay.searchable_at(5, t, b"payload") for t in times]
    assert first == [delay.searchable_at(5, t, b"payload") for t in times]  # same seed, same times
    other = StoreDelay(lag_ms=2 * MIN, jitter_ms=MIN, burst_probability=0.5, burst_ms=20 * MIN, seed=43)
    assert first != [other.searchable_at(5, t, b"payload") for t in times]
    bursts = 0
    for t, at in zip(times, first, strict=True):
        window_end = t - t % HOUR + HOUR
        if delay.is_burst(5, t):
            bursts += 1
            assert at == window_end + 20 * MIN  # the backlog is flushed together after its window
        else:
            assert t + 2 * MIN <= at < t + 3 * MIN
    assert 0 < bursts < len(times)  # occasional: some windows are bursts, most events are not
    assert StoreDelay().searchable_at(5, T0, None) == T0


@pytest.mark.parametrize(
    "fields",
    [{"lag_ms": -1}, {"burst_probability": 1.5}, {"burst_window_ms": 1000}, {"jitter_ms": 10**15}],
)
def test_bad_delays_are_refused(fields) -> None:
    with pytest.raises(ValueError):
        StoreDelay(**fields)


def test_searches_see_an_event_only_once_it_is_searchable(tmp_path) -> None:
    store = EventStore(tmp_path / "events.db")
    source = store.ensure_log_source("AWS CloudTrail @ 123456789012", 347)
    store.set_store_delay(source, StoreDelay(lag_ms=3 * HOUR))
    qid = store.ensure_qid(347, "CreateUser", 3035)
    base = {"qid": qid, "category": 3035, "highlevelcategory": 3000, "logsourceid": source, "devicetype": 347}
    store.insert_events(
        [{**base, "starttime": T0}, {**base, "starttime": T0 + MIN, "searchable_at": T0 + MIN}]
    )
    engine = AqlEngine(store, tz=dt.UTC)
    aql = "SELECT starttime FROM events START '2026-01-01 00:00' STOP '2027-01-01 00:00'"

    def seen(now_ms: int) -> list[int]:
        return [row["starttime"] for row in engine.execute(engine.prepare(aql, now_ms))]

    assert seen(T0 + 2 * MIN) == [T0 + MIN]  # its own searchable_at; the other is held 3 h
    assert seen(T0 + 3 * HOUR) == [T0, T0 + MIN]
    assert store.pending_events(T0 + 2 * MIN)[0]["events"] == 1
    assert store.release_pending(T0 + 2 * MIN) == 1
    assert seen(T0 + 2 * MIN) == [T0, T0 + MIN]
    assert store.pending_events(T0 + 2 * MIN) == []


def test_a_data_directory_from_before_store_delays_gains_the_column(tmp_path) -> None:
    path = tmp_path / "events.db"
    EventStore(path)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE events DROP COLUMN searchable_at")
    store = EventStore(path)
    with sqlite3.connect(path) as conn:
        assert "searchable_at" in {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    assert store.count_events() == 0


def test_the_admin_sets_inspects_and_releases_the_backlog_over_https(devconsole) -> None:
    store = EventStore(devconsole.data_dir / "events.db")
    source = store.ensure_log_source("Linux OS @ store-delay-test", 11)
    qid = store.ensure_qid(11, "store delay probe", 8050)
    client = StoreDelayClient(devconsole.base_url, devconsole.tokens["admin"], devconsole.ca_path)
    state = client.set(source, lag_seconds=7200, burst_probability=0.25, burst_seconds=600, seed=9)
    assert {"log_source_id": source, "lag_ms": 7_200_000, "jitter_ms": 0, "burst_probability": 0.25,
            "burst_window_ms": 3_600_000, "burst_ms": 600_000, "seed": 9} in state["delays"]  # fmt: skip
    t = int(time.time() * 1000) - 2 * 86_400_000  # outside every other test's windows
    store.insert_events(
        [
            {
                "starttime": t,
                "qid": qid,
                "category": 8050,
                "highlevelcategory": 8000,
                "logsourceid": source,
                "devicetype": 11,
                "searchable_at": int(time.time() * 1000) + HOUR,
            }
        ]
    )
    aql = f"SELECT starttime FROM events WHERE logsourceid = {source} LAST 3 DAYS"
    assert devconsole.run_search(aql)[1] == []
    pending = [p for p in client.state()["pending"] if p["log_source_id"] == source]
    assert pending and pending[0]["events"] == 1
    assert client.release(source)["released"] == 1
    assert [row["starttime"] for row in devconsole.run_search(aql)[1]] == [t]

    bad = devconsole.api().post(
        devconsole.url("/devconsole/store_delay"),
        json={"action": "set", "log_source_id": source, "lag_seconds": "soon"},
        timeout=10,
    )
    assert bad.status_code == 422 and "lag_seconds" in bad.json()["message"]
    unknown = devconsole.api().post(
        devconsole.url("/devconsole/store_delay"),
        json={"action": "set", "log_source_id": source, "x": 1},
        timeout=10,
    )
    assert unknown.status_code == 422 and "x" in unknown.json()["message"]
    refused = devconsole.api("analyst").post(
        devconsole.url("/devconsole/store_delay"), json={"action": "clear"}, timeout=10
    )
    assert refused.status_code == 403
    store.set_store_delay(source, None)
    assert all(d["log_source_id"] != source for d in client.state()["delays"])


def test_ingestion_applies_the_log_sources_delay(tmp_path) -> None:
    store = EventStore(tmp_path / "events.db")
    source = store.ensure_log_source("AWS CloudTrail @ 210987654321", 347)
    store.set_store_delay(source, StoreDelay(lag_ms=90 * MIN))
    record = {
        "eventVersion": "1.10",
        "eventTime": "2026-09-21T10:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "recipientAccountId": "210987654321",
        "userIdentity": {"type": "IAMUser", "accountId": "210987654321", "userName": "alice"},
        "requestParameters": {"userName": "bob"},
    }
    assert ingest_records(store, [record]).ingested == 1
    with store.connect(readonly=True) as conn:
        starttime, searchable_at = conn.execute("SELECT starttime, searchable_at FROM events").fetchone()
    assert searchable_at == starttime + 90 * MIN
