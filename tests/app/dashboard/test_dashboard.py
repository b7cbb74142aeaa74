"""Dashboard item and Pulse JSON after a real refresh against the seeded dev console.

Expected figures are counted independently: straight from the store's detections table with plain SQL
written here, and checked against the scenario manifest where it says what must be there.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from html.parser import HTMLParser

import pytest

from app.aql.detection import PLATFORMS

DAY_MS = 86_400_000


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.counts: dict[str, int] = {}
        self.links: list[str] = []
        self._key: str | None = None
        self._in_count = False

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        classes = a.get("class", "").split()
        if "caw-dash-platform" in classes:
            self._key = a["data-platform"]
        elif "caw-dash-service" in classes:
            self._key = "service"
        elif "caw-dash-chains" in classes:
            self._key = "chains"
        if "caw-dash-count" in classes:
            self._in_count = True
        if tag == "a":
            self.links.append(a.get("href", ""))

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_count = False

    def handle_data(self, data):
        if self._in_count and self._key and data.strip():
            self.counts[self._key] = int(data.strip())


@pytest.fixture
def store_counts(refreshed_app):
    from app.store.db import get_db

    since = int(time.time() * 1000) - DAY_MS
    with refreshed_app.app_context():
        conn = get_db()
        rows = conn.execute(
            "SELECT cloud_platform, is_service_account, chain_id FROM detections"
            " WHERE suppressed_by IS NULL AND event_time >= ?",
            (since,),
        ).fetchall()
    by_platform = {p: sum(1 for r in rows if r[0] == p) for p in PLATFORMS}
    return {
        "by_platform": by_platform,
        "service": sum(r[1] for r in rows),
        "chains": len({r[2] for r in rows if r[2] is not None}),
        "total": len(rows),
    }


def test_dashboard_item_shape_and_figures(refreshed_app, client, login, devconsole, store_counts) -> None:
    login(client, "analyst")
    client.environ_base["HTTP_X_CONSOLE_HOST"] = f"127.0.0.1:{devconsole.port}"
    response = client.get("/dashboard/item")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"id", "title", "HTML"}
    parsed = Collector()
    parsed.feed(body["HTML"])
    assert {p: parsed.counts[p] for p in PLATFORMS} == store_counts["by_platform"]
    assert parsed.counts["service"] == store_counts["service"]
    assert parsed.counts["chains"] == store_counts["chains"]
    # The scenario has unsuppressed creations on every platform it seeds, and attack chains.
    assert store_counts["by_platform"]["AWS"] > 0 and store_counts["by_platform"]["GCP"] > 0
    assert store_counts["chains"] > 0
    assert f"{store_counts['total']} " in body["HTML"]
    proxy = f"https://127.0.0.1:{devconsole.port}/console/plugins/{devconsole.app_id}/app_proxy"
    assert proxy + "/tab/" in parsed.links
    assert not {"script", "style", "link", "img", "iframe"} & set(parsed.tags)
    assert all(
        c.startswith("caw-dash") for cl in re.findall(r'class="([^"]*)"', body["HTML"]) for c in cl.split()
    )


def test_pulse_timeseries_shape(refreshed_app, client, login, store_counts) -> None:
    login(client, "analyst")
    series = client.get("/api/pulse/timeseries").get_json()
    assert isinstance(series, list) and len(series) == 24
    dates = [dt.datetime.strptime(p["date"], "%Y-%m-%dT%H:%M:%SZ") for p in series]
    assert all((b - a).total_seconds() == 3600 for a, b in itertools.pairwise(dates))
    for point in series:
        assert set(point) == {"date", *PLATFORMS, "Total"}
        assert all(isinstance(point[p], int) for p in (*PLATFORMS, "Total"))
        assert point["Total"] == sum(point[p] for p in PLATFORMS)
    for p in PLATFORMS:
        assert sum(point[p] for point in series) <= store_counts["by_platform"][p]
    assert sum(point["Total"] for point in series) > 0
    bad = client.get("/api/pulse/timeseries?hours=0")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "hours"


def test_pulse_table_rows_are_flat_and_keep_hostile_text(refreshed_app, client, login, devconsole) -> None:
    login(client, "analyst")
    rows = client.get("/api/pulse/table?limit=500").get_json()
    assert isinstance(rows, list) and rows
    keys = {"time", "platform", "event", "actor", "target", "service_account", "chain", "href"}
    assert all(set(r) == keys and all(isinstance(v, str) for v in r.values()) for r in rows)
    assert [r["time"] for r in rows] == sorted((r["time"] for r in rows), reverse=True)
    hostile = {
        e["target_account"]
        for it in devconsole.scenario["items"]
        if it["kind"] == "hostile"
        for e in it["events"]
        if e.get("target_account")
    }
    assert hostile & {r["target"] for r in rows}
    assert len(client.get("/api/pulse/table?limit=2").get_json()) == 2


def test_pulse_endpoints_need_a_qradar_session(refreshed_app, client) -> None:
    assert client.get("/api/pulse/table").status_code == 401
    assert client.get("/dashboard/item").status_code == 401
