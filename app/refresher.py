"""The refresher process — the background composition root: ``python -m app.refresher [--once] [--db PATH]``.

supervisord starts it beside gunicorn. At start it registers every setting (`app.features`), opens the
store and builds the gateway from the settings that shape it, then runs `JOBS` (`app.jobs.JobRunner`):
each job on its own schedule, a failing job never stopping the others, each one's status in ``GET
/api/status`` (``jobs``). ``--once`` runs every job once (the detection refresh forced) and exits.
A later job is one more entry in `JOBS`. This module imports no Flask view.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import threading
from collections.abc import Callable

from app import features, settings
from app.audit_retention import AUDIT_RETENTION_JOB
from app.detection.coalescing import COALESCING_JOB
from app.detection.reconcile import RECONCILE_JOB
from app.detection.refresher import REFRESH_JOB
from app.detection.selfcheck import SELF_CHECK_JOB
from app.jobs import Job, JobContext, JobRunner
from app.offense.sync import OFFENSE_LINKS_JOB
from app.qradar import Gateway, build_gateway, qpylib_available
from app.store import refresh_state
from app.store.db import connect, default_db_path, store_dir
from app.tuning.jobs import ALLOWLIST_EXPIRY_JOB, REFERENCE_DATA_JOB

log = logging.getLogger("app.refresher")


def refresh_planner_statistics(ctx: JobContext) -> str:
    """The store's query-planner statistics (ANALYZE), when `refresh_state` says they are due."""
    ran = refresh_state.refresh_planner_statistics_if_due(ctx.conn, ctx.now_ms())
    return "analyzed" if ran else "not due"


PLANNER_STATISTICS_JOB = Job(
    name="planner_statistics",
    description="Query planner statistics of the store (ANALYZE), every six hours.",
    run=refresh_planner_statistics,
    interval_s=lambda _conn: 600,  # how often it asks; refresh_planner_statistics_if_due keeps the 6 h
)

# In run order within a tick: the offense sync follows the detection refresh it depends on.
JOBS: list[Job] = [
    REFRESH_JOB,
    ALLOWLIST_EXPIRY_JOB,
    REFERENCE_DATA_JOB,
    OFFENSE_LINKS_JOB,
    PLANNER_STATISTICS_JOB,
    AUDIT_RETENTION_JOB,
    SELF_CHECK_JOB,
    COALESCING_JOB,
    RECONCILE_JOB,
]


# The refresher's page cache: a page of new rows touches a leaf of each of the detections' indexes, and with
# SQLite's default 2 MiB those leaves are read again from the file for every page (bench.refresh: 5-8 % of
# the refresh's CPU at 100,000 events). 16 MiB keeps its peak RSS far below the 120 MiB it is allowed.
REFRESHER_CACHE_KIB = 16 * 1024


def gateway_for(conn: sqlite3.Connection, env: dict[str, str] | None = None) -> Gateway:
    """The refresher's gateway, shaped by the settings stored in ``conn``'s store."""
    return build_gateway(
        env,
        settings.get("api_version", conn),
        settings.get("current_user_path", conn),
        settings.get("search_poll_wait_s", conn),
    )


def serve(
    conn_factory: Callable[[], sqlite3.Connection],
    gw_factory: Callable[[sqlite3.Connection], Gateway],
    *,
    once: bool = False,
    stop_event: threading.Event | None = None,
    poll_s: float = 1.0,
    jobs: list[Job] | None = None,
) -> None:
    """Run the jobs when due until `stop_event` is set (SIGTERM/SIGINT set it); with ``once``, one tick
    that runs every job, then return."""
    features.register_settings()
    stop_event = stop_event or threading.Event()
    conn = conn_factory()
    try:
        runner = JobRunner(JOBS if jobs is None else jobs, JobContext(conn, gw_factory(conn)))
        while not stop_event.is_set():
            if once:
                runner.run_all()
                return
            runner.tick()
            stop_event.wait(poll_s)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m app.refresher [--once] [--db PATH]``: the refresher process (supervisord runs it)."""
    parser = argparse.ArgumentParser(prog="python -m app.refresher", description=__doc__.split("\n")[0])
    parser.add_argument("--once", action="store_true", help="run every job once and exit")
    parser.add_argument("--db", default=os.environ.get("APP_DATABASE") or None, help="SQLite store file")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    db_path = args.db or str(default_db_path(store_dir(features.platform_store_dir())))
    stop_event = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_event.set())
    log.info(
        "refresher started: QRadar through %s, store %s, jobs: %s",
        "qpylib" if qpylib_available() else "HTTP",
        db_path,
        ", ".join(job.name for job in JOBS),
    )
    serve(
        lambda: connect(db_path, cache_kib=REFRESHER_CACHE_KIB),
        gateway_for,
        once=args.once,
        stop_event=stop_event,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
