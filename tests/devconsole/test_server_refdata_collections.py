"""Reference maps of sets and reference tables over real HTTPS (API 26.0 ``/reference_data/map_of_sets``
and ``/reference_data/tables``): create, list, get with data and Range, add, delete with the task in
Location, the namespace check, and the codes API 26.0 documents."""

from __future__ import annotations

import json
import uuid

import pytest

MAPS_OF_SETS = "/api/reference_data/map_of_sets"
TABLES = "/api/reference_data/tables"
TASK_FIELDS = {"completed", "created", "created_by", "id", "message", "modified", "name", "started", "status"}
COMMON_FIELDS = {
    "collection_id",
    "creation_time",
    "description",
    "element_type",
    "key_label",
    "name",
    "namespace",
    "number_of_elements",
    "time_to_live",
    "timeout_type",
}


def name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_map_of_sets_lifecycle(devconsole, assert_qradar_error):
    api = devconsole.api()
    map_name = name("mos")
    created = api.post(
        devconsole.url(MAPS_OF_SETS),
        params={
            "name": map_name,
            "element_type": "ALN",
            "key_label": "actor",
            "value_label": "account",
            "description": "accounts each actor created",
            "timeout_type": "LAST_SEEN",
            "time_to_live": "30 days",
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == COMMON_FIELDS | {"value_label"}
    assert (body["key_label"], body["value_label"], body["namespace"]) == ("actor", "account", "SHARED")
    assert (body["number_of_elements"], body["timeout_type"], body["time_to_live"]) == (
        0,
        "LAST_SEEN",
        "30 days",
    )
    for key, value in [("alice", "svc-backup"), ("alice", "svc-deploy"), ("bob", "eve.external")]:
        added = api.post(
            devconsole.url(f"{MAPS_OF_SETS}/{map_name}"), params={"key": key, "value": value}, timeout=10
        )
        assert added.status_code == 200, added.text
    full = api.get(devconsole.url(f"{MAPS_OF_SETS}/{map_name}"), timeout=10).json()
    assert full["number_of_elements"] == 3
    assert {key: [v["value"] for v in values] for key, values in full["data"].items()} == {
        "alice": ["svc-backup", "svc-deploy"],
        "bob": ["eve.external"],
    }
    assert set(full["data"]["bob"][0]) == {"value", "source", "first_seen", "last_seen", "domain_id"}
    page = api.get(devconsole.url(f"{MAPS_OF_SETS}/{map_name}"), headers={"Range": "items=1-2"}, timeout=10)
    assert {key: [v["value"] for v in values] for key, values in page.json()["data"].items()} == {
        "alice": ["svc-deploy"],
        "bob": ["eve.external"],
    }
    listed = api.get(devconsole.url(MAPS_OF_SETS), params={"filter": f'name="{map_name}"'}, timeout=10).json()
    assert listed == [{k: v for k, v in full.items() if k != "data"}]
    deleted = api.delete(devconsole.url(f"{MAPS_OF_SETS}/{map_name}"), timeout=10)
    assert deleted.status_code == 202
    assert set(deleted.json()) == TASK_FIELDS
    assert deleted.headers["Location"] == f"/api/system/task_management/tasks/{deleted.json()['id']}"
    assert api.get(devconsole.url(deleted.headers["Location"]), timeout=10).json() == deleted.json()
    assert_qradar_error(api.get(devconsole.url(f"{MAPS_OF_SETS}/{map_name}"), timeout=10), 404, 1002)


def test_reference_table_lifecycle(devconsole, assert_qradar_error):
    api = devconsole.api()
    table = name("tbl")
    key_types = [{"key_name": "ip", "element_type": "IP"}, {"key_name": "seen", "element_type": "DATE"}]
    created = api.post(
        devconsole.url(TABLES),
        params={
            "name": table,
            "element_type": "ALN",
            "outer_key_label": "account",
            "key_name_types": json.dumps(key_types),
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == COMMON_FIELDS | {"key_name_types"}
    assert body["key_name_types"] == {"ip": "IP", "seen": "DATE"}
    assert body["key_label"] == "account"
    for outer, inner, value in [
        ("svc-backup", "ip", "10.0.0.5"),
        ("svc-backup", "owner", "team-a"),
        ("eve.external", "seen", "1700000000000"),
    ]:
        added = api.post(
            devconsole.url(f"{TABLES}/{table}"),
            params={"outer_key": outer, "inner_key": inner, "value": value},
            timeout=10,
        )
        assert added.status_code == 200, added.text
    # an inner key declared as IP takes only addresses
    assert_qradar_error(
        api.post(
            devconsole.url(f"{TABLES}/{table}"),
            params={"outer_key": "x", "inner_key": "ip", "value": "not-an-ip"},
            timeout=10,
        ),
        422,
        1005,
    )
    full = api.get(devconsole.url(f"{TABLES}/{table}"), timeout=10).json()
    assert full["number_of_elements"] == 3
    assert {o: {i: e["value"] for i, e in inner.items()} for o, inner in full["data"].items()} == {
        "eve.external": {"seen": "1700000000000"},
        "svc-backup": {"ip": "10.0.0.5", "owner": "team-a"},
    }
    page = api.get(devconsole.url(f"{TABLES}/{table}"), headers={"Range": "items=0-0"}, timeout=10).json()
    assert page["data"] == {"eve.external": full["data"]["eve.external"]}
    assert table in {t["name"] for t in api.get(devconsole.url(TABLES), timeout=10).json()}
    deleted = api.delete(devconsole.url(f"{TABLES}/{table}"), params={"purge_only": "true"}, timeout=10)
    assert deleted.status_code == 202
    assert deleted.headers["Location"].endswith(f"/tasks/{deleted.json()['id']}")
    assert api.get(devconsole.url(f"{TABLES}/{table}"), timeout=10).json()["number_of_elements"] == 0


@pytest.mark.parametrize("collection", [MAPS_OF_SETS, TABLES])
@pytest.mark.parametrize(
    ("method", "suffix", "params", "headers", "user", "status", "code"),
    [
        ("GET", "/missing_collection", {}, {}, "admin", 404, 1002),
        ("DELETE", "/missing_collection", {}, {}, "admin", 404, 1002),
        ("GET", "/{name}", {"namespace": "TENANT"}, {}, "admin", 422, 1012),
        ("GET", "/{name}", {}, {"Range": "items=x"}, "admin", 422, 36),
        ("POST", "", {"name": "{name}", "element_type": "ALN"}, {}, "admin", 409, 1004),
        ("POST", "", {"name": "other", "element_type": "TEXT"}, {}, "admin", 422, 1005),
        ("POST", "", {"element_type": "ALN"}, {}, "admin", 422, 1005),
        (
            "POST",
            "",
            {"name": "other", "element_type": "ALN", "time_to_live": "soon"},
            {},
            "admin",
            422,
            1005,
        ),
        ("POST", "", {"name": "other", "element_type": "ALN"}, {}, "analyst", 403, 26),
        ("DELETE", "/{name}", {"purge_only": "maybe"}, {}, "admin", 422, 1005),
        ("GET", "", {"filter": "name=="}, {}, "admin", 422, 1005),
    ],
)
def test_collection_errors(
    devconsole, assert_qradar_error, collection, method, suffix, params, headers, user, status, code
):
    existing = name("err")
    made = devconsole.api().post(
        devconsole.url(collection), params={"name": existing, "element_type": "ALN"}, timeout=10
    )
    assert made.status_code == 201
    params = {k: v.replace("{name}", existing) for k, v in params.items()}
    response = devconsole.api(user).request(
        method,
        devconsole.url(collection + suffix.replace("{name}", existing)),
        params=params,
        headers=headers,
        timeout=10,
    )
    assert_qradar_error(response, status, code)


@pytest.mark.parametrize(
    ("collection", "params"),
    [
        (MAPS_OF_SETS, {"key": "k"}),
        (MAPS_OF_SETS, {"value": "v"}),
        (TABLES, {"outer_key": "o", "value": "v"}),
        (TABLES, {"outer_key": "o", "inner_key": "i"}),
    ],
)
def test_adding_without_a_required_parameter_is_422_1005(devconsole, assert_qradar_error, collection, params):
    existing = name("add")
    devconsole.api().post(
        devconsole.url(collection), params={"name": existing, "element_type": "ALN"}, timeout=10
    )
    response = devconsole.api().post(devconsole.url(f"{collection}/{existing}"), params=params, timeout=10)
    assert_qradar_error(response, 422, 1005)


def test_table_key_name_types_must_be_a_json_array_of_typed_keys(devconsole, assert_qradar_error):
    for bad in ['{"ip": "IP"}', "not json", '[{"key_name": "ip", "element_type": "TEXT"}]', "[1]"]:
        response = devconsole.api().post(
            devconsole.url(TABLES),
            params={"name": name("kt"), "element_type": "ALN", "key_name_types": bad},
            timeout=10,
        )
        assert_qradar_error(response, 422, 1005)


def test_aql_reads_what_the_rest_api_stored(devconsole):
    """REFERENCEMAPSETCONTAINS and REFERENCETABLE see the entries added through the REST API."""
    api = devconsole.api()
    mos, table = name("mos_aql"), name("tbl_aql")
    for collection, collection_name in [(MAPS_OF_SETS, mos), (TABLES, table)]:
        made = api.post(
            devconsole.url(collection), params={"name": collection_name, "element_type": "ALN"}, timeout=10
        )
        assert made.status_code == 201
    api.post(
        devconsole.url(f"{MAPS_OF_SETS}/{mos}"), params={"key": "alice", "value": "svc-backup"}, timeout=10
    )
    api.post(
        devconsole.url(f"{TABLES}/{table}"),
        params={"outer_key": "svc-backup", "inner_key": "owner", "value": "team-a"},
        timeout=10,
    )
    status, rows = devconsole.run_search(
        f"SELECT REFERENCETABLE('{table}', 'owner', 'svc-backup') AS o,"
        f" REFERENCEMAPSETCONTAINS('{mos}', 'alice', 'svc-backup') AS c,"
        f" REFERENCEMAPSETCONTAINS('{mos}', 'alice', 'other') AS d"
        f" FROM events LIMIT 1 {devconsole.window_covering_all_events()}"
    )
    assert status["status"] == "COMPLETED"
    assert rows == [{"o": "team-a", "c": True, "d": False}]
