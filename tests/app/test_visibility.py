"""Each user sees what QRadar lets them see (issue 14, item 6), in-process against the seeded dev console.

The dev console's ``restricted`` analyst has a security profile limited to AWS CloudTrail log sources (its
Ariel engine filters that user's searches, and its offense API that user's offenses); ``nologs`` has no
Log Activity. Expected log sources come from the console's own database, never from the app.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time

import pytest

from tests.app.offense.test_fragment import FragmentParser

AWS_TYPE = 347


@pytest.fixture
def client(client, devconsole):
    client.environ_base["HTTP_X_CONSOLE_HOST"] = f"127.0.0.1:{devconsole.port}"
    return client


def aws_log_sources(devconsole) -> set[str]:
    conn = sqlite3.connect(devconsole.data_dir / "events.db")
    try:
        return {r[0] for r in conn.execute("SELECT name FROM log_sources WHERE type_id = ?", (AWS_TYPE,))}
    finally:
        conn.close()


def listed(client) -> list[dict]:
    resp = client.get("/api/detections", query_string={"limit": 500})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["total"] == len(body["items"])
    return body["items"]


def test_restricted_user_sees_only_their_log_sources_detections(refreshed_app, client, login, devconsole):
    login(client, "analyst")
    everything = listed(client)
    aws = aws_log_sources(devconsole)
    mine = [d for d in everything if d["log_source"] in aws]
    theirs = [d for d in everything if d["log_source"] not in aws]
    assert mine and theirs, "the scenario has AWS and other detections"

    headers = login(client, "restricted")
    assert sorted(d["id"] for d in listed(client)) == sorted(d["id"] for d in mine)
    # CSV: the same rows.
    exported = client.get("/api/detections.csv", query_string={"columns": "log_source,target_account"})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == len(mine) and {r["Log source"] for r in rows} <= aws
    # Detail, links and triage: a hidden detection does not exist for this user.
    hidden = theirs[0]["id"]
    for path in (f"/api/detections/{hidden}", f"/api/detections/{hidden}/links"):
        resp = client.get(path)
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found", path
    shown = client.get(f"/api/detections/{mine[0]['id']}")
    assert shown.status_code == 200 and shown.get_json()["payload"]
    triage = client.post(f"/api/detections/{hidden}/triage", headers=headers, json={"status": "benign"})
    assert triage.status_code == 404
    bulk = client.post(
        "/api/detections/triage", headers=headers, json={"ids": [mine[0]["id"], hidden], "status": "benign"}
    )
    assert bulk.status_code == 404 and bulk.get_json()["error"]["field"] == "ids"
    # Chains: only those whose every event comes from the user's log sources (the scenario's chains each
    # stay on one platform, so the AWS ones remain).
    login(client, "analyst")
    all_chains = client.get("/api/chains").get_json()["items"]
    login(client, "restricted")
    chains = client.get("/api/chains").get_json()
    shown_ids = {d["id"] for d in mine}
    expected = [
        c["id"]
        for c in all_chains
        if all(
            e["detection_id"] in shown_ids or (e["detection_id"] is None and e["cloud_platform"] == "AWS")
            for e in c["events"]
        )
    ]
    assert expected and [c["id"] for c in chains["items"]] == expected and chains["total"] == len(expected)
    hidden_chain = next(c["id"] for c in all_chains if c["id"] not in expected)
    assert client.get(f"/api/chains/{hidden_chain}").status_code == 404
    assert client.get(f"/api/chains/{expected[0]}").status_code == 200
    # The playbook about a hidden detection shows nothing of it.
    page = client.get(f"/playbook/?detection={hidden}")
    assert page.status_code == 200
    assert theirs[0]["target_account"] not in page.get_data(as_text=True)


def test_restricted_users_widget_shows_only_their_rows(refreshed_app, client, login, devconsole):
    aws = aws_log_sources(devconsole)
    login(client, "admin")
    admin_offenses = devconsole.api("admin").get(devconsole.url("/api/siem/offenses"), timeout=30).json()
    # Offenses with AWS events (the scenario's offenses each hold one platform's events).
    mixed = [o["id"] for o in admin_offenses if any(ls["type_id"] == AWS_TYPE for ls in o["log_sources"])]
    other = [o["id"] for o in admin_offenses if all(ls["type_id"] != AWS_TYPE for ls in o["log_sources"])]
    assert other, "the scenario has offenses without AWS events"
    shown = 0
    for oid in mixed + other[:1]:
        login(client, "analyst")
        full = rows_of(client.get(f"/offense/fragment/{oid}").get_json()["html"])
        login(client, "restricted")
        answer = client.get(f"/offense/fragment/{oid}")
        assert answer.status_code == 200
        html = answer.get_json()["html"]
        if oid in other:
            assert "caw-frag-row" not in html and "no offense" in html
            action = client.get(f"/offense/playbook_action?context={oid}")
            assert action.status_code == 404
            links = client.get("/api/detections", query_string={"offense": oid})
            assert links.status_code == 404
        else:
            mine = rows_of(html)
            assert mine == [r for r in full if r["platform"] == "AWS"]
            shown += len(mine)
    assert shown > 0 and aws


def rows_of(html: str) -> list[dict]:
    parser = FragmentParser()
    parser.feed(html)
    return parser.rows


def test_hunting_runs_as_the_user(refreshed_app, client, login):
    def hunt(user: str, topic: str):
        """Start the hunt as ``user`` and poll its handle until QRadar is done: the finished answer."""
        headers = login(client, user)
        started = client.post("/api/hunting/run", headers=headers, json={"query": topic})
        if started.status_code != 202:
            return started
        deadline = time.monotonic() + 60
        while True:
            state = client.get(started.get_json()["poll_url"])
            if state.status_code != 200 or state.get_json()["done"]:
                return state
            assert time.monotonic() < deadline, state.get_json()
            time.sleep(0.2)

    entra = hunt("analyst", "entra-credential-additions")
    assert entra.status_code == 200 and entra.get_json()["total"] > 0
    restricted = hunt("restricted", "entra-credential-additions")
    assert restricted.status_code == 200 and restricted.get_json()["total"] == 0
    aws_analyst, aws_restricted = hunt("analyst", "aws-access-keys"), hunt("restricted", "aws-access-keys")
    assert aws_analyst.get_json()["total"] > 0
    assert aws_restricted.get_json()["items"] == aws_analyst.get_json()["items"]
    refused = hunt("nologs", "aws-access-keys")
    assert refused.status_code == 403 and "Log Activity" in refused.get_json()["error"]["message"]


def test_user_without_log_activity_gets_no_payloads(refreshed_app, client, login):
    login(client, "analyst")
    some = listed(client)[0]
    login(client, "nologs")
    # QRadar refuses this user's Ariel searches, so nothing shows which log sources they may see.
    assert listed(client) == []
    assert client.get(f"/api/detections/{some['id']}").status_code == 404
    # A user whose role lacks the configured Log Activity capability gets detections without payloads.
    admin = login(client, "admin")
    changed = client.put("/api/settings", headers=admin, json={"log_activity_capabilities": ["FORENSICS"]})
    assert changed.status_code == 200, changed.get_json()
    headers = login(client, "analyst")
    detail = client.get(f"/api/detections/{some['id']}").get_json()
    assert detail["payload"] is None and detail["id"] == some["id"]
    hunt = client.post("/api/hunting/run", headers=headers, json={"query": "aws-access-keys"})
    assert hunt.status_code == 403
    assert client.get(f"/api/detections/{some['id']}", headers=headers).get_json()["payload"] is None
    login(client, "admin")
    assert client.get(f"/api/detections/{some['id']}").get_json()["payload"]


def test_manifest_asks_for_offense_access_where_it_shows_offense_data() -> None:
    import json
    from pathlib import Path

    manifest = json.loads((Path(__file__).resolve().parents[2] / "manifest.json").read_text())
    playbook = next(m for m in manifest["rest_methods"] if m["url"] == "offense/playbook_action")
    action = next(a for a in manifest["gui_actions"] if a["rest_method"] == playbook["name"])
    assert playbook["required_capabilities"] == action["required_capabilities"] == ["SEM"]
    # The tab, dashboard item and its REST method stay open to every app user: each view checks the
    # user's own capabilities and profile server-side (Log Activity, offense access, log sources).
    assert all(area["required_capabilities"] == [] for area in manifest["areas"])
    assert set(manifest["authentication"]["oauth2"]["requested_capabilities"]) >= {"EVENTVIEWER", "SEM"}


def test_last_known_visibility_is_used_while_qradar_cannot_answer(refreshed_app, client, login, devconsole):
    admin = login(client, "admin")
    assert client.put("/api/settings", headers=admin, json={"visibility_cache_s": 1}).status_code == 200
    login(client, "restricted")
    before = sorted(d["id"] for d in listed(client))
    assert before
    time.sleep(1.2)  # the answer is no longer fresh: the next request asks QRadar again
    devconsole.faults.fail("/api/ariel/searches", count=5, method="POST")
    try:
        assert sorted(d["id"] for d in listed(client)) == before
    finally:
        devconsole.faults.clear()
    # A user QRadar never answered for gets QRadar's error, never every detection.
    login(client, "tuner2")
    devconsole.faults.fail("/api/ariel/searches", count=5, method="POST")
    try:
        refused = client.get("/api/detections")
        assert refused.status_code in (502, 503) and refused.get_json()["error"]["code"].startswith("qradar")
    finally:
        devconsole.faults.clear()
