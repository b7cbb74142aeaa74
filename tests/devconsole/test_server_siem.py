"""API 26.0 endpoints outside clients call, over real HTTPS on a console serving the hand-built event set of
tests/devconsole/aql_cases/fixture.py (its table gives the expected answers): /system/about, offense
closing reasons and notes, the source and local destination addresses of offenses, analytics rules, and
Ariel's INTO / PARAMETERS as the search object shows them. Fields, filters, Range paging and error codes
are the ones API 26.0 documents."""

from __future__ import annotations

import time

import pytest

from devconsole.store import EventStore
from tests.conftest import REPO_ROOT, free_port, start_devconsole, stop_devconsole
from tests.devconsole.aql_cases.fixture import MINUTE, NOW, build_store

# every event of the fixture (the oldest is 2000 minutes before NOW)
ALL_EVENTS = f"START {NOW - 2100 * MINUTE} STOP {NOW + MINUTE}"
NOTE_FIELDS = {"create_time", "id", "note_text", "username"}
SOURCE_FIELDS = {
    "domain_id",
    "event_flow_count",
    "first_event_flow_seen",
    "id",
    "last_event_flow_seen",
    "local_destination_address_ids",
    "magnitude",
    "network",
    "offense_ids",
    "source_ip",
}
DESTINATION_FIELDS = SOURCE_FIELDS - {"source_ip", "local_destination_address_ids"} | {
    "local_destination_ip",
    "source_address_ids",
}
RULE_FIELDS = {
    "average_capacity",
    "base_capacity",
    "base_host_id",
    "capacity_timestamp",
    "creation_date",
    "enabled",
    "id",
    "identifier",
    "linked_rule_identifier",
    "modification_date",
    "name",
    "origin",
    "owner",
    "type",
}


@pytest.fixture(scope="module")
def hand_console(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("hand-console")
    store = build_store(data_dir / "events.db")
    store.add_closing_reason("Reserved by the system", reserved=True)
    store.add_closing_reason("An old reason", deleted=True)
    console = start_devconsole(data_dir, free_port(), REPO_ROOT / "manifest.json")
    yield console
    stop_devconsole(console)


def get(console, path: str, user: str = "admin", **kwargs):
    return console.api(user).get(console.url(path), timeout=30, **kwargs)


def post(console, path: str, user: str = "admin", **kwargs):
    return console.api(user).post(console.url(path), timeout=30, **kwargs)


# --- /system/about ---------------------------------------------------------------------------------


def test_system_about_has_api_26_fields(hand_console):
    about = get(hand_console, "/api/system/about")
    assert about.status_code == 200
    body = about.json()
    assert set(body) == {"build_version", "external_version", "fips_enabled", "release_name"}
    assert body["external_version"] == "7.5.0"
    assert body["fips_enabled"] is False
    only = get(hand_console, "/api/system/about", params={"fields": "release_name"})
    assert only.json() == {"release_name": body["release_name"]}


# --- closing reasons --------------------------------------------------------------------------------

BUILTIN_REASONS = ["Non-Issue", "False-Positive, Tuned", "Policy Violation"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, BUILTIN_REASONS),
        ({"include_reserved": "true"}, [*BUILTIN_REASONS, "Reserved by the system"]),
        ({"include_deleted": "true"}, [*BUILTIN_REASONS, "An old reason"]),
        (
            {"include_reserved": "true", "include_deleted": "true"},
            [*BUILTIN_REASONS, "Reserved by the system", "An old reason"],
        ),
        ({"include_reserved": "false", "filter": 'text="Policy Violation"'}, ["Policy Violation"]),
    ],
)
def test_closing_reasons_list(hand_console, params, expected):
    response = get(hand_console, "/api/siem/offense_closing_reasons", params=params)
    assert response.status_code == 200
    items = response.json()
    assert [item["text"] for item in items if not item["text"].startswith("Tuned ")] == expected
    assert all(set(item) == {"id", "is_deleted", "is_reserved", "text"} for item in items)


def test_closing_reason_by_id_and_created(hand_console, assert_qradar_error):
    first = get(hand_console, "/api/siem/offense_closing_reasons/1")
    assert first.json() == {"id": 1, "is_deleted": False, "is_reserved": False, "text": "Non-Issue"}
    created = post(hand_console, "/api/siem/offense_closing_reasons", params={"reason": "Tuned by the app"})
    assert created.status_code == 201
    assert created.json()["text"] == "Tuned by the app"
    again = get(hand_console, f"/api/siem/offense_closing_reasons/{created.json()['id']}")
    assert again.json() == created.json()
    duplicate = post(hand_console, "/api/siem/offense_closing_reasons", params={"reason": "Tuned by the app"})
    assert_qradar_error(duplicate, 409, 1004)


