-- Pre-aggregated detection counts, so the tab's overview and the dashboard read O(buckets) rather than
-- O(rows) (a 30-day overview over 1,000,000 detections took 31 s scanning them). The counts are kept by
-- triggers on `detections`, i.e. in the same transaction as every insert, update and delete whoever makes
-- it (refresher, tuning, retention, an operator's sqlite3), so they can never disagree with the rows.
-- Readers: app/store/overview.py and app/store/dashboard.py (rows inside partial buckets at the edges of a
-- window are read from `detections` itself).

-- Per hour (event_time / 3600000 * 3600000, the overview's timeline expression), platform,
-- is_service_account as stored, and suppressed or not: every detection, suppressed ones included.
CREATE TABLE detection_hour_counts (
    hour_ms             INTEGER NOT NULL,
    cloud_platform      TEXT NOT NULL,
    is_service_account  INTEGER NOT NULL,
    suppressed          INTEGER NOT NULL,    -- suppressed_by IS NOT NULL
    n                   INTEGER NOT NULL,    -- > 0 (a bucket that reaches 0 is deleted)
    PRIMARY KEY (hour_ms, cloud_platform, is_service_account, suppressed)
) WITHOUT ROWID;

-- Per UTC day and initiator, unsuppressed detections only (the top-initiator lists leave suppressed ones
-- out). NULL and '' are kept apart for `actor` (shown, and MAX(actor) tells them apart) but not for
-- `actor_id` (every reader uses NULLIF(actor_id, '')); NOT NULL so they can be part of the key.
CREATE TABLE detection_actor_day_counts (
    day_ms      INTEGER NOT NULL,
    actor_id    TEXT NOT NULL,               -- IFNULL(actor_id, '')
    actor       TEXT NOT NULL,               -- IFNULL(actor, '')
    actor_null  INTEGER NOT NULL,            -- actor IS NULL
    n           INTEGER NOT NULL,
    PRIMARY KEY (day_ms, actor_id, actor, actor_null)
) WITHOUT ROWID;

-- Backfill from the stored detections (a store upgraded from version 4 keeps every count).
INSERT INTO detection_hour_counts (hour_ms, cloud_platform, is_service_account, suppressed, n)
SELECT (event_time / 3600000) * 3600000, cloud_platform, is_service_account, suppressed_by IS NOT NULL, COUNT(*)
FROM detections GROUP BY 1, 2, 3, 4;

INSERT INTO detection_actor_day_counts (day_ms, actor_id, actor, actor_null, n)
SELECT (event_time / 86400000) * 86400000, IFNULL(actor_id, ''), IFNULL(actor, ''), actor IS NULL, COUNT(*)
FROM detections WHERE suppressed_by IS NULL GROUP BY 1, 2, 3, 4;

-- Upserts name their conflict target: SQLite before 3.35 (QRadar's app base image) requires it.
CREATE TRIGGER detections_counts_insert AFTER INSERT ON detections
BEGIN
    INSERT INTO detection_hour_counts (hour_ms, cloud_platform, is_service_account, suppressed, n)
    VALUES ((new.event_time / 3600000) * 3600000, new.cloud_platform, new.is_service_account,
            new.suppressed_by IS NOT NULL, 1)
    ON CONFLICT (hour_ms, cloud_platform, is_service_account, suppressed) DO UPDATE SET n = n + 1;
    INSERT INTO detection_actor_day_counts (day_ms, actor_id, actor, actor_null, n)
    SELECT (new.event_time / 86400000) * 86400000, IFNULL(new.actor_id, ''), IFNULL(new.actor, ''),
           new.actor IS NULL, 1
    WHERE new.suppressed_by IS NULL
    ON CONFLICT (day_ms, actor_id, actor, actor_null) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER detections_counts_delete AFTER DELETE ON detections
BEGIN
    UPDATE detection_hour_counts SET n = n - 1
    WHERE hour_ms = (old.event_time / 3600000) * 3600000 AND cloud_platform = old.cloud_platform
      AND is_service_account = old.is_service_account AND suppressed = (old.suppressed_by IS NOT NULL);
    DELETE FROM detection_hour_counts
    WHERE hour_ms = (old.event_time / 3600000) * 3600000 AND cloud_platform = old.cloud_platform
      AND is_service_account = old.is_service_account AND suppressed = (old.suppressed_by IS NOT NULL)
      AND n <= 0;
    UPDATE detection_actor_day_counts SET n = n - 1
    WHERE old.suppressed_by IS NULL AND day_ms = (old.event_time / 86400000) * 86400000
      AND actor_id = IFNULL(old.actor_id, '') AND actor = IFNULL(old.actor, '') AND actor_null = (old.actor IS NULL);
    DELETE FROM detection_actor_day_counts
    WHERE old.suppressed_by IS NULL AND day_ms = (old.event_time / 86400000) * 86400000
      AND actor_id = IFNULL(old.actor_id, '') AND actor = IFNULL(old.actor, '') AND actor_null = (old.actor IS NULL)
      AND n <= 0;
END;

-- An update moves the row from its old buckets to its new ones (only when a counted column changed:
-- triage and chain updates leave the counts alone).
CREATE TRIGGER detections_counts_update
AFTER UPDATE OF event_time, cloud_platform, is_service_account, suppressed_by, actor_id, actor ON detections
WHEN old.event_time IS NOT new.event_time OR old.cloud_platform IS NOT new.cloud_platform
  OR old.is_service_account IS NOT new.is_service_account
  OR (old.suppressed_by IS NULL) IS NOT (new.suppressed_by IS NULL)
  OR old.actor_id IS NOT new.actor_id OR old.actor IS NOT new.actor
BEGIN
    UPDATE detection_hour_counts SET n = n - 1
    WHERE hour_ms = (old.event_time / 3600000) * 3600000 AND cloud_platform = old.cloud_platform
      AND is_service_account = old.is_service_account AND suppressed = (old.suppressed_by IS NOT NULL);
    DELETE FROM detection_hour_counts
    WHERE hour_ms = (old.event_time / 3600000) * 3600000 AND cloud_platform = old.cloud_platform
      AND is_service_account = old.is_service_account AND suppressed = (old.suppressed_by IS NOT NULL)
      AND n <= 0;
    UPDATE detection_actor_day_counts SET n = n - 1
    WHERE old.suppressed_by IS NULL AND day_ms = (old.event_time / 86400000) * 86400000
      AND actor_id = IFNULL(old.actor_id, '') AND actor = IFNULL(old.actor, '') AND actor_null = (old.actor IS NULL);
    DELETE FROM detection_actor_day_counts
    WHERE old.suppressed_by IS NULL AND day_ms = (old.event_time / 86400000) * 86400000
      AND actor_id = IFNULL(old.actor_id, '') AND actor = IFNULL(old.actor, '') AND actor_null = (old.actor IS NULL)
      AND n <= 0;
    INSERT INTO detection_hour_counts (hour_ms, cloud_platform, is_service_account, suppressed, n)
    VALUES ((new.event_time / 3600000) * 3600000, new.cloud_platform, new.is_service_account,
            new.suppressed_by IS NOT NULL, 1)
    ON CONFLICT (hour_ms, cloud_platform, is_service_account, suppressed) DO UPDATE SET n = n + 1;
    INSERT INTO detection_actor_day_counts (day_ms, actor_id, actor, actor_null, n)
    SELECT (new.event_time / 86400000) * 86400000, IFNULL(new.actor_id, ''), IFNULL(new.actor, ''),
           new.actor IS NULL, 1
    WHERE new.suppressed_by IS NULL
    ON CONFLICT (day_ms, actor_id, actor, actor_null) DO UPDATE SET n = n + 1;
END;

-- Chain counts (COUNT(DISTINCT chain_id), per initiator on the dashboard) over the few chained detections.
-- suppressed_by (always NULL here) is a column too, so that the queries naming it are index-only.
CREATE INDEX detections_active_chain ON detections (event_time, chain_id, actor, suppressed_by)
    WHERE chain_id IS NOT NULL AND suppressed_by IS NULL;
-- Initiators of the rows in the partial days at a window's edges, without reading the detection rows.
CREATE INDEX detections_active_actor ON detections (event_time, actor_id, actor, suppressed_by)
    WHERE suppressed_by IS NULL;
-- The tab's platform + service-account filter: count and newest-first page from the index alone (partial:
-- service accounts only, so that "all service accounts" keeps walking detections_service_time in order).
CREATE INDEX detections_service_platform_time
    ON detections (cloud_platform, event_time DESC, id DESC, suppressed_by) WHERE is_service_account = 1;
