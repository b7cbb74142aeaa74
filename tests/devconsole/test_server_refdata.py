"""Reference sets and maps over real HTTPS: create, get with data, add, delete value, delete, bulk load,
QRadar's codes, element types, roles, and TTL expiry seen both by GET and by AQL."""

from __future__ import annotations

import time
import uuid
from contextlib import closing

import pytest

SETS = "/api/reference_data/sets"
MAPS = "/api/reference_data/maps"
TASK_FIELDS = {"completed", "created", "created_by", "id", "message", "modified", "name", "started", "status"}


def name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def create_set(devconsole, element_type: str = "ALN", **params) -> str:
    set_name = name("set")
    response = devconsole.api().post(
        devconsole.url(SETS), params={"name": set_name, "element_type": element_type, **params}, timeout=10
    )
    assert response.status_code == 201, response.text
    return set_name


def test_create_get_add_and_delete_a_set(devconsole, assert_qradar_error):
    api = devconsole.api()
    set_name = create_set(devconsole)
    created = api.get(devconsole.url(f"{SETS}/{set_name}"), timeout=10).json()
    assert created["element_type"] == "ALN"
    assert created["number_of_elements"] == 0
    assert created["data"] == []
    added = api.post(
        devconsole.url(f"{SETS}/{set_name}"), params={"value": "alice", "source": "test"}, timeout=10
    )
    assert added.status_code == 200
    assert added.json()["number_of_elements"] == 1
    data = api.get(devconsole.url(f"{SETS}/{set_name}"), timeout=10).json()["data"]
    assert [(d["value"], d["source"]) for d in data] == [("alice", "test")]
    assert {"first_seen", "last_seen"} <= set(data[0])
    assert set_name in {s["name"] for s in api.get(devconsole.url(SETS), timeout=10).json()}
    removed = api.delete(devconsole.url(f"{SETS}/{set_name}/alice"), timeout=10)
    assert removed.status_code == 200
    assert removed.json()["number_of_elements"] == 0
    assert_qradar_error(api.delete(devconsole.url(f"{SETS}/{set_name}/alice"), timeout=10), 404, 1003)
    deleted = api.delete(devconsole.url(f"{SETS}/{set_name}"), timeout=10)
    assert deleted.status_code == 202
    task = deleted.json()
    # API 26.0 DELETE /reference_data/sets/{name}: the task status object, its URL also in Location
    assert set(task) == TASK_FIELDS
    assert task["status"] == "COMPLETED"
    assert task["created_by"] == "admin"
    assert task["created"] <= task["started"] <= task["completed"]
    assert deleted.headers["Location"] == f"/api/system/task_management/tasks/{task['id']}"
    assert api.get(devconsole.url(deleted.headers["Location"]), timeout=10).json() == task
    assert_qradar_error(api.get(devconsole.url(f"{SETS}/{set_name}"), timeout=10), 404, 1002)


def test_duplicate_set_name_is_409_1004(devconsole, assert_qradar_error):
    set_name = create_set(devconsole)
    response = devconsole.api().post(
        devconsole.url(SETS), params={"name": set_name, "element_type": "ALN"}, timeout=10
    )
    assert_qradar_error(response, 409, 1004)


@pytest.mark.parametrize(
    "params",
    [
        {"element_type": "ALN"},
        {"name": "x_bad_type", "element_type": "TEXT"},
        {"name": "x_bad_timeout", "element_type": "ALN", "timeout_type": "SOMETIMES"},
        {"name": "x_bad_ttl", "element_type": "ALN", "time_to_live": "5 fortnights"},
    ],
)
def test_bad_creation_parameters_are_422_1005(devconsole, assert_qradar_error, params):
    assert_qradar_error(devconsole.api().post(devconsole.url(SETS), params=params, timeout=10), 422, 1005)


def test_missing_set_is_404_1002_everywhere(devconsole, assert_qradar_error):
    api = devconsole.api()
    missing = devconsole.url(f"{SETS}/no_such_set_{uuid.uuid4().hex[:6]}")
    body = assert_qradar_error(api.get(missing, timeout=10), 404, 1002)
    assert body["description"] == "The reference set does not exist."
    assert_qradar_error(api.post(missing, params={"value": "x"}, timeout=10), 404, 1002)
    assert_qradar_error(api.delete(missing, timeout=10), 404, 1002)
    assert_qradar_error(api.delete(missing + "/x", timeout=10), 404, 1002)


