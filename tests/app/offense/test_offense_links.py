"""Offense ↔ detection links against the seeded dev console: the refresher's offense sync (wired into
``serve``), its bounds and its failure handling, the fragment's own links, the migration's backfill from the
fragment cache, the tab API's ``offense`` filter and the detail panel's offense links, and the event name in
the fragment's rows.

Expected links come from the scenario manifest (which events each offense holds, and what they are), never
from the app's own output.
"""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest

from app.store import db, offense_links
from tests.app.offense.test_fragment import FragmentParser, expected_creations, fragment


def now_ms() -> int:
    return int(time.time() * 1000)


def linked_targets(conn: sqlite3.Connection, offense_id: int) -> list[str]:
    return sorted(
        r[0] or ""
        for r in conn.execute(
            "SELECT d.target_account FROM offense_links l JOIN detections d ON d.id = l.detection_id"
            " WHERE l.offense_id = ?",
            (offense_id,),
        )
    )


def expected_targets(devconsole, offense: dict) -> list[str]:
    """What the sync must link: the creation events of an OPEN offense (closed ones are not listed)."""
    if offense["status"] != "OPEN":
        return []
    return sorted(e["target_account"] for e in expected_creations(devconsole, offense["id"]))


@pytest.fixture
def served_app(app, devconsole):
    """A fresh store filled by one real refresher ``serve(once=True)`` cycle: detection, then the offense
    sync it calls (nobody has opened an Offense Summary widget)."""
    from app.qradar import get_gateway
    from app.refresher import serve

    with app.app_context():
        gw = get_gateway()
    path = app.config["DATABASE"]
    serve(lambda: db.connect(path), lambda _conn: gw, once=True)
    return app


def test_refresher_learns_the_links_of_every_open_offense(served_app, devconsole) -> None:
    conn = db.connect(served_app.config["DATABASE"])
    try:
        offenses = devconsole.scenario["offenses"]
        assert any(o["status"] != "OPEN" and o["has_cloud_account_events"] for o in offenses), (
            "the scenario has a closed offense with creations (the control for status=OPEN)"
        )
        with_links = 0
        for offense in offenses:
            expected = expected_targets(devconsole, offense)
            assert linked_targets(conn, offense["id"]) == expected, offense["description"]
            with_links += bool(expected)
        assert with_links >= 3
        state = conn.execute(
            "SELECT last_status, watermark_ms FROM refresh_state WHERE name = 'offense_links'"
        ).fetchone()
        assert state["last_status"] == "ok" and state["watermark_ms"] is not None
        sources = {r[0] for r in conn.execute("SELECT DISTINCT source FROM offense_links")}
        assert sources == {"sync"}
    finally:
        conn.close()


def test_a_second_run_searches_nothing_unchanged(served_app, devconsole) -> None:
    from app.offense import sync
    from app.qradar import get_gateway

    conn = db.connect(served_app.config["DATABASE"])
    try:
        before = conn.execute("SELECT COUNT(*) FROM offense_links").fetchone()[0]
        with served_app.app_context():
            report = sync.sync_once(conn, get_gateway(), now_ms())
        assert report["searched"] == [] and report["links_added"] == 0
        assert conn.execute("SELECT COUNT(*) FROM offense_links").fetchone()[0] == before > 0
    finally:
        conn.close()


def test_sync_is_capped_per_run_and_a_backlog_continues(refreshed_app, devconsole) -> None:
    from app import settings
    from app.offense import sync
    from app.qradar import get_gateway

    conn = db.connect(refreshed_app.config["DATABASE"])
    try:
        settings.update(conn, {"offense_link_max_per_cycle": 1}, actor="test")
        with refreshed_app.app_context():
            gw = get_gateway()
        runs = []
        for _ in range(len(devconsole.scenario["offenses"]) + 2):
            report = sync.sync_if_due(conn, gw, now_ms())
            assert report is not None, "a backlog makes the next run due at once"
            runs.append(report)
            if not report["backlog"]:
                break
        assert all(len(r["searched"]) <= 1 for r in runs)
        assert runs[0]["backlog"] and not runs[-1]["backlog"]
        searched = [oid for r in runs for oid in r["searched"]]
        assert len(searched) == len(set(searched)), "an offense was searched twice"
        for offense in devconsole.scenario["offenses"]:
            assert linked_targets(conn, offense["id"]) == expected_targets(devconsole, offense)
        # Done: the next run is an interval away.
        assert sync.sync_if_due(conn, gw, now_ms()) is None
    finally:
        conn.close()


