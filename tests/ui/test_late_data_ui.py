"""The Detections page shows what ``GET /api/status`` reports about late data: the largest
receipt-to-first-seen lag and how many detections only the late-data reconciliation found (in chromium,
through the dev console's proxy; the status answer is the app's own, with a late event's figures added)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.ui


def test_the_refresh_bar_shows_the_largest_lag_and_the_reconciled_count(as_user, tab_env) -> None:
    analyst = as_user("analyst")
    page = analyst.page
    pattern = "**/app_proxy/api/status*"

    def with_late_data(route, _request) -> None:
        response = route.fetch()
        status = response.json()
        assert "late_data" in status  # the app reports it; the page is given a late event's figures
        status["late_data"].update(max_lag_ms=3 * 3_600_000 + 7 * 60_000, reconciled_detections=4)
        route.fulfill(response=response, body=json.dumps(status))

    page.route(pattern, with_late_data)
    try:
        frame = analyst.open_console()
        frame.wait_for_selector("#late-data:not([hidden])")
        assert frame.locator("#late-data-lag").inner_text() == "3 h 7 min"
        assert frame.locator("#late-data-reconciled").inner_text() == "4"
    finally:
        page.unroute(pattern)


def test_the_page_shows_the_apps_own_late_data_figures(as_user, tab_env) -> None:
    frame = as_user("analyst").open_console()
    frame.wait_for_function("document.querySelector('#refresh-last').innerText !== '–'")
    late = tab_env.get("analyst", "/api/status")["late_data"]
    assert set(late) >= {"max_lag_ms", "reconciled_detections", "last_reconciliation"}
    if late["max_lag_ms"] is None:  # nothing arrived late in the shared console: nothing to show
        assert frame.locator("#late-data").is_hidden()
    else:
        frame.wait_for_selector("#late-data:not([hidden])")
        assert frame.locator("#late-data-reconciled").inner_text() == str(late["reconciled_detections"])
