"""The app factory: health check, headers, cookie name, theme, q_url_for, JSON errors, request limit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from flask import render_template_string

import app as app_package
from tests.app_fixtures import QRADAR_MODES, SUITE_MODE, _fresh_app


def test_debug_answers_200_json(offline_client):
    response = offline_client.get("/debug")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    manifest = json.loads((app_package.ROOT_DIR / "manifest.json").read_text())
    assert response.json["version"] == manifest["version"]


def test_server_header_names_the_app(offline_client):
    assert offline_client.get("/debug").headers["Server"] == "QRadar App 1101"


def test_session_cookie_is_unique_to_the_app_id(offline_app):
    assert offline_app.config["SESSION_COOKIE_NAME"] == "session_1101"
    response = offline_app.test_client().get("/debug?ui=new&theme=dark")
    assert response.headers["Set-Cookie"].startswith("session_1101=")


def test_theme_from_first_url_is_remembered(offline_app):
    offline_app.add_url_rule(
        "/_theme_probe", "theme_probe", lambda: render_template_string("{{ theme }} {{ theme_class }}")
    )
    client = offline_app.test_client()
    assert client.get("/_theme_probe").text == "light cds--g10"  # QRadar's light UI is the default
    assert client.get("/_theme_probe?ui=new&theme=dark").text == "dark cds--g100"
    assert client.get("/_theme_probe").text == "dark cds--g100"  # later pages carry no parameter
    assert client.get("/_theme_probe?ui=new&theme=light").text == "light cds--g10"
    assert client.get("/_theme_probe?theme=<script>").text == "light cds--g10"  # unknown values ignored


@pytest.mark.parametrize("qradar_mode", QRADAR_MODES)
def test_q_url_for_builds_console_proxy_urls(offline_app, qradar_mode):
    q_url_for = offline_app.jinja_env.globals["q_url_for"]
    with offline_app.test_request_context("/", headers={"X-Console-Host": "console.example.com"}):
        assert q_url_for("debug") == "https://console.example.com/console/plugins/1101/app_proxy/debug"
        assert (
            q_url_for("static", filename="x.css")
            == "https://console.example.com/console/plugins/1101/app_proxy/static/x.css"
        )
    with offline_app.test_request_context("/"):
        assert q_url_for("debug") == "/debug"  # no console host: relative, like qpylib with app id 0


@pytest.mark.parametrize("qradar_mode", QRADAR_MODES)
def test_q_url_for_is_relative_without_an_app_id(monkeypatch, tmp_path, qradar_mode):
    env = {"QRADAR_CONSOLE_FQDN": "127.0.0.1:9", "SEC_ADMIN_TOKEN": "unused", "QRADAR_APP_ID": "0"}
    flask_app = _fresh_app(monkeypatch, tmp_path, env, qradar_mode)
    with flask_app.test_request_context("/", headers={"X-Console-Host": "console.example.com"}):
        assert flask_app.jinja_env.globals["q_url_for"]("debug") == "/debug"


@pytest.mark.parametrize("qradar_mode", QRADAR_MODES)
def test_the_transport_follows_the_mode(offline_app, qradar_mode):
    """qpylib's own functions in qpylib mode; the app's look-alikes with APP_QRADAR_TRANSPORT=http."""
    from app.qradar import HttpTransport, QpylibTransport, get_gateway

    with offline_app.app_context():
        transport = get_gateway().transport
    if qradar_mode == "qpylib":
        from qpylib import qpylib

        assert isinstance(transport, QpylibTransport)
        assert offline_app.jinja_env.globals["q_url_for"].__wrapped__ is qpylib.q_url_for
        assert Path(offline_app.config["DATABASE"]).parent == Path(qpylib.get_store_path())
    else:
        assert isinstance(transport, HttpTransport)
        assert offline_app.jinja_env.globals["q_url_for"].__module__ == "app.api.urls"


def test_errors_are_json_never_html(offline_app):
    offline_app.add_url_rule("/api/_boom", "boom", lambda: 1 / 0)
    client = offline_app.test_client()
    not_found = client.get("/api/nothing-here")
    assert not_found.status_code == 404
    assert not_found.json["error"]["code"] == "not_found"
    # CSRF is checked before routing: without the matching cookie the wrong method is a CSRF refusal
    no_cookie = client.delete("/debug", headers={"QRadarCSRF": "x"})
    assert no_cookie.status_code == 403
    assert no_cookie.json["error"]["code"] == "csrf_failed"
    client.set_cookie("QRadarCSRF", "x")
    wrong_method = client.delete("/debug", headers={"QRadarCSRF": "x"})
    assert wrong_method.status_code == 405
    assert wrong_method.json["error"]["code"] == "method_not_allowed"
    crash = client.get("/api/_boom")
    assert crash.status_code == 500
    assert crash.json == {
        "error": {
            "status": 500,
            "code": "internal_error",
            "message": "internal error; details are in the app log",
        }
    }
    assert "Traceback" not in crash.text and "ZeroDivisionError" not in crash.text


def test_method_not_allowed_is_json(offline_client):
    offline_client.set_cookie("QRadarCSRF", "abc")
    response = offline_client.post("/debug", headers={"QRadarCSRF": "abc"})
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"


def test_request_over_one_mib_is_413_json(offline_client):
    offline_client.set_cookie("QRadarCSRF", "abc")
    body = b"{" + b" " * (1024 * 1024) + b"}"
    response = offline_client.put(
        "/api/settings", data=body, headers={"QRadarCSRF": "abc"}, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_too_large"


def test_unsafe_methods_need_matching_csrf_header(offline_client):
    offline_client.set_cookie("QRadarCSRF", "right")
    for headers in ({}, {"QRadarCSRF": "wrong"}, {"QRadarCSRF": ""}):
        response = offline_client.put("/api/settings", json={"lookback_hours": 2}, headers=headers)
        assert response.status_code == 403
        assert response.json["error"]["code"] == "csrf_failed"


def test_qradar_unreachable_is_503_json(offline_client):
    offline_client.set_cookie("SEC", "some-user-token")
    response = offline_client.get("/api/me")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "qradar_unavailable"


def test_no_session_is_401_json(offline_client):
    response = offline_client.get("/api/me")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "not_logged_in"


def test_every_feature_registers_blueprints_and_manifest_routes_exist(offline_app):
    import importlib

    for feature in app_package.FEATURES:
        module = importlib.import_module(f"app.{feature}")
        assert module.blueprints(), f"app.{feature}.blueprints() is empty"
        for blueprint in module.blueprints():
            assert blueprint.name in offline_app.blueprints
    endpoints = {rule.endpoint for rule in offline_app.url_map.iter_rules()}
    for feature, _rule, endpoint in app_package.PLACEHOLDER_ROUTES:
        assert (f"placeholders.{endpoint}" in endpoints) == (feature not in app_package.FEATURES)


def test_openapi_document_lists_core_and_feature_paths(offline_client):
    document = offline_client.get("/api/openapi.json").json
    assert document["openapi"].startswith("3.0")
    assert {"/api/me", "/api/settings", "/api/openapi.json"} <= set(document["paths"])
    assert "Error" in document["components"]["schemas"]
    for feature in app_package.FEATURES:
        try:
            api = __import__(f"app.{feature}.api", fromlist=["OPENAPI_PATHS"])
        except ModuleNotFoundError:
            continue
        assert set(getattr(api, "OPENAPI_PATHS", {})) <= set(document["paths"])


def test_openapi_paths_are_registered_routes(offline_app):
    document = offline_app.test_client().get("/api/openapi.json").json
    # Compare shapes: OpenAPI "{id}" and Flask "<int:id>" both become "{}".
    rules = {re.sub(r"<[^>]+>", "{}", rule.rule) for rule in offline_app.url_map.iter_rules()}
    for path in document["paths"]:
        assert re.sub(r"\{[^}]+\}", "{}", path) in rules, f"{path} is described but is not a Flask route"


@pytest.mark.slow
def test_gunicorn_serves_debug_directly_and_through_the_console(live_app):
    direct = requests.get(f"{live_app.base_url}/debug", timeout=10)
    assert direct.status_code == 200
    assert direct.json()["status"] == "ok"
    assert direct.headers["Server"] == f"QRadar App {live_app.console.app_id}"
    proxied = live_app.session_as("analyst").get(live_app.proxy_url("debug"), timeout=10)
    assert proxied.status_code == 200
    assert proxied.json()["app_id"] == live_app.console.app_id


@pytest.mark.slow
def test_live_app_links_through_the_console_proxy(live_app):
    """The tab's asset URLs (q_url_for: qpylib's in qpylib mode) point at the console proxy, which serves them;
    the app logged its start in its app root's store/log/app.log."""
    console = live_app.console
    session = live_app.session_as("analyst")
    tab = session.get(live_app.proxy_url("tab/"), timeout=30)
    assert tab.status_code == 200, tab.text[:500]
    script = (
        f"https://127.0.0.1:{console.port}/console/plugins/{console.app_id}/app_proxy/static/js/common.js"
    )
    assert f'src="{script}' in tab.text
    asset = session.get(script, timeout=30)
    assert asset.status_code == 200 and "javascript" in asset.headers["Content-Type"]
    app_log = (live_app.store_dir / "log" / "app.log").read_text()
    transport = "qpylib" if SUITE_MODE == "qpylib" else "HTTP"
    assert f"started: app id {console.app_id}, " in app_log and f"QRadar through {transport}" in app_log
