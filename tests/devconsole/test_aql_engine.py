"""The AQL engine's interface beyond single queries: prepared-query facts, the default window, time zones,
progress and cancellation, reference-data expiry, and fuzzing (only AqlError may escape)."""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import zoneinfo

import pytest

from devconsole.aql import AqlCancelled, AqlEngine, AqlError
from devconsole.aql.functions import Runtime, ttl_ms
from devconsole.store import EventStore
from tests.devconsole.aql_cases.fixture import MINUTE, NOW, build_store
from tests.devconsole.test_aql_queries import INVALID, VALID


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> EventStore:
    return build_store(tmp_path_factory.mktemp("aql-engine") / "events.db")


@pytest.fixture(scope="module")
def engine(store: EventStore) -> AqlEngine:
    return AqlEngine(store, tz=dt.UTC)


BIG_EVENTS = 30_000


@pytest.fixture(scope="module")
def big_engine(tmp_path_factory) -> AqlEngine:
    """30,000 events one second apart ending at NOW, each with its own username."""
    store = EventStore(tmp_path_factory.mktemp("aql-big") / "events.db")
    source = store.ensure_log_source("CloudTrail @ big", 347)
    qid = store.ensure_qid(347, "CreateUser", 3035)
    store.insert_events(
        {
            "starttime": NOW - i * 1000,
            "qid": qid,
            "category": 3035,
            "highlevelcategory": 3000,
            "logsourceid": source,
            "devicetype": 347,
            "username": f"user{i:05d}",
            "magnitude": i % 10,
        }
        for i in range(BIG_EVENTS)
    )
    return AqlEngine(store, tz=dt.UTC)


def test_prepared_query_describes_the_search(engine: AqlEngine) -> None:
    query = engine.prepare("SELECT username AS u, COUNT(*) FROM events GROUP BY u LAST 2 HOURS", NOW)
    assert query.columns == ["u", "count"]
    assert (query.start_ms, query.stop_ms) == (NOW - 2 * 3_600_000, NOW)
    assert query.is_aggregate is True
    assert query.database == "events"
    plain = engine.prepare("SELECT sourceport + 1, sourceip FROM flows", NOW)
    assert plain.columns == ["sourceport_1", "sourceip"]
    assert plain.is_aggregate is False
    assert plain.database == "flows"


def test_unaliased_expression_columns_are_named_from_their_text(engine: AqlEngine) -> None:
    rows = engine.execute(
        engine.prepare(
            "SELECT COUNT(*), MAX(magnitude) + 1, LOWER(QIDNAME(qid)) FROM events WHERE magnitude = 7"
            " GROUP BY qid",
            NOW,
        )
    )
    assert rows == [{"count": 1, "MAX_magnitude_1": 8, "lower_QIDNAME_qid": "add user"}]


def test_a_query_without_time_clause_searches_the_configured_default_window(store: EventStore) -> None:
    five_minutes = AqlEngine(store, tz=dt.UTC)
    one_minute = AqlEngine(store, default_window_ms=60_000, tz=dt.UTC)
    text = "SELECT COUNT(*) AS n FROM events"
    assert five_minutes.execute(five_minutes.prepare(text, NOW)) == [{"n": 5}]
    assert one_minute.execute(one_minute.prepare(text, NOW)) == [{"n": 2}]  # events 1 (60 s ago) and 10
    query = one_minute.prepare(text, NOW)
    assert (query.start_ms, query.stop_ms) == (NOW - 60_000, NOW)


def test_times_without_zone_and_dateformat_use_the_console_time_zone(store: EventStore) -> None:
    new_york = AqlEngine(store, tz=zoneinfo.ZoneInfo("America/New_York"))
    rows = new_york.execute(
        new_york.prepare(
            "SELECT username, DATEFORMAT(starttime, 'yyyy-MM-dd HH:mm z') AS t FROM events"
            " START '2023-11-14 17:04' STOP '2023-11-14 17:05'",
            NOW,
        )
    )
    assert rows == [{"username": "carol", "t": "2023-11-14 17:04 EST"}]


