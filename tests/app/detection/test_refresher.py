"""The refresher end to end against a dev console over HTTPS, with a real SQLite store: every planted
attack detected with the right platform, service-account flag and chain; nothing benign; the twin is one
detection; re-runs add nothing; faults and kills leave the store consistent."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.detection import refresher
from app.refresher import serve
from app.store import refresh_state

ROOT = Path(__file__).resolve().parents[3]


def detections(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM detections ORDER BY event_time, id").fetchall()


def summary(conn: sqlite3.Connection) -> set[tuple]:
    return {
        (
            r["event_name"],
            r["cloud_platform"],
            bool(r["is_service_account"]),
            r["chain_kind"],
            r["target_account"],
        )
        for r in detections(conn)
    }


def snapshot(conn: sqlite3.Connection) -> dict:
    """Everything a refresh writes, for before/after comparisons."""
    return {
        table: [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
        for table in ("detections", "detection_events", "follow_on_events", "chains", "chain_events")
    }


def test_first_refresh_detects_every_attack_and_nothing_benign(
    detection_console, gateway, store_conn
) -> None:
    result = refresher.refresh_once(store_conn, gateway)
    assert result.status == "ok", result.error
    assert summary(store_conn) == detection_console.expected["detections"]
    names = {r["event_name"] for r in detections(store_conn)}
    assert not names & detection_console.expected["benign"]

    twin = store_conn.execute("SELECT * FROM detections WHERE event_name = 'Add user'").fetchone()
    assert json.loads(twin["also_seen_in"]) == ["Office 365"]
    assert (
        store_conn.execute(
            "SELECT COUNT(*) FROM detection_events WHERE detection_id = ?", (twin["id"],)
        ).fetchone()[0]
        == 2
    )

    aws_chain = store_conn.execute(
        "SELECT c.* FROM chains c JOIN detections d ON d.chain_id = c.id "
        "WHERE d.target_account = 'svc-evil' AND d.event_name = 'CreateUser'"
    ).fetchone()
    assert json.loads(aws_chain["kinds"]) == ["aws_user_credential", "privilege_grant"]
    steps = [
        r["event_name"]
        for r in store_conn.execute(
            "SELECT event_name FROM chain_events WHERE chain_id = ? ORDER BY position", (aws_chain["id"],)
        )
    ]
    assert steps == ["CreateUser", "CreateAccessKey", "AttachUserPolicy"]
    user = store_conn.execute(
        "SELECT * FROM detections WHERE target_account = 'svc-evil' AND event_name = 'CreateUser'"
    ).fetchone()
    assert (user["severity"], user["confidence"]) == (10, "high")
    assert user["actor_id"] == "arn:aws:iam::111122223333:role/OpsAdmin"
    lone = store_conn.execute("SELECT * FROM detections WHERE target_account = 'ci-deploy'").fetchone()
    assert (lone["severity"], lone["confidence"], lone["chain_id"]) == (7, "medium", None)

    entra_chain = store_conn.execute(
        "SELECT chain_id FROM detections WHERE event_name = 'Add application'"
    ).fetchone()[0]
    assert [
        r[0]
        for r in store_conn.execute(
            "SELECT event_name FROM chain_events WHERE chain_id = ? ORDER BY position", (entra_chain,)
        )
    ] == ["Add application", "Add service principal", "Add service principal credentials"]

    garbled = store_conn.execute("SELECT * FROM detections WHERE target_account = 'garbled-user'").fetchone()
    assert (garbled["actor"], garbled["source_ip"], garbled["payload_ok"]) == ("garbler", "192.0.2.77", 0)

    state = refresh_state.get_refresh_state(store_conn, refresher.JOB)
    assert state["last_status"] == "ok" and state["watermark_ms"] == result.stop_ms


def test_a_cycle_reads_as_running_from_its_first_commit(
    detection_console, gateway, store_conn, monkeypatch
) -> None:
    """The cycle's first commit already beats: a status read before its first progress write (here, while
    it loads its configuration) sees it running, not "interrupted" (a crashed cycle's status)."""
    seen: list[dict] = []
    load_config = refresher.load_config

    def load_and_look(conn, gw):
        seen.append(refresher.status(conn))
        return load_config(conn, gw)

    monkeypatch.setattr(refresher, "load_config", load_and_look)
    assert refresher.refresh_once(store_conn, gateway).status == "ok"
    assert [(s["running"], s["last_status"], s["runs"]) for s in seen] == [(True, "running", 1)]


def test_second_run_and_full_requery_add_nothing(detection_console, gateway, store_conn) -> None:
    assert refresher.refresh_once(store_conn, gateway).status == "ok"
    before = snapshot(store_conn)
    again = refresher.refresh_once(store_conn, gateway)
    assert again.status == "ok" and again.inserted == 0
    # Steady state asks only for [watermark - overlap, now), not the whole day again.
    assert again.start_ms > again.stop_ms - 24 * 3_600_000 + 3_600_000
    # Forget the watermark: the whole lookback is read again and exact de-duplication drops all of it.
    with store_conn:
        refresh_state.save_refresh_state(store_conn, refresher.JOB, watermark_ms=None)
    full = refresher.refresh_once(store_conn, gateway)
    assert full.status == "ok" and full.rows_fetched >= len(detection_console.expected["detections"])
    assert full.inserted == 0
    assert snapshot(store_conn) == before


def test_qradar_fault_leaves_the_store_consistent_then_recovers(
    detection_console, gateway, store_conn
) -> None:
    # Results page fails on the first search, after Ariel already ran it.
    detection_console.faults.fail("/api/ariel/searches/*/results")
    try:
        failed = refresher.refresh_once(store_conn, gateway)
    finally:
        detection_console.faults.clear()
    assert failed.status == "error" and "QRadar" in failed.error
    state = refresh_state.get_refresh_state(store_conn, refresher.JOB)
    assert state["watermark_ms"] is None and state["last_status"] == "error" and state["last_error"]
    assert state["details"]["failures"] == 1
    assert store_conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 0
    status = refresher.status(store_conn, 300)
    assert status["last_error"] and not status["running"]
    assert status["next_refresh_ms"] - state["last_finished_ms"] == refresher.backoff_s(1, 300) * 1000

    detection_console.faults.error_searches(1)
    try:
        assert refresher.refresh_once(store_conn, gateway).status == "error"
    finally:
        detection_console.faults.clear()
    assert refresh_state.get_refresh_state(store_conn, refresher.JOB)["details"]["failures"] == 2

    ok = refresher.refresh_once(store_conn, gateway)
    assert ok.status == "ok"
    assert summary(store_conn) == detection_console.expected["detections"]
    assert refresher.status(store_conn, 300)["last_error"] is None


def test_killed_mid_cycle_then_restarted_loses_nothing(detection_console, store_path: Path) -> None:
    env = {**os.environ, **detection_console.env(), "PYTHONPATH": str(ROOT)}
    detection_console.faults.slow_searches(30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.refresher", "--once", "--db", str(store_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # wait until the cycle is running (its search is in Ariel)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the refresher never started its search"
            if store_path.exists():
                with sqlite3.connect(store_path) as conn:
                    conn.row_factory = sqlite3.Row
                    try:
                        state = refresh_state.get_refresh_state(conn, refresher.JOB)
                    except sqlite3.OperationalError:
                        state = {"details": {}}
                if state["details"].get("phase") == "detections":
                    break
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        detection_console.faults.clear()
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()

    from app.store.db import connect

    conn = connect(store_path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 0
        assert refresh_state.get_refresh_state(conn, refresher.JOB)["watermark_ms"] is None
        assert refresher.status(conn)["last_status"] in ("interrupted", "running")
    finally:
        conn.close()

    done = subprocess.run(
        [sys.executable, "-m", "app.refresher", "--once", "--db", str(store_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    conn = connect(store_path)
    try:
        assert summary(conn) == detection_console.expected["detections"]
        assert refresh_state.get_refresh_state(conn, refresher.JOB)["last_status"] == "ok"
        # The cycle also gave SQLite's planner statistics on the detections it stored.
        assert refresh_state.get_refresh_state(conn, refresh_state.STATISTICS_JOB)["last_status"] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'detections'").fetchone()[0] > 0
    finally:
        conn.close()


@pytest.mark.parametrize("queued", ["refresh", "cancel"])
def test_requests_are_stored_for_any_worker(store_conn, queued: str) -> None:
    from app.store import detections as store

    with store_conn:
        store.request_refresh(store_conn, queued, "analyst", refresher.now_ms())
    assert [r["requested_by"] for r in store.open_requests(store_conn, queued)] == ["analyst"]
    if queued == "refresh":
        assert refresher.status(store_conn, 300)["refresh_requested"] is True


def test_detection_query_passes_the_consoles_validator(detection_console, gateway, store_conn) -> None:
    from app.aql.detection import (
        detection_minute_counts,
        detection_query,
        follow_on_minute_counts,
        follow_on_query,
        log_activity_query,
    )
    from app.detection.config import load_config

    cfg = load_config(store_conn, gateway)
    now = refresher.now_ms()
    assert cfg.spec.target_property == "Account Name"  # the console defines it, so it is selected
    for text in (
        detection_query(cfg.spec, now - 3_600_000, now),
        follow_on_query(cfg.follow_on, now - 60_000, now),
        log_activity_query(cfg.spec),
        detection_minute_counts(cfg.spec, now - 600_000, now),
        follow_on_minute_counts(cfg.follow_on, now - 600_000, now),
    ):
        assert gateway.validate_aql(text) == []


def test_serve_runs_when_due_on_request_and_cancels(detection_console, store_path: Path) -> None:
    import threading

    from app.qradar import Gateway
    from app.store import detections as store
    from app.store.db import connect

    env = detection_console.env()
    stop = threading.Event()
    worker = threading.Thread(
        target=serve,
        kwargs={
            "conn_factory": lambda: connect(store_path),
            "gw_factory": lambda _c: Gateway.from_env(env, poll_wait_s=1),
            "stop_event": stop,
            "poll_s": 0.2,
        },
        daemon=True,
    )
    conn = connect(store_path)

    def wait_for(check, what: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = refresh_state.get_refresh_state(conn, refresher.JOB)
            if check(state):
                return state
            time.sleep(0.2)
        raise AssertionError(
            f"timed out waiting for {what}: {refresh_state.get_refresh_state(conn, refresher.JOB)}"
        )

    worker.start()
    try:
        wait_for(
            lambda s: s["runs"] >= 1 and s["last_status"] == "ok", "the first cycle (never run → at once)"
        )
        with conn:
            store.request_refresh(conn, "refresh", "analyst", refresher.now_ms())
        wait_for(lambda s: s["runs"] >= 2 and s["last_status"] == "ok", "the requested cycle")
        assert store.open_requests(conn, "refresh") == []

        detection_console.faults.slow_searches(60)
        with conn:
            store.request_refresh(conn, "refresh", "analyst", refresher.now_ms())
        wait_for(
            lambda s: s["last_status"] == "running" and s["details"].get("phase") == "detections",
            "the slow cycle to start",
        )
        assert refresher.status(conn, 300)["running"] is True
        with conn:
            store.request_refresh(conn, "cancel", "analyst", refresher.now_ms())
        state = wait_for(lambda s: s["last_status"] == "cancelled", "the cancel")
        assert state["last_error"] is None and store.open_requests(conn, "cancel") == []
        assert summary(conn) == detection_console.expected["detections"]  # nothing lost by cancelling
    finally:
        detection_console.faults.clear()
        stop.set()
        worker.join(timeout=60)
        conn.close()
    assert not worker.is_alive()


def _fields(conn: sqlite3.Connection) -> dict[str, dict]:
    """event_key → the detection's fields, ids and stamps left out; and the chains by key and members."""
    skip = {"id", "stored_at", "chain_id", "triage_at"}
    rows = {r["event_key"]: {k: r[k] for k in r.keys() if k not in skip} for r in detections(conn)}  # noqa: SIM118
    chains = {
        (r["chain_key"], r["kind"], r["members"])
        for r in conn.execute(
            "SELECT c.chain_key, c.kind, group_concat(e.event_key, ',') AS members FROM chains c "
            "JOIN (SELECT * FROM chain_events ORDER BY position) e ON e.chain_id = c.id GROUP BY c.id"
        )
    }
    return {"detections": rows, "chains": chains}


def test_fault_mid_cycle_keeps_committed_pages_then_stores_what_a_clean_cycle_would(
    detection_console, gateway, store_conn, tmp_path: Path
) -> None:
    """Pages commit one by one: QRadar failing on the third results page leaves the first pages stored with
    the watermark after them (never past what is stored); the next cycle stores exactly what a fault-free
    cycle over the same window does — fields, twins and chains."""
    import dataclasses

    from app.detection.config import load_config
    from app.store.db import connect

    now = refresher.now_ms()
    cfg = dataclasses.replace(load_config(store_conn, gateway), page_size=3)
    clean_conn = connect(tmp_path / "clean.db")
    try:
        clean = refresher.refresh_once(clean_conn, gateway, now=now, cfg=cfg)
        assert clean.status == "ok" and clean.rows_fetched > 9, clean
        expected = _fields(clean_conn)
    finally:
        clean_conn.close()
    assert expected["chains"], "the scenario has chains: the comparison would be empty"

    calls = {"results": 0}
    real_results = gateway.results

    def results_failing_from_the_third(search_id: str, start: int, end: int) -> list[dict]:
        calls["results"] += 1
        if calls["results"] == 3:
            detection_console.faults.unavailable("/api/ariel/searches/*/results", count=100)
        return real_results(search_id, start, end)

    gateway.results = results_failing_from_the_third
    try:
        failed = refresher.refresh_once(store_conn, gateway, now=now, cfg=cfg)
    finally:
        detection_console.faults.clear()
        gateway.results = real_results
    assert failed.status == "error" and "QRadar" in (failed.error or ""), failed
    state = refresh_state.get_refresh_state(store_conn, refresher.JOB)
    stored = _fields(store_conn)["detections"]
    assert 0 < len(stored) < len(expected["detections"]), "the pages before the fault were not kept"
    assert state["watermark_ms"] is not None and state["watermark_ms"] < now
    assert all(d["event_time"] < state["watermark_ms"] for d in stored.values()), (
        "watermark before stored rows"
    )

    recovered = refresher.refresh_once(store_conn, gateway, now=now, cfg=cfg)
    assert recovered.status == "ok" and recovered.watermark_ms == now, recovered
    assert _fields(store_conn) == expected


def test_steady_state_reads_only_minutes_that_changed_in_the_overlap(tmp_path: Path) -> None:
    """After a cycle the next one asks QRadar for per-minute counts of the overlap and re-reads only from
    the first minute whose count changed — an event stored late inside the overlap is still found — and
    nothing at all of the overlap when no count changed."""
    from app.features import register_settings
    from app.qradar import Gateway
    from app.store.db import connect
    from devconsole.launcher import start_serve, stop_serve
    from devconsole.store import EventStore
    from tests.app.detection.conftest import cloudtrail

    register_settings()
    minute = 60_000
    now = refresher.now_ms() // minute * minute - 30 * minute
    events = EventStore(tmp_path / "console" / "events.db")
    events.declare_custom_property("Account Name")
    qid = events.ensure_qid(347, "CreateUser", 3035)
    source = events.ensure_log_source("steady-cloudtrail", 347)

    def add(t: int, name: str) -> None:
        record = cloudtrail(t, "CreateUser", {"userName": name}, {"user": {"userName": name}})
        events.insert_events(
            [
                {
                    "starttime": t,
                    "qid": qid,
                    "category": 3035,
                    "highlevelcategory": 3000,
                    "logsourceid": source,
                    "devicetype": 347,
                    "magnitude": 6,
                    "username": "builder",
                    "sourceip": "192.0.2.9",
                    "payload": json.dumps(record),
                    "props": {"Account Name": name},
                }
            ]
        )

    for n, offset in enumerate((-20, -9, -8, -2)):
        add(now + offset * minute + 5_000, f"early-{n}")
    served = start_serve(
        tmp_path / "console", "--manifest", str(ROOT / "manifest.json"), "--search-reuse", "0"
    )
    conn = connect(tmp_path / "app.db")
    try:
        tokens = json.loads((tmp_path / "console" / "tokens.json").read_text())
        gw = Gateway.from_env(
            {
                "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{served.port}",
                "SEC_ADMIN_TOKEN": tokens["service"],
                "REQUESTS_CA_BUNDLE": served.ca_path,
            },
            poll_wait_s=1,
        )
        first = refresher.refresh_once(conn, gw, now=now)
        assert (first.status, first.inserted) == ("ok", 4), first

        add(now - 5 * minute + 7_000, "late")  # stored late, inside the overlap
        add(now + 1 * minute, "new")
        second = refresher.refresh_once(conn, gw, now=now + 3 * minute)
        assert (second.status, second.inserted) == ("ok", 2), second
        assert second.start_ms == now - 5 * minute  # the late event's minute, not the whole overlap
        assert second.rows_fetched == 3  # the late one, the one at −2 min, the new one

        third = refresher.refresh_once(conn, gw, now=now + 6 * minute)
        assert (third.status, third.inserted, third.rows_fetched) == ("ok", 0, 0), third
        assert third.start_ms == now + 3 * minute  # nothing changed: from the watermark on
        assert third.details["count_rows"] >= 1

        # Searches cut by their LIMIT (2 rows): each cycle resumes where the last stopped; once caught up,
        # the overlap's counts are complete (the part before the resume point counted first) and the next
        # cycle reads nothing again.
        import dataclasses

        from app.detection.config import load_config

        cfg = load_config(conn, gw)
        cfg = dataclasses.replace(cfg, spec=dataclasses.replace(cfg.spec, row_limit=2))
        for n in range(5):
            add(now + 7 * minute + n * 20_000, f"burst-{n}")
        cycles = []
        while not cycles or cycles[-1].details.get("resume_ms") is not None:
            cycles.append(refresher.refresh_once(conn, gw, now=now + 9 * minute, cfg=cfg))
            assert cycles[-1].status == "ok" and len(cycles) < 10, cycles[-1]
        assert len(cycles) >= 3 and sum(c.inserted for c in cycles) == 5
        quiet = refresher.refresh_once(conn, gw, now=now + 10 * minute, cfg=cfg)
        assert (quiet.status, quiet.inserted, quiet.rows_fetched) == ("ok", 0, 0), quiet
        assert quiet.start_ms == now + 9 * minute
        assert {r["target_account"] for r in detections(conn)} == {
            "early-0",
            "early-1",
            "early-2",
            "early-3",
            "late",
            "new",
            *(f"burst-{n}" for n in range(5)),
        }
    finally:
        conn.close()
        stop_serve(served.process)
