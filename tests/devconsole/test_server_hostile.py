"""Hostile input never makes the console answer 5xx: every refusal is QRadar's JSON error naming the
problem (oversized numbers, non-ASCII tokens, odd filters, non-finite values, huge TTLs, bad AQL)."""

from __future__ import annotations

import pytest
import requests

HUGE = "9" * 40


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", f"/api/siem/offenses/{HUGE}", {}),
        ("GET", f"/api/data_classification/qid_records/{HUGE}", {}),
        ("GET", f"/api/system/task_management/tasks/{HUGE}", {}),
        ("GET", f"/api/siem/offenses/{HUGE}/notes", {}),
        ("POST", f"/api/siem/offenses/{HUGE}/notes", {"params": {"note_text": "x"}}),
        ("GET", f"/api/siem/offenses/1/notes/{HUGE}", {}),
        ("POST", "/api/siem/offenses/1/notes", {"params": {"note_text": "x" * 20_000}}),
        ("GET", f"/api/siem/offense_closing_reasons/{HUGE}", {}),
        ("GET", f"/api/siem/source_addresses/{HUGE}", {}),
        ("GET", f"/api/siem/local_destination_addresses/{HUGE}", {}),
        ("GET", f"/api/analytics/rules/{HUGE}", {}),
        ("GET", "/api/siem/source_addresses", {"params": {"filter": "((((("}}),
        (
            "POST",
            "/api/reference_data/tables",
            {"params": {"name": "h_kt", "element_type": "ALN", "key_name_types": "[" * 5000}},
        ),
        ("GET", "/api/reference_data/map_of_sets/nope", {"headers": {"Range": f"items=0-{HUGE}"}}),
        (
            "POST",
            "/api/ariel/searches",
            {"params": {"query_expression": "SELECT qid FROM events WHERE TEXT SEARCH '" + "(" * 2000 + "'"}},
        ),
        (
            "POST",
            "/api/ariel/searches",
            {"params": {"query_expression": f"SELECT qid FROM events PARAMETERS snapshotsize={HUGE}"}},
        ),
        ("GET", "/api/help/versions", {"headers": {"Version": HUGE}}),
        ("GET", "/api/siem/offenses", {"params": {"filter": "id = 'unterminated"}}),
        ("GET", "/api/siem/offenses", {"params": {"filter": "((((("}}),
        ("GET", "/api/siem/offenses", {"params": {"filter": "id=1 and and"}}),
        ("GET", "/api/siem/offenses", {"params": {"fields": "id((("}}),
        ("GET", "/api/siem/offenses", {"headers": {"Range": f"items=0-{HUGE}"}}),
        ("GET", "/api/ariel/searches/<script>", {}),
        (
            "POST",
            "/api/ariel/searches",
            {"params": {"query_expression": "SELECT '\x00' FROM events' OR 1=1 --"}},
        ),
        ("POST", "/api/ariel/searches", {"params": {"query_expression": "SELECT " + "(" * 500 + "1"}}),
        ("POST", "/api/ariel/validators/aql", {"params": {"query_expression": "<script>alert(1)</script>"}}),
        (
            "POST",
            "/api/reference_data/sets",
            {"params": {"name": "h_ttl", "element_type": "ALN", "time_to_live": "1e308 years"}},
        ),
        (
            "POST",
            "/api/reference_data/sets",
            {"params": {"name": "h_nan", "element_type": "ALN", "time_to_live": "nan seconds"}},
        ),
        ("POST", "/api/reference_data/sets", {"params": {"name": "", "element_type": "ALN"}}),
        (
            "POST",
            "/api/reference_data/sets/bulk_load/nope",
            {"data": "\x00\x01", "headers": {"Content-Type": "application/json"}},
        ),
    ],
)
def test_hostile_requests_get_json_errors_not_5xx(devconsole, method, path, kwargs):
    api = devconsole.api()
    extra_headers = kwargs.pop("headers", {})
    response = api.request(method, devconsole.url(path), headers=extra_headers, timeout=30, **kwargs)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["http_response"]["code"] == response.status_code
        assert body["message"]


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e999"])
def test_non_finite_numbers_are_refused_in_num_sets(devconsole, assert_qradar_error, value):
    api = devconsole.api()
    name = f"h_num_{value.replace('-', 'm')}"
    api.post(
        devconsole.url("/api/reference_data/sets"), params={"name": name, "element_type": "NUM"}, timeout=10
    )
    response = api.post(
        devconsole.url(f"/api/reference_data/sets/{name}"), params={"value": value}, timeout=10
    )
    assert_qradar_error(response, 422, 1005)


def test_non_ascii_token_and_csrf_values_are_401_and_403(devconsole, assert_qradar_error):
    url = devconsole.url("/api/reference_data/sets")
    token = "tökén".encode().decode("latin-1")
    response = requests.get(url, headers={"SEC": token}, verify=devconsole.ca_path, timeout=10)
    assert_qradar_error(response, 401, 18)
    response = requests.post(
        url,
        params={"name": "h_csrf", "element_type": "ALN"},
        cookies={"SEC": devconsole.tokens["admin"], "QRadarCSRF": "abc"},
        headers={"QRadarCSRF": "ābc".encode().decode("latin-1")},
        verify=devconsole.ca_path,
        timeout=10,
    )
    assert_qradar_error(response, 403, 26)


def test_oversized_body_is_413_json(devconsole):
    api = devconsole.api()
    api.post(
        devconsole.url("/api/reference_data/sets"),
        params={"name": "h_big", "element_type": "ALN"},
        timeout=10,
    )
    response = api.post(
        devconsole.url("/api/reference_data/sets/bulk_load/h_big"),
        data=b"[" + b'"x",' * (5 * 1024 * 1024) + b'"x"]',
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.json()["http_response"]["code"] == 413
