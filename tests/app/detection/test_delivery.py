"""Detections as QRadar really delivers events (issue 13): a creation coalesced behind failed attempts is a
possible success with a pivot to the raw events, a creation whose payload is cut is still a detection
marked truncated, the coalescing health check warns, and without those behaviours each creation is one
plain detection. The shared dev console seeds the scenario with coalescing on and payloads cut at 4096
bytes; the fault-free run has a console of its own with both switched off."""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from app.detection import coalescing, refresher
from app.detection.records import build_detection
from app.jobs import JobContext
from app.qradar import Gateway
from app.store.db import connect
from app.store.detections import get_detection
from devconsole.ingest import ingest_records
from devconsole.store import EventStore
from tests.conftest import free_port, start_devconsole, stop_devconsole
from tests.devconsole.test_coalescing import create_user, four_failed_then_success

REPO_ROOT = Path(__file__).resolve().parents[3]


def gateway_env(console) -> dict[str, str]:
    return {
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{console.port}",
        "SEC_ADMIN_TOKEN": console.tokens["service"],
        "REQUESTS_CA_BUNDLE": str(console.ca_path),
    }


@pytest.fixture(scope="module")
def refreshed(devconsole, tmp_path_factory: pytest.TempPathFactory):
    conn = connect(tmp_path_factory.mktemp("delivery_store") / "app.db")
    gateway = Gateway.from_env(gateway_env(devconsole), poll_wait_s=1)
    result = refresher.refresh_once(conn, gateway)
    assert result.status == "ok", result.error
    yield conn, gateway, devconsole.scenario
    conn.close()


def item(scenario: dict, key: str) -> dict:
    (found,) = [i for i in scenario["items"] if i["key"] == key]
    return found


def detections_of_event(conn: sqlite3.Connection, devconsole, event_id: int) -> list[sqlite3.Row]:
    """The detections whose event is the console's event ``event_id`` (matched on time, QID, log source)."""
    with closing(devconsole.db()) as events:
        row = events.execute(
            "SELECT e.starttime, e.qid, ls.name FROM events e JOIN log_sources ls ON ls.id = e.logsourceid"
            " WHERE e.id = ?",
            (event_id,),
        ).fetchone()
    return conn.execute(
        "SELECT * FROM detections WHERE event_time = ? AND qid = ? AND log_source = ?", tuple(row)
    ).fetchall()


@pytest.mark.parametrize("key", ["delivery-coalesced-create-user", "delivery-coalesced-entra-add-user"])
def test_four_failed_calls_then_a_success_within_10_s_is_a_possible_success(
    refreshed, devconsole, key: str
) -> None:
    conn, _, scenario = refreshed
    entry = item(scenario, key)
    assert list(entry["depends_on"]) == ["coalescing"]
    (creation,) = [e for e in entry["events"] if e["role"] == "creation"]
    assert creation["coalesced"] is True
    (found,) = detections_of_event(conn, devconsole, creation["event_id"])
    assert found["eventcount"] == 2
    assert found["outcome"] == "possible_success"
    assert found["result"].startswith("failure")  # the kept payload is the fourth, denied, attempt
    assert found["confidence"] == "low"
    assert found["target_account"] == creation["target_account"]
    for failed in (e for e in entry["events"] if e["role"] == "failed attempt"):
        assert detections_of_event(conn, devconsole, failed["event_id"]) == []


def test_possible_success_is_in_the_api_with_a_pivot_to_the_raw_events(
    refreshed_app, client, login, devconsole
) -> None:
    entry = item(devconsole.scenario, "delivery-coalesced-create-user")
    (creation,) = [e for e in entry["events"] if e["role"] == "creation"]
    headers = login(client, "admin")
    listed = client.get(
        "/api/detections", query_string={"target": creation["target_account"], "limit": 50}, headers=headers
    )
    assert listed.status_code == 200, listed.get_data(as_text=True)
    (summary,) = [d for d in listed.get_json()["items"] if d["outcome"] == "possible_success"]
    assert summary["outcome_label"] == "possible success, 2 coalesced"
    detail = client.get(f"/api/detections/{summary['id']}", headers=headers).get_json()
    assert detail["eventcount"] == 2 and detail["payload_state"] == "parsed"
    links = client.get(f"/api/detections/{summary['id']}/links", headers=headers).get_json()
    pivot = links["coalesced_events"]
    assert "eventcount" in pivot["aql"] and f"qid = {detail['qid']}" in pivot["aql"]
    assert "/console/do/ariel/arielSearch" in pivot["log_activity"]
    # The pivot runs on the console and finds the three single attempts and the coalesced record.
    rows = Gateway.from_env(gateway_env(devconsole), poll_wait_s=1).run_search(pivot["aql"], 60)
    counts = sorted(int(r["eventcount"]) for r in rows if r["username"] == "build-agent-07")
    assert counts == [1, 1, 1, 2]


