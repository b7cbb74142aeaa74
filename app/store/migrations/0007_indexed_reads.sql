-- Indexed reads for the tab's list (GET /api/detections): text search `q`, the "new, not suppressed"
-- view and the sort by severity, which read every row at 1,000,000 detections (0.35 to 0.85 s).
-- The text index is in fts5_trigram/0007_indexed_reads.sql (applied in the same transaction when SQLite
-- has FTS5's trigram tokenizer; without it text search reads the rows). Everything is kept by triggers on
-- `detections`, in the same transaction as every insert, update and delete whoever makes it (refresher,
-- triage, tuning, retention), like the counts of migration 0005.
-- Reader: app/store/detections.py (list_detections).

-- The "new, not suppressed" list, newest first: the page from this partial index alone (suppressed_by and
-- triage_status, the same in every entry, are columns too so that the query naming them is index-only).
CREATE INDEX detections_new_active_time ON detections (event_time DESC, id DESC, suppressed_by, triage_status)
    WHERE suppressed_by IS NULL AND triage_status = 'new';

-- Sort by severity: a backward walk gives severity DESC, id DESC (the list's tie-break) without sorting.
CREATE INDEX detections_severity ON detections (severity);

-- The list's total for filters on platform, service accounts, suppression and triage status alone (the
-- "new, not suppressed" view counted 990,000 index entries): O(groups) rather than O(rows).
CREATE TABLE detection_state_counts (
    cloud_platform      TEXT NOT NULL,
    is_service_account  INTEGER NOT NULL,
    suppressed          INTEGER NOT NULL,    -- suppressed_by IS NOT NULL
    triage_status       TEXT NOT NULL,
    n                   INTEGER NOT NULL,    -- > 0 (a group that reaches 0 is deleted)
    PRIMARY KEY (cloud_platform, is_service_account, suppressed, triage_status)
) WITHOUT ROWID;

INSERT INTO detection_state_counts (cloud_platform, is_service_account, suppressed, triage_status, n)
SELECT cloud_platform, is_service_account, suppressed_by IS NOT NULL, triage_status, COUNT(*)
FROM detections GROUP BY 1, 2, 3, 4;

-- Upserts name their conflict target: SQLite before 3.35 requires it.
CREATE TRIGGER detections_state_counts_insert AFTER INSERT ON detections
BEGIN
    INSERT INTO detection_state_counts (cloud_platform, is_service_account, suppressed, triage_status, n)
    VALUES (new.cloud_platform, new.is_service_account, new.suppressed_by IS NOT NULL, new.triage_status, 1)
    ON CONFLICT (cloud_platform, is_service_account, suppressed, triage_status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER detections_state_counts_delete AFTER DELETE ON detections
BEGIN
    UPDATE detection_state_counts SET n = n - 1
    WHERE cloud_platform = old.cloud_platform AND is_service_account = old.is_service_account
      AND suppressed = (old.suppressed_by IS NOT NULL) AND triage_status = old.triage_status;
    DELETE FROM detection_state_counts
    WHERE cloud_platform = old.cloud_platform AND is_service_account = old.is_service_account
      AND suppressed = (old.suppressed_by IS NOT NULL) AND triage_status = old.triage_status AND n <= 0;
END;

CREATE TRIGGER detections_state_counts_update
AFTER UPDATE OF cloud_platform, is_service_account, suppressed_by, triage_status ON detections
WHEN old.cloud_platform IS NOT new.cloud_platform OR old.is_service_account IS NOT new.is_service_account
  OR (old.suppressed_by IS NULL) IS NOT (new.suppressed_by IS NULL) OR old.triage_status IS NOT new.triage_status
BEGIN
    UPDATE detection_state_counts SET n = n - 1
    WHERE cloud_platform = old.cloud_platform AND is_service_account = old.is_service_account
      AND suppressed = (old.suppressed_by IS NOT NULL) AND triage_status = old.triage_status;
    DELETE FROM detection_state_counts
    WHERE cloud_platform = old.cloud_platform AND is_service_account = old.is_service_account
      AND suppressed = (old.suppressed_by IS NOT NULL) AND triage_status = old.triage_status AND n <= 0;
    INSERT INTO detection_state_counts (cloud_platform, is_service_account, suppressed, triage_status, n)
    VALUES (new.cloud_platform, new.is_service_account, new.suppressed_by IS NOT NULL, new.triage_status, 1)
    ON CONFLICT (cloud_platform, is_service_account, suppressed, triage_status) DO UPDATE SET n = n + 1;
END;
