-- What QRadar's delivery did to a detection's event (issue 13): how many events the stored record stands
-- for (coalescing), whether its payload could be read, and what the record says about the outcome.
ALTER TABLE detections ADD COLUMN eventcount INTEGER NOT NULL DEFAULT 1;
ALTER TABLE detections ADD COLUMN payload_state TEXT NOT NULL DEFAULT 'parsed'; -- parsed | truncated | unparsable | missing
ALTER TABLE detections ADD COLUMN outcome TEXT NOT NULL DEFAULT 'success';      -- success | possible_success | unknown
-- Detections stored before this release whose payload gave no identifiers: their outcome was never known.
UPDATE detections
   SET payload_state = CASE WHEN payload IS NULL OR payload = '' THEN 'missing' ELSE 'unparsable' END,
       outcome = 'unknown'
 WHERE payload_ok = 0;
