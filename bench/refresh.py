"""Detection refresh cost, steady-state rows and refresher memory.

    python -m bench.refresh [--events N] [--payload-bytes B]

Builds a dev console data directory holding N matching CloudTrail ``CreateUser`` events (spread over the
last 23 hours, each payload padded with tags to about B bytes, default 700) plus 1 % unrelated events,
serves it with ``python -m devconsole serve``, and then reports:

* **refresh cost**: the real refresher process (``python -m app.refresher``, as supervisord runs it) until
  it has caught up; its cost is the CPU time (user + system, from ``wait4``'s resource usage) of that
  process alone — the dev console's AQL and HTTP work runs in another process and is not counted. Next to
  it, the CPU time of *only* ``json.loads`` of the same Ariel result pages (fetched again, decoded in this
  process, timed with ``time.thread_time``, best of three decodes per page); their ratio is the figure. Wall time is shown too;
* **the floor** on the same pages, as ratios to that ``json.loads``: the HTTPS fetch, the decoding of each
  row's payload, and a bare insert de-duplicated by event key — work any refresher does before it
  classifies, matches the allowlist or indexes anything;
* **rows fetched per steady-state refresh** (5 minutes' worth of events stored after the backfill's
  watermark; every row of every search counted: the overlap's per-minute counts, detections, follow-on
  events) versus the new events, and versus a full 24-hour re-query;
* **peak RSS** of each refresher process (its ``VmHWM`` at exit: ``ru_maxrss`` of a child started with
  vfork + exec includes this benchmark's own memory).

Speed lives here, never in tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devconsole.launcher import start_serve, stop_serve

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3_600_000
PAGE_SIZE = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


def payload(i: int, t: int, size: int = 0) -> str:
    """A CloudTrail CreateUser record; with ``size``, padded with resource tags to about that many bytes."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t / 1000))
    record = {
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
    }
    text = json.dumps(record, separators=(",", ":"))
    if len(text) < size:
        value = f"cost-centre-{i % 1000:04d}-" + "x" * 40
        count = (size - len(text)) // (len(value) + 30) + 1
        record["requestParameters"]["tags"] = [  # type: ignore[index]
            {"key": f"team-{n}", "value": value} for n in range(count)
        ]
        text = json.dumps(record, separators=(",", ":"))
    return text


def build_console_data(
    data_dir: Path, events: int, start: int, stop: int, payload_bytes: int
) -> tuple[Any, dict[str, int]]:
    from devconsole.store import EventStore

    store = EventStore(data_dir / "events.db")
    store.declare_custom_property("Account Name")
    ids = {
        "create": store.ensure_qid(347, "CreateUser", 3035),
        "list": store.ensure_qid(347, "ListUsers", 8050),
        "ls": store.ensure_log_source("bench-cloudtrail", 347),
    }
    insert_span(store, ids, 0, events, start, stop, payload_bytes)
    return store, ids


def insert_span(
    store: Any, ids: dict[str, int], first: int, count: int, start: int, stop: int, payload_bytes: int
) -> None:
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
                "payload": payload(i, t, payload_bytes),
                "props": {"Account Name": f"bench-user-{i}"},
            }
        )
        if len(batch) == 20_000:
            store.insert_events(batch)
            batch = []
    if batch:
        store.insert_events(batch)


# Runs ``python -m app.refresher ARGS`` and, at its exit, writes the process's peak RSS (VmHWM, KiB) to the
# file named first. Not ru_maxrss: a child started with vfork + exec inherits the parent's high-water mark
# in it, so it would report this benchmark's own memory.
PEAK_WRAPPER = """
import atexit, runpy, sys
peak_file = sys.argv.pop(1)
def record_peak():
    with open("/proc/self/status") as status, open(peak_file, "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(record_peak)
sys.argv[0] = "app.refresher"
runpy.run_module("app.refresher", run_name="__main__", alter_sys=True)
"""


