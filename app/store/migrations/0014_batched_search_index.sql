-- The refresher's inserts keep the text index (migration 0007) per batch rather than per row.
--
-- An INSERT that fires a trigger writing an FTS5 table opens a savepoint per row, and FTS5 writes its
-- pending index data to disk at every savepoint: one tiny segment per detection, then merging them. That
-- was 40 of the 130 µs an insert cost. While this table holds a row, inserts into `detections` leave the
-- text index alone, and the writer that put the row there indexes its whole batch with one statement per
-- index before removing it, in the same transaction (`insert_detections` in app/store/detections.py).
-- No other connection ever sees a row here: it is inserted and deleted inside one transaction, so every
-- other writer (triage, tuning, retention, an operator's sqlite3) still has its rows indexed by the trigger.
-- The trigger itself is in fts5_trigram/0014_batched_search_index.sql (only a store with the index has it).
CREATE TABLE detection_batch (
    first_id  INTEGER NOT NULL    -- the batch is every detection with a larger id
);

-- No query filters or sorts by correlation_id (text search reads it from the trigram index of 0007), and
-- its random values made this the costliest index an insert wrote (a leaf page per new row).
DROP INDEX detections_correlation;
