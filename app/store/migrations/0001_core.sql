-- Core tables: admin-editable settings, background refresh state, and the audit log every feature writes.

CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value_json  TEXT NOT NULL,              -- JSON-encoded typed value (see app/settings.py)
    updated_by  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL            -- epoch ms
);

-- One row per background job (e.g. 'detection'): the watermark and how the last run went.
CREATE TABLE refresh_state (
    name              TEXT PRIMARY KEY,
    watermark_ms      INTEGER,              -- events up to this time (minus overlap) have been searched
    last_started_ms   INTEGER,
    last_finished_ms  INTEGER,
    last_success_ms   INTEGER,
    last_status       TEXT NOT NULL DEFAULT 'never',   -- never | running | ok | error
    last_error        TEXT,
    last_search_id    TEXT,
    runs              INTEGER NOT NULL DEFAULT 0,
    details_json      TEXT NOT NULL DEFAULT '{}'
);

-- Who did what to which object, with the object's JSON before and after.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms        INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,             -- e.g. settings.update, tuning.entry.create, triage.update
    object_type  TEXT NOT NULL,
    object_id    TEXT,
    before_json  TEXT,
    after_json   TEXT
);
CREATE INDEX audit_log_object ON audit_log (object_type, object_id, at_ms);
CREATE INDEX audit_log_at ON audit_log (at_ms);
