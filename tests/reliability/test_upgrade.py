"""Upgrade safety: a store written by each released schema version migrates forward to the current one with
nothing lost, idempotently; a store from a newer (unknown) version is refused, untouched.

The fixtures (``fixtures/store-v<N>.sql``) are SQL dumps written by ``make_store_fixture.py`` when version N
was released; they stand for stores in the field and are never regenerated.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from app.store import db
from tests.reliability.make_store_fixture import FIXTURES_DIR, dump_sql, load_sql

FIXTURES = sorted(FIXTURES_DIR.glob("store-v*.sql"), key=lambda p: int(re.findall(r"\d+", p.name)[0]))
CURRENT = db.migrations()[-1][0]
FIRST_RELEASED = 4  # 0004_offense_cache was the schema of the first release


def fixture_version(path: Path) -> int:
    return int(re.fullmatch(r"store-v(\d+)\.sql", path.name).group(1))


def snapshot(path: Path) -> dict[str, list[dict]]:
    """Every user table's rows (as dicts, in rowid order; WITHOUT ROWID tables in primary-key order)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {
            t: [dict(r) for r in conn.execute(f'SELECT * FROM "{t}" ORDER BY {_order(conn, t)}')]
            for t in tables
        }
    finally:
        conn.close()


def _order(conn: sqlite3.Connection, table: str) -> str:
    sql = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()[0]
    if not re.search(r"\bWITHOUT\s+ROWID\s*$", sql, re.IGNORECASE):
        return "rowid"
    key = sorted((r["pk"], r["name"]) for r in conn.execute(f'PRAGMA table_info("{table}")') if r["pk"])
    return ", ".join(f'"{name}"' for _, name in key)


