"""Browser tests: Playwright (sync API) driving Debian's /usr/bin/chromium through the dev console.

Every page gets three guards, checked when the test ends:
* a dialog handler — any alert/confirm/prompt (an XSS payload firing) fails the test;
* a request listener — every request must go to 127.0.0.1 (no CDN, works air-gapped);
* requestfailed / pageerror listeners — no failed request and no uncaught script error.
Screenshots go to ``test-artifacts/screens/<name>.png``.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screens"
# Requests the browser may make besides http(s) to 127.0.0.1 (inline data and blob URLs never leave it).
LOCAL_SCHEMES = {"data", "blob", "about"}

pytestmark = pytest.mark.ui


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ui/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.ui)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is missing at /usr/bin/chromium: run `make chromium` "
                    "(never `playwright install`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@dataclass
class Guards:
    dialogs: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert not self.dialogs, f"a dialog opened (script ran from data?): {self.dialogs}"
        assert not self.outside, f"requests left 127.0.0.1: {self.outside}"
        assert not self.failed, f"requests failed: {self.failed}"
        assert not self.errors, f"uncaught script errors: {self.errors}"


def guard_page(page, guards: Guards) -> None:
    """Attach the dialog, request, requestfailed and pageerror listeners to a page (and its popups)."""

    def on_dialog(dialog) -> None:
        guards.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_request(request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in LOCAL_SCHEMES:
            return
        if parts.scheme not in ("http", "https") or parts.hostname != "127.0.0.1":
            guards.outside.append(request.url)

    def on_failed(request) -> None:
        failure = request.failure or ""
        # A download or a navigation the test itself replaces is aborted by the browser, not failed.
        if "ERR_ABORTED" in failure:
            return
        guards.failed.append(f"{request.url}: {failure}")

    page.on("dialog", on_dialog)
    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    page.on("pageerror", lambda error: guards.errors.append(str(error)))
    page.on("popup", lambda popup: guard_page(popup, guards))


class ConsoleBrowser:
    """A browser context logged in to the dev console as one user, with guarded pages."""

    def __init__(self, browser, devconsole, user: str, theme: str = "light") -> None:
        self.devconsole = devconsole
        self.user = user
        self.guards = Guards()
        self.context = browser.new_context(viewport={"width": 1280, "height": 800}, ignore_https_errors=True,
                                           accept_downloads=True, timezone_id="Europe/Berlin")
        self.context.on("page", lambda page: guard_page(page, self.guards))
        host = urlsplit(devconsole.base_url).hostname
        # The console's user picker sets these two cookies; set them the same way for the chosen user.
        self.csrf = secrets.token_urlsafe(16)
        self.context.add_cookies([
            {"name": "SEC", "value": devconsole.tokens[user], "domain": host, "path": "/", "secure": True},
            {"name": "QRadarCSRF", "value": self.csrf, "domain": host, "path": "/", "secure": True},
        ])
        self.theme = theme
        self.page = self.context.new_page()

    @property
    def proxy_root(self) -> str:
        return f"{self.devconsole.base_url.rstrip('/')}/console/plugins/{self.devconsole.app_id}/app_proxy"

    def open_console(self, theme: str | None = None):
        """The console page with the app's tab; returns the tab's frame once the table has loaded."""
        theme = theme or self.theme
        self.page.goto(f"{self.devconsole.base_url.rstrip('/')}/console/?theme={theme}")
        frame = self.tab_frame()
        frame.wait_for_selector("#detections-body tr", timeout=30_000)
        return frame

    def tab_frame(self):
        self.page.wait_for_selector("iframe", timeout=30_000)
        for _ in range(300):
            for frame in self.page.frames:
                if "/app_proxy/tab" in frame.url:
                    return frame
            self.page.wait_for_timeout(100)
        raise AssertionError(f"no tab iframe on {self.page.url}: frames {[f.url for f in self.page.frames]}")

    def open_app(self, path: str):
        """An app page straight through the app proxy (the URL the console's iframe would load)."""
        self.page.goto(self.proxy_root + path)
        return self.page.main_frame

    def close(self) -> None:
        try:
            self.guards.check()
        finally:
            self.context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / (re.sub(r"[^a-z0-9_-]+", "-", name.lower()) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def as_user(browser, devconsole, live_app) -> Iterator[object]:
    """``as_user("analyst")`` → a ConsoleBrowser; every one opened is checked and closed at teardown."""
    opened: list[ConsoleBrowser] = []

    def open_as(user: str, theme: str = "light") -> ConsoleBrowser:
        session = ConsoleBrowser(browser, devconsole, user, theme)
        opened.append(session)
        return session

    yield open_as
    errors = []
    for session in opened:
        try:
            session.close()
        except AssertionError as exc:
            errors.append(f"{session.user}: {exc}")
    assert not errors, "; ".join(errors)
