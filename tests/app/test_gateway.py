"""The QRadar gateway against the dev console over real HTTPS: Ariel lifecycle, paging, cancel, searches
left running and polled later, per-call time bounds, the cached column lookup, timeouts, error mapping,
reference data, offenses, log source types, and the user's own identity.

Tests on ``gw`` run in both transports (IBM's qpylib, as inside QRadar, and HTTP); those that build an
`HttpTransport` of their own test what only it has (client timeouts, its TLS settings)."""

from __future__ import annotations

import socket
import sqlite3
import time
import uuid
from pathlib import Path

import certifi
import pytest

from app.qradar import (
    Gateway,
    HttpTransport,
    QRadarError,
    QRadarUnavailable,
    SearchCancelled,
    SearchTimeout,
)
from app.qradar.gateway import RUNNING_STATES
from tests.app_fixtures import QRADAR_MODES

WINDOW_DAYS = 3650
ALL_EVENTS_AQL = f"SELECT starttime, qid, logsourceid FROM events ORDER BY starttime LAST {WINDOW_DAYS} DAYS"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_gateway(devconsole, token: str | None = None, **transport_kwargs) -> Gateway:
    transport = HttpTransport(
        f"127.0.0.1:{devconsole.port}",
        admin_token=token or devconsole.tokens["service"],
        ca_bundle=str(devconsole.ca_path),
        **transport_kwargs,
    )
    return Gateway(transport, poll_wait_s=1)


class RecordingTransport:
    """The real HTTPS transport, recording every request the gateway makes through it."""

    def __init__(self, inner: HttpTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str, str, dict]] = []

    def request(self, method: str, path: str, **kwargs):
        self.requests.append((method, path, kwargs))
        return self.inner.request(method, path, **kwargs)

    def paths(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.requests if (m, p) == (method, path))


def recording_gateway(devconsole, **gateway_kwargs) -> tuple[Gateway, RecordingTransport]:
    recorder = RecordingTransport(make_gateway(devconsole).transport)
    return Gateway(recorder, poll_wait_s=1, **gateway_kwargs), recorder


@pytest.fixture(params=QRADAR_MODES)
def qradar_mode(request) -> str:
    """Every test using ``gw`` runs through IBM's qpylib (as inside QRadar) and through the HTTP transport."""
    return request.param


@pytest.fixture
def gw(console_gateway) -> Gateway:
    return console_gateway


@pytest.fixture
def faults(devconsole):
    devconsole.faults.clear()
    yield devconsole.faults
    devconsole.faults.clear()


def events_in_window(devconsole) -> int:
    """Ground truth straight from the dev console's event store."""
    now_ms = int(time.time() * 1000)
    with sqlite3.connect(f"file:{Path(devconsole.data_dir) / 'events.db'}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM events WHERE starttime BETWEEN ? AND ?",
            (now_ms - WINDOW_DAYS * 86_400_000, now_ms),
        ).fetchone()[0]


def test_run_search_reads_every_page_and_deletes_the_search(gw, devconsole):
    seen = []
    rows = gw.run_search(ALL_EVENTS_AQL, timeout_s=120, page_size=1000, on_progress=seen.append)
    assert len(rows) == events_in_window(devconsole) > 1000  # more than one page
    assert [r["starttime"] for r in rows] == sorted(r["starttime"] for r in rows)
    assert seen[-1].status == "COMPLETED" and seen[-1].progress == 100
    search_id = seen[-1].search_id
    with pytest.raises(QRadarError) as info:
        gw.search_status(search_id)
    assert (info.value.http_status, info.value.code) == (404, 1002)


def test_pages_use_inclusive_ranges(gw):
    search_id = gw.start_search(
        f"SELECT starttime, qid FROM events ORDER BY starttime LIMIT 50 LAST {WINDOW_DAYS} DAYS"
    )
    try:
        status = gw.wait_for_search(search_id, timeout_s=60)
        assert status.record_count == 50
        everything = gw.results(search_id, 0, 49)
        pages = list(gw.iter_result_pages(search_id, page_size=7))
        assert [len(p) for p in pages] == [7] * 7 + [1]
        assert [row for page in pages for row in page] == everything
        assert gw.results(search_id, 3, 5) == everything[3:6]
    finally:
        gw.delete_search(search_id)


def test_long_aql_goes_in_the_body(gw):
    qids = ", ".join(str(1_000_000 + n) for n in range(3000))  # ~24 KB: far beyond URL limits
    aql = f"SELECT qid FROM events WHERE qid IN ({qids}) LAST 1 DAYS"
    assert len(aql) > 20_000
    search_id = gw.start_search(aql)
    gw.wait_for_search(search_id, timeout_s=60)
    gw.delete_search(search_id)


