-- Google log source types (app/settings.py `log_source_types`): a stored setting that still holds the old
-- default for GCP ("Google Cloud Audit Logs", 5001: this project's own guess) gets IBM's Google Cloud Audit
-- (449); a stored setting without Google Workspace gets Google G Suite (442). Settings an administrator
-- changed otherwise are left as they are.
UPDATE settings
SET value_json = json_set(value_json, '$.GCP', json('[{"name": "Google Cloud Audit", "id": 449}]')),
    updated_by = 'upgrade 0017',
    updated_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
WHERE key = 'log_source_types'
  AND json_valid(value_json)
  AND json_extract(value_json, '$.GCP') = json('[{"name": "Google Cloud Audit Logs", "id": 5001}]');

UPDATE settings
SET value_json = json_set(value_json, '$."Google Workspace"', json('[{"name": "Google G Suite", "id": 442}]')),
    updated_by = 'upgrade 0017',
    updated_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
WHERE key = 'log_source_types'
  AND json_valid(value_json)
  AND json_type(value_json) = 'object'
  AND json_type(value_json, '$."Google Workspace"') IS NULL;
