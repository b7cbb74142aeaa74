"""The console tab in Debian's chromium, through the dev console's console page and app proxy.

Each test's browser pages are guarded (tests/ui/conftest.py): a dialog, a request that leaves 127.0.0.1,
a failed request or an uncaught script error fails the test.
"""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from app.aql.detection import DEFAULT_EVENT_NAMES
from tests.ui.conftest import (
    FORMULA_ACTOR,
    FORMULA_TARGET,
    XSS_ACTOR,
    XSS_TARGET,
    screenshot,
)

pytestmark = pytest.mark.ui

ROW = "#detections-body tr.caw-row"


def rows_text(frame, column: str) -> list[str]:
    return [t.strip() for t in frame.locator(f"{ROW} td[data-column='{column}']").all_inner_texts()]


def wait_rows(frame, predicate, timeout_s: float = 20.0) -> None:
    """Wait until the table's rows satisfy ``predicate(frame)`` (the table reloads asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if frame.locator("#detections[aria-busy='true']").count() == 0 and predicate(frame):
            return
        time.sleep(0.1)
    raise AssertionError("the table did not reach the expected state")


def tick(frame, checkbox_id: str, on: bool = True) -> None:
    """Tick a Carbon checkbox the way a user does: by its label (Carbon hides the input itself)."""
    if frame.locator(f"#{checkbox_id}").is_checked() != on:
        frame.locator(f"label[for='{checkbox_id}']").click()
    assert frame.locator(f"#{checkbox_id}").is_checked() == on


def page_range(frame) -> tuple[int, int, int]:
    text = frame.locator("#page-range").inner_text()
    first, last, total = map(int, re.match(r"(\d+)–(\d+) of (\d+)", text).groups())
    return first, last, total


def api_total(tab_env, user: str = "admin", **filters) -> int:
    return tab_env.get(user, "api/detections", limit=1, **filters)["total"]


def page_filters(frame) -> dict[str, str]:
    """The filters the page sent (read from its CSV link, which carries the same query as the table)."""
    href = frame.locator("#export-csv").get_attribute("href")
    query = parse_qs(urlsplit(href).query)
    return {k: v[0] for k, v in query.items() if k not in ("columns", "tz")}


def detection_by_target(tab_env, target: str) -> dict:
    items = tab_env.get("admin", "api/detections", q=target, limit=50)["items"]
    found = [d for d in items if d["target_account"] == target]
    assert found, f"no detection for target {target!r}"
    return found[0]


def test_tab_loads_with_the_seeded_detections(as_user, tab_env) -> None:
    analyst = as_user("analyst")
    frame = analyst.open_console()
    first, last, total = page_range(frame)
    filters = page_filters(frame)
    assert filters["suppressed"] == "false" and int(filters["end"]) - int(filters["start"]) == 86_400_000
    total_default_view = api_total(tab_env, "analyst", **filters)
    assert total == total_default_view > 0
    assert (first, last) == (1, min(50, total))
    assert frame.locator(ROW).count() == last
    # every visible column of the seed, plus chain and triage
    headers = frame.locator("#detections-head th").all_inner_texts()
    for label in (
        "Time",
        "Category",
        "Log source",
        "Actor",
        "Target account",
        "Source IP",
        "Cloud platform",
        "Service account",
        "Chain",
        "Triage",
    ):
        assert any(label in h for h in headers), (label, headers)
    # times carry an explicit zone (the browser's: Europe/Berlin in this context)
    assert all(t.endswith("Europe/Berlin") for t in rows_text(frame, "event_time"))
    # the overview: a total that is the sum of its platforms, a stacked chart, top initiators
    # (its figures against the store are checked in tests/app/tab/test_tab_api.py)
    frame.wait_for_selector("#overview-tiles .caw-kpi")
    values = [int(v) for v in frame.locator("#overview-tiles .caw-kpi__value").all_inner_texts()]
    labels = frame.locator("#overview-tiles .caw-kpi__label").all_inner_texts()
    by_label = dict(zip(labels, values, strict=True))
    platform_sum = sum(
        by_label.get(p, 0) for p in ("AWS", "Azure AD", "Office 365", "GCP", "Google Workspace")
    )
    assert by_label["Cloud accounts created"] == platform_sum > 0
    legend = frame.locator("#timeline-legend").inner_text()
    assert all(p in legend for p in ("AWS", "Azure AD") if by_label.get(p))
    assert frame.locator("#timeline svg rect").count() > 0
    assert frame.locator("#timeline svg rect title").count() == frame.locator("#timeline svg rect").count()
    assert frame.locator("#top-initiators li").count() > 0
    screenshot(analyst.page, "console-tab")
    analyst.open_app("/tab/")
    analyst.page.wait_for_selector(ROW)
    screenshot(analyst.page, "detections")


def test_filtering_sorting_and_paging(as_user, tab_env) -> None:
    analyst = as_user("analyst")
    frame = analyst.open_console()
    _, _, all_total = page_range(frame)

    frame.select_option("#f-platform", "AWS")
    wait_rows(frame, lambda f: set(rows_text(f, "cloud_platform")) == {"AWS"})
    aws_total = api_total(tab_env, "analyst", **page_filters(frame))
    assert page_range(frame)[2] == aws_total
    assert 0 < aws_total < all_total
    assert set(rows_text(frame, "cloud_platform")) == {"AWS"}

    frame.select_option("#f-platform", "")
    tick(frame, "f-service")
    wait_rows(frame, lambda f: page_range(f)[2] < all_total)
    assert set(rows_text(frame, "is_service_account")) == {"Service account"}
    tick(frame, "f-service", on=False)

    frame.fill("#f-q", "203.0.113.66")
    wait_rows(
        frame, lambda f: f.locator(ROW).count() > 0 and set(rows_text(f, "source_ip")) == {"203.0.113.66"}
    )
    assert page_range(frame)[2] == api_total(tab_env, "analyst", **page_filters(frame)) < all_total
    frame.fill("#f-q", "")
    wait_rows(frame, lambda f: page_range(f)[2] == all_total)

    # sorting by actor, ascending then descending (server-side: compare with the API's order)
    frame.click("#detections-head th[data-column='actor'] button")
    frame.wait_for_selector("#detections-head th[data-column='actor'][aria-sort='descending']")
    expected_desc = [
        d["actor"] or ""
        for d in tab_env.get("analyst", "api/detections", **{**page_filters(frame), "limit": 50})["items"]
    ]
    wait_rows(frame, lambda f: rows_text(f, "actor") == expected_desc)
    frame.click("#detections-head th[data-column='actor'] button")
    wait_rows(
        frame,
        lambda f: (
            f.locator("#detections-head th[data-column='actor']").get_attribute("aria-sort") == "ascending"
        ),
    )
    ascending = rows_text(frame, "actor")
    assert ascending != expected_desc

    # paging: 25 per page, next page starts at 26 and shows other rows
    frame.select_option("#page-size", "25")
    wait_rows(frame, lambda f: page_range(f)[:2] == (1, min(25, all_total)))
    first_page = rows_text(frame, "event_time")
    frame.click("#page-next")
    wait_rows(frame, lambda f: page_range(f)[0] == 26)
    assert rows_text(frame, "event_time") != first_page
    frame.click("#page-prev")
    wait_rows(frame, lambda f: page_range(f)[0] == 1)
    screenshot(analyst.page, "filtered-sorted")


def test_detail_panel_and_its_links(as_user, tab_env) -> None:
    analyst = as_user("analyst")
    frame = analyst.open_console()
    tick(frame, "f-chains")
    wait_rows(frame, lambda f: f.locator(ROW).count() > 0 and set(rows_text(f, "chain_id")) != {""})
    row = frame.locator(ROW).first
    detection_id = int(row.get_attribute("data-id"))
    expected = tab_env.get("analyst", f"api/detections/{detection_id}")
    # keyboard: focus the row, Enter opens the panel, Escape closes it and returns focus
    row.focus()
    analyst.page.keyboard.press("Enter")
    frame.wait_for_selector("#panel:not([hidden]) #panel-payload")
    body = frame.locator("#panel-body").inner_text()
    for key in ("actor", "actor_id", "target_account", "source_ip", "event_name", "log_source"):
        if expected.get(key):
            assert expected[key] in body, key
    # the event's own time and, separately, when QRadar received it
    assert expected["device_time"] and "Received by QRadar" in body
    steps = frame.locator("#panel-chain li")
    assert steps.count() == len(expected["chain"]["events"]) >= 2
    assert "Not suppressed" in frame.locator("#panel-suppression").inner_text()
    payload = frame.locator("#panel-payload").inner_text()
    assert "\n  " in payload  # pretty-printed
    screenshot(analyst.page, "detail-panel")

    log_activity = frame.locator("#link-log-activity")
    href = log_activity.get_attribute("href")
    assert "/console/do/ariel/arielSearch?appName=EventViewer&pageId=EventList&dispatch=performSearch" in href
    assert "/app_proxy/" not in href
    playbook = frame.locator("#link-playbook").get_attribute("href")
    assert f"/app_proxy/playbook/?detection={detection_id}#platform-" in playbook

    with analyst.context.expect_page() as popup_info:
        log_activity.click()
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.url.startswith(analyst.devconsole.base_url + "/console/do/ariel/arielSearch")
    popup.wait_for_function(
        "name => document.body.innerText.includes(name)", arg=expected["event_name"], timeout=60_000
    )
    # pinned: the AQL (built from escaped literals) finds exactly this one event
    popup.wait_for_function("document.body.innerText.includes('COMPLETED')", timeout=60_000)
    assert popup.locator("#results tbody tr").count() == 1
    screenshot(popup, "log-activity-pinned")
    popup.close()

    analyst.page.keyboard.press("Escape")
    frame.wait_for_selector("#panel", state="hidden")
    assert frame.evaluate("document.activeElement.dataset.id") == str(detection_id)
    analyst.page.keyboard.press("ArrowDown")
    assert frame.evaluate("document.activeElement.dataset.id") != str(detection_id)


def test_detection_deep_link_opens_its_panel(as_user, tab_env) -> None:
    # The offense widget, dashboard item and Pulse table link to /tab/?detection=<id>.
    listed = tab_env.get("analyst", "api/detections", limit=1)["items"][0]
    analyst = as_user("analyst")
    frame = analyst.open_app(f"/tab/?detection={listed['id']}")
    frame.wait_for_selector("#panel:not([hidden]) #panel-payload")
    assert listed["event_name"] in frame.locator("#panel-title").inner_text()
    # A malformed id is ignored rather than fetched.
    frame = analyst.open_app("/tab/?detection=1%20OR%201")
    frame.wait_for_selector("#detections-body tr")
    assert frame.locator("#panel").is_hidden()


def test_triage_single_and_bulk(as_user, tab_env) -> None:
    analyst = as_user("analyst")
    frame = analyst.open_console()
    assert frame.locator(ROW).count() >= 3
    ids = [int(x) for x in frame.locator(ROW).evaluate_all("rows => rows.map(r => r.dataset.id)")][:3]

    frame.locator(f"{ROW}[data-id='{ids[0]}']").click()
    frame.wait_for_selector("#triage-form")
    frame.select_option("#triage-status", "investigating")
    frame.fill("#triage-note", "checking with the <b>cloud</b> team")
    frame.click("#triage-save")
    frame.wait_for_function(
        "(document.querySelector('#triage-who') || {innerText: ''}).innerText.includes('by analyst')"
    )
    saved = tab_env.get("analyst", f"api/detections/{ids[0]}")
    assert saved["triage_status"] == "investigating"
    assert saved["triage_note"] == "checking with the <b>cloud</b> team"
    assert saved["triage_by"] == "analyst"
    assert frame.locator("#triage-note").input_value() == saved["triage_note"]
    frame.wait_for_selector("#triage-history li")
    history = frame.locator("#triage-history").inner_text()
    assert "analyst: Investigating — checking with the <b>cloud</b> team" in history
    frame.click("#panel-close")

    for detection_id in ids[1:]:
        tick(frame, f"select-{detection_id}")
    assert "2 detections selected" in frame.locator("#batch").inner_text()
    frame.select_option("#batch-status", "benign")
    frame.fill("#batch-note", "HR onboarding batch")
    frame.click("#batch-apply")
    frame.wait_for_selector("#batch", state="hidden")
    for detection_id in ids[1:]:
        d = tab_env.get("analyst", f"api/detections/{detection_id}")
        triage = (d["triage_status"], d["triage_note"], d["triage_by"])
        assert triage == ("benign", "HR onboarding batch", "analyst")

    frame.select_option("#f-triage", "benign")
    wait_rows(frame, lambda f: set(rows_text(f, "triage_status")) == {"Benign – expected"})
    shown = {int(x) for x in frame.locator(ROW).evaluate_all("rows => rows.map(r => r.dataset.id)")}
    assert set(ids[1:]) <= shown
    screenshot(analyst.page, "triage")


def test_allowlist_from_a_detection_then_second_user_approves(as_user, tab_env) -> None:
    target = FORMULA_TARGET
    detection = detection_by_target(tab_env, target)
    assert detection["suppressed_by"] is None
    tuner1 = as_user("tuner1")
    frame = tuner1.open_console()
    frame.fill("#f-q", "203.0.113.66")
    wait_rows(frame, lambda f: f.locator(f"{ROW}[data-id='{detection['id']}']").count() == 1)
    frame.locator(f"{ROW}[data-id='{detection['id']}']").click()
    frame.click("#allowlist-this")
    frame.wait_for_url(re.compile(r".*/tab/tuning\?from_detection=\d+"))
    frame.wait_for_selector("#preview-count")
    # prefilled with the immutable ID, scoped to the platform; the preview counts what it would hide
    assert frame.locator("#e-actor-id").input_value() == detection["actor_id"]
    assert frame.locator("#e-platforms input[value='AWS']").is_checked()
    preview = int(frame.locator("#preview-count").inner_text())
    assert preview == 1
    assert FORMULA_TARGET in frame.locator("#preview-examples").inner_text()
    frame.fill("#e-justification", "Test account created by the onboarding runbook, ticket OPS-1")
    screenshot(tuner1.page, "tuning-new-entry")
    frame.click("#entry-save")
    frame.wait_for_selector("#approvals-table tbody tr[data-id]")
    pending = tab_env.get("tuner1", "api/tuning/entries", status="pending")["items"]
    entry = next(e for e in pending if e["actor_id"] == detection["actor_id"])
    # the submitter cannot approve their own entry
    own_row = frame.locator(f"#approvals-table tr[data-id='{entry['id']}']")
    assert own_row.locator("button:has-text('Approve')").is_disabled()
    assert tab_env.get("admin", f"api/detections/{detection['id']}")["suppressed_by"] is None

    tuner2 = as_user("tuner2")
    tuner2.open_console()
    approval_frame = tuner2.open_app("/tab/tuning")
    approval_frame.wait_for_selector(f"#approvals-table tr[data-id='{entry['id']}']")
    screenshot(tuner2.page, "tuning-approval-queue")
    approval_frame.click(f"#approvals-table tr[data-id='{entry['id']}'] button:has-text('Approve')")
    approval_frame.wait_for_selector(f"#entries-table tr[data-id='{entry['id']}'] .cds--tag--green")
    # an exact-actor entry is in force until its expiry and mirrored to QRadar's reference set
    standing = approval_frame.locator(f"#entries-table tr[data-id='{entry['id']}']").inner_text()
    assert "In force until" in standing and "in QRadar reference set" in standing
    assert tab_env.get("admin", f"api/detections/{detection['id']}")["suppressed_by"] == entry["id"]
    audit = approval_frame.locator("#audit-table").inner_text()
    assert "tuning.entry.approve" in audit and "tuning.entry.create" in audit
    screenshot(tuner2.page, "tuning")

    # on the detections page the detection left the default view and shows under Suppressed
    frame = tuner2.open_console()
    frame.fill("#f-q", "203.0.113.66")
    wait_rows(
        frame,
        lambda f: f.locator(f"{ROW}[data-id='{detection['id']}']").count() == 0 and page_range(f)[2] == 1,
    )
    frame.select_option("#f-suppressed", "true")
    wait_rows(frame, lambda f: f.locator(f"{ROW}[data-id='{detection['id']}']").count() == 1)
    frame.locator(f"{ROW}[data-id='{detection['id']}']").click()
    frame.wait_for_selector("#panel-suppression")
    frame.wait_for_function("document.querySelector('#panel-suppression').innerText.includes('Approved by')")
    why = frame.locator("#panel-suppression").inner_text()
    assert f"Suppressed by allowlist entry #{entry['id']}" in why
    assert f"actor immutable ID is {detection['actor_id']}" in why
    assert "Test account created by the onboarding runbook, ticket OPS-1" in why
    assert "Approved by tuner2" in why
    screenshot(tuner2.page, "suppressed")


def test_tuning_page_shows_condition_writers_and_what_is_not_mirrored(as_user, tab_env) -> None:
    """Issue 14 items 2 and 5 on the page: a narrowed entry says it is not mirrored to QRadar, and its
    author cannot approve it even after another tuner's text edit."""
    url = tab_env.live_app.proxy_url("api/tuning/entries")
    created = tab_env.api("tuner1").post(
        url,
        json={
            "platforms": ["AWS"],
            "actor_id": "arn:aws:iam::111122223333:role/ui-narrowed",
            "ua_pattern": "*Terraform/*",
            "source_cidrs": ["198.51.100.0/24"],
            "justification": "UI check of a narrowed entry (CHG-14)",
            "expires_at": int(time.time() * 1000) + 86_400_000,
        },
        timeout=60,
    )
    assert created.status_code == 201, created.text
    entry = created.json()["entry"]
    try:
        edited = tab_env.api("tuner2").patch(
            f"{url}/{entry['id']}",
            json={"version": entry["version"], "justification": "UI check of a narrowed entry, typo fixed"},
            timeout=60,
        )
        assert edited.status_code == 200, edited.text
        tuner1 = as_user("tuner1")
        tuner1.open_console()
        frame = tuner1.open_app("/tab/tuning")
        row = frame.locator(f"#entries-table tr[data-id='{entry['id']}']")
        row.wait_for()
        standing = row.inner_text()
        assert "not mirrored" in standing and "source subnets, user agent" in standing
        assert "Not in force" in standing
        queued = frame.locator(f"#approvals-table tr[data-id='{entry['id']}']")
        assert "tuner1" in queued.inner_text()  # the condition writer, not the last editor (tuner2)
        assert queued.locator("button:has-text('Approve')").is_disabled()
        screenshot(tuner1.page, "tuning-not-mirrored")
    finally:
        current = tab_env.get("tuner1", f"api/tuning/entries/{entry['id']}")
        removed = tab_env.api("tuner1").delete(
            f"{url}/{entry['id']}", params={"version": current["version"]}, timeout=60
        )
        assert removed.status_code == 200, removed.text