def test_payload_cut_in_the_middle_of_the_target_is_a_marked_detection(refreshed, devconsole) -> None:
    conn, _, scenario = refreshed
    entry = item(scenario, "delivery-truncated-create-user")
    assert list(entry["depends_on"]) == ["truncation"]
    (creation,) = entry["events"]
    assert creation["payload_truncated"] is True
    (found,) = detections_of_event(conn, devconsole, creation["event_id"])
    with closing(devconsole.db()) as events:
        payload = bytes(events.execute("SELECT payload FROM events WHERE id = ?", (creation["event_id"],))
                        .fetchone()[0]).decode()  # fmt: skip
    name = creation["target_account"]
    assert name not in payload and payload.endswith(name[: len(name) // 2])  # cut inside the name
    assert found["payload_state"] == "truncated"
    assert found["outcome"] == "unknown" and found["confidence"] == "low"
    # What QRadar normalized: the name from the Account Name property, the actor from username.
    assert found["target_account"] == name
    assert found["actor"] == "build-agent-07"
    label = get_detection(conn, found["id"])["outcome_label"]
    assert label == "unknown (payload truncated)"


def test_an_unparsable_creation_is_kept_and_never_a_certain_success(refreshed) -> None:
    conn, gateway, _ = refreshed
    from app.detection.config import load_config

    cfg = load_config(conn, gateway)
    row = {
        "starttime": 1_800_000_000_000,
        "qid": 347000001,
        "logsourceid": 1,
        "devicetype": 347,
        "event_name": "CreateUser",
        "log_source_type": "Amazon AWS CloudTrail",
        "actor": "someone",
        "target_account": "new-user",
        "eventcount": 1,
        "payload": "<13>Mar 11 16:00:00 host not json at all",
    }
    record = build_detection(row, cfg, 0)
    assert record is not None
    assert (record["payload_state"], record["outcome"], record["confidence"]) == (
        "unparsable",
        "unknown",
        "low",
    )
    assert record["target_account"] == "new-user" and record["actor"] == "someone"
    failed_once = {**row, "payload": '{"eventName":"CreateUser","errorCode":"AccessDenied"}'}
    assert build_detection(failed_once, cfg, 0) is None  # one failed event created nothing
    assert build_detection({**failed_once, "eventcount": 3}, cfg, 0)["outcome"] == "possible_success"


def test_health_check_warns_about_coalescing_cloud_log_sources(refreshed, devconsole) -> None:
    conn, gateway, _ = refreshed
    summary = coalescing.check(JobContext(conn, gateway))
    status = refresher.status(conn)["coalescing"]
    assert status["coalescing_on"] >= 1 and status["cloud_log_sources"] >= status["coalescing_on"]
    assert status["warning"] and "Coalescing is on" in status["warning"]
    assert "cloud log sources coalesce" in summary
    names = {s["name"] for s in status["log_sources_on"]}
    with closing(devconsole.db()) as events:
        cloud_names = {r[0] for r in events.execute("SELECT name FROM log_sources WHERE type_id = 347")}
    assert names & cloud_names


# --- the same attacks with coalescing and truncation off -----------------------------------------------


@pytest.fixture(scope="module")
def fault_free(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("fault_free_console")
    long_name = "svc-" + "n" * 40
    long = create_user(30, "long", user_name=long_name)
    long["requestParameters"] = {"tags": [{"key": "k", "value": "v" * 4500}], "userName": long_name}
    records = [*four_failed_then_success(), long]
    # Within the refresher's look-back: an hour ago, the calls' seconds apart as written.
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    for record in records:
        second = int(record["eventTime"][-3:-1])
        record["eventTime"] = (base + dt.timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = ingest_records(
        EventStore.in_dir(data), records, collect_ids=True, coalescing=False, max_payload_bytes=None
    )
    assert report.ingested == 6 and report.coalesced == 0 and report.truncated == 0
    console = start_devconsole(data, free_port(), REPO_ROOT / "manifest.json")
    conn = connect(tmp_path_factory.mktemp("fault_free_store") / "app.db")
    try:
        result = refresher.refresh_once(conn, Gateway.from_env(gateway_env(console), poll_wait_s=1))
        assert result.status == "ok", result.error
        yield conn, dict(report.event_ids)
    finally:
        conn.close()
        stop_devconsole(console)


def test_fault_free_run_gives_exactly_one_plain_detection_per_creation(fault_free) -> None:
    conn, _ = fault_free
    rows = conn.execute("SELECT * FROM detections ORDER BY event_time").fetchall()
    # Two creations (the fifth call and the long one); the four denied calls are no detection.
    assert [r["target_account"] for r in rows] == ["svc-new", "svc-" + "n" * 40]
    assert all(r["outcome"] == "success" and r["payload_state"] == "parsed" for r in rows)
    assert all(r["eventcount"] == 1 and r["confidence"] == "medium" for r in rows)
    events = conn.execute("SELECT COUNT(*) FROM detection_events").fetchone()[0]
    assert events == 2
