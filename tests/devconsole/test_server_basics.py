"""The dev console's REST plumbing over real HTTPS: TLS, authentication, QRadar error bodies, Version,
Accept, Host without a port, the current-user endpoints and the runtime lookups."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from contextlib import closing

import pytest
import requests


def test_tls_is_verified_against_the_console_ca(devconsole):
    response = requests.get(
        devconsole.url("/api/help/versions"),
        headers={"SEC": devconsole.tokens["admin"]},
        verify=devconsole.ca_path,
        timeout=10,
    )
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(devconsole.url("/api/help/versions"), timeout=10, verify=True)


def test_certificate_is_valid_for_localhost_too(devconsole):
    response = requests.get(
        f"https://localhost:{devconsole.port}/api/help/versions",
        verify=devconsole.ca_path,
        headers={"SEC": devconsole.tokens["admin"]},
        timeout=10,
    )
    assert response.status_code == 200


def test_host_header_without_port_is_accepted(devconsole):
    # qpylib sends "Host: 127.0.0.1" (no port); the console must answer it.
    context = ssl.create_default_context(cafile=devconsole.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", devconsole.port, context=context, timeout=10)
    try:
        conn.request(
            "GET",
            "/api/config/access/users?current_user=true",
            headers={"Host": "127.0.0.1", "SEC": devconsole.tokens["analyst"]},
        )
        response = conn.getresponse()
        body = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 200
    assert body[0]["username"] == "analyst"


def test_missing_token_is_401_with_qradar_body(devconsole, assert_qradar_error):
    response = requests.get(devconsole.url("/api/siem/offenses"), verify=devconsole.ca_path, timeout=10)
    body = assert_qradar_error(response, 401, 18)
    assert "SEC" in body["message"]


def test_unknown_token_is_401(devconsole, assert_qradar_error):
    response = requests.get(
        devconsole.url("/api/siem/offenses"),
        headers={"SEC": "not-a-token"},
        verify=devconsole.ca_path,
        timeout=10,
    )
    assert_qradar_error(response, 401, 18)


def test_sec_cookie_authenticates_like_the_header(devconsole):
    response = requests.get(
        devconsole.url("/api/config/access/users?current_user=true"),
        cookies={"SEC": devconsole.tokens["tuner1"]},
        verify=devconsole.ca_path,
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()[0]["username"] == "tuner1"


def test_cookie_session_needs_csrf_header_for_unsafe_methods(devconsole, assert_qradar_error):
    url = devconsole.url("/api/reference_data/sets")
    cookies = {"SEC": devconsole.tokens["admin"], "QRadarCSRF": "csrf-value-1"}
    params = {"name": "cookie_csrf_set", "element_type": "ALN"}
    refused = requests.post(url, params=params, cookies=cookies, verify=devconsole.ca_path, timeout=10)
    assert_qradar_error(refused, 403, 26)
    accepted = requests.post(
        url,
        params=params,
        cookies=cookies,
        headers={"QRadarCSRF": "csrf-value-1"},
        verify=devconsole.ca_path,
        timeout=10,
    )
    assert accepted.status_code == 201, accepted.text


def test_basic_auth_with_user_and_token(devconsole, assert_qradar_error):
    good = base64.b64encode(f"analyst:{devconsole.tokens['analyst']}".encode()).decode()
    response = requests.get(
        devconsole.url("/api/config/access/users?current_user=true"),
        headers={"Authorization": f"Basic {good}"},
        verify=devconsole.ca_path,
        timeout=10,
    )
    assert response.json()[0]["username"] == "analyst"
    bad = base64.b64encode(f"admin:{devconsole.tokens['analyst']}".encode()).decode()
    response = requests.get(
        devconsole.url("/api/config/access/users?current_user=true"),
        headers={"Authorization": f"Basic {bad}"},
        verify=devconsole.ca_path,
        timeout=10,
    )
    assert_qradar_error(response, 401, 18)


def test_unknown_endpoint_and_method_are_json_errors(devconsole, assert_qradar_error):
    api = devconsole.api()
    assert_qradar_error(api.get(devconsole.url("/api/no/such/endpoint"), timeout=10), 404, 1002)
    response = api.put(devconsole.url("/api/ariel/databases"), timeout=10)
    assert response.status_code == 405
    assert set(response.json()) >= {"http_response", "code", "message"}


# IBM's table for QRadar 7.5.0 UP12/13 (API 26.0): 24.0-26.0 supported, 23.x deprecated (answered, with a
# Deprecated header), older versions removed (422, "... has been removed"); a version QRadar never had is
# refused (406/3, UNCONFIRMED). No Version header means the latest.
# version, status, error code (None when answered), Deprecated header expected
VERSION_CASES = [
    ("26.0", 200, None, False),
    ("26", 200, None, False),
    ("25.0", 200, None, False),
    ("24.0", 200, None, False),
    (None, 200, None, False),
    ("23.0", 200, None, True),
    ("23", 200, None, True),
    ("22.0", 422, 1005, False),
    ("20.0", 422, 1005, False),
    ("12.0", 422, 1005, False),
    ("1.0", 422, 1005, False),
    ("99.0", 406, 3, False),
    ("26.5", 406, 3, False),
    ("latest", 406, 3, False),
    ("", 406, 3, False),
    ("26.0.1", 406, 3, False),
]


@pytest.mark.parametrize(("version", "status", "code", "deprecated"), VERSION_CASES)
def test_api_versions_as_ibm_documents_them(
    devconsole, assert_qradar_error, version, status, code, deprecated
):
    api = devconsole.api(version=None)
    headers = {} if version is None else {"Version": version}
    response = api.get(devconsole.url("/api/siem/offense_types"), headers=headers, timeout=10)
    if code is None:
        assert response.status_code == 200, response.text
        assert isinstance(response.json(), list)
    else:
        body = assert_qradar_error(response, status, code)
        if status == 422:
            assert "has been removed" in body["message"]
        assert version in body["message"]
    assert ("Deprecated" in response.headers) is deprecated


def test_help_versions_lists_deprecated_and_removed_booleans(devconsole):
    response = devconsole.api().get(devconsole.url("/api/help/versions"), timeout=10)
    assert response.status_code == 200
    items = response.json()
    assert all(set(item) == {"id", "version", "deprecated", "removed", "root_resource_ids"} for item in items)
    listed = {item["version"]: (item["deprecated"], item["removed"]) for item in items}
    assert listed["26.0"] == listed["25.0"] == listed["24.0"] == (False, False)
    assert listed["23.0"] == (True, False)
    assert listed["22.0"] == (True, True)
    assert listed["12.0"] == (True, True)
    assert "27.0" not in listed
    usable = devconsole.api().get(
        devconsole.url("/api/help/versions"), params={"filter": "removed=false"}, timeout=10
    )
    assert sorted(item["version"] for item in usable.json()) == ["23.0", "24.0", "25.0", "26.0"]


def test_accept_header_without_json_is_406(devconsole, assert_qradar_error):
    response = devconsole.api().get(
        devconsole.url("/api/siem/offense_types"), headers={"Accept": "text/html"}, timeout=10
    )
    assert_qradar_error(response, 406, 1005)


@pytest.mark.parametrize(
    ("user", "role", "capabilities"),
    [
        ("admin", "Admin", {"ADMIN"}),
        ("tuner1", "Detection Engineer", {"SEM", "EVENTVIEWER", "REFERENCEDATA"}),
        ("tuner2", "Detection Engineer", {"SEM", "EVENTVIEWER", "REFERENCEDATA"}),
        ("analyst", "Analyst", {"SEM", "EVENTVIEWER"}),
        ("service", "Authorized Service", {"ADMIN"}),
    ],
)
def test_current_user_role_answers_for_the_token_sent(devconsole, user, role, capabilities):
    api = devconsole.api(user)
    roles = api.get(
        devconsole.url("/api/config/access/user_roles"), params={"current_user_role": "true"}, timeout=10
    ).json()
    assert len(roles) == 1
    assert roles[0]["name"] == role
    assert {c["name"] for c in roles[0]["capabilities"]} == capabilities
    users = api.get(
        devconsole.url("/api/config/access/users"), params={"current_user": "true"}, timeout=10
    ).json()
    assert users[0]["username"] == user
    assert users[0]["user_role_id"] == roles[0]["id"]


def test_listing_all_users_needs_admin(devconsole, assert_qradar_error):
    assert_qradar_error(
        devconsole.api("analyst").get(devconsole.url("/api/config/access/users"), timeout=10), 403, 26
    )
    names = {
        u["username"]
        for u in devconsole.api().get(devconsole.url("/api/config/access/users"), timeout=10).json()
    }
    assert {"admin", "tuner1", "tuner2", "analyst", "service"} <= names


def test_tokens_file_has_a_distinct_token_per_user(devconsole):
    assert {"admin", "tuner1", "tuner2", "analyst", "service"} <= set(devconsole.tokens)
    assert len(set(devconsole.tokens.values())) == len(devconsole.tokens)


def test_log_source_types_match_the_store(devconsole):
    items = (
        devconsole.api()
        .get(devconsole.url("/api/config/event_sources/log_source_management/log_source_types"), timeout=10)
        .json()
    )
    with closing(devconsole.db()) as conn:
        expected = {r["id"]: r["name"] for r in conn.execute("SELECT id, name FROM log_source_types")}
    assert {item["id"]: item["name"] for item in items} == expected
    assert {347, 445, 413, 397} <= set(expected)


def test_log_source_types_filter_and_fields(devconsole):
    response = devconsole.api().get(
        devconsole.url("/api/config/event_sources/log_source_management/log_source_types"),
        params={"filter": "id in (347, 445)", "fields": "id,name"},
        timeout=10,
    )
    items = response.json()
    assert sorted(item["id"] for item in items) == [347, 445]
    assert all(set(item) == {"id", "name"} for item in items)


def test_less_privileged_callers_get_only_id_and_name(devconsole):
    items = (
        devconsole.api("analyst")
        .get(devconsole.url("/api/config/event_sources/log_source_management/log_source_types"), timeout=10)
        .json()
    )
    assert items
    assert all(set(item) == {"id", "name"} for item in items)


def test_qid_records_filter_by_log_source_type(devconsole):
    response = devconsole.api().get(
        devconsole.url("/api/data_classification/qid_records"),
        params={"filter": "log_source_type_id=347"},
        timeout=10,
    )
    items = response.json()
    with closing(devconsole.db()) as conn:
        expected = {r[0] for r in conn.execute("SELECT qid FROM qid_records WHERE log_source_type_id = 347")}
    assert {item["qid"] for item in items} == expected
    assert expected, "the scenario has CloudTrail QIDs"
    assert {
        "id",
        "qid",
        "name",
        "description",
        "severity",
        "low_level_category_id",
        "log_source_type_id",
    } <= set(items[0])


def test_low_level_categories_include_user_account_added(devconsole):
    items = (
        devconsole.api()
        .get(
            devconsole.url("/api/data_classification/low_level_categories"),
            params={"filter": 'name="User Account Added"'},
            timeout=10,
        )
        .json()
    )
    assert len(items) == 1
    assert items[0]["high_level_category_id"] == 3000


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"filter": "id = "}, 1005),
        ({"filter": "no_such_field = 1"}, 1005),
        ({"sort": "-nope"}, 1005),
        ({"fields": "id,(name"}, 1005),
        ({"fields": "nope"}, 1005),
    ],
)
def test_bad_list_parameters_are_422(devconsole, params, code, assert_qradar_error):
    response = devconsole.api().get(devconsole.url("/api/siem/offense_types"), params=params, timeout=10)
    assert_qradar_error(response, 422, code)


@pytest.mark.parametrize("header", ["items=5", "items=a-b", "rows=0-4", "items=4-2", "items=-1-3"])
def test_malformed_range_is_422_36(devconsole, header, assert_qradar_error):
    response = devconsole.api().get(
        devconsole.url("/api/siem/offense_types"), headers={"Range": header}, timeout=10
    )
    body = assert_qradar_error(response, 422, 36)
    assert "items=x-y" in body["message"]


def test_range_is_inclusive_with_content_range(devconsole):
    api = devconsole.api()
    everything = api.get(devconsole.url("/api/siem/offense_types"), timeout=10).json()
    page = api.get(devconsole.url("/api/siem/offense_types"), headers={"Range": "items=2-4"}, timeout=10)
    assert page.json() == everything[2:5]
    assert page.headers["Content-Range"] == f"items 2-4/{len(everything)}"
