"""The console pages in a real browser (Debian chromium through Playwright): user picker, manifest tabs
with ?ui=new&theme=…, the Offense Summary page (fragment injection, OffenseSummaryToolbar action),
the Log Activity page (rows rendered as text) and the dashboard — all behind the stand-in app's console.

Playwright's sync API allows one instance per thread, and the UI suite runs its own in the main thread
during the same session; so this module drives chromium from a dedicated worker thread (``in_browser``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

pytestmark = pytest.mark.ui

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class BrowserThread:
    """Owns Playwright and chromium on one worker thread; runs test steps there and re-raises failures."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self.playwright = None
        self.browser = None

    def _launch(self) -> None:
        from playwright.sync_api import sync_playwright

        if self.browser is None:
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )

    def run(self, steps: Callable[[object], None], origin: str) -> None:
        def job() -> None:
            self._launch()
            # TLS is verified by the API tests against ca.pem; chromium would need the CA in an NSS store.
            context = self.browser.new_context(ignore_https_errors=True)
            page = context.new_page()
            page.set_default_timeout(20_000)
            foreign: list[str] = []
            errors: list[str] = []
            page.on(
                "request",
                lambda request: (
                    foreign.append(request.url) if urlsplit(request.url).netloc not in (origin, "") else None
                ),
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            try:
                steps(page)
            finally:
                context.close()
            assert foreign == [], f"console pages loaded something external: {foreign}"
            assert errors == [], f"uncaught script errors: {errors}"

        self.pool.submit(job).result()

    def close(self) -> None:
        def stop() -> None:
            if self.browser is not None:
                self.browser.close()
            if self.playwright is not None:
                self.playwright.stop()

        self.pool.submit(stop).result()
        self.pool.shutdown()


@pytest.fixture(scope="module")
def browser_thread() -> Iterator[BrowserThread]:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is missing at /usr/bin/chromium (never `playwright install`)")
    worker = BrowserThread()
    yield worker
    worker.close()


@pytest.fixture
def in_browser(browser_thread, standin_console) -> Callable[[Callable[[object], None]], None]:
    """``in_browser(steps)`` runs ``steps(page)`` in chromium against the stand-in console."""
    origin = urlsplit(standin_console.console.base_url).netloc
    return lambda steps: browser_thread.run(steps, origin)


def log_in(page, standin_console, user: str) -> None:
    page.goto(standin_console.console.url("/console/"))
    page.click(f"button[data-user='{user}']")
    page.wait_for_selector("#current-user")


def test_picker_logs_in_and_shows_the_manifest_tabs(in_browser, standin_console):
    def steps(page):
        page.goto(standin_console.console.url("/console/"))
        assert page.locator("#user-picker button").all_inner_texts() == [
            "admin",
            "tuner1",
            "tuner2",
            "analyst",
            "restricted",
            "nologs",
        ]
        page.click("button[data-user='analyst']")
        assert page.inner_text("#current-user").startswith("analyst")
        tabs = page.locator("#app-tabs a.tab")
        assert tabs.all_inner_texts() == ["Stand-in Tab"]  # "Admin only" needs ADMIN; text from the bundle
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["SEC"]["value"] == standin_console.console.tokens["analyst"]
        assert cookies["SEC"]["httpOnly"] is True
        assert len(cookies["QRadarCSRF"]["value"]) >= 16
        frame_src = page.get_attribute("#app-frame", "src")
        assert (
            frame_src
            == f"/console/plugins/{standin_console.console.app_id}/app_proxy/tab/?ui=new&theme=light"
        )
        frame = page.frame_locator("#app-frame")
        assert frame.locator("#tab-heading").inner_text() == "Stand-in /tab/"
        assert frame.locator("#tab-query").inner_text() == "ui=new&theme=light"

    in_browser(steps)


def test_each_session_gets_a_new_csrf_value(in_browser, standin_console):
    def steps(page):
        log_in(page, standin_console, "tuner1")
        first = {c["name"]: c["value"] for c in page.context.cookies()}["QRadarCSRF"]
        page.click("#logout")
        page.click("button[data-user='tuner1']")
        second = {c["name"]: c["value"] for c in page.context.cookies()}["QRadarCSRF"]
        assert first != second

    in_browser(steps)


def test_theme_chooser_reaches_the_app(in_browser, standin_console):
    def steps(page):
        log_in(page, standin_console, "admin")
        assert page.locator("#app-tabs a.tab").all_inner_texts() == ["Stand-in Tab", "Admin only"]
        page.select_option("#theme-select", "dark")
        page.click("#theme-apply")
        page.wait_for_selector("html[data-theme='dark']")
        assert page.get_attribute("#app-frame", "src").endswith("?ui=new&theme=dark")
        assert page.frame_locator("#app-frame").locator("#tab-query").inner_text() == "ui=new&theme=dark"
        page.click("a.tab[data-area='adminonly']")
        assert page.frame_locator("#app-frame").locator("#tab-heading").inner_text() == "Stand-in /admin/"

    in_browser(steps)


def first_offense(standin_console) -> dict:
    with closing(standin_console.console.db()) as conn:
        return dict(conn.execute("SELECT id, description FROM offenses ORDER BY id LIMIT 1").fetchone())


def test_offense_summary_injects_the_fragment_and_runs_the_toolbar_action(in_browser, standin_console):
    def steps(page):
        offense = first_offense(standin_console)
        log_in(page, standin_console, "analyst")
        page.goto(
            standin_console.console.url(
                f"/console/do/sem/offensesummary?appName=Sem&pageId=OffenseSummary&summaryId={offense['id']}"
            )
        )
        page.wait_for_selector("body[data-fragments='done']")
        assert page.inner_text("#offense-description") == offense["description"]
        assert page.inner_text("td[data-field='id']") == str(offense["id"])
        fragment = page.locator("#fragments .fragment[data-state='loaded'] #frag b")
        assert fragment.inner_text() == f"Fragment for {offense['id']}"
        # The fragment sits above the offense fields, as QRadar injects it at the top.
        assert (
            page.evaluate(
                "document.querySelector('#fragments').compareDocumentPosition("
                "document.querySelector('#offense-fields')) & Node.DOCUMENT_POSITION_FOLLOWING"
            )
            > 0
        )
        messages: list[str] = []
        page.on("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
        page.click("#gui-action-playbookAction")
        page.wait_for_selector("#action-output[data-state='done']")
        assert messages == [f"playbook for {offense['id']} / {offense['id']}"]

    in_browser(steps)


def test_offense_summary_for_a_missing_offense(in_browser, standin_console):
    def steps(page):
        log_in(page, standin_console, "analyst")
        response = page.goto(
            standin_console.console.url(
                "/console/do/sem/offensesummary?appName=Sem&pageId=OffenseSummary&summaryId=99999999"
            )
        )
        assert response.status == 404
        assert "99999999" in page.inner_text("#message")

    in_browser(steps)


def test_log_activity_renders_rows_as_text(in_browser, standin_console):
    def steps(page):
        console = standin_console.console
        with closing(console.db()) as conn:
            usernames = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT username FROM events WHERE username IS NOT NULL"
                    " ORDER BY username LIMIT 3"
                )
            ]
        quoted = ", ".join("'" + u.replace("'", "''") + "'" for u in usernames)
        aql = (
            f"SELECT CONCAT('<i>', username) AS tagged, username FROM events WHERE username IN ({quoted}) "
            f"GROUP BY username ORDER BY username ASC {console.window_covering_all_events()}"
        )
        log_in(page, standin_console, "analyst")
        page.goto(
            console.url(
                "/console/do/ariel/arielSearch?appName=EventViewer&pageId=EventList"
                "&dispatch=performSearch&value(timeRangeType)=aqlTime&value(searchMode)=AQL"
                f"&value(aql)={quote(aql)}"
            )
        )
        assert page.locator("#results thead th").all_inner_texts() == ["tagged", "username"]
        cells = page.locator("#results tbody tr td:first-child").all_inner_texts()
        assert cells == [f"<i>{u}" for u in usernames]
        assert page.locator("#results i").count() == 0

    in_browser(steps)


