"""Every value that reaches AQL is a typed, escaped literal.

Each AQL builder in the app (`app.aql.detection` detection / follow-on / Log Activity queries,
`app.aql.hunting`, `app.aql.offense`, the detail panel's pinned-event query in `app.tab.links` and the
playbook's Log Activity deep link) is fed every string of ``AQL_INJECTIONS`` in every place a value from a
log, a user or a setting goes. The query is parsed by the dev console's real AQL parser
(`devconsole.aql.parser.parse`) and its syntax tree, with literal values masked, must equal the tree built
from a benign value; the hostile value must come back out of the parser as one literal, unchanged. The
real engine (`AqlEngine.validate`) must also accept the query. Values AQL cannot carry (control
characters) and mistyped values (non-integer ids, out-of-range lookback or magnitude, property names with
quotes) must be refused with a ValueError / HTTP 400 before any AQL exists.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from app import settings
from app.aql import detection as aqld
from app.aql import hunting, literals
from app.aql import offense as aqlo
from app.aql.literals import AqlLiteralError
from devconsole.aql import AqlEngine
from devconsole.aql import ast as aql_ast
from devconsole.aql.parser import parse
from devconsole.store import EventStore
from tests.reliability.hostile_corpus import AQL_INJECTIONS, has_control

BENIGN = "benign-value"
NOW_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
HOUR_MS = 3_600_000
_POSITION = {"line", "column", "span", "source", "literal_text"}


# --- syntax-tree helpers -----------------------------------------------------------------------------


def skeleton(node: object) -> object:
    """The tree with every literal's value masked (its kind kept): the query's structure."""
    if isinstance(node, aql_ast.Literal):
        return ("literal", node.kind)
    if isinstance(node, aql_ast.Node):
        return (
            type(node).__name__,
            tuple((k, skeleton(v)) for k, v in vars(node).items() if k not in _POSITION),
        )
    if isinstance(node, list | tuple):
        return tuple(skeleton(v) for v in node)
    return node


def string_literals(node: object) -> list[str]:
    """Every string literal's value, in tree order."""
    if isinstance(node, aql_ast.Literal):
        return [node.value] if node.kind == "str" else []
    out: list[str] = []
    if isinstance(node, aql_ast.Node):
        for k, v in vars(node).items():
            if k not in _POSITION:
                out += string_literals(v)
    elif isinstance(node, list | tuple):
        for v in node:
            out += string_literals(v)
    return out


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> AqlEngine:
    """The real engine over an empty store that defines the app's custom property."""
    store = EventStore(tmp_path_factory.mktemp("aql_injection") / "events.db")
    store.declare_custom_property("Account Name")
    store.declare_custom_property("User Agent (custom)")
    return AqlEngine(store)


# --- the builders, each taking the hostile value in one place --------------------------------------


def _platforms(aws_names: tuple[str, ...]) -> dict[str, aqld.PlatformFilter]:
    filters = aqld.default_platform_filters()
    filters[aqld.AWS] = aqld.PlatformFilter((347,), aws_names)
    return filters


def _detection_event_name(value: str) -> list[str]:
    spec = aqld.DetectionSpec(platforms=_platforms(("CreateUser", value)))
    return [aqld.detection_query(spec, NOW_MS - HOUR_MS, NOW_MS)]


def _follow_on_event_name(value: str) -> list[str]:
    return [aqld.follow_on_query(_platforms((value, "AttachUserPolicy")), NOW_MS - HOUR_MS, NOW_MS)]


def _log_activity_event_name(value: str) -> list[str]:
    return [aqld.log_activity_query(aqld.DetectionSpec(platforms=_platforms((value,))), hours=24)]


def _offense_event_name(value: str) -> list[str]:
    return [aqlo.offense_events_query(42, NOW_MS - HOUR_MS, NOW_MS, _platforms(("CreateUser", value)))]


def _offense_links_event_name(value: str) -> list[str]:
    window = (NOW_MS - HOUR_MS, NOW_MS)
    return [aqlo.offense_links_query({42: window, 43: window}, _platforms(("CreateUser", value)))]


def _hunting(**values: str) -> list[str]:
    out = []
    for platform in aqld.PLATFORMS:
        for around in (NOW_MS, None):
            out += [q.aql for q in hunting.hunting_queries(platform, around_ms=around, **values)]
    return out


