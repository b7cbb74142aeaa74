"""The self-check against the console: configured log source types and event names resolved against the
dev console's log source types and QID records (served from its DSM catalogue), its findings in
``/api/status``, the tab and the dashboard item, and its schedule."""

from __future__ import annotations

import html
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import requests

from app import settings
from app.aql import detection as aqld
from app.detection import selfcheck
from app.jobs import JobContext, JobRunner
from devconsole.dsm.catalogue import catalogue
from devconsole.launcher import start_serve, stop_serve

ROOT = Path(__file__).resolve().parents[3]
MISSPELLED = "CreateUsr"
MISSPELLED_MESSAGE = (
    f"no QID named '{MISSPELLED}' for Amazon AWS CloudTrail on this console: no detections can come from it"
)


def run_check(conn: sqlite3.Connection, gateway) -> JobRunner:
    runner = JobRunner([selfcheck.SELF_CHECK_JOB], JobContext(conn, gateway))
    assert runner.run(selfcheck.SELF_CHECK_JOB)
    return runner


def test_ilike_patterns() -> None:
    assert selfcheck.ilike_regex("%add user%").fullmatch("Add user.")
    assert selfcheck.ilike_regex("create_ser").fullmatch("CreateUser")
    assert not selfcheck.ilike_regex("CreateUser").fullmatch("CreateUsers")
    assert not selfcheck.ilike_regex("a.c").fullmatch("abc")  # only % and _ are wildcards
    assert selfcheck.ilike_regex("Update application – Certificates%").fullmatch(
        "Update application – Certificates and secrets management"
    )


def test_misspelled_event_name_is_named_in_status_tab_and_dashboard(
    app, client, login, console_gateway
) -> None:
    from app.store.db import get_db

    with app.app_context():
        conn = get_db()
        names = [*aqld.DEFAULT_EVENT_NAMES[aqld.AWS], MISSPELLED]
        settings.update(conn, {"event_names_aws": names}, actor="test")
        run_check(conn, console_gateway)
    login(client, "analyst")
    found = client.get("/api/status").get_json()["self_check"]
    assert MISSPELLED_MESSAGE in found["problems"]
    assert not any("'CreateUser'" in p for p in found["problems"])
    assert found["checked_ms"] and found["stale"] is False and found["last_error"] is None
    assert {
        k: v
        for k, v in found["findings"][[f["name"] for f in found["findings"]].index(MISSPELLED)].items()
        if k != "message"
    } == {"kind": "event_name", "platform": "AWS", "role": "creation", "name": MISSPELLED}

    page = client.get("/tab/")
    assert page.status_code == 200
    text = html.unescape(page.get_data(as_text=True))
    assert 'id="self-check"' in text and MISSPELLED_MESSAGE in text
    item = client.get("/dashboard/item").get_json()
    assert MISSPELLED_MESSAGE in html.unescape(item["HTML"])

    # Corrected: the next check (due at once, the settings changed) names it no more.
    with app.app_context():
        conn = get_db()
        settings.update(conn, {"event_names_aws": list(aqld.DEFAULT_EVENT_NAMES[aqld.AWS])}, actor="test")
        assert client.get("/api/status").get_json()["self_check"]["stale"] is True
        runner = JobRunner([selfcheck.SELF_CHECK_JOB], JobContext(conn, console_gateway))
        assert runner.tick() == ["self_check"]
        assert runner.tick() == []  # then not before the interval
    found = client.get("/api/status").get_json()["self_check"]
    assert not any(MISSPELLED in p for p in found["problems"])
    assert MISSPELLED_MESSAGE not in html.unescape(client.get("/tab/").get_data(as_text=True))


def test_defaults_resolve_as_the_console_qid_records_say(app, console_gateway, devconsole) -> None:
    """Every default name the console has a QID record for resolves; each one it lacks is named (the
    expectation read from the console's own database with SQLite's LIKE, ILIKE's semantics for ASCII)."""
    from app.store.db import get_db

    with app.app_context():
        conn = get_db()
        run_check(conn, console_gateway)
        found = selfcheck.status(conn)
        checked = selfcheck.checked_names(conn)
    type_ids = {p: [e["id"] for e in entries] for p, entries in checked["log_source_types"].items()}
    expected = set()
    with closing(sqlite3.connect(Path(devconsole.data_dir) / "events.db")) as db:
        for platform, roles in checked["event_names"].items():
            marks = ",".join("?" * len(type_ids[platform]))
            for names in roles.values():
                for name in names:
                    hit = db.execute(
                        f"SELECT 1 FROM qid_records WHERE log_source_type_id IN ({marks}) AND name LIKE ?",
                        [*type_ids[platform], name],
                    ).fetchone()
                    if hit is None:
                        expected.add(name)
    assert {f["name"] for f in found["findings"] if f["kind"] == "event_name"} == expected
    assert "CreateUser" not in expected and "Add user." not in expected
    assert not [f for f in found["findings"] if f["kind"] == "log_source_type"]


