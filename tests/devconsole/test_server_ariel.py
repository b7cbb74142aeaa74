"""The Ariel search lifecycle over real HTTPS: create (query parameter or form body), poll, Prefer: wait,
results with inclusive Range paging, cancel, delete, errors, databases and the AQL validator."""

from __future__ import annotations

import time
import uuid
from contextlib import closing

import pytest

RUNNING = ("WAIT", "EXECUTE", "SORTING")
SEARCH_FIELDS = {
    "search_id",
    "status",
    "progress",
    "record_count",
    "error_messages",
    "query_string",
    "cursor_id",
    "processed_record_count",
    "query_execution_time",
    "save_results",
}


def unique_alias() -> str:
    # A distinct alias keeps the query string unique, so the console never reuses an earlier search.
    return "a" + uuid.uuid4().hex[:10]


def wait_until_finished(devconsole, api, search_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(
            devconsole.url(f"/api/ariel/searches/{search_id}"), headers={"Prefer": "wait=5"}, timeout=30
        )
        body = response.json()
        if body["status"] not in RUNNING:
            assert response.status_code == 200
            return body
        assert response.status_code == 206
        assert time.monotonic() < deadline, body


def create_search(devconsole, api, aql: str) -> dict:
    """POST ``aql`` as the query_expression parameter; the search QRadar created (201)."""
    response = api.post(devconsole.url("/api/ariel/searches"), params={"query_expression": aql}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def start_search(devconsole, api) -> str:
    """The id of a new search over the last hour (a unique query, so never a reused search)."""
    return create_search(devconsole, api, f"SELECT qid AS {unique_alias()} FROM events LAST 1 HOURS")[
        "search_id"
    ]


@pytest.fixture
def slow_searches(devconsole):
    devconsole.faults.slow_searches(4)
    yield
    devconsole.faults.clear()


def test_count_of_all_events_matches_the_store(devconsole):
    status, rows = devconsole.run_search(
        f"SELECT COUNT(*) AS n FROM events {devconsole.window_covering_all_events()}"
    )
    with closing(devconsole.db()) as conn:
        expected = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert status["status"] == "COMPLETED"
    assert status["progress"] == 100
    assert rows == [{"n": expected}]
    assert status["record_count"] == 1


def test_create_returns_201_and_the_search_object(devconsole):
    api = devconsole.api()
    aql = f"SELECT qid AS {unique_alias()} FROM events LIMIT 5 LAST 1 HOURS"
    body = create_search(devconsole, api, aql)
    assert set(body) >= SEARCH_FIELDS
    assert body["query_string"] == aql
    assert body["status"] in (*RUNNING, "COMPLETED")
    assert 0 <= body["progress"] <= 100
    finished = wait_until_finished(devconsole, api, body["search_id"])
    assert finished["status"] == "COMPLETED"
    assert finished["error_messages"] == []


def test_query_expression_in_a_form_body(devconsole):
    api = devconsole.api()
    aql = f"SELECT COUNT(*) AS {unique_alias()} FROM events LAST 2 HOURS"
    response = api.post(devconsole.url("/api/ariel/searches"), data={"query_expression": aql}, timeout=30)
    assert response.status_code == 201, response.text
    assert response.json()["query_string"] == aql


def test_query_expression_as_json_body_is_refused(devconsole, assert_qradar_error):
    response = devconsole.api().post(
        devconsole.url("/api/ariel/searches"),
        json={"query_expression": "SELECT qid FROM events LAST 1 HOURS"},
        timeout=30,
    )
    body = assert_qradar_error(response, 422, 1005)
    assert "query_expression" in body["message"]


def test_missing_query_expression_is_422_and_saved_search_404(devconsole, assert_qradar_error):
    api = devconsole.api()
    assert_qradar_error(api.post(devconsole.url("/api/ariel/searches"), timeout=30), 422, 1005)
    assert_qradar_error(
        api.post(devconsole.url("/api/ariel/searches"), params={"saved_search_id": "7"}, timeout=30),
        404,
        1002,
    )


@pytest.mark.parametrize(
    "aql",
    [
        "SELEC qid FROM events LAST 1 HOURS",
        "SELECT qid FROM events WHERE LOGSOURCETYPEID IN (SELECT id FROM SDE_LogSourceType) LAST 1 DAYS",
        "SELECT qid FROM events WHERE starttime > NOW() - 1 DAYS",
    ],
)
def test_invalid_aql_is_422_2000_naming_the_problem(devconsole, aql, assert_qradar_error):
    response = devconsole.api().post(
        devconsole.url("/api/ariel/searches"), params={"query_expression": aql}, timeout=30
    )
    body = assert_qradar_error(response, 422, 2000)
    assert len(body["message"]) > 10


def test_identical_search_from_the_same_user_is_reused(devconsole):
    aql = f"SELECT qid AS {unique_alias()} FROM events LIMIT 3 LAST 1 HOURS"
    first = create_search(devconsole, devconsole.api(), aql)
    again = create_search(devconsole, devconsole.api(), aql)
    other_user = create_search(devconsole, devconsole.api("tuner1"), aql)
    assert again["search_id"] == first["search_id"]
    assert other_user["search_id"] != first["search_id"]


def test_results_page_with_inclusive_range(devconsole):
    api = devconsole.api()
    window = devconsole.window_covering_all_events()
    aql = f"SELECT starttime AS {unique_alias()}, qid FROM events ORDER BY starttime ASC LIMIT 40 {window}"
    search_id = create_search(devconsole, api, aql)["search_id"]
    assert wait_until_finished(devconsole, api, search_id)["record_count"] == 40
    url = devconsole.url(f"/api/ariel/searches/{search_id}/results")
    everything = api.get(url, timeout=30).json()["events"]
    pages = []
    for start in range(0, 40, 15):
        end = min(start + 14, 39)
        page = api.get(url, headers={"Range": f"items={start}-{end}"}, timeout=30)
        assert page.status_code == 200
        assert page.headers["Content-Range"] == f"items {start}-{end}/40"
        assert len(page.json()["events"]) == end - start + 1
        pages.extend(page.json()["events"])
    assert pages == everything
    with closing(devconsole.db()) as conn:
        oldest = [r[0] for r in conn.execute("SELECT starttime FROM events ORDER BY starttime LIMIT 40")]
    alias = next(key for key in everything[0] if key != "qid")
    assert [row[alias] for row in everything] == oldest


def test_malformed_range_on_results_is_422_36(devconsole, assert_qradar_error):
    api = devconsole.api()
    search_id = start_search(devconsole, api)
    wait_until_finished(devconsole, api, search_id)
    response = api.get(
        devconsole.url(f"/api/ariel/searches/{search_id}/results"), headers={"Range": "items=0-"}, timeout=30
    )
    assert_qradar_error(response, 422, 36)


def test_results_as_csv(devconsole):
    api = devconsole.api()
    alias = unique_alias()
    aql = f"SELECT qid AS {alias}, devicetype FROM events LIMIT 4 {devconsole.window_covering_all_events()}"
    search_id = create_search(devconsole, api, aql)["search_id"]
    wait_until_finished(devconsole, api, search_id)
    response = api.get(
        devconsole.url(f"/api/ariel/searches/{search_id}/results"),
        headers={"Accept": "application/csv"},
        timeout=30,
    )
    lines = response.text.strip().splitlines()
    assert lines[0] == f"{alias},devicetype"
    assert len(lines) == 5


def test_slow_search_reports_progress_and_results_are_not_ready(
    devconsole, slow_searches, assert_qradar_error
):
    api = devconsole.api()
    search_id = start_search(devconsole, api)
    not_ready = api.get(devconsole.url(f"/api/ariel/searches/{search_id}/results"), timeout=30)
    assert_qradar_error(not_ready, 404, 1003)
    seen = []
    while True:
        body = api.get(devconsole.url(f"/api/ariel/searches/{search_id}"), timeout=30).json()
        seen.append((body["status"], body["progress"]))
        if body["status"] not in RUNNING:
            break
        time.sleep(0.2)
    assert seen[-1] == ("COMPLETED", 100)
    assert any(status == "EXECUTE" and 0 < progress < 100 for status, progress in seen), seen
    progresses = [progress for _, progress in seen]
    assert progresses == sorted(progresses)


def test_prefer_wait_answers_206_while_running(devconsole, slow_searches):
    api = devconsole.api()
    search_id = start_search(devconsole, api)
    response = api.get(
        devconsole.url(f"/api/ariel/searches/{search_id}"), headers={"Prefer": "wait=1"}, timeout=30
    )
    assert response.status_code == 206
    assert response.json()["status"] in RUNNING
    done = api.get(
        devconsole.url(f"/api/ariel/searches/{search_id}"), headers={"Prefer": "wait=60"}, timeout=90
    )
    assert done.status_code == 200
    assert done.json()["status"] == "COMPLETED"


def test_cancel_a_running_search(devconsole, slow_searches):
    api = devconsole.api()
    search_id = start_search(devconsole, api)
    response = api.post(
        devconsole.url(f"/api/ariel/searches/{search_id}"), params={"status": "CANCELED"}, timeout=30
    )
    assert response.status_code == 200
    final = wait_until_finished(devconsole, api, search_id)
    assert final["status"] == "CANCELED"
    kept = api.get(devconsole.url(f"/api/ariel/searches/{search_id}/results"), timeout=30)
    assert kept.status_code == 200
    assert kept.json() == {"events": []}


# API 26.0 POST /ariel/searches/{search_id}: status "The only accepted value is CANCELED", save_results
# "The only accepted value is true"; anything else is 422/1005. qpylib's cancel() spelling is refused.
@pytest.mark.parametrize(
    "params",
    [
        {"status": "CANCELLED"},
        {"status": "canceled"},
        {"status": "RUNNING"},
        {"save_results": "false"},
        {"save_results": "yes"},
        {},
    ],
)
def test_bad_status_update_is_422_1005(devconsole, assert_qradar_error, params):
    api = devconsole.api()
    search_id = start_search(devconsole, api)
    response = api.post(devconsole.url(f"/api/ariel/searches/{search_id}"), params=params, timeout=30)
    assert_qradar_error(response, 422, 1005)
    assert (
        api.get(devconsole.url(f"/api/ariel/searches/{search_id}"), timeout=30).json()["status"] != "CANCELED"
    )


def test_status_canceled_ignores_save_results(devconsole, slow_searches):
    api = devconsole.api()
    search_id = start_search(devconsole, api)
    response = api.post(
        devconsole.url(f"/api/ariel/searches/{search_id}"),
        params={"status": "CANCELED", "save_results": "maybe"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["save_results"] is False
    assert wait_until_finished(devconsole, api, search_id)["status"] == "CANCELED"


def test_delete_returns_202_then_the_search_is_gone(devconsole, assert_qradar_error):
    api = devconsole.api()
    search_id = start_search(devconsole, api)
    assert search_id in api.get(devconsole.url("/api/ariel/searches"), timeout=30).json()
    deleted = api.delete(devconsole.url(f"/api/ariel/searches/{search_id}"), timeout=30)
    assert deleted.status_code == 202
    assert_qradar_error(api.get(devconsole.url(f"/api/ariel/searches/{search_id}"), timeout=30), 404, 1002)
    assert_qradar_error(
        api.get(devconsole.url(f"/api/ariel/searches/{search_id}/results"), timeout=30), 404, 1002
    )
    assert search_id not in api.get(devconsole.url("/api/ariel/searches"), timeout=30).json()


def test_unknown_search_is_404_1002_on_every_method(devconsole, assert_qradar_error):
    api = devconsole.api()
    url = devconsole.url("/api/ariel/searches/00000000-0000-0000-0000-000000000000")
    assert_qradar_error(api.get(url, timeout=30), 404, 1002)
    assert_qradar_error(api.post(url, params={"status": "CANCELED"}, timeout=30), 404, 1002)
    assert_qradar_error(api.delete(url, timeout=30), 404, 1002)
    assert_qradar_error(api.get(url + "/results", timeout=30), 404, 1002)


def test_another_users_search_is_not_visible(devconsole, assert_qradar_error):
    search_id = start_search(devconsole, devconsole.api())
    response = devconsole.api("analyst").get(devconsole.url(f"/api/ariel/searches/{search_id}"), timeout=30)
    assert_qradar_error(response, 404, 1002)


def test_databases_and_event_columns(devconsole, assert_qradar_error):
    api = devconsole.api()
    assert api.get(devconsole.url("/api/ariel/databases"), timeout=30).json() == ["events", "flows"]
    columns = api.get(devconsole.url("/api/ariel/databases/events"), timeout=30).json()["columns"]
    names = {c["name"] for c in columns}
    assert {"starttime", "qid", "devicetype", "logsourceid", "username", "sourceip", "payload"} <= names
    with closing(devconsole.db()) as conn:
        custom = {r[0] for r in conn.execute("SELECT name FROM custom_properties")}
    assert custom <= names
    assert {"name", "argument_type", "indexable", "nullable", "provider_name"} <= set(columns[0])
    assert_qradar_error(
        api.get(devconsole.url("/api/ariel/databases/SDE_LogSourceType"), timeout=30), 404, 1002
    )


@pytest.mark.parametrize("database", ["events", "flows"])
def test_every_listed_column_can_be_selected(devconsole, database):
    """/api/ariel/databases and the AQL engine agree: each database listed runs, over each column listed."""
    api = devconsole.api()
    columns = api.get(devconsole.url(f"/api/ariel/databases/{database}"), timeout=30).json()["columns"]
    listed = ", ".join(f'"{c["name"]}"' for c in columns)
    validated = api.post(
        devconsole.url("/api/ariel/validators/aql"),
        params={"query_expression": f"SELECT {listed} FROM {database} LAST 1 HOURS"},
        timeout=30,
    )
    assert validated.json()["error_messages"] == []
    created = create_search(devconsole, api, f"SELECT {listed} FROM {database} LAST 1 HOURS")
    assert wait_until_finished(devconsole, api, created["search_id"])["status"] == "COMPLETED"
    results = api.get(devconsole.url(f"/api/ariel/searches/{created['search_id']}/results"), timeout=30)
    assert list(results.json()) == [database]
    if database == "flows":
        assert results.json() == {"flows": []}  # the console records no flows


def test_validator_reports_errors_without_running(devconsole):
    api = devconsole.api()
    valid = api.post(
        devconsole.url("/api/ariel/validators/aql"),
        params={"query_expression": "SELECT qid FROM events LAST 1 HOURS"},
        timeout=30,
    )
    assert valid.status_code == 200
    assert valid.json()["error_messages"] == []
    invalid = api.post(
        devconsole.url("/api/ariel/validators/aql"),
        params={"query_expression": "SELECT qid FROM events WHERE starttime > NOW() - 1 DAYS"},
        timeout=30,
    )
    assert invalid.status_code == 200
    messages = invalid.json()["error_messages"]
    assert messages
    assert messages[0]["severity"] == "ERROR"
    assert messages[0]["message"]
