"""Hunting against a slow QRadar must not slow the rest of the app: ``/debug`` and the detections list,
idle and while N hunts run.

    python -m bench.hunt_pressure [--hunts 8] [--slow 20] [--samples 40] [--gap 0.3] [--workers 2] [--threads 4]

Seeds and serves its own dev console, fills a fresh store with one refresher cycle and starts gunicorn as
QRadar runs it (2 workers x 4 threads, the app's production settings). It then times ``/debug`` and
``GET /api/detections`` (``--samples`` of each, one after the other, as the analyst), switches on the dev
console's slow-search fault (every Ariel search takes ``--slow`` s more), starts ``--hunts`` playbook
hunting queries (each a different one) at once from separate clients that follow them as the playbook page does (start, then ask
for the state every second until the rows come), and times the same requests again while every hunt is
still running. Prints p50/p95/max of each, idle and under the hunts, their ratios (the check: p95 and max
each within 2x idle), and each hunt's time and row count. An app that answers a hunt only when QRadar has finished (``200`` with the rows to the
start request) is followed too, so the same bench measures both designs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.aql.hunting import TOPIC_KEYS  # noqa: E402
from tests.reliability.crashloop import AppProcesses, free_port, user_session  # noqa: E402

# One hunting query per hunt (QRadar answers an identical recent query with the search it already runs).
HUNT_QUERIES = sorted(TOPIC_KEYS)
POLL_S = 1.0


def timed(session: requests.Session, url: str) -> float:
    started = time.perf_counter()
    response = session.get(url, timeout=300)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")
    return elapsed


def sample(session: requests.Session, base: str, samples: int, gap_s: float) -> dict[str, list[float]]:
    """``samples`` timings of /debug and of the detections list, alternating, ``gap_s`` apart."""
    found: dict[str, list[float]] = {"/debug": [], "list": []}
    for _ in range(samples):
        found["/debug"].append(timed(session, f"{base}/debug"))
        found["list"].append(timed(session, f"{base}/api/detections"))
        time.sleep(gap_s)
    return found


class Hunt(threading.Thread):
    """One analyst running one hunting query the way the playbook page does."""

    def __init__(self, console: Any, base: str, query: str) -> None:
        super().__init__(daemon=True)
        self.query = query
        self.session = user_session(console, "analyst")
        self.session.headers["Connection"] = "close"
        self.base = base
        self.started_at = 0.0
        self.seconds = float("nan")
        self.rows = -1
        self.error = ""

    def run(self) -> None:
        self.started_at = time.perf_counter()
        try:
            started = self.session.post(
                f"{self.base}/api/hunting/run", json={"query": self.query}, timeout=600
            )
            if started.status_code == 200:  # an app that waits for QRadar inside the request
                self.rows = started.json()["total"]
            elif started.status_code == 202:
                poll_url = self.base + started.json()["poll_url"]
                while True:
                    time.sleep(POLL_S)
                    state = self.session.get(poll_url, timeout=600)
                    state.raise_for_status()
                    if state.json()["done"]:
                        self.rows = state.json()["total"]
                        break
            else:
                self.error = f"start answered {started.status_code}: {started.text[:200]}"
        except requests.RequestException as exc:
            self.error = f"{exc.__class__.__name__}: {exc}"
        finally:
            self.seconds = time.perf_counter() - self.started_at


def summary(values: list[float]) -> tuple[float, float, float]:
    p95 = statistics.quantiles(values, n=100, method="inclusive")[94] if len(values) > 1 else values[0]
    return statistics.median(values), p95, max(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hunt_pressure", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--hunts", type=int, default=8)
    parser.add_argument("--slow", type=float, default=20.0, help="seconds every Ariel search is slowed by")
    parser.add_argument("--samples", type=int, default=40, help="timings of each request, idle and loaded")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between timings")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--events", type=int, default=3000, help="dev console scenario size")
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
        procs = AppProcesses(console, store, workers=args.workers, threads=args.threads)
        hunts: list[Hunt] = []
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
            base = procs.base_url
            analyst = user_session(console, "analyst")
            analyst.headers["Connection"] = "close"
            sample(analyst, base, 5, 0.05)  # warm-up: each worker's user cache and connections
            idle = sample(analyst, base, args.samples, args.gap)
            console.faults.slow_searches(args.slow)
            hunts = [Hunt(console, base, HUNT_QUERIES[n % len(HUNT_QUERIES)]) for n in range(args.hunts)]
            for hunt in hunts:
                hunt.start()
            # Measured while the hunts are under way (their searches take at least --slow s).
            time.sleep(1.0)
            began = time.perf_counter()
            loaded = sample(analyst, base, args.samples, args.gap)
            window = time.perf_counter() - began
            running_after = sum(1 for h in hunts if h.is_alive())
            for hunt in hunts:
                hunt.join(timeout=args.slow + 300)
        finally:
            console.faults.clear()
            procs.stop()
            stop_devconsole(console)

    print(
        f"# bench.hunt_pressure: {args.hunts} hunts against searches slowed by {args.slow:g} s; gunicorn "
        f"{args.workers} workers x {args.threads} threads; {args.samples} timings of each request"
    )
    print(
        f"{'request':<10} {'idle p50':>9} {'p95':>7} {'max':>7} {'hunts p50':>10} {'p95':>7} {'max':>9} "
        f"{'p50 x':>6} {'p95 x':>6} {'max x':>6}"
    )
    ok = True
    for name in ("/debug", "list"):
        i50, i95, imax = summary(idle[name])
        l50, l95, lmax = summary(loaded[name])
        print(
            f"{name:<10} {i50 * 1000:>7.1f}ms {i95 * 1000:>5.1f}ms {imax * 1000:>5.1f}ms "
            f"{l50 * 1000:>8.1f}ms {l95 * 1000:>5.1f}ms {lmax * 1000:>7.1f}ms {l50 / i50:>5.1f}x {l95 / i95:>5.1f}x "
            f"{lmax / imax:>5.1f}x"
        )
        ok = ok and l95 <= 2 * i95 and lmax <= 2 * imax
    print(
        f"loaded timings took {window:.1f} s; hunts still running when they ended: {running_after}/{args.hunts}"
    )
    for n, hunt in enumerate(hunts):
        print(f"  hunt {n} {hunt.query}: {hunt.seconds:.1f} s, {hunt.rows} rows {hunt.error}")
    failed = [h for h in hunts if h.error or h.rows < 0]
    ok = ok and not failed and running_after == len(hunts)
    print(
        "checks:",
        "ok" if ok else "FAILED (p95 or max under the hunts > 2x idle, a hunt failed, or hunts ended early)",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