def test_minute_granularity_can_be_switched_off(store: EventStore) -> None:
    exact = AqlEngine(store, tz=dt.UTC, minute_granularity=False)
    text = "SELECT username FROM events START '2023-11-14 22:04:30Z' STOP '2023-11-14 22:11:30Z'"
    # 22:04:30-22:11:29.999 exactly: carol (22:04:00) is out, Bob (22:11:00) is in
    names = sorted(row["username"] for row in exact.execute(exact.prepare(text, NOW)))
    assert names == ["Bob@Contoso.com", "bob@contoso.com"]
    query = exact.prepare(text, NOW)
    assert (query.start_ms, query.stop_ms) == (NOW - 9 * MINUTE - 30_000, NOW - 2 * MINUTE - 30_000 - 1)


def test_ilike_folds_non_ascii_case_and_like_does_not(engine: AqlEngine) -> None:
    def count(condition: str) -> int:
        query = engine.prepare(f"SELECT COUNT(*) AS n FROM events WHERE {condition}", NOW)
        return engine.execute(query)[0]["n"]

    assert count("'Évelyne' ILIKE 'éVE%'") == 5
    assert count("'Évelyne' LIKE 'é%'") == 0
    assert count("'Évelyne' LIKE 'É%'") == 5
    assert count("'50% off' LIKE '50[%] off'") == 0  # [ is literal in LIKE


def test_validate_reports_nothing_for_a_valid_query_and_every_problem_otherwise(engine: AqlEngine) -> None:
    assert engine.validate("SELECT username FROM events LAST 5 MINUTES") == []
    errors = engine.validate("SELECT nosuch, FOO(qid) FROM events WHERE COUNT(*) > 1 GROUP BY magnitude", NOW)
    assert [e.column for e in errors] == [8, 16, 43, 65]
    assert all(isinstance(e, AqlError) and "line 1" in e.message for e in errors)


def test_reference_set_entries_expire_by_their_time_to_live(store: EventStore) -> None:
    assert ttl_ms("1 day") == 86_400_000
    assert ttl_ms("5 minutes") == 300_000
    assert ttl_ms("1 mons 2 days 03:00:00") == 32 * 86_400_000 + 3 * 3_600_000
    assert ttl_ms(None) is None
    conn = store.connect(readonly=True)
    try:
        # 'terraform' was last seen two days before NOW with a one-day time to live
        assert Runtime(conn, NOW, dt.UTC).set_contains("Allowlist", "terraform") is False
        assert Runtime(conn, NOW - 2 * 86_400_000 + 3_600_000, dt.UTC).set_contains("Allowlist", "TERRAFORM")
        assert Runtime(conn, NOW, dt.UTC).set_contains("Allowlist", "alice") is True
    finally:
        conn.close()


def test_in_subquery_returns_at_most_10000_rows(big_engine: AqlEngine) -> None:
    rows = big_engine.execute(
        big_engine.prepare(
            "SELECT COUNT(*) AS n FROM events WHERE username IN"
            " (SELECT username FROM events ORDER BY username LIMIT 20000 LAST 1 DAYS) LAST 1 DAYS",
            NOW,
        )
    )
    assert rows == [{"n": 10_000}]