def test_qradar_failure_is_recorded_and_retried(refreshed_app, devconsole) -> None:
    from app.offense import sync
    from app.qradar import get_gateway

    conn = db.connect(refreshed_app.config["DATABASE"])
    try:
        with refreshed_app.app_context():
            gw = get_gateway()
        rule = devconsole.faults.unavailable("/api/siem/offenses*", count=20)
        try:
            assert sync.sync_if_due(conn, gw, now_ms()) is None  # recorded, never raised
        finally:
            devconsole.faults.clear()
        assert rule
        state = conn.execute(
            "SELECT last_status, last_error, watermark_ms FROM refresh_state WHERE name = 'offense_links'"
        ).fetchone()
        assert state["last_status"] == "error" and state["last_error"]
        assert state["watermark_ms"] is None
        assert conn.execute("SELECT COUNT(*) FROM offense_links").fetchone()[0] == 0
        # Retried once due (an interval later), and then it links.
        later = now_ms() + sync.settings.get("offense_link_interval_s", conn=conn) * 1000
        report = sync.sync_if_due(conn, gw, later)
        assert report is not None and report["links_added"] > 0
    finally:
        conn.close()


def test_fragment_answer_records_its_links(refreshed_app, client, login, devconsole) -> None:
    client.environ_base["HTTP_X_CONSOLE_HOST"] = f"127.0.0.1:{devconsole.port}"
    login(client, "analyst")
    frag = fragment(client, 2)
    assert frag.state == "rows"
    conn = db.connect(refreshed_app.config["DATABASE"])
    try:
        rows = conn.execute("SELECT detection_id, source FROM offense_links WHERE offense_id = 2").fetchall()
    finally:
        conn.close()
    assert sorted(str(r["detection_id"]) for r in rows) == sorted(r["detection_id"] for r in frag.rows)
    assert {r["source"] for r in rows} == {"fragment"}
    # The rows name the event (as QRadar names it), from the manifest.
    expected = expected_creations(devconsole, 2)
    assert [r["event"] for r in frag.rows] == [e["event_name"] for e in expected]


def test_offense_filter_and_panel_links_in_the_api(served_app, client, login, devconsole) -> None:
    login(client, "analyst")
    offense = next(o for o in devconsole.scenario["offenses"] if expected_targets(devconsole, o))
    oid = offense["id"]
    body = client.get(f"/api/detections?offense={oid}&limit=500").get_json()
    assert sorted(d["target_account"] for d in body["items"]) == expected_targets(devconsole, offense)
    assert body["total"] == len(body["items"])
    everything = client.get("/api/detections?limit=1").get_json()["total"]
    assert everything > body["total"]
    # Combined with another filter, and in the CSV export (same filters).
    aws = client.get(f"/api/detections?offense={oid}&platform=AWS&limit=500").get_json()
    assert {d["id"] for d in aws["items"]} <= {d["id"] for d in body["items"]}
    csv_text = client.get(f"/api/detections.csv?offense={oid}&start=0").get_data(as_text=True)
    assert len(csv_text.strip().splitlines()) == 1 + body["total"]
    # An offense QRadar does not show this user (here: none has the id): a 404 naming the filter, never
    # "no filter" and never another offense's detections.
    missing = client.get("/api/detections?offense=2147483647")
    assert missing.status_code == 404 and missing.get_json()["error"]["field"] == "offense"

    # The detail panel's links name the offense both ways: QRadar's page and the tab filtered to it.
    client.environ_base["HTTP_X_CONSOLE_HOST"] = f"127.0.0.1:{devconsole.port}"
    links = client.get(f"/api/detections/{body['items'][0]['id']}/links").get_json()
    by_id = {o["id"]: o for o in links["offenses"]}
    assert oid in by_id
    assert by_id[oid]["url"] == (
        f"https://127.0.0.1:{devconsole.port}/console/do/sem/offensesummary"
        f"?appName=Sem&pageId=OffenseSummary&summaryId={oid}"
    )
    assert by_id[oid]["tab"].endswith(f"/app_proxy/tab/?offense={oid}")


