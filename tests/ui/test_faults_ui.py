"""QRadar faults while people use the app in the browser (issue 8, item 4: "during UI use").

For every fault the dev console injects (500/1020, 503/1010, a hang, an expired token, a search ending in
ERROR, a search CANCELED from outside mid-run, a slow search) plus a refused connection, the analyst uses
the three surfaces that reach QRadar on demand — the tab's "Refresh now", the Offense Summary widget and a
playbook hunting query — in real chromium through the dev console. Each must stay usable, say in words
what went wrong, and recover once the fault is gone; no uncaught script error, no console error besides
the browser's own "Failed to load resource" line for the app's (expected) JSON error answers.

What each surface does under a fault is described in docs/ARCHITECTURE.md, "When QRadar fails".

One browser context with three pages (tab, offense summary, playbook) is reused by every case, and the
app's settings are shortened for the module (fragment budget, its retry-after-error backoff, no trust in a
cached fragment answer without asking QRadar) and restored afterwards, so the whole module takes about two
minutes. A refused connection cannot be made between the shared live app and the dev console (both stay
up for the other tests), so in that case: the tab sees one cycle of the real refresher process run
against a closed port on the live app's store; the widget's and the hunting query's requests (only those)
are answered by a second gunicorn app of this module whose way to QRadar is a TCP relay the test cuts —
nothing listens on its port then, so QRadar's connection is refused — and restores.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from devconsole.launcher import start_app, stop_process
from tests.app_fixtures import free_port, qradar_env
from tests.ui.conftest import ROOT, SCREENS, ConsoleBrowser, Guards, screenshot

# Shortened for this module (restored afterwards); values the app accepts.
MODULE_SETTINGS = {
    "offense_fragment_budget_s": 3,
    "offense_retry_after_error_s": 2,
    "offense_cache_recheck_s": 0,
}
HANG_S = 3.0  # the dev console answers 503 after this (below the app's 60 s client timeout)
WIDGET_HANG_S = 8.0  # longer than the fragment's 3 s budget: the app's own client timeout ends it
SLOW_S = 3.0
WIDGET_SLOW_S = 6.0  # longer than the fragment's budget, so its answer is "still searching"
CANCEL_SLOW_S = 8.0  # keeps a search running while it is cancelled from outside
WAIT_MS = 90_000
# Offenses (scenario ids) whose widget must run a fresh Ariel search in a search-fault case: none of them
# may have been opened before in this session. Offense 1 is test_tab's, 5 must stay unopened for
# test_offense_dashboard, 7 holds no cloud-account events. REST faults use offense 2's cached answer.
FRESH_OFFENSE = {"search ERROR": 4, "search CANCELED": 6, "slow search": 3}
CACHED_OFFENSE = 2
# The browser's own line for any 4xx/5xx answer (the app's JSON errors here): not a script error.
RESOURCE_STATUS = re.compile(r"^Failed to load resource: the server responded with a status of \d{3}")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Fault:
    """How to switch a fault on for each surface, and words each surface's message must contain."""

    name: str
    refresh: Callable[[Any], None] | None  # None: the refused-connection cycle (see module docstring)
    refresh_words: tuple[str, ...]
    widget: Callable[[Any], None] | None  # None: not reachable for the widget (see module docstring)
    widget_words: tuple[str, ...]
    hunt: Callable[[Any], None] | None
    hunt_words: tuple[str, ...]
    cancel_from_outside: bool = False
    slow: bool = False  # not a failure: progress is shown and the result comes
    refused: bool = False  # widget and hunting through the own app, whose QRadar link is cut


