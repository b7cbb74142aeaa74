"""Who the user is (their own QRadar token), what they may do, CSRF, and the admin settings API."""

from __future__ import annotations

import threading
import time

import pytest

from app.auth import require
from app.store import audit
from app.store.db import connect


@pytest.mark.parametrize(
    ("user", "permissions"),
    [
        ("analyst", {"view": True, "tune": False, "admin": False}),
        ("tuner1", {"view": True, "tune": True, "admin": False}),
        ("admin", {"view": True, "tune": True, "admin": True}),
    ],
)
def test_me_reports_the_logged_in_user_not_the_service(client, login, user, permissions):
    login(client, user)
    response = client.get("/api/me")
    assert response.status_code == 200
    assert response.json["name"] == user
    assert response.json["permissions"] == permissions


def test_users_are_not_mixed_up_by_the_token_cache(client, login):
    login(client, "analyst")
    assert client.get("/api/me").json["name"] == "analyst"
    login(client, "admin")
    assert client.get("/api/me").json["name"] == "admin"
    login(client, "analyst")
    assert client.get("/api/me").json["permissions"]["admin"] is False


def test_unknown_token_is_401(client, login):
    login(client, "analyst", token="forged-token")
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "not_logged_in"


def test_tuning_capabilities_setting_decides_tune(app, client, login):
    login(client, "analyst")
    assert client.get("/api/me").json["permissions"]["tune"] is False
    from app import auth, settings

    with app.app_context():
        settings.update(connect(app.config["DATABASE"]), {"tuning_capabilities": ["EVENTVIEWER"]}, actor="t")
    auth.token_cache.clear()
    assert client.get("/api/me").json["permissions"]["tune"] is True


@pytest.mark.parametrize("user", ["analyst", "tuner1"])
def test_settings_are_admin_only(client, login, user):
    headers = login(client, user)
    assert client.get("/api/settings").status_code == 403
    response = client.put("/api/settings", json={"lookback_hours": 12}, headers=headers)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"


def test_admin_reads_and_changes_settings_with_audit(app, client, login):
    headers = login(client, "admin")
    current = client.get("/api/settings").json
    assert current["values"]["refresh_interval_s"] == 300
    assert any(s["key"] == "log_source_types" for s in current["settings"])
    response = client.put("/api/settings", json={"refresh_interval_s": 600}, headers=headers)
    assert response.status_code == 200
    assert response.json["values"]["refresh_interval_s"] == 600
    items, _ = audit.list_audit(connect(app.config["DATABASE"]), object_type="settings")
    assert items[0]["actor"] == "admin"
    assert items[0]["after"] == {"refresh_interval_s": 600}


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"refresh_interval_s": 1}, 400, "bad_setting", "refresh_interval_s"),
        ({"refresh_interval_s": "600"}, 400, "bad_setting", "refresh_interval_s"),
        ({"shell": "rm -rf /"}, 400, "bad_setting", "shell"),
        ({}, 400, "bad_setting", "settings"),
        ([1, 2], 400, "bad_json", None),
    ],
)
def test_bad_settings_are_400_naming_the_field(client, login, body, status, code, field):
    headers = login(client, "admin")
    response = client.put("/api/settings", json=body, headers=headers)
    assert response.status_code == status
    assert response.json["error"]["code"] == code
    assert response.json["error"].get("field") == field


def test_settings_body_must_be_json(client, login):
    headers = login(client, "admin")
    response = client.put(
        "/api/settings",
        data="lookback_hours=2",
        headers=headers,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    response = client.put("/api/settings", data="{not json", headers=headers, content_type="application/json")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_json"


def test_csrf_header_must_match_cookie_even_for_admins(client, login):
    login(client, "admin")
    response = client.put("/api/settings", json={"lookback_hours": 12}, headers={"QRadarCSRF": "guess"})
    assert response.status_code == 403
    assert response.json["error"]["code"] == "csrf_failed"


def test_require_rejects_unknown_levels():
    with pytest.raises(ValueError, match="unknown permission level"):
        require("superuser")


@pytest.mark.slow
def test_through_the_console_proxy(live_app):
    tuner = live_app.session_as("tuner1")
    me = tuner.get(live_app.proxy_url("api/me"), timeout=10)
    assert me.status_code == 200 and me.json()["name"] == "tuner1"
    admin = live_app.session_as("admin")
    changed = admin.put(live_app.proxy_url("api/settings"), json={"retention_days": 30}, timeout=10)
    assert changed.status_code == 200 and changed.json()["values"]["retention_days"] == 30
    del admin.headers["QRadarCSRF"]
    refused = admin.put(live_app.proxy_url("api/settings"), json={"retention_days": 31}, timeout=10)
    assert refused.status_code == 403


def test_concurrent_requests_of_an_uncached_token_share_one_qradar_lookup(app, login, monkeypatch):
    from app.auth import token_cache
    from app.qradar import get_gateway

    with app.app_context():
        gateway = get_gateway()
    lookups: list[str] = []
    ask_qradar = gateway.current_user

    def counted(token: str):
        lookups.append(token)
        time.sleep(0.3)  # a QRadar answer that takes a while: the other requests arrive meanwhile
        return ask_qradar(token)

    monkeypatch.setattr(gateway, "current_user", counted)
    token_cache.clear()
    names: list[str] = []

    def page_request() -> None:
        client = app.test_client()
        login(client, "analyst")
        names.append(client.get("/api/me").json["name"])

    threads = [threading.Thread(target=page_request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert names == ["analyst"] * 6
    assert len(lookups) == 1