def test_bad_aql_carries_qradars_message(gw):
    with pytest.raises(QRadarError) as info:
        gw.start_search("SELECT starttime FORM events LAST 1 HOURS")
    assert (info.value.http_status, info.value.code) == (422, 2000)
    assert info.value.message and "FORM" in info.value.message.upper()
    assert gw.validate_aql("SELECT starttime FORM events LAST 1 HOURS")
    assert gw.validate_aql("SELECT starttime FROM events LAST 1 HOURS") == []


def test_unknown_search_is_404_code_1002(gw):
    with pytest.raises(QRadarError) as info:
        gw.search_status(str(uuid.uuid4()))
    assert (info.value.http_status, info.value.code) == (404, 1002)


def test_cancel_stops_a_running_search(gw, faults):
    faults.slow_searches(30)
    search_id = gw.start_search("SELECT qid FROM events LAST 2 DAYS")
    gw.cancel_search(search_id)
    with pytest.raises(QRadarError, match="cancel"):  # cancelling is asynchronous, as in QRadar
        gw.wait_for_search(search_id, timeout_s=20)
    assert gw.search_status(search_id).status == "CANCELED"
    gw.delete_search(search_id)


def test_should_cancel_cancels_the_search(gw, faults):
    faults.slow_searches(30)
    search_id = gw.start_search("SELECT qid FROM events LAST 3 DAYS")
    with pytest.raises(SearchCancelled):
        gw.wait_for_search(search_id, timeout_s=30, should_cancel=lambda: True)
    assert gw.search_status(search_id, wait_s=20).status == "CANCELED"


def test_timeout_cancels_the_search(gw, faults):
    faults.slow_searches(30)
    search_id = gw.start_search("SELECT qid FROM events LAST 4 DAYS")
    with pytest.raises(SearchTimeout) as info:
        gw.wait_for_search(search_id, timeout_s=1.5)
    assert info.value.search_id == search_id
    assert gw.search_status(search_id, wait_s=20).status == "CANCELED"


def test_cancel_sends_the_apis_spelling(devconsole, faults):
    """``status=CANCELED`` (one L) as API 26.0 documents; qpylib's ``CANCELLED`` is not what is sent."""
    faults.slow_searches(30)
    gw, recorder = recording_gateway(devconsole)
    search_id = gw.start_search("SELECT qid FROM events LAST 7 DAYS")
    gw.cancel_search(search_id)
    (cancel,) = [r for r in recorder.requests if r[0] == "POST" and r[1] == f"api/ariel/searches/{search_id}"]
    assert cancel[2]["params"] == {"status": "CANCELED"}
    assert gw.poll(search_id, within_s=20).status == "CANCELED"
    gw.delete_search(search_id)


def test_a_search_left_running_is_polled_later_then_read(gw, devconsole, faults):
    """Start returns at once; the search runs on while nobody waits; another gateway (a later request)
    polls it to the end and reads its rows."""
    faults.slow_searches(3)
    aql = f"SELECT starttime, qid FROM events ORDER BY starttime LIMIT 20 LAST {WINDOW_DAYS} DAYS"
    started = time.monotonic()
    search_id = gw.start_search(aql)
    assert time.monotonic() - started < 2  # did not wait for the 3 s search
    first = gw.poll(search_id)  # one look, no wait
    assert first.status in RUNNING_STATES and not first.done
    later = make_gateway(devconsole)
    seen = []
    final = later.poll(search_id, within_s=30, on_progress=seen.append)
    assert final.status == "COMPLETED" and final.record_count == 20
    assert seen[-1] == final and all(s.status in RUNNING_STATES for s in seen[:-1])
    rows = later.fetch_results(search_id, page_size=6, record_count=final.record_count)
    assert rows == later.results(search_id, 0, 19)
    assert [r["starttime"] for r in rows] == sorted(r["starttime"] for r in rows)
    later.delete_search(search_id)
    with pytest.raises(QRadarError) as info:
        gw.poll(search_id)
    assert (info.value.http_status, info.value.code) == (404, 1002)


def test_poll_reports_a_failed_search_without_raising(gw, faults):
    faults.error_searches(1, "Ariel disk is full")
    search_id = gw.start_search("SELECT qid FROM events LAST 8 DAYS")
    status = gw.poll(search_id, within_s=30)
    assert status.status == "ERROR" and status.done
    assert status.messages == "Ariel disk is full"
    gw.delete_search(search_id)


