"""Crash loop: ``kill -9`` of the refresher and of gunicorn workers at random points, then check the store.

    python -m tests.reliability.crashloop [--refresher-kills 50] [--worker-kills 50] [--seed 8] [--events 600]

Runs the app as QRadar does (gunicorn workers + ``python -m app.refresher``) against a dev console whose
searches are slowed (so kills land mid-search and mid-commit), while two writer threads make allowlist
changes through the API (create, approve, edit with version) and ask for refreshes. A seeded RNG picks, each
step, which process to kill and after how long; a killed refresher is restarted, gunicorn's master replaces
killed workers. Afterwards ``check_store`` verifies:

* ``PRAGMA integrity_check`` is ok;
* watermark and detections agree: the detections equal (event keys and field values but suppression) a
  clean single cycle over the same window [first start, watermark) in a fresh store — nothing lost, nothing
  twice;
* no half-applied allowlist change: each entry equals its latest audit record, and recomputing suppression
  from the active entries changes no detection's ``suppressed_by`` or ``suppression_overridden_by``;
* the audit log is complete: every acknowledged (2xx) write has its audit row (entry id and version).

The test (``test_crash_safety.py``) runs it against the session's dev console; standalone it seeds its own.
The process helpers here are shared with ``test_concurrency.py`` and ``bench/load.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DAY = 86_400_000
DB_NAME = "cloud_account_watch.db"


# -- processes -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(console: Any, store_dir: Path) -> dict[str, str]:
    """The environment QRadar gives the app (pointing at the dev console) plus the store directory."""
    return {
        **os.environ,
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{console.port}",
        "SEC_ADMIN_TOKEN": console.tokens["service"],
        "REQUESTS_CA_BUNDLE": str(console.ca_path),
        "QRADAR_APP_ID": str(console.app_id),
        "APP_STORE_DIR": str(store_dir),
        "APP_QRADAR_TRANSPORT": "http",
        "LOG_LEVEL": "WARNING",
    }


@dataclass
class AppProcesses:
    """gunicorn (``workers`` workers) and optionally the refresher, on one store."""

    console: Any
    store_dir: Path
    workers: int = 2
    threads: int = 4
    port: int = field(default_factory=free_port)
    gunicorn: subprocess.Popen | None = None
    refresher: subprocess.Popen | None = None
    refresher_starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.store_dir / DB_NAME

    def env(self) -> dict[str, str]:
        return app_env(self.console, self.store_dir)

    def start_gunicorn(self, timeout_s: float = 60) -> None:
        from devconsole.launcher import gunicorn_command

        log = (self.store_dir / "gunicorn.log").open("ab")
        self.gunicorn = subprocess.Popen(
            gunicorn_command(
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--timeout",
                "60",
            ),
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.gunicorn.poll() is not None:
                log_text = (self.store_dir / "gunicorn.log").read_text()
                raise RuntimeError(f"gunicorn exited: {log_text[-2000:]}")
            try:
                if (
                    requests.get(f"{self.base_url}/debug", timeout=2).status_code == 200
                    and len(self.worker_pids()) == self.workers
                ):
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer /debug")
            time.sleep(0.1)

    def start_refresher(self) -> None:
        log = (self.store_dir / "refresher.log").open("ab")
        self.refresher = subprocess.Popen(
            [sys.executable, "-m", "app.refresher"],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.refresher_starts += 1

    def worker_pids(self) -> list[int]:
        """The gunicorn master's live children (its workers), from /proc."""
        if self.gunicorn is None:
            return []
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.gunicorn.pid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        for proc in (self.refresher, self.gunicorn):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def user_session(console: Any, user: str) -> requests.Session:
    """A browser-like session as ``user``: SEC and QRadarCSRF cookies, the CSRF header on every request."""
    session = requests.Session()
    session.trust_env = False
    csrf = secrets.token_hex(16)
    session.cookies.set("SEC", console.tokens[user])
    session.cookies.set("QRadarCSRF", csrf)
    session.headers["QRadarCSRF"] = csrf
    return session


def entry_body(actor_id: str, tag: str) -> dict[str, Any]:
    return {
        "platforms": ["AWS", "Azure AD", "Office 365", "GCP"],
        "actor_id": actor_id,
        "justification": f"crash loop {tag}: allowlisted automation",
        "expires_at": int(time.time() * 1000) + 30 * DAY,
    }


