"""The AQL engine over a hand-built event set (tests/devconsole/aql_cases/fixture.py has the table the
expected answers below are worked out from). Unit tests on a tmp SQLite store; the HTTP layer has its own."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from devconsole.aql import AqlEngine, AqlError
from tests.devconsole.aql_cases.fixture import MINUTE, NOW, QID, build_store

CT, AZ, O365, LX = "CloudTrail @ acme", "Azure AD @ contoso", "Office 365 @ contoso", "Linux @ web1"
BOB, BOB_LOWER = "Bob@Contoso.com", "bob@contoso.com"

# (query, expected). Expected rows are dicts, or bare values when the query selects one column.
# Queries with a top-level ORDER BY compare in order; the others as multisets.
VALID: list[tuple[str, list]] = [
    # -- default window (5 minutes: events 1, 2, 3, 4, 10) and time clauses
    ("SELECT username FROM events", ["alice", "alice", BOB, BOB_LOWER, None]),
    ("SELECT username FROM events ORDER BY username", [None, BOB, "alice", "alice", BOB_LOWER]),
    ("SELECT COUNT(*) AS n FROM events", [5]),
    ("SELECT COUNT(*) AS n FROM events LAST 24 HOURS", [9]),
    ("SELECT COUNT(*) AS n FROM events LAST 2 DAYS", [10]),
    ("SELECT COUNT(*) AS n FROM events LAST 15 MINUTES", [6]),
    ("SELECT COUNT(*) AS n FROM events LAST 30 MINUTES", [7]),
    ("SELECT COUNT(*) AS n FROM events WHERE starttime > NOW() - 86400000", [5]),  # WHERE does not widen
    ("SELECT COUNT(*) AS n FROM events WHERE starttime > NOW() - 86400000 LAST 2 DAYS", [9]),
    ("SELECT username FROM events START '2023-11-14 22:03Z' STOP '2023-11-14 22:05Z'", ["carol"]),
    (
        "SELECT username FROM events START '2023-11-14 22:04:30Z' STOP '2023-11-14 22:11:30Z'",
        ["carol", BOB_LOWER],
    ),
    ("SELECT username FROM events START '2023-11-14 22:04' STOP '2023-11-14 22:05'", ["carol"]),
    ("SELECT username FROM events START '2023/11/14 22:04:00Z' STOP '2023/11/14 22:05:00Z'", ["carol"]),
    ("SELECT username FROM events START '2023/11/14-22:04:00Z' STOP '2023/11/14-22:05:00Z'", ["carol"]),
    ("SELECT username FROM events START '2023:11:14-22:04:00Z' STOP '2023:11:14-22:05:00Z'", ["carol"]),
    ("SELECT username FROM events START '1699999440000' STOP '1699999500000'", ["carol"]),
    ("SELECT username FROM events START 1699999440000 STOP 1699999500000", ["carol"]),
    ("SELECT COUNT(*) AS n FROM events START '2023-11-14 22:10Z'", [5]),
    ("SELECT COUNT(*) AS n FROM events START PARSEDATETIME('1 day ago')", [9]),
    ("SELECT COUNT(*) AS n FROM events START PARSEDATETIME('2 hours ago') STOP PARSEDATETIME('now')", [7]),
    ("select username from EVENTS where MAGNITUDE = 7 last 1 hours", [BOB]),
    ("SELECT sourceip FROM flows LAST 1 HOURS", []),
    # -- columns, aliases, names
    (
        "SELECT username AS \"Actor\", sourceip AS 'Source IP' FROM events WHERE magnitude = 7",
        [{"Actor": BOB, "Source IP": "192.168.1.20"}],
    ),
    (
        "SELECT QIDNAME(qid) FROM events WHERE magnitude >= 6 LAST 24 HOURS",
        [{"qidname_qid": "CreateUser"}, {"qidname_qid": "Add user"}, {"qidname_qid": "Add user"}],
    ),
    (
        "SELECT LOGSOURCENAME(logsourceid) FROM events WHERE magnitude = 7",
        [{"logsourcename_logsourceid": AZ}],
    ),
    (
        "SELECT DATEFORMAT(starttime,'yyyy') FROM events WHERE magnitude = 7",
        [{"dateformat_starttime_yyyy": "2023"}],
    ),
    (
        "SELECT qid FROM events WHERE username = 'alice' LAST 24 HOURS",
        [QID["CreateUser"], QID["CreateAccessKey"], QID["Add user"]],
    ),
    ("SELECT QIDNAME(qid) AS name FROM events WHERE magnitude > 8 LAST 2 DAYS", ["CreateUser"]),
    (
        "SELECT LOGSOURCENAME(logsourceid) AS ls, LOGSOURCETYPENAME(devicetype) AS t FROM events"
        " WHERE magnitude = 3 LAST 24 HOURS",
        [{"ls": O365, "t": "Microsoft Office 365"}, {"ls": CT, "t": "Amazon AWS CloudTrail"}],
    ),
    (
        "SELECT CATEGORYNAME(category) AS c, CATEGORYNAME(highlevelcategory) AS h FROM events"
        " WHERE username = 'root' LAST 1 HOURS",
        [{"c": "User Login Success", "h": "Authentication"}],
    ),
    ("SELECT QIDDESCRIPTION(qid) AS d FROM events WHERE magnitude = 4", ["An access key was created"]),
    ("SELECT QIDESCRIPTION(qid) AS d FROM events WHERE magnitude = 4", ["An access key was created"]),
    (
        "SELECT * FROM events WHERE magnitude = 7",
        [
            {
                "starttime": NOW - 3 * MINUTE,
                "endtime": NOW - 3 * MINUTE,
                "devicetime": NOW - 3 * MINUTE,
                "qid": QID["Add user"],
                "category": 3035,
                "highlevelcategory": 3000,
                "logsourceid": 2,
                "devicetype": 445,
                "username": BOB,
                "sourceip": "192.168.1.20",
                "destinationip": "10.9.9.9",
                "magnitude": 7,
                "severity": 5,
                "credibility": 5,
                "relevance": 5,
                "eventcount": 1,
                "payload": '{"operationName":"Add user","result":"success"}',
            }
        ],
    ),
    (
        "SELECT username, magnitude > 5 AS big FROM events WHERE devicetype = 445",
        [{"username": BOB, "big": True}, {"username": BOB_LOWER, "big": False}],
    ),
    ("SELECT username, username FROM events WHERE magnitude = 7", [{"username": BOB, "username_2": BOB}]),
    # -- aggregates
    ("SELECT SUM(eventcount) AS total FROM events LAST 24 HOURS", [14]),
    ("SELECT MIN(magnitude) AS lo, MAX(magnitude) AS hi FROM events LAST 24 HOURS", [{"lo": 1, "hi": 8}]),
    ("SELECT AVG(magnitude) AS a FROM events", [4.6]),
    ("SELECT UNIQUECOUNT(username) AS u FROM events LAST 24 HOURS", [6]),
    ("SELECT COUNT(username) AS n FROM events", [4]),
    (
        "SELECT username, COUNT(*) AS n FROM events GROUP BY username ORDER BY n DESC, username"
        " LAST 24 HOURS",
        [
            {"username": "alice", "n": 3},
            {"username": None, "n": 1},
            {"username": BOB, "n": 1},
            {"username": BOB_LOWER, "n": 1},
            {"username": "carol", "n": 1},
            {"username": "root", "n": 1},
            {"username": "terraform", "n": 1},
        ],
    ),
    (
        "SELECT LOGSOURCETYPENAME(devicetype) AS t, COUNT(*) AS n FROM events GROUP BY devicetype"
        " ORDER BY n DESC LAST 2 DAYS",
        [
            {"t": "Amazon AWS CloudTrail", "n": 4},
            {"t": "Microsoft Azure Active Directory", "n": 3},
            {"t": "Linux OS", "n": 2},
            {"t": "Microsoft Office 365", "n": 1},
        ],
    ),
    (
        "SELECT username, COUNT(*) AS n FROM events GROUP BY username HAVING COUNT(*) > 1 LAST 24 HOURS",
        [{"username": "alice", "n": 3}],
    ),
    (
        "SELECT username, COUNT(*) AS n FROM events GROUP BY username HAVING n >= 2 LAST 24 HOURS",
        [{"username": "alice", "n": 3}],
    ),
    (
        "SELECT devicetype, SUM(eventcount) AS c FROM events GROUP BY devicetype HAVING SUM(eventcount) > 2"
        " ORDER BY c DESC LAST 24 HOURS",
        [{"devicetype": 11, "c": 6}, {"devicetype": 347, "c": 4}, {"devicetype": 445, "c": 3}],
    ),
    (
        "SELECT username, FIRST(qid) AS f, LAST(qid) AS l FROM events WHERE username = 'alice'"
        " GROUP BY username LAST 24 HOURS",
        [{"username": "alice", "f": QID["Add user"], "l": QID["CreateUser"]}],
    ),
    ("SELECT FIRST(username) AS f, LAST(username) AS l FROM events", [{"f": BOB_LOWER, "l": None}]),
    (
        "SELECT sourceip, UNIQUECOUNT(username) AS users FROM events WHERE sourceip = '192.168.1.20'"
        " GROUP BY sourceip",
        [{"sourceip": "192.168.1.20", "users": 2}],
    ),
    (
        'SELECT username, COUNT(*) AS "N" FROM events GROUP BY username ORDER BY "N" DESC LIMIT 1'
        " LAST 24 HOURS",
        [{"username": "alice", "N": 3}],
    ),
    (
        'SELECT LOGSOURCETYPENAME(devicetype) AS "Type", qid, QIDNAME(qid) AS "Name", COUNT(*) AS "N"'
        " FROM events WHERE devicetype IN (347, 397, 413, 445) GROUP BY devicetype, qid"
        ' ORDER BY "N" DESC, qid LAST 7 DAYS',
        [
            {"Type": "Amazon AWS CloudTrail", "qid": QID["CreateUser"], "Name": "CreateUser", "N": 3},
            {"Type": "Microsoft Azure Active Directory", "qid": QID["Add user"], "Name": "Add user", "N": 2},
            {
                "Type": "Amazon AWS CloudTrail",
                "qid": QID["CreateAccessKey"],
                "Name": "CreateAccessKey",
                "N": 1,
            },
            {"Type": "Microsoft Office 365", "qid": QID["Add user."], "Name": "Add user.", "N": 1},
            {
                "Type": "Microsoft Azure Active Directory",
                "qid": QID["Add service principal"],
                "Name": "Add service principal",
                "N": 1,
            },
        ],
    ),
    (
        "SELECT CASE devicetype WHEN 347 THEN 'AWS' WHEN 445 THEN 'Azure' ELSE 'Other' END AS p,"
        " COUNT(*) AS n FROM events GROUP BY p LAST 24 HOURS",
        [{"p": "AWS", "n": 3}, {"p": "Azure", "n": 3}, {"p": "Other", "n": 3}],
    ),
    # -- LIKE / ILIKE / MATCHES / IMATCHES
    ("SELECT username FROM events WHERE username LIKE 'b%'", [BOB_LOWER]),
    ("SELECT username FROM events WHERE username ILIKE 'b%'", [BOB, BOB_LOWER]),
    ("SELECT username FROM events WHERE username LIKE 'ca_ol' LAST 1 HOURS", ["carol"]),
    ("SELECT username FROM events WHERE username NOT LIKE '%@%'", ["alice", "alice"]),
    (
        "SELECT QIDNAME(qid) AS n FROM events WHERE QIDNAME(qid) ILIKE '%add user%' LAST 24 HOURS",
        ["Add user", "Add user.", "Add user"],
    ),
    ("SELECT username FROM events WHERE sourceip LIKE '10.0.0._'", ["alice", "alice"]),
    ('SELECT username FROM events WHERE UTF8(payload) LIKE \'{"operationName":"Add user"%\'', [BOB]),
    ('SELECT username FROM events WHERE UTF8(payload) LIKE \'%"eventName":"Create*%\' LAST 2 DAYS', []),
    ("SELECT username FROM events WHERE username ILIKE 'BOB@CONTOSO.COM'", [BOB, BOB_LOWER]),
    (
        "SELECT username FROM events WHERE username MATCHES '[a-z]+' LAST 24 HOURS",
        ["alice", "alice", "alice", "carol", "root", "terraform"],
    ),
    (
        "SELECT username FROM events WHERE UTF8(payload) IMATCHES '.*createuser.*' LAST 24 HOURS",
        ["alice", "terraform"],
    ),
    ("SELECT username FROM events WHERE username MATCHES 'ali'", []),
    ("SELECT username FROM events WHERE username NOT MATCHES '.*@.*'", ["alice", "alice"]),
    ("SELECT username FROM events WHERE username IMATCHES '(?<name>bob)@contoso\\.com'", [BOB, BOB_LOWER]),
    # -- IN, BETWEEN, NULL, logic, arithmetic
    ("SELECT magnitude FROM events WHERE devicetype IN (413, 445) LAST 24 HOURS", [7, 5, 8]),
    ("SELECT magnitude FROM events WHERE devicetype NOT IN (347, 445)", [1]),
    ("SELECT magnitude FROM events WHERE username IN ('carol', 'root') LAST 1 HOURS", [3, 2]),
    ("SELECT magnitude FROM events WHERE magnitude BETWEEN 4 AND 6", [6, 4, 5]),
    ("SELECT magnitude FROM events WHERE magnitude NOT BETWEEN 2 AND 6", [7, 1]),
    ("SELECT qid FROM events WHERE username IS NULL", [QID["Session Opened"]]),
    ("SELECT COUNT(*) AS n FROM events WHERE sourceip IS NOT NULL LAST 24 HOURS", [8]),
    ("SELECT magnitude FROM events WHERE magnitude = 1 OR magnitude = 7 AND username = 'nobody'", [1]),
    ("SELECT magnitude FROM events WHERE (magnitude = 1 OR magnitude = 7) AND sourceip IS NOT NULL", [1, 7]),
    ("SELECT magnitude FROM events WHERE NOT magnitude > 4", [4, 1]),
    ("SELECT magnitude FROM events WHERE magnitude <> 6 AND magnitude != 4", [7, 5, 1]),
    ("SELECT magnitude * 10 + 1 AS m FROM events WHERE username = 'carol' LAST 1 HOURS", [31]),
    ("SELECT magnitude % 4 AS r FROM events WHERE magnitude = 7", [3]),
    ("SELECT (NOW() - starttime) / 60000 AS mins FROM events WHERE username = 'carol' LAST 1 HOURS", [10]),
    ("SELECT username FROM events WHERE starttime > NOW() - 150000", ["alice", "alice", None]),
    ("SELECT magnitude ^ 2 AS sq FROM events WHERE magnitude = 7", [49.0]),
    ("SELECT -magnitude AS neg FROM events WHERE magnitude = 7", [-7]),
    ("SELECT logsourceid FROM events WHERE logsourceid = '4'", [4]),
    ("SELECT COUNT(*) AS n FROM events WHERE username = ''' OR 1=1 --' LAST 2 DAYS", [0]),
    ("SELECT qid FROM events WHERE hasoffense", [QID["CreateUser"], QID["CreateAccessKey"]]),
    # -- CASE
    (
        "SELECT username, CASE WHEN magnitude >= 6 THEN 'high' WHEN magnitude >= 4 THEN 'medium'"
        " ELSE 'low' END AS level FROM events",
        [
            {"username": "alice", "level": "high"},
            {"username": "alice", "level": "medium"},
            {"username": BOB, "level": "high"},
            {"username": BOB_LOWER, "level": "medium"},
            {"username": None, "level": "low"},
        ],
    ),
    ("SELECT CASE WHEN magnitude > 6 THEN 'x' END AS c FROM events", ["x", None, None, None, None]),
    (
        "SELECT CASE WHEN LOWER(QIDNAME(qid)) LIKE '%createuser%' THEN 'AWS'"
        " WHEN LOWER(QIDNAME(qid)) LIKE '%add user%' THEN 'AzureAD' ELSE 'Unknown' END AS cloud_platform"
        " FROM events WHERE magnitude >= 5 LAST 24 HOURS",
        ["AWS", "AzureAD", "Unknown", "AzureAD"],
    ),
    # -- custom properties
    (
        'SELECT "Account Name" FROM events WHERE "Account Name" IS NOT NULL LAST 24 HOURS',
        [{"Account Name": v} for v in ("svc-backup", "svc-backup", "eve.external", "temp1", "app-deployer")],
    ),
    (
        'SELECT "Account Name" AS target FROM events WHERE "Account Name" LIKE \'svc%\'',
        ["svc-backup", "svc-backup"],
    ),
    (
        'SELECT "Account Name" AS a, COUNT(*) AS n FROM events WHERE "Account Name" IS NOT NULL'
        ' GROUP BY "Account Name" ORDER BY n DESC, a LAST 24 HOURS',
        [
            {"a": "svc-backup", "n": 2},
            {"a": "app-deployer", "n": 1},
            {"a": "eve.external", "n": 1},
            {"a": "temp1", "n": 1},
        ],
    ),
    # -- functions
    (
        "SELECT DATEFORMAT(starttime, 'yyyy-MM-dd HH:mm:ss') AS t FROM events WHERE username = 'carol'"
        " LAST 1 HOURS",
        ["2023-11-14 22:04:00"],
    ),
    (
        "SELECT DATEFORMAT(starttime, 'MMM dd hh:mm a') AS t FROM events WHERE username = 'carol'"
        " LAST 1 HOURS",
        ["Nov 14 10:04 PM"],
    ),
    (
        "SELECT DATEFORMAT(starttime, 'EEEE, d MMMM yyyy ''at'' HH:mm:ss.SSS XXX') AS t FROM events"
        " WHERE magnitude = 7",
        ["Tuesday, 14 November 2023 at 22:11:00.000 Z"],
    ),
    ("SELECT NOW() AS n FROM events WHERE magnitude = 7", [NOW]),
    ("SELECT COUNT(*) AS n FROM events WHERE starttime >= PARSEDATETIME('1 hour ago') LAST 1 DAYS", [7]),
    (
        "SELECT LOWER(username) AS l, UPPER(username) AS u FROM events WHERE magnitude = 7",
        [{"l": BOB_LOWER, "u": "BOB@CONTOSO.COM"}],
    ),
    ("SELECT STR(magnitude) AS s, LONG('42') AS l FROM events WHERE magnitude = 7", [{"s": "7", "l": 42}]),
    ("SELECT LONG(sourceip) AS ip FROM events WHERE username = 'root' LAST 1 HOURS", [167838211]),
    (
        "SELECT UTF8(payload) AS p FROM events WHERE username = 'root' LAST 1 HOURS",
        ["session \ufffd\ufffd opened"],
    ),
    ("SELECT payload FROM events WHERE username = 'carol' LAST 1 HOURS", ['{"Operation":"Add user."}']),
    ("SELECT STRLEN(username) AS n FROM events WHERE magnitude = 7", [15]),
    (
        "SELECT CONCAT(username, ' from ', sourceip) AS c FROM events WHERE magnitude = 7",
        ["Bob@Contoso.com from 192.168.1.20"],
    ),
    (
        "SELECT CONCAT(CATEGORYNAME(highlevelcategory), '.', CATEGORYNAME(category)) AS c FROM events"
        " WHERE magnitude = 7",
        ["Authentication.User Account Added"],
    ),
    (
        "SELECT username FROM events WHERE REFERENCESETCONTAINS('Allowlist', username) LAST 24 HOURS",
        ["alice", "alice", "alice"],
    ),
    (
        "SELECT username FROM events WHERE NOT REFERENCESETCONTAINS('Allowlist', username)"
        " AND devicetype = 347 LAST 24 HOURS",
        ["terraform"],
    ),
    ("SELECT COUNT(*) AS n FROM events WHERE REFERENCESETCONTAINS('NoSuchSet', username)", [0]),
    ("SELECT REFERENCEMAP('Owners', \"Account Name\") AS owner FROM events WHERE magnitude = 6", ["team-a"]),
    ("SELECT qid FROM events WHERE INOFFENSE(1) LAST 24 HOURS", [QID["CreateUser"], QID["CreateAccessKey"]]),
    ("SELECT qid FROM events WHERE INOFFENSE(2) LAST 24 HOURS", []),
    (
        "SELECT username FROM events WHERE INCIDR('10.0.0.0/8', sourceip) LAST 24 HOURS",
        ["alice", "alice", "root", "terraform", None],
    ),
    # -- subqueries
    (
        "SELECT qid FROM events WHERE username IN (SELECT username FROM events WHERE magnitude = 6)"
        " LAST 24 HOURS",
        [QID["CreateUser"], QID["CreateAccessKey"], QID["Add user"]],
    ),
    (
        "SELECT username FROM events WHERE sourceip IN"
        " (SELECT sourceip FROM events WHERE username = 'terraform' LAST 2 HOURS) LAST 2 DAYS",
        ["terraform"],
    ),
    (
        "SELECT COUNT(*) AS n FROM events WHERE devicetype IN"
        " (SELECT devicetype FROM events WHERE magnitude >= 8 GROUP BY devicetype LAST 2 DAYS) LAST 2 DAYS",
        [7],
    ),
    (
        "SELECT username FROM events WHERE username NOT IN (SELECT username FROM events"
        " WHERE devicetype = 347 AND username IS NOT NULL LAST 1 DAYS) LAST 1 HOURS",
        [BOB, BOB_LOWER, "carol", "root"],
    ),
    (
        "SELECT username FROM (SELECT * FROM events WHERE username IS NOT NULL LAST 60 MINUTES)",
        ["alice", "alice", BOB, BOB_LOWER, "carol", "root"],
    ),
    (
        "SELECT COUNT(*) AS n, SUM(c) AS s FROM (SELECT username, eventcount AS c FROM events LAST 24 HOURS)",
        [{"n": 9, "s": 14}],
    ),
    (
        "SELECT u FROM (SELECT username AS u, COUNT(*) AS n FROM events GROUP BY username LAST 24 HOURS)"
        " WHERE n > 1",
        ["alice"],
    ),
    # -- ORDER BY / LIMIT
    ("SELECT magnitude FROM events ORDER BY magnitude DESC LIMIT 2 LAST 24 HOURS", [8, 7]),
    ("SELECT magnitude FROM events ORDER BY magnitude ASC LIMIT 3 LAST 2 DAYS", [1, 2, 3]),
    (
        "SELECT DATEFORMAT(starttime, 'HH:mm') AS t FROM events ORDER BY starttime DESC",
        ["22:14", "22:13", "22:12", "22:11", "22:10"],
    ),
    ("SELECT username FROM events LIMIT 0", []),
]


def _ordered(query: str) -> bool:
    depth = 0
    upper = query.upper()
    for i, ch in enumerate(upper):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and upper.startswith("ORDER BY", i):
            return True
    return False


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> AqlEngine:
    store = build_store(tmp_path_factory.mktemp("aql") / "events.db")
    return AqlEngine(store, tz=dt.UTC)


def run(engine: AqlEngine, text: str) -> list[dict]:
    return engine.execute(engine.prepare(text, NOW))


def test_tables_are_large_enough() -> None:
    assert len(VALID) >= 80
    assert len(INVALID) >= 30


def _query_id(value: object) -> str:
    return value if isinstance(value, str) else ""


@pytest.mark.parametrize(("query", "expected"), VALID, ids=_query_id)  # VALID grows below (seed rows)
def test_valid_query(engine: AqlEngine, query: str, expected: list) -> None:
    assert engine.validate(query, NOW) == []
    prepared = engine.prepare(query, NOW)
    rows = engine.execute(prepared)
    json.dumps(rows, allow_nan=False)  # results travel as JSON
    for row in rows:
        assert list(row) == prepared.columns
    if expected and not isinstance(expected[0], dict):
        assert len(prepared.columns) == 1
        got = [row[prepared.columns[0]] for row in rows]
    else:
        got = rows
    if _ordered(query):
        assert got == expected
    else:
        assert sorted(map(repr, got)) == sorted(map(repr, expected))


SEED_QUERY = """SELECT
  DATEFORMAT(starttime, 'yyyy-MM-dd HH:mm:ss') AS event_time,
  CATEGORYNAME(category) AS event_category,
  LOGSOURCENAME(logsourceid) AS log_source,
  username AS actor,
  "Account Name" AS target_account,
  sourceip AS source_ip,
  CASE
    WHEN LOWER(QIDNAME(qid)) LIKE '%createuser%' OR LOWER(QIDNAME(qid)) LIKE '%createrole%' THEN 'AWS'
    WHEN LOWER(QIDNAME(qid)) LIKE '%add user%' OR LOWER(QIDNAME(qid)) LIKE '%add service principal%'
      THEN 'AzureAD'
    WHEN LOWER(QIDNAME(qid)) LIKE '%new-msoluser%' OR LOWER(QIDNAME(qid)) LIKE '%add user.%' THEN 'O365'
    ELSE 'Unknown'
  END AS cloud_platform,
  CASE
    WHEN LOWER(QIDNAME(qid)) LIKE '%service principal%' OR LOWER(QIDNAME(qid)) LIKE '%role%'
      OR LOWER(QIDNAME(qid)) LIKE '%application%' THEN 1
    ELSE 0
  END AS is_service_account