def _hunting_actor(value: str) -> list[str]:
    return _hunting(actor=value, target="new-account")


def _hunting_target(value: str) -> list[str]:
    return _hunting(actor="admin@contoso.com", target=value)


def _arn(user: str) -> str:
    return f"arn:aws:iam::111122223333:user/{user}"


def _hunting_actor_arn(value: str) -> list[str]:
    # An IAM user ARN: the builder also pivots on the user name it cuts out of the ARN.
    return [
        q.aql
        for q in hunting.hunting_queries(aqld.AWS, actor=_arn(value), target="new-account", around_ms=NOW_MS)
    ]


def _benign_like(builder: str, value: str) -> str:
    """The benign value whose query has the structure ``value``'s must have.

    For an ARN actor the pivot is ``LOWER(username) = …`` when one name comes out of it and ``IN (…)``
    when the ARN also yields a user name; which one depends on the ARN's shape (a ``/`` in the name is
    an IAM path), not on quoting, so the benign twin is chosen with the same number of names."""
    if builder != "hunting.actor_arn":
        return BENIGN
    names = {n.lower() for n in hunting.actor_names(_arn(value))}
    return BENIGN if len(names) == 2 else "/"


def _pinned_event_log_source(value: str) -> list[str]:
    from app.tab.links import event_aql

    return [event_aql({"event_time": NOW_MS, "qid": 1234, "log_source": value})]


def _coalesced_log_source(value: str) -> list[str]:
    return [aqld.coalesced_events_query(1234, NOW_MS, value, "198.51.100.7")]


def _coalesced_source_ip(value: str) -> list[str]:
    return [aqld.coalesced_events_query(1234, NOW_MS, "CloudTrail @ 111122223333", value)]


BUILDERS: dict[str, Callable[[str], list[str]]] = {
    "coalesced.log_source": _coalesced_log_source,
    "coalesced.source_ip": _coalesced_source_ip,
    "detection.event_name": _detection_event_name,
    "follow_on.event_name": _follow_on_event_name,
    "log_activity.event_name": _log_activity_event_name,
    "offense.event_name": _offense_event_name,
    "offense_links.event_name": _offense_links_event_name,
    "hunting.actor": _hunting_actor,
    "hunting.actor_arn": _hunting_actor_arn,
    "hunting.target": _hunting_target,
    "tab_links.log_source": _pinned_event_log_source,
}


def _expect_value_in_literals(builder: str, value: str, literals_found: list[str]) -> None:
    # Hunting compares case-insensitively, so it puts the lower-cased value into AQL.
    expected = value.lower() if builder.startswith("hunting.") else value
    if builder == "hunting.actor_arn":
        expected = _arn(value).lower()
    assert expected in literals_found, f"{builder}: {value[:60]!r} is not one literal of the query"


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_injection_strings_never_change_the_query_structure(builder: str, engine: AqlEngine) -> None:
    build = BUILDERS[builder]
    benign_queries = build(BENIGN)
    for query in benign_queries:  # the masking sees the benign value as a literal at all
        _expect_value_in_literals(builder, BENIGN, string_literals(parse(query)))
    shapes = {b: [skeleton(parse(q)) for q in build(b)] for b in (BENIGN, "/")}
    checked = 0
    for value in AQL_INJECTIONS:
        if has_control(value):
            if builder == "tab_links.log_source":
                # A log source name AQL cannot quote is left out of the pin (qid + exact time remain).
                from app.tab.links import event_aql

                (query,) = build(value)
                assert query == event_aql({"event_time": NOW_MS, "qid": 1234})
                continue
            with pytest.raises(ValueError):
                build(value)
            continue
        queries = build(value)
        benign_shapes = shapes[_benign_like(builder, value)]
        assert len(queries) == len(benign_shapes)
        for query, shape in zip(queries, benign_shapes, strict=True):
            tree = parse(query)
            assert skeleton(tree) == shape, f"{builder}: {value[:60]!r} changed the query's structure"
            _expect_value_in_literals(builder, value, string_literals(tree))
        # The engine compiles it too (semantic checks, SQLite compile): the value stays a literal.
        errors = engine.validate(queries[0], now_ms=NOW_MS)
        assert errors == [], f"{builder}: {value[:60]!r}: {[str(e) for e in errors]}"
        checked += 1
    assert checked >= len(AQL_INJECTIONS) - 5


