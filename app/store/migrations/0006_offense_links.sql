-- Which QRadar offenses contain which detections, so the tab and the Offense Summary widget link both ways
-- without an analyst opening each widget first. Learnt by the refresher's offense sync
-- (app/offense/sync.py: open offenses updated since its watermark, one INOFFENSE search per batch) and by
-- the fragment's own search (app/offense/fragment.py). A link only grows: an event stays in its offense.
CREATE TABLE offense_links (
    offense_id    INTEGER NOT NULL,
    detection_id  INTEGER NOT NULL REFERENCES detections(id) ON DELETE CASCADE,
    source        TEXT NOT NULL CHECK (source IN ('sync', 'fragment')),
    linked_at     INTEGER NOT NULL,          -- epoch ms, first time the link was seen
    PRIMARY KEY (offense_id, detection_id)
);
-- The detail panel's look-up (detection -> offenses); the primary key serves the tab's offense filter.
CREATE INDEX offense_links_detection ON offense_links (detection_id, offense_id);

-- Per offense the sync has searched: the last_updated_time its links are complete for (an unchanged
-- offense is not searched again).
CREATE TABLE offense_sync (
    offense_id         INTEGER PRIMARY KEY,
    last_updated_time  INTEGER NOT NULL,
    links              INTEGER NOT NULL DEFAULT 0,   -- detections linked by its last search
    synced_at          INTEGER NOT NULL
);

-- What the fragment's cache already knew before this version (offenses opened once).
INSERT OR IGNORE INTO offense_links (offense_id, detection_id, source, linked_at)
SELECT c.offense_id, d.id, 'fragment', c.checked_at
FROM offense_cache AS c,
     json_each(CASE WHEN json_valid(c.rows) THEN c.rows ELSE '[]' END) AS r
     JOIN detections AS d
       ON d.id = CASE WHEN r.type = 'object' THEN json_extract(r.value, '$.detection_id') END
WHERE c.status = 'done';
