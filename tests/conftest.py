"""Session fixtures shared by every test: a seeded dev console over real HTTPS, and the test process set up
as the app's container (``APP_ROOT``; see ``app_root_for_the_session``).

``devconsole`` seeds a small scenario through the real CLI (``python -m devconsole seed``), starts
``python -m devconsole serve`` as a subprocess on a free port (proxying to ``app_port``, where app tests
start the app), waits until it answers, and exposes what tests need (see docs/ARCHITECTURE.md,
"Test fixtures").
"""

from __future__ import annotations

import html
import json
import math
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
# `.venv/bin/pytest` (unlike `python -m pytest`) does not put the repository root on sys.path.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from devconsole.faults import FaultClient  # noqa: E402
from devconsole.launcher import prepare_app_root, start_serve, stop_serve  # noqa: E402

# The app's fixtures (app, client, login, live_app, ...), tab_env and the ui marking for the whole suite.
pytest_plugins = ["tests.app_fixtures", "tests.tab_fixtures", "tests.markers"]

SEED_EVENTS = 3000
SEED = 7
APP_ID = 1101
START_TIMEOUT_S = 60.0


QRADAR_ERROR_KEYS = {"http_response", "code", "message", "description", "details"}


def check_qradar_error(response: requests.Response, status: int, code: int) -> dict:
    """Assert ``response`` is QRadar's JSON error body with this HTTP status and code; return the body."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= QRADAR_ERROR_KEYS
    assert body["http_response"]["code"] == status
    assert body["code"] == code, body
    assert body["message"]
    return body


@pytest.fixture(scope="session")
def assert_qradar_error():
    """The QRadar error-body check, for tests in any folder."""
    return check_qradar_error


@pytest.fixture(scope="session", autouse=True)
def app_root_for_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``APP_ROOT`` for the whole test process, laid out like the container's ``/opt/app-root``: inside
    QRadar it is always set, and qpylib (the suite's default mode) needs it for ``create_log`` and
    ``get_store_path`` wherever a test calls ``create_app``. The app fixtures give each test an app root (and
    so a store) of its own on top of this."""
    app_root = prepare_app_root(tmp_path_factory.mktemp("app-root"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APP_ROOT", str(app_root))
        yield app_root


def free_port() -> int:
    """A port nothing listens on right now (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DevConsole:
    """A running ``python -m devconsole serve`` process."""

    base_url: str
    port: int
    data_dir: Path
    ca_path: str
    tokens: dict[str, str]
    scenario: dict
    app_id: int
    app_port: int
    faults: FaultClient
    process: subprocess.Popen = field(repr=False)
    # The last event id the seed wrote: tests that ingest more (the tab's hostile records) add ids above it,
    # so a test about the seeded scenario alone reads events up to here.
    seeded_last_event_id: int | None = None

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def api(self, user: str = "admin", version: str | None = "26.0") -> requests.Session:
        """A requests session that authenticates as ``user`` with the SEC header and verifies TLS."""
        session = requests.Session()
        session.verify = self.ca_path
        # Without this, a REQUESTS_CA_BUNDLE in the environment would override `verify` (a requests quirk).
        session.trust_env = False
        session.headers["SEC"] = self.tokens[user]
        session.headers["Accept"] = "application/json"
        if version:
            session.headers["Version"] = version
        return session

    def url(self, path: str) -> str:
        return self.base_url + path

    def db(self) -> sqlite3.Connection:
        """A read-only connection to the console's events.db, to compute expected values independently."""
        conn = sqlite3.connect(f"file:{self.data_dir / 'events.db'}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        return conn

    def window_covering_all_events(self) -> str:
        """An AQL time clause (``LAST n DAYS``) that covers every event in the store."""
        with closing(self.db()) as conn:
            oldest = conn.execute("SELECT MIN(starttime) FROM events").fetchone()[0]
        days = max(1, math.ceil((time.time() * 1000 - oldest) / 86_400_000) + 1)
        return f"LAST {days} DAYS"

    def run_search(self, aql: str, user: str = "admin", timeout: float = 120.0) -> tuple[dict, list[dict]]:
        """POST an AQL search, wait for it to finish, fetch every row, delete it: (final status, rows)."""
        api = self.api(user)
        created = api.post(self.url("/api/ariel/searches"), params={"query_expression": aql}, timeout=30)
        assert created.status_code == 201, created.text
        search_id = created.json()["search_id"]
        deadline = time.monotonic() + timeout
        status = created.json()
        while status["status"] in ("WAIT", "EXECUTE", "SORTING"):
            assert time.monotonic() < deadline, f"search did not finish: {status}"
            polled = api.get(
                self.url(f"/api/ariel/searches/{search_id}"), headers={"Prefer": "wait=5"}, timeout=30
            )
            assert polled.status_code in (200, 206), polled.text
            status = polled.json()
        rows: list[dict] = []
        if status["status"] == "COMPLETED":
            results = api.get(self.url(f"/api/ariel/searches/{search_id}/results"), timeout=60)
            assert results.status_code == 200, results.text
            rows = results.json()["events"]
        api.delete(self.url(f"/api/ariel/searches/{search_id}"), timeout=30)
        return status, rows


def start_devconsole(
    data_dir: Path, app_port: int, manifest: Path, app_id: int = APP_ID, log_path: Path | None = None
) -> DevConsole:
    """Start ``serve`` on a free port for an already seeded ``data_dir`` and wait until it answers."""
    served = start_serve(
        data_dir,
        "--app-url",
        f"http://127.0.0.1:{app_port}",
        "--manifest",
        str(manifest),
        "--app-id",
        str(app_id),
        log_path=log_path or data_dir / f"serve-{app_port}.log",
    )
    tokens = json.loads((data_dir / "tokens.json").read_text())
    manifest_path = data_dir / "scenario" / "manifest.json"
    scenario = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return DevConsole(
        base_url=served.base_url,
        port=served.port,
        data_dir=data_dir,
        ca_path=served.ca_path,
        tokens=tokens,
        scenario=scenario,
        app_id=app_id,
        app_port=app_port,
        faults=FaultClient(served.base_url, tokens["admin"], served.ca_path),
        process=served.process,
    )


def stop_devconsole(dc: DevConsole) -> None:
    stop_serve(dc.process)


@pytest.fixture(scope="session")
def devconsole(tmp_path_factory: pytest.TempPathFactory) -> DevConsole:
    data_dir = tmp_path_factory.mktemp("devconsole")
    seeded = subprocess.run(
        [
            sys.executable,
            "-m",
            "devconsole",
            "seed",
            "--data",
            str(data_dir),
            "--events",
            str(SEED_EVENTS),
            "--seed",
            str(SEED),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=600,
    )
    if seeded.returncode != 0:
        raise RuntimeError(f"devconsole seed failed ({seeded.returncode}): {seeded.stderr.decode()[-3000:]}")
    dc = start_devconsole(data_dir, free_port(), REPO_ROOT / "manifest.json")
    with closing(sqlite3.connect(f"file:{data_dir / 'events.db'}?mode=ro", uri=True)) as events:
        dc.seeded_last_event_id = events.execute("SELECT MAX(id) FROM events").fetchone()[0]
    yield dc
    stop_devconsole(dc)


# --- a stand-in app behind a second console (proxy mechanics and console pages) ----------------------

STANDIN_APP_ID = 2202
STANDIN_MANIFEST = {
    "name": "standin.name",
    "description": "A stand-in app that echoes what the console proxy forwards",
    "version": "0.0.1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "use_qradar_csrf": "true",
    "areas": [
        {"id": "main", "text": "standin.tab", "url": "tab/", "required_capabilities": []},
        {"id": "adminonly", "text": "Admin only", "url": "admin/", "required_capabilities": ["ADMIN"]},
    ],
    "rest_methods": [
        {"name": "playbook", "url": "playbook_action", "method": "GET", "argument_names": ["context"]},
        {"name": "dash", "url": "dash/item", "method": "GET"},
        {"name": "tune", "url": "tune", "method": "POST", "required_capabilities": ["REFERENCEDATA"]},
    ],
    "fragments": [{"app_name": "SEM", "page_id": "OffenseSummary", "rest_endpoint": "fragment"}],
    "gui_actions": [
        {
            "id": "playbookAction",
            "text": "Playbook",
            "description": "",
            "icon": None,
            "rest_method": "playbook",
            "javascript": "alert(result.message + ' / ' + context)",
            "groups": ["OffenseSummaryToolbar"],
        },
    ],
    "dashboard_items": [{"text": "Stand-in item", "description": "d", "rest_method": "dash"}],
    "resource_bundles": [{"locale": "en_US", "bundle": "resources/standin_en_US.properties"}],
}


class StandinApp:
    """A tiny WSGI app the second console proxies to; records what reached it (the real app is tested
    through the session console by the app and UI suites)."""

    def __init__(self) -> None:
        self.release_stream = threading.Event()
        self.stream_released_in_time: bool | None = None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        path = request.path
        if path.startswith("/echo"):
            response = Response(
                json.dumps(
                    {
                        "method": request.method,
                        "path": path,
                        "raw_uri": environ.get("RAW_URI", ""),
                        "query": request.query_string.decode(),
                        "body": request.get_data(as_text=True),
                        "cookies": dict(request.cookies),
                        "console_host": request.headers.get("X-Console-Host"),
                        "csrf_header": request.headers.get("QRadarCSRF"),
                    }
                ),
                mimetype="application/json",
            )
        elif path == "/stream":
            response = Response(self._stream(), mimetype="text/plain")
        elif path in ("/tab/", "/admin/"):
            query = html.escape(request.query_string.decode())
            response = Response(
                f"<!doctype html><h1 id='tab-heading'>Stand-in {path}</h1><p id='tab-query'>{query}</p>",
                mimetype="text/html",
            )
        elif path.startswith("/fragment/"):
            offense_id = html.escape(path.rsplit("/", 1)[1])
            response = Response(
                json.dumps({"html": f"<div id='frag'><b>Fragment for {offense_id}</b></div>"}),
                mimetype="application/json",
            )
        elif path == "/playbook_action":
            response = Response(
                json.dumps({"message": f"playbook for {request.args.get('context')}"}),
                mimetype="application/json",
            )
        elif path == "/dash/item":
            response = Response(
                json.dumps(
                    {"id": "d", "title": "Dash title", "HTML": "<p id='dash-html'>dashboard html</p>"}
                ),
                mimetype="application/json",
            )
        elif path == "/tune":
            response = Response(json.dumps({"tuned": True}), mimetype="application/json")
        elif path == "/cookies":
            response = Response("ok")
            response.set_cookie("session_2202", "abc", path="/")
            response.set_cookie("other", "def", path="/")
        elif path == "/redirect":
            response = Response("", status=302, headers={"Location": "/tab/"})
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    def _stream(self) -> Iterator[bytes]:
        yield b"first chunk\n"
        # The second chunk waits until the test has received the first one: a buffering proxy would never
        # deliver it, and the wait would time out.
        self.stream_released_in_time = self.release_stream.wait(20)
        yield b"second chunk\n"


@dataclass
class StandinConsole:
    console: DevConsole
    app: StandinApp
    manifest_path: Path


@pytest.fixture(scope="session")
def standin_console(devconsole: DevConsole, tmp_path_factory: pytest.TempPathFactory) -> StandinConsole:
    from werkzeug.serving import make_server

    app = StandinApp()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = tmp_path_factory.mktemp("standin")
    manifest_path = root / "manifest.json"
    manifest_path.write_text(json.dumps(STANDIN_MANIFEST))
    bundle = root / "app" / "static" / "resources" / "standin_en_US.properties"
    bundle.parent.mkdir(parents=True)
    bundle.write_text("standin.name=Stand-in App\nstandin.tab=Stand-in Tab\n")
    console = start_devconsole(
        devconsole.data_dir, server.server_port, manifest_path, STANDIN_APP_ID, log_path=root / "serve.log"
    )
    yield StandinConsole(console, app, manifest_path)
    stop_devconsole(console)
    server.shutdown()


@pytest.fixture
def extra_console(devconsole: DevConsole, tmp_path: Path) -> Callable[..., DevConsole]:
    """Start another ``serve`` on the session's data directory (own app URL / manifest); stopped after."""
    started: list[DevConsole] = []

    def start(app_port: int | None, manifest: Path, app_id: int = APP_ID) -> DevConsole:
        """``app_port=None`` proxies to a port where nothing listens."""
        app_port = free_port() if app_port is None else app_port
        console = start_devconsole(
            devconsole.data_dir, app_port, manifest, app_id, log_path=tmp_path / f"serve-{len(started)}.log"
        )
        started.append(console)
        return console

    yield start
    for console in started:
        stop_devconsole(console)
