"""The self-check in the browser: an admin misspells a configured event name, the live refresher's
self-check (due at once after the change) names it, and the tab shows it to an analyst in chromium."""

from __future__ import annotations

import time

import pytest

from app.aql.detection import AWS, DEFAULT_EVENT_NAMES
from tests.ui.conftest import screenshot

pytestmark = pytest.mark.ui

MISSPELLED = "CreateUsr"
MESSAGE = (
    f"no QID named '{MISSPELLED}' for Amazon AWS CloudTrail on this console: no detections can come from it"
)


def put_aws_names(tab_env, names: list[str]) -> None:
    session = tab_env.api("admin")
    response = session.put(
        tab_env.live_app.proxy_url("api/settings"), json={"event_names_aws": names}, timeout=60
    )
    assert response.status_code == 200, response.text


def wait_for_problem(tab_env, present: bool, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    found: dict = {}
    while time.monotonic() < deadline:
        found = tab_env.get("admin", "api/status")["self_check"]
        if (MESSAGE in found["problems"]) == present and not found["stale"]:
            return found
        time.sleep(1)
    pytest.fail(f"the self-check did not {'name' if present else 'drop'} {MISSPELLED!r}: {found}")


def test_misspelled_event_name_is_named_on_the_tab(as_user, tab_env) -> None:
    put_aws_names(tab_env, [*DEFAULT_EVENT_NAMES[AWS], MISSPELLED])
    try:
        wait_for_problem(tab_env, present=True)
        analyst = as_user("analyst")
        frame = analyst.open_console()
        notice = frame.locator("#self-check")
        notice.wait_for(timeout=30_000)
        items = notice.locator(".caw-self-check__item").all_inner_texts()
        assert MESSAGE in [t.strip() for t in items]
        assert "resolve" in notice.locator(".cds--inline-notification__title").inner_text()
        screenshot(analyst.page, "self-check-notice")
    finally:
        put_aws_names(tab_env, list(DEFAULT_EVENT_NAMES[AWS]))
        wait_for_problem(tab_env, present=False)
