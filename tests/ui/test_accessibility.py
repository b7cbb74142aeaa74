"""Accessibility audit: axe-core (vendored for the tests, tests/ui/vendor/axe-core) run in chromium on every
page the app shows, through the dev console's proxy, in the light and the dark console theme. A violation of
impact serious or critical fails the test, listed with its rule, the elements and axe's explanation; so does
a misused ARIA role (minor for axe, but fixed once and kept so)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ui.test_offense_dashboard import open_offense

AXE_JS = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"  # axe-core 4.14.1
BLOCKING_IMPACTS = {"serious", "critical"}
BLOCKING_RULES = {"aria-allowed-role"}
THEME_CLASSES = {"light": "cds--g10", "dark": "cds--g100"}
ROW = "#detections-body tr.caw-row"

# Indirect eval defines window.axe in the page's global scope; the console pages' CSP allows eval, and
# Playwright's own evaluate is not subject to it.
INJECT_AXE = "source => { (0, eval)(source); return typeof window.axe; }"

RUN_AXE = """async (include) => {
  const context = include ? {include: [include]} : document;
  const result = await window.axe.run(context, {resultTypes: ['violations'], iframes: false});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(' '), html: n.html.slice(0, 160),
      summary: (n.failureSummary || '').replace(/\\s+/g, ' ').slice(0, 300)})),
  }));
}"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    data = AXE_JS.read_bytes()
    assert hashlib.sha256(data).hexdigest() == AXE_SHA256, f"{AXE_JS} is not the vendored axe-core 4.14.1"
    return data.decode("utf-8")


def audit(frame, axe_source: str, include: str | None = None) -> list[dict]:
    """axe's violations on the frame's document (or the part ``include`` selects)."""
    assert frame.evaluate(INJECT_AXE, axe_source) == "object"
    if include:
        assert frame.locator(include).count() == 1, f"nothing to audit at {include}"
    return frame.evaluate(RUN_AXE, include)


def blocking(violations: list[dict]) -> list[str]:
    return [
        f"{v['impact']} {v['id']} ({v['help']}): "
        + "; ".join(f"{n['target']} {n['html']} → {n['summary']}" for n in v["nodes"])
        for v in violations
        if v["impact"] in BLOCKING_IMPACTS or v["id"] in BLOCKING_RULES
    ]


@dataclass
class Audited:
    frame: object
    include: str | None = None
    app_page: bool = True  # rendered by the app with its own theme class (not QRadar's page around it)


def detections(as_user, theme: str) -> Audited:
    """The tab as QRadar shows it (in the console's iframe), with the detail panel open and a row selected
    so the batch bar shows too."""
    session = as_user("admin")
    frame = session.open_console(theme=theme)
    frame.locator(ROW).first.click()
    frame.wait_for_selector("#panel:not([hidden]) #triage-form")
    frame.wait_for_selector("#allowlist-this")
    second = frame.locator(f"{ROW} input[type=checkbox]").nth(1).get_attribute("id")
    frame.locator(f"label[for='{second}']").click()  # Carbon hides the input behind its label
    frame.wait_for_selector("#batch:not([hidden])")
    return Audited(frame)


def detections_of_an_offense(as_user, theme: str) -> Audited:
    """The tab filtered to one offense (the removable chip the widget's link opens)."""
    session = as_user("analyst")
    frame = session.open_app(f"/tab/?offense=1&theme={theme}")
    frame.wait_for_selector("#chip-offense")
    frame.wait_for_selector(ROW)
    return Audited(frame)


def tuning(as_user, theme: str) -> Audited:
    session = as_user("admin")
    frame = session.open_app(f"/tab/tuning?theme={theme}")
    frame.wait_for_selector("#entries-table")
    frame.wait_for_selector("#presets > *")
    return Audited(frame)


def settings(as_user, theme: str) -> Audited:
    session = as_user("admin")
    frame = session.open_app(f"/tab/settings?theme={theme}")
    frame.wait_for_selector("#s-refresh_interval_s")
    return Audited(frame)


def playbook(as_user, theme: str) -> Audited:
    session = as_user("analyst")
    frame = session.open_app(f"/playbook/?offense=2&theme={theme}")
    frame.wait_for_selector(".caw-pb-target")
    return Audited(frame)


def offense_widget(as_user, theme: str) -> Audited:
    """The Offense Summary fragment inside the dev console's offense page (only the app's part audited)."""
    session = as_user("analyst")
    session.page.goto(f"{session.console_url}?theme={theme}")  # the console remembers the theme
    page = open_offense(session, 2)
    assert page.locator(".fragment .caw-frag").get_attribute("data-state") == "rows"
    return Audited(page.main_frame, ".fragment .caw-frag", app_page=False)


def dashboard_item(as_user, theme: str) -> Audited:
    session = as_user("analyst")
    session.page.goto(f"{session.devconsole.base_url.rstrip('/')}/console/dashboard?theme={theme}")
    session.page.wait_for_selector("body[data-dashboard='done']", timeout=60_000)
    assert session.page.locator("section.dashboard-item").get_attribute("data-state") == "loaded"
    return Audited(session.page.main_frame, "section.dashboard-item .caw-dash", app_page=False)


PAGES = {
    "detections": detections,
    "detections-of-an-offense": detections_of_an_offense,
    "tuning": tuning,
    "settings": settings,
    "playbook": playbook,
    "offense-widget": offense_widget,
    "dashboard-item": dashboard_item,
}


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("page", list(PAGES))
def test_no_serious_or_critical_axe_violation(as_user, tab_env, axe_source, page: str, theme: str) -> None:
    audited = PAGES[page](as_user, theme)
    if audited.app_page:
        assert audited.frame.evaluate("document.documentElement.className") == THEME_CLASSES[theme]
    violations = audit(audited.frame, axe_source, audited.include)
    problems = blocking(violations)
    assert not problems, f"{page} ({theme}): " + "\n".join(problems)
