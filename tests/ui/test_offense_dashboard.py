"""Browser tests through the dev console's own pages: the Offense Summary page with the app's fragment and
the "Cloud account playbook" GUI action, the dashboard with the app's item, and the playbook's coverage
check. Expected values come from the scenario manifest."""

from __future__ import annotations

import time

import pytest

from app.aql.detection import DEFAULT_EVENT_NAMES
from tests.ui.conftest import screenshot

CREATION_NAMES = {n.lower() for names in DEFAULT_EVENT_NAMES.values() for n in names}
ANCHORS = {
    "AWS": "#platform-aws",
    "Azure AD": "#platform-azure-ad",
    "Office 365": "#platform-office-365",
    "GCP": "#platform-gcp",
}


def offense_url(devconsole, offense_id: int) -> str:
    return (
        f"{devconsole.base_url.rstrip('/')}/console/do/sem/offensesummary?appName=Sem"
        f"&pageId=OffenseSummary&summaryId={offense_id}"
    )


def expected_rows(devconsole, offense_id: int) -> list[dict]:
    offense = next(o for o in devconsole.scenario["offenses"] if o["id"] == offense_id)
    ids = set(offense["event_ids"])
    rows = [
        dict(e, platform=it["platform"])
        for it in devconsole.scenario["items"]
        for e in it["events"]
        if e["event_id"] in ids and e["event_name"].lower() in CREATION_NAMES
    ]
    return sorted(rows, key=lambda e: e["starttime"])


def open_offense(session, offense_id: int, *, settle: bool = True):
    """The Offense Summary page; with ``settle``, reloaded while the fragment says "still searching" (its
    search keeps running and the next load shows the rows), for at most a minute."""
    page = session.page
    deadline = time.monotonic() + 60
    while True:
        page.goto(offense_url(session.devconsole, offense_id))
        page.wait_for_selector("body[data-fragments='done']", timeout=60_000)
        state = page.locator(".fragment .caw-frag").get_attribute("data-state")
        if not settle or state != "searching" or time.monotonic() > deadline:
            return page
        time.sleep(1)


def test_fragment_for_a_seeded_chain_offense(as_user, devconsole) -> None:
    session = as_user("analyst")
    page = open_offense(session, 2)
    frag = page.locator(".fragment .caw-frag")
    assert frag.get_attribute("data-state") == "rows"
    expected = expected_rows(devconsole, 2)
    rows = frag.locator("tr.caw-frag-row")
    assert rows.count() == len(expected)
    assert [t.strip() for t in rows.locator(".caw-frag-target").all_inner_texts()] == [
        e["target_account"] for e in expected
    ]
    assert [t.strip() for t in rows.locator(".caw-frag-platform").all_inner_texts()] == [
        e["platform"] for e in expected
    ]
    assert all(t.strip().startswith("chain: ") for t in rows.locator(".caw-frag-chain").all_inner_texts())
    # The fragment's own box keeps its styles inline; QRadar's page title keeps its font.
    title_font = page.locator("h1").evaluate("el => getComputedStyle(el).fontSize")
    assert frag.evaluate("el => el.getAttribute('style')").startswith("all:initial")
    screenshot(page, "offense-2-fragment")

    playbook_links = rows.locator("a.caw-frag-playbook")
    first_href = playbook_links.first.get_attribute("href")
    assert first_href.startswith(session.proxy_root + "/playbook/?")
    assert first_href.endswith(ANCHORS[expected[0]["platform"]])
    detection_href = rows.locator("a.caw-frag-detection").first.get_attribute("href")
    assert detection_href.startswith(session.proxy_root + "/tab/?detection=")
    with page.expect_popup() as popup_info:
        playbook_links.first.click()
    playbook = popup_info.value
    playbook.wait_for_load_state()
    assert playbook.locator(ANCHORS["AWS"]).is_visible()
    assert playbook.locator(".caw-pb-target").inner_text().strip() == expected[0]["target_account"]
    assert page.locator("h1").evaluate("el => getComputedStyle(el).fontSize") == title_font
    screenshot(playbook, "playbook-from-offense-2")


def test_fragment_for_an_offense_without_cloud_account_events(as_user, devconsole) -> None:
    (no_cloud,) = [o["id"] for o in devconsole.scenario["offenses"] if not o["has_cloud_account_events"]]
    page = open_offense(as_user("analyst"), no_cloud)
    frag = page.locator(".fragment .caw-frag")
    assert frag.get_attribute("data-state") == "none"
    assert frag.locator("tr").count() == 0
    assert "No cloud account creation events in this offense." in frag.inner_text()


@pytest.fixture
def slow_fragment(tab_env, devconsole):
    """A one-second fragment budget and slow Ariel searches; both undone afterwards."""
    admin = tab_env.api("admin")
    url = tab_env.live_app.proxy_url("api/settings")
    assert admin.put(url, json={"offense_fragment_budget_s": 1}, timeout=30).status_code == 200
    devconsole.faults.slow_searches(8)
    try:
        yield
    finally:
        devconsole.faults.clear()
        admin.put(url, json={"offense_fragment_budget_s": 4}, timeout=30)