def test_analyst_cannot_see_or_reach_settings_or_edit_entries(as_user, tab_env) -> None:
    analyst = as_user("analyst")
    frame = analyst.open_console()
    assert frame.locator("a[data-section='settings']").is_hidden()
    assert frame.locator("a[data-section='tuning']").is_visible()
    frame.locator(ROW).first.click()
    frame.wait_for_selector("#panel-payload")
    frame.wait_for_selector("#link-log-activity")
    assert frame.locator("#allowlist-this").count() == 0

    response = analyst.page.goto(analyst.proxy_root + "/tab/settings")
    assert response.status == 403
    api = analyst.page.request
    assert api.get(analyst.proxy_root + "/api/settings").status == 403

    tuning = analyst.open_app("/tab/tuning")
    tuning.wait_for_selector("#entries-table")
    assert tuning.locator("#entry-editor").is_hidden()
    assert "needs a tuning capability" in tuning.locator("#tuning-permission").inner_text()
    assert tuning.locator("#entries-table button").count() == 0
    assert tuning.locator("#presets button").count() == 0
    # and the API refuses a write even with a valid CSRF header
    csrf = next(c["value"] for c in analyst.context.cookies() if c["name"] == "QRadarCSRF")
    refused = api.post(
        analyst.proxy_root + "/api/tuning/entries",
        headers={"QRadarCSRF": csrf},
        data={
            "platforms": ["AWS"],
            "actor_id": "arn:aws:iam::1:role/x",
            "justification": "analyst should not be able to do this",
            "expires_at": "2099-01-01T00:00:00Z",
        },
    )
    assert refused.status == 403
    screenshot(analyst.page, "tuning-analyst-view")

    admin = as_user("admin")
    admin_frame = admin.open_console()
    admin_frame.wait_for_selector("a[data-section='settings']:not([hidden])")
    settings = admin.open_app("/tab/settings")
    settings.wait_for_selector("#s-refresh_interval_s")
    assert settings.locator("label[for='s-refresh_interval_s']").inner_text() == "refresh_interval_s"
    screenshot(admin.page, "settings")