def test_within_bounds_a_call_to_a_hanging_console(gw, faults):
    """The transport would wait 60 s; the bounded view gives up at its deadline."""
    faults.hang("/api/siem/offenses", seconds=20, count=2)
    started = time.monotonic()
    with pytest.raises(QRadarUnavailable, match=r"did not answer GET api/siem/offenses within 1(\.0)? s"):
        gw.within(1).list_offenses()
    assert 0.9 < time.monotonic() - started < 3
    # A view whose budget is spent still gives each call its floor, then stops.
    spent = gw.within(0)
    started = time.monotonic()
    with pytest.raises(QRadarUnavailable, match=r"within 0\.5 s"):
        spent.list_offenses()
    assert time.monotonic() - started < 2
    faults.clear()
    assert gw.list_offenses(limit=1)  # the gateway itself is unbounded


def test_within_bounds_the_search_wait(gw, faults):
    faults.slow_searches(30)
    search_id = gw.start_search("SELECT qid FROM events LAST 9 DAYS")
    bounded = gw.within(2)
    started = time.monotonic()
    status = bounded.poll(search_id, within_s=60)  # asks for a minute; the deadline is sooner
    assert status.status in RUNNING_STATES
    assert 1.5 < time.monotonic() - started < 4
    started = time.monotonic()
    with pytest.raises(SearchTimeout):
        gw.within(1.5).wait_for_search(search_id, timeout_s=60)
    assert time.monotonic() - started < 4
    assert gw.poll(search_id, within_s=20).status == "CANCELED"  # the timed-out wait cancelled it


def test_a_bounded_view_never_extends_its_parents_deadline(gw):
    outer = gw.within(1)
    inner = outer.within(30)
    assert inner.remaining_s() is not None and inner.remaining_s() <= 1
    assert gw.remaining_s() is None


def test_columns_are_looked_up_once_and_shared_by_bounded_views(devconsole):
    gw, recorder = recording_gateway(devconsole)
    with sqlite3.connect(f"file:{Path(devconsole.data_dir) / 'events.db'}?mode=ro", uri=True) as conn:
        custom = {row[0] for row in conn.execute("SELECT name FROM custom_properties")}
    assert custom, "the seeded console defines custom properties"
    columns = gw.columns("events")
    assert columns is not None
    assert {"starttime", "qid", "logsourceid", "devicetype", "payload"} <= columns
    assert custom <= columns
    assert gw.columns("events") == columns
    assert gw.within(5).columns("events") == columns
    assert recorder.paths("GET", "api/ariel/databases/events") == 1
    assert len(recorder.requests) == 1


def test_columns_are_asked_again_after_their_ttl(devconsole):
    gw, recorder = recording_gateway(devconsole, columns_ttl_s=0.3)
    first = gw.columns("events")
    time.sleep(0.4)
    assert gw.columns("events") == first
    assert recorder.paths("GET", "api/ariel/databases/events") == 2


def test_a_failed_column_lookup_is_unknown_and_retried_after_a_pause(devconsole, faults):
    gw, recorder = recording_gateway(devconsole, columns_retry_s=0.5)
    faults.unavailable("/api/ariel/databases/events", count=1)
    assert gw.columns("events") is None
    assert gw.columns("events") is None  # not asked again at once
    assert recorder.paths("GET", "api/ariel/databases/events") == 1
    time.sleep(0.6)
    assert "starttime" in (gw.columns("events") or set())
    assert recorder.paths("GET", "api/ariel/databases/events") == 2
    assert gw.columns("no_such_database") is None  # QRadar's 404: unknown, not a crash


def test_search_ending_in_error_raises_with_its_message(gw, faults):
    faults.error_searches(1, "Ariel disk is full")
    with pytest.raises(QRadarError, match="Ariel disk is full"):
        gw.run_search("SELECT qid FROM events LAST 5 DAYS", timeout_s=30)


def test_qradar_503_is_a_qradar_error_with_its_code(gw, faults):
    faults.unavailable("/api/ariel/searches", method="POST")
    with pytest.raises(QRadarError) as info:
        gw.start_search("SELECT qid FROM events LAST 6 DAYS")
    assert (info.value.http_status, info.value.code) == (503, 1010)


def test_hanging_console_times_out_as_unavailable(devconsole, faults):
    faults.hang("/api/siem/offenses", seconds=5)
    slow = make_gateway(devconsole, read_timeout_s=1)
    with pytest.raises(QRadarUnavailable, match="did not answer"):
        slow.list_offenses()


