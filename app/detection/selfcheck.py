"""Self-check against the console: does every configured log source type and event name exist there?

A configured name that differs from what the console's DSM calls the event gives zero detections without
a word; this job says so. At the refresher's start, daily (``self_check_interval_hours``) and whenever the
checked settings change (settings in `app.detection.config`), it asks QRadar through the gateway for the log source types
(``/api/config/event_sources/log_source_management/log_source_types``) and the QID records of each
platform's types (``/api/data_classification/qid_records``) and resolves:

* every configured log source type name (``log_source_types``) — case-insensitively, as the detection
  resolves them (`app.detection.eventset.resolve_type_ids`);
* every configured event name, creation (``event_names_<platform>``) and follow-on (the chain steps the
  follow-on search asks for) — ILIKE patterns (``%`` and ``_`` wildcards, any case): a pattern resolves when
  any QID name of the platform's log source types matches it.

Each one that resolves to nothing is a finding: "no QID named … for … on this console: no detections can
come from it". Findings are kept in the store (``refresh_state`` row ``self_check``) and shown by
``GET /api/status`` (``self_check``), the tab and the dashboard item. Whether a real console's QID records
carry their log source type is UNCONFIRMED: ``self_check_qid_scope`` "all" matches names against every QID
record instead.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any

from app import settings
from app.aql import detection as aqld
from app.detection.config import load_config
from app.detection.eventset import EVENT_NAME_KEYS
from app.jobs import Job, JobContext, JobFailed, backoff_s
from app.qradar import Gateway, QRadarError, QRadarUnavailable
from app.store import jobs as job_store
from app.store.db import transaction
from app.store.refresh_state import get_refresh_state, save_refresh_state

JOB = "self_check"
# When this process started: the first check of every refresher process runs at once.
_PROCESS_STARTED_MS = int(time.time() * 1000)


@dataclass(frozen=True)
class Finding:
    kind: str  # log_source_type | event_name
    platform: str
    role: str  # log source type | creation | follow-on
    name: str
    message: str


def ilike_regex(pattern: str) -> re.Pattern[str]:
    """AQL ILIKE as a regular expression: ``%`` any run, ``_`` one character, any case, whole name."""
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def checked_names(conn: sqlite3.Connection) -> dict[str, Any]:
    """What the check covers, from the settings (no QRadar call): the configured log source types and,
    per platform, its creation and follow-on event names; and the QID scope."""
    values = settings.all_values(conn)
    cfg = load_config(conn, None)
    platforms: dict[str, dict[str, list[str]]] = {}
    for platform in aqld.PLATFORMS:
        follow = cfg.follow_on.get(platform)
        platforms[platform] = {
            "creation": list(values.get(EVENT_NAME_KEYS.get(platform, ""), []) or []),
            "follow-on": list(
                follow.event_names if follow else aqld.DEFAULT_FOLLOW_ON_EVENT_NAMES.get(platform, ())
            ),
        }
    return {
        "log_source_types": values["log_source_types"],
        "event_names": platforms,
        "scope": values["self_check_qid_scope"],
    }


def fingerprint(checked: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(checked, sort_keys=True).encode()).hexdigest()


def _qid_names(gw: Gateway, type_ids: list[int], scope: str, cache: dict[Any, list[str]]) -> list[str]:
    if scope == "all":
        if "all" not in cache:
            cache["all"] = [r["name"] for r in gw.qid_records(None)]
        return cache["all"]
    names: list[str] = []
    for type_id in type_ids:
        if type_id not in cache:
            cache[type_id] = [r["name"] for r in gw.qid_records(type_id)]
        names += cache[type_id]
    return names


def check(gw: Gateway, checked: dict[str, Any]) -> tuple[list[Finding], dict[str, int]]:
    """Resolve `checked` (see `checked_names`) against the console; (findings, counts). QRadar errors
    raise."""
    console_types = gw.log_source_types()
    by_name = {t["name"].lower(): t for t in console_types}
    by_id = {t["id"]: t for t in console_types}
    findings: list[Finding] = []
    cache: dict[Any, list[str]] = {}
    counts = {"log_source_types": 0, "event_names": 0, "qid_records": 0}
    for platform, entries in checked["log_source_types"].items():
        types: list[dict[str, Any]] = []
        for entry in entries:
            counts["log_source_types"] += 1
            name = str(entry.get("name", ""))
            found = by_name.get(name.lower())
            if found is not None:
                types.append(found)
                continue
            fallback = by_id.get(entry.get("id"))
            if fallback is not None:
                types.append(fallback)
                message = (
                    f"no log source type named '{name}' on this console: its configured ID {fallback['id']} "
                    f"is there as '{fallback['name']}', which the detection searches instead"
                )
            else:
                message = (
                    f"no log source type named '{name}' ({platform}) on this console: "
                    "no detections can come from it"
                )
            findings.append(Finding("log_source_type", platform, "log source type", name, message))
        names = checked["event_names"].get(platform) or {}
        if not types:
            continue  # already named: no type of this platform, so none of its events can be found
        qid_names = _qid_names(gw, [t["id"] for t in types], checked["scope"], cache)
        where = " or ".join(dict.fromkeys(t["name"] for t in types))
        for role, patterns in names.items():
            for pattern in patterns:
                counts["event_names"] += 1
                regex = ilike_regex(pattern)
                if any(regex.fullmatch(n) for n in qid_names):
                    continue
                outcome = "no detections" if role == "creation" else "no chain steps"
                findings.append(
                    Finding(
                        "event_name",
                        platform,
                        role,
                        pattern,
                        f"no QID named '{pattern}' for {where} on this console: {outcome} can come from it",
                    )
                )
    counts["qid_records"] = sum(len(v) for v in cache.values())
    return findings, counts


def run_job(ctx: JobContext) -> str:
    conn = ctx.conn
    checked = checked_names(conn)
    try:
        findings, counts = check(ctx.gateway, checked)
    except (QRadarError, QRadarUnavailable) as exc:
        raise JobFailed(f"QRadar: {exc}") from exc
    at = ctx.now_ms()
    with transaction(conn):
        save_refresh_state(
            conn,
            JOB,
            last_finished_ms=at,
            last_success_ms=at,
            last_status="ok",
            details={
                "checked_ms": at,
                "fingerprint": fingerprint(checked),
                "findings": [asdict(f) for f in findings],
                "counts": counts,
            },
        )
    return (
        f"{counts['log_source_types']} log source types, {counts['event_names']} event names against "
        f"{counts['qid_records']} QID records: {len(findings)} not found"
    )


def due_ms(ctx: JobContext) -> int | None:
    """At once after the process started or the checked settings changed (retrying with backoff while
    QRadar fails), then every ``self_check_interval_hours``; None when off."""
    conn = ctx.conn
    interval_h = settings.get("self_check_interval_hours", conn=conn)
    if interval_h <= 0:
        return None
    details = get_refresh_state(conn, JOB)["details"]
    checked_ms = details.get("checked_ms")
    job = job_store.get(conn, JOB)
    if job["consecutive_failures"] and job["last_finished_ms"]:
        return int(job["last_finished_ms"]) + backoff_s(job["consecutive_failures"], 3600) * 1000
    if checked_ms is None or checked_ms < _PROCESS_STARTED_MS:
        return _PROCESS_STARTED_MS  # due since this process started
    if details.get("fingerprint") != fingerprint(checked_names(conn)):
        return int(checked_ms)  # out of date since the last check: its settings changed
    return int(checked_ms) + interval_h * 3_600_000


def status(conn: sqlite3.Connection) -> dict[str, Any]:
    """What ``GET /api/status`` reports as ``self_check``: when the console was last checked, the
    findings (``problems``: their messages), whether the settings changed since (``stale``), and the
    job's last error."""
    state = get_refresh_state(conn, JOB)
    details = state["details"]
    findings = details.get("findings") or []
    job = job_store.get(conn, JOB)
    return {
        "checked_ms": details.get("checked_ms"),
        "problems": [f["message"] for f in findings],
        "findings": findings,
        "counts": details.get("counts"),
        "stale": details.get("checked_ms") is not None
        and details.get("fingerprint") != fingerprint(checked_names(conn)),
        "last_error": job["last_error"] if job["last_status"] == "error" else None,
    }


SELF_CHECK_JOB = Job(
    name=JOB,
    description="Self-check: configured log source types and event names resolved against the console.",
    run=run_job,
    interval_s=lambda conn: settings.get("self_check_interval_hours", conn=conn) * 3600,
    due_ms=due_ms,
)
