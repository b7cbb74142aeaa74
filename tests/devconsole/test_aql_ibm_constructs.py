"""AQL that IBM documents and outside clients send: ``INTO <name>`` and ``PARAMETERS`` (API 26.0's own
search sample), ``TEXT SEARCH``, the standard event fields (``sourceport``, ``destinationport``,
``eventdirection``, ``hasoffense``, ``domainid``, ``identityip``, ``creeventlist``, ``protocolid``) and
the functions ``PROTOCOLNAME`` and ``RULENAME``, over the hand-built event set of
tests/devconsole/aql_cases/fixture.py (its table gives every expected answer below)."""

from __future__ import annotations

import datetime as dt

import pytest

from devconsole.aql import AqlEngine
from tests.devconsole.aql_cases.fixture import NOW, QID, build_store

BOB = "Bob@Contoso.com"
ACCOUNT_RULE = "Cloud account created (T1136.003)"
LOGIN_RULE = "Multiple login failures from one source"
# API 26.0 POST /ariel/searches, response sample's query_string, verbatim.
IBM_SAMPLE = (
    "SELECT sourceip, starttime, qid, sourceport  from events into s16 where sourceip in "
    "(select destinationip from events) parameters snapshotsize=2, PROGRESSDETAILSRESOLUTION=10"
)