def test_theme_follows_the_console_and_is_remembered(as_user, tab_env) -> None:
    analyst = as_user("analyst")
    frame = analyst.open_console(theme="dark")
    assert frame.evaluate("document.documentElement.className") == "cds--g100"
    background = frame.evaluate("getComputedStyle(document.body).backgroundColor")
    screenshot(analyst.page, "console-tab-dark")
    # later pages carry no theme parameter; the app remembers it
    tuning = analyst.open_app("/tab/tuning")
    assert "theme=" not in analyst.page.url
    assert tuning.evaluate("document.documentElement.className") == "cds--g100"
    screenshot(analyst.page, "tuning-dark")
    frame = analyst.open_console(theme="light")
    assert frame.evaluate("document.documentElement.className") == "cds--g10"
    assert frame.evaluate("getComputedStyle(document.body).backgroundColor") != background


def test_csv_download_has_every_filtered_row(as_user, tab_env) -> None:
    analyst = as_user("analyst")
    frame = analyst.open_console()
    frame.select_option("#window", "30d")
    frame.select_option("#f-suppressed", "")  # suppressed ones too (another test may have allowlisted one)
    frame.select_option("#page-size", "25")
    wait_rows(
        frame,
        lambda f: (
            "suppressed" not in page_filters(f)
            and page_filters(f).get("limit") is None
            and int(page_filters(f)["end"]) - int(page_filters(f)["start"]) == 30 * 86_400_000
            and page_range(f)[:2] == (1, min(25, page_range(f)[2]))
        ),
    )
    filters = page_filters(frame)
    total = api_total(tab_env, "analyst", **filters)
    assert page_range(frame)[2] == total
    assert total > 25, f"the export must hold more than the visible page (total {total})"
    platforms = {
        d["cloud_platform"]
        for d in tab_env.get("analyst", "api/detections", **{**filters, "limit": 500})["items"]
    }
    with analyst.page.expect_download() as download_info:
        frame.click("#export-csv")
    download = download_info.value
    name_pattern = r"cloud-account-detections_\d{8}T\d{4}Z_\d{8}T\d{4}Z\.csv"
    assert re.fullmatch(name_pattern, download.suggested_filename)
    text = download.path().read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert header == [
        "Time (Europe/Berlin)",
        "Category",
        "Log source",
        "Actor",
        "Target account",
        "Source IP",
        "Cloud platform",
        "Service account",
        "Chain",
        "Triage status",
    ]
    assert len(body) == total
    assert {r[6] for r in body} == platforms
    # formula cells from the hostile record are neutralised; the markup one is plain text
    cells = {cell for row in body for cell in row}
    assert "'" + FORMULA_TARGET in cells
    assert FORMULA_ACTOR not in cells
    assert XSS_TARGET in cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)


