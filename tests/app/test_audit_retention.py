"""Audit retention (issue 14, item 7): records older than ``audit_retention_days`` are exported to a gzip
JSON-lines file named by their time range, and only then deleted, as one refresher job."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime

import pytest

from app import settings
from app.audit_retention import AUDIT_RETENTION_JOB, archive_dir, purge_expired_audit
from app.jobs import JobContext
from app.refresher import JOBS
from app.store import audit, db

DAY = 86_400_000
NOW = int(time.time() * 1000)


class FixedClock(JobContext):
    def now_ms(self) -> int:
        return NOW


@pytest.fixture
def conn(tmp_path):
    connection = db.connect(tmp_path / "store" / "store.db")
    yield connection
    connection.close()


def add(conn, age_days: float, n: int = 1) -> list[int]:
    ids = []
    with db.transaction(conn):
        for i in range(n):
            ids.append(
                audit.record_audit(
                    conn,
                    actor="tuner1",
                    action="tuning.entry.update",
                    object_type="allowlist_entry",
                    object_id=i,
                    before={"note": "ü" * 3},
                    after={"i": i},
                    at_ms=NOW - int(age_days * DAY),
                )
            )
    return ids


def remaining(conn) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM audit_log WHERE action != 'audit.purge' ORDER BY id")]


def test_expired_records_are_exported_then_deleted(conn) -> None:
    assert settings.get("audit_retention_days", conn) == 400
    old = add(conn, 500, 3) + add(conn, 401)
    kept = add(conn, 399, 2)
    summary = purge_expired_audit(FixedClock(conn, None))
    assert "4 audit records" in summary
    assert remaining(conn) == kept
    files = sorted(archive_dir(conn).iterdir())
    first, last = (
        datetime.fromtimestamp((NOW - days * DAY) // 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        for days in (500, 401)
    )
    assert [f.name for f in files] == [f"audit_{first}_{last}_ids-{old[0]}-{old[-1]}.jsonl.gz"]
    lines = [json.loads(line) for line in gzip.decompress(files[0].read_bytes()).decode().splitlines()]
    assert [line["id"] for line in lines] == old
    assert json.loads(lines[0]["before_json"]) == {"note": "üüü"} and lines[0]["actor"] == "tuner1"
    purge = conn.execute(
        "SELECT before_json, after_json FROM audit_log WHERE action = 'audit.purge'"
    ).fetchone()
    assert json.loads(purge[0])["records"] == 4
    assert json.loads(purge[1])["exported_to"] == f"audit-archive/{files[0].name}"
    assert purge_expired_audit(FixedClock(conn, None)) == "nothing to purge"


def test_the_retention_is_a_setting(conn) -> None:
    add(conn, 40)
    assert purge_expired_audit(FixedClock(conn, None)) == "nothing to purge"
    settings.update(conn, {"audit_retention_days": 30}, actor="admin")
    assert "1 audit records" in purge_expired_audit(FixedClock(conn, None))
    with pytest.raises(settings.SettingError):
        settings.update(conn, {"audit_retention_days": 7}, actor="admin")


def test_nothing_is_deleted_when_the_export_fails(conn) -> None:
    ids = add(conn, 500, 2)
    archive_dir(conn).write_text("a file where the archive folder should be")
    with pytest.raises(OSError):
        purge_expired_audit(FixedClock(conn, None))
    assert remaining(conn) == ids


def test_the_job_is_one_entry_of_the_refresher() -> None:
    assert AUDIT_RETENTION_JOB in JOBS
