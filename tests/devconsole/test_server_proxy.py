"""The console's app proxy over real HTTPS: what it forwards, QRadarCSRF enforcement under
use_qradar_csrf, required_capabilities on areas and REST methods, streaming, cookies and redirects."""

from __future__ import annotations

import pytest
import requests


def proxy_url(standin, path: str) -> str:
    return standin.console.url(f"/console/plugins/{standin.console.app_id}/app_proxy/{path}")


def browser_cookies(standin, user: str, csrf: str = "csrf-token-1") -> dict:
    return {"SEC": standin.console.tokens[user], "QRadarCSRF": csrf}


def call(
    standin, method: str, path: str, user: str | None = "analyst", headers: dict | None = None, **kwargs
) -> requests.Response:
    cookies = browser_cookies(standin, user) if user else {}
    return requests.request(
        method,
        proxy_url(standin, path),
        cookies=cookies,
        headers=headers or {},
        verify=standin.console.ca_path,
        timeout=30,
        allow_redirects=False,
        **kwargs,
    )


def test_get_forwards_path_query_cookies_and_console_host(standin_console):
    response = call(standin_console, "GET", "echo/a%2Fb/c?x=1&y=%3Cz%3E")
    assert response.status_code == 200
    # The app's Content-Type comes through alone (not joined to a default one the proxy made up).
    assert response.raw.headers.getlist("Content-Type") == ["application/json"]
    echoed = response.json()
    assert echoed["method"] == "GET"
    assert echoed["raw_uri"].startswith("/echo/a%2Fb/c")
    assert echoed["query"] == "x=1&y=%3Cz%3E"
    assert echoed["cookies"]["SEC"] == standin_console.console.tokens["analyst"]
    assert echoed["cookies"]["QRadarCSRF"] == "csrf-token-1"
    assert echoed["console_host"] == f"127.0.0.1:{standin_console.console.port}"


def test_unsafe_method_without_csrf_header_is_403(standin_console, assert_qradar_error):
    body = assert_qradar_error(call(standin_console, "POST", "echo/x", data="a=1"), 403, 26)
    assert "QRadarCSRF" in body["message"]
    wrong = call(standin_console, "DELETE", "echo/x", headers={"QRadarCSRF": "something-else"})
    assert_qradar_error(wrong, 403, 26)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_unsafe_method_with_matching_csrf_header_is_forwarded(standin_console, method):
    response = call(
        standin_console, method, "echo/x?q=1", headers={"QRadarCSRF": "csrf-token-1"}, data='{"k": "v"}'
    )
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["method"] == method
    assert echoed["body"] == '{"k": "v"}'
    assert echoed["csrf_header"] == "csrf-token-1"


def test_without_a_session_the_proxy_answers_401(standin_console, assert_qradar_error):
    assert_qradar_error(call(standin_console, "GET", "echo/x", user=None), 401, 18)


def test_unknown_app_id_is_404(standin_console, assert_qradar_error):
    response = requests.get(
        standin_console.console.url("/console/plugins/9/app_proxy/echo/x"),
        cookies=browser_cookies(standin_console, "admin"),
        verify=standin_console.console.ca_path,
        timeout=10,
    )
    assert_qradar_error(response, 404, 1002)


def test_area_capabilities_are_enforced(standin_console, assert_qradar_error):
    body = assert_qradar_error(call(standin_console, "GET", "admin/", user="analyst"), 403, 26)
    assert "ADMIN" in body["message"]
    assert call(standin_console, "GET", "admin/", user="admin").status_code == 200


def test_rest_method_capabilities_are_enforced(standin_console, assert_qradar_error):
    headers = {"QRadarCSRF": "csrf-token-1"}
    assert_qradar_error(call(standin_console, "POST", "tune", user="analyst", headers=headers), 403, 26)
    allowed = call(standin_console, "POST", "tune", user="tuner1", headers=headers)
    assert allowed.status_code == 200
    assert allowed.json() == {"tuned": True}


def test_responses_are_streamed(standin_console):
    app = standin_console.app
    app.release_stream.clear()
    with call(standin_console, "GET", "stream", stream=True) as response:
        chunks = response.iter_content(chunk_size=None)
        first = next(chunks)
        assert first.startswith(b"first chunk")
        app.release_stream.set()
        rest = b"".join(chunks)
    assert (first + rest) == b"first chunk\nsecond chunk\n"
    assert app.stream_released_in_time is True


def test_set_cookie_headers_pass_through(standin_console):
    response = call(standin_console, "GET", "cookies")
    assert response.cookies.get("session_2202") == "abc"
    assert response.cookies.get("other") == "def"


def test_redirects_are_returned_not_followed(standin_console):
    response = call(standin_console, "GET", "redirect")
    assert response.status_code == 302
    assert response.headers["Location"] == "/tab/"


def test_app_errors_pass_through(standin_console):
    response = call(standin_console, "GET", "no/such/page")
    assert response.status_code == 404
    assert response.text == "not found"


def test_app_that_does_not_answer_is_502(extra_console, standin_console, assert_qradar_error):
    down = extra_console(None, standin_console.manifest_path, app_id=3303)
    response = requests.get(
        down.url("/console/plugins/3303/app_proxy/tab/"),
        cookies={"SEC": down.tokens["admin"]},
        verify=down.ca_path,
        timeout=30,
    )
    body = assert_qradar_error(response, 502, 1020)
    assert "did not answer" in body["message"]


def test_sec_header_callers_are_authenticated_and_exempt_from_csrf(standin_console, assert_qradar_error):
    url = proxy_url(standin_console, "echo/token")
    response = requests.post(
        url,
        headers={"SEC": standin_console.console.tokens["service"]},
        data="x",
        verify=standin_console.console.ca_path,
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["method"] == "POST"
    refused = requests.get(url, headers={"SEC": "wrong"}, verify=standin_console.console.ca_path, timeout=10)
    assert_qradar_error(refused, 401, 18)
    analyst = requests.post(
        proxy_url(standin_console, "tune"),
        headers={"SEC": standin_console.console.tokens["analyst"]},
        verify=standin_console.console.ca_path,
        timeout=10,
    )
    assert_qradar_error(analyst, 403, 26)
