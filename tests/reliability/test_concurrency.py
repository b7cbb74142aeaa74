"""Concurrent allowlist edits through 4 gunicorn workers (the short deterministic variant of
``python -m bench.load``).

20 clients edit the same entry in 20 rounds. In each round they all send the version they last saw at the
same moment (a barrier): optimistic concurrency must let exactly one through and answer 409 to the other
19 — with the current entry, so the next round starts from it. Afterwards the entry carries the last
winner's change at version 1 + 20, its audit log has exactly one row per successful edit, and no request
got a 5xx.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from tests.reliability.crashloop import AppProcesses, entry_body, user_session

pytestmark = pytest.mark.stress

CLIENTS = 20
ROUNDS = 20


@pytest.fixture(scope="module")
def four_workers(devconsole: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    devconsole.faults.clear()
    procs = AppProcesses(devconsole, tmp_path_factory.mktemp("concurrency"), workers=4, threads=4)
    procs.start_gunicorn()
    yield procs
    procs.stop()


def test_same_entry_edited_by_20_clients_at_once(four_workers: AppProcesses, devconsole: Any) -> None:
    url = four_workers.base_url + "/api/tuning/entries"
    creator = user_session(devconsole, "tuner1")
    body = entry_body("arn:aws:iam::111122223333:role/concurrency", "c")
    created = creator.post(url, json=body, timeout=30)
    assert created.status_code == 201, created.text
    entry_id = created.json()["entry"]["id"]
    assert created.json()["entry"]["version"] == 1

    barrier = threading.Barrier(CLIENTS)
    statuses: Counter[int] = Counter()
    winners: list[tuple[int, int, str]] = []  # (round, version produced, ticket)
    stale_conflicts: list[tuple[int, int]] = []  # (version sent, current version in the 409 body)
    lock = threading.Lock()
    errors: list[str] = []

    def client(n: int) -> None:
        session = user_session(devconsole, "tuner1" if n % 2 else "tuner2")
        seen = 1
        for r in range(ROUNDS):
            barrier.wait(timeout=120)
            ticket = f"CHG-{r}-{n}"
            resp = session.patch(f"{url}/{entry_id}", json={"version": seen, "ticket": ticket}, timeout=60)
            body = resp.json()
            with lock:
                statuses[resp.status_code] += 1
                if resp.status_code == 200:
                    winners.append((r, body["entry"]["version"], ticket))
                elif resp.status_code == 409:
                    stale_conflicts.append((seen, body["current"]["version"]))
                else:
                    errors.append(f"{resp.status_code}: {resp.text[:200]}")
            # Everyone must see this round's outcome before the next one: wait for the others, then read.
            barrier.wait(timeout=120)
            if resp.status_code == 200:
                seen = body["entry"]["version"]
            else:
                seen = session.get(f"{url}/{entry_id}", timeout=30).json()["version"]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), f"clients still running after {elapsed:.0f} s"

    assert errors == []
    assert statuses == {200: ROUNDS, 409: ROUNDS * (CLIENTS - 1)}, statuses
    assert sorted(r for r, _, _ in winners) == list(range(ROUNDS)), "not exactly one winner per round"
    assert sorted(v for _, v, _ in winners) == list(range(2, ROUNDS + 2))
    assert all(sent < current for sent, current in stale_conflicts), "a 409 for a version that was current"

    final = creator.get(f"{url}/{entry_id}", timeout=30).json()
    last_round = max(winners)
    assert final["version"] == 1 + ROUNDS
    assert final["ticket"] == last_round[2], "the last acknowledged change is not the one stored"

    audit = creator.get(
        four_workers.base_url + f"/api/tuning/audit?object_id={entry_id}&limit=500", timeout=30
    ).json()
    actions = Counter(item["action"] for item in audit["items"])
    assert actions == {"tuning.entry.create": 1, "tuning.entry.update": ROUNDS}, actions


def test_refresh_requests_from_every_worker_coalesce(four_workers: AppProcesses, devconsole: Any) -> None:
    """50 simultaneous "refresh now" clicks across the workers queue one request (no refresher runs here)."""
    barrier = threading.Barrier(50)
    ids: list[int] = []
    codes: Counter[int] = Counter()
    lock = threading.Lock()

    def click() -> None:
        session = user_session(devconsole, "analyst")
        barrier.wait(timeout=60)
        resp = session.post(four_workers.base_url + "/api/refresh", json={}, timeout=60)
        with lock:
            codes[resp.status_code] += 1
            if resp.status_code == 202:
                ids.append(resp.json()["request_id"])

    threads = [threading.Thread(target=click) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert codes == {202: 50}, codes
    assert len(set(ids)) == 1, f"{len(set(ids))} refresh requests queued for 50 simultaneous clicks"
