"""Hostile log content never runs, never breaks the layout, never becomes a formula.

Every payload of ``HOSTILE_PAYLOADS`` is placed in every field the app extracts (actor, actor ID, target
account / ID / type where the format carries one, user agent, correlation ID, source IP, AWS account →
log source name) of one crafted raw account-creation record per platform (CloudTrail, Entra ID audit,
Office 365, Google Cloud audit). The records go through the dev console's real ingestion
(`devconsole.ingest.ingest_records`) into this module's own data directory, two offenses link them, and
the app's own refresher (`python -m app.refresher --once`) turns them into detections — the shared seeded
console is not touched.

This module's console runs with ``serve --csp off``: real QRadar's Content-Security-Policy is unknown, so
the app's pages and the HTML it injects into console pages (fragment, dashboard item) must be safe
without one. In Debian's chromium every page is guarded (a dialog, an uncaught error, a failed or
off-host request fails the test), and every payload that could run sets ``window.__pwned``, trapped on
every frame before any page script runs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from devconsole.faults import FaultClient
from devconsole.ingest import ingest_records
from devconsole.store import EventStore
from tests.app.conftest import LiveApp, qradar_env
from tests.conftest import APP_ID, REPO_ROOT, DevConsole, free_port, stop_devconsole
from tests.reliability.hostile_corpus import CANARY, HOSTILE_PAYLOADS, Payload
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, ConsoleBrowser, screenshot

# Its own console, app and refresher, and (most tests) Debian's chromium.
pytestmark = pytest.mark.slow

PLATFORMS = ("AWS", "Azure AD", "Office 365", "GCP")
TENANT = "5b7e2a4c-9d13-4f6e-8a21-c0ffee1136a3"
VIEWPORT_WIDTH = 1280
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Fields of a detection that carry the payload, per platform (what each format lets an attacker set).
FIELDS = {
    "AWS": ("actor", "actor_id", "target_account", "target_id", "user_agent", "source_ip", "log_source"),
    "Azure AD": (
        "actor",
        "actor_id",
        "target_account",
        "target_id",
        "target_type",
        "user_agent",
        "source_ip",
    ),
    "Office 365": ("actor", "actor_id", "target_account", "target_type", "user_agent", "source_ip"),
    "GCP": ("actor", "actor_id", "target_account", "target_id", "user_agent", "source_ip"),
}


# --- crafted raw records -------------------------------------------------------------------------------


def _iso(ms: int, digits: int = 0, zone: str = "Z") -> str:
    at = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    return text + ("." + "0" * digits if digits else "") + zone


def correlation(payload: Payload, platform: str) -> str:
    # Unique per record (the Entra/O365 twin merge and de-duplication must keep every record apart).
    return f"{payload.value}#{payload.key}-{platform}"


def aws_record(p: Payload, ms: int) -> dict:
    v = p.value
    return {
        "eventVersion": "1.08",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "eventTime": _iso(ms),
        "awsRegion": "us-east-1",
        "sourceIPAddress": v,
        "userAgent": v,
        "requestID": correlation(p, "AWS"),
        "eventID": f"{p.key}-aws",
        "eventType": "AwsApiCall",
        "recipientAccountId": v,
        "readOnly": False,
        "userIdentity": {"type": "IAMUser", "userName": v, "arn": v, "principalId": v, "accountId": v},
        "requestParameters": {"userName": v, "path": "/"},
        "responseElements": {"user": {"userName": v, "arn": v, "userId": v, "path": "/"}},
    }


def entra_record(p: Payload, ms: int) -> dict:
    v, corr = p.value, correlation(p, "Azure AD")
    return {
        "time": _iso(ms, 7),
        "resourceId": f"/tenants/{TENANT}/providers/Microsoft.aadiam",
        "operationName": "Add user",
        "operationVersion": "1.0",
        "category": "AuditLogs",
        "tenantId": TENANT,
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": v,
        "correlationId": corr,
        "identity": v,
        "Level": 4,
        "properties": {
            "id": f"Directory_{p.key}",
            "category": "UserManagement",
            "correlationId": corr,
            "result": "success",
            "resultReason": "",
            "activityDisplayName": "Add user",
            "activityDateTime": _iso(ms, 7, "+00:00"),
            "loggedByService": "Core Directory",
            "operationType": "Add",
            "initiatedBy": {
                "user": {"id": v, "displayName": v, "userPrincipalName": v, "ipAddress": v, "roles": []}
            },
            "targetResources": [
                {
                    "id": v,
                    "displayName": v,
                    "type": v,
                    "userPrincipalName": v,
                    "modifiedProperties": [
                        {"displayName": "DisplayName", "oldValue": None, "newValue": json.dumps([v])}
                    ],
                }
            ],
            "additionalDetails": [{"key": "User-Agent", "value": v}],
        },
    }


def o365_record(p: Payload, ms: int) -> dict:
    # "Add service principal." (not "Add user.") so it is never merged into the Entra record as a twin.
    v = p.value
    return {
        "CreationTime": _iso(ms, 0, ""),
        "Id": f"{p.key}-o365",
        "Operation": "Add service principal.",
        "OrganizationId": TENANT,
        "RecordType": 8,
        "ResultStatus": "Success",
        "UserKey": v,
        "UserType": 0,
        "Version": 1,
        "Workload": "AzureActiveDirectory",
        "ClientIP": v,
        "ActorIpAddress": v,
        "UserId": v,
        "ObjectId": v,
        "InterSystemsId": correlation(p, "Office 365"),
        "Actor": [{"ID": v, "Type": 5}],
        "Target": [{"ID": v, "Type": 2}],
        "ExtendedProperties": [
            {"Name": "extendedAuditEventCategory", "Value": v},
            {"Name": "User-Agent", "Value": v},
        ],
    }


def gcp_record(p: Payload, ms: int) -> dict:
    v = p.value
    return {
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": {},
            "authenticationInfo": {"principalEmail": v},
            "requestMetadata": {
                "callerIp": v,
                "callerSuppliedUserAgent": v,
                "requestAttributes": {},
                "destinationAttributes": {},
            },
            "serviceName": "iam.googleapis.com",
            "methodName": "google.iam.admin.v1.CreateServiceAccount",
            "authorizationInfo": [
                {
                    "resource": "projects/acme-prod-4411",
                    "granted": True,
                    "permission": "iam.serviceAccounts.create",
                }
            ],
            "resourceName": "projects/acme-prod-4411",
            "request": {"accountId": v, "serviceAccount": {"displayName": v}},
            "response": {"email": v, "uniqueId": v, "name": v, "displayName": v},
        },
        "insertId": correlation(p, "GCP"),
        "resource": {"type": "service_account", "labels": {"project_id": "acme-prod-4411"}},
        "timestamp": _iso(ms, 9),
        "severity": "NOTICE",
        "logName": "projects/acme-prod-4411/logs/cloudaudit.googleapis.com%2Factivity",
    }


# Preset suggestions (tuning page) list actors whose detections carry a preset's immutable evidence, at most
# 20 per preset: the script payloads also come as AWS records a CloudFormation stack made (invokedBy).
SUGGESTION_PRESETS = (("iac", "cloudformation.amazonaws.com"),)
SUGGESTED = tuple(p for p in HOSTILE_PAYLOADS if p.kind == "xss")[:20]


def suggestion_record(p: Payload, ms: int, index: int) -> dict:
    record = aws_record(p, ms)
    preset_id, invoked_by = SUGGESTION_PRESETS[index // 20]
    record.update(
        sourceIPAddress=invoked_by,
        userAgent=invoked_by,
        eventID=f"{p.key}-{preset_id}",
        requestID=f"{p.key}-{preset_id}",
    )
    return record


# Event (QID) names come from the log too. The detection matches configured names, which an administrator
# may widen with wildcards: with "CreateUser%" configured, "CreateUser<script>…" is a detection as well.
EVENT_NAME_WILDCARD = "CreateUser%"
EVENT_NAMED = tuple(p for p in HOSTILE_PAYLOADS if p.kind == "xss")[:12]


def event_name_record(p: Payload, ms: int) -> dict:
    record = aws_record(p, ms)
    record.update(eventName="CreateUser" + p.value, eventID=f"{p.key}-evname", requestID=f"{p.key}-evname")
    return record


BUILDERS: dict[str, Callable[[Payload, int], dict]] = {
    "AWS": aws_record,
    "Azure AD": entra_record,
    "Office 365": o365_record,
    "GCP": gcp_record,
}


def hostile_records(now_ms: int) -> list[tuple[str, Payload, dict]]:
    """One record per (platform, payload), a second apart, all within the last two hours."""
    out = []
    start = now_ms - 2 * 3_600_000
    for i, (platform, build) in enumerate(BUILDERS.items()):
        for j, payload in enumerate(HOSTILE_PAYLOADS):
            out.append((platform, payload, build(payload, start + (i * len(HOSTILE_PAYLOADS) + j) * 1000)))
    base = start + len(BUILDERS) * len(HOSTILE_PAYLOADS) * 1000
    for k, payload in enumerate(SUGGESTED):
        out.append(("AWS suggestion", payload, suggestion_record(payload, base + k * 1000, k)))
    base += len(SUGGESTED) * 1000
    for k, payload in enumerate(EVENT_NAMED):
        out.append(("AWS event name", payload, event_name_record(payload, base + k * 1000)))
    return out


# --- this module's own console + app + refresher ----------------------------------------------------------


@dataclass
class HostileEnv:
    console: DevConsole
    live_app: object
    offense_ids: list[int]
    times: dict[tuple[str, str], int]  # (platform, payload key) -> the record's event time
    detections: list[dict]  # every stored detection

    def api(self, user: str = "admin") -> requests.Session:
        return self.live_app.session_as(user)

    def get(self, path: str, user: str = "admin", **params: object) -> requests.Response:
        return self.api(user).get(self.live_app.proxy_url(path), params=params, timeout=120)

    def detection_for(self, platform: str, payload: Payload) -> dict:
        at = self.times[(platform, payload.key)]
        cloud = "AWS" if platform.startswith("AWS ") else platform
        found = [d for d in self.detections if d["cloud_platform"] == cloud and d["event_time"] == at]
        assert len(found) == 1, (platform, payload.key, len(found))
        return found[0]


def _start_console(data_dir: Path, app_port: int) -> DevConsole:
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devconsole",
                "serve",
                "--data",
                str(data_dir),
                "--port",
                "0",
                "--app-url",
                f"http://127.0.0.1:{app_port}",
                "--manifest",
                str(REPO_ROOT / "manifest.json"),
                "--app-id",
                str(APP_ID),
                "--csp",
                "off",
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base_url = process.stdout.readline().decode().strip()
    if not base_url.startswith("https://127.0.0.1:"):
        process.kill()
        pytest.fail(f"devconsole serve did not start: {log_path.read_text()[-2000:]}")
    ca_path = str(data_dir / "ca.pem")
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(base_url + "/devconsole/health", verify=ca_path, timeout=5).raise_for_status()
            break
        except requests.RequestException:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"devconsole serve never answered: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
    tokens = json.loads((data_dir / "tokens.json").read_text())
    return DevConsole(
        base_url=base_url,
        port=int(base_url.rsplit(":", 1)[1]),
        data_dir=data_dir,
        ca_path=ca_path,
        tokens=tokens,
        scenario={},
        app_id=APP_ID,
        app_port=app_port,
        faults=FaultClient(base_url, tokens["admin"], ca_path),
        process=process,
    )


@pytest.fixture(scope="module")
def hostile_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileEnv]:
    data_dir = tmp_path_factory.mktemp("hostile_console")
    records = hostile_records(int(time.time() * 1000))
    store = EventStore.in_dir(data_dir)
    # Whole payloads, one event each: what is tested here is the content, not QRadar's delivery.
    report = ingest_records(
        store, [r for _, _, r in records], collect_ids=True, max_payload_bytes=None, coalescing=False
    )
    assert report.rejected == [], report.rejected[:5]
    assert report.ingested == len(records)
    event_ids = dict(report.event_ids or [])
    # Two offenses linking the hostile events (the fragment lists at most 200 rows per offense).
    offense_ids = []
    main = len(PLATFORMS) * len(HOSTILE_PAYLOADS)
    for part in (range(0, main // 2), range(main // 2, main)):
        times = [_record_ms(records[i][2]) for i in part]
        oid = store.add_offense(
            HOSTILE_PAYLOADS[0].value,
            min(times) - 60_000,
            max(times) + 60_000,
            offense_source=HOSTILE_PAYLOADS[1].value,
            magnitude=8,
            severity=8,
        )
        store.link_offense_events(oid, [event_ids[i] for i in part])
        offense_ids.append(oid)

    console = _start_console(data_dir, free_port())
    store_dir = tmp_path_factory.mktemp("hostile_app_store")
    env_vars = {
        **os.environ,
        **qradar_env(console),
        "APP_STORE_DIR": str(store_dir),
        "APP_QRADAR_TRANSPORT": "http",
    }
    gunicorn = _start_app(console, env_vars, store_dir)
    try:
        live = LiveApp(f"http://127.0.0.1:{console.app_port}", console, store_dir, gunicorn)
        from app.aql.detection import DEFAULT_EVENT_NAMES

        widened = live.session_as("admin").put(
            live.proxy_url("api/settings"),
            timeout=60,
            json={"event_names_aws": [*DEFAULT_EVENT_NAMES["AWS"], EVENT_NAME_WILDCARD]},
        )
        assert widened.status_code == 200, widened.text[:300]
        refreshed = subprocess.run(
            [sys.executable, "-m", "app.refresher", "--once"],
            cwd=REPO_ROOT,
            env=env_vars,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert refreshed.returncode == 0, refreshed.stdout[-2000:] + refreshed.stderr[-2000:]
        times = {
            (platform, p.key): _record_ms(r)
            for platform, p, r in records
            if platform in (*PLATFORMS, "AWS event name")
        }
        env = HostileEnv(console, live, offense_ids, times, [])
        env.detections = _all_detections(env)
        yield env
    finally:
        gunicorn.terminate()
        try:
            gunicorn.wait(timeout=20)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
            gunicorn.wait()
        stop_devconsole(console)


def _start_app(console: DevConsole, env_vars: dict[str, str], store_dir: Path) -> subprocess.Popen:
    """The app under gunicorn on the console's app port, as QRadar runs it."""
    base_url = f"http://127.0.0.1:{console.app_port}"
    log_path = store_dir / "gunicorn.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{console.app_port}",
                "--workers",
                "2",
                "--threads",
                "2",
                "--preload",
                "app:create_app()",
            ],
            cwd=REPO_ROOT,
            env=env_vars,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base_url}/debug", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"gunicorn did not answer /debug: {log_path.read_text()[-2000:]}")
        time.sleep(0.2)


