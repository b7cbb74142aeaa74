"""QRadar faults during a refresh and during UI/API use.

Every fault the dev console injects (500/1020, 503/1010, a hang past the client timeout, an expired token,
a search ending in ERROR, a search CANCELED from outside mid-run, a slow search) plus a refused connection:

* during a refresh cycle: the cycle rolls back, records what happened in words (``/api/status``'s
  ``last_error``), schedules its retry with backoff, and the next cycle, with the fault gone, leaves exactly
  the detections of a fault-free cycle over the same window (same event keys, same field values);
* during API use (detection list, manual refresh, hunting run, Offense Summary fragment): the app answers a
  JSON error naming QRadar (never an unhandled 500) or a degraded page, and works again afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app import auth
from app.detection import refresher
from app.qradar.gateway import Gateway
from app.qradar.transport import HttpTransport
from app.store import db
from tests.app.conftest import _fresh_app, qradar_env

CLIENT_TIMEOUT_S = 2.0  # the gateway's read timeout in these tests; "hang" faults last longer
HANG_S = 6.0
# Fields compared between a faulted and a fault-free run: everything but row ids and wall-clock stamps.
IGNORED_FIELDS = {"id", "stored_at", "chain_id"}


def gateway(devconsole: Any, fqdn: str | None = None) -> Gateway:
    transport = HttpTransport(
        fqdn or f"127.0.0.1:{devconsole.port}",
        admin_token=devconsole.tokens["service"],
        ca_bundle=str(devconsole.ca_path),
        read_timeout_s=CLIENT_TIMEOUT_S,
    )
    # Calls made with the user's own token (who is logged in) get the same short timeout.
    user_transport = HttpTransport(
        fqdn or f"127.0.0.1:{devconsole.port}",
        admin_token=None,
        ca_bundle=str(devconsole.ca_path),
        read_timeout_s=CLIENT_TIMEOUT_S,
    )
    return Gateway(transport, user_transport=user_transport, poll_wait_s=1, poll_interval_s=0.1)


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def detections(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """event_key → the detection's fields (ids and stamps left out)."""
    rows = conn.execute("SELECT * FROM detections").fetchall()
    # sqlite3.Row iterates its values, hence keys()
    out = {r["event_key"]: {k: r[k] for k in r.keys() if k not in IGNORED_FIELDS} for r in rows}  # noqa: SIM118
    assert len(out) == len(rows)
    return out


def chain_shapes(conn: sqlite3.Connection) -> set[tuple]:
    """Chains by their stable key and member events (ids differ between stores)."""
    return {
        (r["chain_key"], r["kind"], r["members"])
        for r in conn.execute(
            "SELECT c.chain_key, c.kind, group_concat(e.event_key, ',') AS members FROM chains c "
            "JOIN (SELECT * FROM chain_events ORDER BY position) e ON e.chain_id = c.id GROUP BY c.id"
        )
    }


@pytest.fixture(autouse=True)
def _clean_faults(devconsole: Any) -> Iterator[None]:
    devconsole.faults.clear()
    yield
    devconsole.faults.clear()


@pytest.fixture(scope="module")
def now_ms() -> int:
    """One fixed cycle end for the whole module, so every run searches the same window."""
    return refresher.now_ms()