@dataclass
class ProcessCost:
    """What one refresher process cost, from the kernel's resource usage of that process alone."""

    cpu_s: float
    wall_s: float
    max_rss_kib: int


def run_refresher(
    db_path: Path, env: dict[str, str], *, until: Callable[[], bool] | None = None
) -> ProcessCost:
    """``python -m app.refresher``: with ``until``, served (as supervisord runs it) until ``until()`` says
    it has caught up, then stopped with SIGTERM; without, ``--once``."""
    peak_file = db_path.with_name("refresher-peak-kib")
    peak_file.unlink(missing_ok=True)
    command = [sys.executable, "-c", PEAK_WRAPPER, str(peak_file), "--db", str(db_path)]
    if until is None:
        command.append("--once")
    t0 = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if until is not None:
        while process.poll() is None and not until():
            time.sleep(0.2)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - t0
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"the refresher failed ({process.returncode}): {errors[-2000:]}")
    return ProcessCost(usage.ru_utime + usage.ru_stime, wall, int(peak_file.read_text()))


def state(db_path: Path) -> dict:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT watermark_ms, details_json FROM refresh_state WHERE name = 'detection'"
        ).fetchone()
    return {"watermark_ms": row[0], **json.loads(row[1])}


@dataclass
class InputCost:
    """CPU seconds (this thread) spent on the Ariel result pages of the detection query, step by step."""

    loads_s: float  # json.loads of each page (best of three): the baseline of the refresh-cost ratio
    fetch_s: float  # the HTTPS GET of each page through the gateway's transport (TLS, HTTP, requests)
    payload_s: float  # json.loads of each row's payload (classification reads the record inside)
    store_s: float  # each page's rows into a bare table with only a UNIQUE event key, one commit a page
    rows: int
    size: int