@pytest.mark.parametrize(
    ("element_type", "good", "bad"),
    [
        ("IP", "10.1.2.3", "10.1.2.300"),
        ("NUM", "42", "forty-two"),
        ("PORT", "443", "70000"),
        ("DATE", "1700000000000", "yesterday"),
        ("CIDR", "10.0.0.0/8", "10.0.0.0/33"),
    ],
)
def test_values_are_checked_against_the_element_type(
    devconsole, assert_qradar_error, element_type, good, bad
):
    api = devconsole.api()
    set_name = create_set(devconsole, element_type)
    assert (
        api.post(devconsole.url(f"{SETS}/{set_name}"), params={"value": good}, timeout=10).status_code == 200
    )
    assert_qradar_error(
        api.post(devconsole.url(f"{SETS}/{set_name}"), params={"value": bad}, timeout=10), 422, 1005
    )


def test_cidr_value_can_be_deleted_by_path(devconsole):
    api = devconsole.api()
    set_name = create_set(devconsole, "CIDR")
    api.post(devconsole.url(f"{SETS}/{set_name}"), params={"value": "192.0.2.0/24"}, timeout=10)
    assert api.delete(devconsole.url(f"{SETS}/{set_name}/192.0.2.0/24"), timeout=10).status_code == 200


def test_alnic_matches_case_insensitively(devconsole):
    api = devconsole.api()
    set_name = create_set(devconsole, "ALNIC")
    api.post(devconsole.url(f"{SETS}/{set_name}"), params={"value": "Terraform-CI"}, timeout=10)
    again = api.post(devconsole.url(f"{SETS}/{set_name}"), params={"value": "terraform-ci"}, timeout=10)
    assert again.json()["number_of_elements"] == 1
    assert api.delete(devconsole.url(f"{SETS}/{set_name}/TERRAFORM-CI"), timeout=10).status_code == 200


def test_bulk_load_and_its_errors(devconsole, assert_qradar_error):
    api = devconsole.api()
    set_name = create_set(devconsole)
    url = devconsole.url(f"{SETS}/bulk_load/{set_name}")
    loaded = api.post(url, json=["a", "b", "c", "a"], timeout=10)
    assert loaded.status_code == 200
    assert loaded.json()["number_of_elements"] == 3
    assert_qradar_error(
        api.post(url, data="[not json", headers={"Content-Type": "application/json"}, timeout=10), 400, 1001
    )
    assert_qradar_error(api.post(url, json={"a": 1}, timeout=10), 400, 1001)
    assert_qradar_error(
        api.post(devconsole.url(f"{SETS}/bulk_load/missing_{uuid.uuid4().hex[:6]}"), json=["a"], timeout=10),
        404,
        1002,
    )


def test_hostile_values_are_stored_verbatim(devconsole):
    api = devconsole.api()
    set_name = create_set(devconsole)
    hostile = ["<script>alert(1)</script>", "' OR 1=1 --", '=HYPERLINK("http://x")']
    api.post(devconsole.url(f"{SETS}/bulk_load/{set_name}"), json=hostile, timeout=10)
    values = {d["value"] for d in api.get(devconsole.url(f"{SETS}/{set_name}"), timeout=10).json()["data"]}
    assert values == set(hostile)


def test_analyst_cannot_write_reference_data_but_can_read(devconsole, assert_qradar_error):
    set_name = create_set(devconsole)
    analyst = devconsole.api("analyst")
    assert_qradar_error(
        analyst.post(devconsole.url(SETS), params={"name": name("a"), "element_type": "ALN"}, timeout=10),
        403,
        26,
    )
    assert_qradar_error(
        analyst.post(devconsole.url(f"{SETS}/{set_name}"), params={"value": "x"}, timeout=10), 403, 26
    )
    assert_qradar_error(analyst.delete(devconsole.url(f"{SETS}/{set_name}"), timeout=10), 403, 26)
    assert analyst.get(devconsole.url(f"{SETS}/{set_name}"), timeout=10).status_code == 200


def test_tuner_can_write_reference_data(devconsole):
    set_name = name("tuner")
    tuner = devconsole.api("tuner2")
    assert (
        tuner.post(
            devconsole.url(SETS), params={"name": set_name, "element_type": "ALN"}, timeout=10
        ).status_code
        == 201
    )
    assert (
        tuner.post(devconsole.url(f"{SETS}/{set_name}"), params={"value": "x"}, timeout=10).status_code == 200
    )


