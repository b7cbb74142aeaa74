"""The tab shows what QRadar's delivery did to a detection (issue 13): the coalesced creation's "possible
success" note and its pivot to the raw events, a truncated creation's unknown outcome, and the coalescing
health check's warning."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.ui


def detection_of_item(tab_env, key: str) -> dict:
    (item,) = [i for i in tab_env.devconsole.scenario["items"] if i["key"] == key]
    (creation,) = [e for e in item["events"] if e["role"] == "creation"]
    listed = tab_env.get("analyst", "api/detections", target=creation["target_account"], limit=50)["items"]
    (found,) = [d for d in listed if d["event_name"] == "CreateUser"]
    return found


def test_possible_success_and_truncated_payload_are_shown_in_the_panel(as_user, tab_env) -> None:
    coalesced = detection_of_item(tab_env, "delivery-coalesced-create-user")
    assert coalesced["outcome_label"] == "possible success, 2 coalesced"
    analyst = as_user("analyst")
    frame = analyst.open_app(f"/tab/?detection={coalesced['id']}")
    frame.wait_for_selector("#panel:not([hidden]) #panel-outcome")
    assert "Possible success, 2 coalesced" in frame.locator("#panel-outcome").inner_text()
    assert "possible success, 2 coalesced" in frame.locator("#panel-body").inner_text()
    frame.wait_for_selector("#link-coalesced-events")
    href = frame.locator("#link-coalesced-events").get_attribute("href")
    assert "/console/do/ariel/arielSearch" in href and "eventcount" in href

    truncated = detection_of_item(tab_env, "delivery-truncated-create-user")
    frame = analyst.open_app(f"/tab/?detection={truncated['id']}")
    frame.wait_for_selector("#panel:not([hidden]) #panel-outcome")
    assert "Outcome unknown: the payload is truncated" in frame.locator("#panel-outcome").inner_text()
    assert "unknown (payload truncated)" in frame.locator("#panel-body").inner_text()


def test_the_tab_warns_when_cloud_log_sources_coalesce(as_user, tab_env) -> None:
    deadline = time.monotonic() + 60
    while not (tab_env.get("analyst", "api/status").get("coalescing") or {}).get("warning"):
        assert time.monotonic() < deadline, "the coalescing check never reported"
        time.sleep(1)
    frame = as_user("analyst").open_console()
    frame.wait_for_selector("#coalescing-notice .cds--inline-notification")
    assert "Coalescing is on" in frame.locator("#coalescing-notice").inner_text()
