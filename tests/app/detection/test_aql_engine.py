"""The detection AQL against the dev console's real AQL engine (lark grammar → SQLite): it validates, and
over a small hand-made event store it finds exactly the creation events it should — hostile settings
values stay literals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.aql import detection as aqld

aql = pytest.importorskip("devconsole.aql")  # the dev console ships in this repository
store_mod = pytest.importorskip("devconsole.store")

NOW = 1_780_000_000_000
MIN = 60_000


@pytest.fixture
def engine(tmp_path: Path):
    store = store_mod.EventStore(tmp_path / "events.db")
    store.declare_custom_property("Account Name")
    store.ensure_log_source_type(449, "Google Cloud Audit")
    rows = []

    def add(type_id: int, name: str, t: int, magnitude: int = 5, account: str | None = None) -> None:
        qid = store.ensure_qid(type_id, name, 3035)
        ls = store.ensure_log_source(f"ls-{type_id}", type_id)
        rows.append(
            {
                "starttime": NOW + t,
                "qid": qid,
                "category": 3035,
                "highlevelcategory": 3000,
                "logsourceid": ls,
                "devicetype": type_id,
                "magnitude": magnitude,
                "username": "alice",
                "sourceip": "192.0.2.1",
                "payload": json.dumps({"n": name}),
                "props": {"Account Name": account} if account else {},
            }
        )

    add(347, "CreateUser", -10 * MIN, account="svc-x")
    add(347, "CreateUserPool", -9 * MIN)  # contains "CreateUser": the seed's %…% would match
    add(347, "CreateUser", -8 * MIN, magnitude=2)  # below magnitude 3
    add(445, "Add user", -7 * MIN)
    add(397, "Add user.", -6 * MIN)
    add(397, "Add member to role.", -5 * MIN)  # a follow-on, not a creation
    add(449, "google.iam.admin.v1.CreateServiceAccount", -4 * MIN)
    add(11, "Add user", -3 * MIN)  # same name, unrelated log source type
    add(347, "CreateUser", -90 * MIN)  # before the window
    add(347, "CreateRole", +1)  # at/after STOP (exclusive)
    store.insert_events(rows)
    return aql.AqlEngine(store)


def run(engine, text: str) -> list[dict]:
    assert [str(e) for e in engine.validate(text, NOW)] == []
    return engine.execute(engine.prepare(text, NOW))


def spec(**kw) -> aqld.DetectionSpec:
    return aqld.DetectionSpec(aqld.default_platform_filters(), **kw)


def test_detection_query_finds_exactly_the_creations(engine) -> None:
    rows = run(engine, aqld.detection_query(spec(), NOW - 60 * MIN, NOW))
    assert [(r["event_name"], r["cloud_platform"]) for r in rows] == [
        ("CreateUser", "AWS"),
        ("Add user", "Azure AD"),
        ("Add user.", "Office 365"),
        ("google.iam.admin.v1.CreateServiceAccount", "GCP"),
    ]
    first = rows[0]
    assert first["target_account"] == "svc-x"
    assert first["starttime"] == NOW - 10 * MIN
    assert json.loads(first["payload"]) == {"n": "CreateUser"}
    assert {
        "event_time",
        "event_category",
        "log_source",
        "actor",
        "source_ip",
        "is_service_account",
        "qid",
        "logsourceid",
        "devicetype",
        "log_source_type",
        "magnitude",
    } <= set(first)
    assert [r["is_service_account"] for r in rows] == [0, 0, 0, 1]


def test_follow_on_query_finds_grants_only(engine) -> None:
    filters = aqld.default_platform_filters(None, aqld.DEFAULT_FOLLOW_ON_EVENT_NAMES)
    rows = run(engine, aqld.follow_on_query(filters, NOW - 60 * MIN, NOW))
    assert [r["event_name"] for r in rows] == ["Add member to role."]


def test_minute_counts_count_what_the_queries_return(engine) -> None:
    """The steady-state check: per minute, as many rows as the detection / follow-on query returns."""
    start = NOW - 60 * MIN
    rows = run(engine, aqld.detection_minute_counts(spec(), start, NOW))
    expected: dict[int, int] = {}
    for row in run(engine, aqld.detection_query(spec(), start, NOW)):
        minute = row["starttime"] - row["starttime"] % MIN
        expected[minute] = expected.get(minute, 0) + 1
    assert {int(r["minute_ms"]): int(r["n"]) for r in rows} == expected and len(expected) == 4
    filters = aqld.default_platform_filters(None, aqld.DEFAULT_FOLLOW_ON_EVENT_NAMES)
    rows = run(engine, aqld.follow_on_minute_counts(filters, start, NOW))
    assert {int(r["minute_ms"]): int(r["n"]) for r in rows} == {NOW - 5 * MIN - (NOW - 5 * MIN) % MIN: 1}


def test_row_limit_returns_the_oldest_first(engine) -> None:
    rows = run(engine, aqld.detection_query(spec(row_limit=2), NOW - 60 * MIN, NOW))
    assert [r["event_name"] for r in rows] == ["CreateUser", "Add user"]


@pytest.mark.parametrize(
    "hostile", ["x' OR '1'='1", "%' OR QIDNAME(qid) ILIKE '%", "'); DROP TABLE events; --"]
)
def test_hostile_event_names_stay_literals(engine, hostile: str) -> None:
    filters = {aqld.AWS: aqld.PlatformFilter((347,), (hostile,))}
    rows = run(engine, aqld.detection_query(aqld.DetectionSpec(filters), NOW - 60 * MIN, NOW))
    assert rows == []


def test_log_activity_query_is_valid_aql(engine) -> None:
    assert [str(e) for e in engine.validate(aqld.log_activity_query(spec()), NOW)] == []


def test_unknown_custom_property_is_rejected_by_the_engine(engine) -> None:
    text = aqld.detection_query(spec(target_property="No Such Property"), NOW - MIN, NOW)
    assert engine.validate(text, NOW)  # why the refresher drops properties the console does not define
    assert engine.validate(aqld.detection_query(spec(target_property=None), NOW - MIN, NOW), NOW) == []