def test_hostile_names_render_as_text_and_never_run(as_user, tab_env) -> None:
    detection = detection_by_target(tab_env, XSS_TARGET)
    assert XSS_ACTOR in detection["actor"]
    tuner = as_user("tuner1")
    frame = tuner.open_console()
    frame.fill("#f-q", "onerror")
    wait_rows(frame, lambda f: f.locator(f"{ROW}[data-id='{detection['id']}']").count() == 1)
    row = frame.locator(f"{ROW}[data-id='{detection['id']}']")
    assert row.locator("td[data-column='actor']").inner_text() == detection["actor"]
    assert row.locator("td[data-column='target_account']").inner_text() == XSS_TARGET
    row.click()
    frame.wait_for_selector("#panel-payload")
    screenshot(tuner.page, "hostile-values-panel")
    assert XSS_TARGET in frame.locator("#panel-title").inner_text()
    assert XSS_ACTOR in frame.locator("#panel-body").inner_text()
    assert XSS_TARGET in frame.locator("#panel-payload").inner_text()
    # nothing from the log became an element
    assert frame.locator("img[src='x']").count() == 0
    assert frame.locator("script:not([src]):not([type='application/json'])").count() == 0
    assert frame.evaluate("window.__xss === undefined")
    # the same text in the tuning preview (prefilled from this detection)
    frame.click("#allowlist-this")
    frame.wait_for_selector("#preview-examples")
    assert XSS_TARGET in frame.locator("#preview-examples").inner_text()
    assert frame.locator("img[src='x']").count() == 0
    screenshot(tuner.page, "hostile-values-as-text")


