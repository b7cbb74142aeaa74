-- Tuning: allowlist entries, their approval decisions, tuning settings and reference-set sync state.
-- Entries are never deleted (status 'deleted'), so history and audit references stay resolvable.

CREATE TABLE tuning_entries (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,   -- AUTOINCREMENT: ids never reused
    version              INTEGER NOT NULL DEFAULT 1,          -- optimistic concurrency (409 on stale)
    status               TEXT NOT NULL,                       -- pending | active | rejected | expired | deleted
    preset_id            TEXT,                                -- set when a preset toggle created it
    name                 TEXT,
    platforms_json       TEXT NOT NULL,
    actor_id             TEXT,
    actor_id_key         TEXT,                                -- casefolded actor_id (exact match index)
    actor_pattern        TEXT,
    actor_pattern_field  TEXT NOT NULL DEFAULT 'actor_id',
    source_cidrs_json    TEXT NOT NULL DEFAULT '[]',
    source_service       TEXT,                                -- AWS service principal set by AWS (invokedBy)
    ua_pattern           TEXT,
    target_pattern       TEXT,
    target_type          TEXT,
    window_json          TEXT,
    justification        TEXT NOT NULL,
    ticket               TEXT,
    expires_at           INTEGER NOT NULL,                    -- epoch ms; inactive from this instant on
    break_glass          INTEGER NOT NULL DEFAULT 0,
    enabled              INTEGER NOT NULL DEFAULT 1,
    flagged_spoofable    INTEGER NOT NULL DEFAULT 0,          -- admin-overridden spoofable-only entry
    override_reason      TEXT,
    partial_chain_ok     INTEGER NOT NULL DEFAULT 0,          -- submitter confirmed suppressing part of a chain
    created_by           TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_by           TEXT NOT NULL,                       -- who submitted the current version
    updated_at           INTEGER NOT NULL,
    approved_by          TEXT,
    approved_at          INTEGER,
    decision_note        TEXT
);
CREATE INDEX tuning_entries_status ON tuning_entries (status, expires_at);
CREATE INDEX tuning_entries_actor ON tuning_entries (actor_id_key);
CREATE INDEX tuning_entries_preset ON tuning_entries (preset_id, status);

CREATE TABLE tuning_approvals (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id       INTEGER NOT NULL REFERENCES tuning_entries (id),
    entry_version  INTEGER NOT NULL,
    decision       TEXT NOT NULL,                             -- approved | rejected
    decided_by     TEXT NOT NULL,
    decided_at     INTEGER NOT NULL,
    note           TEXT
);
CREATE INDEX tuning_approvals_entry ON tuning_approvals (entry_id, decided_at);

-- One row. `generation` is a new random token whenever the set of active entries may have changed (the
-- compiled-matcher cache key); `settings_version` guards concurrent edits of the tuning settings (which live
-- in `settings`).
CREATE TABLE tuning_state (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    generation        INTEGER NOT NULL DEFAULT 0,
    settings_version  INTEGER NOT NULL DEFAULT 1
);
INSERT INTO tuning_state (id) VALUES (1);

CREATE TABLE tuning_refsync (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    last_sync_ms   INTEGER,
    last_status    TEXT NOT NULL DEFAULT 'never',             -- never | ok | error
    last_error     TEXT,
    details_json   TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO tuning_refsync (id) VALUES (1);
