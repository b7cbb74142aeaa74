-- Migration 0007's insert trigger, skipped while a batch insert indexes its rows itself
-- (see 0014_batched_search_index.sql).
DROP TRIGGER detections_search_insert;

CREATE TRIGGER detections_search_insert AFTER INSERT ON detections
WHEN NOT EXISTS (SELECT 1 FROM detection_batch)
BEGIN
    INSERT INTO detections_search (rowid, target_account, target_id, correlation_id, triage_note)
    VALUES (new.id, lower(new.target_account), lower(new.target_id), lower(new.correlation_id), lower(new.triage_note));
    INSERT INTO search_values (column_name, value) SELECT 'event_name', new.event_name
    WHERE new.event_name != '' ON CONFLICT (column_name, value) DO NOTHING;
    INSERT INTO search_values (column_name, value) SELECT 'actor', new.actor
    WHERE new.actor != '' ON CONFLICT (column_name, value) DO NOTHING;
    INSERT INTO search_values (column_name, value) SELECT 'actor_id', new.actor_id
    WHERE new.actor_id != '' ON CONFLICT (column_name, value) DO NOTHING;
    INSERT INTO search_values (column_name, value) SELECT 'source_ip', new.source_ip
    WHERE new.source_ip != '' ON CONFLICT (column_name, value) DO NOTHING;
    INSERT INTO search_values (column_name, value) SELECT 'user_agent', new.user_agent
    WHERE new.user_agent != '' ON CONFLICT (column_name, value) DO NOTHING;
    INSERT INTO search_values (column_name, value) SELECT 'log_source', new.log_source
    WHERE new.log_source != '' ON CONFLICT (column_name, value) DO NOTHING;
END;
