"""Authorization matrix: every route the app registers × {no session, analyst, tuning
user, second approver, admin, an analyst with a restricted security profile, a user without Log Activity},
directly against the app under gunicorn and through the dev console proxy.

The routes come from ``app.url_map`` (not a hand list), and `POLICY` below is the expected permission of
each endpoint, written down independently of the code: a new route missing from `POLICY` fails the test,
and so does a stale entry. Users are the dev console's built-in ones (``tokens.json``); the app learns who
they are from the console's user_roles API with their own token.

A granted cell gets past authorization to the view's own answer (``granted_answers``). Probes change
nothing: unsafe requests carry a body the view refuses after the permission check (an unknown field →
400) or name an id that does not exist (404), so the shared ``live_app`` keeps its state.
A denied cell is a 401 without a session and a 403 ``forbidden`` JSON error for a user without the
permission. Separately, every unsafe route refuses a missing or wrong ``QRadarCSRF`` header with 403.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import pytest
import requests

from tests.reliability.own_app import session_as

# Expected permission per endpoint: "public" (no QRadar session needed), "view" (any QRadar user),
# "tune" (a tuning capability: tuner1, tuner2, admin), "admin" (ADMIN), "log_activity" (QRadar's Log
# Activity capability: everyone but nologs).
POLICY: dict[str, str] = {
    "debug": "public",  # QRadar's health check polls it without a session
    "static": "public",
    "playbook.static": "public",
    "playbook.sigma_rule": "public",  # a portable Sigma rule, downloadable on its own
    "api.openapi": "public",
    "api.get_settings": "admin",
    "api.put_settings": "admin",
    "auth.me": "view",
    "detection_api.list_chains": "view",
    "detection_api.get_chain": "view",
    "detection_api.list_detections": "view",
    "detection_api.get_detection": "view",
    "detection_api.triage_one": "view",  # analysts triage
    "detection_api.triage_bulk": "view",
    "detection_api.refresh_now": "view",
    "detection_api.cancel_refresh": "tune",  # a loop of cancels would keep detection blind
    "detection_api.cancel_refresh_post": "tune",
    "detection_api.status": "view",
    "tab_export.detections_csv": "view",
    "tab_links.detection_links": "view",
    "tab_overview.overview": "view",
    "tab.index": "view",
    "tab.tuning": "view",
    "tab.settings": "admin",
    "playbook_api.run_hunting_query": "log_activity",  # QRadar's Log Activity capability
    "playbook_api.poll_hunting_search": "log_activity",
    "playbook_api.cancel_hunting_search": "log_activity",
    "playbook_api.validation_coverage": "view",
    "playbook.index": "view",
    "pulse_api.pulse_table": "view",
    "pulse_api.pulse_timeseries": "view",
    "dashboard.item": "view",
    "offense.fragment_view": "view",
    "offense.playbook_action": "view",
    "tuning_api.list_audit": "view",
    "tuning_api.export_audit": "view",
    "tuning_api.list_entries": "view",
    "tuning_api.get_entry": "view",
    "tuning_api.export_tuning": "view",
    "tuning_api.list_presets": "view",
    "tuning_api.get_preset": "view",
    "tuning_api.preview_entry": "view",  # a what-if that changes nothing
    "tuning_api.get_refsync": "view",
    "tuning_api.get_settings": "view",
    "tuning_api.create_entry": "tune",
    "tuning_api.update_entry": "tune",
    "tuning_api.delete_entry": "tune",
    "tuning_api.approve_entry": "tune",
    "tuning_api.reject_entry": "tune",
    "tuning_api.import_tuning": "tune",
    "tuning_api.enable_preset": "tune",
    "tuning_api.disable_preset": "tune",
    "tuning_api.post_refsync": "tune",
    "tuning_api.put_settings": "admin",
}

# Who has which permission (docs/ARCHITECTURE.md, "Built-in users and capabilities"); None = no session.
USERS: list[str | None] = [None, "analyst", "tuner1", "tuner2", "admin", "restricted", "nologs"]
GRANTS = {
    "public": {None, "analyst", "tuner1", "tuner2", "admin", "restricted", "nologs"},
    "view": {"analyst", "tuner1", "tuner2", "admin", "restricted", "nologs"},
    "log_activity": {"analyst", "tuner1", "tuner2", "admin", "restricted"},
    "tune": {"tuner1", "tuner2", "admin"},
    "admin": {"admin"},
}

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MISSING_ID = 987_654_321  # no detection, chain, entry or offense has it
# Values for path variables, by variable name; files that exist for the static routes.
PATH_VALUES = {
    "detection_id": MISSING_ID,
    "chain_id": MISSING_ID,
    "entry_id": MISSING_ID,
    "offense_id": MISSING_ID,
    "preset_id": "no-such-preset",
    "search_id": "no-such-search",
}
STATIC_FILES = {"static": "css/app.css", "playbook.static": "playbook.css"}
# A body every unsafe view refuses once the caller is authorized (so nothing changes).
PROBE_BODY = {"authz_probe": 1}


def route_cells(flask_app: Any) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) for every registered route and method, path variables filled in."""
    cells = []
    for rule in flask_app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            values = {
                name: STATIC_FILES[rule.endpoint] if name == "filename" else PATH_VALUES[name]
                for name in rule.arguments
            }
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m, v=values: str(v[m.group(1)]), rule.rule)
            cells.append((rule.endpoint, method, path))
    return sorted(cells)