FROM events
WHERE
  LOGSOURCETYPEID IN (
    SELECT id FROM SDE_LogSourceType WHERE name LIKE '%Azure%' OR name LIKE '%AWS%'
      OR name LIKE '%Office 365%' OR name LIKE '%Microsoft 365%'
  )
  AND (
    QIDNAME(qid) ILIKE '%Add user%'
    OR QIDNAME(qid) ILIKE '%Add service principal%'
    OR QIDNAME(qid) ILIKE '%Add application%'
    OR QIDNAME(qid) ILIKE '%Add service principal credentials%'
    OR QIDNAME(qid) ILIKE '%CreateUser%'
    OR QIDNAME(qid) ILIKE '%CreateRole%'
    OR QIDNAME(qid) ILIKE '%CreateServiceLinkedRole%'
    OR QIDNAME(qid) ILIKE '%CreateVirtualMFADevice%'
    OR QIDNAME(qid) ILIKE '%New-MsolUser%'
    OR QIDNAME(qid) ILIKE '%New-AzureADUser%'
  )
  AND magnitude >= 3
  AND starttime > NOW() - 1 DAYS
ORDER BY starttime DESC"""

SEED_DAYS_FIXED = SEED_QUERY.replace("NOW() - 1 DAYS", "NOW() - 86400000") + "\nLAST 24 HOURS"

SEED_CORRECTED = (
    SEED_QUERY.replace(
        """LOGSOURCETYPEID IN (
    SELECT id FROM SDE_LogSourceType WHERE name LIKE '%Azure%' OR name LIKE '%AWS%'
      OR name LIKE '%Office 365%' OR name LIKE '%Microsoft 365%'
  )""",
        """(LOGSOURCETYPENAME(devicetype) ILIKE '%Azure%' OR LOGSOURCETYPENAME(devicetype) ILIKE '%AWS%'
    OR LOGSOURCETYPENAME(devicetype) ILIKE '%Office 365%'
    OR LOGSOURCETYPENAME(devicetype) ILIKE '%Microsoft 365%')""",
    ).replace("  AND starttime > NOW() - 1 DAYS\n", "")
    + "\nLAST 24 HOURS"
)

# (query, message fragment, line, column) -- the first error reported.
INVALID: list[tuple[str, str, int, int]] = [
    (SEED_QUERY, 'Encountered "DAYS" at line 39, column 29.', 39, 29),
    (
        "SELECT username\nFROM events\nWHERE starttime > NOW() - 1 DAYS",
        'Encountered "DAYS" at line 3, column 29.',
        3,
        29,
    ),
    ("SELECT username FROM events WHERE starttime > NOW() - 1 HOURS", 'Encountered "HOURS"', 1, 57),
    (
        SEED_DAYS_FIXED,
        'Unknown column "LOGSOURCETYPEID" (not an event field or a custom property defined on'
        " this console; the log source type column is devicetype) at line 22, column 3.",
        22,
        3,
    ),
    ("SELECT id FROM SDE_LogSourceType", '"SDE_LogSourceType" is not an Ariel database', 1, 16),
    (
        "SELECT qid FROM events WHERE devicetype IN (SELECT id FROM SDE_LogSourceType)",
        '"SDE_LogSourceType" is not an Ariel database',
        1,
        60,
    ),
    ("SELECT qid FROM events WHERE LOGSOURCETYPEID = 445", 'Unknown column "LOGSOURCETYPEID"', 1, 30),
    ("SELECT nosuchfield FROM events", 'Unknown column "nosuchfield"', 1, 8),
    ('SELECT "No Such Property" FROM events', 'Unknown column "No Such Property"', 1, 8),
    (
        "SELECT u FROM (SELECT username AS user FROM events)",
        'Unknown column "u" (not a column of the subquery)',
        1,
        8,
    ),
    ("SELECT FOO(qid) FROM events", 'Unknown function "FOO"', 1, 8),
    ("SELECT LOGSOURCEGROUPNAME(devicetype) FROM events", "not supported by the dev console", 1, 8),
    ("SELECT QIDNAME(qid, 1) FROM events", "Function QIDNAME takes 1 argument, not 2", 1, 8),
    ("SELECT QIDNAME() FROM events", "Function QIDNAME takes 1 argument, not 0", 1, 8),
    ("SELECT NOW(1) FROM events", "Function NOW takes 0 arguments, not 1", 1, 8),
    (
        "SELECT username FROM events GROUP BY sourceip",
        'GROUP BY column "sourceip" is not in the SELECT list',
        1,
        38,
    ),
    (
        "SELECT username FROM events ORDER BY magnitude",
        'ORDER BY column "magnitude" is not in the SELECT list',
        1,
        38,
    ),
    (
        "SELECT username FROM events WHERE COUNT(*) > 1",
        "Aggregate function COUNT is not allowed in WHERE",
        1,
        35,
    ),
    ("SELECT COUNT(SUM(magnitude)) FROM events", "cannot be nested in another aggregate", 1, 14),
    ("SELECT COUNT(*) AS n FROM events GROUP BY n", 'Cannot GROUP BY the aggregate "n"', 1, 43),
    ("SELECT SUM(*) FROM events", "Only COUNT accepts *", 1, 8),
    ("SELECT username FROM events LAST 24 HOURS LIMIT 5", 'Encountered "LIMIT" at line 1, column 43.', 1, 43),
    ("SELECT username FROM events LAST 24 WEEKS", 'Encountered "WEEKS"', 1, 37),
    ("SELECT username FROM events LAST 0 MINUTES", "LAST needs a whole number of MINUTES", 1, 34),
    ("SELECT username FROM events START '2023-13-45 99:00'", "Invalid START time '2023-13-45 99:00'", 1, 35),
    (
        "SELECT username FROM events START '2023-11-14 22:05Z' STOP '2023-11-14 22:04Z'",
        "The STOP time is not after the START time",
        1,
        60,
    ),
    ("SELECT username FROM events WHERE username MATCHES '(a+)+b'", "backtrack catastrophically", 1, 52),
    ("SELECT username FROM events WHERE username MATCHES '[a-'", "invalid regular expression", 1, 52),
    ("SELECT DATEFORMAT(starttime, 'yyyy-bb') FROM events", 'Illegal pattern character "b"', 1, 30),
    (
        "SELECT username FROM events WHERE username IN (SELECT username, qid FROM events)",
        "A subquery after IN must return exactly one column, not 2",
        1,
        55,
    ),
    (
        "SELECT username FROM events WHERE username IN (SELECT * FROM events)",
        "must return exactly one column, not 17",
        1,
        55,
    ),
    (
        "SELECT username FROM (SELECT username FROM events) LAST 5 MINUTES",
        "A time clause cannot follow FROM (<subquery>)",
        1,
        52,
    ),
    ("SELECT username FROM events WHERE username", "WHERE needs a condition", 1, 35),
    ("SELECT username + 1 FROM events", "Operator + needs numbers", 1, 8),
    ("SELECT REFERENCESETCONTAINS(username, 'x') FROM events", "must be a quoted reference data name", 1, 29),
    ("SELECT username FROM events WHERE INCIDR('not-a-cidr', sourceip)", "INCIDR needs a network", 1, 42),
    ("SELECT username FROM events HAVING username IS NULL", "HAVING needs GROUP BY", 1, 36),
    ("SELECT *, COUNT(*) FROM events", "SELECT * cannot be combined with GROUP BY", 1, 8),
    ("SELECT username FROM events LIMIT -1", 'Encountered "-"', 1, 35),
    ("SELECT username FROM events LIMIT 1.5", 'LIMIT must be a whole number, not "1.5"', 1, 35),
    ("SELECT username FROM events WHERE username = 'abc", "unterminated string literal", 1, 46),
    ("", 'Encountered "<EOF>" at line 1, column 1.', 1, 1),
    (
        "SELECT username FROM events WHERE sourceip = 1 ; DROP TABLE events",
        "Lexical error at line 1, column 48",
        1,
        48,
    ),
    (
        "SELECT username FROM events WHERE PARSEDATETIME('whenever') > 0",
        "PARSEDATETIME cannot read 'whenever'",
        1,
        49,
    ),
    ("SELECT username FROM simarc", '"simarc" is not an Ariel database', 1, 22),
    ("SELECT 99999999999999999999 FROM events", "The number 99999999999999999999 is out of range", 1, 8),
    (
        "SELECT username FROM events WHERE INOFFENSE(1) IN (SELECT INOFFENSE(1) FROM flows)",
        "INOFFENSE can only be used on events",
        1,
        59,
    ),
    (
        "SELECT username FROM events WHERE username LIKE 'a%' LAST 1 HOURS START '2023-11-14 22:04'",
        'Encountered "START"',
        1,
        67,
    ),
]


@pytest.mark.parametrize(("query", "message", "line", "column"), INVALID, ids=[q[:60] for q, *_ in INVALID])
def test_invalid_query(engine: AqlEngine, query: str, message: str, line: int, column: int) -> None:
    errors = engine.validate(query, NOW)
    assert errors, "expected the query to be rejected"
    first = errors[0]
    assert message in first.message
    assert (first.line, first.column) == (line, column)
    assert f"line {line}, column {column}" in first.message
    with pytest.raises(AqlError) as raised:
        engine.prepare(query, NOW)
    assert raised.value.message == first.message


def test_seed_query_reports_every_problem_once_the_syntax_error_is_fixed(engine: AqlEngine) -> None:
    messages = [e.message for e in engine.validate(SEED_DAYS_FIXED, NOW)]
    assert len(messages) == 2
    assert 'Unknown column "LOGSOURCETYPEID"' in messages[0]
    assert '"SDE_LogSourceType" is not an Ariel database' in messages[1]
    assert "line 23, column 20" in messages[1]


def _seed_row(minutes, category, source, actor, target, ip, platform, service) -> dict:
    at = dt.datetime.fromtimestamp((NOW - minutes * MINUTE) / 1000, dt.UTC)
    return {
        "event_time": at.strftime("%Y-%m-%d %H:%M:%S"),
        "event_category": category,
        "log_source": source,
        "actor": actor,
        "target_account": target,
        "source_ip": ip,
        "cloud_platform": platform,
        "is_service_account": service,
    }


_ADDED = "User Account Added"
# Events 1, 3, 4, 5, 7, 8 (event 2's CreateAccessKey matches no name, 9 is older than a day, 6 and 10
# are Linux); newest first. The seed's CASE calls O365's "Add user." AzureAD: its own bug, kept.
SEED_CORRECTED_ROWS = [
    _seed_row(1, _ADDED, CT, "alice", "svc-backup", "10.0.0.5", "AWS", 0),
    _seed_row(3, _ADDED, AZ, BOB, "eve.external", "192.168.1.20", "AzureAD", 0),
    _seed_row(4, _ADDED, AZ, BOB_LOWER, None, "192.168.1.20", "AzureAD", 1),
    _seed_row(10, _ADDED, O365, "carol", "temp1", "203.0.113.9", "AzureAD", 0),
    _seed_row(90, _ADDED, CT, "terraform", "app-deployer", "10.0.0.7", "AWS", 0),
    _seed_row(600, _ADDED, AZ, "alice", None, None, "AzureAD", 0),
]
VALID.append((SEED_CORRECTED, SEED_CORRECTED_ROWS))  # the seed's corrected form is one of the table's rows


def test_seed_query_corrected_form_runs(engine: AqlEngine) -> None:
    assert engine.validate(SEED_CORRECTED, NOW) == []
    assert run(engine, SEED_CORRECTED) == SEED_CORRECTED_ROWS


def test_reference_corrected_detection_query_runs(engine: AqlEngine) -> None:
    query = """SELECT DATEFORMAT(starttime,'yyyy-MM-dd HH:mm:ss') AS "Time",
       QIDNAME(qid) AS "Event Name", LOGSOURCETYPENAME(devicetype) AS "LS Type",
       LOGSOURCENAME(logsourceid) AS "Log Source", username, sourceip, qid, starttime
FROM events
WHERE LOGSOURCETYPENAME(devicetype) ILIKE '%Azure%'
  AND QIDNAME(qid) ILIKE '%add user%'
ORDER BY starttime DESC
LIMIT 500
LAST 24 HOURS"""
    prepared = engine.prepare(query, NOW)
    assert prepared.columns == [
        "Time",
        "Event Name",
        "LS Type",
        "Log Source",
        "username",
        "sourceip",
        "qid",
        "starttime",
    ]
    assert (prepared.start_ms, prepared.stop_ms) == (NOW - 86_400_000, NOW)
    azure = "Microsoft Azure Active Directory"
    assert engine.execute(prepared) == [
        {
            "Time": "2023-11-14 22:11:00",
            "Event Name": "Add user",
            "LS Type": azure,
            "Log Source": AZ,
            "username": BOB,
            "sourceip": "192.168.1.20",
            "qid": QID["Add user"],
            "starttime": NOW - 3 * MINUTE,
        },
        {
            "Time": "2023-11-14 12:14:00",
            "Event Name": "Add user",
            "LS Type": azure,
            "Log Source": AZ,
            "username": "alice",
            "sourceip": None,
            "qid": QID["Add user"],
            "starttime": NOW - 600 * MINUTE,
        },
    ]
