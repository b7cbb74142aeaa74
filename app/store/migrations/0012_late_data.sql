-- Late data (app/detection/reconcile.py): which search first found a detection (NULL = the incremental
-- refresh, 'reconciliation' = only the late-data reconciliation saw it), and how many rows each refresher
-- query read per minute, so the reconciliation re-reads only the minutes whose count QRadar now gives
-- differently.
ALTER TABLE detections ADD COLUMN found_by TEXT;
CREATE INDEX detections_found_by ON detections (found_by) WHERE found_by IS NOT NULL;
CREATE TABLE ariel_minute_counts (
    query   TEXT NOT NULL,       -- detections | follow_on
    minute  INTEGER NOT NULL,    -- epoch ms of the minute (starttime)
    n       INTEGER NOT NULL,    -- rows read in full for that minute
    PRIMARY KEY (query, minute)
) WITHOUT ROWID;
