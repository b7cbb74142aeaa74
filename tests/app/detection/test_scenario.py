"""Against the shared seeded dev console (tests/conftest.py `devconsole`): every event the scenario
manifest marks as an expected detection is detected with the right platform, service-account flag and
account kind; its twins merge into it; its chains are found; nothing else is detected."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import defaultdict
from contextlib import closing
from pathlib import Path

import pytest

from app.detection import refresher
from app.qradar import Gateway
from app.store.db import connect


def ariel_key(row: sqlite3.Row) -> str:
    """The refresher's event key computed from the console's own events table (independently of Ariel)."""
    payload = bytes(row["payload"] or b"").decode("utf-8", errors="replace")
    text = f"{row['starttime']}\x1f{row['qid']}\x1f{row['logsourceid']}\x1f{payload}"
    return hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()


def gateway_env(devconsole) -> dict[str, str]:
    return {
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{devconsole.port}",
        "SEC_ADMIN_TOKEN": devconsole.tokens["service"],
        "REQUESTS_CA_BUNDLE": str(devconsole.ca_path),
    }


@pytest.fixture(scope="module")
def refreshed(devconsole, tmp_path_factory: pytest.TempPathFactory):
    env = gateway_env(devconsole)
    path: Path = tmp_path_factory.mktemp("scenario_store") / "app.db"
    conn = connect(path)
    result = refresher.refresh_once(conn, Gateway.from_env(env, poll_wait_s=1))
    assert result.status == "ok", result.error
    with closing(devconsole.db()) as events:
        keys = {
            r["id"]: ariel_key(r)
            for r in events.execute(
                "SELECT id, starttime, qid, logsourceid, payload FROM events WHERE id <= ?",
                (devconsole.seeded_last_event_id,),
            )
        }
    yield conn, keys, devconsole.scenario, result
    conn.close()


def manifest_events(scenario: dict):
    for item in scenario["items"]:
        for event in item["events"]:
            yield item, event


def detection_of(conn: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT d.* FROM detection_events e JOIN detections d ON d.id = e.detection_id WHERE e.event_key = ?",
        (key,),
    ).fetchone()


def test_every_expected_detection_is_found_with_the_right_fields(refreshed) -> None:
    conn, keys, scenario, _ = refreshed
    checked = 0
    for item, event in manifest_events(scenario):
        if not event["expected_detection"]:
            continue
        found = detection_of(conn, keys[event["event_id"]])
        label = f"{item['key']} / {event['event_name']}"
        assert found is not None, f"not detected: {label}"
        assert found["cloud_platform"] == item["platform"], label
        if "is_service_account" in event:
            assert bool(found["is_service_account"]) is event["is_service_account"], label
        if "account_kind" in event:
            assert found["account_kind"] == event["account_kind"], label
        if "target_account" in event and item["kind"] in ("attack", "hostile"):
            assert found["target_account"] == event["target_account"], label
        checked += 1
    assert checked >= 20


def test_twins_are_one_detection(refreshed) -> None:
    conn, keys, scenario, _ = refreshed
    twins = [(item, e) for item, e in manifest_events(scenario) if e.get("twin_of_event_id")]
    assert twins
    for item, event in twins:
        twin = detection_of(conn, keys[event["event_id"]])
        original = detection_of(conn, keys[event["twin_of_event_id"]])
        assert twin is not None and original is not None and twin["id"] == original["id"], item["key"]
        assert json.loads(original["also_seen_in"]) == item["also_seen_in"]


def test_nothing_else_is_detected(refreshed) -> None:
    conn, keys, scenario, _ = refreshed
    allowed = {
        keys[e["event_id"]]
        for _, e in manifest_events(scenario)
        if e["expected_detection"] or e.get("twin_of_event_id")
    }
    # Events other tests ingested into the shared console later (ids above the seed's) are not the scenario's.
    seeded = set(keys.values())
    stored = {r[0] for r in conn.execute("SELECT event_key FROM detection_events")} & seeded
    assert stored <= allowed, f"{len(stored - allowed)} unexpected detections"
    unexpected = {
        keys[e["event_id"]]
        for _, e in manifest_events(scenario)
        if not e["expected_detection"] and not e.get("twin_of_event_id")
    }
    assert not stored & unexpected


def test_chains_from_the_manifest_are_found(refreshed) -> None:
    conn, keys, scenario, _ = refreshed
    chain_of: dict[str, set[int]] = defaultdict(set)
    for row in conn.execute("SELECT chain_id, event_key FROM chain_events"):
        chain_of[row["event_key"]].add(row["chain_id"])
    for spec in scenario["chains"]:
        members = [keys[i] for i in spec["event_ids"]]
        shared = set.intersection(*(chain_of[k] for k in members))
        assert len(shared) == 1, f"{spec['kind']} {spec['items']}: events are not in one chain"
        kinds = json.loads(
            conn.execute("SELECT kinds FROM chains WHERE id = ?", (shared.pop(),)).fetchone()[0]
        )
        assert spec["kind"] in kinds, spec["items"]
    for item, event in manifest_events(scenario):
        if event["expected_detection"] and item["chain_kind"] and item["kind"] == "attack":
            found = detection_of(conn, keys[event["event_id"]])
            assert found["chain_kind"] == item["chain_kind"], item["key"]
            assert found["severity"] > 7 and found["confidence"] == "high"


def test_second_run_reads_only_what_changed_and_adds_nothing(refreshed, devconsole) -> None:
    conn, _, _, first = refreshed
    before = conn.execute("SELECT COUNT(*) FROM detection_events").fetchone()[0]
    second = refresher.refresh_once(conn, Gateway.from_env(gateway_env(devconsole), poll_wait_s=1))
    assert second.status == "ok" and second.inserted == 0
    # The overlap's per-minute counts are what the first cycle read: nothing is re-read before the watermark.
    assert second.start_ms == first.stop_ms
    assert second.rows_fetched < first.rows_fetched
    assert conn.execute("SELECT COUNT(*) FROM detection_events").fetchone()[0] == before