@pytest.mark.parametrize("value", ["Account Name", "User Agent (custom)"])
def test_allowed_custom_property_names_stay_one_quoted_field(value: str, engine: AqlEngine) -> None:
    spec = aqld.DetectionSpec(platforms=aqld.default_platform_filters(), target_property=value)
    query = aqld.detection_query(spec, NOW_MS - HOUR_MS, NOW_MS)
    (item,) = [i for i in parse(query).select if i.alias == "target_account"]
    assert isinstance(item.expr, aql_ast.Field) and item.expr.name == value and item.expr.quoted
    assert engine.validate(query, now_ms=NOW_MS) == []


HOSTILE_PROPERTY_NAMES = [
    'Account" OR 1=1 --',
    'Account Name"',
    "Account'Name",
    "Account\\Name",
    "Account\nName",
    'x" AS a, payload AS "y',
    "",
    " ",
    "1abc",
    "a" * 101,
    "Name\u2019s",
]


@pytest.mark.parametrize("value", [v for v in HOSTILE_PROPERTY_NAMES if v])  # "" means "no property"
def test_custom_property_names_with_quotes_are_refused_by_every_builder(value: str) -> None:
    spec = aqld.DetectionSpec(platforms=aqld.default_platform_filters(), target_property=value)
    with pytest.raises(AqlLiteralError):
        aqld.detection_query(spec, NOW_MS - HOUR_MS, NOW_MS)
    with pytest.raises(AqlLiteralError):
        aqld.log_activity_query(spec)
    with pytest.raises(AqlLiteralError):
        aqlo.offense_events_query(
            1, NOW_MS - HOUR_MS, NOW_MS, aqld.default_platform_filters(), target_property=value
        )
    with pytest.raises(AqlLiteralError):
        hunting.hunting_queries(aqld.AWS, actor="a", target="b", target_property=value)


@pytest.mark.parametrize("value", [v for v in HOSTILE_PROPERTY_NAMES if v.strip()])
def test_settings_refuse_custom_property_names_aql_cannot_quote(value: str) -> None:
    """The admin setting is checked when it is saved, not when a refresh later fails on it."""
    with pytest.raises(settings.SettingError):
        settings.validate({"custom_properties": {"account_name": value}})


@pytest.mark.parametrize("offense_id", ["1 OR 1=1", "7", 7.0, True, 0, -1, 2**31, None])
def test_offense_ids_must_be_positive_integers(offense_id: object) -> None:
    with pytest.raises(ValueError):
        aqlo.offense_events_query(
            offense_id,
            NOW_MS - HOUR_MS,
            NOW_MS,  # type: ignore[arg-type]
            aqld.default_platform_filters(),
        )
    with pytest.raises(ValueError):  # the offense-link sync's batch search: every id typed too
        aqlo.offense_links_query(
            {offense_id: (NOW_MS - HOUR_MS, NOW_MS)},  # type: ignore[dict-item]
            aqld.default_platform_filters(),
        )


@pytest.mark.parametrize(
    "change",
    [
        {"magnitude_min": "3 OR 1=1"},
        {"magnitude_min": 11},
        {"magnitude_min": -1},
        {"magnitude_min": 3.5},
        {"magnitude_min": True},
        {"row_limit": 0},
        {"row_limit": "10"},
        {"row_limit": 10**7},
    ],
)
def test_typed_detection_spec_values_are_refused(change: dict) -> None:
    spec = dataclasses.replace(aqld.DetectionSpec(platforms=aqld.default_platform_filters()), **change)
    with pytest.raises(ValueError):
        aqld.detection_query(spec, NOW_MS - HOUR_MS, NOW_MS)


@pytest.mark.parametrize(
    ("start", "stop"),
    [(-1, NOW_MS), (NOW_MS, NOW_MS), (NOW_MS, NOW_MS - 1), ("0", NOW_MS), (0, 10**20), (1.5, NOW_MS)],
)
def test_windows_must_be_ordered_epoch_milliseconds(start: object, stop: object) -> None:
    spec = aqld.DetectionSpec(platforms=aqld.default_platform_filters())
    with pytest.raises(ValueError):
        aqld.detection_query(spec, start, stop)  # type: ignore[arg-type]