@pytest.mark.parametrize(
    ("method", "path", "params", "user", "status", "code"),
    [
        ("GET", "/api/siem/offense_closing_reasons/999", {}, "admin", 404, 1002),
        ("GET", "/api/siem/offense_closing_reasons/abc", {}, "admin", 422, 1005),
        ("GET", "/api/siem/offense_closing_reasons", {"include_deleted": "maybe"}, "admin", 422, 1005),
        ("GET", "/api/siem/offense_closing_reasons", {"filter": "text=="}, "admin", 422, 1005),
        ("POST", "/api/siem/offense_closing_reasons", {"reason": "abcd"}, "admin", 422, 1005),
        ("POST", "/api/siem/offense_closing_reasons", {"reason": "x" * 61}, "admin", 422, 1005),
        ("POST", "/api/siem/offense_closing_reasons", {}, "admin", 422, 1005),
        ("POST", "/api/siem/offense_closing_reasons", {"reason": "Analyst's own"}, "analyst", 403, 26),
    ],
)
def test_closing_reason_errors(hand_console, assert_qradar_error, method, path, params, user, status, code):
    response = hand_console.api(user).request(method, hand_console.url(path), params=params, timeout=30)
    assert_qradar_error(response, status, code)


# --- offense notes ---------------------------------------------------------------------------------


def test_offense_notes_are_created_listed_paged_and_read_back(hand_console):
    before = int(time.time() * 1000)
    texts = ["First look: svc-backup created by alice", "Chain (b) confirmed", "Closed with owner"]
    created = []
    for text, user in zip(texts, ["admin", "analyst", "admin"], strict=True):
        response = post(hand_console, "/api/siem/offenses/1/notes", user=user, params={"note_text": text})
        assert response.status_code == 201, response.text
        note = response.json()
        assert set(note) == NOTE_FIELDS
        assert (note["note_text"], note["username"]) == (text, user)
        assert before <= note["create_time"] <= int(time.time() * 1000)
        created.append(note)
    listed = get(hand_console, "/api/siem/offenses/1/notes")
    assert listed.json() == created
    assert get(hand_console, "/api/siem/offenses/2/notes").json() == []
    page = get(hand_console, "/api/siem/offenses/1/notes", headers={"Range": "items=1-2"})
    assert page.json() == created[1:]
    assert page.headers["Content-Range"] == "items 1-2/3"
    by_analyst = get(hand_console, "/api/siem/offenses/1/notes", params={"filter": 'username="analyst"'})
    assert by_analyst.json() == [created[1]]
    slim = get(hand_console, "/api/siem/offenses/1/notes", params={"fields": "id,note_text"})
    assert slim.json() == [{"id": n["id"], "note_text": n["note_text"]} for n in created]
    one = get(hand_console, f"/api/siem/offenses/1/notes/{created[2]['id']}")
    assert one.json() == created[2]


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "code"),
    [
        ("GET", "/api/siem/offenses/99/notes", {}, 404, 1002),
        ("POST", "/api/siem/offenses/99/notes", {"note_text": "x"}, 404, 1002),
        ("GET", "/api/siem/offenses/99/notes/1", {}, 404, 1002),
        ("GET", "/api/siem/offenses/2/notes/123456", {}, 404, 1003),
        ("GET", "/api/siem/offenses/abc/notes", {}, 422, 1005),
        ("GET", "/api/siem/offenses/1/notes/abc", {}, 422, 1005),
        ("POST", "/api/siem/offenses/1/notes", {}, 422, 1005),
        ("POST", "/api/siem/offenses/1/notes", {"note_text": "   "}, 422, 1005),
        ("GET", "/api/siem/offenses/1/notes", {"filter": "nosuchfield=1"}, 422, 1005),
    ],
)
def test_offense_note_errors(hand_console, assert_qradar_error, method, path, params, status, code):
    response = hand_console.api().request(method, hand_console.url(path), params=params, timeout=30)
    assert_qradar_error(response, status, code)


# --- source and local destination addresses --------------------------------------------------------


