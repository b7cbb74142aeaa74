"""The Ariel search manager in-process, on the seeded store with the real AQL engine: retention of
finished searches, saved searches, and queueing (WAIT) when all execution slots are busy."""

from __future__ import annotations

import time
import uuid

import pytest

from devconsole.aql import AqlEngine
from devconsole.faults import FaultInjector
from devconsole.searches import SearchManager, SearchNotFound
from devconsole.store import EventStore


@pytest.fixture
def engine_factory(devconsole):
    store = EventStore.in_dir(devconsole.data_dir)
    return lambda: AqlEngine(store, default_window_ms=5 * 60_000)


def unique_query() -> str:
    return f"SELECT qid AS q{uuid.uuid4().hex[:8]} FROM events LIMIT 5 LAST 1 HOURS"


def test_finished_searches_expire_unless_saved(engine_factory):
    # Long retention while the searches are created and saved: a short one would let ``kept`` finish
    # and expire before save() reaches it (the race that once failed CI).
    manager = SearchManager(engine_factory, retention_seconds=3600)
    kept, _ = manager.create(unique_query(), "admin")
    dropped, _ = manager.create(unique_query(), "admin")
    manager.save(kept.search_id)
    for search in (kept, dropped):
        assert manager.wait(search.search_id, 60).status == "COMPLETED"
    assert {kept.search_id, dropped.search_id} <= set(manager.list_ids())
    manager.retention_seconds = 0
    time.sleep(0.01)  # retention 0: any finished search is now past it
    ids = manager.list_ids()
    assert kept.search_id in ids
    assert dropped.search_id not in ids
    with pytest.raises(SearchNotFound):
        manager.get(dropped.search_id)


def test_searches_wait_for_a_free_slot(engine_factory):
    faults = FaultInjector()
    faults.slow_searches(1.5)
    manager = SearchManager(engine_factory, faults, max_concurrent=1)
    first, _ = manager.create(unique_query(), "admin")
    second, _ = manager.create(unique_query(), "admin")
    observed = set()
    while first.status != "COMPLETED" or second.status != "COMPLETED":
        pair = (manager.get(first.search_id).status, manager.get(second.search_id).status)
        assert pair != ("EXECUTE", "EXECUTE"), "only one search may execute with one slot"
        observed.add(pair)
        time.sleep(0.02)
    assert ("EXECUTE", "WAIT") in observed or ("WAIT", "EXECUTE") in observed


def test_a_slowed_search_stops_being_slow_when_the_fault_is_cleared(engine_factory):
    # A test that slows searches and clears the fault must not leave a search sleeping in a slot.
    faults = FaultInjector()
    faults.slow_searches(600)
    manager = SearchManager(engine_factory, faults, max_concurrent=1)
    slowed, _ = manager.create(unique_query(), "admin")
    waiting, _ = manager.create(unique_query(), "admin")
    while manager.get(slowed.search_id).status != "EXECUTE":
        time.sleep(0.02)
    assert manager.wait(slowed.search_id, 1).status == "EXECUTE"  # still slowed while the fault is on
    faults.clear()
    assert manager.wait(slowed.search_id, 30).status == "COMPLETED"
    assert manager.wait(waiting.search_id, 30).status == "COMPLETED"


def test_identical_query_reuse_skips_canceled_searches(engine_factory):
    faults = FaultInjector()
    faults.slow_searches(2)
    manager = SearchManager(engine_factory, faults)
    query = unique_query()
    first, reused = manager.create(query, "admin")
    assert reused is False
    manager.cancel(first.search_id)
    assert manager.wait(first.search_id, 30).status == "CANCELED"
    again, reused = manager.create(query, "admin")
    assert reused is False
    assert again.search_id != first.search_id
    faults.clear()
    assert manager.wait(again.search_id, 30).status == "COMPLETED"
