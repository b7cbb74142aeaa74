-- Tuning by QRadar user ID (issue 14): who wrote, submitted and approved an entry is kept as QRadar's
-- numeric user ID next to the display name, and the four-eyes rule reads the IDs of everyone who wrote a
-- matching condition since the last approval. Text edits (name, justification, ticket) made after an
-- approval are recorded for display. A detection whose suppression a chain overrode names the entry.

ALTER TABLE tuning_entries ADD COLUMN created_by_id INTEGER;
ALTER TABLE tuning_entries ADD COLUMN updated_by_id INTEGER;
ALTER TABLE tuning_entries ADD COLUMN approved_by_id INTEGER;
-- JSON list of {"id", "name"}: the users who wrote a matching condition since the last approval.
ALTER TABLE tuning_entries ADD COLUMN condition_writers_json TEXT NOT NULL DEFAULT '[]';
-- JSON list of {"by", "by_id", "at", "fields"}: text edits made since the last approval.
ALTER TABLE tuning_entries ADD COLUMN text_edits_json TEXT NOT NULL DEFAULT '[]';

-- Entries written before user IDs were kept: their submitter is known by name only.
UPDATE tuning_entries
   SET condition_writers_json = json_array(json_object('id', NULL, 'name', updated_by))
 WHERE status = 'pending';

-- The allowlist entry that matches this detection but does not hide it, because another, non-allowlisted
-- actor added credentials to the created identity or granted it privilege (a chain).
ALTER TABLE detections ADD COLUMN suppression_overridden_by INTEGER;