def test_refresh_now_progress_cancel_and_errors_in_words(as_user, tab_env) -> None:
    faults = tab_env.devconsole.faults
    # Cancelling needs the 'tune' permission (an analyst's cancel is a 403: tests/app/detection/test_api.py).
    analyst = as_user("tuner1")
    frame = analyst.open_console()
    assert frame.locator("#refresh-last").inner_text().endswith("Europe/Berlin")
    try:
        # a search QRadar ends in ERROR: the page says so in words, not with a stack trace
        faults.error_searches(1, "Injected failure: the search could not be completed.")
        frame.click("#refresh-now")
        frame.wait_for_selector("#refresh-notice .cds--inline-notification--error", timeout=120_000)
        notice = frame.locator("#refresh-notice").inner_text()
        assert "The last refresh failed" in notice
        assert "Injected failure: the search could not be completed." in notice
        assert "Traceback" not in notice and 'File "' not in notice
        screenshot(analyst.page, "refresh-error")

        # A view-only analyst, opened while no fault is on: its log-source probe (a search run as the
        # analyst, kept for visibility_cache_s) is done, so no slowed search of its own holds one of the
        # console's two search slots for the next tests.
        viewer_session = as_user("analyst")
        viewer_session.open_console()

        # a slow search shows progress and can be cancelled from the page
        faults.slow_searches(120)
        frame.click("#refresh-now")
        frame.wait_for_selector("#refresh-progress:not([hidden])", timeout=60_000)
        assert frame.locator("#refresh-now").is_disabled()
        screenshot(analyst.page, "refresh-progress")
        # The view-only analyst sees the same refresh running but is not offered Cancel (the API's 403).
        viewer_session.page.reload()
        viewer = viewer_session.tab_frame()
        viewer.wait_for_selector("#refresh-progress:not([hidden])", timeout=60_000)
        assert viewer.locator("#refresh-cancel").is_hidden()
        viewer_session.page.goto("about:blank")  # it makes no further request while searches are slowed
        assert frame.locator("#refresh-cancel").is_visible()
        frame.click("#refresh-cancel")
        frame.wait_for_selector("#refresh-notice .cds--inline-notification--info", timeout=120_000)
        assert "cancelled" in frame.locator("#refresh-notice").inner_text()
        assert tab_env.get("admin", "api/status")["last_status"] == "cancelled"
    finally:
        faults.clear()
    # and a normal refresh afterwards succeeds and updates "last refresh"
    runs = tab_env.get("admin", "api/status")["runs"]
    frame.click("#refresh-now")
    deadline = time.monotonic() + 120
    status = tab_env.get("admin", "api/status")
    while (status["runs"] <= runs or status["running"]) and time.monotonic() < deadline:
        time.sleep(0.5)
        status = tab_env.get("admin", "api/status")
    assert status["last_status"] == "ok" and status["runs"] > runs
    frame.wait_for_function(
        "document.querySelector('#refresh-notice').children.length === 0"
        " && !document.querySelector('#refresh-now').disabled",
        timeout=60_000,
    )


