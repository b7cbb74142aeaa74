"""The refresher's job runner: named jobs, each with its own schedule, failure isolation and status.

A `Job` is a function of a `JobContext` (the refresher's store connection and gateway) plus when to run it:

* ``interval_s(conn)`` — seconds between runs (0 turns the job off); after a failure the runner retries
  sooner, 15 s, 30 s, 60 s … capped at the interval (`backoff_s`), like the detection refresh;
* ``due_ms(ctx)`` — optional: the job keeps its own schedule (the detection refresh: "refresh now"
  requests, its watermark's backoff) and the runner asks it instead;
* ``after`` — optional: the job runs right after the named job ran in the same tick (the offense sync
  reads the detection watermark, so it follows each detection cycle) instead of on an interval.

`JobRunner.tick` runs every due job in list order. A job that raises is rolled back, logged and recorded
(``last_status`` "error", ``last_error``, consecutive failures); the others run as if nothing happened.
Each job's status is a ``refresh_state`` row named ``job:<name>`` (`app.store.jobs`), which ``GET
/api/status`` lists. Adding a job is one `Job(...)` entry in the refresher's list (`app.refresher.JOBS`).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.store import jobs as job_store
from app.store.db import transaction

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 15
MAX_ERROR_CHARS = 500


def now_ms() -> int:
    return int(time.time() * 1000)


def backoff_s(failures: int, interval_s: int) -> int:
    """Seconds before retrying after `failures` consecutive failures: 15, 30, 60, … capped at the interval."""
    return int(min(interval_s, BACKOFF_BASE_S * 2 ** max(0, failures - 1)))


class JobFailed(Exception):
    """A job's run failed in a way it already handled (e.g. QRadar refused): recorded as its error."""


@dataclass
class JobContext:
    conn: sqlite3.Connection
    gateway: Any

    def now_ms(self) -> int:
        return now_ms()


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    run: Callable[[JobContext], str | None]  # a short summary of what it did; raises when it failed
    interval_s: Callable[[sqlite3.Connection], int]
    due_ms: Callable[[JobContext], int | None] | None = None  # its own schedule; None: due now
    after: str | None = None


class JobRunner:
    """Runs `jobs` against one connection and gateway (see the module docstring)."""

    def __init__(self, jobs: list[Job], ctx: JobContext) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names repeat: {names}")
        for job in jobs:
            if job.after is not None and job.after not in names[: names.index(job.name)]:
                raise ValueError(f"job {job.name!r} runs after {job.after!r}, which is not listed before it")
        self.jobs = jobs
        self.ctx = ctx
        with transaction(ctx.conn):
            job_store.forget_all_but(ctx.conn, names)  # a job no longer run is no longer listed
            for position, job in enumerate(jobs):
                job_store.declare(ctx.conn, job.name, job.description, position, job.after)

    def _interval_s(self, job: Job) -> int:
        return int(job.interval_s(self.ctx.conn))

    def is_due(self, job: Job, now: int) -> bool:
        if job.due_ms is not None:
            due = job.due_ms(self.ctx)
            return due is not None and now >= due
        if self._interval_s(job) <= 0:
            return False
        due = job_store.get(self.ctx.conn, job.name)["next_due_ms"]
        return due is None or now >= int(due)

    def tick(self) -> list[str]:
        """Run every due job once, in list order; returns the names of the jobs that ran."""
        ran: list[str] = []
        for job in self.jobs:
            if job.after is not None:
                if job.after in ran:
                    self.run(job)
                    ran.append(job.name)
                continue
            try:
                due = self.is_due(job, now_ms())
            except Exception:  # a broken schedule (e.g. a settings read failing) is this job's failure only
                log.exception("job %s: deciding whether it is due failed", job.name)
                self._record(job, now_ms(), now_ms(), error="its schedule could not be read")
                continue
            if due:
                self.run(job)
                ran.append(job.name)
        return ran

    def run_all(self) -> list[str]:
        """Every job once, in list order, whatever its schedule (``--once``); a job that is off (interval 0)
        stays off. Returns the names of the jobs that ran."""
        ran: list[str] = []
        for job in self.jobs:
            if job.after is not None and job.after not in ran:
                continue
            try:
                off = job.due_ms is None and job.after is None and self._interval_s(job) <= 0
            except Exception:
                log.exception("job %s: reading its interval failed", job.name)
                off = False
            if not off:
                self.run(job)
                ran.append(job.name)
        return ran

    def run(self, job: Job) -> bool:
        """Run one job now, whatever its schedule; True when it succeeded. Never raises an Exception."""
        conn = self.ctx.conn
        started = now_ms()
        try:
            with transaction(conn):
                job_store.started(conn, job.name, started)
            summary = job.run(self.ctx)
        except Exception as exc:
            if conn.in_transaction:
                conn.rollback()
            if isinstance(exc, JobFailed):
                log.warning("job %s failed: %s", job.name, exc)
                message = str(exc)
            else:
                log.exception("job %s failed", job.name)
                message = f"internal error: {type(exc).__name__}: {exc}"
            self._record(job, started, now_ms(), error=message)
            return False
        if conn.in_transaction:
            conn.commit()
        self._record(job, started, now_ms(), summary=summary)
        return True

    def _record(
        self, job: Job, started: int, finished: int, *, summary: str | None = None, error: str | None = None
    ) -> None:
        conn = self.ctx.conn
        try:
            state = job_store.get(conn, job.name)
            failures = state["consecutive_failures"] + 1 if error is not None else 0
            interval = self._interval_s(job)
            if job.due_ms is not None:
                next_due = job.due_ms(self.ctx)
            elif job.after is not None or interval <= 0:
                next_due = None
            elif error is not None:
                next_due = finished + backoff_s(failures, interval) * 1000
            else:
                next_due = finished + interval * 1000
            with transaction(conn):
                job_store.finished(
                    conn,
                    job.name,
                    started_ms=started,
                    finished_ms=finished,
                    error=None if error is None else error[:MAX_ERROR_CHARS],
                    summary=summary,
                    failures=failures,
                    next_due_ms=next_due,
                    interval_s=interval or None,
                )
        except Exception:  # recording must not stop the other jobs either (e.g. the store is locked)
            if conn.in_transaction:
                conn.rollback()
            log.exception("job %s: recording its status failed", job.name)