def test_source_and_local_destination_addresses(hand_console):
    sources = get(hand_console, "/api/siem/source_addresses").json()
    destinations = get(hand_console, "/api/siem/local_destination_addresses").json()
    assert all(set(item) == SOURCE_FIELDS for item in sources)
    assert all(set(item) == DESTINATION_FIELDS for item in destinations)
    by_ip = {item["source_ip"]: item for item in sources}
    assert set(by_ip) == {"10.0.0.5", "198.51.100.1"}  # offense 1: events 1, 2; offense 2: event 9
    [local] = destinations
    assert local["local_destination_ip"] == "10.9.9.9"
    inside = by_ip["10.0.0.5"]
    assert (inside["magnitude"], inside["event_flow_count"], inside["offense_ids"]) == (6, 3, [1])
    assert (inside["first_event_flow_seen"], inside["last_event_flow_seen"]) == (
        NOW - 2 * MINUTE,
        NOW - MINUTE,
    )
    assert inside["network"] == "Net-10-172-192.Net_10_0_0_0"
    assert inside["local_destination_address_ids"] == [local["id"]]
    outside = by_ip["198.51.100.1"]
    assert (outside["magnitude"], outside["event_flow_count"], outside["offense_ids"]) == (9, 1, [2])
    assert outside["network"] == "other"
    assert (local["magnitude"], local["event_flow_count"], local["offense_ids"]) == (9, 4, [1, 2])
    assert local["source_address_ids"] == sorted(item["id"] for item in sources)
    assert (local["first_event_flow_seen"], local["last_event_flow_seen"]) == (
        NOW - 2000 * MINUTE,
        NOW - MINUTE,
    )
    # the offenses name the same ids
    offense = get(hand_console, "/api/siem/offenses/1").json()
    assert offense["source_address_ids"] == [inside["id"]]
    assert offense["local_destination_address_ids"] == [local["id"]]
    assert (offense["local_destination_count"], offense["remote_destination_count"]) == (1, 0)
    # filter, Range, fields and the single-address endpoints
    filtered = get(hand_console, "/api/siem/source_addresses", params={"filter": "offense_ids=2"})
    assert filtered.json() == [outside]
    paged = get(hand_console, "/api/siem/source_addresses", headers={"Range": "items=1-1"})
    assert paged.json() == sources[1:2]
    assert paged.headers["Content-Range"] == "items 1-1/2"
    slim = get(
        hand_console, "/api/siem/local_destination_addresses", params={"fields": "id,local_destination_ip"}
    )
    assert slim.json() == [{"id": local["id"], "local_destination_ip": "10.9.9.9"}]
    assert get(hand_console, f"/api/siem/source_addresses/{inside['id']}").json() == inside
    assert get(hand_console, f"/api/siem/local_destination_addresses/{local['id']}").json() == local


@pytest.mark.parametrize(
    ("path", "params", "headers", "status", "code"),
    [
        ("/api/siem/source_addresses", {"filter": "source_ip=="}, {}, 422, 1010),
        ("/api/siem/local_destination_addresses", {"filter": "nosuch=1"}, {}, 422, 1010),
        ("/api/siem/source_addresses", {}, {"Range": "items=2-1"}, 422, 36),
        ("/api/siem/source_addresses", {"fields": "nosuch"}, {}, 422, 1005),
        ("/api/siem/source_addresses/424242", {}, {}, 404, 1002),
        ("/api/siem/local_destination_addresses/424242", {}, {}, 404, 1002),
        ("/api/siem/source_addresses/abc", {}, {}, 422, 1005),
    ],
)
def test_address_errors(hand_console, assert_qradar_error, path, params, headers, status, code):
    assert_qradar_error(get(hand_console, path, params=params, headers=headers), status, code)


# --- analytics rules -------------------------------------------------------------------------------


def test_analytics_rules_list_the_rules_offenses_cite(hand_console, assert_qradar_error):
    rules = get(hand_console, "/api/analytics/rules").json()
    assert all(set(rule) == RULE_FIELDS for rule in rules)
    names = {rule["id"]: rule["name"] for rule in rules}
    assert names == {
        100_052: "Multiple login failures from one source",
        100_411: "Cloud account created (T1136.003)",
    }
    assert all(
        rule["enabled"] is True and rule["type"] == "EVENT" and rule["origin"] == "USER" for rule in rules
    )
    cited = {
        r["id"] for oid in (1, 2) for r in get(hand_console, f"/api/siem/offenses/{oid}").json()["rules"]
    }
    assert cited <= set(names)
    one = get(hand_console, "/api/analytics/rules/100411").json()
    assert one == next(rule for rule in rules if rule["id"] == 100_411)
    named = get(
        hand_console, "/api/analytics/rules", params={"filter": 'name="Cloud account created (T1136.003)"'}
    )
    assert [rule["id"] for rule in named.json()] == [100_411]
    paged = get(hand_console, "/api/analytics/rules", headers={"Range": "items=0-0"})
    assert paged.json() == rules[:1]
    assert paged.headers["Content-Range"] == "items 0-0/2"
    assert_qradar_error(get(hand_console, "/api/analytics/rules/5"), 404, 1002)
    assert_qradar_error(get(hand_console, "/api/analytics/rules", params={"filter": "name=="}), 422, 1010)


def test_every_scenario_offense_cites_a_listed_rule(devconsole):
    api = devconsole.api()
    rule_ids = {rule["id"] for rule in api.get(devconsole.url("/api/analytics/rules"), timeout=30).json()}
    offenses = api.get(devconsole.url("/api/siem/offenses"), timeout=30).json()
    assert offenses
    assert {rule["id"] for offense in offenses for rule in offense["rules"]} <= rule_ids