@pytest.mark.parametrize("hours", [0, -24, 24 * 367, "24", 24.0, True])
def test_log_activity_lookback_must_be_a_bounded_integer(hours: object) -> None:
    spec = aqld.DetectionSpec(platforms=aqld.default_platform_filters())
    with pytest.raises(ValueError):
        aqld.log_activity_query(spec, hours=hours)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lookback_hours", -1),
        ("lookback_hours", 0),
        ("lookback_hours", 10**9),
        ("lookback_hours", "24"),
        ("lookback_hours", 1.5),
        ("lookback_hours", True),
        ("magnitude_minimum", 11),
        ("magnitude_minimum", -1),
        ("magnitude_minimum", "3 OR 1=1"),
        ("detection_row_limit", 0),
        ("event_names_aws", ["CreateUser\nx"]),
        ("event_names_aws", ["a\x00b"]),
        ("event_names_aws", ["a\x7f"]),
        ("event_names_aws", "CreateUser"),
        ("event_names_aws", []),
        ("log_source_types", {"AWS": [{"name": "x", "id": "347 OR 1=1"}]}),
        ("log_source_types", {"AWS": [{"name": "x", "id": -5}]}),
    ],
)
def test_settings_that_reach_aql_refuse_mistyped_values(key: str, value: object) -> None:
    with pytest.raises(settings.SettingError):
        settings.validate({key: value})


@pytest.mark.parametrize("value", [v for v in AQL_INJECTIONS if not has_control(v)])
def test_event_name_settings_accept_hostile_text_as_literals(value: str) -> None:
    """Hostile but printable event names are stored as they are and reach AQL only escaped."""
    if len(value) > 255 or "\t" in value:  # settings keep to 255 printable characters
        with pytest.raises(settings.SettingError):
            settings.validate({"event_names_aws": [value]})
        return
    clean = settings.validate({"event_names_aws": ["CreateUser", value]})["event_names_aws"]
    query = aqld.detection_query(
        aqld.DetectionSpec(platforms=_platforms(tuple(clean))), NOW_MS - HOUR_MS, NOW_MS
    )
    assert skeleton(parse(query)) == skeleton(parse(_detection_event_name(BENIGN)[0]))


@pytest.mark.parametrize("value", [v for v in AQL_INJECTIONS if not has_control(v)][:12])
def test_log_activity_deep_link_carries_the_query_unchanged(value: str) -> None:
    from app.api.urls import log_activity_url

    for aql in _hunting_actor(value)[:3] + _pinned_event_log_source(value):
        url = log_activity_url(aql)
        params = parse_qs(urlsplit(url).query, keep_blank_values=True)
        assert params["value(aql)"] == [aql]
        assert params["dispatch"] == ["performSearch"]  # no parameter smuggled in by the value
        assert urlsplit(url).fragment == ""


def test_literal_helpers_refuse_non_literals() -> None:
    for bad in (1, None, b"x", ["x"]):
        with pytest.raises(AqlLiteralError):
            literals.string(bad)  # type: ignore[arg-type]
    for bad in ("1", 1.0, True, None, 2**63):
        with pytest.raises(AqlLiteralError):
            literals.integer(bad)  # type: ignore[arg-type]
    with pytest.raises(AqlLiteralError):
        literals.string_list([])
    with pytest.raises(AqlLiteralError):
        literals.integer_list(["347"])  # type: ignore[list-item]


# --- through the app: typed values are refused with a JSON 400 before any search starts ---------------

from tests.app.conftest import app, client, login  # noqa: E402,F401  (fixtures, used by name)

BAD_OFFENSE_IDS = [
    "1 OR 1=1",
    "1)--",
    "-1",
    "0",
    "2147483648",
    "1.0",
    "0x10",
    "abc",
    "\u00b2",
    "1e3",
    "'",
    "99999999999999999999999",
]


@pytest.mark.parametrize("raw", BAD_OFFENSE_IDS)
def test_offense_routes_refuse_ids_that_are_not_positive_integers(client, login, raw: str) -> None:  # noqa: F811
    from urllib.parse import quote

    login(client, "analyst")
    for url in (f"/offense/fragment/{quote(raw, safe='')}", f"/offense/playbook_action?context={quote(raw)}"):
        response = client.get(url)
        assert response.status_code == 400, (url, response.status_code, response.get_data(as_text=True)[:300])
        error = response.get_json()["error"]
        assert error["code"] == "bad_offense_id" and error["message"]
    for name in ("offense", "detection"):
        response = client.get(f"/playbook/?{name}={quote(raw)}")
        assert response.status_code == 400, (name, response.status_code)
        assert response.get_json()["error"]["field"] == name


