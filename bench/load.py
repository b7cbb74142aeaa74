"""Concurrency and load: 4 gunicorn workers + the refresher, N concurrent clients for a fixed duration.

    python -m bench.load [--duration 60] [--clients 50] [--events 3000] [--seed 8]

Seeds and serves its own dev console, starts the app as QRadar runs it (``gunicorn --workers 4`` and
``python -m app.refresher``, a fresh store filled by the refresher), then runs ``--clients`` threads that mix
reads (detection list with filters, detail, overview, status, and ``/debug`` as the same-run baseline) and allowlist edits (create, update carrying
the version last seen, approve) through the HTTP API. Prints per request kind: count, p50/p95 latency;
the status codes; the checks (no 5xx; no lost update: every entry's final version and ticket are those of
its last acknowledged write, and every 409 answered a version that was indeed stale); and each process's
peak RSS (sampled with psutil every 0.25 s).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability.crashloop import AppProcesses, entry_body, free_port, user_session  # noqa: E402

READS = ("list", "list filtered", "detail", "overview", "status", "debug")
WRITES = ("create", "update", "approve")
LIST_FILTERS = (
    "platform=AWS",
    "platform=Azure%20AD&service_accounts=true",
    "suppressed=false&sort=-severity",
    "q=admin",
    "triage_status=new&limit=100",
    "sort=event_time&offset=20",
    "chains_only=true",
)


class Results:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[tuple[str, int]] = Counter()
        # entry id -> (version, ticket) of each acknowledged write, in order of acknowledgement
        self.acked: dict[int, list[tuple[int, str | None]]] = defaultdict(list)
        self.stale_409s: list[tuple[int, int]] = []  # (version sent, version current per the 409 body)
        self.dropped: list[str] = []
        # 4xx other than stale-version 409s: (kind, status, error code)
        self.client_errors: Counter[tuple[str, int, str]] = Counter()

    def record(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            self.statuses[(kind, status)] += 1


class Sampler(threading.Thread):
    """Peak RSS per process (gunicorn master, each worker pid ever seen, refresher) until stopped."""

    def __init__(self, procs: AppProcesses) -> None:
        super().__init__(daemon=True)
        self.procs = procs
        self.peak: dict[str, int] = {}
        self.stop_event = threading.Event()

    def sample(self, name: str, pid: int) -> None:
        try:
            rss = psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return
        self.peak[name] = max(self.peak.get(name, 0), rss)

    def run(self) -> None:
        while not self.stop_event.is_set():
            if self.procs.gunicorn:
                self.sample("gunicorn master", self.procs.gunicorn.pid)
            for pid in self.procs.worker_pids():
                self.sample(f"gunicorn worker {pid}", pid)
            if self.procs.refresher:
                self.sample("refresher", self.procs.refresher.pid)
            self.stop_event.wait(0.25)


def client(
    n: int,
    procs: AppProcesses,
    detection_ids: list[int],
    shared: list[dict[str, Any]],
    until: float,
    seed: int,
    results: Results,
) -> None:
    rng = random.Random(seed * 1000 + n)
    tuner = user_session(procs.console, "tuner1" if n % 2 else "tuner2")
    approver = user_session(procs.console, "tuner2" if n % 2 else "tuner1")
    analyst = user_session(procs.console, "analyst")
    for session in (tuner, approver, analyst):
        # One connection per request: requests does not retry a PATCH/POST on a keep-alive connection
        # that gunicorn closed meanwhile (a browser does), which would show up as a dropped request.
        session.headers["Connection"] = "close"
    base = procs.base_url
    known: dict[int, dict[str, Any]] = {e["id"]: dict(e) for e in shared}
    i = 0
    while time.monotonic() < until:
        i += 1
        roll = rng.random()
        kind = (
            READS[0]
            if roll < 0.25
            else READS[1]
            if roll < 0.45
            else READS[2]
            if roll < 0.55
            else READS[3]
            if roll < 0.65
            else READS[4]
            if roll < 0.69
            else READS[5]
            if roll < 0.72
            else WRITES[1]
            if roll < 0.9
            else WRITES[0]
            if roll < 0.95
            else WRITES[2]
        )
        started = time.perf_counter()
        try:
            if kind == "list":
                resp = analyst.get(f"{base}/api/detections", timeout=60)
            elif kind == "list filtered":
                resp = analyst.get(f"{base}/api/detections?{rng.choice(LIST_FILTERS)}", timeout=60)
            elif kind == "detail":
                resp = analyst.get(f"{base}/api/detections/{rng.choice(detection_ids)}", timeout=60)
            elif kind == "overview":
                resp = analyst.get(f"{base}/api/overview", timeout=60)
            elif kind == "status":
                resp = analyst.get(f"{base}/api/status", timeout=60)
            elif kind == "debug":
                resp = analyst.get(f"{base}/debug", timeout=60)
            elif kind == "create":
                body = entry_body(f"arn:aws:iam::111122223333:role/load-{n}-{i}", f"load {n}-{i}")
                resp = tuner.post(f"{base}/api/tuning/entries", json=body, timeout=60)
            elif kind == "update":
                entry = known[rng.choice(sorted(known))]
                ticket = f"LOAD-{n}-{i}"
                resp = tuner.patch(
                    f"{base}/api/tuning/entries/{entry['id']}",
                    json={"version": entry["version"], "ticket": ticket},
                    timeout=60,
                )
            else:
                entry = known[rng.choice(sorted(known))]
                resp = approver.post(
                    f"{base}/api/tuning/entries/{entry['id']}/approve",
                    json={"version": entry["version"]},
                    timeout=60,
                )
        except requests.RequestException as exc:
            results.record(kind, time.perf_counter() - started, 0)
            with results.lock:
                results.dropped.append(f"{kind}: {exc.__class__.__name__}: {str(exc)[:120]}")
            continue
        results.record(kind, time.perf_counter() - started, resp.status_code)
        code = (resp.json().get("error") or {}).get("code", "?") if resp.status_code >= 400 else ""
        if 400 <= resp.status_code < 500 and code != "stale_version":
            with results.lock:
                results.client_errors[(kind, resp.status_code, code)] += 1
        if kind in WRITES:
            body = resp.json()
            if resp.status_code in (200, 201):
                entry = body["entry"]
                known[entry["id"]] = entry
                with results.lock:
                    results.acked[entry["id"]].append((entry["version"], entry.get("ticket")))
            elif code == "stale_version":
                current = body["current"]
                with results.lock:
                    results.stale_409s.append((known[current["id"]]["version"], current["version"]))
                known[current["id"]] = current


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--events", type=int, default=3000, help="dev console scenario size")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args(argv)
    from tests.conftest import start_devconsole, stop_devconsole

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "console"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "devconsole",
                "seed",
                "--data",
                str(data),
                "--events",
                str(args.events),
                "--seed",
                "7",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        console = start_devconsole(data, free_port(), ROOT / "manifest.json")
        store = Path(tmp) / "store"
        store.mkdir()
        procs = AppProcesses(console, store, workers=args.workers, threads=4)
        sampler = Sampler(procs)
        try:
            subprocess.run(
                [sys.executable, "-m", "app.refresher", "--once"],
                cwd=ROOT,
                env=procs.env(),
                check=True,
                capture_output=True,
                timeout=600,
            )
            procs.start_gunicorn()
            procs.start_refresher()
            sampler.start()
            analyst = user_session(console, "analyst")
            listed = analyst.get(f"{procs.base_url}/api/detections?limit=500", timeout=60).json()
            detection_ids = [d["id"] for d in listed["items"]]
            tuner = user_session(console, "tuner1")
            shared = [
                tuner.post(
                    f"{procs.base_url}/api/tuning/entries",
                    json=entry_body(f"arn:aws:iam::111122223333:role/shared-{k}", f"shared {k}"),
                    timeout=60,
                ).json()["entry"]
                for k in range(10)
            ]
            results = Results()
            for e in shared:
                results.acked[e["id"]].append((e["version"], e.get("ticket")))
            until = time.monotonic() + args.duration
            threads = [
                threading.Thread(
                    target=client, args=(n, procs, detection_ids, shared, until, args.seed, results)
                )
                for n in range(args.clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            # Lost updates: each entry's stored version/ticket must be its last acknowledged write.
            lost = []
            for entry_id, writes in results.acked.items():
                stored = tuner.get(f"{procs.base_url}/api/tuning/entries/{entry_id}", timeout=60).json()
                last = max(writes)
                if (stored["version"], stored.get("ticket")) != last:
                    lost.append((entry_id, last, (stored["version"], stored.get("ticket"))))
        finally:
            sampler.stop_event.set()
            procs.stop()
            stop_devconsole(console)

    total = sum(len(v) for v in results.latency.values())
    print(
        f"# bench.load: {args.clients} clients, {args.duration:g} s, {args.workers} gunicorn workers + "
        f"refresher, {len(detection_ids)} detections listed"
    )
    print(f"requests: {total} ({total / args.duration:.0f}/s)")
    # /debug (no auth, no store, no QRadar) is the same-run baseline: the server's floor under this load.
    debug_p95 = percentile(results.latency.get("debug", []), 95)
    print(f"{'kind':<14} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p95/debug':>9}")
    for kind in (*READS, *WRITES):
        values = results.latency.get(kind, [])
        p95 = percentile(values, 95)
        print(
            f"{kind:<14} {len(values):>7} {percentile(values, 50) * 1000:>8.1f} "
            f"{p95 * 1000:>8.1f} {p95 / debug_p95:>8.1f}x"
        )
    codes = Counter()
    for (_, status), count in results.statuses.items():
        codes[status] += count
    print("status codes:", dict(sorted(codes.items())))
    server_errors = {k: v for k, v in results.statuses.items() if k[1] >= 500 or k[1] == 0}
    wrong_409 = [s for s in results.stale_409s if s[0] >= s[1]]
    print(f"5xx or dropped: {sum(server_errors.values())} {server_errors or ''} {results.dropped[:3] or ''}")
    # Expected 4xx: 403 same_user (the two-person rule: a tuner approving a version they submitted) and 409
    # not_pending (approving an entry another client approved already).
    print("4xx other than stale-version 409s:", dict(results.client_errors))
    unexpected_4xx = {
        k: v
        for k, v in results.client_errors.items()
        if (k[1], k[2]) not in ((403, "same_user"), (409, "not_pending"))
    }
    acked = sum(len(w) for w in results.acked.values())
    print(
        f"acknowledged writes: {acked} on {len(results.acked)} entries; "
        f"lost updates: {len(lost)}; 409s: {len(results.stale_409s)}, of which for a current version: "
        f"{len(wrong_409)}"
    )
    print("peak RSS (MiB):")
    workers = sorted(k for k in sampler.peak if k.startswith("gunicorn worker"))
    for name in ["gunicorn master", *workers, "refresher"]:
        if name in sampler.peak:
            print(f"  {name:<24} {sampler.peak[name] / 2**20:7.1f}")
    ok = not server_errors and not lost and not wrong_409 and not unexpected_4xx
    print("checks:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