def test_misnamed_log_source_types(app, console_gateway) -> None:
    from app.store.db import get_db

    with app.app_context():
        conn = get_db()
        types = settings.get("log_source_types", conn=conn)
        types["AWS"] = [{"name": "Amazon AWS CloudTrial", "id": 347}]
        types["GCP"] = [{"name": "Google Cloud Audit Typo", "id": None}]
        settings.update(conn, {"log_source_types": types}, actor="test")
        run_check(conn, console_gateway)
        problems = selfcheck.status(conn)["problems"]
    assert (
        "no log source type named 'Amazon AWS CloudTrial' on this console: its configured ID 347 is there "
        "as 'Amazon AWS CloudTrail', which the detection searches instead"
    ) in problems
    assert (
        "no log source type named 'Google Cloud Audit Typo' (GCP) on this console: no detections can come "
        "from it"
    ) in problems
    assert not any("google.iam" in p for p in problems)  # no type: its names are not checked one by one


def test_qradar_failure_keeps_the_last_findings_and_reports_the_error(
    app, console_gateway, devconsole
) -> None:
    from app.store.db import get_db

    with app.app_context():
        conn = get_db()
        settings.update(conn, {"event_names_aws": [MISSPELLED]}, actor="test")
        runner = run_check(conn, console_gateway)
        devconsole.faults.add("unavailable", "/api/data_classification/qid_records*", count=5)
        try:
            assert not runner.run(selfcheck.SELF_CHECK_JOB)
        finally:
            devconsole.faults.clear()
        found = selfcheck.status(conn)
    assert MISSPELLED_MESSAGE in found["problems"]
    assert found["last_error"] and found["last_error"].startswith("QRadar:")


@pytest.fixture(scope="module")
def bare_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict]]:
    """A dev console that never ingested an event: its QID records are the DSM catalogue alone."""
    data_dir = tmp_path_factory.mktemp("bare_console")
    served = start_serve(data_dir, "--manifest", str(ROOT / "manifest.json"))
    tokens = json.loads((data_dir / "tokens.json").read_text())
    env = {
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{served.port}",
        "SEC_ADMIN_TOKEN": tokens["service"],
        "REQUESTS_CA_BUNDLE": served.ca_path,
    }
    try:
        yield served.base_url, env
    finally:
        stop_serve(served.process)


def test_qid_records_endpoint_serves_the_dsm_catalogue_with_filter_fields_and_range(bare_console) -> None:
    from app.qradar import Gateway

    base_url, env = bare_console
    session = requests.Session()
    session.trust_env = False
    session.verify = env["REQUESTS_CA_BUNDLE"]
    session.headers.update({"SEC": env["SEC_ADMIN_TOKEN"], "Version": "26.0", "Accept": "application/json"})
    url = f"{base_url}/api/data_classification/qid_records"
    whole = session.get(url, params={"filter": "log_source_type_id=347", "fields": "qid,name"}, timeout=10)
    assert whole.status_code == 200
    items = whole.json()
    assert {i["name"] for i in items} == set(catalogue()[347])
    assert all(set(i) == {"qid", "name"} for i in items)
    page = session.get(
        url, params={"filter": "log_source_type_id=445"}, headers={"Range": "items=0-4"}, timeout=10
    )
    assert len(page.json()) == 5 and page.headers["Content-Range"].startswith("items 0-4/")
    assert session.get(url, params={"filter": "log_source_type_id=="}, timeout=10).status_code == 422

    gw = Gateway.from_env(env, poll_wait_s=1)
    paged = gw.qid_records(397, page_size=5)
    assert sorted(r["name"] for r in paged) == sorted(catalogue()[397])
    assert "Add user." in {r["name"] for r in paged}
    assert {r["log_source_type_id"] for r in paged} == {397}
