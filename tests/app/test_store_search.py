"""Indexed reads of the tab's list (migration 0007) against the implementation that reads the rows.

Text search goes through the trigram index (detections_search) for texts of three or more characters; the
reference is the same list answered by `LIKE '%q%'` over the ten searched columns (``indexed_search=False``),
which is what `q` meant before the index. Both must give the same detections, in the same order, with the
same total, for hostile stored values and hostile queries alike, after every kind of write. The plans are
checked with EXPLAIN QUERY PLAN (facts, not timings).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.store import db, tuning
from app.store import detections as store

T0 = 1_780_000_000_000

# Stored values: case, non-ASCII letters whose case LIKE does not fold (and some that Unicode folds to
# ASCII: the Kelvin sign, dotted capital I, long s), LIKE and FTS5 syntax, quotes, NUL, whitespace.
HOSTILE_VALUES = (
    None,
    "",
    "a",
    "ab",
    "DeployER",
    "deployer",
    "arn:aws:iam::111122223333:role/Pipeline-42",
    "Kelvin \u212a here",
    "ÉCOLE école",
    "İstanbul ıi",
    "Straße strasse ſ",
    "100%_done 100x done",
    "back\\slash \\% \\_",
    'say "hi" ""',
    "OR NEAR AND NOT",
    "NEAR(a b, 2) a OR b",
    "a*b* ^start col:abc {x y}: (paren) -minus +plus",
    "'; DROP TABLE detections; --",
    "abc\x00xyz",
    "  spaced  \t tab\nnewline ",
    "☁️ cloud ☁ e\u0301 é",
    "x" * 300,
)
SEARCHED = store.SEARCH_COLUMNS

# Queries: hostile syntax, 0-2 characters (no trigram: read from the rows), case, non-ASCII.
HOSTILE_QUERIES = (
    "%",
    "_",
    "%%",
    "%_",
    "\\",
    "\\%",
    "'",
    '"',
    '""',
    '"hi"',
    'say "',
    "*",
    "a*",
    "a*b",
    "OR",
    "or",
    "NEAR",
    "NEAR(",
    "near(a b, 2)",
    "AND NOT",
    "a OR b",
    "^start",
    "col:abc",
    "{x y}:",
    "(paren)",
    "-minus",
    "+plus",
    "'; DROP",
    "x",
    "X",
    "ab",
    "AB",
    "a",
    "k",
    "K",
    "\u212a",
    "kelvin",
    "KELVIN \u212a",
    "É",
    "é",
    "école",
    "ÉCOLE",
    "École",
    "istanbul",
    "İstanbul",
    "ss",
    "strasse",
    "straße",
    "STRASSE",
    "ſ",
    "100%_done",
    "100%",
    "0x done",
    "abc",
    "xyz",
    "abc\x00xyz",
    "\x00",
    "ab\x00",
    "c\x00x",
    "  ",
    "   ",
    "  spaced",
    "\t tab\n",
    "☁",
    "☁️",
    "e\u0301",
    "deployer",
    "DEPLOYER",
    "pipeline-42",
    "x" * 301,
    "x" * 299,
)


def random_record(rng: random.Random, n: int) -> dict[str, Any]:
    def value() -> str | None:
        kind = rng.random()
        if kind < 0.55:
            return rng.choice(HOSTILE_VALUES)
        if kind < 0.8:
            return f"{rng.choice(('user', 'USER', 'svc', 'Ops'))}-{rng.randrange(200)}"
        return f"{rng.choice(HOSTILE_VALUES) or ''}{rng.choice(('-', ' ', ''))}{rng.choice(HOSTILE_VALUES) or ''}"

    severity = rng.randint(1, 10)
    record = {
        "event_key": f"{n:064x}",
        "event_time": T0 - rng.randrange(1000) * 60_000,
        "cloud_platform": rng.choice(("AWS", "Azure AD", "Office 365", "GCP")),
        "is_service_account": rng.random() < 0.3,
        "account_kind": "user",
        "severity": severity,
        "confidence": "medium",
        "base_severity": severity,
        "base_confidence": "medium",
        "stored_at": T0,
    }
    for column in SEARCHED:
        if column != "triage_note":
            record[column] = value()
    record["event_name"] = record["event_name"] or ""  # NOT NULL
    return record


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = db.connect(tmp_path / "store.db")
    yield connection
    connection.close()


def fill(conn: sqlite3.Connection, rng: random.Random, count: int) -> list[int]:
    with db.transaction(conn):
        ids = [store.insert_detection(conn, random_record(rng, n)) for n in range(count)]
        tuning.set_suppressed_by(conn, [(rng.randint(1, 3), did) for did in rng.sample(ids, count // 10)])
        notes = [rng.choice(HOSTILE_VALUES) for _ in range(count // 5)]
        for did, note in zip(rng.sample(ids, count // 5), notes, strict=True):
            store.set_triage(conn, [did], rng.choice(store.TRIAGE_STATUSES), note, "analyst", T0)
    return ids


def queries(conn: sqlite3.Connection, rng: random.Random) -> list[str]:
    """The hostile queries plus substrings of stored values, some with their ASCII case flipped."""
    found = list(HOSTILE_QUERIES)
    values = [
        r[0]
        for r in conn.execute(f"SELECT {', '.join(SEARCHED)} FROM detections LIMIT 200").fetchall()
        if r[0]
    ]
    values += [v for v in HOSTILE_VALUES if v]
    for _ in range(60):
        text = rng.choice(values)
        start = rng.randrange(len(text))
        piece = text[start : start + rng.randint(1, 12)]
        if rng.random() < 0.5:
            piece = "".join(c.swapcase() if c.isascii() and rng.random() < 0.5 else c for c in piece)
        found.append(piece)
    return found


def both(conn: sqlite3.Connection, f: store.DetectionFilter, **kwargs: Any) -> tuple[Any, Any]:
    fast = store.list_detections(conn, f, **kwargs)
    slow = store.list_detections(conn, f, indexed_search=False, **kwargs)
    return ([item["id"] for item in fast[0]], fast[1]), ([item["id"] for item in slow[0]], slow[1])


def assert_search_matches_rows(conn: sqlite3.Connection, rng: random.Random) -> int:
    """Every query gives the reference's page and total; returns how many queries matched something."""
    matched = 0
    for text in queries(conn, rng):
        # The API strips q and passes None for an empty one; the store sees what the API passes.
        text = text.strip() or None
        fast, slow = both(conn, store.DetectionFilter(text=text), limit=500)
        assert fast == slow, repr(text)
        matched += bool(slow[1])
        narrowed = store.DetectionFilter(text=text, suppressed=False, platforms=("AWS", "GCP"))
        fast, slow = both(conn, narrowed, order_by="severity DESC", limit=7, offset=3)
        assert fast == slow, repr(text)
    return matched


