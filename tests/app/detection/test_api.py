"""The detection JSON API through the Flask app (real SQLite store filled by a real refresh against the
dev console; users authenticated by the console with their own tokens)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from app.detection import refresher
from app.store import detections as detection_store
from app.store.db import connect


@pytest.fixture(scope="module")
def filled_app(detection_console, tmp_path_factory: pytest.TempPathFactory):
    from app import auth, create_app
    from app.qradar import Gateway

    auth.token_cache.clear()
    store_dir: Path = tmp_path_factory.mktemp("api_store")
    flask_app = create_app(
        {"TESTING": True, "STORE_DIR": str(store_dir), "QRADAR_ENV": detection_console.env()}
    )
    conn = connect(flask_app.config["DATABASE"])
    try:
        result = refresher.refresh_once(conn, Gateway.from_env(detection_console.env(), poll_wait_s=1))
        assert result.status == "ok", result.error
    finally:
        conn.close()
    return flask_app


@pytest.fixture
def client(filled_app, detection_console):
    test_client = filled_app.test_client()
    test_client.set_cookie("SEC", detection_console.tokens["analyst"])
    csrf = secrets.token_hex(8)
    test_client.set_cookie("QRadarCSRF", csrf)
    test_client.csrf = {"QRadarCSRF": csrf}
    return test_client


def items(client, **params) -> tuple[list[dict], int]:
    resp = client.get("/api/detections", query_string=params)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    return body["items"], body["total"]


def test_list_and_filters(client, detection_console) -> None:
    every, total = items(client, limit=500)
    assert total == len(every) == len(detection_console.expected["detections"])
    assert every == sorted(every, key=lambda d: d["event_time"], reverse=True)
    assert "payload" not in every[0]
    assert {d["cloud_platform"] for d in items(client, platform="AWS")[0]} == {"AWS"}
    assert len(items(client, platform="AWS,GCP")[0]) == 7
    assert all(d["is_service_account"] for d in items(client, service_accounts="true")[0])
    chained = items(client, chains_only="true")[0]
    assert {d["chain_kind"] for d in chained} == {"aws_user_credential", "entra_app_sp_credential"}
    assert len(chained) == 5
    hostile = items(client, q="<script>")[0]
    assert [d["target_account"] for d in hostile] == ["<script>alert(1)</script>' OR 1=1 --"]
    assert items(client, q="%")[1] == 0  # LIKE wildcards in user text are literal
    assert {d["target_account"] for d in items(client, target="evil")[0]} == {"svc-evil", "evil-app"}
    assert items(client, actor="OpsAdmin")[1] == 4
    assert items(client, suppressed="true")[1] == 0 and items(client, suppressed="false")[1] == total
    page1, _ = items(client, sort="severity", limit=2)
    page2, _ = items(client, sort="severity", limit=2, offset=2)
    assert len(page1) == 2 and not {d["id"] for d in page1} & {d["id"] for d in page2}
    newest = every[0]["event_time"]
    assert items(client, start=newest)[1] == 1 and items(client, end=newest)[1] == total - 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bogus": "1"}, "bogus"),
        ({"platform": "Azure"}, "platform"),
        ({"service_accounts": "maybe"}, "service_accounts"),
        ({"sort": "payload"}, "sort"),
        ({"limit": "0"}, "limit"),
        ({"start": "yesterday"}, "start"),
        ({"triage_status": "done"}, "triage_status"),
        ({"start": "10", "end": "5"}, "end"),
    ],
)
def test_bad_parameters_are_json_400(client, params: dict, field: str) -> None:
    resp = client.get("/api/detections", query_string=params)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == field


def test_detail_has_payload_chain_and_feeds(client) -> None:
    twin = items(client, q="df00tech")[0][0]
    detail = client.get(f"/api/detections/{twin['id']}").get_json()
    assert detail["also_seen_in"] == ["Office 365"]
    assert {e["cloud_platform"] for e in detail["events"]} == {"Azure AD", "Office 365"}
    assert '"operationName"' in detail["payload"]
    chained = items(client, target="svc-evil")[0][0]
    chain = client.get(f"/api/detections/{chained['id']}").get_json()["chain"]
    assert [e["event_name"] for e in chain["events"]] == ["CreateUser", "CreateAccessKey", "AttachUserPolicy"]
    missing = client.get("/api/detections/999999")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_chains_endpoint(client) -> None:
    body = client.get("/api/chains").get_json()
    assert body["total"] == 2
    assert {c["kind"] for c in body["items"]} == {"aws_user_credential", "entra_app_sp_credential"}
    one = body["items"][0]
    assert client.get(f"/api/chains/{one['id']}").get_json() == one
    assert client.get("/api/chains", query_string={"kind": "nope"}).status_code == 400


def test_triage_single_and_bulk_are_recorded_and_audited(client, filled_app) -> None:
    first, second = items(client, limit=2)[0]
    resp = client.post(
        f"/api/detections/{first['id']}/triage",
        json={"status": "investigating", "note": "<b>looking</b>"},
        headers=client.csrf,
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["triage_status"], body["triage_note"], body["triage_by"]) == (
        "investigating",
        "<b>looking</b>",
        "analyst",
    )
    assert body["triage_history"][-1]["status"] == "investigating"
    bulk = client.post(
        "/api/detections/triage",
        json={"ids": [first["id"], second["id"]], "status": "benign"},
        headers=client.csrf,
    )
    assert bulk.status_code == 200 and bulk.get_json()["updated"] == [first["id"], second["id"]]
    assert {d["triage_status"] for d in items(client, triage_status="benign")[0]} == {"benign"}
    conn = connect(filled_app.config["DATABASE"])
    try:
        audited = conn.execute(
            "SELECT actor, object_id FROM audit_log WHERE action = 'triage.update'"
        ).fetchall()
        bulk_rows = conn.execute(
            "SELECT actor, object_id, after_json FROM audit_log WHERE action = 'triage.bulk_update'"
        ).fetchall()
    finally:
        conn.close()
    assert ("analyst", first["id"]) in {(a, int(o)) for a, o in audited}
    # The bulk call is one audit record naming both detections, not one record each.
    assert len(bulk_rows) == 1 and bulk_rows[0][0] == "analyst" and bulk_rows[0][1] is None
    assert json.loads(bulk_rows[0][2])["ids"] == [first["id"], second["id"]]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/api/detections/{id}/triage", {"status": "done"}, 400, "status"),
        ("/api/detections/{id}/triage", {"status": "benign", "extra": 1}, 400, "extra"),
        ("/api/detections/{id}/triage", {"note": "x"}, 400, "status"),
        ("/api/detections/triage", {"ids": [], "status": "benign"}, 400, "ids"),
        ("/api/detections/triage", {"ids": ["1"], "status": "benign"}, 400, "ids"),
        ("/api/detections/triage", {"ids": [999999], "status": "benign"}, 404, "ids"),
    ],
)
def test_triage_rejects_bad_bodies(client, path: str, body: dict, status: int, field: str) -> None:
    some = items(client, limit=1)[0][0]
    resp = client.post(path.format(id=some["id"]), json=body, headers=client.csrf)
    assert resp.status_code == status
    assert resp.get_json()["error"]["field"] == field


def test_unsafe_calls_need_the_csrf_header(client) -> None:
    some = items(client, limit=1)[0][0]
    assert client.post(f"/api/detections/{some['id']}/triage", json={"status": "benign"}).status_code == 403
    assert client.post("/api/refresh", json={}).status_code == 403


def test_refresh_now_and_cancel_are_queued_for_the_refresher(client, filled_app, detection_console) -> None:
    status = client.get("/api/status").get_json()
    assert status["last_status"] == "ok" and status["watermark_ms"] and not status["running"]
    assert status["counts"]["detections"] == 11
    first = client.post("/api/refresh", json={}, headers=client.csrf)
    second = client.post("/api/refresh", headers=client.csrf)
    assert first.status_code == second.status_code == 202
    assert first.get_json()["request_id"] == second.get_json()["request_id"]  # coalesced
    assert client.get("/api/status").get_json()["refresh_requested"] is True
    # An analyst may ask for a refresh but not cancel one: a loop of cancels would keep detection blind.
    for refused in (
        client.delete("/api/refresh", headers=client.csrf),
        client.post("/api/refresh/cancel", headers=client.csrf),
    ):
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    conn = connect(filled_app.config["DATABASE"])
    try:
        assert detection_store.open_requests(conn, "cancel") == []
    finally:
        conn.close()
    client.set_cookie("SEC", detection_console.tokens["tuner1"])
    cancel = client.delete("/api/refresh", headers=client.csrf)
    assert cancel.status_code == 202 and cancel.get_json()["requested"] == "cancel"
    assert client.post("/api/refresh/cancel", headers=client.csrf).status_code == 202
    assert client.post("/api/refresh", json={"now": True}, headers=client.csrf).status_code == 400


def test_needs_a_qradar_session(filled_app) -> None:
    anonymous = filled_app.test_client()
    resp = anonymous.get("/api/detections")
    assert resp.status_code == 401 and resp.get_json()["error"]


def test_openapi_describes_the_routes(client) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in (
        "/api/detections",
        "/api/detections/{detection_id}",
        "/api/detections/{detection_id}/triage",
        "/api/detections/triage",
        "/api/chains",
        "/api/status",
        "/api/refresh",
        "/api/refresh/cancel",
    ):
        assert path in paths
