"""Hunting searches run in QRadar without holding a request: start → handle, poll → rows, cancel, and a
handle works only for the user it was started for (the dev console's real Ariel engine over HTTPS)."""

from __future__ import annotations

import secrets
import time

import pytest

from tests.app.playbook.test_playbook_live import run_hunt

QUERY = {"query": "aws-access-keys"}


def start(client, headers, actor: str | None = None) -> dict:
    """Start a hunt; an ``actor`` of its own makes its AQL one no earlier search ran (QRadar answers an
    identical recent query with the search it already has)."""
    body = {**QUERY, "actor": actor} if actor else QUERY
    response = client.post("/api/hunting/run", json=body, headers=headers)
    assert response.status_code == 202, response.data
    return response.get_json()


def qradar_search_ids(devconsole) -> set[str]:
    return set(devconsole.api("admin").get(devconsole.url("/api/ariel/searches"), timeout=30).json())


def qradar_status(devconsole, search_id: str) -> str:
    url = devconsole.url(f"/api/ariel/searches/{search_id}")
    return devconsole.api("admin").get(url, timeout=30).json()["status"]


@pytest.fixture
def slow_searches(devconsole):
    devconsole.faults.slow_searches(30)
    try:
        yield
    finally:
        devconsole.faults.clear()


def test_start_answers_a_handle_at_once_and_polling_gives_the_rows(refreshed_app, client, login, devconsole):
    headers = login(client, "analyst")
    started = start(client, headers)
    assert started["status"] == "WAIT" and started["query"] == QUERY["query"]
    assert started["poll_url"] == f"/api/hunting/searches/{started['search_id']}"
    assert started["search_id"].startswith(started["qradar_search_id"] + ".")
    assert started["qradar_search_id"] in qradar_search_ids(devconsole)
    end = time.monotonic() + 60
    while (state := client.get(started["poll_url"]).get_json()) and not state["done"]:
        assert state["status"] in ("WAIT", "EXECUTE", "SORTING") and time.monotonic() < end, state
        time.sleep(0.1)
    assert state["status"] == "COMPLETED" and state["total"] == len(state["items"]) > 0
    assert {r["event_name"] for r in state["items"]} <= {"CreateAccessKey", "UpdateAccessKey"}
    assert set(state["columns"]) == set(state["items"][0])
    # Asked again (a lost answer, another tab): the same rows. QRadar expires the search; the app does not
    # delete it, as an identical hunt may share it.
    again = client.get(started["poll_url"]).get_json()
    assert again["done"] and again["items"] == state["items"]
    assert run_hunt(client, headers, "aws-access-keys")["items"] == state["items"]


def test_a_slow_search_is_running_when_polled_and_cancel_stops_it_in_qradar(
    refreshed_app, client, login, devconsole, slow_searches
):
    headers = login(client, "analyst")
    started = start(client, headers, f"cancel-me-{secrets.token_hex(4)}")
    began = time.monotonic()
    state = client.get(started["poll_url"])
    assert time.monotonic() - began < 5  # one status call: the request does not wait for the search
    assert state.status_code == 200 and state.get_json()["done"] is False, state.data
    assert state.get_json()["status"] in ("WAIT", "EXECUTE", "SORTING")
    assert client.delete(started["poll_url"]).status_code == 403  # no CSRF header
    cancelled = client.delete(started["poll_url"], headers=headers)
    assert cancelled.status_code == 200, cancelled.data
    assert cancelled.get_json()["status"] == "CANCELED"
    end = time.monotonic() + 15  # QRadar stops a cancelled search asynchronously
    while qradar_status(devconsole, started["qradar_search_id"]) != "CANCELED" and time.monotonic() < end:
        time.sleep(0.1)
    assert qradar_status(devconsole, started["qradar_search_id"]) == "CANCELED"  # long before its 30 s
    after = client.get(started["poll_url"])
    assert after.status_code == 409 and "cancelled" in after.get_json()["error"]["message"], after.data


def test_another_user_cannot_poll_or_cancel_a_hunt(refreshed_app, app, login, devconsole, slow_searches):
    analyst, tuner = app.test_client(), app.test_client()
    analyst_headers, tuner_headers = login(analyst, "analyst"), login(tuner, "tuner1")
    started = start(analyst, analyst_headers, f"not-yours-{secrets.token_hex(4)}")
    for answer in (tuner.get(started["poll_url"]), tuner.delete(started["poll_url"], headers=tuner_headers)):
        assert answer.status_code == 404, answer.data
        assert answer.get_json()["error"]["field"] == "search_id"
    # Untouched by those: still running for its owner, who can cancel it.
    assert qradar_status(devconsole, started["qradar_search_id"]) in ("WAIT", "EXECUTE", "SORTING")
    assert analyst.get(started["poll_url"]).get_json()["done"] is False
    assert analyst.delete(started["poll_url"], headers=analyst_headers).status_code == 200


def test_a_forged_or_malformed_search_id_is_refused(refreshed_app, client, login, devconsole):
    headers = login(client, "analyst")
    qradar_id = next(iter(qradar_search_ids(devconsole)), "0e9f1c2a-7d0b-4a55-9f0e-2b8c0b5d1a11")
    for bad in ("not-a-handle", "x" * 300, f"{qradar_id}.1.zz", "..", f"{qradar_id};DROP.1.{'a' * 64}"):
        for answer in (
            client.get(f"/api/hunting/searches/{bad}"),
            client.delete(f"/api/hunting/searches/{bad}", headers=headers),
        ):
            assert answer.status_code == 400, (bad, answer.data)
            assert answer.get_json()["error"]["field"] == "search_id"
    # Well-formed but not signed by the app for this user: refused, and QRadar is not asked.
    forged = f"{qradar_id}.{int(time.time() * 1000)}.{'0' * 64}"
    answer = client.get(f"/api/hunting/searches/{forged}")
    assert answer.status_code == 404 and "started for you" in answer.get_json()["error"]["message"]
