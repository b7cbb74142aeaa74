"""The audit retention job: audit records older than ``audit_retention_days`` are exported, then deleted.

Each run exports at most `BATCH_ROWS` of the oldest expired records to one gzip JSON-lines file in the
store directory's ``audit-archive/`` folder, named by the time range (and id range) it holds::

    audit-archive/audit_20250101T000000Z_20250301T120000Z_ids-1-48213.jsonl.gz

The file is written to a temporary name, flushed to disk and renamed before any record is deleted, so a
crash leaves either the records in the store or the complete file (or both: the next run writes the same
records again under the same name). The deletion is one transaction, recorded as one ``audit.purge``
record naming the file. Lines are the stored rows as they are (``before_json``/``after_json`` as text).
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from app import settings
from app.jobs import Job, JobContext
from app.store import audit
from app.store.db import transaction

ARCHIVE_DIR = "audit-archive"
BATCH_ROWS = 50_000
DAY_MS = 86_400_000


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def archive_dir(conn: sqlite3.Connection) -> Path:
    """``audit-archive/`` beside the store's database file."""
    db_file = next(row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main")
    return Path(db_file).parent / ARCHIVE_DIR


def export_rows(directory: Path, rows: list[dict]) -> Path:
    """Write ``rows`` (oldest first) as gzip JSON lines; returns the file, complete on disk."""
    directory.mkdir(parents=True, exist_ok=True)
    name = (
        f"audit_{_stamp(rows[0]['at_ms'])}_{_stamp(rows[-1]['at_ms'])}"
        f"_ids-{rows[0]['id']}-{rows[-1]['id']}.jsonl.gz"
    )
    final = directory / name
    partial = directory / (name + ".partial")
    with open(partial, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    partial.replace(final)
    return final


def purge_expired_audit(ctx: JobContext) -> str:
    """Export, then delete, one batch of audit records older than the retention."""
    conn = ctx.conn
    now = ctx.now_ms()
    cutoff = now - settings.get("audit_retention_days", conn) * DAY_MS
    rows = audit.audit_rows_before(conn, cutoff, BATCH_ROWS)
    if not rows:
        return "nothing to purge"
    path = export_rows(archive_dir(conn), rows)
    with transaction(conn):
        deleted = audit.delete_audit_rows(conn, [r["id"] for r in rows])
        audit.record_audit(
            conn,
            actor="refresher",
            action="audit.purge",
            object_type="audit_log",
            before={"records": deleted, "first_at_ms": rows[0]["at_ms"], "last_at_ms": rows[-1]["at_ms"]},
            after={"exported_to": str(Path(ARCHIVE_DIR) / path.name)},
            at_ms=now,
        )
    return f"exported and deleted {deleted} audit records to {path.name}"


AUDIT_RETENTION_JOB = Job(
    name="audit_retention",
    description="Audit records older than audit_retention_days: exported to audit-archive/, then deleted.",
    run=purge_expired_audit,
    # Hourly; a backlog larger than one batch drains one batch per run.
    interval_s=lambda _conn: 3600,
)
