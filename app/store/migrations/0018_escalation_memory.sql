-- Escalation memory: an administrator grant finds the creation of the identity it names, days earlier, by
-- the creation's lower-cased name or ID (`remembered_creations` and `chain_inputs` in
-- app/store/detections.py), without reading the days of detections in between. They replace the index on
-- the name as written, which no query could use (the tab's target filter is a substring match).
DROP INDEX IF EXISTS detections_target;
CREATE INDEX detections_target_account_lower ON detections (lower(target_account), event_time);
CREATE INDEX detections_target_id_lower ON detections (lower(target_id), event_time);
