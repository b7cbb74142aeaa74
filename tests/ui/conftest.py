"""Browser tests: Playwright (sync API) driving Debian's /usr/bin/chromium through the dev console.

Every page gets three guards, checked when the test ends:
* a dialog handler — any alert/confirm/prompt (an XSS payload firing) fails the test;
* a request listener — every request must go to 127.0.0.1 (no CDN, works air-gapped);
* requestfailed / pageerror listeners — no failed request and no uncaught script error.
Screenshots go to ``test-artifacts/screens/<name>.png``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.app_fixtures import qradar_env  # noqa: E402

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
XSS_ACTOR = "<img src=x onerror=alert(1)>"
XSS_TARGET = "<script>alert(2)</script>"
FORMULA_ACTOR = "-2+3"
FORMULA_TARGET = '=HYPERLINK("http://127.0.0.1/","x")'
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
        pytest.fail(
            "Debian chromium is missing at /usr/bin/chromium: run `make chromium` "
            "(never `playwright install`)"
        )
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


def hostile_cloudtrail_records(now_ms: int) -> list[dict]:
    """Two AWS CreateUser records whose actor and new-account names are attacker-chosen: markup that would
    run if parsed as HTML, and values a spreadsheet would evaluate as formulas."""
    records = []
    for offset_min, actor, target in ((7, XSS_ACTOR, XSS_TARGET), (6, FORMULA_ACTOR, FORMULA_TARGET)):
        at = datetime.fromtimestamp((now_ms - offset_min * 60_000) / 1000, tz=UTC)
        records.append(
            {
                "eventVersion": "1.08",
                "eventSource": "iam.amazonaws.com",
                "eventName": "CreateUser",
                "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.66",
                "userAgent": "aws-cli/2.15.0",
                "eventID": str(uuid.uuid4()),
                "recipientAccountId": "111122223333",
                "userIdentity": {
                    "type": "IAMUser",
                    "userName": actor,
                    "accountId": "111122223333",
                    "principalId": "AIDAHOSTILE" + str(offset_min),
                    "arn": f"arn:aws:iam::111122223333:user/{actor}",
                },
                "requestParameters": {"userName": target},
                "responseElements": {
                    "user": {"userName": target, "arn": f"arn:aws:iam::111122223333:user/{target}"}
                },
            }
        )
    return records


@dataclass
class TabEnv:
    """The live app behind the console, filled by its own refresher from the seeded dev console."""

    live_app: object
    devconsole: object
    refresher: subprocess.Popen

    def api(self, user: str):
        """A requests session through the console proxy as ``user``."""
        return self.live_app.session_as(user)

    def get(self, user: str, path: str, **params):
        response = self.api(user).get(self.live_app.proxy_url(path), params=params, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()


def _wait_for_refresh(env: TabEnv, timeout_s: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout_s
    status: dict = {}
    while time.monotonic() < deadline:
        if env.refresher.poll() is not None:
            pytest.fail(f"the refresher exited with {env.refresher.returncode}")
        status = env.get("admin", "api/status")
        if status.get("runs") and status.get("last_status") == "ok" and not status.get("running"):
            return status
        time.sleep(1)
    pytest.fail(f"no successful refresh within {timeout_s} s: {status}")


@pytest.fixture(scope="session")
def tab_env(devconsole, live_app, tmp_path_factory) -> Iterator[TabEnv]:
    """Seeds the two hostile records into the dev console (through its real ingest CLI), then runs the
    app's refresher process (as supervisord would) so the tab shows what detection found."""
    work = tmp_path_factory.mktemp("ui_seed")
    records = work / "hostile-cloudtrail.json"
    records.write_text(json.dumps({"Records": hostile_cloudtrail_records(int(time.time() * 1000))}))
    ingest = subprocess.run(
        [sys.executable, "-m", "devconsole", "ingest", "--data", str(devconsole.data_dir), str(records)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ingest.returncode == 0, ingest.stderr
    env_vars = {
        **os.environ,
        **qradar_env(devconsole),
        "APP_STORE_DIR": str(live_app.store_dir),
        "APP_QRADAR_TRANSPORT": "http",
    }
    log = (work / "refresher.log").open("wb")
    refresher = subprocess.Popen(
        [sys.executable, "-m", "app.refresher"], cwd=ROOT, env=env_vars, stdout=log, stderr=subprocess.STDOUT
    )
    env = TabEnv(live_app, devconsole, refresher)
    try:
        _wait_for_refresh(env)
        yield env
    finally:
        refresher.terminate()
        try:
            refresher.wait(timeout=20)
        except subprocess.TimeoutExpired:
            refresher.kill()
            refresher.wait()
        log.close()