def _record_ms(record: dict) -> int:
    text = record.get("eventTime") or record.get("time") or record.get("timestamp") or record["CreationTime"]
    text = text.replace("Z", "+00:00")
    if "+" not in text[19:]:
        text += "+00:00"
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _all_detections(env: HostileEnv) -> list[dict]:
    items: list[dict] = []
    while True:
        body = env.get("api/detections", limit=200, offset=len(items), start=0).json()
        items += body["items"]
        if len(items) >= body["total"] or not body["items"]:
            return items


# --- the values arrive intact in every field --------------------------------------------------------------


def test_every_payload_reaches_every_extracted_field(hostile_env: HostileEnv) -> None:
    assert len(HOSTILE_PAYLOADS) >= 50
    assert len(hostile_env.detections) == (
        len(PLATFORMS) * len(HOSTILE_PAYLOADS) + len(SUGGESTED) + len(EVENT_NAMED)
    )
    missing = []
    for platform in PLATFORMS:
        for payload in HOSTILE_PAYLOADS:
            detection = hostile_env.detection_for(platform, payload)
            for field in FIELDS[platform]:
                value = (detection.get(field) or "").strip()
                # Stored as sent, or cut to the app's field limit (the start kept).
                whole = payload.value.strip()
                kept = whole.startswith(value) and len(value) >= min(len(whole), 1000)
                if not (kept or (field == "log_source" and whole in value)):
                    missing.append((platform, payload.key, field, value[:40]))
    for payload in EVENT_NAMED:
        detection = hostile_env.detection_for("AWS event name", payload)
        if detection.get("event_name") != "CreateUser" + payload.value:
            missing.append(("AWS event name", payload.key, "event_name", detection.get("event_name")))
    assert not missing, missing[:20]


