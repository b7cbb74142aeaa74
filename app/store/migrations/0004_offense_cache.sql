-- Offense Summary fragment: one bounded Ariel search per offense, and its answer, cached per offense so
-- the Offense Summary page never waits on QRadar twice (app/offense, app/store/offense_cache.py).
CREATE TABLE offense_cache (
    offense_id          INTEGER PRIMARY KEY,
    status              TEXT NOT NULL CHECK (status IN ('searching', 'done', 'error')),
    search_id           TEXT,              -- the Ariel search while status = 'searching'
    offense_start       INTEGER,           -- the offense's start_time (epoch ms) when searched
    offense_updated     INTEGER,           -- its last_updated_time; a newer one means search again
    rows                TEXT NOT NULL DEFAULT '[]',  -- JSON list of the offense's creation events
    error               TEXT,
    started_at          INTEGER NOT NULL,
    finished_at         INTEGER,
    checked_at          INTEGER NOT NULL   -- last time the offense was compared with QRadar
);
