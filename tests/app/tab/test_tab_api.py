"""The tab's own JSON/CSV routes (overview, CSV export, deep links), called through the console proxy, and
the pure helpers behind them."""

from __future__ import annotations

import csv
import io
import itertools
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from app.api.cells import neutralise
from app.tab.links import event_aql

DAY_MS = 86_400_000


def proxy_get(tab_env, user: str, path: str, **params):
    return tab_env.api(user).get(tab_env.live_app.proxy_url(path), params=params, timeout=60)


@pytest.mark.parametrize("cell", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'])
def test_formula_cells_are_neutralised(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["", "alice", "10.0.0.1", "<img src=x onerror=alert(1)>", "a=b", "'quoted"])
def test_other_cells_are_left_alone(cell: str) -> None:
    assert neutralise(cell) == cell


def test_event_aql_quotes_hostile_log_source_names() -> None:
    aql = event_aql({"event_time": 1_700_000_000_123, "qid": 445000007, "log_source": "x' OR 1=1 --"})
    assert "qid = 445000007 AND starttime = 1700000000123" in aql
    assert "LOGSOURCENAME(logsourceid) = 'x'' OR 1=1 --'" in aql
    # a window around the exact time (the literal's granularity is app/aql's business)
    assert aql.endswith("'") and " START '2023-11-14 22:1" in aql and " STOP '2023-11-14 22:1" in aql
    assert event_aql({"event_time": None, "qid": 1}) is None


def test_overview_counts_match_the_detection_list(tab_env) -> None:
    overview = proxy_get(tab_env, "analyst", "api/overview", window="7d")
    assert overview.status_code == 200, overview.text
    data = overview.json()
    window = {"start": data["start_ms"], "end": data["end_ms"]}
    assert data["end_ms"] - data["start_ms"] == 7 * DAY_MS

    def total(**filters) -> int:
        return tab_env.get("analyst", "api/detections", limit=1, **window, **filters)["total"]

    assert data["total"] == total(suppressed="false") > 0
    assert data["suppressed"] == total(suppressed="true")
    assert data["service_accounts"] == total(suppressed="false", service_accounts="true")
    for item in data["by_platform"]:
        assert item["count"] == total(suppressed="false", platform=item["platform"])
    assert sum(item["count"] for item in data["by_platform"]) == data["total"]
    # the hourly timeline adds up to the same total and covers the window hour by hour
    assert sum(sum(b["counts"].values()) for b in data["timeline"]) == data["total"]
    hours = [b["hour_ms"] for b in data["timeline"]]
    assert all(b - a == 3_600_000 for a, b in itertools.pairwise(hours))
    chained = tab_env.get(
        "analyst", "api/detections", limit=500, suppressed="false", chains_only="true", **window
    )["items"]
    assert data["chains"] == len({d["chain_id"] for d in chained})
    top = data["top_initiators"]
    assert top and [t["count"] for t in top] == sorted((t["count"] for t in top), reverse=True)


def test_overview_refuses_bad_parameters(tab_env) -> None:
    bad = proxy_get(tab_env, "analyst", "api/overview", window="2y")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "window"
    unknown = proxy_get(tab_env, "analyst", "api/overview", windw="24h")
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "windw"


def test_csv_holds_every_matching_row_with_chosen_columns_and_zone(tab_env) -> None:
    end = int(time.time() * 1000)
    filters = {"start": end - 30 * DAY_MS, "end": end}
    expected = tab_env.get("analyst", "api/detections", limit=500, sort="event_time", **filters)
    response = proxy_get(
        tab_env,
        "analyst",
        "api/detections.csv",
        sort="event_time",
        tz="UTC",
        columns="event_time,actor_id,target_account,triage_note",
        **filters,
    )
    assert response.status_code == 200
    # (the dev console's proxy currently repeats Content-Type; the app itself sends exactly text/csv)
    assert "text/csv" in response.headers["Content-Type"]
    direct = tab_env.api("analyst").get(f"{tab_env.live_app.base_url}/api/detections.csv", timeout=60)
    assert direct.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    start_stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(filters["start"] / 1000))
    end_stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(filters["end"] / 1000))
    assert disposition == f'attachment; filename="cloud-account-detections_{start_stamp}_{end_stamp}.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Time (UTC)", "Actor immutable ID", "Target account", "Triage note"]
    assert len(rows) - 1 == expected["total"]
    for row, detection in zip(rows[1:], expected["items"], strict=False):
        assert row[0].endswith("+00:00")
        assert row[2] == neutralise(detection["target_account"] or "")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"columns": "event_time,password"}, "columns"),
        ({"sort": "payload"}, "sort"),
        ({"platform": "Azure"}, "platform"),
        ({"start": "yesterday"}, "start"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_csv_refuses_bad_parameters_by_name(tab_env, params: dict, field: str) -> None:
    response = proxy_get(tab_env, "analyst", "api/detections.csv", **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_links_for_a_detection(tab_env) -> None:
    detection = tab_env.get("analyst", "api/detections", limit=1)["items"][0]
    links = tab_env.get("analyst", f"api/detections/{detection['id']}/links")
    log_activity = urlsplit(links["log_activity"])
    assert log_activity.path == "/console/do/ariel/arielSearch"
    query = parse_qs(log_activity.query)
    assert query["appName"] == ["EventViewer"] and query["value(searchMode)"] == ["AQL"]
    assert query["value(aql)"] == [links["aql"]]
    assert f"starttime = {detection['event_time']}" in links["aql"]
    assert f"/app_proxy/playbook/?detection={detection['id']}#platform-" in links["playbook"]
    missing = proxy_get(tab_env, "analyst", "api/detections/999999999/links")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_tab_routes_are_in_the_openapi_document(tab_env) -> None:
    paths = tab_env.get("analyst", "api/openapi.json")["paths"]
    for path in ("/api/overview", "/api/detections.csv", "/api/detections/{detection_id}/links"):
        assert "get" in paths[path], path