# -- the loop ------------------------------------------------------------------------------------------


@dataclass
class Acked:
    """Writes the app acknowledged with 2xx: (entry id, version it produced, action)."""

    writes: list[tuple[int, int, str]] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1


def writer(procs: AppProcesses, actor_ids: list[str], seed: int, stop: threading.Event, acked: Acked) -> None:
    """Allowlist changes through the API until ``stop``: create (tuner1), approve (tuner2), edit (tuner1)."""
    rng = random.Random(seed)
    tuner1, tuner2 = user_session(procs.console, "tuner1"), user_session(procs.console, "tuner2")
    url = procs.base_url + "/api/tuning/entries"
    mine: dict[int, dict[str, Any]] = {}
    n = 0
    while not stop.is_set():
        n += 1
        try:
            choice = rng.random()
            if not mine or choice < 0.3:
                resp = tuner1.post(url, json=entry_body(rng.choice(actor_ids), f"{seed}-{n}"), timeout=30)
                action = "tuning.entry.create"
            elif choice < 0.6:
                entry = rng.choice(list(mine.values()))
                resp = tuner2.post(
                    f"{url}/{entry['id']}/approve", json={"version": entry["version"]}, timeout=30
                )
                action = "tuning.entry.approve"
            elif choice < 0.8:
                entry = rng.choice(list(mine.values()))
                resp = tuner1.patch(
                    f"{url}/{entry['id']}",
                    json={"version": entry["version"], "ticket": f"CHG-{seed}-{n}"},
                    timeout=30,
                )
                action = "tuning.entry.update"
            else:
                procs_resp = tuner1.post(procs.base_url + "/api/refresh", json={}, timeout=30)
                acked.note(procs_resp.status_code)
                continue
        except requests.RequestException:
            acked.note(0)  # the worker died mid-request: not acknowledged, so nothing is promised
            continue
        acked.note(resp.status_code)
        if resp.status_code in (200, 201):
            entry = resp.json()["entry"]
            if action == "tuning.entry.update" and entry["status"] == "active" and entry["text_edits"]:
                action = "tuning.entry.text_edit"  # a ticket edited after approval is audited as such
            mine[entry["id"]] = entry
            with acked.lock:
                acked.writes.append((entry["id"], entry["version"], action))
        elif resp.status_code == 409 and "current" in (body := resp.json()):
            mine[body["current"]["id"]] = body["current"]


@contextmanager
def slowed_searches(console: Any, seconds: float) -> Iterator[None]:
    console.faults.slow_searches(seconds)
    try:
        yield
    finally:
        console.faults.clear()


