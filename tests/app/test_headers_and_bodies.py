"""Housekeeping and headers (issue 14, item 7): Content-Security-Policy with no inline script, no-store on
data, a Secure session cookie when the console is HTTPS, one X-Console-Host validator, and deep JSON
refused as a 400 before it is parsed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import app as app_package
from app.api import ApiError
from app.api.parsing import MAX_JSON_DEPTH, json_nesting_depth, read_json_object

TEMPLATES = sorted(Path(app_package.__file__).parent.rglob("templates/**/*.html"))


def csp_directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_every_response_has_a_csp_without_inline_script(offline_client, offline_app):
    for path in ("/debug", "/static/css/app.css", "/api/openapi.json", "/no-such-page"):
        csp = csp_directives(offline_client.get(path).headers["Content-Security-Policy"])
        assert csp["script-src"] == ["'self'"], path
        assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"]
        assert not any("unsafe" in v for values in csp.values() for v in values)


def test_templates_hold_no_inline_script_or_event_handler() -> None:
    assert TEMPLATES, "the app's templates are found"
    for template in TEMPLATES:
        text = template.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text, flags=re.IGNORECASE):
            # Data blocks (JSON the page's script reads) do not run; anything else must load a file.
            assert "src=" in tag or 'type="application/json"' in tag, f"{template.name}: {tag}"
        handlers = re.findall(r"<[^>]*\son[a-z]+\s*=", text, flags=re.IGNORECASE)
        assert handlers == [], f"{template.name}: {handlers}"
        assert "javascript:" not in text.lower(), template.name


def test_data_is_never_cached(offline_client):
    assert offline_client.get("/api/openapi.json").headers["Cache-Control"] == "no-store"
    assert offline_client.get("/api/detections").headers["Cache-Control"] == "no-store"  # a 401 JSON error
    assert offline_client.get("/debug").headers["Cache-Control"] == "no-store"
    assert "no-store" not in offline_client.get("/static/css/app.css").headers.get("Cache-Control", "")


@pytest.mark.parametrize(
    ("headers", "secure"),
    [
        ({}, False),  # plain HTTP on the workstation
        ({"X-Console-Host": "console.example.com"}, True),  # through the console's HTTPS proxy
        ({"X-Console-Host": "evil@console.example.com"}, False),  # not a host: not believed
    ],
)
def test_session_cookie_is_secure_when_the_console_is_https(offline_app, qradar_mode, headers, secure):
    response = offline_app.test_client().get("/debug?theme=dark", headers=headers)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session_1101=")
    # With qpylib the app runs inside QRadar, whose console is always HTTPS.
    assert ("; Secure" in cookie) is (secure or qradar_mode == "qpylib")
    assert "HttpOnly" in cookie


def test_session_cookie_is_secure_over_https(offline_app):
    response = offline_app.test_client().get("/debug?theme=dark", base_url="https://localhost")
    assert "; Secure" in response.headers["Set-Cookie"]


@pytest.mark.parametrize(
    ("host", "accepted"),
    [
        ("console.example.com", True),
        ("127.0.0.1:8443", True),
        ("[::1]:443", True),
        ("user@console.example.com", False),
        ("console.example.com:443@evil.example", False),
        ("evil.example/console", False),
        ("evil.example\\x", False),
        ("evil.example?x=1", False),
        ("evil.example#x", False),
        ("host:0", False),
        ("host:65536", False),
        ("-host.example", False),
        ("a b", False),
        ("a" * 254, False),
    ],
)
def test_one_console_host_validator_for_every_url(offline_app, host, accepted):
    q_url_for = offline_app.jinja_env.globals["q_url_for"]
    from app.api.urls import console_origin

    with offline_app.test_request_context("/", headers={"X-Console-Host": host}):
        built, origin = q_url_for("debug"), console_origin()
    if accepted:
        assert built == f"https://{host}/console/plugins/1101/app_proxy/debug" and origin == f"https://{host}"
    else:
        assert built == "/debug" and origin == ""


def test_nesting_depth_is_counted_without_recursion():
    assert json_nesting_depth(b'{"a": [1, {"b": "[[[[{{{"}]}') == 3
    assert json_nesting_depth(b'["\\"[[", []]') == 2
    assert json_nesting_depth(b"[" * 100_000 + b"]" * 100_000) == 100_000


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
def test_deep_json_is_refused_before_parsing(offline_app, depth):
    body = '{"note": ' + "[" * depth + "]" * depth + "}"
    context = offline_app.test_request_context("/", method="POST", data=body, content_type="application/json")
    with context, pytest.raises(ApiError) as info:
        read_json_object()
    assert (info.value.status, info.value.code) == (400, "bad_json")
    assert f"deeper than {MAX_JSON_DEPTH}" in info.value.message


def test_json_at_the_depth_limit_is_read(offline_app):
    body = '{"note": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    with offline_app.test_request_context("/", method="POST", data=body, content_type="application/json"):
        assert "note" in read_json_object()


def test_deep_json_to_real_routes_is_a_400(client, login):
    deep = "[" * 50_000 + "]" * 50_000
    for user, path, body in (
        ("analyst", "/api/detections/triage", '{"ids": ' + deep + ', "status": "benign"}'),
        ("tuner1", "/api/tuning/import", '{"format": "cloud-account-watch-tuning", "entries": ' + deep + "}"),
        ("admin", "/api/settings", '{"retention_days": ' + deep + "}"),
    ):
        headers = login(client, user)
        response = client.post(path, data=body, content_type="application/json", headers=headers)
        if path == "/api/settings":
            response = client.put(path, data=body, content_type="application/json", headers=headers)
        assert response.status_code == 400, (path, response.status_code, response.data[:300])
        assert response.get_json()["error"]["code"] == "bad_json"
