"""Event time vs receipt time, and real Office 365 actors, end to end: raw records ingested through the dev
console's DSM CLI with per-record receipt delays (``ingest --receipt-delays FILE``: ``starttime`` = when
QRadar received the record, ``devicetime`` = its own time), read by the real refresher over HTTPS in
incremental cycles, into a real SQLite store.

* the Office 365 copy of an Entra creation reaching QRadar 40 minutes later is one detection, not two;
* a CloudTrail access key created 8 minutes after its user but received before it is chained to it;
* two applications acting in Office 365 (``UserKey: "Not Available"``) are two actors, never chained;
* a placeholder actor ID never matches an allowlist entry.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.detection import refresher
from app.detection.extract import extract
from app.detection.records import device_time
from app.tuning.matcher import Matcher
from devconsole.launcher import start_serve, stop_serve
from tests.app.detection.conftest import ACCOUNT, MIN, Console, cloudtrail, entra, iso

ROOT = Path(__file__).resolve().parents[3]
HOUR = 60 * MIN
TENANT = "tenant-1"
APP_A_SP = "3f0c1a5e-8b7d-4c2e-9a61-0d5e7b2c4f11"
APP_A_ID = "a1b2c3d4-0000-4000-8000-00000000000a"
APP_B_SP = "9e8d7c6b-5a49-4382-b716-05f4e3d2c1b0"
APP_B_ID = "a1b2c3d4-0000-4000-8000-00000000000b"


def o365_record(t: int, op: str, object_id: str, record_id: str, **fields) -> dict:
    record = {
        "CreationTime": iso(t, zone="", digits=0),
        "Id": record_id,
        "Operation": op,
        "OrganizationId": TENANT,
        "RecordType": 8,
        "ResultStatus": "Success",
        "UserKey": "1003BFFD@contoso",
        "UserType": 0,
        "Workload": "AzureActiveDirectory",
        "ObjectId": object_id,
        "UserId": "alice@contoso.com",
        "ActorContextId": TENANT,
        "ActorIpAddress": "198.51.100.7",
        "Actor": [{"ID": "alice@contoso.com", "Type": 5}, {"ID": "1003BFFD", "Type": 3}],
        "Target": [{"ID": object_id, "Type": 5}],
    }
    record.update(fields)
    return record


def app_actor(sp_object_id: str, app_id: str, name: str) -> dict:
    """What an application acting on its own looks like in the Unified Audit Log: no user behind it."""
    return {
        "UserKey": "Not Available",
        "UserId": "Not Available",
        "UserType": 5,
        "Actor": [
            {"ID": name, "Type": 1},
            {"ID": app_id, "Type": 2},
            {"ID": f"ServicePrincipal_{sp_object_id}", "Type": 2},
            {"ID": sp_object_id, "Type": 2},
            {"ID": "ServicePrincipal", "Type": 2},
        ],
    }


def plan(base: int) -> tuple[list[dict], dict[str, int]]:
    """Raw records and their exact receipt delays in seconds (by record id)."""
    t1, t2, t3 = base, base + HOUR, base + 2 * HOUR
    records = [
        # One Entra creation, its Office 365 copy received 40 minutes after the Entra record.
        entra(
            t1,
            "Add user",
            {
                "id": "oid-late",
                "displayName": "late",
                "type": "User",
                "userPrincipalName": "late@contoso.com",
            },
            "corr-late",
            category="UserManagement",
        ),
        o365_record(t1 + 3_000, "Add user.", "late@contoso.com", "o365-late-copy", InterSystemsId="x-other"),
        # CreateUser, then its access key 8 minutes later; the key reaches QRadar first.
        cloudtrail(
            t2,
            "CreateUser",
            {"userName": "svc-ooo"},
            {
                "user": {
                    "userName": "svc-ooo",
                    "userId": "AIDAOOO",
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/svc-ooo",
                }
            },
        ),
        cloudtrail(
            t2 + 8 * MIN,
            "CreateAccessKey",
            {"userName": "svc-ooo"},
            {"accessKey": {"userName": "svc-ooo", "accessKeyId": "AKIAOOO", "status": "Active"}},
        ),
        # Two applications acting in Office 365, seconds apart: application A adds an application,
        # application B a service principal and its credentials. One actor, they would form a chain.
        o365_record(
            t3,
            "Add application.",
            "app-x",
            "o365-app-a",
            InterSystemsId="corr-app-a",
            **app_actor(APP_A_SP, APP_A_ID, "Provisioner A"),
        ),
        o365_record(
            t3 + 5_000,
            "Add service principal.",
            "app-x",
            "o365-app-b-sp",
            InterSystemsId="corr-app-b",
            **app_actor(APP_B_SP, APP_B_ID, "Provisioner B"),
        ),
        o365_record(
            t3 + 20_000,
            "Add service principal credentials.",
            "app-x",
            "o365-app-b-cred",
            InterSystemsId="corr-app-b2",
            **app_actor(APP_B_SP, APP_B_ID, "Provisioner B"),
        ),
    ]
    delays = {
        "o365-late-copy": 40 * 60 + 3,
        f"ev-CreateUser-{t2}": 12 * 60,
        f"ev-CreateAccessKey-{t2 + 8 * MIN}": 1 * 60,
        "o365-app-a": 20 * 60,
        "o365-app-b-sp": 20 * 60,
        "o365-app-b-cred": 20 * 60,
    }
    return records, delays


@pytest.fixture(scope="module")
def late_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data_dir = tmp_path_factory.mktemp("event_time_console")
    base = (int(time.time() * 1000) // 1000) * 1000 - 6 * HOUR
    records, delays = plan(base)
    raw = data_dir / "records.jsonl"
    raw.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    # Entra arrives 2 minutes late; the rest as listed (everything else: at once).
    config = data_dir / "receipt_delays.json"
    config.write_text(
        json.dumps(
            {"types": {"445": {"floor_s": 120, "typical_s": 120, "ceiling_s": 120}}, "records": delays}
        )
    )
    command = [sys.executable, "-m", "devconsole", "ingest", "--data", str(data_dir)]
    done = subprocess.run(
        [*command, "--receipt-delays", str(config), str(raw)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    served = start_serve(data_dir, "--manifest", str(ROOT / "manifest.json"), "--search-reuse", "0")
    console = Console(
        served.base_url,
        served.port,
        data_dir,
        served.ca_path,
        json.loads((data_dir / "tokens.json").read_text()),
        {"base": base},
        served.process,
    )
    try:
        yield console
    finally:
        stop_serve(served.process)


@pytest.fixture
def late_gateway(late_console: Console):
    from app.qradar import Gateway

    return Gateway.from_env(late_console.env(), poll_wait_s=1)


def refresh_at(conn, gateway, now: int) -> None:
    result = refresher.refresh_once(conn, gateway, now=now)
    assert result.status == "ok", result.error


def rows(conn, where: str, *args) -> list:
    return conn.execute(f"SELECT * FROM detections WHERE {where} ORDER BY id", args).fetchall()


def test_office_365_copy_received_40_minutes_later_is_one_detection(late_console, late_gateway, store_conn):
    base = late_console.expected["base"]
    # Incremental cycles as the refresher runs them: the Entra record is read 10 minutes in, the Office
    # 365 copy only in a cycle 40 minutes later, long after the refresh overlap.
    refresh_at(store_conn, late_gateway, base + 10 * MIN)
    first = rows(store_conn, "target_account = 'late@contoso.com'")
    assert [(r["cloud_platform"], json.loads(r["also_seen_in"])) for r in first] == [("Azure AD", [])]
    assert first[0]["device_time"] == base and first[0]["event_time"] == base + 2 * MIN
    refresh_at(store_conn, late_gateway, base + 50 * MIN)
    after = rows(store_conn, "target_account = 'late@contoso.com'")
    assert len(after) == 1, [tuple(r) for r in after]
    assert json.loads(after[0]["also_seen_in"]) == ["Office 365"]
    copies = store_conn.execute(
        "SELECT cloud_platform, event_time FROM detection_events WHERE detection_id = ? ORDER BY event_time",
        (after[0]["id"],),
    ).fetchall()
    assert [(c["cloud_platform"], c["event_time"] - base) for c in copies] == [
        ("Azure AD", 2 * MIN),
        ("Office 365", 3_000 + 40 * MIN + 3_000),
    ]


def test_credential_received_before_its_user_is_chained(late_console, late_gateway, store_conn):
    t2 = late_console.expected["base"] + HOUR
    # 10 minutes after the user: only the key (received after 9) is in QRadar.
    refresh_at(store_conn, late_gateway, t2 + 10 * MIN)
    assert [r["event_name"] for r in rows(store_conn, "target_account = 'svc-ooo'")] == ["CreateAccessKey"]
    refresh_at(store_conn, late_gateway, t2 + 20 * MIN)
    found = rows(store_conn, "target_account = 'svc-ooo'")
    assert {r["event_name"] for r in found} == {"CreateUser", "CreateAccessKey"}
    assert {r["chain_kind"] for r in found} == {"aws_user_credential"}
    assert len({r["chain_id"] for r in found}) == 1
    steps = store_conn.execute(
        "SELECT event_name, event_time FROM chain_events WHERE chain_id = ? ORDER BY position",
        (found[0]["chain_id"],),
    ).fetchall()
    # In the order they happened (their own time), not the order QRadar received them.
    assert [(s["event_name"], s["event_time"] - t2) for s in steps] == [
        ("CreateUser", 0),
        ("CreateAccessKey", 8 * MIN),
    ]


def test_two_applications_in_office_365_are_two_actors_and_no_chain(late_console, late_gateway, store_conn):
    refresh_at(store_conn, late_gateway, int(time.time() * 1000))
    found = rows(store_conn, "cloud_platform = 'Office 365' AND target_account = 'app-x'")
    assert [r["event_name"] for r in found] == [
        "Add application.",
        "Add service principal.",
        "Add service principal credentials.",
    ]
    assert [r["actor_id"] for r in found] == [APP_A_SP, APP_B_SP, APP_B_SP]
    assert [r["actor"] for r in found] == ["Provisioner A", "Provisioner B", "Provisioner B"]
    assert all(r["actor_type"] == "ServicePrincipal" for r in found)
    assert all(r["chain_id"] is None for r in found)
    assert store_conn.execute("SELECT COUNT(*) FROM chains").fetchone()[0] == 1  # the AWS one only
    # Nothing anywhere is keyed on the placeholder.
    placeholder = store_conn.execute(
        "SELECT COUNT(*) FROM detections WHERE lower(actor_id) = 'not available' OR lower(actor) = 'not available'"
    ).fetchone()[0]
    assert placeholder == 0


def test_office_365_actor_ids_from_the_record() -> None:
    user = o365_record(0, "Add user.", "x@contoso.com", "r1")
    ids = extract("Office 365", "Add user.", json.dumps(user))
    assert (ids.actor, ids.actor_id) == ("alice@contoso.com", "1003BFFD@contoso")
    app_b = o365_record(0, "Add user.", "x@contoso.com", "r2", **app_actor(APP_B_SP, APP_B_ID, "B"))
    assert extract("Office 365", "Add user.", json.dumps(app_b)).actor_id == APP_B_SP
    # Without a ServicePrincipal_ entry: the application ID, never the tenant (ActorContextId).
    app_id_only = {**app_b, "Actor": [{"ID": TENANT, "Type": 2}], "AppId": APP_A_ID, "ActorContextId": TENANT}
    assert extract("Office 365", "Add user.", json.dumps(app_id_only)).actor_id == APP_A_ID
    guid_only = {
        **app_b,
        "ActorContextId": "5b7e2a4c-9d13-4f6e-8a21-c0ffee1136a3",
        "Actor": [{"ID": "5b7e2a4c-9d13-4f6e-8a21-c0ffee1136a3", "Type": 2}, {"ID": APP_A_ID, "Type": 2}],
    }
    assert extract("Office 365", "Add user.", json.dumps(guid_only)).actor_id == APP_A_ID
    for placeholder in ("Not Available", "", "Unknown", "N/A"):
        nothing = {**app_b, "UserKey": placeholder, "UserId": placeholder, "Actor": []}
        ids = extract("Office 365", "Add user.", json.dumps(nothing), {"actor": placeholder})
        assert (ids.actor, ids.actor_id) == (None, None), placeholder


def test_placeholder_actor_never_matches_an_allowlist_entry() -> None:
    entries = [
        # exact keys as a store written before placeholders were refused could hold them
        {"id": 1, "actor_id": "Not Available"},
        {"id": 2, "actor_id": "unknown"},
        # patterns that a placeholder would fit
        {"id": 3, "actor_pattern": "Not*", "actor_pattern_field": "actor_id"},
        {"id": 4, "actor_pattern": "*Available", "actor_pattern_field": "actor"},
        {"id": 5, "actor_id": APP_A_SP},
    ]
    matcher = Matcher(entries)
    for value in ("Not Available", "not available", " NOT AVAILABLE ", "Unknown", "N/A", ""):
        detection = {"cloud_platform": "Office 365", "actor_id": value, "actor": value}
        assert matcher.match(detection) is None, value
        assert matcher.match_all(detection) == [], value
    assert matcher.match({"cloud_platform": "Office 365", "actor_id": APP_A_SP, "actor": "A"}) == 5
    assert matcher.match({"cloud_platform": "Office 365", "actor_id": "Notable-app", "actor": "x"}) == 3


def test_device_time_is_believed_only_near_the_receipt_time() -> None:
    received = 1_796_000_000_000
    assert device_time({"starttime": received, "devicetime": received - 3 * HOUR}) == received - 3 * HOUR
    assert device_time({"starttime": received, "devicetime": received + 2 * MIN}) == received + 2 * MIN
    for broken in (0, None, "", "x", received - 8 * 24 * HOUR, received + HOUR):
        assert device_time({"starttime": received, "devicetime": broken}) is None, broken
    assert device_time({"devicetime": received}) is None
