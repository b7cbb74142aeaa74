"""The overview's and the dashboard's pre-aggregated counts (migration 0005) against plain queries over the
rows, on a random store (real SQLite) changed by every kind of write the app makes.

The reference queries below are the implementation before 0005 (each one reads every row in the window);
the fast path must give exactly their answer, window edges and odd values included.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.store import dashboard, db, overview, tuning
from app.store import detections as store

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_780_000_000_000 // DAY * DAY + 7 * HOUR + 123  # not aligned to an hour, like a real "now"
ACTIVE = "suppressed_by IS NULL"


# -- reference: the queries over the rows -------------------------------------------------------------


def reference_overview(
    conn: sqlite3.Connection, start_ms: int, end_ms: int, top_n: int = 10
) -> dict[str, Any]:
    window = {"start": start_ms, "end": end_ms}
    in_window = "event_time >= :start AND event_time < :end"
    active = f"{in_window} AND suppressed_by IS NULL"
    totals = conn.execute(
        f"SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN is_service_account THEN 1 ELSE 0 END), 0)"
        f" AS service_accounts, COUNT(DISTINCT chain_id) AS chains FROM detections WHERE {active}",
        window,
    ).fetchone()
    suppressed = conn.execute(
        f"SELECT COUNT(*) FROM detections WHERE {in_window} AND suppressed_by IS NOT NULL", window
    ).fetchone()[0]
    by_platform = [
        {"platform": row["platform"], "count": row["n"]}
        for row in conn.execute(
            f"SELECT COALESCE(cloud_platform, 'Unknown') AS platform, COUNT(*) AS n FROM detections"
            f" WHERE {active} GROUP BY platform ORDER BY n DESC, platform",
            window,
        )
    ]
    buckets: dict[int, dict[str, int]] = {}
    for row in conn.execute(
        f"SELECT (event_time / {HOUR}) * {HOUR} AS hour_ms,"
        f" COALESCE(cloud_platform, 'Unknown') AS platform, COUNT(*) AS n FROM detections"
        f" WHERE {active} GROUP BY hour_ms, platform",
        window,
    ):
        buckets.setdefault(row["hour_ms"], {})[row["platform"]] = row["n"]
    first_hour = start_ms - start_ms % HOUR
    timeline = [
        {"hour_ms": hour, "counts": buckets.get(hour, {})} for hour in range(first_hour, end_ms, HOUR)
    ]
    top = [
        {"actor_id": row["actor_id"], "actor": row["actor"], "count": row["n"]}
        for row in conn.execute(
            f"SELECT COALESCE(NULLIF(actor_id, ''), actor) AS actor_id, MAX(actor) AS actor, COUNT(*) AS n"
            f" FROM detections WHERE {active} AND COALESCE(NULLIF(actor_id, ''), actor) IS NOT NULL"
            f" GROUP BY COALESCE(NULLIF(actor_id, ''), actor) ORDER BY n DESC, actor_id LIMIT :top",
            {**window, "top": top_n},
        )
    ]
    return {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "total": totals["total"],
        "service_accounts": totals["service_accounts"],
        "chains": totals["chains"],
        "suppressed": suppressed,
        "by_platform": by_platform,
        "platforms": [item["platform"] for item in by_platform],
        "timeline": timeline,
        "top_initiators": top,
    }


def reference_summary(conn: sqlite3.Connection, since_ms: int, until_ms: int) -> dict[str, Any]:
    window = (since_ms, until_ms)
    by_platform = {
        r[0]: r[1]
        for r in conn.execute(
            f"SELECT cloud_platform, COUNT(*) FROM detections WHERE {ACTIVE}"
            " AND event_time >= ? AND event_time < ? GROUP BY cloud_platform ORDER BY cloud_platform",
            window,
        )
    }
    row = conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM(is_service_account), 0), COUNT(DISTINCT chain_id)"
        f" FROM detections WHERE {ACTIVE} AND event_time >= ? AND event_time < ?",
        window,
    ).fetchone()
    return {"total": row[0], "service_accounts": row[1], "chains": row[2], "by_platform": by_platform}


def reference_top_initiators(
    conn: sqlite3.Connection, since_ms: int, until_ms: int, limit: int = 5
) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT COALESCE(actor, '') AS actor, COUNT(*) AS n, COUNT(DISTINCT chain_id) AS chains"
        f" FROM detections WHERE {ACTIVE} AND event_time >= ? AND event_time < ?"
        " GROUP BY COALESCE(actor, '') ORDER BY n DESC, actor LIMIT ?",
        (since_ms, until_ms, limit),
    )
    return [{"actor": r[0], "count": r[1], "chains": r[2]} for r in rows]


def reference_hourly_counts(
    conn: sqlite3.Connection, since_ms: int, until_ms: int
) -> list[tuple[int, str, int]]:
    rows = conn.execute(
        f"SELECT (event_time / 3600000) * 3600000 AS hour, cloud_platform, COUNT(*) FROM detections"
        f" WHERE {ACTIVE} AND event_time >= ? AND event_time < ? GROUP BY hour, cloud_platform ORDER BY hour",
        (since_ms, until_ms),
    )
    return [(r[0], r[1], r[2]) for r in rows]


# -- a random store -----------------------------------------------------------------------------------

PLATFORMS = ("AWS", "Azure AD", "Office 365", "GCP", "Ünknown ☁", "aws")
ACTORS = (
    None,
    "",
    "deployer",
    "Deployer",
    "mallory@contoso.example",
    "z",
    "ops@example.com",
    "ä-admin",
    "'; DROP TABLE detections; --",
    "%_\\",
)
ACTOR_IDS = (
    None,
    "",
    "arn:aws:iam::111122223333:role/deployer",
    "0f1e2d3c-aa",
    "ops@example.com",
    "deployer",
)


def random_time(rng: random.Random) -> int:
    """Times around T0 - 40 days .. T0 + 1 day, a third of them on or next to an hour or day boundary."""
    base = T0 - rng.randrange(40 * DAY) + rng.randrange(DAY)
    kind = rng.randrange(6)
    if kind == 0:
        return base // HOUR * HOUR + rng.choice((-1, 0, 1))
    if kind == 1:
        return base // DAY * DAY + rng.choice((-1, 0, 1))
    return base


def random_record(rng: random.Random, n: int) -> dict[str, Any]:
    severity = rng.randint(1, 10)
    return {
        "event_key": f"{n:064x}",
        "event_time": random_time(rng),
        "event_name": "CreateUser",
        "cloud_platform": rng.choice(PLATFORMS),
        "is_service_account": rng.random() < 0.3,
        "account_kind": "user",
        "actor": rng.choice(ACTORS),
        "actor_id": rng.choice(ACTOR_IDS),
        "target_account": f"user-{n}",
        "severity": severity,
        "confidence": "medium",
        "base_severity": severity,
        "base_confidence": "medium",
        "stored_at": T0,
    }


def windows(rng: random.Random) -> list[tuple[int, int]]:
    """The tab's and dashboard's windows ending now, aligned and unaligned ones, empty, inverted, before
    the epoch, and random ones."""
    fixed = [(T0 - span, T0) for span in (HOUR, DAY, 7 * DAY, 30 * DAY)]
    fixed += [
        (T0 - DAY, T0 + 1),
        (T0 // HOUR * HOUR - 5 * HOUR, T0 // HOUR * HOUR),
        (T0 // DAY * DAY - 3 * DAY, T0 // DAY * DAY),
        (T0 // DAY * DAY - 3 * DAY + 1, T0 // DAY * DAY - 1),
        (T0 - 41 * DAY, T0 + 2 * DAY),
        (T0, T0),
        (T0, T0 - HOUR),
        (-5 * HOUR, 2 * HOUR),
        (0, HOUR),
    ]
    for _ in range(12):
        start = T0 - rng.randrange(42 * DAY)
        fixed.append((start, start + rng.randrange(1, 35 * DAY)))
    return fixed


def rows(conn: sqlite3.Connection, sql: str) -> list[tuple]:
    return [tuple(row) for row in conn.execute(sql)]


def assert_same_as_reference(conn: sqlite3.Connection, rng: random.Random) -> None:
    # The counts tables hold exactly what the backfill of 0005 would compute from the rows now.
    assert rows(conn, "SELECT * FROM detection_hour_counts ORDER BY 1, 2, 3, 4") == rows(
        conn,
        "SELECT (event_time / 3600000) * 3600000, cloud_platform, is_service_account,"
        " suppressed_by IS NOT NULL, COUNT(*) FROM detections GROUP BY 1, 2, 3, 4"
        " ORDER BY 1, 2, 3, 4",
    )
    assert rows(conn, "SELECT * FROM detection_actor_day_counts ORDER BY 1, 2, 3, 4") == rows(
        conn,
        "SELECT (event_time / 86400000) * 86400000, IFNULL(actor_id, ''), IFNULL(actor, ''),"
        " actor IS NULL, COUNT(*) FROM detections WHERE suppressed_by IS NULL"
        " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    )
    assert rows(conn, "SELECT * FROM detection_state_counts ORDER BY 1, 2, 3, 4") == rows(
        conn,
        "SELECT cloud_platform, is_service_account, suppressed_by IS NOT NULL, triage_status, COUNT(*)"
        " FROM detections GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    )
    for start, end in windows(rng):
        if end >= start:
            # json.dumps without sort_keys: key order (what the API serializes) is compared too.
            fast, slow = overview.overview(conn, start, end), reference_overview(conn, start, end)
            assert json.dumps(fast) == json.dumps(slow), (start, end)
            fast = overview.overview(conn, start, end, top_n=1000)
            assert json.dumps(fast) == json.dumps(reference_overview(conn, start, end, top_n=1000))
        assert dashboard.summary(conn, start, end) == reference_summary(conn, start, end), (start, end)
        assert list(dashboard.summary(conn, start, end)["by_platform"]) == list(
            reference_summary(conn, start, end)["by_platform"]
        )
        for limit in (5, 1000):
            assert dashboard.top_initiators(conn, start, end, limit) == reference_top_initiators(
                conn, start, end, limit
            ), (start, end, limit)
        assert dashboard.hourly_counts(conn, start, end) == reference_hourly_counts(conn, start, end)


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    connection = db.connect(tmp_path / "store.db")
    yield connection
    connection.close()


def test_counts_match_the_rows_through_every_kind_of_write(conn: sqlite3.Connection) -> None:
    rng = random.Random(20261203)
    with db.transaction(conn):
        ids = [store.insert_detection(conn, random_record(rng, n)) for n in range(2500)]
    # The refresher's batches (migration 0019: counted per batch, not per row), some already suppressed.
    for first in (2500, 3100, 3700):
        with db.transaction(conn):
            batch = [
                {**random_record(rng, n), "suppressed_by": rng.choice((None, None, 3))}
                for n in range(first, first + 600)
            ]
            ids += store.insert_detections(conn, batch)
        assert_same_as_reference(conn, rng)
    # Some are suppressed and some chained, the way tuning and the chain builder write them.
    with db.transaction(conn):
        tuning.set_suppressed_by(conn, [(rng.randint(1, 4), did) for did in rng.sample(ids, 300)])
        conn.executemany(
            "UPDATE detections SET chain_id = ?, chain_kind = 'test' WHERE id = ?",
            [(rng.randint(1, 40), did) for did in rng.sample(ids, 250)],
        )
    assert_same_as_reference(conn, rng)
    assert conn.execute("SELECT COUNT(*) FROM detections WHERE suppressed_by IS NOT NULL").fetchone()[0] > 0

    with db.transaction(conn):
        # Suppression moves between entries (no bucket change), is lifted, and is set on others.
        suppressed = [r[0] for r in conn.execute("SELECT id FROM detections WHERE suppressed_by IS NOT NULL")]
        tuning.set_suppressed_by(conn, [(rng.choice((None, 7)), did) for did in suppressed[:150]])
        tuning.set_suppressed_by(conn, [(9, did) for did in rng.sample(ids, 50)])
        # A twin promoted: every field (platform, time, actor, service flag) replaced.
        for did in rng.sample(ids, 80):
            store.promote_twin(conn, did, {**random_record(rng, 10_000 + did), "event_key": f"twin-{did}"})
        store.set_triage(conn, rng.sample(ids, 40), "benign", "ok", "analyst", T0)
        # Raw SQL too (an operator's sqlite3): the triggers keep up with any writer.
        conn.execute("UPDATE detections SET event_time = event_time + 7 * 3600000 WHERE id % 13 = 0")
        conn.execute("UPDATE detections SET actor = NULL, actor_id = '' WHERE id % 17 = 0")
        conn.execute("UPDATE detections SET is_service_account = 1 - is_service_account WHERE id % 19 = 0")
        conn.execute("DELETE FROM detections WHERE id % 23 = 0")
        # INSERT OR REPLACE deletes the row it replaces (counted out through recursive_triggers).
        conn.execute(
            "INSERT OR REPLACE INTO detections (id, event_key, event_time, cloud_platform, actor,"
            " severity, confidence, base_severity, base_confidence, stored_at)"
            " SELECT id, event_key, event_time + 86400000, 'GCP', 'replaced', 5, 'low', 5, 'low', 0"
            " FROM detections WHERE id % 29 = 0"
        )
    assert_same_as_reference(conn, rng)

    with db.transaction(conn):
        store.purge_older_than(conn, T0 - 20 * DAY)
    assert_same_as_reference(conn, rng)

    # A rolled-back write leaves the counts as they were (they live in the same transaction).
    before = rows(conn, "SELECT * FROM detection_hour_counts")
    with pytest.raises(RuntimeError), db.transaction(conn):
        store.insert_detection(conn, random_record(rng, 99_999))
        conn.execute("DELETE FROM detections WHERE id % 3 = 0")
        raise RuntimeError("abort")
    assert rows(conn, "SELECT * FROM detection_hour_counts") == before

    # Emptied store: no bucket is left behind with a zero count.
    with db.transaction(conn):
        conn.execute("DELETE FROM detections")
    assert conn.execute("SELECT COUNT(*) FROM detection_hour_counts").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM detection_actor_day_counts").fetchone()[0] == 0
    assert_same_as_reference(conn, rng)


def test_bucket_ranges_split_a_window_into_whole_buckets_and_edges() -> None:
    assert overview.bucket_ranges(HOUR + 5, 4 * HOUR + 7, HOUR) == (
        (2 * HOUR, 4 * HOUR),
        [(HOUR + 5, 2 * HOUR), (4 * HOUR, 4 * HOUR + 7)],
    )
    assert overview.bucket_ranges(2 * HOUR, 4 * HOUR, HOUR) == (
        (2 * HOUR, 4 * HOUR),
        [(2 * HOUR, 2 * HOUR), (4 * HOUR, 4 * HOUR)],
    )
    # No whole bucket inside: all from the rows.
    assert overview.bucket_ranges(HOUR + 5, 2 * HOUR + 7, HOUR) == ((0, 0), [(HOUR + 5, 2 * HOUR + 7)])
    # Before the epoch SQLite's bucket expression truncates toward zero: rows only.
    assert overview.bucket_ranges(-3 * HOUR, 3 * HOUR, HOUR) == ((0, 0), [(-3 * HOUR, 3 * HOUR)])


def test_overview_reads_buckets_not_rows(conn: sqlite3.Connection) -> None:
    """The plans: whole hours and days from the counts tables, chains from their partial index, the edges
    by time range; no query scans detections."""
    args: dict[str, Any] = {"start": T0 - 30 * DAY, "end": T0, "top": 10}
    counted = overview.hour_counts_cte(T0 - 30 * DAY, T0, args)
    initiators = overview.actor_counts_cte(T0 - 30 * DAY, T0, args)
    plans = {
        "hours": f"{counted}SELECT SUM(n) FROM counted",
        "initiators": f"{initiators}SELECT COUNT(*) FROM initiators",
        "chains": f"SELECT COUNT(DISTINCT chain_id) FROM {overview.CHAINED} WHERE event_time >= :start"
        " AND event_time < :end AND chain_id IS NOT NULL AND suppressed_by IS NULL",
    }
    for name, sql in plans.items():
        steps = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args)]
        assert not [s for s in steps if s.startswith("SCAN detections")], (name, steps)
        assert [s for s in steps if "event_time>?" in s or "hour_ms>?" in s or "day_ms>?" in s], (name, steps)
    plan = " ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {plans['chains']}", args))
    assert "detections_active_chain" in plan
    plan = " ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {plans['initiators']}", args))
    assert "COVERING INDEX detections_active_actor" in plan