def test_log_activity_shows_aql_errors(in_browser, standin_console):
    def steps(page):
        log_in(page, standin_console, "analyst")
        response = page.goto(
            standin_console.console.url(
                "/console/do/ariel/arielSearch?value(aql)="
                + quote("SELECT qid FROM events WHERE starttime > NOW() - 1 DAYS")
            )
        )
        assert response.status == 422
        assert page.inner_text("#search-error")

    in_browser(steps)


def test_dashboard_renders_each_item_html(in_browser, standin_console):
    def steps(page):
        log_in(page, standin_console, "analyst")
        page.goto(standin_console.console.url("/console/dashboard"))
        page.wait_for_selector("body[data-dashboard='done']")
        item = page.locator("section.dashboard-item[data-state='loaded']")
        assert item.locator(".item-title").inner_text() == "Dash title"
        assert item.locator("#dash-html").inner_text() == "dashboard html"

    in_browser(steps)


def test_pages_need_a_login(in_browser, standin_console):
    def steps(page):
        page.goto(standin_console.console.url("/console/dashboard"))
        assert page.locator("#user-picker").count() == 1
        page.click("button[data-user='tuner2']")
        page.wait_for_selector("body[data-dashboard='done']")
        assert urlsplit(page.url).path == "/console/dashboard"

    in_browser(steps)


def test_offense_list_links_to_each_summary(in_browser, standin_console):
    def steps(page):
        with closing(standin_console.console.db()) as conn:
            expected = [r[0] for r in conn.execute("SELECT id FROM offenses ORDER BY start_time DESC")]
        log_in(page, standin_console, "tuner2")
        page.goto(standin_console.console.url("/console/offenses"))
        ids = [
            int(x)
            for x in page.locator("#offenses tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.offenseId)"
            )
        ]
        assert ids == expected
        page.click(f"#offenses tr[data-offense-id='{expected[0]}'] a")
        page.wait_for_selector("body[data-fragments='done']")
        assert page.inner_text("td[data-field='id']") == str(expected[0])

    in_browser(steps)