def test_policy_names_every_registered_endpoint(app: Any) -> None:
    registered = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert registered - set(POLICY) == set(), "routes without an expected permission in POLICY"
    assert set(POLICY) - registered == set(), "POLICY names endpoints the app no longer has"


def send(session: requests.Session, method: str, url: str) -> requests.Response:
    kwargs: dict[str, Any] = {"timeout": 60, "allow_redirects": False}
    if method in UNSAFE:
        kwargs["json"] = PROBE_BODY
    return session.request(method, url, **kwargs)


def granted_answers(endpoint: str, method: str, path: str) -> set[int]:
    """What an authorized probe gets: an unsafe one is refused for its body or its missing id (400 or 404,
    whichever the view checks first), a read of a missing object is 404 (but the Offense Summary fragment
    answers its HTML box for any offense), the GUI action without its offense context and a hunting
    search handle the app did not sign are 400, every other read 200."""
    if method in UNSAFE:
        return {400, 404}
    if endpoint == "offense.fragment_view":
        return {200}
    if str(MISSING_ID) in path or PATH_VALUES["preset_id"] in path:
        return {404}
    if endpoint == "offense.playbook_action":
        return {400}
    if PATH_VALUES["search_id"] in path:  # not a handle the app signed
        return {400}
    return {200}


def matrix(app: Any, live_app: Any, base: Any) -> list[str]:
    """Run every cell; return a description of each cell that does not behave as POLICY says."""
    wrong = []
    sessions = {user: session_as(live_app.console, user) for user in USERS}
    for session in sessions.values():
        session.verify = str(live_app.console.ca_path)
    # The visitor without a QRadar session still gets a matching CSRF pair, so that what refuses its
    # unsafe requests is the missing session (401), not the CSRF check (tested on its own below).
    csrf = secrets.token_hex(16)
    sessions[None].cookies.set("QRadarCSRF", csrf)
    sessions[None].headers["QRadarCSRF"] = csrf
    for endpoint, method, path in route_cells(app):
        level = POLICY[endpoint]
        for user in USERS:
            try:
                response = send(sessions[user], method, base(path))
            except requests.Timeout:
                wrong.append(f"{method} {path} as {user or 'no session'}: no answer in 60 s")
                continue
            cell = (
                f"{method} {path} as {user or 'no session'} ({level}): {response.status_code} "
                f"{response.text[:200]!r}"
            )
            if response.status_code >= 500:
                wrong.append(cell)
            elif user in GRANTS[level]:
                if response.status_code not in granted_answers(endpoint, method, path):
                    wrong.append(cell)
            elif user is None:
                if response.status_code != 401:
                    wrong.append(cell)
            elif response.status_code != 403 or response.json()["error"]["code"] != "forbidden":
                wrong.append(cell)
    return wrong


def test_matrix_directly_against_the_app(app: Any, live_app: Any) -> None:
    wrong = matrix(app, live_app, lambda path: live_app.base_url + path)
    assert wrong == []


def test_matrix_through_the_console_proxy(app: Any, live_app: Any) -> None:
    # The console lets no one without a session through to any app page (even the app's public ones).
    def proxied(path: str) -> str:
        return live_app.proxy_url(path)

    wrong = matrix(app, live_app, proxied)
    public_without_session = [cell for cell in wrong if "as no session (public): 401" in cell]
    assert [cell for cell in wrong if cell not in public_without_session] == []
    assert len(public_without_session) == sum(
        1 for endpoint, _, _ in route_cells(app) if POLICY[endpoint] == "public"
    )


