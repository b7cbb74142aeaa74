-- The refresher's inserts keep the pre-aggregated counts (migrations 0005 and 0007) per batch rather than
-- per row, as migration 0014 does for the text index.
--
-- Three upserts per inserted row (hour bucket, initiator-day bucket, state group) were about a tenth of
-- what an insert cost; a page of rows falls into a handful of buckets. While `detection_batch` holds a
-- row, inserts leave the counts alone and the writer that put the row there reads its batch's bucket keys
-- once and adds one upsert per bucket before removing it, in the same transaction (`_count_batch` in
-- app/store/detections.py). Every other writer (triage, tuning, retention, an operator's sqlite3) still
-- has its rows counted by these triggers: no other connection ever sees a row in `detection_batch`.
DROP TRIGGER detections_counts_insert;

CREATE TRIGGER detections_counts_insert AFTER INSERT ON detections
WHEN NOT EXISTS (SELECT 1 FROM detection_batch)
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

DROP TRIGGER detections_state_counts_insert;

CREATE TRIGGER detections_state_counts_insert AFTER INSERT ON detections
WHEN NOT EXISTS (SELECT 1 FROM detection_batch)
BEGIN
    INSERT INTO detection_state_counts (cloud_platform, is_service_account, suppressed, triage_status, n)
    VALUES (new.cloud_platform, new.is_service_account, new.suppressed_by IS NOT NULL, new.triage_status, 1)
    ON CONFLICT (cloud_platform, is_service_account, suppressed, triage_status) DO UPDATE SET n = n + 1;
END;