def crash_loop(
    console: Any,
    store_dir: Path,
    *,
    refresher_kills: int,
    worker_kills: int,
    seed: int,
    slow_s: float = 0.4,
    workers: int = 2,
) -> dict[str, Any]:
    """Kill the refresher ``refresher_kills`` times and gunicorn workers ``worker_kills`` times (two seeded
    schedules running side by side) while writers run; returns what happened."""
    from app.store import db, refresh_state

    store_dir.mkdir(parents=True, exist_ok=True)
    procs = AppProcesses(console, store_dir, workers=workers)
    # A fixed first window (the last 24 h before now), recorded before anything runs, so the clean cycle
    # in check_store can search exactly the same range.
    conn = db.connect(procs.db_path)
    with conn:
        lookback_start = int(time.time() * 1000) - DAY
        refresh_state.save_refresh_state(conn, "detection", watermark_ms=lookback_start + 10 * 60_000)
    conn.close()
    # Entries for the scenario's actors, so approved ones really suppress detections.
    items = console.scenario.get("items", [])
    actor_ids = sorted({item["actor_id"] for item in items if item.get("actor_id")})
    actor_ids = actor_ids[:30] or ["arn:aws:iam::111122223333:role/deployer"]
    killed = {"refresher": 0, "worker": 0}
    acked = Acked()
    stop = threading.Event()

    def watermark() -> int | None:
        with contextlib.closing(sqlite3.connect(procs.db_path, timeout=30)) as read:
            row = read.execute("SELECT watermark_ms FROM refresh_state WHERE name = 'detection'").fetchone()
        return row[0] if row else None

    def kill_refresher(rng: random.Random) -> None:
        # From its (re)start: the refresher needs ~1 s to import, then searches (slowed) and commits. Every
        # fifth kill first lets a cycle commit (so the store has committed cycles to check) and then lands
        # shortly after, in the next cycle or between cycles.
        for n in range(refresher_kills):
            if n % 5 == 4:
                seen, deadline = watermark(), time.monotonic() + 60
                while watermark() == seen and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(rng.uniform(0.0, 0.6))
            else:
                time.sleep(rng.uniform(0.6, 2.4))
            os.kill(procs.refresher.pid, signal.SIGKILL)
            procs.refresher.wait()
            killed["refresher"] += 1
            procs.start_refresher()

    def kill_workers(rng: random.Random) -> None:
        for _ in range(worker_kills):
            time.sleep(rng.uniform(0.2, 1.0))
            pids = procs.worker_pids()
            while not pids:  # the master is replacing them
                time.sleep(0.05)
                pids = procs.worker_pids()
            os.kill(rng.choice(sorted(pids)), signal.SIGKILL)
            killed["worker"] += 1

    with slowed_searches(console, slow_s):
        procs.start_gunicorn()
        procs.start_refresher()
        writers = [
            threading.Thread(target=writer, args=(procs, actor_ids, seed * 100 + i, stop, acked))
            for i in range(2)
        ]
        killers = [
            threading.Thread(target=kill_refresher, args=(random.Random(seed),)),
            threading.Thread(target=kill_workers, args=(random.Random(seed + 1),)),
        ]
        for t in writers + killers:
            t.start()
        try:
            for t in killers:
                t.join()
        finally:
            stop.set()
            for t in writers:
                t.join()
            if procs.refresher is not None and procs.refresher.poll() is None:
                os.kill(procs.refresher.pid, signal.SIGKILL)  # the last one dies anywhere too
                procs.refresher.wait()
            procs.stop()
    return {
        "killed": killed,
        "acked": acked,
        "lookback_start": lookback_start,
        "refresher_starts": procs.refresher_starts,
        "db_path": procs.db_path,
    }


# -- the checks ------------------------------------------------------------------------------------------

# Suppression state (``suppressed_by`` and the chain override ``suppression_overridden_by``) comes from the
# allowlist entries, which the clean store has none of; it is checked against the crash store's own active
# entries instead (the recompute at the end of ``check_store``).
COMPARED_OUT = {
    "id",
    "stored_at",
    "chain_id",
    "suppressed_by",
    "suppression_overridden_by",
    "triage_status",
    "triage_note",
    "triage_by",
    "triage_at",
}