def test_there_is_a_fixture_for_the_first_released_version() -> None:
    assert FIXTURES, "no store fixtures: run python -m tests.reliability.make_store_fixture"
    versions = [fixture_version(f) for f in FIXTURES]
    assert FIRST_RELEASED in versions
    assert max(versions) <= CURRENT, "a fixture from a version these migrations do not reach"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_fixture_fills_every_table_of_its_version(fixture: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    load_sql(fixture.read_text(encoding="utf-8"), store)
    conn = sqlite3.connect(store)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == fixture_version(fixture)
    finally:
        conn.close()
    empty = [table for table, rows in snapshot(store).items() if not rows]
    assert empty == [], f"{fixture.name} has no rows in {empty}: the upgrade test would not cover them"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_store_migrates_forward_with_nothing_lost(fixture: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    load_sql(fixture.read_text(encoding="utf-8"), store)
    before = snapshot(store)

    conn = db.connect(store)  # what the app and the refresher do on start-up
    try:
        assert db.schema_version(conn) == CURRENT
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    after = snapshot(store)

    for table, rows in before.items():
        assert table in after, f"migration dropped table {table}"
        assert len(after[table]) == len(rows), f"{table}: {len(rows)} rows before, {len(after[table])} after"
        for old, new in zip(rows, after[table], strict=True):
            # Every column the old version had keeps its value (new columns may be added).
            assert {k: new.get(k) for k in old} == old, f"{table} row changed by the migration"

    migrated_dump = dump_sql(store)
    conn = db.connect(store)
    try:
        assert db.migrate(conn) == CURRENT
    finally:
        conn.close()
    assert dump_sql(store) == migrated_dump, "running the migrations again changed the store"


@pytest.mark.parametrize("fixture", [f for f in FIXTURES if fixture_version(f) < 5], ids=lambda p: p.stem)
def test_counts_tables_are_backfilled_from_the_stored_detections(fixture: Path, tmp_path: Path) -> None:
    """0005 adds pre-aggregated counts (kept by triggers from then on): a store from before it gets them
    computed from every detection it holds, so the overview of an upgraded store misses nothing."""
    from app.store import dashboard, overview

    store = tmp_path / "store.db"
    load_sql(fixture.read_text(encoding="utf-8"), store)
    conn = db.connect(store)
    try:
        detections = conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0]
        active = conn.execute("SELECT COUNT(*) FROM detections WHERE suppressed_by IS NULL").fetchone()[0]
        assert 0 < active < detections, "the fixture should hold suppressed and unsuppressed detections"
        hours = [tuple(r) for r in conn.execute("SELECT * FROM detection_hour_counts ORDER BY 1, 2, 3, 4")]
        assert hours == [
            tuple(r)
            for r in conn.execute(
                "SELECT (event_time / 3600000) * 3600000, cloud_platform, is_service_account,"
                " suppressed_by IS NOT NULL, COUNT(*) FROM detections GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
            )
        ]
        assert sum(h[-1] for h in hours) == detections
        days = [
            tuple(r) for r in conn.execute("SELECT * FROM detection_actor_day_counts ORDER BY 1, 2, 3, 4")
        ]
        assert days == [
            tuple(r)
            for r in conn.execute(
                "SELECT (event_time / 86400000) * 86400000, IFNULL(actor_id, ''), IFNULL(actor, ''),"
                " actor IS NULL, COUNT(*) FROM detections WHERE suppressed_by IS NULL"
                " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
            )
        ]
        assert sum(d[-1] for d in days) == active

        # A 30-day overview and the dashboard over the upgraded store count every detection it holds.
        end = conn.execute("SELECT MAX(event_time) FROM detections").fetchone()[0] + 1
        start = end - 30 * 86_400_000
        figures = overview.overview(conn, start, end)
        assert figures["total"] + figures["suppressed"] == detections
        assert figures["total"] == active == sum(p["count"] for p in figures["by_platform"])
        assert sum(sum(h["counts"].values()) for h in figures["timeline"]) == active
        assert sum(t["count"] for t in figures["top_initiators"]) == active
        assert (
            figures["chains"]
            == conn.execute(
                "SELECT COUNT(DISTINCT chain_id) FROM detections WHERE suppressed_by IS NULL"
            ).fetchone()[0]
        )
        assert dashboard.summary(conn, start, end)["total"] == active

        # From now on the triggers keep them: a lifted suppression is counted at once.
        with db.transaction(conn):
            conn.execute("UPDATE detections SET suppressed_by = NULL WHERE suppressed_by IS NOT NULL")
        assert overview.overview(conn, start, end)["total"] == detections
    finally:
        conn.close()


@pytest.mark.parametrize("fixture", [f for f in FIXTURES if fixture_version(f) < 7], ids=lambda p: p.stem)
def test_search_index_and_state_counts_are_backfilled_from_the_stored_detections(
    fixture: Path, tmp_path: Path
) -> None:
    """0007 adds the trigram text index and per-state counts (kept by triggers from then on): a store from
    before it gets them built from every detection it holds, so the tab's search and totals of an upgraded
    store miss nothing."""
    from app.store import detections

    store = tmp_path / "store.db"
    load_sql(fixture.read_text(encoding="utf-8"), store)
    conn = db.connect(store)
    try:
        assert detections.has_search_index(conn)
        states = [tuple(r) for r in conn.execute("SELECT * FROM detection_state_counts ORDER BY 1, 2, 3, 4")]
        assert states == [
            tuple(r)
            for r in conn.execute(
                "SELECT cloud_platform, is_service_account, suppressed_by IS NOT NULL, triage_status, COUNT(*)"
                " FROM detections GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
            )
        ]
        assert sum(s[-1] for s in states) == conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0]

        # Every stored value of every searched column, whole and in pieces, in both cases: the index's answer
        # is the rows' answer (LIKE over the ten columns), and each whole value finds its detections.
        values = {
            v
            for column in detections.SEARCH_COLUMNS
            for (v,) in conn.execute(f"SELECT DISTINCT {column} FROM detections WHERE {column} != ''")
        }
        assert len(values) > 10
        texts = {t for v in values for t in (v, v.upper(), v[1:6], v[-4:].swapcase()) if t.strip()}
        found = 0
        for text in sorted(texts):
            f = detections.DetectionFilter(text=text.strip())
            fast = detections.list_detections(conn, f, limit=500)
            slow = detections.list_detections(conn, f, limit=500, indexed_search=False)
            assert ([i["id"] for i in fast[0]], fast[1]) == ([i["id"] for i in slow[0]], slow[1]), text
            found += fast[1] > 0
        assert found >= len(values)

        # From now on the triggers keep it: a new triage note is found at once.
        some = conn.execute("SELECT id FROM detections ORDER BY id LIMIT 1").fetchone()[0]
        with db.transaction(conn):
            detections.set_triage(conn, [some], "benign", "Upgraded-NOTE", "analyst", 1)
        items, total = detections.list_detections(conn, detections.DetectionFilter(text="upgraded-note"))
        assert total == 1 and items[0]["id"] == some
    finally:
        conn.close()


def test_store_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    load_sql(FIXTURES[-1].read_text(encoding="utf-8"), store)
    newer = CURRENT + 1
    conn = sqlite3.connect(store)
    conn.execute(f"PRAGMA user_version = {newer}")
    # A table this app has never heard of, as a newer version might add.
    conn.execute("CREATE TABLE future_feature (id INTEGER PRIMARY KEY, note TEXT)")
    conn.execute("INSERT INTO future_feature (note) VALUES ('from the future')")
    conn.commit()
    conn.close()
    before = dump_sql(store)

    with pytest.raises(db.SchemaTooNewError) as refused:
        db.connect(store)
    message = str(refused.value)
    assert str(newer) in message and "newer" in message and f"{CURRENT:04d}" in message
    assert dump_sql(store) == before

    # The app refuses to start on it too, rather than serving from a store it does not understand.
    from app import create_app

    env = {"QRADAR_CONSOLE_FQDN": "127.0.0.1:9", "SEC_ADMIN_TOKEN": "unused", "QRADAR_APP_ID": "1101"}
    with pytest.raises(db.SchemaTooNewError):
        create_app({"TESTING": True, "DATABASE": str(store), "STORE_DIR": str(tmp_path), "QRADAR_ENV": env})
    assert dump_sql(store) == before
