"""Dev console users with a restricted security profile and without Log Activity, over real HTTPS: the
restricted user's Ariel searches and offenses are filtered by their profile's log sources in the engine;
the user without Log Activity cannot search events at all; existing users see everything as before."""

from __future__ import annotations

import sqlite3

from devconsole.users import USERS

AWS_TYPE = 347
WINDOW = "LAST 30 DAYS"
AQL = f"SELECT logsourceid, devicetype, COUNT(*) AS n FROM events GROUP BY logsourceid {WINDOW}"


def log_source_types(devconsole) -> dict[int, int]:
    conn = sqlite3.connect(devconsole.data_dir / "events.db")
    try:
        return {int(i): int(t) for i, t in conn.execute("SELECT id, type_id FROM log_sources")}
    finally:
        conn.close()


def test_restricted_users_searches_see_only_their_profiles_log_sources(devconsole) -> None:
    _, everything = devconsole.run_search(AQL, user="analyst")
    _, restricted = devconsole.run_search(AQL, user="restricted")
    types = log_source_types(devconsole)
    all_types = {types[int(r["logsourceid"])] for r in everything}
    assert AWS_TYPE in all_types and len(all_types) > 1  # the scenario has more than AWS
    assert restricted and {types[int(r["logsourceid"])] for r in restricted} == {AWS_TYPE}
    aws_rows = {r["logsourceid"]: r["n"] for r in everything if types[int(r["logsourceid"])] == AWS_TYPE}
    assert {r["logsourceid"]: r["n"] for r in restricted} == aws_rows


def test_restricted_user_gets_only_offenses_with_their_log_sources(devconsole) -> None:
    admin = devconsole.api("admin").get(devconsole.url("/api/siem/offenses"), timeout=30).json()
    mine = devconsole.api("restricted").get(devconsole.url("/api/siem/offenses"), timeout=30).json()
    visible = {o["id"] for o in admin if any(ls["type_id"] == AWS_TYPE for ls in o["log_sources"])}
    assert visible and len(visible) < len(admin)
    assert {o["id"] for o in mine} == visible
    hidden = next(o["id"] for o in admin if o["id"] not in visible)
    one = devconsole.api("restricted").get(devconsole.url(f"/api/siem/offenses/{hidden}"), timeout=30)
    assert one.status_code == 404
    assert devconsole.api("analyst").get(devconsole.url(f"/api/siem/offenses/{hidden}"), timeout=30).ok


def test_user_without_log_activity_cannot_search_events(devconsole) -> None:
    api = devconsole.api("nologs")
    created = api.post(devconsole.url("/api/ariel/searches"), params={"query_expression": AQL}, timeout=30)
    assert created.status_code == 403, created.text
    assert api.get(devconsole.url("/api/siem/offenses"), timeout=30).status_code == 200
    roles = api.get(devconsole.url("/api/config/access/user_roles"), params={"current_user_role": "true"})
    assert [c["name"] for c in roles.json()[0]["capabilities"]] == ["SEM"]


def test_new_users_have_the_documented_profiles() -> None:
    assert USERS["restricted"].security_profile.log_source_type_ids == (AWS_TYPE,)
    assert "EVENTVIEWER" in USERS["restricted"].role.capabilities
    assert not USERS["nologs"].has_capability("EVENTVIEWER")
    for name in ("admin", "tuner1", "tuner2", "analyst", "service"):
        assert USERS[name].security_profile.log_source_type_ids is None