def test_progress_rises_to_100_on_a_large_search(big_engine: AqlEngine) -> None:
    reports: list[int] = []
    query = big_engine.prepare(
        "SELECT magnitude, COUNT(*) AS n, UNIQUECOUNT(username) AS u FROM events GROUP BY magnitude"
        " ORDER BY magnitude LAST 1 DAYS",
        NOW,
    )
    rows = big_engine.execute(query, on_progress=reports.append)
    assert [r["n"] for r in rows] == [BIG_EVENTS // 10] * 10
    assert reports[-1] == 100
    assert reports == sorted(reports)
    assert len(set(reports)) >= 5
    assert all(isinstance(p, int) and 0 <= p <= 100 for p in reports)


def test_should_cancel_aborts_a_running_search(big_engine: AqlEngine) -> None:
    query = big_engine.prepare("SELECT username, COUNT(*) FROM events GROUP BY username LAST 1 DAYS", NOW)
    reports: list[int] = []
    with pytest.raises(AqlCancelled):
        big_engine.execute(query, on_progress=reports.append, should_cancel=lambda: len(reports) >= 2)
    assert 100 not in reports
    polls = iter(range(1000))
    with pytest.raises(AqlCancelled):
        big_engine.execute(query, should_cancel=lambda: next(polls) >= 3)
    with pytest.raises(AqlCancelled):
        big_engine.execute(query, should_cancel=lambda: True)
    # a search that is not cancelled still completes on the same engine
    assert len(big_engine.execute(query, should_cancel=lambda: False)) == BIG_EVENTS


_FRAGMENTS = [
    "SELECT",
    "FROM",
    "events",
    "flows",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "(",
    ")",
    ",",
    "*",
    "'x'",
    "'",
    '"Account Name"',
    '"',
    "username",
    "qid",
    "QIDNAME(qid)",
    "COUNT(*)",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "LAST",
    "24",
    "HOURS",
    "DAYS",
    "START",
    "STOP",
    "'2023-11-14 22:04'",
    "IN",
    "LIKE",
    "MATCHES",
    "'(a|b)*'",
    "BETWEEN",
    "IS",
    "NULL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "=",
    "<>",
    "+",
    "-",
    "/",
    "%",
    "^",
    "0x1F",
    "1e309",
    "99999999999999999999",
    "NOW()",
    "PARSEDATETIME('now')",
    "AS",
    "DESC",
    ";",
    "--",
    "\x00",
    "é",
    "\n",
    "SELECT username FROM events",
    "INOFFENSE(1)",
    "REFERENCEMAP('Owners', username)",
    "DATEFORMAT(starttime, 'yyyy')",
    "UTF8(payload)",
    "LONG(sourceip)",
    "1.5",
    "-1",
    "FIRST(qid)",
    "LAST(qid)",
    "INTO",
    "INTO s1",
    "PARAMETERS",
    "PARAMETERS snapshotsize=2",
    "PROGRESSDETAILSRESOLUTION=10",
    "REMOTESERVERS=ARIELSERVERS4EPID(8)",
    "TEXT SEARCH",
    "TEXT SEARCH 'a OR (b'",
    "TEXT SEARCH = '\"add user\" NOT x*'",
    "creeventlist",
    "RULENAME(creeventlist)",
    "PROTOCOLNAME(protocolid)",
    "eventdirection",
    "sourceport",
    "REFERENCETABLE('Accounts', 'owner', username)",
    "REFERENCEMAPSETCONTAINS('CreatedBy', username, 'x')",
]


def _mutations(rng: random.Random, count: int):
    seeds = [q for q, _ in VALID] + [q for q, *_ in INVALID]
    for _ in range(count):
        choice = rng.random()
        if choice < 0.3:
            yield " ".join(rng.choice(_FRAGMENTS) for _ in range(rng.randrange(1, 25)))
        elif choice < 0.8:
            text = list(rng.choice(seeds))
            for _ in range(rng.choice((1, 1, 1, 2, 4))):
                pos = rng.randrange(len(text) + 1)
                action = rng.random()
                if action < 0.3 and text:
                    del text[min(pos, len(text) - 1)]
                elif action < 0.8:
                    text.insert(pos, f" {rng.choice(_FRAGMENTS)} ")
                elif text:
                    i, j = rng.randrange(len(text)), rng.randrange(len(text))
                    text[i], text[j] = text[j], text[i]
            yield "".join(text)
        else:
            yield "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(0, 80)))


def test_fuzzed_queries_raise_only_aql_errors(engine: AqlEngine) -> None:
    rng = random.Random(20261127)
    ran = rejected = 0
    for text in _mutations(rng, 3000):
        errors = engine.validate(text, NOW)
        assert all(isinstance(e, AqlError) and e.line >= 1 and e.column >= 1 for e in errors), text
        try:
            query = engine.prepare(text, NOW)
        except AqlError as exc:
            assert errors and exc.message == errors[0].message, text
            rejected += 1
            continue
        assert errors == [], text
        try:
            rows = engine.execute(query)
        except AqlError:
            continue
        json.dumps(rows, allow_nan=False)
        ran += 1
    print(f"fuzz: {ran} ran, {rejected} rejected")
    assert ran > 30 and rejected > 500  # the fuzzer reached both paths


def test_hostile_text_is_data_not_sql(engine: AqlEngine, store: EventStore) -> None:
    for hostile in ("x'); DROP TABLE events; --", "' OR 1=1 --", '"; DELETE FROM events; "', "<script>"):
        literal = hostile.replace("'", "''")
        rows = engine.execute(
            engine.prepare(
                f"SELECT '{literal}' AS v, COUNT(*) AS n FROM events WHERE username = '{literal}'"
                " LAST 2 DAYS",
                NOW,
            )
        )
        assert rows == [{"v": hostile, "n": 0}]
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 10


def test_long_generated_conditions_run(engine: AqlEngine) -> None:
    """Generated allowlists make long OR chains and IN lists: no recursion or SQLite depth limit."""
    names = [f"'user{i}'" for i in range(3000)] + ["'carol'"]
    chain = " OR ".join(f"username = {name}" for name in names)
    rows = engine.execute(engine.prepare(f"SELECT username FROM events WHERE {chain} LAST 1 DAYS", NOW))
    assert rows == [{"username": "carol"}]
    rows = engine.execute(
        engine.prepare(
            f"SELECT COUNT(*) AS n FROM events WHERE username NOT IN ({', '.join(names)}) LAST 1 DAYS", NOW
        )
    )
    assert rows == [{"n": 7}]  # 9 events in the day, carol's excluded, the NULL username unknown
    too_many = ", ".join(str(i) for i in range(30_001))
    errors = engine.validate(f"SELECT qid FROM events WHERE qid IN ({too_many})", NOW)
    assert [e.message for e in errors] == ["The query has more than 30000 literal values"]


def test_first_and_last_over_a_subquery_follow_its_row_order(engine: AqlEngine) -> None:
    rows = engine.execute(
        engine.prepare(
            "SELECT FIRST(m) AS f, LAST(m) AS l, COUNT(*) AS n FROM"
            " (SELECT magnitude AS m FROM events ORDER BY m LAST 1 DAYS)",
            NOW,
        )
    )
    assert rows == [{"f": 1, "l": 8, "n": 9}]


@pytest.mark.parametrize(
    ("fast", "slow"),
    [
        ("QIDNAME(qid) ILIKE '%add user%'", "LOWER(QIDNAME(qid)) LIKE '%add user%'"),
        ("QIDNAME(qid) LIKE 'Create%'", "STR(QIDNAME(qid)) LIKE 'Create%'"),
        ("NOT QIDNAME(qid) LIKE 'Create%'", "NOT STR(QIDNAME(qid)) LIKE 'Create%'"),
        ("NOT QIDNAME(qid + 1) ILIKE '%'", "NOT STR(QIDNAME(qid + 1)) ILIKE '%'"),
        ("QIDNAME(qid) IN ('CreateUser', 'Add user')", "STR(QIDNAME(qid)) IN ('CreateUser', 'Add user')"),
        (
            "QIDNAME(qid) NOT IN ('CreateUser', 'Add user')",
            "STR(QIDNAME(qid)) NOT IN ('CreateUser', 'Add user')",
        ),
        ("'Linux OS' = LOGSOURCETYPENAME(devicetype)", "'Linux OS' = STR(LOGSOURCETYPENAME(devicetype))"),
        ("QIDNAME(qid) != 'CreateUser'", "STR(QIDNAME(qid)) != 'CreateUser'"),
        (
            "CATEGORYNAME(category) ILIKE 'user account%'",
            "LOWER(CATEGORYNAME(category)) LIKE 'user account%'",
        ),
        (
            "LOGSOURCENAME(logsourceid) ILIKE '%CONTOSO%'",
            "UPPER(LOGSOURCENAME(logsourceid)) LIKE '%CONTOSO%'",
        ),
        ("QIDDESCRIPTION(qid) ILIKE '%é%'", "LOWER(QIDDESCRIPTION(qid)) LIKE '%é%'"),
    ],
)
def test_conditions_on_looked_up_names_match_the_function_results(
    engine: AqlEngine, fast: str, slow: str
) -> None:
    """Name conditions answered on the config tables give exactly what the per-event functions give."""

    def qids(condition: str) -> list:
        query = engine.prepare(f"SELECT qid FROM events WHERE {condition} LAST 2 DAYS", NOW)
        return sorted(row["qid"] for row in engine.execute(query))

    assert qids(fast) == qids(slow)
