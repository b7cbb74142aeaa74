"""The app through IBM's real qpylib 2.0.9 (vendor/qpylib, installed by ``make venv``), as inside QRadar.

qpylib reads the container's environment: ``QRADAR_CONSOLE_FQDN`` (here the dev console's
``127.0.0.1:<port>``), ``SEC_ADMIN_TOKEN``, ``REQUESTS_CA_BUNDLE`` (requests' own setting; the console's CA),
``QRADAR_APP_ID`` and ``APP_ROOT``. What goes on the wire is read from each response's ``request`` (the
request requests actually sent), so nothing here replaces qpylib; the rest of the suite runs the app in
this mode too (tests/app_fixtures.py), this module pins what is particular to it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import certifi
import pytest
from qpylib import qpylib
from qpylib.ariel import ArielSearch

from app.qradar import Gateway, HttpTransport, QpylibTransport, QRadarError, QRadarUnavailable
from devconsole.launcher import app_environment, prepare_app_root
from tests.app_fixtures import qradar_env, use_qradar_environment

ROOT = Path(__file__).resolve().parents[2]
DAY_MS = 86_400_000


@pytest.fixture
def qradar_mode() -> str:
    return "qpylib"


class RestCalls(list):
    """Each ``qpylib.REST`` call: the app's arguments and the request requests sent."""

    def sent(self, method: str, path_suffix: str) -> list[Any]:
        return [
            c["sent"]
            for c in self
            if c["sent"].method == method and urlsplit(c["sent"].url).path.endswith(path_suffix)
        ]


@pytest.fixture
def rest_calls(monkeypatch: pytest.MonkeyPatch) -> RestCalls:
    """Records every call of the real ``qpylib.REST`` (which still does the work)."""
    calls = RestCalls()
    real_rest = qpylib.REST

    def recording_rest(rest_action: str, request_url: str, *args: Any, **kwargs: Any) -> Any:
        response = real_rest(rest_action, request_url, *args, **kwargs)
        calls.append({"action": rest_action, "url": request_url, "kwargs": kwargs, "sent": response.request})
        return response

    monkeypatch.setattr(qpylib, "REST", recording_rest)
    return calls


def test_inside_qradar_the_gateway_goes_through_qpylib(console_gateway: Gateway) -> None:
    assert isinstance(console_gateway.transport, QpylibTransport)
    assert console_gateway.transport.qpylib is qpylib


def test_search_pages_and_delete_on_the_wire(console_gateway, rest_calls, devconsole) -> None:
    window = f"LAST {3650} DAYS"
    rows = console_gateway.run_search(f"SELECT starttime, qid FROM events ORDER BY starttime {window}", 120)
    with sqlite3.connect(f"file:{devconsole.data_dir / 'events.db'}?mode=ro", uri=True) as conn:
        assert len(rows) == conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] > 1000
    (start,) = rest_calls.sent("POST", "/api/ariel/searches")
    assert start.url == f"https://127.0.0.1:{devconsole.port}/api/ariel/searches"  # the AQL is not in the URL
    assert parse_qs(start.body)["query_expression"] == [
        f"SELECT starttime, qid FROM events ORDER BY starttime {window}"
    ]
    for header, value in {
        "Version": "26.0",
        "Accept": "application/json",
        "Host": "127.0.0.1",  # qpylib's gethostbyname('localhost')
        "SEC": devconsole.tokens["service"],  # SEC_ADMIN_TOKEN
    }.items():
        assert start.headers[header] == value, header
    pages = rest_calls.sent("GET", "/results")
    assert [p.headers["Range"] for p in pages] == [
        f"items={n}-{min(n + 999, len(rows) - 1)}" for n in range(0, len(rows), 1000)
    ]
    search_id = urlsplit(pages[0].url).path.split("/")[-2]
    assert [urlsplit(d.url).path for d in rest_calls.sent("DELETE", "")] == [
        f"/api/ariel/searches/{search_id}"
    ]


def test_cancel_sends_the_apis_canceled_not_qpylibs_cancelled(
    console_gateway, rest_calls, devconsole
) -> None:
    devconsole.faults.slow_searches(30)
    try:
        search_id = console_gateway.start_search("SELECT qid FROM events LAST 2 DAYS")
        console_gateway.cancel_search(search_id)
        assert console_gateway.search_status(search_id, wait_s=20).status == "CANCELED"
        console_gateway.delete_search(search_id)
    finally:
        devconsole.faults.clear()
    (cancel,) = rest_calls.sent("POST", f"/api/ariel/searches/{search_id}")
    assert parse_qs(urlsplit(cancel.url).query) == {"status": ["CANCELED"]}


