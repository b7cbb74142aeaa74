"""AQL engine figures over a synthetic event store.

    python -m bench.aql --events 1000000

Builds a store of N events spread over the last 48 hours (cloud account-creation events among Linux,
firewall and other noise), then times, with ``LAST 24 HOURS``: a detection query (Azure "Add user"
events, newest 500), a wider one with CASE columns over four log source types, and a GROUP BY over the same
window. Prints the row counts, the number of progress reports and the process's peak memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from devconsole.aql import AqlEngine
from devconsole.store import EventStore

DETECTION = """SELECT DATEFORMAT(starttime,'yyyy-MM-dd HH:mm:ss') AS "Time",
       QIDNAME(qid) AS "Event Name", LOGSOURCETYPENAME(devicetype) AS "LS Type",
       LOGSOURCENAME(logsourceid) AS "Log Source", username, sourceip, qid, starttime
FROM events
WHERE LOGSOURCETYPENAME(devicetype) ILIKE '%Azure%'
  AND QIDNAME(qid) ILIKE '%add user%'
ORDER BY starttime DESC
LIMIT 500
LAST 24 HOURS"""

DETECTION_WITH_CASE = """SELECT DATEFORMAT(starttime, 'yyyy-MM-dd HH:mm:ss') AS event_time,
  CATEGORYNAME(category) AS event_category, LOGSOURCENAME(logsourceid) AS log_source, username AS actor,
  "Account Name" AS target_account, sourceip AS source_ip,
  CASE WHEN LOWER(QIDNAME(qid)) LIKE '%createuser%' OR LOWER(QIDNAME(qid)) LIKE '%createrole%' THEN 'AWS'
       WHEN LOWER(QIDNAME(qid)) LIKE '%add user%' THEN 'AzureAD' ELSE 'Unknown' END AS cloud_platform
FROM events
WHERE devicetype IN (347, 397, 413, 445)
  AND (QIDNAME(qid) ILIKE '%Add user%' OR QIDNAME(qid) ILIKE '%Add service principal%'
       OR QIDNAME(qid) ILIKE '%CreateUser%' OR QIDNAME(qid) ILIKE '%CreateRole%')
  AND magnitude >= 3
ORDER BY starttime DESC
LIMIT 1000
LAST 24 HOURS"""

GROUP_BY = """SELECT LOGSOURCETYPENAME(devicetype) AS "Type", QIDNAME(qid) AS "Name", COUNT(*) AS "N",
       SUM(eventcount) AS "Events", UNIQUECOUNT(username) AS "Users"
FROM events GROUP BY devicetype, qid ORDER BY "N" DESC LAST 24 HOURS"""

SOURCES = {
    347: [
        "CreateUser",
        "CreateAccessKey",
        "CreateRole",
        "GetObject",
        "PutObject",
        "AssumeRole",
        "DescribeInstances",
    ],
    445: ["Add user", "Add service principal", "Sign-in activity", "Update user", "Add member to role"],
    397: ["Add user.", "UserLoggedIn", "FileAccessed", "MailItemsAccessed"],
    11: ["Session Opened", "Session Closed", "Cron Job"],
    10: ["Firewall Permit", "Firewall Deny"],
}


def build(path: Path, events: int, seed: int) -> EventStore:
    rng = random.Random(seed)
    store = EventStore(path)
    store.declare_custom_property("Account Name")
    qids = []
    for type_id, names in SOURCES.items():
        source = store.ensure_log_source(f"source-{type_id}", type_id)
        for name in names:
            qids.append((type_id, source, store.ensure_qid(type_id, name, 8050)))
    now = int(time.time() * 1000)
    users = [f"user{i}@example.com" for i in range(500)]
    batch: list[dict] = []
    for _ in range(events):
        type_id, source, qid = rng.choice(qids)
        batch.append(
            {
                "starttime": now - rng.randrange(48 * 3_600_000),
                "qid": qid,
                "category": 8050,
                "highlevelcategory": 8000,
                "logsourceid": source,
                "devicetype": type_id,
                "username": rng.choice(users),
                "sourceip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.1",
                "magnitude": rng.randrange(1, 10),
                "props": {"Account Name": rng.choice(users)},
                "payload": b'{"event":"synthetic"}',
            }
        )
        if len(batch) == 50_000:
            store.insert_events(batch)
            batch = []
    store.insert_events(batch)
    return store


def timed(engine: AqlEngine, text: str) -> tuple[float, float, int, int]:
    """Wall-clock and CPU seconds (CPU time is what the search costs when other work shares the cores)."""
    reports: list[int] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    query = engine.prepare(text)
    rows = engine.execute(query, on_progress=reports.append)
    return time.perf_counter() - started, time.process_time() - cpu_started, len(rows), len(reports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.aql", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-aql-") as tmp:
        started = time.perf_counter()
        store = build(Path(tmp) / "events.db", args.events, args.seed)
        print(f"events: {args.events:,} over 48 h (built in {time.perf_counter() - started:.1f} s)")
        engine = AqlEngine(store, tz=dt.UTC)
        for label, text in (
            ("detection query, LAST 24 HOURS", DETECTION),
            (
                "the same without ORDER BY/LIMIT (every match in the window)",
                DETECTION.replace("ORDER BY starttime DESC\nLIMIT 500\n", ""),
            ),
            ("four-type detection query with CASE columns, LAST 24 HOURS", DETECTION_WITH_CASE),
            ("GROUP BY devicetype, qid with COUNT/SUM/UNIQUECOUNT, LAST 24 HOURS", GROUP_BY),
        ):
            seconds, cpu, rows, reports = timed(engine, text)
            print(f"{label}: {seconds:.2f} s ({cpu:.2f} s CPU), {rows} rows, {reports} progress reports")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS of this process): {peak_mib:.0f} MiB")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
