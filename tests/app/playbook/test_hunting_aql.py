"""Hunting and offense AQL against the dev console's real AQL engine (devconsole.aql) over a small store.

The store holds one AWS chain (CreateUser → AttachUserPolicy → CreateAccessKey → ConsoleLogin by the new
user), the same kinds of events by someone else, events outside the 24 h window, and an Entra chain; each
query's rows are compared with what the scenario says it must find.
"""

from __future__ import annotations

import pytest

from app.aql import hunting, offense
from app.aql.detection import (
    AWS,
    AZURE_AD,
    DEFAULT_EVENT_NAMES,
    GCP,
    OFFICE_365,
    PLATFORMS,
    default_platform_filters,
)
from devconsole.aql import AqlEngine
from devconsole.store import EventStore

T0 = 1_764_000_000_000  # the creation (2025-11-24 16:00 UTC)
MIN = 60_000
HOUR = 3_600_000
ACTOR = "arn:aws:iam::111122223333:user/mallory"
TARGET = "svc_backup"
HOSTILE = "x' OR 1=1 OR username='"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> AqlEngine:
    store = EventStore(tmp_path_factory.mktemp("aql") / "events.db")
    store.declare_custom_property("Account Name")
    sources = {
        347: store.ensure_log_source("CloudTrail @ 111122223333", 347),
        445: store.ensure_log_source("Entra ID audit", 445),
        397: store.ensure_log_source("O365 audit", 397),
        449: store.ensure_log_source("GCP audit", 449),
    }

    def ev(devicetype: int, name: str, t: int, user: str, target: str | None, tag: str) -> dict:
        return {
            "starttime": t,
            "qid": store.ensure_qid(devicetype, name, 3035),
            "category": 3035,
            "highlevelcategory": store.high_level_of(3035),
            "logsourceid": sources[devicetype],
            "devicetype": devicetype,
            "username": user,
            "sourceip": "203.0.113.9",
            "payload": f'{{"tag": "{tag}"}}',
            "props": {"Account Name": target} if target else {},
        }

    rows = [
        ev(347, "CreateUser", T0, ACTOR, TARGET, "create"),
        ev(347, "AttachUserPolicy", T0 + 5 * MIN, ACTOR, TARGET, "attach"),
        ev(347, "CreateAccessKey", T0 + 6 * MIN, ACTOR, TARGET, "key"),
        ev(347, "ConsoleLogin", T0 + 3 * HOUR, TARGET, None, "login-by-new"),
        ev(
            347,
            "CreateAccessKey",
            T0 + 10 * MIN,
            "arn:aws:iam::111122223333:user/bob",
            "bob-tool",
            "other-key",
        ),
        ev(347, "CreateAccessKey", T0 + 30 * HOUR, ACTOR, TARGET, "key-too-late"),
        ev(347, "CreateAccessKey", T0 - 3 * HOUR, ACTOR, TARGET, "key-too-early"),
        ev(347, "CreateAccessKey", T0 + 7 * MIN, HOSTILE, "svcXbackup", "hostile-actor"),
        ev(445, "Add user", T0, "admin@contoso.com", "evil@contoso.com", "entra-create"),
        ev(445, "Add member to role", T0 + 2 * MIN, "admin@contoso.com", "evil@contoso.com", "entra-role"),
        ev(445, "Consent to application", T0 + 4 * MIN, "evil@contoso.com", "App X", "entra-consent"),
        ev(397, "Add member to role.", T0 + 2 * MIN, "admin@contoso.com", "evil@contoso.com", "o365-role"),
        ev(
            449,
            "google.iam.admin.v1.CreateServiceAccountKey",
            T0 + MIN,
            "dev@corp.example",
            "sa-x@p.iam.gserviceaccount.com",
            "gcp-key",
        ),
        ev(
            449,
            "google.iam.v1.IAMPolicy.SetIamPolicy",
            T0 + 2 * MIN,
            "dev@corp.example",
            "sa-x@p.iam.gserviceaccount.com",
            "gcp-bind",
        ),
    ]
    ids = store.insert_events(rows)
    by_tag = {r["payload"]: i for r, i in zip(rows, ids, strict=True)}
    offense_id = store.add_offense("AWS chain", T0 + 20_000, T0 + 6 * MIN)
    store.link_offense_events(
        offense_id, [by_tag['{"tag": "create"}'], by_tag['{"tag": "key"}'], by_tag['{"tag": "attach"}']]
    )
    empty_offense = store.add_offense("no cloud events", T0, T0 + MIN)
    store.link_offense_events(empty_offense, [by_tag['{"tag": "key"}']])
    eng = AqlEngine(store)
    eng.offense_id = offense_id  # type: ignore[attr-defined]
    eng.empty_offense_id = empty_offense  # type: ignore[attr-defined]
    return eng


