"""Browser tests: Playwright (sync API) driving Debian's /usr/bin/chromium through the dev console.

Every page gets three guards, checked when the test ends:
* a dialog handler — any alert/confirm/prompt (an XSS payload firing) fails the test;
* a request listener — every request must go to 127.0.0.1 (no CDN, works air-gapped);
* requestfailed / pageerror listeners — no failed request and no uncaught script error.
Screenshots go to ``test-artifacts/screens/<name>.png``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The hostile values tab_env ingests, for the tests that look for them on the page.
from tests.tab_fixtures import FORMULA_ACTOR, FORMULA_TARGET, XSS_ACTOR, XSS_TARGET  # noqa: E402, F401

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENS = ROOT / "test-artifacts" / "screens"
# Requests the browser may make besides http(s) to 127.0.0.1 (inline data and blob URLs never leave it).
LOCAL_SCHEMES = {"data", "blob", "about"}

pytestmark = pytest.mark.ui


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ui/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.ui)


def spki_sha256(cert_path: Path) -> str:
    """Base64 SHA-256 of a certificate's public key (SubjectPublicKeyInfo), as chromium's flags take it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def trusted_keys_arg(devconsole) -> str:
    """Chromium accepts the dev console's local CA up front. With only the contexts' ignore_https_errors,
    every new connection first fails certificate verification and is restarted; a burst of parallel
    requests (a page's modules and fonts) then sometimes ran out of restarts (net::ERR_TOO_MANY_RETRIES)."""
    from devconsole.certs import ensure_certs

    paths = ensure_certs(devconsole.data_dir)  # the existing files: same CA and key
    return "--ignore-certificate-errors-spki-list=" + ",".join(
        spki_sha256(path) for path in (paths.ca_cert, paths.server_cert)
    )


@pytest.fixture(scope="session")
def browser(devconsole) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            "Debian chromium is missing at /usr/bin/chromium: run `make chromium` "
            "(never `playwright install`)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, trusted_keys_arg(devconsole)], headless=True
        )
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
    """A browser context logged in to the dev console as one user (through its user picker), guarded."""

    def __init__(self, browser, devconsole, user: str, *, bypass_csp: bool = True) -> None:
        self.devconsole = devconsole
        self.user = user
        self.guards = Guards()
        # The dev console's certificate comes from its own local CA; chromium has no way to trust it here.
        # Playwright's wait_for_function polls its predicate with eval, which the app's Content-Security-
        # Policy refuses: test sessions bypass the policy, tests/ui/test_csp.py checks the pages under it.
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 800},
            ignore_https_errors=True,
            accept_downloads=True,
            timezone_id="Europe/Berlin",
            bypass_csp=bypass_csp,
        )
        self.context.on("page", lambda page: guard_page(page, self.guards))
        self.page = self.context.new_page()
        self.login()

    @property
    def console_url(self) -> str:
        return self.devconsole.base_url.rstrip("/") + "/console/"

    @property
    def proxy_root(self) -> str:
        return f"{self.devconsole.base_url.rstrip('/')}/console/plugins/{self.devconsole.app_id}/app_proxy"

    def login(self) -> None:
        """Pick the user on the console's user picker (sets the SEC and QRadarCSRF cookies)."""
        self.page.goto(self.console_url)
        self.page.click(f"button[data-user='{self.user}']")
        self.page.wait_for_selector("#app-frame, #no-tabs")

    def open_console(self, theme: str = "light"):
        """The console page with the app's tab (theme passed as QRadar does); returns the tab's frame once
        the detections table has rows."""
        self.page.goto(f"{self.console_url}?theme={theme}")
        frame = self.tab_frame()
        frame.wait_for_selector("#detections-body tr.caw-row", timeout=30_000)
        return frame

    def tab_frame(self):
        self.page.wait_for_selector("#app-frame", timeout=30_000)
        frame = self.page.frame_locator("#app-frame").locator("body")
        frame.wait_for(timeout=30_000)
        for candidate in self.page.frames:
            if "/app_proxy/tab" in candidate.url:
                return candidate
        raise AssertionError(f"no tab frame on {self.page.url}: {[f.url for f in self.page.frames]}")

    def open_app(self, path: str):
        """An app page straight through the app proxy (the URL the console's iframe loads)."""
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
def as_user(browser, devconsole, tab_env) -> Iterator[object]:
    """``as_user("analyst")`` → a ConsoleBrowser; every one opened is checked and closed at teardown."""
    opened: list[ConsoleBrowser] = []

    def open_as(user: str) -> ConsoleBrowser:
        session = ConsoleBrowser(browser, devconsole, user)
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
