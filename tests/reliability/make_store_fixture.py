"""Write the upgrade-test fixture: a small store at a released schema version, as SQL text.

    python -m tests.reliability.make_store_fixture [--version N] [--out tests/reliability/fixtures]

Builds a fresh SQLite store with only the migrations up to N (``app/store/migrations/000N_*.sql``), fills
every table that exists at that version with a few realistic rows (fixed values, no randomness), and writes
``store-v<N>.sql`` — ``PRAGMA user_version`` first, then ``sqlite3``'s own dump. Run it once when a schema
version is released and commit the dump; never regenerate an old one (it stands for stores in the field).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.store import db  # noqa: E402

FIXTURES_DIR = Path(__file__).with_name("fixtures")
T0 = 1_780_000_000_000  # 2026-05-28T20:26:40Z: fixed, so the dump is reproducible
MIN = 60_000
HOUR = 60 * MIN


def _key(n: int) -> str:
    return f"{n:064x}"


def _payload(event: dict) -> str:
    return json.dumps(event, sort_keys=True)


# (first schema version the table exists in, table, rows). Every table of every released version is here.
ROWS: list[tuple[int, str, list[dict]]] = [
    (
        1,
        "settings",
        [
            {
                "key": "refresh_interval_s",
                "value_json": "300",
                "updated_by": "admin",
                "updated_at": T0 - 5 * HOUR,
            },
            {"key": "lookback_days", "value_json": "7", "updated_by": "admin", "updated_at": T0 - 5 * HOUR},
        ],
    ),
    (
        1,
        "refresh_state",
        [
            {
                "name": "detection",
                "watermark_ms": T0 - 10 * MIN,
                "last_started_ms": T0 - 11 * MIN,
                "last_finished_ms": T0 - 10 * MIN,
                "last_success_ms": T0 - 10 * MIN,
                "last_status": "ok",
                "last_error": None,
                "last_search_id": "6d1f0c2e-0000-4000-8000-000000000001",
                "runs": 42,
                "details_json": json.dumps({"phase": "done", "progress": 100, "failures": 0, "inserted": 3}),
            },
        ],
    ),
    (
        1,
        "audit_log",
        [
            {
                "at_ms": T0 - 5 * HOUR,
                "actor": "admin",
                "action": "settings.update",
                "object_type": "settings",
                "object_id": "refresh_interval_s",
                "before_json": "600",
                "after_json": "300",
            },
            {
                "at_ms": T0 - 3 * HOUR,
                "actor": "tuner1",
                "action": "tuning.entry.create",
                "object_type": "tuning_entry",
                "object_id": "1",
                "before_json": None,
                "after_json": json.dumps({"id": 1, "status": "pending"}),
            },
            {
                "at_ms": T0 - 2 * HOUR,
                "actor": "tuner2",
                "action": "tuning.entry.approve",
                "object_type": "tuning_entry",
                "object_id": "1",
                "before_json": json.dumps({"status": "pending"}),
                "after_json": json.dumps({"status": "active"}),
            },
            {
                "at_ms": T0 - HOUR,
                "actor": "analyst",
                "action": "triage.update",
                "object_type": "detection",
                "object_id": "2",
                "before_json": json.dumps({"triage_status": "new"}),
                "after_json": json.dumps({"triage_status": "investigating"}),
            },
        ],
    ),
    (
        2,
        "detections",
        [
            {
                "event_key": _key(1),
                "event_time": T0 - 4 * HOUR,
                "event_name": "CreateUser",
                "event_category": "User Account Added",
                "log_source": "AWS CloudTrail @ 111122223333",
                "log_source_type": "Amazon AWS CloudTrail",
                "qid": 59500001,
                "cloud_platform": "AWS",
                "is_service_account": 0,
                "account_kind": "user",
                "actor": "deployer",
                "actor_id": "arn:aws:iam::111122223333:role/deployer",
                "actor_type": "AssumedRole",
                "target_account": "svc-build",
                "target_id": "AIDAEXAMPLE0001",
                "target_type": "IAMUser",
                "source_ip": "203.0.113.10",
                "user_agent": "aws-cli/2.18.17",
                "correlation_id": "req-1",
                "result": "success",
                "mfa": 0,
                "magnitude": 5,
                "severity": 5,
                "confidence": "medium",
                "base_severity": 5,
                "base_confidence": "medium",
                "chain_id": None,
                "chain_kind": None,
                "also_seen_in": "[]",
                "target_keys": json.dumps(["svc-build", "aidaexample0001"]),
                "suppressed_by": 1,
                "triage_status": "benign",
                "triage_note": "pipeline",
                "triage_by": "analyst",
                "triage_at": T0 - 90 * MIN,
                "payload": _payload({"eventName": "CreateUser", "userName": "svc-build"}),
                "payload_ok": 1,
                "stored_at": T0 - 4 * HOUR + MIN,
            },
            {
                "event_key": _key(2),
                "event_time": T0 - 3 * HOUR,
                "event_name": "Add user",
                "event_category": "User Account Added",
                "log_source": "Entra ID @ contoso",
                "log_source_type": "Microsoft Azure Active Directory",
                "qid": 59500002,
                "cloud_platform": "Azure AD",
                "is_service_account": 0,
                "account_kind": "user",
                "actor": "mallory@contoso.example",
                "actor_id": "0f1e2d3c-0000-4000-8000-0000000000aa",
                "actor_type": "User",
                "target_account": "backdoor@contoso.example",
                "target_id": "11111111-0000-4000-8000-000000000002",
                "target_type": "User",
                "source_ip": "198.51.100.7",
                "user_agent": "Mozilla/5.0",
                "correlation_id": "corr-2",
                "result": "success",
                "mfa": None,
                "magnitude": 8,
                "severity": 8,
                "confidence": "high",
                "base_severity": 6,
                "base_confidence": "medium",
                "chain_id": 1,
                "chain_kind": "privilege_escalation",
                "also_seen_in": json.dumps(["Office 365"]),
                "target_keys": json.dumps(["backdoor@contoso.example"]),
                "suppressed_by": None,
                "triage_status": "investigating",
                "triage_note": "<script>alert(1)</script>",
                "triage_by": "analyst",
                "triage_at": T0 - HOUR,
                "payload": _payload({"operationName": "Add user"}),
                "payload_ok": 1,
                "stored_at": T0 - 3 * HOUR + MIN,
            },
            {
                "event_key": _key(3),
                "event_time": T0 - 2 * HOUR,
                "event_name": "google.iam.admin.v1.CreateServiceAccount",
                "event_category": "User Account Added",
                "log_source": "GCP @ project-1",
                "log_source_type": "Google Cloud Audit Logs",
                "qid": 59500003,
                "cloud_platform": "GCP",
                "is_service_account": 1,
                "account_kind": "service_account",
                "actor": "ops@example.com",
                "actor_id": "ops@example.com",
                "actor_type": "user",
                "target_account": "=cmd|' /C calc'!A0",
                "target_id": "sa-3@project-1.iam.gserviceaccount.com",
                "target_type": "ServiceAccount",
                "source_ip": "192.0.2.44",
                "user_agent": "gcloud/470.0.0",
                "correlation_id": None,
                "result": "success",
                "mfa": None,
                "magnitude": 4,
                "severity": 4,
                "confidence": "low",
                "base_severity": 4,
                "base_confidence": "low",
                "chain_id": None,
                "chain_kind": None,
                "also_seen_in": "[]",
                "target_keys": "[]",
                "suppressed_by": None,
                "triage_status": "new",
                "triage_note": None,
                "triage_by": None,
                "triage_at": None,
                "payload": None,
                "payload_ok": 0,
                "stored_at": T0 - 2 * HOUR + MIN,
            },
        ],
    ),
    (
        2,
        "detection_events",
        [
            {
                "event_key": _key(1),
                "detection_id": 1,
                "cloud_platform": "AWS",
                "event_time": T0 - 4 * HOUR,
                "event_name": "CreateUser",
            },
            {
                "event_key": _key(2),
                "detection_id": 2,
                "cloud_platform": "Azure AD",
                "event_time": T0 - 3 * HOUR,
                "event_name": "Add user",
            },
            {
                "event_key": _key(102),
                "detection_id": 2,
                "cloud_platform": "Office 365",
                "event_time": T0 - 3 * HOUR + 2000,
                "event_name": "Add user.",
            },
            {
                "event_key": _key(3),
                "detection_id": 3,
                "cloud_platform": "GCP",
                "event_time": T0 - 2 * HOUR,
                "event_name": "google.iam.admin.v1.CreateServiceAccount",
            },
        ],
    ),
    (
        2,
        "follow_on_events",
        [
            {
                "event_key": _key(201),
                "event_time": T0 - 3 * HOUR + 5 * MIN,
                "event_name": "Add member to role",
                "cloud_platform": "Azure AD",
                "log_source": "Entra ID @ contoso",
                "actor": "mallory@contoso.example",
                "actor_id": "0f1e2d3c-0000-4000-8000-0000000000aa",
                "target_account": "backdoor@contoso.example",
                "target_keys": json.dumps(["backdoor@contoso.example"]),
                "correlation_id": "corr-2b",
                "granted": "Global Administrator",
                "admin_grant": 1,
                "source_ip": "198.51.100.7",
                "payload": _payload({"operationName": "Add member to role"}),
                "stored_at": T0 - 3 * HOUR + 6 * MIN,
            },
        ],
    ),
    (
        2,
        "chains",
        [
            {
                "chain_key": "chain-" + _key(2)[:16],
                "kind": "privilege_escalation",
                "kinds": json.dumps(["privilege_escalation"]),
                "first_time": T0 - 3 * HOUR,
                "last_time": T0 - 3 * HOUR + 5 * MIN,
                "severity": 8,
                "confidence": "high",
                "admin": 1,
                "updated_at": T0 - 3 * HOUR + 6 * MIN,
            },
        ],
    ),
    (
        2,
        "chain_events",
        [
            {
                "chain_id": 1,
                "position": 0,
                "event_key": _key(2),
                "event_time": T0 - 3 * HOUR,
                "event_name": "Add user",
                "cloud_platform": "Azure AD",
                "actor": "mallory@contoso.example",
                "target_account": "backdoor@contoso.example",
                "detection_id": 2,
            },
            {
                "chain_id": 1,
                "position": 1,
                "event_key": _key(201),
                "event_time": T0 - 3 * HOUR + 5 * MIN,
                "event_name": "Add member to role",
                "cloud_platform": "Azure AD",
                "actor": "mallory@contoso.example",
                "target_account": "backdoor@contoso.example",
                "detection_id": None,
            },
        ],
    ),
    (
        2,
        "triage_history",
        [
            {
                "detection_id": 1,
                "status": "benign",
                "note": "pipeline",
                "by_user": "analyst",
                "at_ms": T0 - 90 * MIN,
            },
            {
                "detection_id": 2,
                "status": "investigating",
                "note": "<script>alert(1)</script>",
                "by_user": "analyst",
                "at_ms": T0 - HOUR,
            },
        ],
    ),
    (
        2,
        "refresh_requests",
        [
            {
                "action": "refresh",
                "requested_by": "analyst",
                "requested_at": T0 - 20 * MIN,
                "handled_at": T0 - 19 * MIN,
            },
            {"action": "cancel", "requested_by": "admin", "requested_at": T0 - 15 * MIN, "handled_at": None},
        ],
    ),
    (
        3,
        "tuning_entries",
        [
            {
                "version": 2,
                "status": "active",
                "preset_id": None,
                "name": "Terraform pipeline",
                "platforms_json": json.dumps(["AWS"]),
                "actor_id": "arn:aws:iam::111122223333:role/deployer",
                "actor_id_key": "arn:aws:iam::111122223333:role/deployer",
                "actor_pattern": None,
                "actor_pattern_field": "actor_id",
                "source_cidrs_json": json.dumps(["203.0.113.0/24"]),
                "source_service": None,
                "ua_pattern": "aws-cli/*",
                "target_pattern": "svc-*",
                "target_type": None,
                "window_json": None,
                "justification": "Terraform pipeline creates IAM users (CHG-1)",
                "ticket": "CHG-1",
                "expires_at": T0 + 30 * 24 * HOUR,
                "break_glass": 0,
                "enabled": 1,
                "flagged_spoofable": 0,
                "override_reason": None,
                "partial_chain_ok": 0,
                "created_by": "tuner1",
                "created_at": T0 - 3 * HOUR,
                "updated_by": "tuner1",
                "updated_at": T0 - 3 * HOUR,
                "approved_by": "tuner2",
                "approved_at": T0 - 2 * HOUR,
                "decision_note": "ok",
            },
            {
                "version": 1,
                "status": "pending",
                "preset_id": "gcp-default-service-agents",
                "name": None,
                "platforms_json": json.dumps(["GCP"]),
                "actor_id": None,
                "actor_id_key": None,
                "actor_pattern": "service-*@gcp-sa-*.iam.gserviceaccount.com",
                "actor_pattern_field": "actor_id",
                "source_cidrs_json": "[]",
                "source_service": None,
                "ua_pattern": None,
                "target_pattern": None,
                "target_type": None,
                "window_json": json.dumps({"days": [0, 1, 2, 3, 4], "start": "08:00"}),
                "justification": "Google-managed service agents",
                "ticket": None,
                "expires_at": T0 + 90 * 24 * HOUR,
                "break_glass": 0,
                "enabled": 1,
                "flagged_spoofable": 1,
                "override_reason": "admin reviewed",
                "partial_chain_ok": 1,
                "created_by": "tuner2",
                "created_at": T0 - HOUR,
                "updated_by": "tuner2",
                "updated_at": T0 - HOUR,
                "approved_by": None,
                "approved_at": None,
                "decision_note": None,
            },
        ],
    ),
    (
        3,
        "tuning_approvals",
        [
            {
                "entry_id": 1,
                "entry_version": 2,
                "decision": "approved",
                "decided_by": "tuner2",
                "decided_at": T0 - 2 * HOUR,
                "note": "ok",
            },
        ],
    ),
    # tuning_state and tuning_refsync get their single row from migration 0003; update it to realistic values.
    (3, "tuning_state", [{"id": 1, "generation": 123456789, "settings_version": 3}]),
    (
        3,
        "tuning_refsync",
        [
            {
                "id": 1,
                "last_sync_ms": T0 - 2 * HOUR,
                "last_status": "ok",
                "last_error": None,
                "details_json": json.dumps({"set": "CloudAccountWatch Allowlisted Actors", "values": 1}),
            },
        ],
    ),
    (
        4,
        "offense_cache",
        [
            {
                "offense_id": 101,
                "status": "done",
                "search_id": None,
                "offense_start": T0 - 4 * HOUR,
                "offense_updated": T0 - 3 * HOUR,
                "rows": json.dumps([{"event_key": _key(1)}]),
                "error": None,
                "started_at": T0 - 50 * MIN,
                "finished_at": T0 - 49 * MIN,
                "checked_at": T0 - 30 * MIN,
            },
            {
                "offense_id": 102,
                "status": "error",
                "search_id": None,
                "offense_start": T0 - 2 * HOUR,
                "offense_updated": T0 - 2 * HOUR,
                "rows": "[]",
                "error": "QRadar: 503 service unavailable",
                "started_at": T0 - 40 * MIN,
                "finished_at": T0 - 39 * MIN,
                "checked_at": T0 - 39 * MIN,
            },
        ],
    ),
]


def released_versions() -> list[int]:
    """Every schema version the migrations define (the current one is the first released)."""
    return [version for version, _ in db.migrations()]


def build_store(path: Path, version: int) -> None:
    """A store at ``version`` (migrations up to it only) with the rows of every table it has."""
    with tempfile.TemporaryDirectory() as tmp:
        for number, migration in db.migrations():
            if number <= version:
                shutil.copy(migration, tmp)
        conn = db.connect(path, migrate_schema=False)
        try:
            if db.migrate(conn, Path(tmp)) != version:
                raise RuntimeError(f"no migration numbered {version:04d}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            with conn:
                for since, table, rows in ROWS:
                    if since > version or table not in tables:
                        continue
                    for row in rows:
                        columns = ", ".join(row)
                        marks = ", ".join("?" * len(row))
                        conn.execute(
                            f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})",
                            tuple(row.values()),
                        )
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


def dump_sql(path: Path) -> str:
    """``PRAGMA user_version`` (which ``iterdump`` leaves out) followed by the dump."""
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        lines = [f"PRAGMA user_version = {version};", *conn.iterdump()]
    finally:
        conn.close()
    return "\n".join(lines) + "\n"


def load_sql(sql: str, path: Path) -> None:
    """Create the SQLite file ``path`` from a dump written by ``dump_sql``."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(sql)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.make_store_fixture", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--version",
        type=int,
        default=released_versions()[-1],
        help="schema version to build (default: the current one)",
    )
    parser.add_argument("--out", type=Path, default=FIXTURES_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.db"
        build_store(store, args.version)
        target = args.out / f"store-v{args.version}.sql"
        target.write_text(dump_sql(store), encoding="utf-8")
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