# (query, expected rows). Rows compare as multisets; a bare value stands for a one-column row.
CASES: list[tuple[str, list]] = [
    # -- standard event fields: 0 or NULL where the cloud logs carry no value
    (
        "SELECT username, sourceport, destinationport, domainid, identityip, protocolid FROM events",
        [
            {
                "username": user,
                "sourceport": 0,
                "destinationport": 0,
                "domainid": 0,
                "identityip": None,
                "protocolid": None,
            }
            for user in ("alice", "alice", BOB, "bob@contoso.com", None)
        ],
    ),
    ("SELECT COUNT(*) AS n FROM events WHERE sourceport = 0 AND destinationport = 0 LAST 2 DAYS", [10]),
    # eventdirection: every destination is 10.9.9.9 (local); NULL and public sources are remote
    ("SELECT username FROM events WHERE eventdirection = 'R2L' LAST 24 HOURS", ["carol", "alice"]),
    ("SELECT eventdirection FROM events WHERE username = 'alice' LAST 5 MINUTES", ["L2L", "L2L"]),
    ("SELECT COUNT(*) AS n FROM events WHERE eventdirection = 'L2L' LAST 2 DAYS", [7]),
    ("SELECT username FROM events WHERE hasoffense LAST 2 DAYS", ["alice", "alice", "mallory"]),
    (
        "SELECT username FROM events WHERE NOT hasoffense LAST 15 MINUTES",
        [BOB, "bob@contoso.com", "carol", None],
    ),
    # creeventlist: the rules of the offenses an event contributed to
    (
        "SELECT username, creeventlist FROM events WHERE creeventlist IS NOT NULL LAST 2 DAYS",
        [
            {"username": "alice", "creeventlist": [100_411]},
            {"username": "alice", "creeventlist": [100_411]},
            {"username": "mallory", "creeventlist": [100_052, 100_411]},
        ],
    ),
    ("SELECT COUNT(*) AS n FROM events WHERE creeventlist IS NULL LAST 2 DAYS", [7]),
    # RULENAME of a rule id and of a creeventlist
    ("SELECT RULENAME(100411) AS r FROM events WHERE username = 'carol' LAST 1 HOURS", [ACCOUNT_RULE]),
    ("SELECT RULENAME(5) AS r FROM events WHERE username = 'carol' LAST 1 HOURS", [None]),
    (
        "SELECT RULENAME(creeventlist) AS r FROM events WHERE username IN ('mallory', 'carol') LAST 2 DAYS",
        [f"{LOGIN_RULE}, {ACCOUNT_RULE}", None],
    ),
    (
        "SELECT username FROM events WHERE RULENAME(creeventlist) ILIKE '%login failures%' LAST 2 DAYS",
        ["mallory"],
    ),
    # PROTOCOLNAME of IANA protocol numbers; NULL for an unset or unknown protocol
    (
        "SELECT PROTOCOLNAME(6) AS t, PROTOCOLNAME(17) AS u, PROTOCOLNAME(1) AS i, PROTOCOLNAME(protocolid) AS p,"
        " PROTOCOLNAME(999) AS x FROM events WHERE username = 'carol' LAST 1 HOURS",
        [{"t": "TCP", "u": "UDP", "i": "ICMP", "p": None, "x": None}],
    ),
    # -- TEXT SEARCH over the payload: whole words, case-insensitive, "phrases", *, AND / OR / NOT
    (
        "SELECT username FROM events WHERE TEXT SEARCH 'CreateUser' LAST 2 DAYS",
        ["alice", "terraform", "mallory"],
    ),
    (
        "SELECT username FROM events WHERE TEXT SEARCH 'createuser' LAST 2 DAYS",
        ["alice", "terraform", "mallory"],
    ),
    (
        "SELECT username FROM events WHERE TEXT SEARCH = 'CreateUser' LAST 2 DAYS",
        ["alice", "terraform", "mallory"],
    ),
    ("SELECT username FROM events WHERE TEXT SEARCH 'Create' LAST 2 DAYS", []),
    (
        "SELECT username FROM events WHERE TEXT SEARCH 'Create*' LAST 2 DAYS",
        ["alice", "alice", "terraform", "mallory"],
    ),
    ("SELECT username FROM events WHERE TEXT SEARCH '\"add user\"' LAST 2 DAYS", [BOB, "carol", "alice"]),
    ("SELECT username FROM events WHERE TEXT SEARCH 'session AND opened' LAST 2 DAYS", ["root", None]),
    ("SELECT username FROM events WHERE TEXT SEARCH 'session opened' LAST 2 DAYS", ["root", None]),
    (
        "SELECT username FROM events WHERE TEXT SEARCH 'CreateUser NOT Terraform' LAST 2 DAYS",
        ["alice", "mallory"],
    ),
    (
        "SELECT username FROM events WHERE TEXT SEARCH 'CreateUser OR success' LAST 2 DAYS",
        ["alice", BOB, "terraform", "mallory"],
    ),
    (
        "SELECT username FROM events WHERE TEXT SEARCH '(CreateUser OR CreateAccessKey) AND svc-backup' LAST 2 DAYS",
        ["alice"],
    ),
    (
        "SELECT username FROM events WHERE TEXT SEARCH 'CreateUser' AND magnitude > 5 LAST 2 DAYS",
        ["alice", "mallory"],
    ),
    (
        "SELECT username FROM events WHERE NOT TEXT SEARCH 'session' LAST 1 HOURS",
        ["alice", "alice", BOB, "bob@contoso.com", "carol"],
    ),
    # -- maps of sets and reference tables (the collections /api/reference_data/map_of_sets and /tables hold)
    (
        "SELECT username FROM events WHERE REFERENCEMAPSETCONTAINS('CreatedBy', username, \"Account Name\")"
        " LAST 2 DAYS",
        ["alice", "alice", "terraform"],
    ),
    (
        "SELECT username FROM events WHERE REFERENCEMAPSETCONTAINS('CreatedBy', 'alice', 'temp1') LAST 1 HOURS",
        [],
    ),
    (
        "SELECT username FROM events WHERE REFERENCEMAPSETCONTAINS('NoSuchMap', username, 'x') LAST 1 HOURS",
        [],
    ),
    (
        "SELECT \"Account Name\" AS a, REFERENCETABLE('Accounts', 'owner', \"Account Name\") AS o FROM events"
        ' WHERE "Account Name" IS NOT NULL LAST 2 HOURS',
        [
            {"a": "svc-backup", "o": "team-a"},
            {"a": "svc-backup", "o": "team-a"},
            {"a": "eve.external", "o": None},
            {"a": "temp1", "o": None},
            {"a": "app-deployer", "o": None},  # its row expired a day ago
        ],
    ),
    (
        "SELECT REFERENCETABLE('Accounts', 'colour', 'svc-backup') AS o FROM events WHERE username = 'carol'"
        " LAST 1 HOURS",
        [None],
    ),
    # -- INTO and PARAMETERS: accepted; they name the search and shape its object, not its rows
    (IBM_SAMPLE, []),
    ("SELECT username FROM events INTO mine WHERE magnitude >= 7 LAST 24 HOURS", [BOB, "alice"]),
    (
        "SELECT username FROM events WHERE magnitude >= 7 LAST 24 HOURS PARAMETERS SNAPSHOTSIZE=1",
        [BOB, "alice"],
    ),
    (
        "SELECT COUNT(*) AS n FROM events LAST 2 DAYS PARAMETERS REMOTESERVERS=ARIELSERVERS4EPID(8),"
        " progressdetailsresolution=4",
        [10],
    ),
    # -- flows: listed by /api/ariel/databases, always empty on this console
    ("SELECT sourceport, destinationport, PROTOCOLNAME(protocolid) AS p FROM flows INTO f1 LAST 1 HOURS", []),
]