def input_cost(env: dict[str, str], db_path: Path, start: int, stop: int) -> InputCost:
    """What reading the same pages costs before any detection work: the baseline (json.loads of each
    page) and the floor any refresher pays (fetch, page and payload decoding, a de-duplicated insert)."""
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
        cost = InputCost(0.0, 0.0, 0.0, 0.0, 0, 0)
        bare = sqlite3.connect(db_path.with_name("bare.db"))
        bare.execute("PRAGMA journal_mode = WAL")
        bare.execute("PRAGMA synchronous = NORMAL")
        bare.execute(
            "CREATE TABLE rows (id INTEGER PRIMARY KEY, event_key TEXT NOT NULL UNIQUE, payload TEXT)"
        )
        for first in range(0, status.record_count, PAGE_SIZE):
            last = min(first + PAGE_SIZE, status.record_count) - 1
            t0 = time.thread_time()
            resp = gw.transport.request(
                "GET",
                f"api/ariel/searches/{sid}/results",
                version=gw.api_version,
                headers={"Range": f"items={first}-{last}"},
            )
            raw = resp.content
            t1 = time.thread_time()
            # The baseline is the best of three decodes of the page: one decode of a page (tens of MB)
            # varies by a quarter from run to run on this machine, and the ratio should not move with it.
            loads = []
            for _ in range(3):
                start_decode = time.thread_time()
                events = json.loads(raw)["events"]
                loads.append(time.thread_time() - start_decode)
            t2 = time.thread_time()
            for event in events:
                json.loads(event["payload"])
            t3 = time.thread_time()
            with bare:
                bare.executemany(
                    "INSERT INTO rows (event_key, payload) VALUES (?, ?)",
                    (
                        (
                            hashlib.sha256(
                                f"{e['starttime']}|{e['qid']}|{e['payload']}".encode()
                            ).hexdigest(),
                            e["payload"],
                        )
                        for e in events
                    ),
                )
            t4 = time.thread_time()
            cost.fetch_s += t1 - t0
            cost.loads_s += min(loads)
            cost.payload_s += t3 - t2
            cost.store_s += t4 - t3
            cost.rows += len(events)
            cost.size += len(raw)
        bare.close()
        return cost
    finally:
        gw.delete_search(sid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.refresh", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="matching events in the last 24 h")
    parser.add_argument("--payload-bytes", type=int, default=700, help="approximate size of each payload")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "console"
        now = now_ms()
        total_events = int(args.events / 0.99)
        t0 = time.perf_counter()
        store, ids = build_console_data(
            data_dir, total_events, now - 23 * HOUR, now - 60_000, args.payload_bytes
        )
        print(
            f"events: {total_events:,} stored ({args.events:,} matching, payloads of ~{args.payload_bytes:,} "
            f"bytes) in {time.perf_counter() - t0:.0f} s"
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
            # One refresh per run of the served refresher: it keeps cycling only while it catches up.
            settings.update(
                conn, {"search_page_size": PAGE_SIZE, "refresh_interval_s": 86_400}, actor="bench"
            )
            row_limit = settings.get("detection_row_limit", conn)
            conn.close()

            def caught_up() -> bool:
                try:
                    st = state(db_path)
                except (sqlite3.Error, TypeError):
                    return False
                return st.get("phase") == "done" and (st["watermark_ms"] or 0) >= now

            # Backfill: the served refresher until its watermark reaches the end of the data.
            backfill = run_refresher(db_path, env, until=caught_up)
            st = state(db_path)
            with sqlite3.connect(db_path) as conn:
                stored = conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0]
            print(
                f"refresh backfill: {stored:,} detections, "
                f"{backfill.wall_s:.1f} s wall ({stored / backfill.wall_s:,.0f} events/s incl. Ariel), "
                f"refresher CPU {backfill.cpu_s:.1f} s (its own process: user + system, process start included)"
            )

            cost = input_cost(env, db_path, now - 24 * HOUR, now_ms())
            loads_s = cost.loads_s
            print(
                f"json.loads only, same result pages: {cost.rows:,} rows, {cost.size / 2**20:,.0f} MiB "
                f"in {loads_s:.1f} s CPU → {cost.rows / loads_s:,.0f} rows/s"
            )
            print(f"refresh cost: refresher CPU / json.loads CPU = {backfill.cpu_s / loads_s:.1f}x")
            floor = cost.fetch_s + cost.loads_s + cost.payload_s
            print(
                f"floor, same pages, as ratios to json.loads: HTTPS fetch {cost.fetch_s / loads_s:.1f}x "
                f"+ page decode 1.0x + payload decode {cost.payload_s / loads_s:.1f}x "
                f"= reading the input {floor / loads_s:.1f}x; + a bare de-duplicated insert "
                f"{cost.store_s / loads_s:.1f}x = {(floor + cost.store_s) / loads_s:.1f}x "
                f"(no classification, no indexes, no counts: what no refresher can go below)"
            )

            # Steady state: 5 minutes' worth of events at the data set's own rate, stored since the last
            # refresh (after its watermark), then one refresh.
            increment = max(1, args.events * 5 // (23 * 60))
            insert_span(
                store,
                ids,
                total_events,
                increment,
                st["watermark_ms"] + 1,
                now_ms() - 1000,
                args.payload_bytes,
            )
            steady = run_refresher(db_path, env)
            st = state(db_path)
            full = stored + st.get("inserted", 0)
            fetched = sum(int(st.get(k) or 0) for k in ("rows_fetched", "follow_on_rows", "count_rows"))
            print(
                f"steady-state refresh: {fetched:,} rows fetched for {increment:,} new events "
                f"({fetched / increment:.2f}x; {st.get('inserted'):,} stored) in {steady.wall_s:.1f} s, "
                f"vs {full:,} rows for a full 24 h re-query"
            )
            print(
                f"refresher peak RSS: backfill {backfill.max_rss_kib / 1024:.0f} MiB, steady state "
                f"{steady.max_rss_kib / 1024:.0f} MiB (VmHWM of each process; search_page_size {PAGE_SIZE:,}, "
                f"row limit {row_limit:,} per search)"
            )
        finally:
            stop_serve(served.process)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