def test_fragment_past_its_time_budget_says_still_searching(as_user, devconsole, slow_fragment) -> None:
    session = as_user("analyst")
    offense_id = 5  # not shown by any other browser test, so nothing is cached for it yet
    assert expected_rows(devconsole, offense_id)
    page = open_offense(session, offense_id, settle=False)
    frag = page.locator(".fragment .caw-frag")
    assert frag.get_attribute("data-state") == "searching"
    assert "Still searching" in frag.inner_text()
    link = frag.locator("a.caw-frag-open")
    assert link.inner_text().strip() == "open in the app"
    assert link.get_attribute("href") == f"{session.proxy_root}/tab/?offense={offense_id}"
    screenshot(page, "offense-5-still-searching")


def test_gui_action_opens_the_playbook_for_the_offense(as_user, devconsole) -> None:
    session = as_user("analyst")
    page = open_offense(session, 3)
    with page.expect_popup() as popup_info:
        page.click("#gui-action-cloudAccountPlaybookAction")
    playbook = popup_info.value
    playbook.wait_for_load_state()
    assert playbook.url.startswith(session.proxy_root + "/playbook/?offense=3")
    expected = expected_rows(devconsole, 3)
    assert playbook.locator(".caw-pb-target").inner_text().strip() == expected[0]["target_account"]
    commands = playbook.locator(".caw-pb-command[data-shell='powershell'] code").all_inner_texts()
    assert any(expected[0]["target_account"] in c for c in commands)


def test_dashboard_item_renders_on_the_console_dashboard(as_user, tab_env) -> None:
    session = as_user("analyst")
    page = session.page
    page.goto(session.devconsole.base_url.rstrip("/") + "/console/dashboard")
    page.wait_for_selector("body[data-dashboard='done']", timeout=60_000)
    section = page.locator("section.dashboard-item")
    assert section.get_attribute("data-state") == "loaded"
    assert section.locator(".item-title").inner_text() == "Cloud account creations (last 24 h)"
    item = section.locator(".caw-dash")
    shown = {
        p.get_attribute("data-platform"): int(p.locator(".caw-dash-count").inner_text())
        for p in item.locator("tr.caw-dash-platform").all()
    }
    series = tab_env.get("analyst", "api/pulse/timeseries")
    for platform, count in shown.items():
        assert count >= sum(point[platform] for point in series)
    assert sum(shown.values()) > 0
    assert item.locator("a.caw-dash-open").get_attribute("href") == session.proxy_root + "/tab/"
    screenshot(page, "dashboard-item")


def test_coverage_check_in_the_playbook(as_user) -> None:
    session = as_user("analyst")
    page = session.open_app("/playbook/#validation")
    page.select_option("#caw-pb-window", "7d")
    page.click("button.caw-pb-coverage")
    page.wait_for_selector(".caw-pb-test[data-test='seed-3'] .caw-pb-seen[data-seen]", timeout=30_000)
    seen = {
        row.get_attribute("data-test"): row.locator(".caw-pb-seen").get_attribute("data-seen")
        for row in page.locator("tr.caw-pb-test").all()
    }
    seeded = ("seed-1", "seed-2", "seed-3", "seed-4", "art-t1136.003-1", "art-t1136.003-2", "art-t1136.003-3")
    for key in seeded:
        assert seen[key] == "true", key
    assert seen["art-t1098.003-bec"] == "false"
    screenshot(session.page, "playbook-coverage")


def test_hunting_query_runs_from_the_playbook_page(as_user, tab_env, devconsole) -> None:
    session = as_user("analyst")
    # Opened from offense 2 (the AWS chain): the AWS hunting queries are filled with its actor and target.
    page = session.open_app("/playbook/?offense=2#hunting")
    attach = next(it for it in devconsole.scenario["items"] if it["key"] == "follow-on-aws-admin-policy")
    hunt = page.locator(".caw-pb-hunt[data-query='aws-policy-attachments']")
    assert "df00tech-atomic-test-user" in hunt.locator("code.caw-pb-aql").inner_text()
    hunt.locator("button.caw-pb-run").click()
    hunt.locator(".caw-pb-count").wait_for(timeout=60_000)
    assert hunt.locator(".caw-pb-count").inner_text() == "1 event(s)"
    cells = hunt.locator(".caw-pb-result-table tbody td").all_inner_texts()
    assert attach["events"][0]["event_name"] in cells
    log_activity = hunt.locator("a.caw-pb-logactivity").get_attribute("href")
    assert log_activity.startswith("/console/do/ariel/arielSearch?")
    screenshot(session.page, "playbook-hunting-run")
    # The same query opened in the console's Log Activity finds the same event.
    session.page.goto(devconsole.base_url.rstrip("/") + log_activity)
    session.page.wait_for_selector("#results, #search-error", timeout=60_000)
    assert session.page.locator("#search-error").count() == 0
    assert attach["events"][0]["event_name"] in session.page.locator("#results tbody").inner_text()


