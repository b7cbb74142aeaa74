"""The Offense Summary fragment against the seeded dev console: rows for a chain offense, one line for an
offense without cloud account creations, the time-budget answer and the per-offense cache.

Expected rows come from the scenario manifest (which events each offense links, and what they are),
never from the app's own output.
"""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest

from app.aql.detection import DEFAULT_EVENT_NAMES

CREATION_NAMES = {n.lower() for names in DEFAULT_EVENT_NAMES.values() for n in names}


class FragmentParser(HTMLParser):
    """Collects the fragment's rows (cells by class), links, tags and style-bearing elements."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.links: list[dict[str, str]] = []
        self.tags: list[str] = []
        self._cell: str | None = None
        self.state = ""
        self.text = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        classes = a.get("class", "").split()
        if "caw-frag" in classes:
            self.state = a.get("data-state", "")
        if "caw-frag-row" in classes:
            self.rows.append({"detection_id": a.get("data-detection-id", "")})
        if tag == "a":
            self.links.append(a)
        cell = next((c[len("caw-frag-") :] for c in classes if c.startswith("caw-frag-")), None)
        if tag == "td" and cell:
            self._cell = cell
            self.rows[-1][cell] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell:
            self.rows[-1][self._cell] += data.strip()


@pytest.fixture
def client(client, devconsole):
    """The test client as the console proxy calls the app: with ``X-Console-Host``, so q_url_for builds
    console-proxy URLs."""
    client.environ_base["HTTP_X_CONSOLE_HOST"] = f"127.0.0.1:{devconsole.port}"
    return client


def fragment(client, offense_id: int, *, settle: bool = True) -> FragmentParser:
    """The fragment for an offense; with ``settle``, asked again while it answers "still searching" (what
    the Offense Summary page does on a reload), for at most a minute."""
    deadline = time.monotonic() + 60
    while True:
        parsed = _fragment_once(client, offense_id)
        if not settle or parsed.state != "searching" or time.monotonic() > deadline:
            return parsed
        time.sleep(0.5)


def _fragment_once(client, offense_id: int) -> FragmentParser:
    response = client.get(f"/offense/fragment/{offense_id}")
    assert response.status_code == 200, response.data
    body = response.get_json()
    assert set(body) == {"html"}
    parser = FragmentParser()
    parser.feed(body["html"])
    parser.html = body["html"]  # type: ignore[attr-defined]
    return parser


def manifest_offense(devconsole, offense_id: int) -> dict:
    return next(o for o in devconsole.scenario["offenses"] if o["id"] == offense_id)


def expected_creations(devconsole, offense_id: int) -> list[dict]:
    """The offense's events that are in the detection's event set, oldest first (from the manifest)."""
    ids = set(manifest_offense(devconsole, offense_id)["event_ids"])
    events = [
        dict(e, item=it)
        for it in devconsole.scenario["items"]
        for e in it["events"]
        if e["event_id"] in ids and e["event_name"].lower() in CREATION_NAMES
    ]
    return sorted(events, key=lambda e: e["starttime"])


def chain_kinds(devconsole, event_id: int) -> set[str]:
    """Kinds of the manifest's chains joined to this event, directly or through shared events (the app
    merges overlapping chains into one and shows the most serious kind)."""
    chains = devconsole.scenario["chains"]
    events, kinds, grew = {event_id}, set(), True
    while grew:
        grew = False
        for c in chains:
            if events & set(c["event_ids"]) and not set(c["event_ids"]) <= events:
                events |= set(c["event_ids"])
                grew = True
            if events & set(c["event_ids"]):
                kinds.add(c["kind"])
    return kinds


@pytest.mark.parametrize("offense_id", [1, 2, 3])
def test_chain_offense_lists_its_creations_with_links(
    refreshed_app, client, login, devconsole, offense_id: int
) -> None:
    login(client, "analyst")
    expected = expected_creations(devconsole, offense_id)
    assert expected, "the scenario's chain offenses hold creation events"
    frag = fragment(client, offense_id)
    assert frag.state == "rows"
    assert [r["target"] for r in frag.rows] == [e["target_account"] for e in expected]
    assert [r["platform"] for r in frag.rows] == [e["item"]["platform"] for e in expected]
    # The app shows the payload's full identity (an AWS role session ARN) where QRadar's username is short.
    for row, event in zip(frag.rows, expected, strict=True):
        assert row["actor"] == event["item"]["actor"] or row["actor"].endswith("/" + event["item"]["actor"])
    assert [r["time"] for r in frag.rows] == [
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["starttime"] / 1000)) for e in expected
    ]
    assert [r["service"] == "yes" for r in frag.rows] == [e["is_service_account"] for e in expected]
    # Every row is a stored detection in a chain (the scenario puts these offenses' creations in chains).
    for row, event in zip(frag.rows, expected, strict=True):
        assert row["detection_id"].isdigit()
        assert chain_kinds(devconsole, event["event_id"]), event
        assert row["chain"].startswith("chain: ")
        assert row["chain"].removeprefix("chain: ") in chain_kinds(devconsole, event["event_id"])
    # Links: the platform's playbook section and the detection in the tab, through the console proxy.
    proxy = f"https://127.0.0.1:{devconsole.port}/console/plugins/{devconsole.app_id}/app_proxy"
    playbooks = [a["href"] for a in frag.links if "caw-frag-playbook" in a.get("class", "")]
    detections = [a["href"] for a in frag.links if "caw-frag-detection" in a.get("class", "")]
    assert len(playbooks) == len(detections) == len(expected)
    anchors = {
        "AWS": "#platform-aws",
        "Azure AD": "#platform-azure-ad",
        "Office 365": "#platform-office-365",
        "GCP": "#platform-gcp",
    }
    for href, det_href, row, event in zip(playbooks, detections, frag.rows, expected, strict=True):
        assert href.startswith(proxy + "/playbook/?")
        assert f"offense={offense_id}" in href and f"detection={row['detection_id']}" in href
        assert href.endswith(anchors[event["item"]["platform"]])
        assert det_href == f"{proxy}/tab/?detection={row['detection_id']}"


def test_offense_without_cloud_account_events_is_one_line(refreshed_app, client, login, devconsole) -> None:
    (no_cloud,) = [o["id"] for o in devconsole.scenario["offenses"] if not o["has_cloud_account_events"]]
    login(client, "analyst")
    frag = fragment(client, no_cloud)
    assert frag.state == "none"
    assert frag.rows == []
    assert "No cloud account creation events in this offense." in "".join(frag.text)


def test_fragment_html_cannot_restyle_the_page_and_escapes_log_values(
    refreshed_app, client, login, devconsole
) -> None:
    login(client, "analyst")
    for offense in devconsole.scenario["offenses"]:
        frag = fragment(client, offense["id"])
        assert not {"style", "link", "script", "iframe", "img"} & set(frag.tags)
        # Every class is ours; no bare selectors QRadar's CSS or ours could share.
        classes = re.findall(r'class="([^"]*)"', frag.html)
        assert classes and all(c.startswith("caw-frag") for cl in classes for c in cl.split())


def test_session_required_then_unknown_and_malformed_offense_ids(refreshed_app, client, login) -> None:
    assert client.get("/offense/fragment/2").status_code == 401
    assert client.get("/offense/playbook_action?context=2").status_code == 401
    login(client, "analyst")
    bad = client.get("/offense/fragment/1%20OR%201=1")
    assert bad.status_code == 400
    assert bad.get_json()["error"]["code"] == "bad_offense_id"
    missing = fragment(client, 99999)
    assert missing.state == "error"
    assert "no offense 99999" in "".join(missing.text)


def test_answer_is_cached_per_offense(refreshed_app, client, login, devconsole) -> None:
    login(client, "analyst")
    first = fragment(client, 2)
    assert first.state == "rows"
    # QRadar's search API now fails: a second answer must come from the store without a new search.
    rule = devconsole.faults.unavailable("/api/ariel/searches*", count=50)
    try:
        again = fragment(client, 2)
    finally:
        devconsole.faults.clear()
    assert rule
    assert again.state == "rows"
    assert [r["target"] for r in again.rows] == [r["target"] for r in first.rows]


def test_slow_search_answers_still_searching_then_the_rows(refreshed_app, client, login, devconsole) -> None:
    from app import settings
    from app.store.db import get_db

    with refreshed_app.app_context():
        settings.update(get_db(), {"offense_fragment_budget_s": 1}, actor="test")
    login(client, "analyst")
    devconsole.faults.slow_searches(4)
    try:
        started = fragment(client, 3, settle=False)
    finally:
        devconsole.faults.clear()
    assert started.state == "searching"
    assert "Still searching" in "".join(started.text)
    (open_link,) = [a["href"] for a in started.links if "caw-frag-open" in a.get("class", "")]
    assert open_link.endswith("/tab/?offense=3")
    # The same search finishes later; the next request picks its rows up (no second search).
    later = fragment(client, 3)
    assert later.state == "rows"
    expected = expected_creations(devconsole, 3)
    assert [r["target"] for r in later.rows] == [e["target_account"] for e in expected]


def test_playbook_action_returns_the_offense_playbook_url(refreshed_app, client, login, devconsole) -> None:
    login(client, "analyst")
    response = client.get("/offense/playbook_action?context=3")
    assert response.status_code == 200
    body = response.get_json()
    proxy = f"https://127.0.0.1:{devconsole.port}/console/plugins/{devconsole.app_id}/app_proxy"
    assert body == {"offense_id": 3, "url": f"{proxy}/playbook/?offense=3"}
    assert client.get("/offense/playbook_action?context=abc").status_code == 400
    assert client.get("/offense/playbook_action").status_code == 400


def test_hostile_values_render_as_text(offline_app) -> None:
    from app.offense import fragment as frag_mod
    from app.offense.views import render_fragment

    hostile = {
        "actor": "<img src=x onerror=alert(1)>",
        "target": "</td></tr></table><script>alert(2)</script>",
        "platform": "<b>AWS</b>",
        "event_name": "CreateUser",
        "event_time": 1_764_000_000_000,
        "is_service_account": False,
        "detection_id": None,
        "chain_kind": "<i>x</i>",
    }
    answer = frag_mod.FragmentAnswer(42, "rows", [hostile])
    headers = {"X-Console-Host": "qradar.example"}
    with offline_app.test_request_context("/offense/fragment/42", headers=headers):
        html_text = render_fragment(answer)
        error_text = render_fragment(
            frag_mod.FragmentAnswer(42, "error", message="<script>alert(3)</script>")
        )
    parsed = FragmentParser()
    parsed.feed(html_text)
    assert not {"img", "script", "b", "i"} & set(parsed.tags)
    assert parsed.rows[0]["actor"] == hostile["actor"] and parsed.rows[0]["target"] == hostile["target"]
    assert parsed.rows[0]["chain"] == "chain: <i>x</i>"
    # Unknown platform: the playbook link has no section anchor; it still goes through the console proxy.
    (playbook,) = [a["href"] for a in parsed.links if "caw-frag-playbook" in a.get("class", "")]
    assert playbook == "https://qradar.example/console/plugins/1101/app_proxy/playbook/?offense=42"
    err = FragmentParser()
    err.feed(error_text)
    assert "script" not in err.tags and "<script>alert(3)</script>" in "".join(err.text)


def test_hanging_console_does_not_hold_the_fragment(refreshed_app, client, login, devconsole) -> None:
    from app import settings
    from app.store.db import get_db

    with refreshed_app.app_context():
        settings.update(get_db(), {"offense_fragment_budget_s": 1}, actor="test")
    login(client, "analyst")
    fragment(client, 2)  # the user's session is now known, so only the offense call can hang
    devconsole.faults.hang("/api/siem/offenses/*", seconds=30, count=5)
    try:
        answer = fragment(client, 6, settle=False)
    finally:
        devconsole.faults.clear()
    # Bounded by the budget: QRadar "did not answer" instead of the offense's rows 30 s later.
    assert answer.state == "error"
    assert "not reachable" in "".join(answer.text)
    # Nothing was cached for the offense, so once QRadar answers again the rows come.
    assert fragment(client, 6).state == "rows"


def test_a_hanging_column_lookup_is_bounded_by_the_budget(refreshed_app, client, login, devconsole) -> None:
    """Every QRadar call the fragment makes shares its budget, the column lookup included: when it hangs,
    the search still starts with the configured property and the rows come."""
    from app import settings
    from app.qradar import reset_gateway
    from app.store.db import get_db

    with refreshed_app.app_context():
        settings.update(get_db(), {"offense_fragment_budget_s": 2}, actor="test")
    login(client, "analyst")
    fragment(client, 2)  # the user's session is now known
    with refreshed_app.app_context():
        reset_gateway()  # a new gateway: its column list is not cached yet
    devconsole.faults.hang("/api/ariel/databases/*", seconds=600, count=5)
    started = time.monotonic()
    try:
        first = fragment(client, 1, settle=False)
    finally:
        devconsole.faults.clear()
    assert time.monotonic() - started < 2 + 3  # the budget, the floor of the calls after it, slack
    assert first.state in ("searching", "rows")
    expected = expected_creations(devconsole, 1)
    later = fragment(client, 1)
    assert later.state == "rows"
    assert [r["target"] for r in later.rows] == [e["target_account"] for e in expected]


def test_a_search_qradar_forgot_is_started_again(refreshed_app, client, login) -> None:
    from app.store import offense_cache
    from app.store.db import get_db

    with refreshed_app.app_context():
        offense_cache.start(
            get_db(),
            3,
            search_id="no-such-search",
            offense_start=0,
            offense_updated=0,
            now_ms=int(time.time() * 1000),
        )
    login(client, "analyst")
    assert fragment(client, 3).state == "rows"