# (query, message fragment, line, column) of the first error.
INVALID: list[tuple[str, str, int, int]] = [
    ("SELECT sourceip FROM flows WHERE TEXT SEARCH 'x'", "TEXT SEARCH searches event payloads", 1, 34),
    ("SELECT username FROM events WHERE TEXT SEARCH ''", "no search terms", 1, 47),
    ("SELECT username FROM events WHERE TEXT SEARCH '\"open'", "unbalanced quote", 1, 47),
    ("SELECT username FROM events WHERE TEXT SEARCH 'a OR'", "expected a search term", 1, 47),
    ("SELECT username FROM events WHERE TEXT SEARCH '(a'", "without its ')'", 1, 47),
    ("SELECT username FROM events WHERE TEXT SEARCH '" + "(" * 60 + "a'", "nested deeper than 50", 1, 47),
    ("SELECT username FROM events WHERE TEXT SEARCH > 'x'", "TEXT SEARCH takes a quoted text", 1, 35),
    ("SELECT username FROM events WHERE TEXT SEARCH username", 'Encountered "username"', 1, 47),
    ("SELECT username FROM events PARAMETERS foo=1", 'Unknown search parameter "foo"', 1, 40),
    ("SELECT username FROM events PARAMETERS snapshotsize=-1", "needs a whole number from 0 to 10000", 1, 53),
    ("SELECT username FROM events PARAMETERS PROGRESSDETAILSRESOLUTION=0", "from 1 to 1000", 1, 66),
    ("SELECT username FROM events PARAMETERS snapshotsize='2'", "needs a whole number", 1, 53),
    ("SELECT username FROM events PARAMETERS snapshotsize>2", "PARAMETERS needs name=value", 1, 40),
    ("SELECT username FROM events PARAMETERS snapshotsize=1, SNAPSHOTSIZE=2", "is given twice", 1, 56),
    (
        "SELECT username FROM events PARAMETERS REMOTESERVERS=5",
        "REMOTESERVERS needs ARIELSERVERS4EPID",
        1,
        54,
    ),
    ("SELECT username FROM events INTO 'x'", "Encountered \"'x'\"", 1, 34),
    (
        "SELECT username FROM events WHERE username IN (SELECT username FROM events INTO x)",
        "INTO can only name the results of the whole search",
        1,
        81,
    ),
    (
        "SELECT username FROM events WHERE username IN (SELECT username FROM events PARAMETERS snapshotsize=1)",
        "PARAMETERS can only be given for the whole search",
        1,
        87,
    ),
    ("SELECT username FROM events LAST 1 HOURS INTO x", 'Encountered "INTO"', 1, 42),
    ("SELECT sourceport + creeventlist FROM events", 'Operator + needs numbers, but "creeventlist"', 1, 21),
    ("SELECT RULENAME() FROM events", "Function RULENAME takes 1 argument, not 0", 1, 8),
    ("SELECT PROTOCOLNAME(protocolid, 1) FROM events", "Function PROTOCOLNAME takes 1 argument, not 2", 1, 8),
    ("SELECT eventdirection FROM flows", 'Unknown column "eventdirection" (not a flow field)', 1, 8),
    (
        "SELECT REFERENCETABLE(username, 'owner', username) FROM events",
        "must be a quoted reference data name",
        1,
        23,
    ),
    ("SELECT REFERENCEMAPSETCONTAINS('m', username) FROM events", "takes 3 arguments, not 2", 1, 8),
    ("SELECT * FROM simarc", '"simarc" is not an Ariel database (this console has: events, flows)', 1, 15),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> AqlEngine:
    return AqlEngine(build_store(tmp_path_factory.mktemp("aql-ibm") / "events.db"), tz=dt.UTC)


def _key(row: object) -> str:
    return repr(sorted(row.items())) if isinstance(row, dict) else repr(row)


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[q[:70] for q, _ in CASES])
def test_documented_construct_runs(engine: AqlEngine, query: str, expected: list) -> None:
    assert engine.validate(query, NOW) == []
    prepared = engine.prepare(query, NOW)
    rows = engine.execute(prepared)
    if expected and not isinstance(expected[0], dict):
        got = [row[prepared.columns[0]] for row in rows]
    else:
        got = rows
    assert sorted(map(_key, got)) == sorted(map(_key, expected))


