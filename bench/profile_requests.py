"""Where a request's time goes: each API kind of ``bench.load`` profiled in one process with cProfile.

    python -m bench.profile_requests [--requests 200] [--events 3000] [--top 25]

Seeds and serves its own dev console, fills a fresh store with one refresher cycle, builds the app as
gunicorn does (``create_app()`` from the same environment) and sends ``--requests`` requests of each kind
(list, list filtered, detail, overview, status, ``/debug``) through its WSGI interface as the analyst, in
one thread, after one warm-up request of each kind. Prints per kind: mean wall and CPU ms, QRadar REST calls and
store statements per request (the profiler's own cost included in both times), then cProfile's top functions by cumulative time over all requests.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability.crashloop import app_env, free_port  # noqa: E402

KINDS = {
    "list": "/api/detections",
    "list filtered": "/api/detections?suppressed=false&sort=-severity",
    "detail": "/api/detections/{id}",
    "overview": "/api/overview",
    "status": "/api/status",
    "debug": "/debug",
}


class Counting:
    """Counts QRadar REST calls (requests' Session.request) and SQLite statements while installed."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._request = requests.Session.request

    def install(self) -> None:
        original, counts = self._request, self.counts

        def request(session: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            counts["qradar"] += 1
            return original(session, method, url, *args, **kwargs)

        requests.Session.request = request  # type: ignore[method-assign]

    def trace(self, conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(lambda _sql: self.counts.update(("sql",)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_requests", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind")
    parser.add_argument("--events", type=int, default=3000, help="dev console scenario size")
    parser.add_argument("--top", type=int, default=25, help="functions shown")
    args = parser.parse_args(argv)
    from tests.conftest import start_devconsole, stop_devconsole

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "console"
        subprocess.run(
            [sys.executable, "-m", "devconsole", "seed", "--data", str(data), "--events", str(args.events)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        console = start_devconsole(data, free_port(), ROOT / "manifest.json")
        store = Path(tmp) / "store"
        store.mkdir()
        try:
            env = app_env(console, store)
            subprocess.run(
                [sys.executable, "-m", "app.refresher", "--once"],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
            os.environ.update(env)
            from app import create_app
            from app.store import db as store_db

            counting = Counting()
            counting.install()
            connect = store_db.connect

            def traced_connect(*a: Any, **k: Any) -> sqlite3.Connection:
                conn = connect(*a, **k)
                counting.trace(conn)
                return conn

            store_db.connect = traced_connect  # type: ignore[assignment]
            app = create_app()
            client = app.test_client()
            client.set_cookie("SEC", console.tokens["analyst"])
            detection_ids = [d["id"] for d in client.get("/api/detections?limit=50").get_json()["items"]]
            figures = {}
            profile = cProfile.Profile()
            for kind, url in KINDS.items():
                urls = [url.format(id=detection_ids[i % len(detection_ids)]) for i in range(args.requests)]
                assert client.get(urls[0]).status_code == 200, kind  # warm-up
                counting.counts.clear()
                started, cpu_started = time.perf_counter(), time.process_time()
                profile.enable()
                for u in urls:
                    response = client.get(u)
                    if response.status_code != 200:
                        raise SystemExit(f"{kind}: {u} answered {response.status_code}")
                profile.disable()
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_started  # this process's CPU: less moved by other load
                figures[kind] = (
                    elapsed / args.requests * 1000,
                    cpu / args.requests * 1000,
                    counting.counts["qradar"] / args.requests,
                    counting.counts["sql"] / args.requests,
                )
        finally:
            stop_devconsole(console)

    print(f"# bench.profile_requests: {args.requests} requests of each kind, one thread, in-process")
    print(f"{'kind':<14} {'mean ms':>8} {'CPU ms':>7} {'QRadar calls/req':>17} {'SQL statements/req':>19}")
    for kind, (ms, cpu_ms, qradar, sql) in figures.items():
        print(f"{kind:<14} {ms:>8.2f} {cpu_ms:>7.2f} {qradar:>17.2f} {sql:>19.1f}")
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue().split("\n", 6)[-1] if out.getvalue() else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
