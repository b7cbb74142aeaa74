-- The event's own time (Ariel devicetime: CloudTrail eventTime, Entra activityDateTime, Office 365
-- CreationTime, Google timestamp) next to event_time, the time QRadar received it (starttime), which stays
-- the key of every Ariel window, watermark and purge. Chains and Azure AD / Office 365 twins correlate on
-- COALESCE(device_time, event_time): Office 365 records reach QRadar minutes to hours after Entra's.
-- NULL for rows stored before this migration (their receipt time stands in).
ALTER TABLE detections ADD COLUMN device_time INTEGER;
ALTER TABLE follow_on_events ADD COLUMN device_time INTEGER;
-- Twin candidates by their own time (`store.entra_detections_between`).
CREATE INDEX detections_platform_own_time ON detections (cloud_platform, COALESCE(device_time, event_time));
