"""The app's pages run under its Content-Security-Policy without a single violation (issue 14, item 7):
the tab, tuning, settings, playbook, the Offense Summary widget and the dashboard item, in chromium through
the dev console. A control shows the policy is really in force: an inline script added to the tab is
refused and reported."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from tests.ui.conftest import ConsoleBrowser
from tests.ui.test_offense_dashboard import open_offense

# Every frame records the violations its document reports, from before any page script runs.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective}: ${event.blockedURI || "inline"} (${event.sourceFile}:${event.lineNumber})`);
});
"""


def watch(session) -> list[str]:
    """Console messages about the policy, from every page of the session's context."""
    messages: list[str] = []
    session.context.add_init_script(RECORD_VIOLATIONS)

    def on_console(message) -> None:
        # The browser's own request for the dev console's (absent) /favicon.ico is not a page's doing.
        if urlsplit(message.location.get("url") or "").path == "/favicon.ico":
            return
        if message.type == "error" or "Content Security Policy" in message.text:
            messages.append(f"{message.type}: {message.text} at {message.location.get('url')}")

    session.page.on("console", on_console)
    return messages


def violations(page) -> list[str]:
    found = []
    for frame in page.frames:
        try:
            found += frame.evaluate("window.__cspViolations || []")
        except Exception as exc:  # a frame navigated away meanwhile has nothing left to say
            found.append(f"frame {frame.url}: {exc}")
    return found


def under_policy(browser, devconsole, user: str) -> ConsoleBrowser:
    """A console session that does not bypass the app's policy (the other UI tests' sessions do)."""
    return ConsoleBrowser(browser, devconsole, user, bypass_csp=False)


def test_pages_raise_no_csp_violation(browser, tab_env, devconsole) -> None:
    admin = under_policy(browser, devconsole, "admin")
    try:
        check_pages(admin, devconsole)
    finally:
        admin.close()


def check_pages(admin: ConsoleBrowser, devconsole) -> None:
    console_messages = watch(admin)
    checked = []

    frame = admin.open_console()
    assert frame.evaluate("document.querySelectorAll('#detections-body tr.caw-row').length") > 0
    checked.append(("tab", violations(admin.page)))

    for path, ready in (
        ("/tab/tuning", "#entries-body, main"),
        ("/tab/settings", "main"),
        ("/playbook/?offense=2#hunting", ".caw-pb-hunt"),
    ):
        page_frame = admin.open_app(path)
        page_frame.wait_for_selector(ready, timeout=30_000)
        time.sleep(0.5)  # scripts that fetch data on load have run
        checked.append((path, violations(admin.page)))

    page = open_offense(admin, 2)
    assert page.locator(".fragment .caw-frag").get_attribute("data-state") == "rows"
    checked.append(("offense summary widget", violations(page)))

    admin.page.goto(devconsole.base_url.rstrip("/") + "/console/dashboard")
    admin.page.wait_for_selector("body[data-dashboard='done']", timeout=60_000)
    assert admin.page.locator("section.dashboard-item .caw-dash").count() == 1
    checked.append(("dashboard item", violations(admin.page)))

    assert [(name, found) for name, found in checked if found] == []
    assert console_messages == []


def test_the_policy_is_in_force_on_app_pages(browser, tab_env, devconsole) -> None:
    analyst = under_policy(browser, devconsole, "analyst")
    try:
        check_inline_script_refused(analyst)
    finally:
        analyst.close()


def check_inline_script_refused(analyst: ConsoleBrowser) -> None:
    watch(analyst)
    response = analyst.page.goto(analyst.proxy_root + "/tab/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    analyst.page.wait_for_selector("#detections-body tr.caw-row", timeout=30_000)
    ran = analyst.page.evaluate(
        """() => {
            window.__inlineRan = false;
            const script = document.createElement("script");
            script.textContent = "window.__inlineRan = true;";
            document.body.appendChild(script);
            return new Promise((resolve) => setTimeout(() => resolve(window.__inlineRan), 200));
        }"""
    )
    assert ran is False
    found = analyst.page.evaluate("window.__cspViolations")
    assert any(v.startswith("script-src") for v in found), found