def run(engine: AqlEngine, aql: str) -> list[dict]:
    return engine.execute(engine.prepare(aql, now_ms=T0 + 48 * HOUR))


def tags(engine: AqlEngine, rows: list[dict]) -> set[str]:
    return {r["event_name"] + "@" + str(r["starttime"] - T0) for r in rows}


def all_queries(**kwargs: object) -> list[hunting.HuntingQuery]:
    return [q for p in PLATFORMS for q in hunting.hunting_queries(p, **kwargs)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"actor": ACTOR, "target": TARGET, "around_ms": T0},
        {"actor": HOSTILE, "target": "a'b\"c%_\\", "around_ms": T0},
        {"actor": None, "target": TARGET, "around_ms": None, "target_property": None},
    ],
)
def test_every_hunting_query_passes_the_aql_validator(engine: AqlEngine, kwargs: dict) -> None:
    queries = all_queries(**kwargs)
    assert {q.platform for q in queries} == set(PLATFORMS)
    assert len(queries) == len(hunting.TOPICS)
    for q in queries:
        assert engine.validate(q.aql, now_ms=T0 + 48 * HOUR) == [], q.aql


def test_aws_follow_on_by_actor_or_target_within_24h(engine: AqlEngine) -> None:
    by_key = {q.key: q for q in hunting.hunting_queries(AWS, actor=ACTOR, target=TARGET, around_ms=T0)}
    keys = run(engine, by_key["aws-access-keys"].aql)
    assert [(r["event_name"], r["starttime"]) for r in keys] == [("CreateAccessKey", T0 + 6 * MIN)]
    attach = run(engine, by_key["aws-policy-attachments"].aql)
    assert [(r["event_name"], r["target_account"]) for r in attach] == [("AttachUserPolicy", TARGET)]
    use = run(engine, by_key["aws-new-identity-use"].aql)
    assert [(r["event_name"], r["actor"]) for r in use] == [("ConsoleLogin", TARGET)]
    assert run(engine, by_key["aws-login-profiles"].aql) == []


def test_hostile_actor_is_a_literal_not_a_condition(engine: AqlEngine) -> None:
    (query,) = [
        q
        for q in hunting.hunting_queries(AWS, actor=HOSTILE, target=None, around_ms=T0)
        if q.key == "aws-access-keys"
    ]
    rows = run(engine, query.aql)
    # Only the event whose username *is* the hostile string; no 1=1 widening, no '_' wildcard match.
    assert [(r["actor"], r["target_account"]) for r in rows] == [(HOSTILE, "svcXbackup")]


def test_without_a_creation_the_query_covers_the_last_24_hours_for_everyone(engine: AqlEngine) -> None:
    (query,) = [q for q in hunting.hunting_queries(AWS) if q.key == "aws-access-keys"]
    assert query.aql.endswith("LAST 24 HOURS")
    rows = engine.execute(engine.prepare(query.aql, now_ms=T0 + 12 * HOUR))
    # -3 h is inside the last 24 h of T0 + 12 h; +30 h is in the future of "now".
    assert {r["starttime"] - T0 for r in rows} == {-3 * HOUR, 6 * MIN, 7 * MIN, 10 * MIN}


