"""Hostile requests: a property-based fuzz of the JSON API from its own OpenAPI document.

Schemathesis turns ``/api/openapi.json`` (as served by the running app) into Hypothesis strategies per
operation, both schema-valid ("positive") and schema-breaking ("negative") requests. Every generated request
goes over real HTTP to the app under real gunicorn (its own instance and store, see own_app.py, so the
fuzz's writes cannot change what other tests see), wired to the session's seeded dev console, as an admin
with a valid ``SEC`` cookie and matching ``QRadarCSRF`` cookie + header so it reaches the handlers; a
smaller pass sends the same kind of requests with no session. The fuzz is deterministic
(``derandomize=True``, no example database) and counts the requests it actually sent: at least 10,000.

For every response: no 5xx; every 4xx is ``{"error": {"status", "code", "message", "field"?}}`` naming the
problem; a 2xx matches the document's response schema. Separately: a body over 1 MiB is a 413 JSON error
on every operation that takes a body (declared or chunked), and an unknown field is a 400 naming it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from werkzeug.exceptions import NotFound
from werkzeug.routing import MapAdapter

from app import create_app
from tests.reliability.own_app import CountingSession, own_app, session_as

MIN_REQUESTS = 10_000
MIB = 1024 * 1024

# Examples per operation and mode. Hypothesis stops early once an operation's input space is exhausted
# (an operation without parameters has one positive example), so the rich operations carry the volume.
DEFAULT_EXAMPLES = 160
# Cheap read operations carry extra volume, to reach MIN_REQUESTS.
MORE_EXAMPLES = {
    ("GET", path): 280
    for path in (
        "/api/chains",
        "/api/chains/{chain_id}",
        "/api/detections",
        "/api/detections/{detection_id}",
        "/api/pulse/table",
        "/api/pulse/timeseries",
        "/api/tuning/audit",
    )
}
# Operations that make the app run an Ariel search on the dev console (seconds each, not milliseconds):
# fuzzed with few examples; their parsing is the same `json_body` the cheap operations exercise.
FEW_EXAMPLES = {("POST", "/api/hunting/run"): 12, ("POST", "/api/tuning/refsync"): 8}
UNAUTHENTICATED_EXAMPLES = 12
PUBLIC_PATHS = {"/api/openapi.json"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Above the app's own QRadar budgets (interactive searches: 120 s), so a slow console under a loaded
# machine is not mistaken for a hang; an app that never answers still fails.
REQUEST_TIMEOUT_S = 60

# No shrinking: every shrink step is another round trip, minutes for one failure; the failing request is
# printed in full instead.
FUZZ_SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
# gunicorn refuses a request line over 4094 bytes itself, with its own HTML 400, before the app sees it
# (QRadar's console proxy in front has a similar limit); a test below covers that case, and the fuzz
# keeps its URLs below it so that every request reaches the app.
MAX_REQUEST_LINE = 4000


@dataclass
class FuzzApp:
    base_url: str
    console: Any
    schema: Any
    document: dict
    routes: MapAdapter  # the app's own URL map, to tell which URLs name a route
    sessions: list[CountingSession] = field(default_factory=list)

    def session(self, user: str | None) -> CountingSession:
        session = session_as(self.console, user)
        self.sessions.append(session)
        return session

    @property
    def sent(self) -> int:
        return sum(session.sent for session in self.sessions)


@pytest.fixture(scope="module")
def fuzz_app(devconsole: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzApp]:
    store = tmp_path_factory.mktemp("fuzz_store")
    with own_app(devconsole, store) as base_url:
        admin = session_as(devconsole, "admin")
        # The fuzz's allowlist changes are synced to reference data on the shared dev console: give them
        # reference-set names of their own so they never touch what other tests' app syncs.
        suffix = secrets.token_hex(4)
        changed = admin.put(
            f"{base_url}/api/settings",
            timeout=30,
            json={
                "reference_set_name": f"CAW_Fuzz_{suffix}",
                "reference_map_name": f"CAW_FuzzReasons_{suffix}",
            },
        )
        assert changed.status_code == 200, changed.text
        document = admin.get(f"{base_url}/api/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(document)
        flask_app = create_app({"TESTING": True, "STORE_DIR": str(tmp_path_factory.mktemp("routes_store"))})
        yield FuzzApp(base_url, devconsole, schema, document, flask_app.url_map.bind("localhost"))


def operations(schema: Any) -> list[Any]:
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())  # an operation schemathesis cannot read is a broken document: raise
    return found


def check_error_body(response: requests.Response, what: str) -> dict:
    """A 4xx names the problem in the API's JSON error shape."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        f"{what}: {response.status_code} is not JSON: {response.text[:300]!r}"
    )
    body = response.json()
    # (A conflict may carry more beside "error", e.g. the tuning API's "current" entry on a stale edit.)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"{what}: {body!r}"
    error = body["error"]
    assert error["status"] == response.status_code, f"{what}: {error!r}"
    assert isinstance(error["code"], str) and error["code"], f"{what}: {error!r}"
    assert isinstance(error["message"], str) and len(error["message"]) >= 8, f"{what}: {error!r}"
    if error["code"] in ("unknown_field", "bad_field", "missing_field", "bad_parameter"):
        # The name itself may be any string the fuzz sent, even "" (an empty query parameter name).
        assert isinstance(error.get("field"), str), f"{what}: a field error without the field: {error!r}"
    return error