# --- the browser ------------------------------------------------------------------------------------------

# Runs before any page script in every frame: a payload that sets window.__pwned (or parent.__pwned) is
# recorded on the top window and reported on the console, even if the frame goes away afterwards.
CANARY_TRAP = """
(() => {
  let value;
  Object.defineProperty(window, "CANARY", {configurable: false, get() { return value; }, set(v) {
    value = v;
    try { (window.top.__pwnedLog = window.top.__pwnedLog || []).push(String(v)); } catch (e) {}
    console.error("CANARY=" + v);
  }});
})();
""".replace("CANARY", CANARY)

# Attributes and script text that only exist if a payload was parsed as markup (markup payloads without
# script are checked by finding their markup as text on the page).
INJECTED_MARKUP = r"""
() => {
  const found = [];
  for (const el of document.querySelectorAll("*")) {
    for (const a of el.attributes) {
      // A URL attribute that runs script (a payload's own text inside an encoded query string is data).
      const urlAttr = ["href", "src", "action", "formaction", "data", "xlink:href"].includes(a.name);
      if (a.name.startsWith("on") || a.name === "srcdoc"
          || (urlAttr && /^\s*(javascript|vbscript|data\s*:\s*text\/html)/i.test(a.value))) {
        found.push(el.tagName + " " + a.name + "=" + a.value.slice(0, 60));
      }
    }
    // A JSON data block (Jinja's tojson escapes < > & ') is data; script or style text is not.
    const jsonData = el.tagName === "SCRIPT" && el.type === "application/json";
    const code = el.tagName === "SCRIPT" || el.tagName === "STYLE";
    if (code && !jsonData && el.textContent.includes("__pwned")) {
      found.push(el.tagName + ": " + el.textContent.slice(0, 80));
    }
  }
  return found;
}
"""