OFFENSE_CALL = "/api/siem/offenses/*"
SEARCH_START = "/api/ariel/searches"
FAULTS = [
    Fault(
        "500",
        lambda dc: dc.faults.fail(SEARCH_START, method="POST"),
        ("QRadar", "500", "unexpected error"),
        lambda dc: dc.faults.fail(OFFENSE_CALL, count=50, method="GET"),
        ("QRadar answered HTTP 500",),
        lambda dc: dc.faults.fail(SEARCH_START, method="POST"),
        ("QRadar said", "unexpected error"),
    ),
    Fault(
        "503/1010",
        lambda dc: dc.faults.unavailable(SEARCH_START, method="POST"),
        ("QRadar", "503", "unavailable"),
        lambda dc: dc.faults.unavailable(OFFENSE_CALL, count=50, method="GET"),
        ("QRadar answered HTTP 503", "unavailable"),
        lambda dc: dc.faults.unavailable(SEARCH_START, method="POST"),
        ("QRadar said", "unavailable"),
    ),
    Fault(
        "hang",
        lambda dc: dc.faults.hang(SEARCH_START, HANG_S, method="POST"),
        ("QRadar", "hung"),
        lambda dc: dc.faults.hang(OFFENSE_CALL, WIDGET_HANG_S, count=50, method="GET"),
        ("QRadar is not reachable right now", "did not answer"),
        lambda dc: dc.faults.hang(SEARCH_START, HANG_S, method="POST"),
        ("QRadar said", "hung"),
    ),
    Fault(
        "expired token",
        lambda dc: dc.faults.expire_token(SEARCH_START, method="POST"),
        ("QRadar", "401", "expired"),
        lambda dc: dc.faults.expire_token(OFFENSE_CALL, count=50, method="GET"),
        ("QRadar refused the app's authorized service token", "expired"),
        lambda dc: dc.faults.expire_token(SEARCH_START, method="POST"),
        ("QRadar said", "expired"),
    ),
    Fault(
        "search ERROR",
        lambda dc: dc.faults.error_searches(1),
        ("QRadar", "Injected failure"),
        lambda dc: dc.faults.error_searches(1),
        ("the Ariel search failed in QRadar", "Injected failure"),
        lambda dc: dc.faults.error_searches(1),
        ("QRadar said", "Injected failure"),
    ),
    Fault(
        "search CANCELED",
        lambda dc: dc.faults.slow_searches(CANCEL_SLOW_S),
        ("QRadar", "cancelled"),
        lambda dc: dc.faults.slow_searches(CANCEL_SLOW_S),
        ("the Ariel search was cancelled in QRadar",),
        lambda dc: dc.faults.slow_searches(CANCEL_SLOW_S),
        ("QRadar said", "cancelled"),
        cancel_from_outside=True,
    ),
    Fault(
        "slow search",
        lambda dc: dc.faults.slow_searches(SLOW_S),
        (),
        lambda dc: dc.faults.slow_searches(WIDGET_SLOW_S),
        ("Still searching",),
        lambda dc: dc.faults.slow_searches(SLOW_S),
        (),
        slow=True,
    ),
    Fault(
        "connection refused",
        None,
        ("cannot reach QRadar", "refused"),
        None,
        ("QRadar is not reachable right now", "Connection refused"),
        None,
        ("QRadar is not reachable right now", "Connection refused"),
        refused=True,
    ),
]


VISIBILITY_QUERY_START = "SELECT LOGSOURCENAME(logsourceid) AS log_source, COUNT(*)"


class Canceller:
    """Cancel (as the admin, through QRadar's REST API) every refresh search that starts while it runs.

    The page's own search of the analyst's log sources (`app/aql/visibility.py`) is left alone: the fault
    under test is in the refresh, and the tab must keep listing what the store holds meanwhile."""

    def __init__(self, devconsole: Any) -> None:
        self.api = devconsole.api("admin")
        self.url = devconsole.url("/api/ariel/searches")
        self.known = set(self.api.get(self.url, timeout=30).json())
        self.cancelled: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            for search_id in set(self.api.get(self.url, timeout=30).json()) - self.known:
                self.known.add(search_id)
                query = self.api.get(f"{self.url}/{search_id}", timeout=30).json().get("query_string", "")
                if query.startswith(VISIBILITY_QUERY_START):
                    continue
                self.api.post(f"{self.url}/{search_id}", params={"status": "CANCELED"}, timeout=30)
                self.cancelled.append(search_id)
            self.stop.wait(0.05)

    def __enter__(self) -> Canceller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