def test_unreachable_console_is_unavailable(devconsole):
    gw = Gateway(
        HttpTransport(f"127.0.0.1:{closed_port()}", admin_token="x", ca_bundle=str(devconsole.ca_path))
    )
    with pytest.raises(QRadarUnavailable, match="cannot reach"):
        gw.list_offenses()


def test_tls_is_verified(devconsole, tmp_path):
    other_ca = tmp_path / "other.pem"
    other_ca.write_text(Path(certifi.where()).read_text())  # public CAs, not the console's
    gw = Gateway(
        HttpTransport(
            f"127.0.0.1:{devconsole.port}", admin_token=devconsole.tokens["service"], ca_bundle=str(other_ca)
        )
    )
    with pytest.raises(QRadarUnavailable, match="TLS"):
        gw.list_offenses()


def test_reference_set_lifecycle_with_hostile_values(gw):
    name = f"caw-test-{uuid.uuid4().hex[:8]}"
    hostile = ["<script>alert(1)</script>", "' OR 1=1 --", "a/b?c=d&e", "=cmd|'/c calc'!A1"]
    gw.ensure_reference_set(name, "ALN")
    gw.ensure_reference_set(name, "ALN")  # second call: 409 handled, set kept
    for value in hostile:
        gw.add_to_reference_set(name, value, source="test")
    assert sorted(d["value"] for d in gw.get_reference_set(name)["data"]) == sorted(hostile)
    gw.delete_reference_set_value(name, hostile[2])
    assert hostile[2] not in [d["value"] for d in gw.get_reference_set(name)["data"]]
    gw.bulk_load_reference_set(name, ["bulk-1", "bulk-2"])
    assert gw.get_reference_set(name)["number_of_elements"] == len(hostile) - 1 + 2
    assert len(gw.get_reference_set(name, limit=2)["data"]) == 2
    with pytest.raises(QRadarError) as info:
        gw.delete_reference_set_value(name, "never-added")
    assert info.value.http_status == 404
    gw.delete_reference_set(name)
    with pytest.raises(QRadarError) as info:
        gw.get_reference_set(name)
    assert (info.value.http_status, info.value.code) == (404, 1002)


def test_reference_map_lifecycle(gw):
    name = f"caw-map-{uuid.uuid4().hex[:8]}"
    gw.ensure_reference_map(name, "ALN", key_label="value", value_label="reason")
    gw.add_to_reference_map(name, "svc-deployer", "entry 7: CI pipeline")
    gw.bulk_load_reference_map(name, {"<b>x</b>": "entry 8", "y": "entry 9"})
    data = gw.get_reference_map(name)["data"]
    assert data["svc-deployer"]["value"] == "entry 7: CI pipeline" and "<b>x</b>" in data
    gw.delete_reference_map_value(name, "y", "entry 9")
    assert "y" not in gw.get_reference_map(name)["data"]
    gw.delete_reference_map(name)
    with pytest.raises(QRadarError):
        gw.get_reference_map(name)


def test_offenses_list_and_get(gw):
    offenses = gw.list_offenses(limit=5)
    assert 0 < len(offenses) <= 5
    one = gw.get_offense(offenses[0]["id"])
    assert one["id"] == offenses[0]["id"] and "start_time" in one
    with pytest.raises(QRadarError) as info:
        gw.get_offense(987654321)
    assert (info.value.http_status, info.value.code) == (404, 1002)


def test_log_source_types(gw):
    types = gw.log_source_types()
    assert {"id": 347, "name": "Amazon AWS CloudTrail"} in types
    only = gw.log_source_types(["Microsoft Office 365", "No Such Type"])
    assert only == [{"id": 397, "name": "Microsoft Office 365"}]


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("analyst", {"SEM", "EVENTVIEWER"}),
        ("tuner1", {"SEM", "EVENTVIEWER", "REFERENCEDATA"}),
        ("admin", {"ADMIN"}),
    ],
)
def test_current_user_uses_the_users_own_token(gw, devconsole, user, expected):
    """The gateway's transport carries the ADMIN service token; identity must still be the user's."""
    found = gw.current_user(devconsole.tokens[user])
    assert found.name == user
    assert expected <= found.capabilities
    if user != "admin":
        assert "ADMIN" not in found.capabilities


def test_current_user_with_a_bad_token_is_401(gw):
    with pytest.raises(QRadarError) as info:
        gw.current_user("not-a-real-token")
    assert info.value.http_status == 401