@pytest.mark.parametrize(
    "body",
    [
        {"query": "aws-access-keys", "around_ms": "1700000000000"},
        {"query": "aws-access-keys", "around_ms": -1},
        {"query": "aws-access-keys", "around_ms": 10**16},
        {"query": "aws-access-keys", "around_ms": 1.5},
        {"query": "aws-access-keys", "actor": 7},
        {"query": "aws-access-keys", "actor": ["' OR 1=1 --"]},
        {"query": "aws-access-keys", "target": "x" * 1025},
        {"query": "aws-access-keys", "detection": "1 OR 1=1"},
        {"query": "aws-access-keys' OR 1=1 --"},
        {"query": "aws-access-keys", "aql": "SELECT * FROM events LAST 999 DAYS"},
    ],
)
def test_hunting_api_refuses_mistyped_values(client, login, body: dict) -> None:  # noqa: F811
    headers = login(client, "analyst")
    response = client.post("/api/hunting/run", json=body, headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["message"]


@pytest.mark.parametrize("value", ["' OR 1=1 --", "x' UNION SELECT * FROM flows --", "\\' LAST 999 DAYS"])
def test_hunting_api_runs_hostile_pivots_as_literals(client, login, value: str) -> None:  # noqa: F811
    """The query the app actually ran on the dev console (returned as ``aql``) has the benign structure."""
    headers = login(client, "analyst")
    shapes = []
    for actor in (BENIGN, value):
        response = client.post(
            "/api/hunting/run",
            headers=headers,
            json={"query": "aws-access-keys", "actor": actor, "target": actor, "around_ms": NOW_MS},
        )
        assert response.status_code == 202, response.get_data(as_text=True)[:300]
        body = response.get_json()
        tree = parse(body["aql"])
        assert actor.lower() in string_literals(tree)
        shapes.append(skeleton(tree))
        deadline = time.monotonic() + 60
        state = client.get(body["poll_url"]).get_json()
        while not state.get("done"):  # the page polls the search's handle until QRadar is done
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
            state = client.get(body["poll_url"]).get_json()
        assert state["items"] == []  # nothing in the dev console matches either value
    assert shapes[0] == shapes[1]


def test_settings_api_refuses_a_quoted_custom_property_name(client, login) -> None:  # noqa: F811
    headers = login(client, "admin")
    response = client.put(
        "/api/settings",
        headers=headers,
        json={"custom_properties": {"account_name": 'Account Name" OR 1=1 --'}},
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert "custom_properties" in response.get_data(as_text=True)


# Public AQL builders and where the tests above feed them hostile or mistyped values. A new builder fails
# this test until it is added to BUILDERS (or, taking only typed values, to the typed tests) and here.
COVERED_BUILDERS = {
    "app.aql.detection": {
        "detection_query",
        "follow_on_query",
        "log_activity_query",
        "coalesced_events_query",
    },
    "app.aql.hunting": {"hunting_query", "hunting_queries", "find_query", "pivot_clause"},
    "app.aql.offense": {"offense_events_query", "minute_time_clause", "offense_links_query"},
}


def test_every_public_aql_builder_is_covered() -> None:
    import importlib
    import inspect

    for module_name, covered in COVERED_BUILDERS.items():
        module = importlib.import_module(module_name)
        builders = {
            name
            for name, fn in inspect.getmembers(module, inspect.isfunction)
            if fn.__module__ == module_name
            and not name.startswith("_")
            and ("query" in name or "clause" in name or "queries" in name)
        }
        assert builders == covered, (module_name, builders ^ covered)


@pytest.mark.parametrize(
    ("start", "updated"), [(-1, NOW_MS), ("0", NOW_MS), (0, 10**20), (1.5, NOW_MS), (True, NOW_MS)]
)
def test_offense_time_window_must_be_epoch_milliseconds(start: object, updated: object) -> None:
    with pytest.raises(ValueError):
        aqlo.minute_time_clause(start, updated)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        aqlo.offense_events_query(1, start, updated, aqld.default_platform_filters())  # type: ignore[arg-type]