def test_qpylibs_own_ariel_cancel_sends_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the gateway never uses ``qpylib.ariel``: its cancel asks for ``CANCELLED``, a status API 26.0 does
    not have. The request is captured before it leaves (what a console answers is the dev console's tests)."""

    class Captured(Exception):
        pass

    seen: list[tuple] = []

    def capture(rest_action: str, request_url: str, **kwargs: Any) -> Any:
        seen.append((rest_action, request_url, kwargs.get("params")))
        raise Captured

    monkeypatch.setattr(qpylib, "REST", capture)
    with pytest.raises(Captured):
        ArielSearch().cancel("s-1")
    assert seen == [("POST", "api/ariel/searches/s-1", {"status": "CANCELLED"})]


def test_reference_data_and_offenses_through_qpylib(console_gateway, rest_calls, devconsole) -> None:
    name = f"caw-qpylib-{uuid.uuid4().hex[:8]}"
    hostile = ["<script>alert(1)</script>", "a/b?c=d&e", "=cmd|'/c calc'!A1"]
    console_gateway.ensure_reference_set(name)
    for value in hostile:
        console_gateway.add_to_reference_set(name, value, source="qpylib-test")
    console_gateway.delete_reference_set_value(name, hostile[1])
    truth = devconsole.api("admin").get(devconsole.url(f"/api/reference_data/sets/{name}"), timeout=30).json()
    assert sorted(d["value"] for d in truth["data"]) == sorted([hostile[0], hostile[2]])
    console_gateway.delete_reference_set(name)
    offenses = console_gateway.list_offenses(limit=3)
    assert 0 < len(offenses) <= 3
    assert console_gateway.get_offense(offenses[0]["id"])["id"] == offenses[0]["id"]
    with pytest.raises(QRadarError) as info:
        console_gateway.get_offense(987654321)
    assert (info.value.http_status, info.value.code) == (404, 1002)
    assert {c["sent"].headers["SEC"] for c in rest_calls} == {devconsole.tokens["service"]}
    assert all(c["sent"].url.startswith(f"https://127.0.0.1:{devconsole.port}/api/") for c in rest_calls)


def test_the_users_identity_never_goes_through_qpylib(console_gateway, rest_calls, devconsole) -> None:
    """qpylib.REST would replace the user's SEC with SEC_ADMIN_TOKEN, so identity uses plain HTTP."""
    user = console_gateway.current_user(devconsole.tokens["analyst"])
    assert user.name == "analyst" and "ADMIN" not in user.capabilities
    assert isinstance(console_gateway.user_transport(), HttpTransport)
    assert rest_calls == []


def test_the_console_ca_comes_from_requests_ca_bundle(devconsole, monkeypatch, tmp_path) -> None:
    env = qradar_env(devconsole)
    use_qradar_environment(monkeypatch, env, tmp_path / "app-root", "qpylib")
    assert Gateway.from_env().list_offenses(limit=1)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # public CAs only: the console is not trusted
    with pytest.raises(QRadarUnavailable, match=r"TLS verification .*REQUESTS_CA_BUNDLE"):
        Gateway.from_env().list_offenses(limit=1)


def test_unreachable_or_unconfigured_console_is_unavailable(devconsole, monkeypatch, tmp_path) -> None:
    env = {**qradar_env(devconsole), "QRADAR_CONSOLE_FQDN": "127.0.0.1:9"}
    use_qradar_environment(monkeypatch, env, tmp_path / "app-root", "qpylib")
    with pytest.raises(QRadarUnavailable, match="cannot reach QRadar"):
        Gateway.from_env().list_offenses()
    monkeypatch.delenv("QRADAR_CONSOLE_FQDN")  # qpylib raises KeyError then
    with pytest.raises(QRadarUnavailable, match="QRADAR_CONSOLE_FQDN"):
        Gateway.from_env().list_offenses()


STARTUP_PROBE = r"""
import json, logging
from qpylib import qpylib
from app import create_app

app = create_app()
probe = logging.getLogger("app.probe")
probe.warning("line one\nline two <b>")
try:
    raise ValueError("boom")
except ValueError:
    probe.exception("probe failed")
q_url_for = app.jinja_env.globals["q_url_for"]
with app.test_request_context("/", headers={"X-Console-Host": "console.example.com:8443"}):
    proxied = q_url_for("static", filename="js/common.js")
with app.test_request_context("/"):
    relative = q_url_for("debug")
print(json.dumps({
    "database": app.config["DATABASE"],
    "qpylib_store": qpylib.get_store_path(),
    "q_url_for_is_qpylibs": q_url_for.__wrapped__ is qpylib.q_url_for,
    "proxied": proxied,
    "relative": relative,
    "debug": app.test_client().get("/debug").get_json(),
}))
"""


def test_create_app_as_qradar_starts_it(devconsole, tmp_path) -> None:
    """A fresh process with the container's environment: the store is qpylib's, logging goes through
    qpylib.log into store/log/app.log in QRadar's format, q_url_for is qpylib's (behind the host check)."""
    app_root = prepare_app_root(tmp_path / "app-root")
    env = app_environment(
        f"127.0.0.1:{devconsole.port}", devconsole.tokens["service"], devconsole.ca_path, 1101, app_root
    )
    done = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    store = app_root / "store"
    assert seen["qpylib_store"] == str(store)
    assert Path(seen["database"]) == store / "cloud_account_watch.db" and Path(seen["database"]).is_file()
    assert seen["q_url_for_is_qpylibs"]
    assert (
        seen["proxied"]
        == "https://console.example.com:8443/console/plugins/1101/app_proxy/static/js/common.js"
    )
    assert seen["relative"] == "/debug"  # no X-Console-Host and no QRADAR_CONSOLE_IP: relative
    assert seen["debug"]["app_id"] == 1101
    lines = (store / "log" / "app.log").read_text().splitlines()
    prefix = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[MainThread\] "
    started = "[INFO] [APP_ID:1101] [NOT:0000006000] app: started: app id 1101"
    assert any(
        re.match(prefix, line) and started in line and "QRadar through qpylib" in line for line in lines
    )
    # qpylib escapes control characters: a logged value cannot forge a second log line.
    assert any(
        line.endswith("[WARNING] [APP_ID:1101] [NOT:0000004000] app.probe: line one\\nline two <b>")
        for line in lines
    )
    failed = next(
        i
        for i, line in enumerate(lines)
        if "[ERROR] [APP_ID:1101] [NOT:0000003000] app.probe: probe failed" in line
    )
    assert lines[failed + 1] == "Traceback (most recent call last):"
    assert "ValueError: boom" in lines[failed + 2 : failed + 6]


def test_refresher_once_as_supervisord_starts_it(devconsole, tmp_path) -> None:
    """``python -m app.refresher --once`` with the container's environment (no --db): the store is qpylib's,
    and it stores what a refresh through the HTTP transport stores from the same console."""
    app_root = prepare_app_root(tmp_path / "app-root")
    env = app_environment(
        f"127.0.0.1:{devconsole.port}",
        devconsole.tokens["service"],
        devconsole.ca_path,
        devconsole.app_id,
        app_root,
    )
    done = subprocess.run(
        [sys.executable, "-m", "app.refresher", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "QRadar through qpylib" in done.stderr
    from app.detection.refresher import refresh_once
    from app.store.db import connect

    http_store = connect(tmp_path / "http.db")
    gateway = Gateway(HttpTransport.from_env(env), poll_wait_s=1)
    assert refresh_once(http_store, gateway).status == "ok"
    qpylib_store = connect(app_root / "store" / "cloud_account_watch.db")
    since = int(time.time() * 1000) - DAY_MS + 3_600_000  # clear of the 24-hour lookback's edge
    query = "SELECT event_key FROM detections WHERE event_time > ? ORDER BY event_key"
    try:
        through_qpylib = [r[0] for r in qpylib_store.execute(query, (since,))]
        assert through_qpylib and through_qpylib == [r[0] for r in http_store.execute(query, (since,))]
        status = qpylib_store.execute(
            "SELECT last_status FROM refresh_state WHERE name = 'detection'"
        ).fetchone()
        assert status[0] == "ok"
    finally:
        qpylib_store.close()
        http_store.close()