@pytest.mark.parametrize(
    "bad", ["abc", "0", "-1", "2147483648", "1 OR 1=1", "1.0", "²", "99999999999999999999"]
)
def test_bad_offense_filter_is_a_400_naming_the_parameter(client, login, bad: str) -> None:
    login(client, "analyst")
    for path in ("/api/detections", "/api/detections.csv"):
        response = client.get(path, query_string={"offense": bad})
        assert response.status_code == 400, (path, bad, response.data[:200])
        error = response.get_json()["error"]
        assert error["field"] == "offense" and "offense" in error["message"]


def test_migration_backfills_links_from_the_fragment_cache(tmp_path) -> None:
    """Offenses opened before this version keep their links: 0006 reads them out of offense_cache (rows
    whose detection is gone, and malformed rows, are skipped)."""
    old = tmp_path / "migrations"
    old.mkdir()
    for version, path in db.migrations():
        if version <= 4:
            shutil.copy(path, old / path.name)
    store = tmp_path / "store.db"
    conn = db.connect(store, migrate_schema=False)
    assert db.migrate(conn, old) == 4
    conn.execute(
        "INSERT INTO detections (id, event_key, event_time, cloud_platform, severity, confidence,"
        " base_severity, base_confidence, stored_at) VALUES (7, 'k7', 1, 'AWS', 5, 'medium', 5, 'medium', 1)"
    )
    rows = '[{"detection_id": 7}, {"detection_id": 8}, {"detection_id": null}, "x", 3]'
    conn.execute(
        "INSERT INTO offense_cache (offense_id, status, rows, started_at, checked_at)"
        " VALUES (41, 'done', ?, 1, 2)",
        (rows,),
    )
    conn.execute(
        "INSERT INTO offense_cache (offense_id, status, rows, started_at, checked_at)"
        " VALUES (42, 'done', 'not json', 1, 2)"
    )
    conn.execute(
        "INSERT INTO offense_cache (offense_id, status, rows, started_at, checked_at)"
        " VALUES (43, 'searching', '[{\"detection_id\": 7}]', 1, 2)"
    )
    conn.commit()
    assert db.migrate(conn) == db.migrations()[-1][0]
    assert [tuple(r) for r in conn.execute("SELECT offense_id, detection_id, source FROM offense_links")] == [
        (41, 7, "fragment")
    ]
    assert offense_links.offenses_for_detection(conn, 7) == [41]
    # Links go with their detection (retention).
    conn.execute("DELETE FROM detections WHERE id = 7")
    conn.commit()
    assert conn.execute("SELECT COUNT(*) FROM offense_links").fetchone()[0] == 0
    conn.close()


def test_event_names_in_the_fragment_are_text(offline_app) -> None:
    from app.offense import fragment as frag_mod
    from app.offense.views import render_fragment

    hostile = {
        "actor": "a",
        "target": "t",
        "platform": "AWS",
        "event_name": "CreateUser<img src=x onerror=alert(1)>",
        "event_time": 1_764_000_000_000,
        "is_service_account": False,
        "detection_id": None,
        "chain_kind": None,
    }
    headers = {"X-Console-Host": "qradar.example"}
    with offline_app.test_request_context("/offense/fragment/42", headers=headers):
        html_text = render_fragment(frag_mod.FragmentAnswer(42, "rows", [hostile]))
    parsed = FragmentParser()
    parsed.feed(html_text)
    assert "img" not in parsed.tags
    assert parsed.rows[0]["event"] == hostile["event_name"]
    # Below the rows: every detection of the offense in the tab.
    (open_link,) = [a["href"] for a in parsed.links if "caw-frag-open" in a.get("class", "")]
    assert open_link == "https://qradar.example/console/plugins/1101/app_proxy/tab/?offense=42"