@pytest.fixture(scope="module")
def baseline(devconsole: Any, now_ms: int, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fault-free cycle over the module's window."""
    conn = db.connect(tmp_path_factory.mktemp("baseline") / "store.db")
    try:
        result = refresher.refresh_once(conn, gateway(devconsole), now=now_ms)
        assert result.status == "ok", result
        found = detections(conn)
        assert found, "the seeded scenario gave no detections: the comparison would be empty"
        return {"detections": found, "chains": chain_shapes(conn), "watermark": result.watermark_ms}
    finally:
        conn.close()


def cancel_new_search_from_outside(devconsole: Any, known: set[str], stop: threading.Event) -> None:
    """Cancel (as the admin, through the REST API) the first search that was not in ``known``."""
    api = devconsole.api("admin")
    while not stop.is_set():
        ids = set(api.get(devconsole.url("/api/ariel/searches"), timeout=10).json()) - known
        if ids:
            for search_id in ids:
                api.post(
                    devconsole.url(f"/api/ariel/searches/{search_id}"),
                    params={"status": "CANCELED"},
                    timeout=10,
                )
            return
        time.sleep(0.05)


# fault name → (switch it on, words the recorded error must contain)
RefreshFault = Callable[[Any], None]
REFRESH_FAULTS: dict[str, tuple[RefreshFault, tuple[str, ...]]] = {
    "500 on search start": (
        lambda dc: dc.faults.fail("/api/ariel/searches", method="POST"),
        ("QRadar", "1020"),
    ),
    "503 on status poll": (
        lambda dc: dc.faults.unavailable("/api/ariel/searches/*", method="GET"),
        ("QRadar", "503"),
    ),
    "503 on results": (lambda dc: dc.faults.unavailable("/api/ariel/searches/*/results"), ("QRadar",)),
    "hang past the client timeout": (
        lambda dc: dc.faults.hang("/api/ariel/searches", HANG_S, method="POST"),
        ("QRadar", "did not answer"),
    ),
    "expired token": (lambda dc: dc.faults.expire_token("/api/ariel/searches*"), ("QRadar", "401")),
    "search ERROR": (lambda dc: dc.faults.error_searches(1), ("QRadar", "Injected failure")),
}


def error_words_ok(message: str, words: tuple[str, ...]) -> bool:
    return all(w.lower() in message.lower() for w in words)


def assert_recovers_like_baseline(
    conn: sqlite3.Connection, gw: Gateway, now_ms: int, baseline: dict[str, Any]
) -> None:
    recovered = refresher.refresh_once(conn, gw, now=now_ms)
    assert recovered.status == "ok", recovered
    state = refresher.status(conn, 300)
    assert state["last_status"] == "ok" and state["last_error"] is None
    assert state["consecutive_failures"] == 0
    assert state["watermark_ms"] == baseline["watermark"]
    got = detections(conn)
    assert set(got) == set(baseline["detections"]), "lost or extra detections after the fault"
    assert got == baseline["detections"], "field values differ from the fault-free run"
    assert chain_shapes(conn) == baseline["chains"]


@pytest.mark.parametrize("fault", list(REFRESH_FAULTS))
def test_refresh_fault_is_recorded_backed_off_and_recovered(
    fault: str, devconsole: Any, baseline: dict[str, Any], now_ms: int, tmp_path: Path
) -> None:
    switch_on, words = REFRESH_FAULTS[fault]
    conn = db.connect(tmp_path / "store.db")
    gw = gateway(devconsole)
    try:
        switch_on(devconsole)
        failed = refresher.refresh_once(conn, gw, now=now_ms)
        assert failed.status == "error", failed
        state = refresher.status(conn, 300)
        assert state["last_status"] == "error" and not state["running"]
        assert error_words_ok(state["last_error"], words), state["last_error"]
        assert state["watermark_ms"] is None, "a failed cycle moved the watermark"
        assert conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 0, "half a cycle was stored"
        assert state["consecutive_failures"] == 1
        # Backoff: the retry is due BACKOFF_BASE_S after the failure, not a full interval (nor at once).
        assert state["next_refresh_ms"] - state["last_finished_ms"] == refresher.backoff_s(1, 300) * 1000
        devconsole.faults.clear()
        assert_recovers_like_baseline(conn, gw, now_ms, baseline)
    finally:
        conn.close()


def test_repeated_failures_back_off_longer_then_recover(
    devconsole: Any, baseline: dict[str, Any], now_ms: int, tmp_path: Path
) -> None:
    conn = db.connect(tmp_path / "store.db")
    gw = gateway(devconsole)
    try:
        devconsole.faults.fail("/api/ariel/searches", count=3, method="POST")
        delays = []
        for _ in range(3):
            assert refresher.refresh_once(conn, gw, now=now_ms).status == "error"
            state = refresher.status(conn, 300)
            delays.append(state["next_refresh_ms"] - state["last_finished_ms"])
        assert delays == [15_000, 30_000, 60_000]
        assert state["consecutive_failures"] == 3
        assert_recovers_like_baseline(conn, gw, now_ms, baseline)
    finally:
        conn.close()


def test_connection_refused_is_recorded_and_recovered(
    devconsole: Any, baseline: dict[str, Any], now_ms: int, tmp_path: Path
) -> None:
    conn = db.connect(tmp_path / "store.db")
    try:
        failed = refresher.refresh_once(conn, gateway(devconsole, f"127.0.0.1:{closed_port()}"), now=now_ms)
        assert failed.status == "error"
        state = refresher.status(conn, 300)
        assert "QRadar" in state["last_error"] and state["consecutive_failures"] == 1
        assert conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 0
        assert_recovers_like_baseline(conn, gateway(devconsole), now_ms, baseline)
    finally:
        conn.close()


def test_slow_search_completes_with_the_same_detections(
    devconsole: Any, baseline: dict[str, Any], now_ms: int, tmp_path: Path
) -> None:
    conn = db.connect(tmp_path / "store.db")
    try:
        devconsole.faults.slow_searches(CLIENT_TIMEOUT_S + 1)  # longer than one poll, shorter than the budget
        seen_progress: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            watcher = db.connect(tmp_path / "store.db")
            try:
                while not stop.is_set():
                    seen_progress.append(refresher.status(watcher, 300)["progress"])
                    time.sleep(0.1)
            finally:
                watcher.close()

        thread = threading.Thread(target=watch)
        thread.start()
        try:
            result = refresher.refresh_once(conn, gateway(devconsole), now=now_ms)
        finally:
            stop.set()
            thread.join()
        assert result.status == "ok", result
        assert any(0 < p < 100 for p in seen_progress), "a slow search never showed progress in /api/status"
        assert detections(conn) == baseline["detections"]
    finally:
        conn.close()


def test_search_canceled_from_outside_mid_run(
    devconsole: Any, baseline: dict[str, Any], now_ms: int, tmp_path: Path
) -> None:
    conn = db.connect(tmp_path / "store.db")
    gw = gateway(devconsole)
    try:
        devconsole.faults.slow_searches(5)  # keeps the search running while we cancel it
        known = set(devconsole.api("admin").get(devconsole.url("/api/ariel/searches"), timeout=10).json())
        stop = threading.Event()
        canceller = threading.Thread(target=cancel_new_search_from_outside, args=(devconsole, known, stop))
        canceller.start()
        try:
            failed = refresher.refresh_once(conn, gw, now=now_ms)
        finally:
            stop.set()
            canceller.join()
        assert failed.status == "error", failed
        state = refresher.status(conn, 300)
        assert "cancel" in state["last_error"].lower(), state["last_error"]
        assert state["watermark_ms"] is None
        assert conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 0
        devconsole.faults.clear()
        assert_recovers_like_baseline(conn, gw, now_ms, baseline)
    finally:
        conn.close()


# -- during UI/API use ------------------------------------------------------------------------------------


@pytest.fixture
def login(devconsole: Any) -> Callable[[Any, str], dict[str, str]]:
    """``login(client, user)``: that user's SEC and QRadarCSRF cookies; returns the CSRF header."""

    def do_login(client: Any, user: str) -> dict[str, str]:
        csrf = secrets.token_hex(16)
        client.set_cookie("SEC", devconsole.tokens[user])
        client.set_cookie("QRadarCSRF", csrf)
        return {"QRadarCSRF": csrf}

    return do_login


@pytest.fixture
def faulty_app(devconsole: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The app (tests/app's factory, a tmp store) with a gateway whose client timeout is short (so hang faults
    end quickly) and its store filled by one fault-free refresh."""
    app = _fresh_app(monkeypatch, tmp_path, qradar_env(devconsole))
    app.config["QRADAR_GATEWAY"] = gateway(devconsole)
    with app.app_context():
        result = refresher.refresh_once(db.get_db(), app.config["QRADAR_GATEWAY"])
        assert result.status == "ok", result
    return app


def assert_json_error(response: Any, status: int, code: str) -> None:
    """``response`` is the app's JSON error with this status and code, its message naming QRadar."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    error = response.get_json()["error"]
    assert (error["status"], error["code"]) == (status, code), error
    assert "qradar" in error["message"].lower(), error


USER_LOOKUP = "/api/config/access/*"
# The app's answer while the user lookup fails: a QRadar error answer is a 502 quoting it, no answer in time
# a 503; a user token QRadar rejects means "log in to QRadar again".
USER_LOOKUP_ERRORS = {
    "500": (502, "qradar_error"),
    "503/1010": (502, "qradar_error"),
    "hang": (503, "qradar_unavailable"),
    "expired token": (401, "not_logged_in"),
}
# The same on Ariel (hunting runs with the app's own token): QRadar's 401 is passed on as a QRadar error.
ARIEL_ERRORS = {**USER_LOOKUP_ERRORS, "expired token": (401, "qradar_error")}
# A hunting run answers its search handle at once (202) and the page polls it.
ANSWER_WITHOUT_FAULT = {"detections": 200, "status": 200, "manual refresh": 202, "hunting run": 202}
API_FAULTS: dict[str, Callable[[Any, str], None]] = {
    "500": lambda dc, path: dc.faults.fail(path, count=5),
    "503/1010": lambda dc, path: dc.faults.unavailable(path, count=5),
    "hang": lambda dc, path: dc.faults.hang(path, HANG_S, count=5),
    "expired token": lambda dc, path: dc.faults.expire_token(path, count=5),
}


@pytest.mark.parametrize("fault", list(API_FAULTS))
@pytest.mark.parametrize("call", ["detections", "status", "manual refresh", "hunting run"])
def test_api_calls_answer_a_clear_error_while_qradar_fails(
    fault: str, call: str, faulty_app: Any, devconsole: Any, login: Any
) -> None:
    client = faulty_app.test_client()
    headers = login(client, "analyst")

    def do() -> Any:
        if call == "detections":
            return client.get("/api/detections?platform=AWS&limit=5")
        if call == "status":
            return client.get("/api/status")
        if call == "manual refresh":
            return client.post("/api/refresh", headers=headers)
        return client.post("/api/hunting/run", json={"query": "aws-access-keys"}, headers=headers)

    # Hunting reaches Ariel; the other calls reach QRadar only to learn who the user is.
    path = "/api/ariel/searches*" if call == "hunting run" else USER_LOOKUP
    if call != "hunting run":
        auth.token_cache.clear()
    API_FAULTS[fault](devconsole, path)
    faulted = do()
    assert_json_error(faulted, *(ARIEL_ERRORS if call == "hunting run" else USER_LOOKUP_ERRORS)[fault])

    devconsole.faults.clear()
    auth.token_cache.clear()
    recovered = do()
    assert recovered.status_code == ANSWER_WITHOUT_FAULT[call], recovered.get_data(as_text=True)
    assert recovered.get_json() is not None


# How the fragment words each fault of its own QRadar calls (HTML-escaped as on the page).
FRAGMENT_ERRORS = {
    "500": "QRadar answered HTTP 500: Injected fault",
    "503/1010": "QRadar answered HTTP 503: Injected fault",
    "hang": "QRadar is not reachable right now",
    "expired token": "QRadar refused the app&#39;s authorized service token",
    "search ERROR": "the Ariel search failed in QRadar",
}


@pytest.mark.parametrize("fault", [*API_FAULTS, "search ERROR"])
def test_offense_fragment_degrades_while_qradar_fails(
    fault: str, faulty_app: Any, devconsole: Any, login: Any
) -> None:
    from app import settings

    # The fragment caches a failed search and retries after offense_retry_after_error_s (its backoff);
    # shortened here so the test sees the retry.
    with faulty_app.app_context():
        settings.update(db.get_db(), {"offense_retry_after_error_s": 1}, actor="test")
    client = faulty_app.test_client()
    login(client, "analyst")
    offense_id = devconsole.scenario["offenses"][0]["id"]
    # The user, their offense access and the log sources they may see are known before the fault, so the
    # fault meets the fragment's own calls, not those look-ups.
    assert client.get("/api/me").status_code == 200
    assert client.get(f"/api/detections?offense={offense_id}").status_code == 200
    if fault == "search ERROR":
        devconsole.faults.error_searches(5)
    else:
        API_FAULTS[fault](devconsole, "/api/*")
    faulted = client.get(f"/offense/fragment/{offense_id}")
    assert faulted.status_code == 200, faulted.get_data(as_text=True)
    html = faulted.get_json()["html"]
    assert 'data-state="error"' in html, html[:500]
    assert "Could not list this offense's cloud account creations: " + FRAGMENT_ERRORS[fault] in html, html

    devconsole.faults.clear()
    time.sleep(1.6)
    deadline = time.monotonic() + 60
    while True:  # the fragment may answer "searching" while its (retried) search runs
        recovered = client.get(f"/offense/fragment/{offense_id}")
        assert recovered.status_code == 200, recovered.get_data(as_text=True)
        html = recovered.get_json()["html"]
        if 'data-state="searching"' not in html or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert 'data-state="error"' not in html, html[:500]


def test_app_stays_up_and_status_says_what_happened(faulty_app: Any, devconsole: Any, login: Any) -> None:
    """A failed refresh is visible to the analyst in words through /api/status, while the list still
    answers from the store (degraded, not down)."""
    client = faulty_app.test_client()
    login(client, "analyst")
    stored = client.get("/api/detections?limit=1").get_json()["total"]
    devconsole.faults.unavailable("/api/ariel/searches", method="POST")
    with faulty_app.app_context():
        assert refresher.refresh_once(db.get_db(), faulty_app.config["QRADAR_GATEWAY"]).status == "error"
    status = client.get("/api/status").get_json()
    assert status["last_status"] == "error" and "QRadar" in status["last_error"]
    assert "503" in status["last_error"] or "unavailable" in status["last_error"].lower()
    listing = client.get("/api/detections?limit=1")
    assert listing.status_code == 200 and listing.get_json()["total"] == stored
    with contextlib.suppress(Exception):
        devconsole.faults.clear()