def test_text_search_through_the_index_equals_like_over_the_rows(conn: sqlite3.Connection) -> None:
    rng = random.Random(20261203)
    ids = fill(conn, rng, 1500)
    assert assert_search_matches_rows(conn, rng) > 40

    # Every kind of write keeps the index in step: promoted twins, triage notes, raw SQL, deletes,
    # INSERT OR REPLACE, retention.
    with db.transaction(conn):
        for did in rng.sample(ids, 60):
            store.promote_twin(conn, did, {**random_record(rng, 10_000 + did), "event_key": f"twin-{did}"})
        store.set_triage(conn, rng.sample(ids, 50), "benign", 'Reviewed: NEAR "OK" 100%', "analyst", T0)
        store.set_triage(conn, rng.sample(ids, 50), "new", None, "analyst", T0)
        conn.execute("UPDATE detections SET actor = upper(actor), source_ip = NULL WHERE id % 7 = 0")
        conn.execute("UPDATE detections SET severity = 10 WHERE id % 11 = 0")  # no searched column
        conn.execute("DELETE FROM detections WHERE id % 13 = 0")
        conn.execute(
            "INSERT OR REPLACE INTO detections (id, event_key, event_time, cloud_platform, actor, target_id,"
            " severity, confidence, base_severity, base_confidence, stored_at)"
            " SELECT id, event_key, event_time, 'GCP', 'Replaced ÉCOLE', 'replaced-' || id, 5, 'low', 5,"
            " 'low', 0 FROM detections WHERE id % 17 = 0"
        )
        store.purge_older_than(conn, T0 - 600 * 60_000)
    assert assert_search_matches_rows(conn, rng) > 40
    for text in ("reviewed: near", "ÉCOLE", "replaced-1", "Replaced é"):
        fast, slow = both(conn, store.DetectionFilter(text=text), limit=500)
        assert fast == slow, text
    assert both(conn, store.DetectionFilter(text="reviewed: near"), limit=500)[1][1] > 0

    # A rolled-back write leaves the index as it was (it lives in the same transaction).
    before = both(conn, store.DetectionFilter(text="user-1"), limit=500)[0]
    with pytest.raises(RuntimeError), db.transaction(conn):
        conn.execute("UPDATE detections SET target_account = 'user-1x' WHERE id % 2 = 0")
        conn.execute("DELETE FROM detections WHERE id % 3 = 0")
        raise RuntimeError("abort")
    fast, slow = both(conn, store.DetectionFilter(text="user-1"), limit=500)
    assert fast == slow == before

    with db.transaction(conn):
        conn.execute("DELETE FROM detections")
    assert both(conn, store.DetectionFilter(text="user"), limit=500) == (([], 0), ([], 0))