def test_maps_lifecycle(devconsole, assert_qradar_error):
    api = devconsole.api()
    map_name = name("map")
    created = api.post(
        devconsole.url(MAPS),
        params={"name": map_name, "element_type": "ALN", "key_label": "user", "value_label": "owner"},
        timeout=10,
    )
    assert created.status_code == 201
    assert_qradar_error(
        api.post(devconsole.url(MAPS), params={"name": map_name, "element_type": "ALN"}, timeout=10),
        409,
        1004,
    )
    api.post(
        devconsole.url(f"{MAPS}/{map_name}"),
        params={"key": "svc-terraform", "value": "platform team"},
        timeout=10,
    )
    api.post(
        devconsole.url(f"{MAPS}/bulk_load/{map_name}"),
        json={"svc-ansible": "ops", "svc-hr": "hr"},
        timeout=10,
    )
    got = api.get(devconsole.url(f"{MAPS}/{map_name}"), timeout=10).json()
    assert got["key_label"] == "user"
    assert {k: v["value"] for k, v in got["data"].items()} == {
        "svc-terraform": "platform team",
        "svc-ansible": "ops",
        "svc-hr": "hr",
    }
    assert_qradar_error(
        api.delete(devconsole.url(f"{MAPS}/{map_name}/svc-hr"), params={"value": "nope"}, timeout=10),
        404,
        1003,
    )
    assert (
        api.delete(
            devconsole.url(f"{MAPS}/{map_name}/svc-hr"), params={"value": "hr"}, timeout=10
        ).status_code
        == 200
    )
    assert_qradar_error(api.delete(devconsole.url(f"{MAPS}/{map_name}/svc-hr"), timeout=10), 404, 1003)
    assert_qradar_error(
        api.post(devconsole.url(f"{MAPS}/bulk_load/{map_name}"), json=["x"], timeout=10), 400, 1001
    )
    assert api.delete(devconsole.url(f"{MAPS}/{map_name}"), timeout=10).status_code == 202
    assert_qradar_error(api.get(devconsole.url(f"{MAPS}/{map_name}"), timeout=10), 404, 1002)


def some_username(devconsole) -> str:
    with closing(devconsole.db()) as conn:
        return conn.execute(
            "SELECT username FROM events WHERE username IS NOT NULL AND username != ''"
            " GROUP BY username ORDER BY COUNT(*) DESC LIMIT 1"
        ).fetchone()[0]


def count_events_of(devconsole, username: str) -> int:
    with closing(devconsole.db()) as conn:
        return conn.execute("SELECT COUNT(*) FROM events WHERE username = ?", (username,)).fetchone()[0]


def wait_for_expiry(devconsole, path: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = devconsole.api().get(devconsole.url(path), timeout=10).json()
        if body["number_of_elements"] == 0:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.25)


def test_set_ttl_expiry_is_seen_by_get_and_by_aql(devconsole):
    api = devconsole.api()
    username = some_username(devconsole)
    set_name = create_set(devconsole, "ALN", timeout_type="FIRST_SEEN", time_to_live="2 seconds")
    api.post(devconsole.url(f"{SETS}/{set_name}"), params={"value": username}, timeout=10)
    window = devconsole.window_covering_all_events()
    aql = f"SELECT COUNT(*) AS n FROM events WHERE REFERENCESETCONTAINS('{set_name}', username) {window}"
    _, before = devconsole.run_search(aql)
    assert before == [{"n": count_events_of(devconsole, username)}]
    assert before[0]["n"] > 0
    expired = wait_for_expiry(devconsole, f"{SETS}/{set_name}")
    assert expired["data"] == []
    _, after = devconsole.run_search(aql + " ")  # a different query string: not the reused search
    assert after == [{"n": 0}]


def test_map_ttl_expiry_is_seen_by_aql(devconsole):
    api = devconsole.api()
    username = some_username(devconsole)
    map_name = name("ttlmap")
    api.post(
        devconsole.url(MAPS),
        params={
            "name": map_name,
            "element_type": "ALN",
            "timeout_type": "LAST_SEEN",
            "time_to_live": "2 seconds",
        },
        timeout=10,
    )
    api.post(devconsole.url(f"{MAPS}/{map_name}"), params={"key": username, "value": "owner-x"}, timeout=10)
    window = devconsole.window_covering_all_events()
    aql = (
        f"SELECT REFERENCEMAP('{map_name}', username) AS owner FROM events WHERE username = "
        f"'{username.replace(chr(39), chr(39) * 2)}' LIMIT 1 {window}"
    )
    _, before = devconsole.run_search(aql)
    assert before == [{"owner": "owner-x"}]
    wait_for_expiry(devconsole, f"{MAPS}/{map_name}")
    _, after = devconsole.run_search(aql + " ")
    assert after == [{"owner": None}]
