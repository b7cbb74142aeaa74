-- Escalation memory: an administrator grant finds the creation of the identity it names, days earlier, by
-- the creation's lower-cased name or ID (`remembered_creations` in app/store/detections.py), without
-- reading the days of detections in between.
CREATE INDEX detections_target_account_lower ON detections (lower(target_account), event_time);
CREATE INDEX detections_target_id_lower ON detections (lower(target_id), event_time);