def test_usable_at_1024_wide(as_user, tab_env) -> None:
    analyst = as_user("analyst")
    analyst.page.set_viewport_size({"width": 1024, "height": 768})
    frame = analyst.open_app("/tab/")
    frame.wait_for_selector(ROW)
    # nothing but the table itself scrolls sideways; the controls, overview and pager fit
    assert frame.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    for selector in ("#f-q", "#f-platform", "#export-csv", "#refresh-now", "#page-next", "#timeline svg"):
        box = frame.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1024, selector
    frame.locator(ROW).first.click()
    frame.wait_for_selector("#panel-payload")
    panel = frame.locator("#panel").bounding_box()
    assert panel["x"] > 0 and panel["x"] + panel["width"] <= 1024
    screenshot(analyst.page, "detections-1024")


def test_offense_link_once_the_offense_lists_the_detection(as_user, tab_env) -> None:
    devconsole = tab_env.devconsole
    creation_names = {n.lower() for names in DEFAULT_EVENT_NAMES.values() for n in names}
    events = {e["event_id"]: e for it in devconsole.scenario["items"] for e in it["events"]}
    offense = next(
        o
        for o in sorted(devconsole.scenario["offenses"], key=lambda o: o["id"])
        if o["id"] != 5  # test_offense_dashboard needs offense 5 never opened
        and any(events[i]["event_name"].lower() in creation_names for i in o["event_ids"] if i in events)
    )
    analyst = as_user("analyst")
    # The analyst opens the offense in QRadar; its Offense Summary fragment lists the app's detections.
    summary = (
        f"{devconsole.base_url}/console/do/sem/offensesummary?appName=Sem&pageId=OffenseSummary"
        f"&summaryId={offense['id']}"
    )
    deadline = time.monotonic() + 90
    linked = []
    while not linked and time.monotonic() < deadline:
        analyst.page.goto(summary)
        analyst.page.wait_for_selector("body[data-fragments='done']", timeout=60_000)
        items = tab_env.get("analyst", "api/detections", limit=500, start=0)["items"]
        linked = [
            d
            for d in items
            if offense["id"]
            in [o["id"] for o in tab_env.get("analyst", f"api/detections/{d['id']}/links")["offenses"]]
        ]
        time.sleep(0.5)
    assert linked, f"no detection linked to offense {offense['id']}"
    detection = linked[0]

    frame = analyst.open_console()
    frame.select_option("#window", "30d")
    frame.select_option("#f-suppressed", "")
    frame.fill("#f-q", detection["target_account"] or detection["actor"])
    wait_rows(frame, lambda f: f.locator(f"{ROW}[data-id='{detection['id']}']").count() == 1)
    frame.locator(f"{ROW}[data-id='{detection['id']}']").click()
    link = frame.locator(f"#link-offense-{offense['id']}")
    link.wait_for()
    assert link.get_attribute("href") == summary
    with analyst.context.expect_page() as popup_info:
        link.click()
    popup = popup_info.value
    popup.wait_for_selector("body[data-fragments='done']", timeout=60_000)
    assert f"summaryId={offense['id']}" in popup.url
    popup.close()


UNLABELLED_CONTROLS = """() => {
  const named = (el) => (el.getAttribute('aria-label') || '').trim() || el.getAttribute('aria-labelledby')
    || (el.labels && Array.from(el.labels).some((l) => l.innerText.trim() || l.getAttribute('aria-label')));
  const bad = [];
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!el.closest('[hidden]') && !named(el)) bad.push(el.outerHTML.slice(0, 120));
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (!el.closest('[hidden]') && !el.innerText.trim() && !(el.getAttribute('aria-label') || '').trim()) {
      bad.push(el.outerHTML.slice(0, 120));
    }
  }
  return bad;
}"""


@pytest.mark.parametrize(
    ("user", "path"), [("admin", "/tab/"), ("tuner1", "/tab/tuning"), ("admin", "/tab/settings")]
)
def test_every_control_is_labelled(as_user, tab_env, user: str, path: str) -> None:
    session = as_user(user)
    frame = session.open_app(path)
    frame.wait_for_selector("#detections-body tr.caw-row, #entries-table, #s-refresh_interval_s")
    if path == "/tab/":
        frame.locator(ROW).first.click()
        frame.wait_for_selector("#triage-form")
        frame.wait_for_selector("#allowlist-this")
    assert frame.evaluate(UNLABELLED_CONTROLS) == []