def check_response(case: Any, response: requests.Response) -> None:
    what = f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r:.300}"
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]!r}"
    if 400 <= response.status_code < 500:
        check_error_body(response, what)
    else:
        case.validate_response(response, checks=[response_schema_conformance, content_type_conformance])


REQUEST_ARGS = {"method", "url", "headers", "files", "data", "params", "auth", "cookies", "hooks", "json"}


def refusal_without_session(routes: MapAdapter, method: str, url: str) -> tuple[int, str]:
    """(status, error code) of a request with no QRadar session: the CSRF check comes first for an unsafe
    method (403), then routing (404 for a URL no route matches, e.g. an id beyond 64 bits), then the
    session check (401)."""
    if method not in SAFE_METHODS:
        return 403, "csrf_failed"
    try:
        routes.match(unquote(urlsplit(url).path), method=method)
    except NotFound:
        return 404, "not_found"
    return 401, "not_logged_in"


def fuzz_operation(app: FuzzApp, operation: Any, mode: Any, examples: int, user: str | None) -> int:
    session = app.session(user)
    before = session.sent

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url=app.base_url)
        prepared = session.prepare_request(
            requests.Request(**{k: v for k, v in kwargs.items() if k in REQUEST_ARGS})
        )
        if len(prepared.method) + len(prepared.path_url) + 10 > MAX_REQUEST_LINE:
            return  # not sent, so not counted
        # One connection per request: thousands of odd requests on pooled keep-alive connections would
        # park gunicorn's gthread workers on idle sockets of earlier sessions, and the next request would
        # wait behind them. The API under test is the same either way.
        prepared.headers["Connection"] = "close"
        response = session.send(prepared, timeout=REQUEST_TIMEOUT_S)
        check_response(case, response)
        if user is None and case.path not in PUBLIC_PATHS:
            expected = refusal_without_session(app.routes, prepared.method, prepared.url)
            answered = (response.status_code, response.json()["error"]["code"])
            assert answered == expected, f"{prepared.method} {prepared.path_url}: {answered}"

    try:
        run()
    except Unsatisfiable:
        # Some operations have no schema-breaking input at all (no parameters and no body, or only a
        # free-text path segment such as a preset id): nothing to send in negative mode.
        if mode != schemathesis.GenerationMode.NEGATIVE:
            raise
    finally:
        session.close()  # no idle sockets left holding server threads
    return session.sent - before


@pytest.mark.slow
@pytest.mark.stress
def test_fuzz_json_api_as_admin_and_without_session(fuzz_app: FuzzApp) -> None:
    per_operation: dict[str, int] = {}
    started = time.monotonic()
    for operation in operations(fuzz_app.schema):
        key = (operation.method.upper(), operation.path)
        examples = FEW_EXAMPLES.get(key, MORE_EXAMPLES.get(key, DEFAULT_EXAMPLES))
        sent = 0
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            sent += fuzz_operation(fuzz_app, operation, mode, examples, "admin")
        sent += fuzz_operation(
            fuzz_app, operation, schemathesis.GenerationMode.POSITIVE, UNAUTHENTICATED_EXAMPLES, None
        )
        per_operation[f"{key[0]} {key[1]}"] = sent
        print(f"{key[0]} {key[1]}: {sent} requests, {time.monotonic() - started:.0f} s", flush=True)
    print(json.dumps(per_operation, indent=1), "total", fuzz_app.sent)
    assert fuzz_app.sent >= MIN_REQUESTS, per_operation