def unsafe_cells(app: Any) -> list[tuple[str, str, str]]:
    cells = [cell for cell in route_cells(app) if cell[1] in UNSAFE]
    assert len(cells) >= 18  # the tuning, triage, refresh, hunting and settings writes (18 today)
    return cells


def csrf_variants(console: Any) -> dict[str, requests.Session]:
    """Admin sessions whose QRadarCSRF header is missing, wrong, or has no cookie to match."""
    variants = {}
    for name in ("missing header", "wrong header", "no cookie"):
        session = session_as(console, "admin")
        session.verify = str(console.ca_path)
        if name == "missing header":
            del session.headers["QRadarCSRF"]
        elif name == "wrong header":
            session.headers["QRadarCSRF"] = secrets.token_hex(16)
        else:
            session.cookies.set("QRadarCSRF", None)
        variants[name] = session
    return variants


@pytest.mark.parametrize("route", ["direct", "proxy"])
def test_unsafe_routes_need_the_csrf_header(app: Any, live_app: Any, route: str) -> None:
    base = (lambda path: live_app.base_url + path) if route == "direct" else live_app.proxy_url
    wrong = []
    for name, session in csrf_variants(live_app.console).items():
        for _, method, path in unsafe_cells(app):
            response = send(session, method, base(path))
            body = (
                response.json()
                if response.headers.get("Content-Type", "").startswith("application/json")
                else {}
            )
            # The app's JSON error, or (through the proxy, which checks first) the console's QRadar error.
            refused = response.status_code == 403 and (
                body.get("error", {}).get("code") == "csrf_failed"
                if route == "direct"
                else "QRadarCSRF" in body.get("message", "")
            )
            if not refused:
                wrong.append(f"{name}: {method} {path}: {response.status_code} {response.text[:200]!r}")
    assert wrong == []


def test_the_same_admin_session_with_the_header_gets_through(app: Any, live_app: Any) -> None:
    """The control for the CSRF test: with a matching header, every unsafe route gets to its view."""
    session = session_as(live_app.console, "admin")
    session.verify = str(live_app.console.ca_path)
    for endpoint, method, path in unsafe_cells(app):
        response = send(session, method, live_app.proxy_url(path))
        assert response.status_code in granted_answers(endpoint, method, path), (
            f"{method} {path}: {response.status_code} {response.text[:300]}"
        )


def test_second_approver_cell_only_someone_other_than_the_submitter_approves(client: Any, login: Any) -> None:
    """The one cell the route table cannot express: approving is 'tune', but not for one's own entry.
    In-process app (its own store), users resolved by the dev console, as everywhere else."""
    headers = login(client, "admin")
    suffix = secrets.token_hex(4)  # this store's reference data must not overwrite other tests'
    changed = client.put(
        "/api/settings",
        headers=headers,
        json={
            "reference_set_name": f"CAW_Authz_{suffix}",
            "reference_map_name": f"CAW_AuthzReasons_{suffix}",
        },
    )
    assert changed.status_code == 200, changed.get_json()
    headers = login(client, "tuner1")
    created = client.post(
        "/api/tuning/entries",
        headers=headers,
        json={
            "platforms": ["AWS"],
            "actor_id": f"arn:aws:iam::111122223333:role/authz-{suffix}",
            "justification": "authorization matrix: four-eyes check",
            "expires_at": int(time.time() * 1000) + 7 * 86_400_000,
        },
    )
    assert created.status_code == 201, created.get_json()
    entry = created.get_json()["entry"]
    assert entry["status"] == "pending"
    decision = {"version": entry["version"]}
    url = f"/api/tuning/entries/{entry['id']}/approve"

    own = client.post(url, headers=login(client, "tuner1"), json=decision)
    assert own.status_code == 403 and own.get_json()["error"]["code"] == "same_user", own.get_json()
    analyst = client.post(url, headers=login(client, "analyst"), json=decision)
    assert analyst.status_code == 403 and analyst.get_json()["error"]["code"] == "forbidden"
    second = client.post(url, headers=login(client, "tuner2"), json=decision)
    assert second.status_code == 200, second.get_json()
    assert second.get_json()["entry"]["status"] == "active"