def test_utc_toggle_changes_every_time_and_is_remembered(as_user, tab_env) -> None:
    analyst = as_user("analyst")
    frame = analyst.open_console()
    local_times = rows_text(frame, "event_time")
    assert all(t.endswith(" Europe/Berlin") for t in local_times)
    frame.click("#tz-utc")
    wait_rows(frame, lambda f: all(t.endswith(" UTC") for t in rows_text(f, "event_time")))
    assert frame.locator("#tz-utc").get_attribute("aria-selected") == "true"
    assert "times in UTC" in frame.locator("#overview-title").inner_text()
    utc_times = rows_text(frame, "event_time")
    # Berlin is UTC+1 in winter, UTC+2 in summer: the same instants, shifted
    first_local = local_times[0].rsplit(" ", 1)[0]
    first_utc = utc_times[0].rsplit(" ", 1)[0]
    assert first_local != first_utc and first_local[-5:] == first_utc[-5:]
    frame = analyst.open_console()
    assert all(t.endswith(" UTC") for t in rows_text(frame, "event_time"))
    frame.click("#tz-local")
    wait_rows(frame, lambda f: all(t.endswith(" Europe/Berlin") for t in rows_text(f, "event_time")))


def test_edit_an_entry_with_live_preview(as_user, tab_env) -> None:
    tuner = as_user("tuner1")
    session = tab_env.api("tuner1")
    created = session.post(
        tab_env.live_app.proxy_url("api/tuning/entries"),
        json={
            "name": "CI deployer",
            "platforms": ["AWS"],
            "actor_id": "arn:aws:iam::111122223333:user/ci-deployer",
            "justification": "CI pipeline user that creates test accounts",
            "expires_at": int(time.time() * 1000) + 90 * 86_400_000,
        },
        timeout=60,
    )
    assert created.status_code == 201, created.text
    entry = created.json()["entry"]
    frame = tuner.open_app("/tab/tuning")
    frame.click(f"#entries-table tr[data-id='{entry['id']}'] button:has-text('Edit')")
    assert frame.locator("#entry-form-title").inner_text() == f"Edit allowlist entry #{entry['id']}"
    assert frame.locator("#e-actor-id").input_value() == entry["actor_id"]
    frame.wait_for_selector("#preview-count")
    before = int(frame.locator("#preview-count").inner_text())
    # narrowing the entry to a source network the pipeline never used: the preview drops to 0 as you type
    frame.fill("#e-cidrs", "198.51.100.0/24")
    frame.wait_for_function(
        "document.querySelector('#preview-count')"
        " && document.querySelector('#preview-count').innerText === '0'"
    )
    assert before > 0
    frame.fill("#e-justification", "CI pipeline user, only from the build network")
    frame.click("#entry-save")
    frame.wait_for_selector("#tuning-notice .cds--inline-notification--success")
    saved = tab_env.get("tuner1", f"api/tuning/entries/{entry['id']}")
    assert saved["source_cidrs"] == ["198.51.100.0/24"]
    assert saved["justification"] == "CI pipeline user, only from the build network"
    assert saved["version"] == entry["version"] + 1


def test_preset_suggests_identities_and_turns_on(as_user, tab_env) -> None:
    tuner = as_user("tuner1")
    frame = tuner.open_app("/tab/tuning")
    card = frame.locator("[data-preset='iac']")
    card.wait_for()
    card.locator("button:has-text('Suggest from detections')").click()
    add = card.locator("button:has-text('Add ')").first
    add.wait_for()
    candidate = add.inner_text().removeprefix("Add ").strip()
    add.click()
    assert frame.locator("#preset-ids-iac").input_value() == candidate
    frame.fill("#preset-why-iac", "Terraform pipeline role of the platform team")
    card.locator("button:has-text('Turn on')").click()
    frame.wait_for_selector("#tuning-notice .cds--inline-notification--success")
    entries = tab_env.get("tuner1", "api/tuning/entries", preset="iac")["items"]
    assert [e["actor_id"] for e in entries] == [candidate]
    assert entries[0]["status"] == "pending"
    frame.wait_for_selector("[data-preset='iac'] .cds--tag--green")
    screenshot(tuner.page, "tuning-preset-on")


def test_break_glass_preset_asks_for_a_ticket_and_lasts_a_day(as_user, tab_env) -> None:
    tuner = as_user("tuner2")
    frame = tuner.open_app("/tab/tuning")
    card = frame.locator("[data-preset='break_glass']")
    card.wait_for()
    frame.fill("#preset-ids-break_glass", "arn:aws:iam::111122223333:role/BreakGlassUITest")
    frame.fill("#preset-why-break_glass", "Incident response access for the outage bridge")
    frame.fill("#preset-ticket-break_glass", "INC-4242")
    before_ms = time.time() * 1000
    card.locator("button:has-text('Turn on')").click()
    frame.wait_for_selector("#tuning-notice .cds--inline-notification--success")
    entries = [
        e
        for e in tab_env.get("tuner2", "api/tuning/entries", preset="break_glass")["items"]
        if e["actor_id"] == "arn:aws:iam::111122223333:role/BreakGlassUITest"
    ]
    assert len(entries) == 1
    assert entries[0]["ticket"] == "INC-4242"
    expires_ms = (
        datetime.fromisoformat(entries[0]["expires_at"].replace("Z", "+00:00")).timestamp() * 1000
        if isinstance(entries[0]["expires_at"], str)
        else entries[0]["expires_at"]
    )
    assert before_ms < expires_ms <= before_ms + 24 * 3600 * 1000


