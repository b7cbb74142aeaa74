-- Dev console event store: QRadar-normalized events plus the config tables that AQL's
-- name-lookup functions read (QID records, categories, log sources and their types),
-- reference data and offenses. One SQLite file per data directory (DIR/events.db).
PRAGMA journal_mode = WAL;

CREATE TABLE IF NOT EXISTS log_source_types (
  id   INTEGER PRIMARY KEY,          -- devicetype (347 CloudTrail, 445 Azure AD, 397 Office 365, ...)
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS log_sources (
  id      INTEGER PRIMARY KEY,       -- logsourceid
  name    TEXT NOT NULL UNIQUE,
  type_id INTEGER NOT NULL REFERENCES log_source_types(id),
  -- QRadar's per-log-source "Coalescing Events" (API: coalesce_events), on for a new log source.
  coalesce_events INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS categories (
  id             INTEGER PRIMARY KEY,  -- low-level ids (e.g. 3xxx) and high-level ids share one table as in QRadar
  name           TEXT NOT NULL,
  high_level_id  INTEGER                -- NULL for a high-level category
);
CREATE TABLE IF NOT EXISTS qid_records (
  qid                   INTEGER PRIMARY KEY,
  name                  TEXT NOT NULL,
  description           TEXT NOT NULL DEFAULT '',
  severity              INTEGER NOT NULL DEFAULT 5,
  low_level_category_id INTEGER NOT NULL REFERENCES categories(id),
  log_source_type_id    INTEGER NOT NULL REFERENCES log_source_types(id),
  UNIQUE (log_source_type_id, name)
);
-- Custom event properties known to this console (AQL: "Account Name"); values live in events.props.
CREATE TABLE IF NOT EXISTS custom_properties (
  name       TEXT PRIMARY KEY,
  value_type TEXT NOT NULL DEFAULT 'STRING'   -- STRING | NUMERIC | IP | TIME
);

CREATE TABLE IF NOT EXISTS events (
  id                INTEGER PRIMARY KEY,
  starttime         INTEGER NOT NULL,   -- epoch ms
  endtime           INTEGER NOT NULL,
  devicetime        INTEGER NOT NULL,
  qid               INTEGER NOT NULL,
  category          INTEGER NOT NULL,
  highlevelcategory INTEGER NOT NULL,
  logsourceid       INTEGER NOT NULL,
  devicetype        INTEGER NOT NULL,
  username          TEXT,
  sourceip          TEXT,
  destinationip     TEXT,
  magnitude         INTEGER NOT NULL DEFAULT 5,
  severity          INTEGER NOT NULL DEFAULT 5,
  credibility       INTEGER NOT NULL DEFAULT 5,
  relevance         INTEGER NOT NULL DEFAULT 5,
  eventcount        INTEGER NOT NULL DEFAULT 1,
  payload           BLOB,
  props             TEXT,              -- JSON object: custom property name -> value
  searchable_at     INTEGER            -- epoch ms the event becomes visible to searches; NULL = at once
);
CREATE INDEX IF NOT EXISTS events_starttime ON events(starttime);

-- Store delay per log source (devconsole/storedelay.py): how long after its starttime an event becomes
-- searchable, with occasional backlog bursts; deterministic under `seed`.
CREATE TABLE IF NOT EXISTS store_delays (
  logsourceid         INTEGER PRIMARY KEY,
  lag_ms              INTEGER NOT NULL DEFAULT 0,
  jitter_ms           INTEGER NOT NULL DEFAULT 0,
  burst_probability   REAL NOT NULL DEFAULT 0,
  burst_window_ms     INTEGER NOT NULL DEFAULT 3600000,
  burst_ms            INTEGER NOT NULL DEFAULT 0,
  seed                INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS offenses (
  id                INTEGER PRIMARY KEY,
  description       TEXT NOT NULL,
  offense_type      INTEGER NOT NULL DEFAULT 0,
  offense_source    TEXT NOT NULL DEFAULT '',
  magnitude         INTEGER NOT NULL DEFAULT 5,
  severity          INTEGER NOT NULL DEFAULT 5,
  credibility       INTEGER NOT NULL DEFAULT 5,
  relevance         INTEGER NOT NULL DEFAULT 5,
  status            TEXT NOT NULL DEFAULT 'OPEN',
  start_time        INTEGER NOT NULL,
  last_updated_time INTEGER NOT NULL,
  close_time        INTEGER,
  assigned_to       TEXT,
  follow_up         INTEGER NOT NULL DEFAULT 0,
  protected         INTEGER NOT NULL DEFAULT 0,
  domain_id         INTEGER NOT NULL DEFAULT 0,
  rules             TEXT NOT NULL DEFAULT '[]'   -- JSON [{id, type}]
);
CREATE TABLE IF NOT EXISTS offense_events (
  offense_id INTEGER NOT NULL REFERENCES offenses(id),
  event_id   INTEGER NOT NULL REFERENCES events(id),
  PRIMARY KEY (offense_id, event_id)
);
CREATE INDEX IF NOT EXISTS offense_events_event ON offense_events(event_id);

CREATE TABLE IF NOT EXISTS reference_sets (
  name          TEXT PRIMARY KEY,
  element_type  TEXT NOT NULL,          -- ALN ALNIC IP NUM PORT DATE CIDR
  timeout_type  TEXT NOT NULL DEFAULT 'UNKNOWN',
  time_to_live  TEXT,                   -- e.g. '30 days'; NULL = never
  creation_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reference_set_values (
  set_name   TEXT NOT NULL REFERENCES reference_sets(name) ON DELETE CASCADE,
  value      TEXT NOT NULL,             -- ALNIC values stored as given; matching is case-insensitive
  source     TEXT NOT NULL DEFAULT 'reference data api',
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  PRIMARY KEY (set_name, value)
);
CREATE TABLE IF NOT EXISTS reference_maps (
  name          TEXT PRIMARY KEY,
  element_type  TEXT NOT NULL,
  key_label     TEXT,
  value_label   TEXT,
  timeout_type  TEXT NOT NULL DEFAULT 'UNKNOWN',
  time_to_live  TEXT,
  creation_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reference_map_values (
  map_name   TEXT NOT NULL REFERENCES reference_maps(name) ON DELETE CASCADE,
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  source     TEXT NOT NULL DEFAULT 'reference data api',
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  PRIMARY KEY (map_name, key)
);

-- Analytics rules (CRE rules) known to this console; offenses.rules and AQL's RULENAME/creeventlist name them.
CREATE TABLE IF NOT EXISTS rules (
  id                INTEGER PRIMARY KEY,
  name              TEXT NOT NULL,
  type              TEXT NOT NULL DEFAULT 'EVENT',   -- EVENT FLOW COMMON OFFENSE
  enabled           INTEGER NOT NULL DEFAULT 1,
  owner             TEXT NOT NULL DEFAULT 'admin',
  origin            TEXT NOT NULL DEFAULT 'USER',    -- SYSTEM OVERRIDE USER
  identifier        TEXT NOT NULL,
  creation_date     INTEGER NOT NULL,
  modification_date INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS offense_closing_reasons (
  id          INTEGER PRIMARY KEY,
  text        TEXT NOT NULL,
  is_reserved INTEGER NOT NULL DEFAULT 0,
  is_deleted  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS offense_notes (
  id          INTEGER PRIMARY KEY,
  offense_id  INTEGER NOT NULL REFERENCES offenses(id),
  create_time INTEGER NOT NULL,
  username    TEXT NOT NULL,
  note_text   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS offense_notes_offense ON offense_notes(offense_id);
-- Ids of the addresses offenses involve (/api/siem/source_addresses, /local_destination_addresses): kept so
-- an address keeps its id as offenses come and go.
CREATE TABLE IF NOT EXISTS offense_addresses (
  id   INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,                 -- source | local_destination
  ip   TEXT NOT NULL,
  UNIQUE (kind, ip)
);

CREATE TABLE IF NOT EXISTS reference_maps_of_sets (
  name          TEXT PRIMARY KEY,
  element_type  TEXT NOT NULL,
  description   TEXT,
  key_label     TEXT,
  value_label   TEXT,
  timeout_type  TEXT NOT NULL DEFAULT 'UNKNOWN',
  time_to_live  TEXT,
  creation_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reference_map_of_sets_values (
  map_name   TEXT NOT NULL REFERENCES reference_maps_of_sets(name) ON DELETE CASCADE,
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  source     TEXT NOT NULL DEFAULT 'reference data api',
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  PRIMARY KEY (map_name, key, value)
);
CREATE TABLE IF NOT EXISTS reference_tables (
  name           TEXT PRIMARY KEY,
  element_type   TEXT NOT NULL,
  description    TEXT,
  key_label      TEXT,
  key_name_types TEXT NOT NULL DEFAULT '{}',   -- JSON {inner key: element type}
  timeout_type   TEXT NOT NULL DEFAULT 'UNKNOWN',
  time_to_live   TEXT,
  creation_time  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reference_table_values (
  table_name TEXT NOT NULL REFERENCES reference_tables(name) ON DELETE CASCADE,
  outer_key  TEXT NOT NULL,
  inner_key  TEXT NOT NULL,
  value      TEXT NOT NULL,
  source     TEXT NOT NULL DEFAULT 'reference data api',
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  PRIMARY KEY (table_name, outer_key, inner_key)
);