def test_a_slow_hunt_shows_its_time_and_can_be_cancelled(as_user, tab_env, devconsole) -> None:
    session = as_user("analyst")
    page = session.open_app("/playbook/#hunting")
    hunt = page.locator(".caw-pb-hunt[data-query='gcp-keys']")
    admin = devconsole.api("admin")
    searches = devconsole.url("/api/ariel/searches")
    devconsole.faults.slow_searches(30)
    try:
        before = set(admin.get(searches, timeout=30).json())
        hunt.locator("button.caw-pb-run").click()
        running = hunt.locator(".caw-pb-running")
        # The page polls the app (each poll one status call to QRadar) and counts the seconds.
        page.wait_for_function(
            "() => /Running in QRadar… [2-9] s/.test("
            "document.querySelector(\".caw-pb-hunt[data-query='gcp-keys'] .caw-pb-running\").textContent)",
            timeout=30_000,
        )
        assert hunt.locator("button.caw-pb-run").is_disabled()
        started = set(admin.get(searches, timeout=30).json()) - before
        assert len(started) == 1, started
        running.locator("button.caw-pb-cancel").click()
        hunt.locator(".caw-pb-cancelled").wait_for(timeout=30_000)
        assert hunt.locator(".caw-pb-cancelled").inner_text() == "Cancelled."
        assert hunt.locator("button.caw-pb-run").is_enabled()
        # Stopped in QRadar, long before the slowed search would have finished.
        (search_id,) = started
        end = time.monotonic() + 15  # QRadar stops a cancelled search asynchronously
        while (status := admin.get(f"{searches}/{search_id}", timeout=30).json()["status"]) != "CANCELED":
            assert time.monotonic() < end, status
            time.sleep(0.2)
        screenshot(session.page, "playbook-hunting-cancelled")
    finally:
        devconsole.faults.clear()


def test_widget_opens_the_tab_filtered_to_its_offense_and_back(as_user, devconsole) -> None:
    """Both ways: the widget's rows name the event and link to /tab/?offense=<id>, which lists exactly the
    offense's detections under a removable chip; a detection's panel links back to QRadar's offense page."""
    offense_id = 1  # open, with creations; not offense 5, which another test needs uncached
    offense = next(o for o in devconsole.scenario["offenses"] if o["id"] == offense_id)
    assert offense["status"] == "OPEN"
    expected = expected_rows(devconsole, offense_id)
    assert expected
    session = as_user("analyst")
    page = open_offense(session, offense_id)
    frag = page.locator(".fragment .caw-frag")
    assert frag.get_attribute("data-state") == "rows"
    assert [t.strip() for t in frag.locator("tr.caw-frag-row .caw-frag-event").all_inner_texts()] == [
        e["event_name"] for e in expected
    ]
    link = frag.locator(".caw-frag-footer a.caw-frag-open")
    assert link.get_attribute("href") == f"{session.proxy_root}/tab/?offense={offense_id}"
    with page.expect_popup() as popup_info:
        link.click()
    tab = popup_info.value
    tab.wait_for_load_state()
    chip = tab.locator("#chip-offense")
    chip.wait_for(timeout=30_000)
    assert chip.inner_text().startswith(f"Offense {offense_id}")
    rows = "#detections-body tr.caw-row"
    tab.wait_for_function(
        "n => !document.querySelector('#detections[aria-busy=\"true\"]')"
        " && document.querySelectorAll('#detections-body tr.caw-row').length === n",
        arg=len(expected),
        timeout=30_000,
    )
    targets = [t.strip() for t in tab.locator(f"{rows} td[data-column='target_account']").all_inner_texts()]
    assert sorted(targets) == sorted(e["target_account"] for e in expected)
    assert f"offense={offense_id}" in tab.locator("#export-csv").get_attribute("href")
    screenshot(tab, f"tab-offense-{offense_id}")

    tab.locator(rows).first.click()
    back = tab.locator(f"#panel:not([hidden]) #link-offense-{offense_id}")
    back.wait_for(timeout=30_000)
    assert back.get_attribute("href") == offense_url(devconsole, offense_id)

    total_before = tab.locator("#page-range").inner_text()
    tab.click("#chip-offense-remove")
    chip.wait_for(state="detached", timeout=30_000)
    tab.wait_for_function(
        "n => !document.querySelector('#detections[aria-busy=\"true\"]')"
        " && document.querySelectorAll('#detections-body tr.caw-row').length > n",
        arg=len(expected),
        timeout=30_000,
    )
    assert "offense=" not in tab.url
    assert tab.locator("#page-range").inner_text() != total_before