class BrowserThread:
    """Playwright's sync API allows one instance per thread and the UI suite may run its own in the main
    thread of the same session, so this module drives chromium from its own worker thread."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hostile-chromium")
        self.pool.submit(self._launch).result()

    def _launch(self) -> None:
        from playwright.sync_api import sync_playwright

        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )

    def run(self, steps: Callable[[object], None]) -> None:
        self.pool.submit(steps, self.browser).result()

    def close(self) -> None:
        def stop() -> None:
            self.browser.close()
            self.playwright.stop()

        self.pool.submit(stop).result()
        self.pool.shutdown()


@pytest.fixture(scope="module")
def browser_thread() -> Iterator[BrowserThread]:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is missing at /usr/bin/chromium (never `playwright install`)")
    worker = BrowserThread()
    yield worker
    worker.close()


class HostileSession:
    """A guarded console session (tests/ui's ConsoleBrowser) with the canary trap on every frame."""

    def __init__(self, browser, env: HostileEnv, user: str = "admin") -> None:
        self.fired: list[str] = []
        self.console = ConsoleBrowser.__new__(ConsoleBrowser)
        # ConsoleBrowser logs in from its constructor; the trap must be installed before that page loads.
        from tests.ui.conftest import Guards, guard_page

        self.console.devconsole, self.console.user, self.console.guards = env.console, user, Guards()
        # The app's own Content-Security-Policy is bypassed: these tests prove its HTML safe without one.
        self.console.context = browser.new_context(
            viewport={"width": VIEWPORT_WIDTH, "height": 800},
            ignore_https_errors=True,
            accept_downloads=True,
            bypass_csp=True,
        )
        self.console.context.add_init_script(CANARY_TRAP)
        self.console.context.on("page", lambda page: self._watch(page, guard_page))
        self.console.page = self.console.context.new_page()
        self.console.login()

    def _watch(self, page, guard_page) -> None:
        guard_page(page, self.console.guards)
        page.on("console", lambda msg: self.fired.append(msg.text) if f"{CANARY}=" in msg.text else None)

    @property
    def page(self):
        return self.console.page

    def check(self, what: str) -> None:
        """No payload ran (canary, dialogs, errors) and none became markup, in any frame of the page."""
        assert not self.fired, f"{what}: a payload ran: {self.fired}"
        for frame in self.page.frames:
            if frame.is_detached():
                continue
            state = frame.evaluate(f"() => [window.{CANARY} === undefined, window.top.__pwnedLog || []]")
            assert state == [True, []], f"{what}: a payload ran in {frame.url}: {state}"
            injected = frame.evaluate(INJECTED_MARKUP)
            assert injected == [], f"{what}: payload parsed as markup in {frame.url}: {injected[:5]}"
        self.console.guards.check()

    def close(self) -> None:
        self.console.close()


def in_session(
    browser_thread: BrowserThread,
    env: HostileEnv,
    steps: Callable[[HostileSession], None],
    user: str = "admin",
) -> None:
    def job(browser) -> None:
        session = HostileSession(browser, env, user)
        try:
            steps(session)
        finally:
            session.close()

    browser_thread.run(job)


def assert_within_viewport(frame, selector: str, what: str, whole_page: bool = True) -> None:
    """The element's box ends inside the viewport and (``whole_page``) the document does not scroll
    sideways."""
    box = frame.locator(selector).first.bounding_box()
    assert box is not None, f"{what}: {selector} is not shown"
    assert box["x"] >= -1 and box["x"] + box["width"] <= VIEWPORT_WIDTH + 1, f"{what}: {selector} box {box}"
    if not whole_page:
        return
    scroll, inner = frame.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner + 1, f"{what}: the page scrolls sideways ({scroll} > {inner})"


def shown_prefix(payload: Payload) -> str:
    """What of a value the page must show as text: its start (long values may be truncated)."""
    return payload.value.strip()[:40]


ROW = "#detections-body tr.caw-row"


def _cell_texts(frame, column: str) -> list[str]:
    return frame.locator(f"{ROW} td[data-column='{column}']").evaluate_all(
        "cells => cells.map(c => c.textContent)"
    )


def _wait_table(frame, predicate: Callable[[object], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if frame.locator("#detections[aria-busy='true']").count() == 0 and predicate(frame):
            return
        time.sleep(0.1)
    raise AssertionError(f"the table did not show {what}")


def _panel_marker(platform: str, key: str) -> str:
    return {
        "AWS": f"{key}-aws",
        "Azure AD": f"Directory_{key}",
        "Office 365": f"{key}-o365",
        "GCP": f"#{key}-GCP",
        "AWS event name": f"{key}-evname",
    }[platform]


def test_tab_table_overview_and_panel_render_payloads_as_text(hostile_env, browser_thread) -> None:
    # One detail panel per payload, the platforms taking turns.
    panel_ids = {
        hostile_env.detection_for(PLATFORMS[j % 4], p)["id"]: (PLATFORMS[j % 4], p)
        for j, p in enumerate(HOSTILE_PAYLOADS)
    }
    panel_ids.update(
        {hostile_env.detection_for("AWS event name", p)["id"]: ("AWS event name", p) for p in EVENT_NAMED}
    )

    def steps(session: HostileSession) -> None:
        frame = session.console.open_console()
        session.check("tab loaded")
        # Overview: timeline chart labels and top initiators.
        frame.wait_for_selector("#top-initiators li")
        initiators = frame.locator("#top-initiators").evaluate("e => e.textContent")
        assert any(shown_prefix(p) in initiators for p in HOSTILE_PAYLOADS if p.kind == "xss")
        assert_within_viewport(frame, "#top-initiators", "top initiators")
        assert_within_viewport(frame, "#timeline", "timeline chart")
        frame.select_option("#page-size", "100")
        _wait_table(frame, lambda f: f.locator(ROW).count() == 100, "100 rows")
        actors: list[str] = []
        opened = 0
        while True:
            # The table scrolls sideways inside its own container; the container stays in the viewport.
            assert_within_viewport(frame, ".caw-table-scroll", "detections table")
            heights = frame.locator(ROW).evaluate_all(
                "rows => rows.map(r => r.getBoundingClientRect().height)"
            )
            assert max(heights) <= 200, f"a row is {max(heights)} px high: long values are not truncated"
            actors += _cell_texts(frame, "actor")
            session.check(f"table page {len(actors) // 100}")
            row_ids = [int(x) for x in frame.locator(ROW).evaluate_all("rows => rows.map(r => r.dataset.id)")]
            for row_id in row_ids:
                if row_id not in panel_ids:
                    continue
                platform, payload = panel_ids[row_id]
                frame.locator(f"{ROW}[data-id='{row_id}']").click()
                frame.wait_for_function(
                    "m => (document.querySelector('#panel-payload') || {}).textContent?.includes(m)",
                    arg=_panel_marker(platform, payload.key),
                    timeout=30_000,
                )
                panel_text = frame.locator("#panel-body").evaluate("e => e.textContent")
                assert shown_prefix(payload) in panel_text, (platform, payload.key)
                if platform == "AWS event name":
                    title = frame.locator("#panel-title").evaluate("e => e.textContent")
                    assert ("CreateUser" + payload.value) in title, (payload.key, title[:80])
                assert_within_viewport(frame, "#panel", f"panel {payload.key}")
                session.check(f"panel {platform} {payload.key}")
                opened += 1
            if frame.locator("#panel").is_visible():
                frame.locator("#panel-close").click()
                frame.wait_for_selector("#panel", state="hidden")
            if frame.locator("#page-next").is_disabled():
                break
            first = row_ids[0]
            frame.locator("#page-next").click()
            _wait_table(
                frame,
                lambda f, first=first: (
                    f.locator(ROW).count() > 0 and f.locator(ROW).first.get_attribute("data-id") != str(first)
                ),
                "the next page",
            )
        screenshot(session.page, "hostile-tab")
        assert opened == len(panel_ids)
        assert len(actors) == len(hostile_env.detections)
        for payload in HOSTILE_PAYLOADS:
            count = sum(1 for a in actors if a.strip().startswith(shown_prefix(payload)))
            assert count >= len(PLATFORMS), f"{payload.key} is not shown as text in the actor column"

    in_session(browser_thread, hostile_env, steps)


def test_tuning_suggestions_render_hostile_actors_as_text(hostile_env, browser_thread) -> None:
    def steps(session: HostileSession) -> None:
        page = session.console.open_app("/tab/tuning")
        page.wait_for_selector("#presets .caw-preset")
        for index, (preset_id, _agent) in enumerate(SUGGESTION_PRESETS):
            card = page.locator(f".caw-preset[data-preset='{preset_id}']")
            card.locator("button:has-text('Suggest from detections')").click()
            card.locator(".caw-hint button").first.wait_for(timeout=30_000)
            text = card.locator(".caw-hint").evaluate("e => e.textContent")
            for payload in SUGGESTED[index * 20 : (index + 1) * 20]:
                assert shown_prefix(payload) in text, (preset_id, payload.key)
            assert_within_viewport(page, f".caw-preset[data-preset='{preset_id}']", f"preset {preset_id}")
            session.check(f"suggestions {preset_id}")

    in_session(browser_thread, hostile_env, steps)


def test_offense_summary_fragment_renders_hostile_rows_as_text(hostile_env, browser_thread) -> None:
    def steps(session: HostileSession) -> None:
        page = session.page
        for offense_id in hostile_env.offense_ids:
            url = (
                f"{hostile_env.console.base_url}/console/do/sem/offensesummary?appName=Sem"
                f"&pageId=OffenseSummary&summaryId={offense_id}"
            )
            deadline = time.monotonic() + 90
            while True:
                page.goto(url)
                page.wait_for_selector("body[data-fragments='done']", timeout=90_000)
                state = page.locator(".fragment .caw-frag").get_attribute("data-state")
                if state != "searching" or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert state == "rows", state
            rows = page.locator(".caw-frag-row").count()
            assert rows == len(HOSTILE_PAYLOADS) * 2
            actors = page.locator(".caw-frag-actor").evaluate_all("cells => cells.map(c => c.textContent)")
            assert sum(1 for a in actors if shown_prefix(HOSTILE_PAYLOADS[0]) in a) >= 1
            # The fragment's box only: the dev console's own offense table (log source names with 10 KB
            # of hostile text) is wider than the page, which is the stand-in's layout, not the app's.
            assert_within_viewport(
                page, ".fragment .caw-frag", f"fragment of offense {offense_id}", whole_page=False
            )
            session.check(f"offense {offense_id}")

    in_session(browser_thread, hostile_env, steps)


def test_dashboard_item_renders_hostile_values_as_text(hostile_env, browser_thread) -> None:
    def steps(session: HostileSession) -> None:
        page = session.page
        page.goto(hostile_env.console.base_url + "/console/dashboard")
        page.wait_for_selector("body[data-dashboard='done']", timeout=60_000)
        text = page.locator("section.dashboard-item").first.evaluate("e => e.textContent")
        assert any(shown_prefix(p) in text for p in HOSTILE_PAYLOADS), "the item shows no actor"
        assert_within_viewport(page, "section.dashboard-item", "dashboard item")
        session.check("dashboard")
        screenshot(page, "hostile-dashboard")

    in_session(browser_thread, hostile_env, steps)


def test_playbook_fills_commands_with_hostile_values_as_text(hostile_env, browser_thread) -> None:
    subjects = [(PLATFORMS[j % 4], p) for j, p in enumerate(HOSTILE_PAYLOADS)]
    subjects += [("AWS event name", p) for p in EVENT_NAMED]

    def steps(session: HostileSession) -> None:
        for platform, payload in subjects:
            detection = hostile_env.detection_for(platform, payload)
            page = session.console.open_app(f"/playbook/?detection={detection['id']}")
            text = page.locator("body").evaluate("e => e.textContent")
            assert shown_prefix(payload)[:20] in text, (platform, payload.key)
            assert_within_viewport(page, "main, body", f"playbook {payload.key}")
            session.check(f"playbook {platform} {payload.key}")

    in_session(browser_thread, hostile_env, steps)


# --- CSV export -----------------------------------------------------------------------------------------


def test_csv_export_neutralises_formula_cells(hostile_env) -> None:
    response = hostile_env.get("api/detections.csv", start=0)
    assert response.status_code == 200, response.text[:300]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    header, body = rows[0], rows[1:]
    assert len(body) == len(hostile_env.detections)
    dangerous = [
        (r[0], header[i], cell[:30])
        for r in body
        for i, cell in enumerate(r)
        if cell.startswith(FORMULA_STARTS)
    ]
    assert dangerous == [], dangerous[:10]
    # Each formula payload is there, neutralised by the app's rule (a leading ').
    cells = {cell for r in body for cell in r}
    for payload in HOSTILE_PAYLOADS:
        if payload.kind == "csv":
            assert "'" + payload.value.strip() in cells or "'" + payload.value in cells, payload.key


# --- the harness itself can see a payload run ------------------------------------------------------------


def test_without_csp_the_canary_catches_a_payload_that_runs(hostile_env, browser_thread) -> None:
    """Control: this console sends no CSP (``serve --csp off``) and the sessions bypass the app's own, so
    markup injected into the pages runs — and the trap reports it. The tests above would see an XSS."""
    console = hostile_env.console
    session = requests.Session()
    session.verify, session.trust_env = console.ca_path, False
    session.cookies.set("SEC", console.tokens["admin"])
    proxy = f"/console/plugins/{console.app_id}/app_proxy"
    for path in (
        "/console/",
        "/console/dashboard",
        f"{proxy}/tab/",
        f"{proxy}/playbook/",
        "/console/do/sem/offensesummary?appName=Sem&pageId=OffenseSummary&summaryId=1",
    ):
        response = session.get(console.base_url + path, timeout=60)
        assert response.status_code == 200, (path, response.status_code)
        app_page = path.startswith(proxy)
        assert ("Content-Security-Policy" in response.headers) is app_page, path

    def steps(s: HostileSession) -> None:
        for url in (console.base_url + "/console/dashboard", s.console.proxy_root + "/tab/"):
            s.page.goto(url)
            s.page.evaluate(
                "document.body.insertAdjacentHTML('beforeend', "
                "'<img src=data:, onerror=window.__pwned=4242>')"
            )
            s.page.wait_for_function(f"window.{CANARY} === 4242", timeout=10_000)
            assert any("4242" in text for text in s.fired), s.fired
            s.fired.clear()

    in_session(browser_thread, hostile_env, steps)


# --- Log Activity deep links pinned by a hostile log source name ---------------------------------------


def test_log_activity_links_carry_hostile_log_source_names_as_literals(hostile_env) -> None:
    """AWS log source names here are ``AWS CloudTrail @ <payload>``: the detail panel's Log Activity link
    pins the event by that name. Its AQL keeps the benign structure (dev console parser) and, run on the
    console, finds exactly the one event."""
    from urllib.parse import parse_qs, urlsplit

    from devconsole.aql.parser import parse
    from tests.reliability.hostile_corpus import has_control
    from tests.reliability.test_aql_injection import skeleton, string_literals

    def link_aql(detection: dict) -> str:
        body = hostile_env.get(f"api/detections/{detection['id']}/links").json()
        (aql,) = parse_qs(urlsplit(body["log_activity"]).query)["value(aql)"]
        assert aql == body["aql"]
        return aql

    shapes = {}
    for j, payload in enumerate(HOSTILE_PAYLOADS):
        detection = hostile_env.detection_for("AWS", payload)
        aql = link_aql(detection)
        tree = parse(aql)
        pinned_by_name = not has_control(detection["log_source"])
        names = [v for v in string_literals(tree) if v.startswith("AWS CloudTrail @")]
        assert names == ([detection["log_source"]] if pinned_by_name else []), payload.key
        shape = skeleton(tree)
        shapes.setdefault(pinned_by_name, shape)
        assert shape == shapes[pinned_by_name], f"{payload.key} changed the pinned query's structure"
        if j % 4 == 0:
            status, rows = hostile_env.console.run_search(aql)
            assert status["status"] == "COMPLETED", status
            assert len(rows) == 1 and rows[0]["log_source"] == detection["log_source"], payload.key
    assert True in shapes
