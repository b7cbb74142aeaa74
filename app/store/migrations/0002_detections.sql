-- Detections (one row per account creation; fields fixed in docs/ARCHITECTURE.md), the Ariel events
-- that fed them (de-duplication, O365/Azure AD twins), follow-on events kept for chain correlation,
-- chains, triage history and "refresh now" requests.

CREATE TABLE detections (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    event_key          TEXT NOT NULL UNIQUE,      -- sha256(starttime, qid, logsourceid, payload)
    event_time         INTEGER NOT NULL,          -- epoch ms (starttime)
    event_name         TEXT NOT NULL DEFAULT '',
    event_category     TEXT,
    log_source         TEXT,
    log_source_type    TEXT,
    qid                INTEGER,
    cloud_platform     TEXT NOT NULL,             -- AWS | Azure AD | Office 365 | GCP
    is_service_account INTEGER NOT NULL DEFAULT 0,
    account_kind       TEXT NOT NULL DEFAULT 'other',
    actor              TEXT,
    actor_id           TEXT,
    actor_type         TEXT,
    target_account     TEXT,
    target_id          TEXT,
    target_type        TEXT,
    source_ip          TEXT,
    user_agent         TEXT,
    correlation_id     TEXT,
    result             TEXT,
    mfa                INTEGER,                   -- NULL = not in the payload
    magnitude          INTEGER,
    severity           INTEGER NOT NULL,          -- 1..10, raised by chains
    confidence         TEXT NOT NULL,             -- low | medium | high
    base_severity      INTEGER NOT NULL,          -- before any chain raised it
    base_confidence    TEXT NOT NULL,
    chain_id           INTEGER,
    chain_kind         TEXT,
    also_seen_in       TEXT NOT NULL DEFAULT '[]',  -- JSON list of other feeds (O365 twin)
    target_keys        TEXT NOT NULL DEFAULT '[]',  -- JSON list: lower-cased names/IDs chains join on
    suppressed_by      INTEGER,                   -- allowlist entry id (app/tuning)
    triage_status      TEXT NOT NULL DEFAULT 'new'
                       CHECK (triage_status IN ('new', 'investigating', 'benign', 'malicious', 'escalated')),
    triage_note        TEXT,
    triage_by          TEXT,
    triage_at          INTEGER,
    payload            TEXT,
    payload_ok         INTEGER NOT NULL DEFAULT 0, -- 1 when identifiers came from the payload
    stored_at          INTEGER NOT NULL
);
-- The tab's list: newest first, filtered by platform / service accounts / suppression / triage / chains.
CREATE INDEX detections_time ON detections (event_time DESC, id DESC);
CREATE INDEX detections_platform_time ON detections (cloud_platform, event_time DESC);
CREATE INDEX detections_service_time ON detections (is_service_account, event_time DESC);
CREATE INDEX detections_suppressed_time ON detections (suppressed_by, event_time DESC);
CREATE INDEX detections_triage_time ON detections (triage_status, event_time DESC);
CREATE INDEX detections_chain ON detections (chain_id);
CREATE INDEX detections_actor_id ON detections (actor_id);
CREATE INDEX detections_target ON detections (target_account);
CREATE INDEX detections_correlation ON detections (correlation_id);

-- Every Ariel event merged into a detection: its own event plus twins seen in other feeds.
CREATE TABLE detection_events (
    event_key      TEXT PRIMARY KEY,
    detection_id   INTEGER NOT NULL REFERENCES detections(id) ON DELETE CASCADE,
    cloud_platform TEXT NOT NULL,
    event_time     INTEGER NOT NULL,
    event_name     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX detection_events_detection ON detection_events (detection_id);

-- Credential and privilege-grant events from the follow-on query; kept while they can still join a chain
-- and for as long as a chain lists them.
CREATE TABLE follow_on_events (
    event_key      TEXT PRIMARY KEY,
    event_time     INTEGER NOT NULL,
    event_name     TEXT NOT NULL,
    cloud_platform TEXT NOT NULL,
    log_source     TEXT,
    actor          TEXT,
    actor_id       TEXT,
    target_account TEXT,
    target_keys    TEXT NOT NULL DEFAULT '[]',
    correlation_id TEXT,
    granted        TEXT,
    admin_grant    INTEGER NOT NULL DEFAULT 0,
    source_ip      TEXT,
    payload        TEXT,
    stored_at      INTEGER NOT NULL
);
CREATE INDEX follow_on_events_time ON follow_on_events (event_time);

CREATE TABLE chains (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_key   TEXT NOT NULL UNIQUE,   -- derived from the chain's earliest creation (stable as it grows)
    kind        TEXT NOT NULL,          -- most serious kind present
    kinds       TEXT NOT NULL,          -- JSON list
    first_time  INTEGER NOT NULL,
    last_time   INTEGER NOT NULL,
    severity    INTEGER NOT NULL,
    confidence  TEXT NOT NULL,
    admin       INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX chains_first_time ON chains (first_time DESC);

-- The chain's events in order; detection_id is NULL for follow-on events.
CREATE TABLE chain_events (
    chain_id       INTEGER NOT NULL REFERENCES chains(id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    event_key      TEXT NOT NULL,
    event_time     INTEGER NOT NULL,
    event_name     TEXT NOT NULL,
    cloud_platform TEXT NOT NULL,
    actor          TEXT,
    target_account TEXT,
    detection_id   INTEGER REFERENCES detections(id) ON DELETE SET NULL,
    PRIMARY KEY (chain_id, position)
);
CREATE INDEX chain_events_key ON chain_events (event_key);

-- Every triage change (the detection row holds the latest; the audit log holds who/when too).
CREATE TABLE triage_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    detection_id  INTEGER NOT NULL REFERENCES detections(id) ON DELETE CASCADE,
    status        TEXT NOT NULL,
    note          TEXT,
    by_user       TEXT NOT NULL,
    at_ms         INTEGER NOT NULL
);
CREATE INDEX triage_history_detection ON triage_history (detection_id, at_ms);

-- "Refresh now" / "cancel" requests from any gunicorn worker, picked up by the refresher process.
CREATE TABLE refresh_requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    action        TEXT NOT NULL CHECK (action IN ('refresh', 'cancel')),
    requested_by  TEXT NOT NULL,
    requested_at  INTEGER NOT NULL,
    handled_at    INTEGER
);
CREATE INDEX refresh_requests_open ON refresh_requests (handled_at, action);
