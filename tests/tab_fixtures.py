"""``tab_env``: the live app behind the dev console, filled by its own refresher process, with two hostile
records ingested first. Browser-free tests call its JSON/CSV routes through the console proxy; the browser
tests in tests/ui open the same app in chromium. Loaded for the whole suite by tests/conftest.py, so one
refresher serves both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.app_fixtures import qradar_env

ROOT = Path(__file__).resolve().parents[1]
XSS_ACTOR = "<img src=x onerror=alert(1)>"
XSS_TARGET = "<script>alert(2)</script>"
FORMULA_ACTOR = "-2+3"
FORMULA_TARGET = '=HYPERLINK("http://127.0.0.1/","x")'


def hostile_cloudtrail_records(now_ms: int) -> list[dict]:
    """Two AWS CreateUser records whose actor and new-account names are attacker-chosen: markup that would
    run if parsed as HTML, and values a spreadsheet would evaluate as formulas."""
    records = []
    for offset_min, actor, target in ((7, XSS_ACTOR, XSS_TARGET), (6, FORMULA_ACTOR, FORMULA_TARGET)):
        at = datetime.fromtimestamp((now_ms - offset_min * 60_000) / 1000, tz=UTC)
        records.append(
            {
                "eventVersion": "1.08",
                "eventSource": "iam.amazonaws.com",
                "eventName": "CreateUser",
                "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.66",
                "userAgent": "aws-cli/2.15.0",
                "eventID": str(uuid.uuid4()),
                "recipientAccountId": "111122223333",
                "userIdentity": {
                    "type": "IAMUser",
                    "userName": actor,
                    "accountId": "111122223333",
                    "principalId": "AIDAHOSTILE" + str(offset_min),
                    "arn": f"arn:aws:iam::111122223333:user/{actor}",
                },
                "requestParameters": {"userName": target},
                "responseElements": {
                    "user": {"userName": target, "arn": f"arn:aws:iam::111122223333:user/{target}"}
                },
            }
        )
    return records


@dataclass
class TabEnv:
    """The live app behind the console, filled by its own refresher from the seeded dev console."""

    live_app: object
    devconsole: object
    refresher: subprocess.Popen

    def api(self, user: str):
        """A requests session through the console proxy as ``user``."""
        return self.live_app.session_as(user)

    def get(self, user: str, path: str, **params):
        response = self.api(user).get(self.live_app.proxy_url(path), params=params, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()


def wait_for_refresh(env: TabEnv, timeout_s: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout_s
    status: dict = {}
    while time.monotonic() < deadline:
        if env.refresher.poll() is not None:
            pytest.fail(f"the refresher exited with {env.refresher.returncode}")
        status = env.get("admin", "api/status")
        if status.get("runs") and status.get("last_status") == "ok" and not status.get("running"):
            return status
        time.sleep(1)
    pytest.fail(f"no successful refresh within {timeout_s} s: {status}")


@pytest.fixture(scope="session")
def tab_env(devconsole, live_app, tmp_path_factory) -> Iterator[TabEnv]:
    """Seeds the two hostile records into the dev console (through its real ingest CLI), then runs the
    app's refresher process (as supervisord would) so the tab shows what detection found."""
    work = tmp_path_factory.mktemp("ui_seed")
    records = work / "hostile-cloudtrail.json"
    records.write_text(json.dumps({"Records": hostile_cloudtrail_records(int(time.time() * 1000))}))
    ingest = subprocess.run(
        [sys.executable, "-m", "devconsole", "ingest", "--data", str(devconsole.data_dir), str(records)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ingest.returncode == 0, ingest.stderr
    env_vars = {
        **os.environ,
        **qradar_env(devconsole),
        "APP_STORE_DIR": str(live_app.store_dir),
        "APP_QRADAR_TRANSPORT": "http",
    }
    log = (work / "refresher.log").open("wb")
    refresher = subprocess.Popen(
        [sys.executable, "-m", "app.refresher"], cwd=ROOT, env=env_vars, stdout=log, stderr=subprocess.STDOUT
    )
    env = TabEnv(live_app, devconsole, refresher)
    try:
        wait_for_refresh(env)
        yield env
    finally:
        refresher.terminate()
        try:
            refresher.wait(timeout=20)
        except subprocess.TimeoutExpired:
            refresher.kill()
            refresher.wait()
        log.close()
