"""The per-offense cache in the app's store (real SQLite with the app's migrations)."""

from __future__ import annotations

from app.store import offense_cache
from app.store.db import connect


def test_cache_lifecycle_and_purge(tmp_path) -> None:
    conn = connect(tmp_path / "store.db")
    assert offense_cache.get(conn, 7) is None
    offense_cache.start(conn, 7, search_id="s-1", offense_start=1000, offense_updated=2000, now_ms=10)
    row = offense_cache.get(conn, 7)
    assert (row["status"], row["search_id"], row["rows"]) == ("searching", "s-1", [])
    rows = [{"event_time": 1500, "platform": "AWS", "target": "x'<b>", "detection_id": None}]
    offense_cache.finish(conn, 7, rows, now_ms=20)
    row = offense_cache.get(conn, 7)
    assert (row["status"], row["search_id"], row["rows"], row["checked_at"]) == ("done", None, rows, 20)
    # A new search for the same offense replaces the answer.
    offense_cache.start(conn, 7, search_id="s-2", offense_start=1000, offense_updated=3000, now_ms=30)
    offense_cache.fail(conn, 7, "Injected failure", now_ms=40)
    row = offense_cache.get(conn, 7)
    assert (row["status"], row["error"], row["offense_updated"]) == ("error", "Injected failure", 3000)
    offense_cache.start(conn, 8, search_id="s-3", offense_start=1, offense_updated=2, now_ms=100)
    assert offense_cache.purge_older_than(conn, 50) == 1
    assert offense_cache.get(conn, 7) is None and offense_cache.get(conn, 8) is not None
    conn.close()