def detections_by_key(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    rows = conn.execute("SELECT * FROM detections").fetchall()
    return {r["event_key"]: {k: r[k] for k in r.keys() if k not in COMPARED_OUT} for r in rows}  # noqa: SIM118


def clean_cycle(console: Any, lookback_start: int, stop_ms: int, work_dir: Path) -> dict[str, dict[str, Any]]:
    """One fault-free cycle over [lookback_start, stop_ms) in a fresh store: what the crash store holds."""
    from app.detection import refresher
    from app.qradar.gateway import Gateway
    from app.qradar.transport import HttpTransport
    from app.store import db, refresh_state

    conn = db.connect(work_dir / "clean.db")
    try:
        with conn:
            refresh_state.save_refresh_state(conn, "detection", watermark_ms=lookback_start + 10 * 60_000)
        gw = Gateway(
            HttpTransport(
                f"127.0.0.1:{console.port}",
                admin_token=console.tokens["service"],
                ca_bundle=str(console.ca_path),
            ),
            poll_wait_s=1,
            poll_interval_s=0.1,
        )
        result = refresher.refresh_once(conn, gw, now=stop_ms)
        if result.status != "ok":
            raise RuntimeError(f"the clean cycle failed: {result.error}")
        return detections_by_key(conn)
    finally:
        conn.close()


def check_store(console: Any, outcome: dict[str, Any], work_dir: Path) -> list[str]:
    """Every broken invariant, in words (empty when the store is sound)."""
    from app.store import db
    from app.tuning import suppress

    problems: list[str] = []
    db_path: Path = outcome["db_path"]
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        if [r[0] for r in integrity] != ["ok"]:
            problems.append(f"integrity_check: {[r[0] for r in integrity][:5]}")
        state = conn.execute("SELECT * FROM refresh_state WHERE name = 'detection'").fetchone()
        watermark = state["watermark_ms"]
        stored = detections_by_key(conn)
        if state["runs"] == 0 or watermark == outcome["lookback_start"] + 10 * 60_000:
            if stored:
                problems.append(f"{len(stored)} detections stored although no cycle committed a watermark")
        else:
            expected = clean_cycle(console, outcome["lookback_start"], watermark, work_dir)
            missing, extra = set(expected) - set(stored), set(stored) - set(expected)
            if missing or extra:
                problems.append(
                    f"detections vs a clean run up to the watermark: {len(missing)} missing, "
                    f"{len(extra)} extra"
                )
            differing = [k for k in set(expected) & set(stored) if expected[k] != stored[k]]
            if differing:
                problems.append(
                    f"{len(differing)} detections differ from the clean run, e.g. "
                    f"{_diff(expected[differing[0]], stored[differing[0]])}"
                )
        dupes = conn.execute("SELECT COUNT(*) - COUNT(DISTINCT event_key) FROM detection_events").fetchone()[
            0
        ]
        if dupes:
            problems.append(f"{dupes} duplicated detection events")

        # Allowlist: each entry equals its latest audit record; acknowledged writes all audited.
        audits: dict[int, list[dict[str, Any]]] = {}
        for row in conn.execute(
            "SELECT object_id, action, after_json FROM audit_log "
            "WHERE object_type = 'tuning_entry' ORDER BY id"
        ):
            audits.setdefault(int(row["object_id"]), []).append(
                {"action": row["action"], "after": json.loads(row["after_json"] or "null")}
            )
        for entry in conn.execute("SELECT * FROM tuning_entries"):
            history = audits.get(entry["id"])
            if not history:
                problems.append(f"entry {entry['id']} has no audit record")
                continue
            last = history[-1]["after"] or {}
            if (last.get("version"), last.get("status")) != (entry["version"], entry["status"]):
                problems.append(
                    f"entry {entry['id']} is v{entry['version']} {entry['status']} but its "
                    f"last audit says v{last.get('version')} {last.get('status')}"
                )
        audited = {
            (oid, (h["after"] or {}).get("version"), h["action"]) for oid, hs in audits.items() for h in hs
        }
        unaudited = [w for w in outcome["acked"].writes if w not in audited]
        if unaudited:
            problems.append(f"{len(unaudited)} acknowledged writes have no audit row, e.g. {unaudited[:3]}")
    finally:
        conn.close()

    # Suppression: recompute from the active entries on a copy; nothing may change.
    copy = work_dir / "suppression-check.db"
    shutil.copy(db_path, copy)
    for suffix in ("-wal", "-shm"):
        if Path(str(db_path) + suffix).exists():
            shutil.copy(str(db_path) + suffix, str(copy) + suffix)
    check = db.connect(copy)
    try:
        state = "SELECT id, suppressed_by, suppression_overridden_by FROM detections"
        before = {r[0]: r[1:] for r in check.execute(state)}
        with check:
            suppress.apply(check, int(time.time() * 1000))
        after = {r[0]: r[1:] for r in check.execute(state)}
        changed = [i for i in before if before[i] != after[i]]
        if changed:
            problems.append(
                f"{len(changed)} detections' suppressed_by/suppression_overridden_by disagree with the "
                f"active entries, e.g. detection {changed[0]}: {before[changed[0]]} vs {after[changed[0]]}"
            )
    finally:
        check.close()
    return problems


def _diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.crashloop", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--refresher-kills", type=int, default=50)
    parser.add_argument("--worker-kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--events", type=int, default=600, help="dev console scenario size")
    parser.add_argument("--keep", type=Path, help="copy the store and logs here afterwards")
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
        try:
            started = time.monotonic()
            outcome = crash_loop(
                console,
                Path(tmp) / "store",
                refresher_kills=args.refresher_kills,
                worker_kills=args.worker_kills,
                seed=args.seed,
            )
            problems = check_store(console, outcome, Path(tmp))
        finally:
            stop_devconsole(console)
            if args.keep:
                shutil.copytree(Path(tmp) / "store", args.keep, dirs_exist_ok=True)
    print(
        f"kills: {outcome['killed']} in {time.monotonic() - started:.0f} s; acknowledged writes: "
        f"{len(outcome['acked'].writes)}; responses: {outcome['acked'].statuses}"
    )
    for problem in problems:
        print("PROBLEM:", problem)
    print("store sound" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