# --- Ariel INTO and PARAMETERS on the search object ------------------------------------------------


def wait_finished(console, search_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        body = get(console, f"/api/ariel/searches/{search_id}", headers={"Prefer": "wait=5"}).json()
        if body["status"] not in ("WAIT", "EXECUTE", "SORTING"):
            return body
        assert time.monotonic() < deadline, body


def test_into_names_the_search_and_its_results_are_read_back(hand_console, assert_qradar_error):
    query = f"SELECT username, magnitude FROM events INTO cloud_adds WHERE magnitude >= 7 {ALL_EVENTS}"
    created = post(hand_console, "/api/ariel/searches", params={"query_expression": query})
    assert created.status_code == 201, created.text
    assert created.json()["search_id"] == created.json()["cursor_id"] == "cloud_adds"
    assert created.headers["Location"].endswith("/api/ariel/searches/cloud_adds")
    assert wait_finished(hand_console, "cloud_adds")["status"] == "COMPLETED"
    assert "cloud_adds" in get(hand_console, "/api/ariel/searches").json()
    rows = get(hand_console, "/api/ariel/searches/cloud_adds/results").json()["events"]
    assert sorted((r["username"], r["magnitude"]) for r in rows) == [
        ("Bob@Contoso.com", 7),
        ("alice", 8),
        ("mallory", 9),
    ]
    # the same name for another query: API 26.0's 409/1004
    other = post(
        hand_console,
        "/api/ariel/searches",
        params={"query_expression": f"SELECT qid FROM events INTO cloud_adds {ALL_EVENTS}"},
    )
    assert_qradar_error(other, 409, 1004)
    # once deleted, the name is free again
    assert (
        hand_console.api().delete(hand_console.url("/api/ariel/searches/cloud_adds"), timeout=30).status_code
        == 202
    )
    again = post(
        hand_console,
        "/api/ariel/searches",
        params={"query_expression": f"SELECT qid FROM events INTO cloud_adds {ALL_EVENTS}"},
    )
    assert again.status_code == 201
    assert wait_finished(hand_console, "cloud_adds")["record_count"] == 10


def test_parameters_shape_snapshot_and_progress_details(hand_console):
    query = (
        "SELECT username, magnitude FROM events INTO snap WHERE magnitude >= 7"
        f" ORDER BY magnitude DESC {ALL_EVENTS} PARAMETERS snapshotsize=2, PROGRESSDETAILSRESOLUTION=5"
    )
    created = post(hand_console, "/api/ariel/searches", params={"query_expression": query})
    assert created.status_code == 201, created.text
    assert len(created.json()["progress_details"]) == 5
    final = wait_finished(hand_console, "snap")
    assert final["snapshot"] == {
        "events": [{"username": "mallory", "magnitude": 9}, {"username": "alice", "magnitude": 8}]
    }
    assert len(final["progress_details"]) == 5
    assert sum(final["progress_details"]) == 10  # every fixture event is in the window
    plain = post(
        hand_console,
        "/api/ariel/searches",
        params={"query_expression": f"SELECT qid FROM events {ALL_EVENTS}"},
    ).json()
    assert (plain["snapshot"], plain["progress_details"]) == (None, [])


def test_ibm_search_sample_is_accepted_as_written(hand_console):
    sample = (
        "SELECT sourceip, starttime, qid, sourceport  from events into s16 where sourceip in "
        "(select destinationip from events) parameters snapshotsize=2, PROGRESSDETAILSRESOLUTION=10"
    )
    created = post(hand_console, "/api/ariel/searches", params={"query_expression": sample})
    assert created.status_code == 201, created.text
    assert created.json()["search_id"] == "s16"
    final = wait_finished(hand_console, "s16")
    assert final["status"] == "COMPLETED"
    assert final["snapshot"] == {"events": []}
    assert len(final["progress_details"]) == 10


def test_flow_search_into_a_name_lists_flows(hand_console):
    created = post(
        hand_console,
        "/api/ariel/searches",
        params={"query_expression": "SELECT sourceip, sourceport FROM flows INTO netflows LAST 1 HOURS"},
    )
    assert created.status_code == 201
    assert wait_finished(hand_console, "netflows")["status"] == "COMPLETED"
    assert get(hand_console, "/api/ariel/searches/netflows/results").json() == {"flows": []}


def test_closing_reasons_added_through_the_store_are_listed(hand_console):
    store = EventStore.in_dir(hand_console.data_dir)
    reason_id = store.add_closing_reason("Added by ingestion")
    listed = get(hand_console, "/api/siem/offense_closing_reasons").json()
    assert {
        "id": reason_id,
        "is_deleted": False,
        "is_reserved": False,
        "text": "Added by ingestion",
    } in listed