def test_entra_office_and_gcp_topics_find_their_events(engine: AqlEngine) -> None:
    entra = {
        q.key: q
        for q in hunting.hunting_queries(
            AZURE_AD, actor="admin@contoso.com", target="evil@contoso.com", around_ms=T0
        )
    }
    role_rows = run(engine, entra["entra-role-membership"].aql)
    assert [r["event_name"] for r in role_rows] == ["Add member to role"]
    # The new user granting consent is found through the target pivot (username = target).
    assert [r["event_name"] for r in run(engine, entra["entra-consent"].aql)] == ["Consent to application"]
    o365 = {
        q.key: q
        for q in hunting.hunting_queries(
            OFFICE_365, actor="admin@contoso.com", target="evil@contoso.com", around_ms=T0
        )
    }
    assert [r["event_name"] for r in run(engine, o365["o365-role-membership"].aql)] == ["Add member to role."]
    gcp = {
        q.key: q
        for q in hunting.hunting_queries(
            GCP, actor="dev@corp.example", target="sa-x@p.iam.gserviceaccount.com", around_ms=T0
        )
    }
    assert [r["event_name"] for r in run(engine, gcp["gcp-keys"].aql)] == [
        "google.iam.admin.v1.CreateServiceAccountKey"
    ]
    # Short "SetIamPolicy" also matches the fully qualified method name.
    assert [r["event_name"] for r in run(engine, gcp["gcp-policy-attachments"].aql)] == [
        "google.iam.v1.IAMPolicy.SetIamPolicy"
    ]


def test_unknown_platform_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown platform"):
        hunting.hunting_queries("Oracle Cloud")


def test_offense_query_lists_only_the_offense_creation_events(engine: AqlEngine) -> None:
    aql = offense.offense_events_query(
        engine.offense_id, T0 + 20_000, T0 + 6 * MIN, default_platform_filters()
    )
    assert engine.validate(aql) == []
    rows = run(engine, aql)
    # The offense holds CreateUser, AttachUserPolicy and CreateAccessKey; only those in the detection's
    # event set are listed, oldest first.
    creation_names = {n.lower() for n in DEFAULT_EVENT_NAMES[AWS]}
    linked = [("CreateUser", T0), ("AttachUserPolicy", T0 + 5 * MIN), ("CreateAccessKey", T0 + 6 * MIN)]
    expected = [(name, ACTOR, TARGET, AWS) for name, _t in linked if name.lower() in creation_names]
    assert expected[0][0] == "CreateUser"
    assert [(r["event_name"], r["actor"], r["target_account"], r["cloud_platform"]) for r in rows] == expected
    empty = offense.offense_events_query(engine.empty_offense_id, T0, T0 + MIN, default_platform_filters())
    assert run(engine, empty) == []


@pytest.mark.parametrize(
    ("start", "updated", "expected"),
    [
        # start floored to its minute; stop = the minute after the last update (STOP is exclusive).
        (T0 + 20_000, T0 + 6 * MIN + 1, (T0, T0 + 7 * MIN)),
        (T0 + 20_000, T0 + 6 * MIN, (T0, T0 + 7 * MIN)),
        (T0, T0, (T0, T0 + MIN)),
        (T0 + 59_999, T0 + 59_999, (T0, T0 + MIN)),
    ],
)
def test_offense_window_widens_to_whole_minutes(start: int, updated: int, expected: tuple[int, int]) -> None:
    assert offense.minute_window(start, updated) == expected
    clause = offense.minute_time_clause(start, updated)
    assert clause.startswith("START '2025-11-24 16:00Z' STOP '2025-11-24 16:0")


def test_offense_id_must_be_a_positive_int() -> None:
    from app.aql.literals import AqlLiteralError

    for bad in (0, -1, True, "1 OR 1=1"):
        with pytest.raises(AqlLiteralError):
            offense.offense_events_query(bad, T0, T0 + MIN, default_platform_filters())  # type: ignore[arg-type]