class QRadarLink:
    """A TCP relay from the own app to the dev console. ``cut()`` closes it and its connections: nothing
    listens on its port, so connecting is refused; ``restore()`` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self.restore()

    def restore(self) -> None:
        if self._server is not None:
            return
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the relay thread
            server.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@dataclass
class OwnApp:
    """This module's second gunicorn app (the shipped gunicorn config, one worker): same code and console,
    QRadar reached through ``link``."""

    base_url: str
    link: QRadarLink


@pytest.fixture(scope="module")
def own_app(devconsole: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnApp]:
    store = tmp_path_factory.mktemp("faults_own_app")
    link = QRadarLink(devconsole.port)
    port = free_port()
    env = {
        **os.environ,
        **qradar_env(devconsole),
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{link.port}",
        "APP_STORE_DIR": str(store),
        "APP_QRADAR_TRANSPORT": "http",
    }
    log_path = store / "gunicorn.log"
    # One worker: the user's cached identity and the fragment's settings are in one process.
    process = start_app(port, env, log_path, "--workers", "1")
    base_url = f"http://127.0.0.1:{port}"
    try:
        admin = requests.Session()
        admin.trust_env = False
        admin.cookies.set("SEC", devconsole.tokens["admin"])
        admin.cookies.set("QRadarCSRF", "faults-ui")
        changed = admin.put(
            f"{base_url}/api/settings", json=MODULE_SETTINGS, headers={"QRadarCSRF": "faults-ui"}, timeout=60
        )
        assert changed.status_code == 200, changed.text
        yield OwnApp(base_url, link)
    finally:
        link.cut()
        stop_process(process)


def answer_from(page: Any, pattern: str, own: OwnApp) -> None:
    """Requests of ``page`` matching ``pattern`` (app proxy paths) are answered by the own app, with the
    page's session (its SEC and QRadarCSRF cookies) and its method, body and QRadarCSRF header."""
    cookies = {c["name"]: c["value"] for c in page.context.cookies() if c["name"] in ("SEC", "QRadarCSRF")}

    def handle(route: Any, request: Any) -> None:
        parts = urlsplit(request.url)
        path = parts.path.split("/app_proxy", 1)[1] + (f"?{parts.query}" if parts.query else "")
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("accept", "content-type", "qradarcsrf")
        }
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        route.fulfill(
            response=route.fetch(
                url=own.base_url + path,
                method=request.method,
                headers=headers,
                post_data=request.post_data_buffer,
                timeout=WAIT_MS,
            )
        )

    page.route(pattern, handle)


@dataclass
class FaultUi:
    devconsole: Any
    tab_env: Any
    session: ConsoleBrowser
    tab: Any = None  # the tab's frame inside the console page
    offense_page: Any = None
    playbook_page: Any = None
    tuning_page: Any = None  # another tab page: the QRadar health banner
    console_errors: list[str] = field(default_factory=list)

    def status(self) -> dict:
        return self.tab_env.get("admin", "api/status")


def _watch_console(page: Any, errors: list[str]) -> None:
    def on_console(message: Any) -> None:
        if message.type == "error" and not RESOURCE_STATUS.match(message.text):
            errors.append(f"{page.url}: {message.text}")

    page.on("console", on_console)


@pytest.fixture(scope="module")
def ui(browser: Any, devconsole: Any, tab_env: Any) -> Iterator[FaultUi]:
    admin = tab_env.api("admin")
    settings_url = tab_env.live_app.proxy_url("api/settings")
    before = admin.get(settings_url, timeout=60).json()["values"]
    changed = admin.put(settings_url, json=MODULE_SETTINGS, timeout=60)
    assert changed.status_code == 200, changed.text
    devconsole.faults.clear()
    session = ConsoleBrowser(browser, devconsole, "analyst")
    env = FaultUi(devconsole, tab_env, session)
    try:
        _watch_console(session.page, env.console_errors)
        env.tab = session.open_console()
        env.offense_page = session.context.new_page()
        _watch_console(env.offense_page, env.console_errors)
        env.playbook_page = session.context.new_page()
        _watch_console(env.playbook_page, env.console_errors)
        env.tuning_page = session.context.new_page()
        _watch_console(env.tuning_page, env.console_errors)
        env.playbook_page.goto(session.proxy_root + "/playbook/")
        env.playbook_page.wait_for_selector("article.caw-pb-hunt button.caw-pb-run")
        # The REST-fault cases show offense 2's cached answer: find it once without a fault.
        load_fragment_recovered(env, CACHED_OFFENSE)
        yield env
    finally:
        devconsole.faults.clear()
        try:
            session.context.close()
        finally:
            restored = admin.put(settings_url, json={k: before[k] for k in MODULE_SETTINGS}, timeout=60)
            assert restored.status_code == 200, restored.text


