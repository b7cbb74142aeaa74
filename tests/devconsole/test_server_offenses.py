"""Offenses over real HTTPS: list with filter, sort, Range and fields; one offense with the documented
fields computed from its linked events; offense types; INOFFENSE in AQL returns exactly those events."""

from __future__ import annotations

from collections import Counter
from contextlib import closing

import pytest

OFFENSES = "/api/siem/offenses"
DOCUMENTED_FIELDS = {
    "id",
    "description",
    "offense_type",
    "offense_source",
    "magnitude",
    "severity",
    "credibility",
    "relevance",
    "status",
    "start_time",
    "last_updated_time",
    "last_persisted_time",
    "first_persisted_time",
    "close_time",
    "categories",
    "log_sources",
    "rules",
    "event_count",
    "flow_count",
    "source_count",
    "username_count",
    "assigned_to",
    "closing_reason_id",
    "follow_up",
    "protected",
    "domain_id",
    "source_address_ids",
    "local_destination_address_ids",
}


@pytest.fixture(scope="module")
def offense_rows(devconsole):
    with closing(devconsole.db()) as conn:
        rows = [dict(r) for r in conn.execute("SELECT * FROM offenses ORDER BY id")]
    assert rows, "the scenario creates offenses for the attack chains"
    return rows


def linked_events(devconsole, offense_id: int) -> list[dict]:
    with closing(devconsole.db()) as conn:
        return [
            dict(r)
            for r in conn.execute(
                "SELECT e.* FROM offense_events oe JOIN events e ON e.id = oe.event_id"
                " WHERE oe.offense_id = ?",
                (offense_id,),
            )
        ]


def test_list_has_every_offense(devconsole, offense_rows):
    items = devconsole.api().get(devconsole.url(OFFENSES), timeout=10).json()
    assert [item["id"] for item in items] == [row["id"] for row in offense_rows]


def test_filter_by_status_and_id(devconsole, offense_rows):
    api = devconsole.api()
    open_items = api.get(devconsole.url(OFFENSES), params={"filter": "status=OPEN"}, timeout=10).json()
    assert [i["id"] for i in open_items] == [r["id"] for r in offense_rows if r["status"] == "OPEN"]
    wanted = offense_rows[-1]["id"]
    one = api.get(devconsole.url(OFFENSES), params={"filter": f"id={wanted}"}, timeout=10).json()
    assert [i["id"] for i in one] == [wanted]


def test_sort_by_start_time_descending_with_range(devconsole, offense_rows):
    api = devconsole.api()
    everything = api.get(devconsole.url(OFFENSES), params={"sort": "-start_time"}, timeout=10).json()
    starts = [item["start_time"] for item in everything]
    assert starts == sorted((r["start_time"] for r in offense_rows), reverse=True)
    page = api.get(
        devconsole.url(OFFENSES), params={"sort": "-start_time"}, headers={"Range": "items=0-0"}, timeout=10
    )
    assert page.json() == everything[:1]
    assert page.headers["Content-Range"] == f"items 0-0/{len(offense_rows)}"


def test_fields_parameter_projects(devconsole, offense_rows):
    items = (
        devconsole.api()
        .get(devconsole.url(OFFENSES), params={"fields": "id,status,log_sources(name)"}, timeout=10)
        .json()
    )
    assert all(set(item) == {"id", "status", "log_sources"} for item in items)
    assert all(set(ls) == {"name"} for item in items for ls in item["log_sources"])


def test_one_offense_has_the_documented_fields_from_its_events(devconsole, offense_rows):
    row = offense_rows[0]
    offense = devconsole.api("analyst").get(devconsole.url(f"{OFFENSES}/{row['id']}"), timeout=10).json()
    assert set(offense) >= DOCUMENTED_FIELDS
    events = linked_events(devconsole, row["id"])
    assert events, "an offense links the events that made it"
    assert offense["description"] == row["description"]
    assert offense["event_count"] == sum(e["eventcount"] for e in events)
    assert offense["username_count"] == len({e["username"] for e in events if e["username"] is not None})
    with closing(devconsole.db()) as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM categories WHERE id IN ({})".format(",".join("?" * len(events))),
                [e["category"] for e in events],
            )
        }
        sources = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT ls.id, lst.name FROM log_sources ls JOIN log_source_types lst ON lst.id = ls.type_id"
            )
        }
    assert set(offense["categories"]) == names
    assert {ls["id"] for ls in offense["log_sources"]} == {e["logsourceid"] for e in events}
    assert all(ls["type_name"] == sources[ls["id"]] for ls in offense["log_sources"])
    assert all({"id", "type"} <= set(rule) for rule in offense["rules"])


def test_missing_or_malformed_offense_id(devconsole, assert_qradar_error):
    api = devconsole.api()
    assert_qradar_error(api.get(devconsole.url(f"{OFFENSES}/987654321"), timeout=10), 404, 1002)
    assert_qradar_error(api.get(devconsole.url(f"{OFFENSES}/abc"), timeout=10), 422, 1005)


def test_offense_types(devconsole):
    types = {
        t["id"]: t["name"]
        for t in devconsole.api().get(devconsole.url("/api/siem/offense_types"), timeout=10).json()
    }
    assert types[0] == "Source IP"
    assert types[3] == "Username"


def test_inoffense_returns_exactly_the_linked_events(devconsole, offense_rows):
    for row in offense_rows[:3]:
        window = devconsole.window_covering_all_events()
        status, rows = devconsole.run_search(
            f"SELECT starttime, qid, username FROM events WHERE INOFFENSE({row['id']}) "
            f"ORDER BY starttime ASC LIMIT 10000 {window}"
        )
        assert status["status"] == "COMPLETED"
        expected = Counter(
            (e["starttime"], e["qid"], e["username"]) for e in linked_events(devconsole, row["id"])
        )
        assert Counter((r["starttime"], r["qid"], r["username"]) for r in rows) == expected


def test_offenses_match_the_scenario_manifest(devconsole):
    expected = devconsole.scenario["offenses"]
    assert expected, "the scenario manifest lists its offenses"
    served = {o["id"]: o for o in devconsole.api().get(devconsole.url(OFFENSES), timeout=10).json()}
    assert set(served) == {o["id"] for o in expected}
    for offense in expected:
        got = served[offense["id"]]
        assert (got["description"], got["status"], got["offense_source"]) == (
            offense["description"],
            offense["status"],
            offense["offense_source"],
        )
        linked = linked_events(devconsole, offense["id"])
        assert sorted(e["id"] for e in linked) == sorted(offense["event_ids"])
        assert got["event_count"] == sum(e["eventcount"] for e in linked)
