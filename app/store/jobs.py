"""SQL for the refresher's job status: one ``refresh_state`` row per job, named ``job:<name>``.

The runner (`app.jobs`) declares its jobs at start and records every run; ``GET /api/status`` lists them.
A job's own state (the detection watermark, the offense sync's resume point) stays in its own row.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from app.store import refresh_state

PREFIX = "job:"


def _row_name(name: str) -> str:
    return PREFIX + name


def declare(conn: sqlite3.Connection, name: str, description: str, position: int, after: str | None) -> None:
    """Make the job known (listed as never run until it runs), keeping what earlier runs recorded."""
    state = refresh_state.get_refresh_state(conn, _row_name(name))
    details = {**state["details"], "description": description, "position": position, "after": after}
    refresh_state.save_refresh_state(conn, _row_name(name), details=details)


def forget_all_but(conn: sqlite3.Connection, names: list[str]) -> None:
    """Drop the status rows of jobs not in ``names``."""
    keep = {_row_name(name) for name in names}
    rows = conn.execute(
        "SELECT name FROM refresh_state WHERE substr(name, 1, ?) = ?", (len(PREFIX), PREFIX)
    ).fetchall()
    for row in rows:
        if row["name"] not in keep:
            conn.execute("DELETE FROM refresh_state WHERE name = ?", (row["name"],))


def started(conn: sqlite3.Connection, name: str, at_ms: int) -> None:
    refresh_state.save_refresh_state(conn, _row_name(name), last_started_ms=at_ms)


def finished(
    conn: sqlite3.Connection,
    name: str,
    *,
    started_ms: int,
    finished_ms: int,
    error: str | None,
    summary: str | None,
    failures: int,
    next_due_ms: int | None,
    interval_s: int | None,
) -> None:
    state = refresh_state.get_refresh_state(conn, _row_name(name))
    details = {
        **state["details"],
        "summary": summary,
        "failures": failures,
        "next_due_ms": next_due_ms,
        "interval_s": interval_s,
    }
    changes: dict[str, Any] = {
        "last_started_ms": started_ms,
        "last_finished_ms": finished_ms,
        "last_status": "error" if error is not None else "ok",
        "last_error": error,
        "runs": int(state["runs"] or 0) + 1,
        "details": details,
    }
    if error is None:
        changes["last_success_ms"] = finished_ms
    refresh_state.save_refresh_state(conn, _row_name(name), **changes)


def _public(state: dict[str, Any]) -> dict[str, Any]:
    details = state["details"]
    return {
        "name": state["name"][len(PREFIX) :],
        "description": details.get("description"),
        "after": details.get("after"),
        "interval_s": details.get("interval_s"),
        "last_started_ms": state["last_started_ms"],
        "last_finished_ms": state["last_finished_ms"],
        "last_success_ms": state["last_success_ms"],
        "last_status": state["last_status"],
        "last_error": state["last_error"],
        "last_summary": details.get("summary"),
        "consecutive_failures": int(details.get("failures") or 0),
        "next_due_ms": details.get("next_due_ms"),
        "runs": int(state["runs"] or 0),
    }


def get(conn: sqlite3.Connection, name: str) -> dict[str, Any]:
    """One job's status (a never-declared job reads as never run)."""
    return _public(refresh_state.get_refresh_state(conn, _row_name(name)))


def list_jobs(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every declared job's status, in the runner's order."""
    rows = conn.execute(
        "SELECT name FROM refresh_state WHERE substr(name, 1, ?) = ?", (len(PREFIX), PREFIX)
    ).fetchall()
    states = [refresh_state.get_refresh_state(conn, row["name"]) for row in rows]
    states.sort(key=lambda s: (s["details"].get("position", 1_000_000), s["name"]))
    return [_public(s) for s in states]