@pytest.fixture(autouse=True)
def _each_case(ui: FaultUi) -> Iterator[None]:
    ui.devconsole.faults.clear()
    yield
    ui.devconsole.faults.clear()
    # Each case answers for what happened during it; the pages stay open for the next case.
    live = ui.session.guards
    seen = Guards(list(live.dialogs), list(live.outside), list(live.failed), list(live.errors))
    for found in (live.dialogs, live.outside, live.failed, live.errors):
        found.clear()
    errors = list(ui.console_errors)
    ui.console_errors.clear()
    seen.check()  # no dialog, no request off 127.0.0.1, no failed request, no uncaught script error
    assert not errors, f"console errors: {errors}"


def words_in(text: str, words: tuple[str, ...]) -> bool:
    return all(w.lower() in text.lower() for w in words)


def assert_plain_words(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text


# -- the tab: "Refresh now" while QRadar fails ----------------------------------------------------------

NOTICE = "#refresh-notice"


def notice_text(ui: FaultUi) -> str:
    return ui.tab.locator(NOTICE).inner_text()


def wait_refresh_idle(ui: FaultUi) -> None:
    ui.tab.wait_for_function("!document.querySelector('#refresh-now').disabled", timeout=WAIT_MS)


def wait_recovered_tab(ui: FaultUi) -> None:
    """The notice is gone and the refresher's last cycle succeeded."""
    ui.tab.wait_for_function(
        "document.querySelector('#refresh-notice').children.length === 0"
        " && !document.querySelector('#refresh-now').disabled",
        timeout=WAIT_MS,
    )
    status = ui.status()
    assert status["last_status"] == "ok" and status["consecutive_failures"] == 0, status


def rows_still_listed(ui: FaultUi) -> None:
    """The tab keeps working from the store: rows listed, no table error, filters still answer."""
    assert ui.tab.locator("#detections-body tr.caw-row").count() > 0
    assert ui.tab.locator("#table-notice").inner_text().strip() == ""
    ui.tab.select_option("#f-platform", "AWS")
    ui.tab.wait_for_function(
        "[...document.querySelectorAll('#detections-body tr.caw-row')].length > 0 &&"
        " [...document.querySelectorAll('#detections-body tr.caw-row')]"
        ".every(r => r.innerText.includes('AWS'))",
        timeout=WAIT_MS,
    )
    ui.tab.select_option("#f-platform", "")
    ui.tab.wait_for_selector("#detections-body tr.caw-row", timeout=WAIT_MS)


def refresh_failed_cycle_refused(ui: FaultUi) -> None:
    """One cycle of the real refresher process, on the live app's store, with QRadar at a closed port."""
    env = {
        **os.environ,
        **qradar_env(ui.devconsole),
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{closed_port()}",
        "APP_STORE_DIR": str(ui.tab_env.live_app.store_dir),
        "APP_QRADAR_TRANSPORT": "http",
    }
    run = subprocess.run(
        [sys.executable, "-m", "app.refresher", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]


def check_tab(ui: FaultUi, fault: Fault) -> None:
    # A search cancelled from outside fails only while searches are being cancelled: the canceller keeps
    # running until the failure has been checked, or the refresher's retry (15 s later) may succeed first.
    wait_refresh_idle(ui)
    runs = ui.status()["runs"]
    with contextlib.ExitStack() as faults_on:
        failed = _check_tab_failing(ui, fault, faults_on, runs)
    if failed is not None:
        _check_tab_recovers(ui, fault, failed, runs)


def _check_tab_failing(
    ui: FaultUi, fault: Fault, faults_on: contextlib.ExitStack, runs: int
) -> dict[str, Any] | None:
    """The tab while the fault is on; the refresh status it failed with (None: the fault is no failure)."""
    if fault.refresh is None:
        refresh_failed_cycle_refused(ui)
        ui.tab = ui.session.open_console()  # the page reads the refresher's health when it loads
        # ...through its first status poll: wait for the notice it renders, not for the page's load event.
        ui.tab.wait_for_selector(f"{NOTICE} .cds--inline-notification--error", timeout=WAIT_MS)
    elif fault.cancel_from_outside:
        fault.refresh(ui.devconsole)
        canceller = faults_on.enter_context(Canceller(ui.devconsole))
        ui.tab.click("#refresh-now")
        ui.tab.wait_for_selector(f"{NOTICE} .cds--inline-notification--error", timeout=WAIT_MS)
        assert canceller.cancelled
    else:
        fault.refresh(ui.devconsole)
        ui.tab.click("#refresh-now")
        if fault.slow:
            # A slow search is not a failure: the page shows the refresh running, then the new data.
            ui.tab.wait_for_selector("#refresh-progress:not([hidden])", timeout=WAIT_MS)
            rows_still_listed(ui)
            wait_recovered_tab(ui)
            assert ui.status()["runs"] > runs
            return None
        ui.tab.wait_for_selector(f"{NOTICE} .cds--inline-notification--error", timeout=WAIT_MS)
    text = notice_text(ui)
    assert words_in(text, fault.refresh_words), text
    assert "QRadar refresh failing" in text and "failed attempt" in text, text
    assert_plain_words(text)
    rows_still_listed(ui)
    status = ui.status()
    assert status["last_status"] == "error" and status["consecutive_failures"] >= 1, status
    screenshot(ui.session.page, f"fault-{fault.name}-tab")
    # The dashboard item (store only) says its counts are not current, and why.
    item = ui.tab_env.get("analyst", "dashboard/item")["HTML"]
    assert "Not refreshed since" in item and "QRadar" in item, item
    # So does the banner on the tab's other pages.
    banner = tuning_banner(ui)
    assert words_in(banner, fault.refresh_words) and "QRadar refresh failing" in banner, banner
    return status


def _check_tab_recovers(ui: FaultUi, fault: Fault, status: dict[str, Any], runs: int) -> None:
    ui.devconsole.faults.clear()
    if fault.refresh is None:
        # Recovery with backoff, untouched: the refresher retries when the backoff is due (15 s after the
        # failure) and the page, which looks again just after that, drops the notice.
        assert status["next_refresh_ms"] - status["last_finished_ms"] <= 15_000, status
        wait_recovered_tab(ui)
    else:
        ui.tab.click("#refresh-now")
        wait_recovered_tab(ui)
    assert ui.status()["runs"] > runs
    assert "Not refreshed" not in ui.tab_env.get("analyst", "dashboard/item")["HTML"]
    assert tuning_banner(ui) == ""


def tuning_banner(ui: FaultUi) -> str:
    """The Tuning page's QRadar health banner once the page has read the status ("" when healthy)."""
    page = ui.tuning_page
    page.goto(ui.session.proxy_root + "/tab/tuning")
    page.wait_for_selector("#qradar-health[data-state]", state="attached", timeout=WAIT_MS)
    return page.locator("#qradar-health").inner_text().strip()


# -- the Offense Summary widget --------------------------------------------------------------------------


def offense_url(devconsole: Any, offense_id: int) -> str:
    return (
        f"{devconsole.base_url.rstrip('/')}/console/do/sem/offensesummary?appName=Sem"
        f"&pageId=OffenseSummary&summaryId={offense_id}"
    )


def load_fragment(ui: FaultUi, offense_id: int, until: Callable[[str], bool] = lambda s: True) -> str:
    """Open (reload) the Offense Summary page until the widget's state satisfies ``until``; returns it."""
    page = ui.offense_page
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        page.goto(offense_url(ui.devconsole, offense_id))
        page.wait_for_selector("body[data-fragments='done']", timeout=WAIT_MS)
        assert page.locator(".fragment").get_attribute("data-state") == "loaded", page.locator(
            ".fragment"
        ).inner_text()  # the app answered the widget (never an HTTP error)
        state = page.locator(".fragment .caw-frag").get_attribute("data-state")
        if until(state) or time.monotonic() > deadline:
            return state
        page.wait_for_timeout(500)  # a pause between reloads, not an assertion


def fragment_text(ui: FaultUi) -> str:
    return ui.offense_page.locator(".fragment .caw-frag").inner_text()


def load_fragment_recovered(ui: FaultUi, offense_id: int) -> None:
    """Reload until the widget shows the offense's rows with no notice (QRadar answered in its budget)."""

    def recovered(state: str) -> bool:
        return state == "rows" and ui.offense_page.locator(".fragment .caw-frag-notice").count() == 0

    assert recovered(load_fragment(ui, offense_id, until=recovered)), fragment_text(ui)


def fresh_in_store(ui: FaultUi, offense_id: int) -> bool:
    store = ui.tab_env.live_app.store_dir / "cloud_account_watch.db"
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return (
            conn.execute("SELECT COUNT(*) FROM offense_cache WHERE offense_id = ?", (offense_id,)).fetchone()[
                0
            ]
            == 0
        )
    finally:
        conn.close()


FRAGMENT_REQUEST = re.compile(r"/app_proxy/offense/fragment/\d+$")
# The hunt's start and its polls and cancel (the handle has no "/" or "?").
HUNTING_REQUEST = re.compile(r"/app_proxy/api/hunting/(run|searches/[^/?]+)$")


def check_widget_refused(ui: FaultUi, fault: Fault, own: OwnApp) -> None:
    answer_from(ui.offense_page, FRAGMENT_REQUEST, own)
    try:
        # The own app's first answer for the offense, while QRadar is reachable.
        assert load_fragment(ui, CACHED_OFFENSE, until=lambda s: s == "rows") == "rows", fragment_text(ui)
        own.link.cut()
        assert load_fragment(ui, CACHED_OFFENSE) == "rows", fragment_text(ui)
        notice = ui.offense_page.locator(".fragment .caw-frag-notice")
        assert notice.count() == 1, fragment_text(ui)
        text = notice.inner_text()
        assert words_in(text, fault.widget_words) and "Showing the events found at" in text, text
        screenshot(ui.offense_page, "fault-connection-refused-widget")
        own.link.restore()
        load_fragment_recovered(ui, CACHED_OFFENSE)
    finally:
        own.link.restore()
        ui.offense_page.unroute(FRAGMENT_REQUEST)


def check_widget(ui: FaultUi, fault: Fault, own: OwnApp | None = None) -> None:
    if own is not None:
        check_widget_refused(ui, fault, own)
        return
    if fault.widget is None:
        return
    if fault.name in FRESH_OFFENSE:
        offense_id = FRESH_OFFENSE[fault.name]
        assert fresh_in_store(ui, offense_id), f"offense {offense_id} was opened before: no search would run"
        fault.widget(ui.devconsole)
        if fault.slow:
            assert load_fragment(ui, offense_id) == "searching"
            text = fragment_text(ui)
            assert words_in(text, fault.widget_words), text
            screenshot(ui.offense_page, f"fault-{fault.name}-widget")
            # The search goes on in QRadar; a later look shows its rows.
            assert load_fragment(ui, offense_id, until=lambda s: s == "rows") == "rows"
            return
        with Canceller(ui.devconsole) if fault.cancel_from_outside else _nothing():
            state = load_fragment(ui, offense_id, until=lambda s: s == "error")
        assert state == "error", fragment_text(ui)
        text = fragment_text(ui)
        assert words_in(text, fault.widget_words), text
        assert "asks QRadar again after" in text, text  # the backoff, in words
        assert_plain_words(text)
        screenshot(ui.offense_page, f"fault-{fault.name}-widget")
        ui.devconsole.faults.clear()
        # After the backoff (2 s here) the widget searches again and shows the offense's events.
        load_fragment_recovered(ui, offense_id)
        return
    fault.widget(ui.devconsole)
    assert load_fragment(ui, CACHED_OFFENSE) == "rows", fragment_text(ui)
    notice = ui.offense_page.locator(".fragment .caw-frag-notice")
    assert notice.count() == 1, fragment_text(ui)
    text = notice.inner_text()
    assert words_in(text, fault.widget_words) and "Showing the events found at" in text, text
    assert_plain_words(text)
    assert ui.offense_page.locator(".fragment tr.caw-frag-row").count() > 0
    screenshot(ui.offense_page, f"fault-{fault.name}-widget")
    ui.devconsole.faults.clear()
    load_fragment_recovered(ui, CACHED_OFFENSE)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# -- a playbook hunting query -----------------------------------------------------------------------------


def hunt_index(fault: Fault) -> int:
    """Each case runs a hunting query of its own: QRadar answers an identical query it ran recently with
    that search (an earlier case's finished one) instead of starting the search the fault is meant for."""
    return FAULTS.index(fault)


def run_hunt(ui: FaultUi, fault: Fault) -> tuple[Any, Any]:
    page = ui.playbook_page
    article = page.locator("article.caw-pb-hunt").nth(hunt_index(fault))
    article.locator("button.caw-pb-run").click()
    return page, article


def wait_hunt_done(page: Any, article: Any) -> None:
    article.locator(".caw-pb-count, .caw-pb-error").first.wait_for(timeout=WAIT_MS)
    end = time.monotonic() + WAIT_MS / 1000
    while article.locator("button.caw-pb-run").is_disabled():
        assert time.monotonic() < end, "the Run button stayed disabled"
        page.wait_for_timeout(100)


def check_hunting_refused(ui: FaultUi, fault: Fault, own: OwnApp) -> None:
    answer_from(ui.playbook_page, HUNTING_REQUEST, own)
    try:
        page, article = run_hunt(ui, fault)  # through the own app while QRadar is reachable: rows
        wait_hunt_done(page, article)
        assert article.locator(".caw-pb-count").count() == 1, article.inner_text()
        own.link.cut()
        run_hunt(ui, fault)
        wait_hunt_done(page, article)
        check_hunt_error(ui, fault, page, article)
        own.link.restore()
        run_hunt(ui, fault)
        wait_hunt_done(page, article)
        assert article.locator(".caw-pb-count").count() == 1, article.inner_text()
    finally:
        own.link.restore()
        ui.playbook_page.unroute(HUNTING_REQUEST)


def check_hunt_error(ui: FaultUi, fault: Fault, page: Any, article: Any) -> None:
    error = article.locator(".caw-pb-error")
    assert error.count() == 1, article.inner_text()
    text = error.inner_text()
    assert text.startswith("The query did not run: "), text
    assert words_in(text, fault.hunt_words), text
    assert_plain_words(text)
    SCREENS.mkdir(parents=True, exist_ok=True)  # the query's box only: the playbook page is long
    name = re.sub(r"[^a-z0-9]+", "-", fault.name.lower())
    article.screenshot(path=str(SCREENS / f"fault-{name}-hunting.png"))


def check_hunting(ui: FaultUi, fault: Fault, own: OwnApp | None = None) -> None:
    if own is not None:
        check_hunting_refused(ui, fault, own)
        return
    if fault.hunt is None:
        return
    fault.hunt(ui.devconsole)
    with Canceller(ui.devconsole) if fault.cancel_from_outside else _nothing():
        page, article = run_hunt(ui, fault)
        # While QRadar works (or hangs) the page says so and stays usable: another query can be copied.
        article.locator(".caw-pb-running, .caw-pb-count, .caw-pb-error").first.wait_for(timeout=WAIT_MS)
        other = page.locator("article.caw-pb-hunt").nth(hunt_index(fault) + 1)
        assert other.locator("button.caw-pb-copy").is_enabled()
        wait_hunt_done(page, article)
    if fault.slow:
        assert article.locator(".caw-pb-count").count() == 1, article.inner_text()
        return
    check_hunt_error(ui, fault, page, article)
    ui.devconsole.faults.clear()
    run_hunt(ui, fault)
    wait_hunt_done(page, article)
    assert article.locator(".caw-pb-count").count() == 1, article.inner_text()
    assert article.locator(".caw-pb-error").count() == 0


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_qradar_fault_while_using_the_app(fault: Fault, ui: FaultUi, request: pytest.FixtureRequest) -> None:
    own = request.getfixturevalue("own_app") if fault.refused else None
    check_tab(ui, fault)
    check_widget(ui, fault, own)
    check_hunting(ui, fault, own)
