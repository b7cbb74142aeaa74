"""Detection refresh throughput, steady-state cost and refresher memory.

    python -m bench.refresh [--events N]

Builds a dev console data directory holding N matching CloudTrail ``CreateUser`` events (spread over the
last 23 hours, each with a realistic ~700-byte payload) plus 1 % unrelated events, serves it with
``python -m devconsole serve``, and then reports:

* **throughput**: the real refresher (``python -m app.refresher --once`` run until it has caught up, each
  cycle bounded by ``detection_row_limit``) in events/s, next to the cost of *only* ``json.loads`` of the
  same Ariel result pages (fetched again, decoded, timed without the network) — their ratio is the figure;
* **rows fetched per steady-state refresh** (a 5-minute increment after the backfill; the window is the
  watermark minus the 10-minute overlap) versus a full 24-hour re-query;
* **peak RSS** of the refresher process (max over its runs).

Speed lives here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devconsole.launcher import start_serve, stop_serve

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3_600_000
PAGE_SIZE = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


def payload(i: int, t: int) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t / 1000))
    return json.dumps(
        {
            "eventVersion": "1.10",
            "eventTime": stamp,
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateUser",
            "awsRegion": "us-east-1",
            "sourceIPAddress": f"203.0.113.{i % 250}",
            "userAgent": "aws-cli/2.18.17 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0 md/command#iam.create-user",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": f"AROAEXAMPLE:s{i % 97}",
                "arn": f"arn:aws:sts::111122223333:assumed-role/Pipeline{i % 13}/s{i % 97}",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "arn": f"arn:aws:iam::111122223333:role/Pipeline{i % 13}",
                    },
                    "attributes": {"mfaAuthenticated": "false"},
                },
            },
            "requestParameters": {"userName": f"bench-user-{i}", "path": "/"},
            "responseElements": {
                "user": {
                    "userName": f"bench-user-{i}",
                    "userId": f"AIDA{i:016d}",
                    "arn": f"arn:aws:iam::111122223333:user/bench-user-{i}",
                }
            },
            "requestID": f"req-{i}",
            "eventID": f"ev-{i}",
            "eventType": "AwsApiCall",
        },
        separators=(",", ":"),
    )


def build_console_data(data_dir: Path, events: int, start: int, stop: int) -> tuple[Any, dict[str, int]]:
    from devconsole.store import EventStore

    store = EventStore(data_dir / "events.db")
    store.declare_custom_property("Account Name")
    ids = {
        "create": store.ensure_qid(347, "CreateUser", 3035),
        "list": store.ensure_qid(347, "ListUsers", 8050),
        "ls": store.ensure_log_source("bench-cloudtrail", 347),
    }
    insert_span(store, ids, 0, events, start, stop)
    return store, ids


def insert_span(store: Any, ids: dict[str, int], first: int, count: int, start: int, stop: int) -> None:
    rng = random.Random(first)
    batch: list[dict] = []
    span = max(1, stop - start)
    for n in range(count):
        i = first + n
        t = start + (n * span) // max(1, count) + rng.randrange(1000)
        matching = n % 100 != 99  # 1 % unrelated reads
        batch.append(
            {
                "starttime": min(t, stop - 1),
                "qid": ids["create" if matching else "list"],
                "category": 3035,
                "highlevelcategory": 3000,
                "logsourceid": ids["ls"],
                "devicetype": 347,
                "magnitude": 6,
                "username": f"s{i % 97}",
                "sourceip": f"203.0.113.{i % 250}",
                "payload": payload(i, t),
                "props": {"Account Name": f"bench-user-{i}"},
            }
        )
        if len(batch) == 20_000:
            store.insert_events(batch)
            batch = []
    if batch:
        store.insert_events(batch)


def run_refresher(db_path: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "app.refresher", "--once", "--db", str(db_path)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def state(db_path: Path) -> dict:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT watermark_ms, details_json FROM refresh_state WHERE name = 'detection'"
        ).fetchone()
    return {"watermark_ms": row[0], **json.loads(row[1])}


def json_loads_cost(env: dict[str, str], db_path: Path, start: int, stop: int) -> tuple[float, int, int]:
    """Seconds spent in json.loads alone on the Ariel result pages of the same detection query."""
    from app.aql.detection import detection_query
    from app.detection.config import load_config
    from app.qradar import Gateway
    from app.store.db import connect

    gw = Gateway.from_env(env, poll_wait_s=5)
    conn = connect(db_path)
    try:
        cfg = load_config(conn, gw)
    finally:
        conn.close()
    spec = cfg.spec.__class__(**{**cfg.spec.__dict__, "row_limit": 1_000_000})
    sid = gw.start_search(detection_query(spec, start, stop))
    try:
        status = gw.wait_for_search(sid, 3600)
        seconds, rows, size = 0.0, 0, 0
        for first in range(0, status.record_count, PAGE_SIZE):
            last = min(first + PAGE_SIZE, status.record_count) - 1
            resp = gw.transport.request(
                "GET",
                f"api/ariel/searches/{sid}/results",
                version=gw.api_version,
                headers={"Range": f"items={first}-{last}"},
            )
            raw = resp.content
            t0 = time.perf_counter()
            body = json.loads(raw)
            seconds += time.perf_counter() - t0
            rows += len(body["events"])
            size += len(raw)
        return seconds, rows, size
    finally:
        gw.delete_search(sid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.refresh", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="matching events in the last 24 h")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "console"
        now = now_ms()
        total_events = int(args.events / 0.99)
        t0 = time.perf_counter()
        store, ids = build_console_data(data_dir, total_events, now - 23 * HOUR, now - 60_000)
        print(
            f"events: {total_events:,} stored ({args.events:,} matching) in {time.perf_counter() - t0:.0f} s"
        )
        served = start_serve(data_dir, "--manifest", str(ROOT / "manifest.json"), "--search-reuse", "0")
        try:
            tokens = json.loads((data_dir / "tokens.json").read_text())
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "QRADAR_CONSOLE_FQDN": served.base_url.split("//", 1)[1],
                "SEC_ADMIN_TOKEN": tokens["service"],
                "REQUESTS_CA_BUNDLE": str(data_dir / "ca.pem"),
                "LOG_LEVEL": "WARNING",
            }
            db_path = tmp_path / "app.db"
            from app import settings
            from app.features import register_settings
            from app.store.db import connect

            register_settings()

            conn = connect(db_path)
            settings.update(conn, {"search_page_size": PAGE_SIZE}, actor="bench")
            row_limit = settings.get("detection_row_limit", conn)
            conn.close()

            # Backfill: cycles until the watermark reaches the end of the data.
            t0 = time.perf_counter()
            cycles = fetched = 0
            while True:
                run_refresher(db_path, env)
                cycles += 1
                st = state(db_path)
                fetched += int(st.get("rows_fetched") or 0)
                if (
                    st["watermark_ms"] is not None
                    and st["watermark_ms"] >= now
                    and int(st.get("rows_fetched") or 0) < row_limit
                ):
                    break
                if cycles > 1000:
                    raise SystemExit("refresher did not catch up")
            backfill_s = time.perf_counter() - t0
            with sqlite3.connect(db_path) as conn:
                stored = conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0]
            print(
                f"refresh backfill: {stored:,} detections from {fetched:,} rows fetched in {cycles} cycles, "
                f"{backfill_s:.1f} s → {stored / backfill_s:,.0f} events/s (incl. Ariel and process start)"
            )

            loads_s, rows, size = json_loads_cost(env, db_path, now - 24 * HOUR, now_ms())
            print(
                f"json.loads only, same result pages: {rows:,} rows, {size / 2**20:,.0f} MiB "
                f"in {loads_s:.1f} s → {rows / loads_s:,.0f} rows/s"
            )
            print(f"ratio refresh time / json.loads time: {backfill_s / loads_s:.1f}x")

            # Steady state: 5 minutes of new events at the data set's own rate, then one refresh.
            increment = max(1, args.events * 5 // (23 * 60))
            insert_span(store, ids, total_events, increment, now_ms() - 5 * 60_000, now_ms())
            t0 = time.perf_counter()
            run_refresher(db_path, env)
            steady_s = time.perf_counter() - t0
            st = state(db_path)
            full = stored + st.get("inserted", 0)
            print(
                f"steady-state refresh: {st.get('rows_fetched'):,} rows fetched "
                f"({st.get('inserted'):,} new) in {steady_s:.1f} s vs {full:,} rows for a full 24 h re-query "
                f"({full / max(1, int(st.get('rows_fetched') or 1)):.0f}x fewer)"
            )
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            print(
                f"refresher peak RSS: {peak_kib / 1024:.0f} MiB (max over its processes; "
                f"page size {PAGE_SIZE:,}, row limit {row_limit:,} per cycle)"
            )
        finally:
            stop_serve(served.process)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
