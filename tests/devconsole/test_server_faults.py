"""Fault injection over real HTTPS: the next N calls of an endpoint fail (500/1020, 503/1010), hang past
a client timeout or see an expired token; searches end in ERROR; only the admin may switch faults."""

from __future__ import annotations

import uuid

import pytest
import requests

from devconsole.faults import FaultInjector


@pytest.fixture
def faults(devconsole):
    devconsole.faults.clear()
    yield devconsole.faults
    devconsole.faults.clear()


def offense_types(devconsole) -> requests.Response:
    return devconsole.api().get(devconsole.url("/api/siem/offense_types"), timeout=10)


def test_next_n_calls_fail_with_500_then_recover(devconsole, faults, assert_qradar_error):
    faults.fail("/api/siem/offense_types", count=2)
    assert_qradar_error(offense_types(devconsole), 500, 1020)
    assert_qradar_error(offense_types(devconsole), 500, 1020)
    assert offense_types(devconsole).status_code == 200


def test_unavailable_matches_a_pattern_and_a_method(devconsole, faults, assert_qradar_error):
    faults.unavailable("/api/ariel/searches*", count=1, method="POST")
    api = devconsole.api()
    assert api.get(devconsole.url("/api/ariel/searches"), timeout=10).status_code == 200
    response = api.post(
        devconsole.url("/api/ariel/searches"),
        params={"query_expression": "SELECT qid FROM events LAST 1 MINUTES"},
        timeout=10,
    )
    assert_qradar_error(response, 503, 1010)
    assert offense_types(devconsole).status_code == 200


def test_expired_token(devconsole, faults, assert_qradar_error):
    faults.expire_token("/api/config/access/*")
    response = devconsole.api("analyst").get(
        devconsole.url("/api/config/access/users?current_user=true"), timeout=10
    )
    assert_qradar_error(response, 401, 18)
    again = devconsole.api("analyst").get(
        devconsole.url("/api/config/access/users?current_user=true"), timeout=10
    )
    assert again.status_code == 200


def test_hang_outlasts_the_client_timeout(devconsole, faults):
    faults.hang("/api/siem/offense_types", seconds=30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        devconsole.api().get(devconsole.url("/api/siem/offense_types"), timeout=1)
    faults.clear()  # releases the hanging request on the server
    assert offense_types(devconsole).status_code == 200


def test_searches_end_in_error(devconsole, faults):
    faults.error_searches(1, "Injected: Ariel ran out of disk")
    status, rows = devconsole.run_search(f"SELECT qid AS e{uuid.uuid4().hex[:8]} FROM events LAST 1 HOURS")
    assert status["status"] == "ERROR"
    assert status["error_messages"][0]["message"] == "Injected: Ariel ran out of disk"
    assert rows == []
    status, _ = devconsole.run_search(f"SELECT qid AS e{uuid.uuid4().hex[:8]} FROM events LAST 1 HOURS")
    assert status["status"] == "COMPLETED"


def test_fault_state_is_visible_and_clearable(devconsole, faults):
    faults.fail("/api/help/*", count=3)
    faults.slow_searches(2.5)
    state = faults.state()
    assert state["rules"][0]["path"] == "/api/help/*"
    assert state["rules"][0]["remaining"] == 3
    assert state["searches"]["extra_seconds"] == 2.5
    cleared = faults.clear()
    assert cleared["rules"] == []
    assert cleared["searches"]["extra_seconds"] == 0


def test_only_the_admin_switches_faults(devconsole, assert_qradar_error):
    url = devconsole.url("/devconsole/faults")
    body = {"action": "add", "kind": "error", "path": "/api/*"}
    response = requests.post(
        url, json=body, headers={"SEC": devconsole.tokens["analyst"]}, verify=devconsole.ca_path, timeout=10
    )
    assert_qradar_error(response, 403, 26)
    response = requests.post(url, json=body, verify=devconsole.ca_path, timeout=10)
    assert_qradar_error(response, 401, 18)


@pytest.mark.parametrize(
    "body",
    [
        {"action": "add", "kind": "explode", "path": "/api/*"},
        {"action": "add", "kind": "error"},
        {"action": "add", "kind": "error", "path": "api/*"},
        {"action": "dance"},
        {"action": "add", "kind": "error", "path": "/api/*", "colour": "red"},
    ],
)
def test_bad_fault_commands_are_422(devconsole, faults, assert_qradar_error, body):
    response = requests.post(
        devconsole.url("/devconsole/faults"),
        json=body,
        headers={"SEC": devconsole.tokens["admin"]},
        verify=devconsole.ca_path,
        timeout=10,
    )
    assert_qradar_error(response, 422, 1005)


def test_in_process_injector_consumes_rules_in_order():
    injector = FaultInjector()
    injector.add("error", "/api/ariel/*", count=1, method="GET")
    assert injector.take("POST", "/api/ariel/searches") is None
    rule = injector.take("GET", "/api/ariel/searches")
    assert rule is not None
    assert rule.kind == "error"
    assert injector.take("GET", "/api/ariel/searches") is None


def test_a_hanging_request_does_not_block_other_clients(devconsole, faults):
    import threading

    faults.hang("/api/siem/offense_types", seconds=60)
    outcome: list[str] = []

    def hanging_call() -> None:
        try:
            devconsole.api().get(devconsole.url("/api/siem/offense_types"), timeout=30)
            outcome.append("answered")
        except requests.RequestException as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=hanging_call)
    thread.start()
    try:
        # wait until the server has taken the hang rule (the hanging request is in progress)
        for _ in range(100):
            if not faults.state()["rules"]:
                break
            threading.Event().wait(0.05)
        assert faults.state()["rules"] == []
        assert outcome == []
        other = devconsole.api("analyst").get(
            devconsole.url("/api/config/access/users?current_user=true"), timeout=10
        )
        assert other.status_code == 200
        assert outcome == [], "the hanging request is still waiting while another client was served"
    finally:
        faults.clear()
        thread.join(30)
    assert outcome == ["answered"]