def test_search_phrase_is_one_quoted_phrase_or_none() -> None:
    assert store.search_phrase("ab") is None  # no trigram: the rows answer
    assert store.search_phrase("a\x00bc") is None  # LIKE stops at a NUL
    assert store.search_phrase('Pipe" OR x*') == '"pipe"" or x*"'
    assert store.search_phrase("ÉCOLE") == '"École"'  # only ASCII folded, as SQLite's LIKE does


def test_state_counts_match_the_rows(conn: sqlite3.Connection) -> None:
    rng = random.Random(7)
    ids = fill(conn, rng, 800)
    with db.transaction(conn):
        store.set_triage(conn, rng.sample(ids, 100), "escalated", None, "analyst", T0)
        tuning.set_suppressed_by(conn, [(None, did) for did in rng.sample(ids, 40)])
        conn.execute("UPDATE detections SET cloud_platform = 'AWS', is_service_account = 1 WHERE id % 5 = 0")
        conn.execute("DELETE FROM detections WHERE id % 9 = 0")
        store.purge_older_than(conn, T0 - 500 * 60_000)
    stored = conn.execute("SELECT * FROM detection_state_counts ORDER BY 1, 2, 3, 4").fetchall()
    assert [tuple(r) for r in stored] == [
        tuple(r)
        for r in conn.execute(
            "SELECT cloud_platform, is_service_account, suppressed_by IS NOT NULL, triage_status, COUNT(*)"
            " FROM detections GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        )
    ]
    filters = [
        store.DetectionFilter(suppressed=False, triage_statuses=("new",)),
        store.DetectionFilter(suppressed=True),
        store.DetectionFilter(
            platforms=("AWS",), service_accounts_only=True, triage_statuses=("new", "benign")
        ),
        store.DetectionFilter(triage_statuses=("escalated",), suppressed=False, platforms=("GCP", "AWS")),
    ]
    for f in filters:
        items, total = store.list_detections(conn, f, limit=1000)
        clause, args = store._where(f)
        assert total == conn.execute(f"SELECT COUNT(*) FROM detections {clause}", args).fetchone()[0] > 0
        assert len(items) == total


def plans_of(conn: sqlite3.Connection, f: store.DetectionFilter, order_by: str) -> list[str]:
    """EXPLAIN QUERY PLAN of each statement list_detections runs (traced with their bound values), but the
    look-ups of the page's rows by id."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        store.list_detections(conn, f, order_by=order_by)
    finally:
        conn.set_trace_callback(None)
    return [
        " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        for sql in statements
        if sql.startswith(("SELECT", "WITH"))
        and "sqlite_master" not in sql
        and not sql.startswith("SELECT id, event_key")
    ]


@pytest.mark.parametrize("analyzed", [False, True])
def test_the_lists_read_indexes_not_rows(conn: sqlite3.Connection, analyzed: bool) -> None:
    """With and without planner statistics (the refresher runs ANALYZE now and then)."""
    fill(conn, random.Random(3), 3000)
    if analyzed:
        conn.execute("ANALYZE")

    # "new, not suppressed", newest first: the page from the partial index in order, the total from the
    # per-state counts.
    unsuppressed_new = store.DetectionFilter(suppressed=False, triage_statuses=("new",))
    total_plan, page_plan = plans_of(conn, unsuppressed_new, "event_time DESC")
    # (at most 4 platforms x 2 x 2 x 5 statuses: a scan of this table reads at most 80 rows)
    assert total_plan.split(" ", 1)[1].startswith("detection_state_counts"), total_plan
    assert page_plan == "SCAN detections USING COVERING INDEX detections_new_active_time", page_plan

    # Sort by severity: the severity index walked backwards, no sort.
    _, page_plan = plans_of(conn, store.DetectionFilter(), "severity DESC")
    assert page_plan == "SCAN detections USING COVERING INDEX detections_severity", page_plan

    # Text search: the matches read once (their number is the total): the per-detection trigram index, and
    # the values index, then each matching value's detections through its column's index; the page walks
    # the time index newest first (many matches) or looks each match up (few). No step reads every row.
    matches, last_id, page = plans_of(conn, store.DetectionFilter(text="pipeline-42"), "event_time DESC")
    steps = matches.split(" | ")
    assert "SCAN detections_search VIRTUAL TABLE INDEX 0:M4" in steps, matches
    assert "SCAN search_values_text VIRTUAL TABLE INDEX 0:M1" in steps, matches
    for column in ("event_name", "actor", "actor_id", "source_ip", "user_agent", "log_source"):
        assert f"SEARCH detections USING COVERING INDEX detections_{column} ({column}=?)" in steps, matches
    assert not [s for s in steps if s == "SCAN detections" or s.startswith("SCAN detections ")], matches
    assert last_id == "SEARCH detections", last_id
    assert page == "SCAN detections USING COVERING INDEX detections_time", page
    with db.transaction(conn):
        conn.execute("UPDATE detections SET target_id = 'Needle-Xyz' WHERE id IN (5, 50)")
    assert plans_of(conn, store.DetectionFilter(text="needle-x"), "event_time DESC")[1:] == [
        "SEARCH detections",
        "SEARCH detections USING INTEGER PRIMARY KEY (rowid=?) | USE TEMP B-TREE FOR ORDER BY",
    ]
    assert store.list_detections(conn, store.DetectionFilter(text="needle-x"))[1] == 2
    # Two characters: no trigram, the rows are read.
    (total_plan, _) = plans_of(conn, store.DetectionFilter(text="42"), "event_time DESC")
    assert "detections_search" not in total_plan and "detections" in total_plan


def test_a_sqlite_without_the_trigram_tokenizer_gets_the_store_without_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "has_fts5_trigram", lambda conn: False)
    conn = db.connect(tmp_path / "old-sqlite.db")
    try:
        assert not store.has_search_index(conn)
        assert db.schema_version(conn) == db.migrations()[-1][0]
        rng = random.Random(11)
        fill(conn, rng, 300)
        for text in ("deployer", "ÉCOLE", "%", "user-1"):
            fast, slow = both(conn, store.DetectionFilter(text=text), limit=500)
            assert fast == slow
        assert both(conn, store.DetectionFilter(text="user-1"), limit=500)[0][1] > 0
    finally:
        conn.close()
    monkeypatch.undo()
    conn = db.connect(tmp_path / "new-sqlite.db")
    try:
        assert store.has_search_index(conn) == db.has_fts5_trigram(conn) is True
    finally:
        conn.close()


def index_contents(conn: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What the text index holds: each detection's indexed texts (FTS5 rowid and the trigram matches of
    every stored value) and the distinct values, by column."""
    values = sorted(tuple(r) for r in conn.execute("SELECT column_name, value FROM search_values"))
    texts = sorted(
        {
            (column, r[0])
            for column in ("target_account", "target_id", "correlation_id")
            for r in conn.execute(f"SELECT lower({column}) FROM detections WHERE {column} IS NOT NULL")
            if len(r[0]) >= 3
        }
    )
    found = [
        (
            column,
            text,
            sorted(
                r[0]
                for r in conn.execute(
                    "SELECT rowid FROM detections_search WHERE detections_search MATCH ?",
                    (f'{column} : "{text.replace(chr(34), chr(34) * 2)}"',),
                )
            ),
        )
        for column, text in texts
        if "\x00" not in text
    ]
    return values, found


def test_batch_inserts_index_their_rows_as_row_by_row_inserts_do(tmp_path: Path) -> None:
    """The refresher's batches (migration 0014: the per-row trigger is skipped, one statement indexes the
    batch) leave the same index as inserting the same rows one by one, in the same transaction as the rows."""
    rng = random.Random(14)
    records = [random_record(rng, n) for n in range(900)]
    single, batched = db.connect(tmp_path / "single.db"), db.connect(tmp_path / "batched.db")
    try:
        assert store._indexes_batches(batched)
        with db.transaction(single):
            for record in records:
                store.insert_detection(single, record)
        with db.transaction(batched):
            ids = store.insert_detections(batched, records[:400])
            # A row written by anyone else in the same transaction is indexed by the trigger.
            store.insert_detection(batched, records[400])
            ids += store.insert_detections(batched, records[401:450])
        assert ids == list(range(1, 401)) + list(range(402, 451))
        with pytest.raises(RuntimeError), db.transaction(batched):
            store.insert_detections(batched, records[450:])
            raise RuntimeError("abort")  # a rolled-back batch leaves nothing in the index
        assert batched.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 450
        with db.transaction(batched):
            store.insert_detections(batched, records[450:])
        assert batched.execute("SELECT COUNT(*) FROM detection_batch").fetchone()[0] == 0
        assert index_contents(batched) == index_contents(single)
        assert assert_search_matches_rows(batched, random.Random(5)) > 40
        # After a batch, an ordinary insert is indexed again.
        with db.transaction(batched):
            conn_id = store.insert_detection(
                batched, {**records[0], "event_key": "x" * 64, "target_id": "Zq9-solo"}
            )
        assert store.list_detections(batched, store.DetectionFilter(text="zq9-SOLO"))[0][0]["id"] == conn_id
    finally:
        single.close()
        batched.close()


def test_a_store_migrated_without_the_index_stays_without_it_when_sqlite_gains_the_tokenizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trigram parts after the first change the index; a store that has none skips them."""
    old = tmp_path / "migrations"
    (old / "fts5_trigram").mkdir(parents=True)
    for version, path in db.migrations():
        if version <= 10:
            (old / path.name).write_text(path.read_text())
    for path in db.FTS5_TRIGRAM_DIR.glob("*.sql"):
        if int(path.name[:4]) <= 10:
            (old / "fts5_trigram" / path.name).write_text(path.read_text())
    monkeypatch.setattr(db, "has_fts5_trigram", lambda conn: False)
    conn = db.connect(tmp_path / "store.db", migrate_schema=False)
    try:
        assert db.migrate(conn, old) == 10
        monkeypatch.undo()
        assert db.migrate(conn) == db.migrations()[-1][0]
        assert not store.has_search_index(conn) and not store._indexes_batches(conn)
        rng = random.Random(2)
        with db.transaction(conn):
            store.insert_detections(conn, [random_record(rng, n) for n in range(200)])
        for text in ("deployer", "user-1", "%"):
            fast, slow = both(conn, store.DetectionFilter(text=text), limit=500)
            assert fast == slow
    finally:
        conn.close()