def test_an_offense_updated_during_the_page_walk_hides_no_other(
    refreshed_app, devconsole, monkeypatch
) -> None:
    """QRadar's offense list is sorted by last update: an offense updated between two of the sync's page
    requests moves to the end, which shifts every later offense one place earlier. Walking by offset then
    skipped the offense that moved onto the previous page (and the watermark passed it: never searched);
    the moved offense came back with its new version and was searched at its old one only."""
    from contextlib import closing

    from app.offense import sync
    from app.qradar import get_gateway

    monkeypatch.setattr(sync, "PAGE_SIZE", 2)
    conn = db.connect(refreshed_app.config["DATABASE"])
    ceiling = conn.execute("SELECT watermark_ms FROM refresh_state WHERE name = 'detection'").fetchone()[0]
    with refreshed_app.app_context():
        gw = get_gateway()
    list_offenses = gw.list_offenses
    touched: list[tuple[int, int]] = []

    def listing(**kwargs):
        page = list_offenses(**kwargs)
        if not touched and page:
            # The console updates the first offense listed, right after the first page was read.
            oid = int(page[0]["id"])
            with closing(sqlite3.connect(devconsole.data_dir / "events.db")) as events:
                old = events.execute(
                    "SELECT last_updated_time FROM offenses WHERE id = ?", (oid,)
                ).fetchone()[0]
                events.execute("UPDATE offenses SET last_updated_time = ? WHERE id = ?", (ceiling, oid))
                events.commit()
            touched.append((oid, old))
        return page

    monkeypatch.setattr(gw, "list_offenses", listing)
    try:
        for _ in range(len(devconsole.scenario["offenses"]) + 2):
            report = sync.sync_if_due(conn, gw, now_ms())
            assert report is not None
            if not report["backlog"]:
                break
        assert touched, "the sync listed offenses"
        for offense in devconsole.scenario["offenses"]:
            assert linked_targets(conn, offense["id"]) == expected_targets(devconsole, offense), offense["id"]
        # The moved offense is recorded at the version QRadar listed last (its new events were searched).
        oid, _old = touched[0]
        assert offense_links.synced_versions(conn, [oid]) == {oid: ceiling}
    finally:
        conn.close()
        for oid, old in touched:
            with closing(sqlite3.connect(devconsole.data_dir / "events.db")) as events:
                events.execute("UPDATE offenses SET last_updated_time = ? WHERE id = ?", (old, oid))
                events.commit()


def test_a_search_cut_at_its_row_limit_is_continued(refreshed_app, devconsole, monkeypatch) -> None:
    """The links search returns its rows oldest first up to ROW_LIMIT. Cut there, the offenses whose events
    run past the last row were marked searched anyway: their later events were never linked (and an offense
    with more creations than the limit never got past its first ones). The sync continues the search from
    the last row's time until it is whole."""
    from app.offense import sync
    from app.qradar import get_gateway

    creations = [
        e["starttime"]
        for o in devconsole.scenario["offenses"]
        if o["status"] == "OPEN"
        for e in expected_creations(devconsole, o["id"])
    ]
    same_ms = max(creations.count(t) for t in creations)
    # Smaller than the events to link (so the cut happens), larger than any group at one time (so the
    # continuation can move past it).
    limit = same_ms + 1
    assert limit < len(creations)
    monkeypatch.setattr(sync, "ROW_LIMIT", limit)
    conn = db.connect(refreshed_app.config["DATABASE"])
    try:
        with refreshed_app.app_context():
            gw = get_gateway()
        runs = []
        for _ in range(len(creations) + 2):
            report = sync.sync_if_due(conn, gw, now_ms())
            assert report is not None
            runs.append(report)
            if not report["backlog"]:
                break
        assert any(r["truncated"] for r in runs), "the limit cut a search"
        assert not runs[-1]["backlog"]
        for offense in devconsole.scenario["offenses"]:
            assert linked_targets(conn, offense["id"]) == expected_targets(devconsole, offense), offense["id"]
    finally:
        conn.close()
