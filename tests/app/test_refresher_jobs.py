"""The refresher's jobs (app.jobs, app.refresher): each job on its own schedule, a failing job isolated and
reported in GET /api/status, every setting known when the process starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.jobs import Job, JobContext, JobRunner, backoff_s
from app.refresher import JOBS, serve
from app.store import db

ROOT = Path(__file__).resolve().parents[2]


def _boom(_ctx: JobContext) -> str:
    raise RuntimeError("the disk is on fire")


BOOM = Job(name="boom", description="always fails", run=_boom, interval_s=lambda _conn: 300)


def test_a_failing_job_does_not_stop_the_others_and_shows_in_status(app, client, login) -> None:
    from app.qradar import get_gateway

    with app.app_context():
        gw = get_gateway()
    path = app.config["DATABASE"]
    # The failing job first: every real job after it must still run, the detection refresh included.
    serve(lambda: db.connect(path), lambda _conn: gw, once=True, jobs=[BOOM, *JOBS])

    login(client, "analyst")
    status = client.get("/api/status").get_json()
    assert status["last_status"] == "ok" and status["counts"]["detections"] > 0
    jobs = {job["name"]: job for job in status["jobs"]}
    assert list(jobs) == ["boom", *(job.name for job in JOBS)]
    boom = jobs["boom"]
    assert boom["last_status"] == "error"
    assert boom["last_error"] == "internal error: RuntimeError: the disk is on fire"
    assert boom["consecutive_failures"] == 1 and boom["runs"] == 1
    assert boom["next_due_ms"] - boom["last_finished_ms"] == backoff_s(1, 300) * 1000
    for job in JOBS:
        ran = jobs[job.name]
        assert ran["last_status"] == "ok", ran
        assert ran["last_error"] is None and ran["runs"] == 1 and ran["last_summary"]
    assert jobs["detection"]["last_summary"].startswith("ok: ")


def test_each_job_keeps_its_own_schedule_and_backoff(tmp_path) -> None:
    conn = db.connect(tmp_path / "store.db")
    calls: list[str] = []
    outcomes = {"flaky": [RuntimeError("first"), RuntimeError("second"), None]}

    def flaky(_ctx: JobContext) -> str:
        outcome = outcomes["flaky"].pop(0)
        calls.append("flaky")
        if outcome is not None:
            raise outcome
        return "fine"

    def steady(_ctx: JobContext) -> str:
        calls.append("steady")
        return "steady"

    def follower(_ctx: JobContext) -> str:
        calls.append("follower")
        return "followed"

    runner = JobRunner(
        [
            Job("flaky", "fails twice", flaky, interval_s=lambda _c: 600),
            Job("steady", "every 10 min", steady, interval_s=lambda _c: 600),
            Job("follower", "after flaky", follower, interval_s=lambda _c: 600, after="flaky"),
            Job("off", "interval 0", steady, interval_s=lambda _c: 0),
        ],
        JobContext(conn, gateway=None),
    )
    assert runner.tick() == ["flaky", "steady", "follower"]  # list order; the follower after flaky ran
    assert runner.tick() == []  # nothing due: the failure backs off 15 s, the others wait 10 min

    def due_now(name: str) -> None:
        with db.transaction(conn):
            conn.execute(
                "UPDATE refresh_state SET details_json = json_set(details_json, '$.next_due_ms', 0) "
                "WHERE name = ?",
                (f"job:{name}",),
            )

    due_now("flaky")
    assert runner.tick() == ["flaky", "follower"]
    from app.store import jobs as job_store

    flaky_state = job_store.get(conn, "flaky")
    assert flaky_state["consecutive_failures"] == 2 and flaky_state["last_error"].endswith("second")
    assert flaky_state["next_due_ms"] - flaky_state["last_finished_ms"] == backoff_s(2, 600) * 1000
    due_now("flaky")
    assert runner.tick() == ["flaky", "follower"]
    flaky_state = job_store.get(conn, "flaky")
    assert (flaky_state["last_status"], flaky_state["consecutive_failures"]) == ("ok", 0)
    assert flaky_state["next_due_ms"] - flaky_state["last_finished_ms"] == 600_000
    assert calls.count("steady") == 1 and job_store.get(conn, "off")["last_status"] == "never"
    conn.close()


PROBE = """
import json, sys
from app import settings
import app.refresher as refresher

imported_views = sorted(m for m in sys.modules if m.startswith("app.") and m.rsplit(".", 1)[-1] in ("views", "api"))
known_at_import = sorted(settings.REGISTRY)
seen = {}

def probe(ctx):
    # The fragment's and the offense sync's settings: modules this process never imports.
    seen.update({k: settings.get(k, ctx.conn) for k in ("offense_fragment_budget_s", "offense_link_interval_s")})
    return "probed"

from app.jobs import Job
from app.store import db
job = Job("probe", "reads settings", probe, interval_s=lambda _c: 60)
refresher.serve(lambda: db.connect(sys.argv[1]), lambda _c: None, once=True, jobs=[job])
print(json.dumps({"views": imported_views, "at_import": known_at_import, "seen": seen}))
"""


def test_the_refresher_knows_every_setting_at_start_and_imports_no_view(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "store.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["views"] == []
    assert found["at_import"] == []  # importing registers nothing ...
    assert found["seen"] == {"offense_fragment_budget_s": 4, "offense_link_interval_s": 900}  # ... start does