def test_admin_saves_settings_and_sees_a_bad_value_named(as_user, tab_env) -> None:
    admin = as_user("admin")
    frame = admin.open_app("/tab/settings")
    frame.wait_for_selector("#s-user_cache_s")
    original = tab_env.get("admin", "api/settings")["values"]["user_cache_s"]
    try:
        frame.fill("#s-user_cache_s", str(original + 5))
        frame.click("#settings-save")
        frame.wait_for_selector("#settings-notice .cds--inline-notification--success")
        assert "user_cache_s" in frame.locator("#settings-notice").inner_text()
        assert tab_env.get("admin", "api/settings")["values"]["user_cache_s"] == original + 5

        frame.fill("#s-refresh_interval_s", "5")  # below its minimum
        frame.click("#settings-save")
        frame.wait_for_selector("#settings-notice .cds--inline-notification--error")
        assert "refresh_interval_s" in frame.locator("#settings-notice").inner_text()
        assert tab_env.get("admin", "api/settings")["values"]["refresh_interval_s"] != 5
    finally:
        restore = tab_env.api("admin").put(
            tab_env.live_app.proxy_url("api/settings"), json={"user_cache_s": original}, timeout=60
        )
        assert restore.status_code == 200, restore.text


def test_second_user_rejects_with_a_note(as_user, tab_env) -> None:
    created = tab_env.api("tuner1").post(
        tab_env.live_app.proxy_url("api/tuning/entries"),
        json={
            "name": "Unreviewed contractor",
            "platforms": ["Azure AD"],
            "actor_id": "mallory.contractor@acme-partner.example",
            "justification": "contractor says these accounts are expected",
            "expires_at": int(time.time() * 1000) + 7 * 86_400_000,
            "confirm_partial_chain": True,
        },
        timeout=60,
    )
    assert created.status_code == 201, created.text
    entry = created.json()["entry"]
    tuner2 = as_user("tuner2")
    frame = tuner2.open_app("/tab/tuning")
    row = frame.locator(f"#approvals-table tr[data-id='{entry['id']}']")
    row.wait_for()
    row.locator(f"#approve-note-{entry['id']}").fill("no ticket, and one of these is in an attack chain")
    row.locator("button:has-text('Reject')").click()
    frame.wait_for_selector(f"#entries-table tr[data-id='{entry['id']}'] .cds--tag--red")
    assert frame.locator(f"#approvals-table tr[data-id='{entry['id']}']").count() == 0
    saved = tab_env.get("tuner2", f"api/tuning/entries/{entry['id']}")
    assert saved["status"] == "rejected"
    assert saved["decision_note"] == "no ticket, and one of these is in an attack chain"


def test_status_poll_goes_on_after_a_failed_status_read(as_user, tab_env) -> None:
    """While the app restarts, QRadar's proxy answers its requests 502. The page says it could not read the
    refresh status and must keep polling: it used to stop for good, so the refresh notice, the QRadar
    health and the data's auto-reload were frozen until the analyst reloaded the page."""
    analyst = as_user("analyst")
    frame = analyst.open_console()
    page = analyst.page
    pattern = "**/app_proxy/api/status*"

    def bad_gateway(route, _request) -> None:
        route.fulfill(status=502, content_type="text/html", body="<html><body>502 Bad Gateway</body></html>")

    page.route(pattern, bad_gateway)
    try:
        # The next poll (every 30 s while idle) fails.
        frame.wait_for_function(
            "document.querySelector('#refresh-notice').innerText"
            ".includes('Could not read the refresh status')",
            timeout=120_000,
        )
    finally:
        page.unroute(pattern)
    # The app is back: a later poll reads the status again and the notice goes.
    with page.expect_request(lambda request: "/app_proxy/api/status" in request.url, timeout=120_000):
        pass
    frame.wait_for_function(
        "!document.querySelector('#refresh-notice').innerText.includes('Could not read the refresh status')",
        timeout=120_000,
    )
    assert frame.locator("#refresh-last").inner_text() != ""


def test_detail_panel_lists_context_only_events_of_the_target(as_user, tab_env) -> None:
    # devconsole/scenario/aws_coverage.py: helpdesk-temp got a console password and an MFA device; the MFA
    # events are recorded as context (never detections) and shown in the panel and the chain.
    items = tab_env.get("admin", "api/detections", q="helpdesk-temp", limit=50)["items"]
    (created,) = [
        d for d in items if d["target_account"] == "helpdesk-temp" and d["event_name"] == "CreateUser"
    ]
    assert api_total(tab_env, q="EnableMFADevice") == 0
    analyst = as_user("analyst")
    frame = analyst.open_app(f"/tab/?detection={created['id']}")
    frame.wait_for_selector("#panel:not([hidden]) #panel-context")
    context = frame.locator("#panel-context li").all_inner_texts()
    assert len(context) == 2
    assert "CreateVirtualMFADevice" in context[0] and "EnableMFADevice" in context[1]
    chain = frame.locator("#panel-chain").inner_text()
    assert "CreateLoginProfile" in chain and "EnableMFADevice" in chain