@pytest.mark.parametrize(("query", "message", "line", "column"), INVALID, ids=[q[:70] for q, *_ in INVALID])
def test_construct_misuse_is_reported_where_it_is(
    engine: AqlEngine, query: str, message: str, line: int, column: int
) -> None:
    errors = engine.validate(query, NOW)
    assert errors, "expected the query to be rejected"
    assert message in errors[0].message
    assert (errors[0].line, errors[0].column) == (line, column)


def test_into_and_parameters_reach_the_prepared_search(engine: AqlEngine) -> None:
    sample = engine.prepare(IBM_SAMPLE, NOW)
    assert sample.into == "s16"
    assert sample.parameters == {"SNAPSHOTSIZE": 2, "PROGRESSDETAILSRESOLUTION": 10}
    assert sample.columns == ["sourceip", "starttime", "qid", "sourceport"]
    plain = engine.prepare("SELECT qid FROM events", NOW)
    assert (plain.into, plain.parameters) == (None, {})
    remote = engine.prepare("SELECT qid FROM events PARAMETERS REMOTESERVERS=ARIELSERVERS4EPID(8)", NOW)
    assert remote.parameters == {"REMOTESERVERS": "ARIELSERVERS4EPID(8)"}


def test_progress_details_count_records_per_slice_of_the_window(engine: AqlEngine) -> None:
    # LAST 10 MINUTES holds the events 0, 1, 2, 3, 4 and 10 minutes old; ten one-minute slices, oldest first
    prepared = engine.prepare(
        "SELECT qid FROM events LAST 10 MINUTES PARAMETERS PROGRESSDETAILSRESOLUTION=10", NOW
    )
    assert engine.progress_details(prepared, 10) == [1, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert sum(engine.progress_details(prepared, 3)) == 6
    flows = engine.prepare("SELECT sourceip FROM flows LAST 10 MINUTES", NOW)
    assert engine.progress_details(flows, 4) == [0, 0, 0, 0]


def test_standard_fields_are_not_in_select_star(engine: AqlEngine) -> None:
    columns = engine.prepare("SELECT * FROM events", NOW).columns
    assert "qid" in columns
    assert not {"sourceport", "eventdirection", "creeventlist", "identityip"} & set(columns)
    assert QID["CreateUser"] in {
        row["qid"] for row in engine.execute(engine.prepare("SELECT * FROM events LAST 2 DAYS", NOW))
    }
