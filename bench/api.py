"""Tab API latency with N stored detections.

    python -m bench.api [--detections 1000000] [--repeat 20] [--seed 8]

Generates N synthetic detections with a fixed seed (four platforms, a pool of actors, 2 % service
accounts, 1 % suppressed, 0.1 % in chains, spread over the last 30 days) and inserts them in bulk through
the store layer (``app.store.detections.insert_detection``, then tuning's ``set_suppressed_by`` and the
chain membership update, as the refresher does) into a fresh store in a temp directory (never committed).
Then it times the tab's main API calls in-process through Flask's test client — app, auth, parsing, SQL,
JSON — ``--repeat`` times each, and prints p50/p95 next to a baseline measured in the same run
on the same database: a plain ``SELECT COUNT(*) FROM detections``. The user is resolved from the app's
per-token cache (filled up front), so QRadar is never called and the figures are the app's own.
Also prints insert throughput, the database size and the process's peak RSS, and whether the indexed reads
(text search, the "new, not suppressed" list, the sort by severity) each take at most 10x the baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DAY = 86_400_000
PLATFORMS = (
    ("AWS", "Amazon AWS CloudTrail", "CreateUser", "user"),
    ("Azure AD", "Microsoft Azure Active Directory", "Add user", "user"),
    ("Office 365", "Microsoft Office 365", "Add user.", "user"),
    ("GCP", "Google Cloud Audit Logs", "google.iam.admin.v1.CreateServiceAccount", "service_account"),
)
BATCH = 20_000
# The indexed reads (migration 0007): each must take at most TARGET_RATIO times the baseline in the same run.
NEW_ACTIVE = "filtered (not suppressed, new)"
SEVERITY = "sorted (-severity)"
SEARCHED = "searched (q=pipeline-42)"
TARGET_RATIO = 10


def synthetic_detections(count: int, seed: int, now_ms: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    actors = [f"arn:aws:iam::111122223333:role/pipeline-{i}" for i in range(500)] + [
        f"admin{i}@contoso.example" for i in range(200)
    ]
    for i in range(count):
        platform, lst, event_name, kind = PLATFORMS[rng.randrange(4)]
        service = rng.random() < 0.02 or kind == "service_account"
        severity = rng.choice((3, 4, 5, 5, 6, 7, 8, 9))
        yield {
            "event_key": hashlib.sha256(f"bench-api-{seed}-{i}".encode()).hexdigest(),
            "event_time": now_ms - rng.randrange(30 * DAY),
            "event_name": event_name,
            "event_category": "User Account Added",
            "log_source": f"{platform} @ tenant-{rng.randrange(5)}",
            "log_source_type": lst,
            "qid": 59500000 + rng.randrange(40),
            "cloud_platform": platform,
            "is_service_account": int(service),
            "account_kind": "service_account" if service else kind,
            "actor": (actor := rng.choice(actors)).split("/")[-1],
            "actor_id": actor,
            "actor_type": "AssumedRole" if actor.startswith("arn:") else "User",
            "target_account": f"user-{i}",
            "target_id": f"id-{i}",
            "source_ip": f"203.0.113.{rng.randrange(256)}",
            "user_agent": rng.choice(("aws-cli/2.18.17", "Mozilla/5.0", "gcloud/470.0.0", "terraform/1.9")),
            "correlation_id": f"corr-{i}",
            "result": "success",
            "magnitude": severity,
            "severity": severity,
            "confidence": rng.choice(("low", "medium", "high")),
            "base_severity": severity,
            "base_confidence": "medium",
            "suppressed_by": 1 if rng.random() < 0.01 else None,  # set after the insert, like tuning does
            "chain_id": 1 + rng.randrange(count // 5000 + 1) if rng.random() < 0.001 else None,
            "payload": json.dumps({"eventName": event_name, "n": i}),
            "payload_ok": 1,
            "stored_at": now_ms,
        }


def build_store(path: Path, count: int, seed: int) -> tuple[float, int, float]:
    """Insert ``count`` detections in batches through the store layer, then refresh the planner statistics
    the way the refresher does after a cycle; (insert seconds, last id, statistics seconds)."""
    from app.store import db, refresh_state, tuning
    from app.store import detections as store

    conn = db.connect(path)
    now_ms = int(time.time() * 1000)
    started = time.perf_counter()
    last_id = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal last_id
        with db.transaction(conn):
            suppressed, chained = [], []
            for record in batch:
                last_id = store.insert_detection(conn, record)
                if record["suppressed_by"] is not None:
                    suppressed.append((record["suppressed_by"], last_id))
                if record["chain_id"] is not None:
                    chained.append((record["chain_id"], last_id))
            # insert_detection writes neither (the allowlist and the chain builder do, afterwards).
            tuning.set_suppressed_by(conn, suppressed)
            conn.executemany(
                "UPDATE detections SET chain_id = ?, chain_kind = 'privilege_escalation' WHERE id = ?",
                chained,
            )
        batch.clear()

    for record in synthetic_detections(count, seed, now_ms):
        batch.append(record)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    insert_s = time.perf_counter() - started
    started = time.perf_counter()
    if not refresh_state.refresh_planner_statistics_if_due(conn, now_ms):
        raise RuntimeError("a fresh store should have had no planner statistics yet")
    statistics_s = time.perf_counter() - started
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return insert_s, last_id, statistics_s


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()  # warm-up (page cache, statement cache)
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0])
    parser.add_argument("--detections", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--store",
        type=Path,
        help="build the store in this directory and keep it; when it already holds one, time the queries on "
        "it without building (no insert figures then)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(args.store) if args.store else scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        os.environ["APP_STORE_DIR"] = tmp
        os.environ["APP_QRADAR_TRANSPORT"] = "http"  # no app root here: the app runs as outside QRadar
        db_path = Path(tmp) / "cloud_account_watch.db"
        if args.store and db_path.exists():
            insert_s = statistics_s = None
            with sqlite3.connect(db_path) as conn:
                last_id = conn.execute("SELECT MAX(id) FROM detections").fetchone()[0]
        else:
            insert_s, last_id, statistics_s = build_store(db_path, args.detections, args.seed)
        size_mib = db_path.stat().st_size / 2**20

        from app import auth, create_app

        env = {"QRADAR_CONSOLE_FQDN": "127.0.0.1:9", "SEC_ADMIN_TOKEN": "unused", "QRADAR_APP_ID": "1101"}
        app = create_app({"DATABASE": str(db_path), "STORE_DIR": tmp, "QRADAR_ENV": env})
        token = "bench-analyst-token"  # noqa: S105 (a cache key for a synthetic user, not a secret)
        auth.token_cache.put(token, auth.User("analyst", "Analyst", frozenset({"SEM", "EVENTVIEWER"})), 3600)
        client = app.test_client()
        client.set_cookie("SEC", token)
        rng = random.Random(args.seed)
        deep = max(0, args.detections - 100)
        week_ago = int(time.time() * 1000) - 7 * DAY

        def get(path: str) -> Callable[[], Any]:
            def call() -> Any:
                resp = client.get(path)
                if resp.status_code != 200:
                    raise RuntimeError(f"{path}: {resp.status_code} {resp.get_data(as_text=True)[:300]}")
                return resp

            return call

        def detail() -> Any:
            return get(f"/api/detections/{rng.randint(1, last_id)}")()

        baseline_conn = sqlite3.connect(db_path)
        cases: list[tuple[str, Callable[[], Any]]] = [
            (
                "baseline: SELECT COUNT(*)",
                lambda: baseline_conn.execute("SELECT COUNT(*) FROM detections").fetchone(),
            ),
            ("/api/detections (default view)", get("/api/detections")),
            ("filtered (AWS, service accounts)", get("/api/detections?platform=AWS&service_accounts=true")),
            (
                "tab's filter (7 d, AWS, service, unsuppr.)",
                get(f"/api/detections?platform=AWS&service_accounts=true&suppressed=false&start={week_ago}"),
            ),
            (NEW_ACTIVE, get("/api/detections?suppressed=false&triage_status=new")),
            (SEVERITY, get("/api/detections?sort=-severity")),
            (SEARCHED, get("/api/detections?q=pipeline-42")),
            ("searched, one match (q=USER-<n>)", get(f"/api/detections?q=USER-{last_id // 2}")),
            ("searched, 2 characters (q=42: the rows)", get("/api/detections?q=42")),
            (f"paged deep (offset {deep:,})", get(f"/api/detections?offset={deep}&limit=50")),
            ("/api/overview (24h)", get("/api/overview")),
            ("/api/overview (30d)", get("/api/overview?window=30d")),
            ("/api/pulse/timeseries (720 h)", get("/api/pulse/timeseries?hours=720")),
            ("detail /api/detections/<id>", detail),
        ]
        results = []
        for name, fn in cases:
            try:
                results.append((name, timed(fn, args.repeat), None))
            except RuntimeError as exc:
                results.append((name, [], str(exc)))
        baseline_conn.close()

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"# bench.api: {args.detections:,} stored detections, {args.repeat} runs each "
        "(in-process, Flask test client)"
    )
    if insert_s is None:
        print(
            f"reused the store in {args.store} (insert figures: the run that built it); database {size_mib:,.0f} MiB"
        )
    else:
        print(
            f"insert through the store layer: {insert_s:.1f} s ({args.detections / insert_s:,.0f} rows/s); "
            f"database {size_mib:,.0f} MiB; planner statistics (the refresher's ANALYZE): {statistics_s:.2f} s"
        )
    base = pct(results[0][1], 50) if results[0][1] else float("nan")
    print(f"{'query':<44} {'p50 ms':>9} {'p95 ms':>9} {'p50 / baseline':>15}")
    for name, values, error in results:
        if error:
            print(f"{name:<44} error: {error}")
            continue
        p50, p95 = pct(values, 50), pct(values, 95)
        print(f"{name:<44} {p50 * 1000:>9.1f} {p95 * 1000:>9.1f} {p50 / base:>14.1f}x")
    print(f"peak RSS of this process: {peak_mib:,.0f} MiB")
    p50s = {name: pct(values, 50) for name, values, error in results if not error}
    ratios = {name: p50s[name] / base for name in (SEARCHED, NEW_ACTIVE, SEVERITY) if name in p50s}
    met = len(ratios) == 3 and all(r <= TARGET_RATIO for r in ratios.values())
    print(
        f"indexed reads (each <= {TARGET_RATIO}x the baseline): "
        + ", ".join(f"{name} {ratio:.1f}x" for name, ratio in ratios.items())
        + (" -- met" if met else " -- NOT met")
    )
    return 1 if any(error for _, _, error in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