# -- the document itself ----------------------------------------------------------------------------------


def flask_operations(flask_app: Any) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) for every registered ``/api/`` route."""
    found = set()
    for rule in flask_app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            found |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_every_api_route_is_in_the_openapi_document(app: Any) -> None:
    document = app.test_client().get("/api/openapi.json").get_json()
    described = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    }
    registered = flask_operations(app)
    assert registered - described == set(), "routes the OpenAPI document does not describe"
    assert described - registered == set(), "operations in the document that no route serves"
    assert len(registered) >= 40


# -- size limits and unknown fields -----------------------------------------------------------------------


def body_operations(fuzz_app: FuzzApp) -> list[tuple[str, str]]:
    """(METHOD, URL) of every operation that takes a JSON body, each path variable filled with 1."""
    found = []
    for path, item in fuzz_app.document["paths"].items():
        for method, operation in item.items():
            if method in ("post", "put", "patch") and "requestBody" in operation:
                url = fuzz_app.base_url + re.sub(r"\{[^}]+\}", "1", path)
                found.append((method.upper(), url))
    assert len(found) >= 12
    return found


def test_a_body_over_one_mib_is_a_413_json_error(fuzz_app: FuzzApp) -> None:
    admin = fuzz_app.session("admin")
    oversized = json.dumps({"note": "x" * MIB}).encode()
    assert len(oversized) > MIB
    for method, url in body_operations(fuzz_app):
        declared = admin.request(
            method, url, data=oversized, timeout=60, headers={"Content-Type": "application/json"}
        )
        # Chunked: no Content-Length to refuse up front, so the limit must hold while reading.
        chunked = admin.request(
            method,
            url,
            data=iter([oversized[: MIB // 2], oversized[MIB // 2 :]]),
            timeout=60,
            headers={"Content-Type": "application/json"},
        )
        for how, response in (("declared", declared), ("chunked", chunked)):
            assert response.status_code == 413, (
                f"{how} {method} {url}: {response.status_code} {response.text[:300]}"
            )
            error = check_error_body(response, f"{how} {method} {url}")
            assert error["code"] == "request_too_large"
            assert str(MIB) in error["message"]


def test_a_body_just_under_the_limit_is_read(fuzz_app: FuzzApp) -> None:
    """The control: the same kind of body below 1 MiB is parsed and refused for what it says, not its size."""
    admin = fuzz_app.session("admin")
    body = json.dumps({"zz_padding": "x" * (MIB - 100)}).encode()
    assert len(body) < MIB
    response = admin.post(
        f"{fuzz_app.base_url}/api/detections/triage",
        data=body,
        timeout=60,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert check_error_body(response, "padding")["field"] == "zz_padding"


def test_unknown_fields_are_refused_by_name(fuzz_app: FuzzApp) -> None:
    admin = fuzz_app.session("admin")
    wrong = []
    for method, url in body_operations(fuzz_app):
        # An edit names the version it edits (optimistic locking), checked before anything else.
        body = {"zz_no_such_field": True, **({"version": 1} if method == "PATCH" else {})}
        if url.endswith("/api/tuning/import"):  # a document from export, which says what it is first
            body = {**admin.get(f"{fuzz_app.base_url}/api/tuning/export", timeout=60).json(), **body}
        response = admin.request(method, url, json=body, timeout=60)
        error = check_error_body(response, f"{method} {url}") if response.status_code < 500 else {}
        if (
            (url.endswith("/1") or "/1/" in url)
            and response.status_code == 404
            and error["code"] == "not_found"
        ):
            continue  # entity 1 does not exist here: the app says so before reading the body
        if (
            response.status_code != 400
            or error.get("field") != "zz_no_such_field"
            or "zz_no_such_field" not in error.get("message", "")
        ):
            wrong.append(f"{method} {url}: {response.status_code} {response.text[:300]}")
    assert wrong == []


def test_request_line_over_gunicorns_limit_is_refused_before_the_app(fuzz_app: FuzzApp) -> None:
    """The one refusal that is not the app's JSON: gunicorn's own 400 for a request line over 4094 bytes
    (the fuzz stays below it). It must be a 4xx that says what is wrong, never a 5xx or a hang."""
    admin = fuzz_app.session("admin")
    response = admin.get(f"{fuzz_app.base_url}/api/detections", params={"q": "a" * 5000}, timeout=60)
    assert response.status_code == 400
    assert "Request Line is too large" in response.text
