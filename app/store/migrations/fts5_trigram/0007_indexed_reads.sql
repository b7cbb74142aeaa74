-- Migration 0007's text index (applied in 0007's transaction when SQLite has FTS5's trigram tokenizer).
-- Kept by triggers on `detections`, in the same transaction as every insert, update and delete.
-- Reader: app/store/detections.py (search_matches_sql).
--
-- `q` matches a detection when one of ten columns contains it, ASCII letters in any case: `col LIKE '%q%'`
-- with SQLite's LIKE, which folds ASCII only. A trigram index over lower(col) (SQLite's lower() folds ASCII
-- only too) with a case-sensitive tokenizer answers exactly that for any q of three or more characters: a
-- phrase of q's trigrams is found at consecutive positions of one value iff the value contains q.
--
-- Two indexes, by how the columns repeat. Initiators, event names, log sources, user agents and source
-- addresses repeat across thousands of detections: a trigram index over every row spends most of a search
-- walking the positions of their common trigrams (a search matching 1.5 % of 1,000,000 detections took 40
-- times a COUNT(*)). Their distinct values are indexed instead (search_values), and the detections holding
-- a matching value are found through a B-tree index on the column. Targets, their IDs, correlation IDs and
-- triage notes are mostly unique: a trigram index over the rows (detections_search).

-- Per detection. Contentless (content=''): only the index is stored; a delete names the indexed values
-- again, computed by the same expressions from the old row.
CREATE VIRTUAL TABLE detections_search USING fts5(
    target_account, target_id, correlation_id, triage_note,
    content = '', tokenize = 'trigram case_sensitive 1'
);

INSERT INTO detections_search (rowid, target_account, target_id, correlation_id, triage_note)
SELECT id, lower(target_account), lower(target_id), lower(correlation_id), lower(triage_note) FROM detections;

CREATE TRIGGER detections_search_insert AFTER INSERT ON detections
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

CREATE TRIGGER detections_search_delete AFTER DELETE ON detections
BEGIN
    INSERT INTO detections_search (detections_search, rowid, target_account, target_id, correlation_id, triage_note)
    VALUES ('delete', old.id, lower(old.target_account), lower(old.target_id), lower(old.correlation_id), lower(old.triage_note));
END;

-- Only when an indexed column changed (a triage update without a new note, a chain or suppression change
-- leave the index alone).
CREATE TRIGGER detections_search_update
AFTER UPDATE OF id, target_account, target_id, correlation_id, triage_note ON detections
WHEN old.id IS NOT new.id
  OR old.target_account IS NOT new.target_account
  OR old.target_id IS NOT new.target_id
  OR old.correlation_id IS NOT new.correlation_id
  OR old.triage_note IS NOT new.triage_note
BEGIN
    INSERT INTO detections_search (detections_search, rowid, target_account, target_id, correlation_id, triage_note)
    VALUES ('delete', old.id, lower(old.target_account), lower(old.target_id), lower(old.correlation_id), lower(old.triage_note));
    INSERT INTO detections_search (rowid, target_account, target_id, correlation_id, triage_note)
    VALUES (new.id, lower(new.target_account), lower(new.target_id), lower(new.correlation_id), lower(new.triage_note));
END;

-- Distinct values of the repeating columns. A value stays when its last detection goes (it then finds
-- nothing): the table grows with the distinct values ever stored, not with the detections.
CREATE TABLE search_values (
    id           INTEGER PRIMARY KEY,
    column_name  TEXT NOT NULL,
    value        TEXT NOT NULL,
    UNIQUE (column_name, value)
);
CREATE VIRTUAL TABLE search_values_text USING fts5(
    value, content = '', tokenize = 'trigram case_sensitive 1'
);
CREATE TRIGGER search_values_insert AFTER INSERT ON search_values
BEGIN
    INSERT INTO search_values_text (rowid, value) VALUES (new.id, lower(new.value));
END;

INSERT INTO search_values (column_name, value) SELECT DISTINCT 'event_name', event_name FROM detections WHERE event_name != ''
ON CONFLICT (column_name, value) DO NOTHING;
INSERT INTO search_values (column_name, value) SELECT DISTINCT 'actor', actor FROM detections WHERE actor != ''
ON CONFLICT (column_name, value) DO NOTHING;
INSERT INTO search_values (column_name, value) SELECT DISTINCT 'actor_id', actor_id FROM detections WHERE actor_id != ''
ON CONFLICT (column_name, value) DO NOTHING;
INSERT INTO search_values (column_name, value) SELECT DISTINCT 'source_ip', source_ip FROM detections WHERE source_ip != ''
ON CONFLICT (column_name, value) DO NOTHING;
INSERT INTO search_values (column_name, value) SELECT DISTINCT 'user_agent', user_agent FROM detections WHERE user_agent != ''
ON CONFLICT (column_name, value) DO NOTHING;
INSERT INTO search_values (column_name, value) SELECT DISTINCT 'log_source', log_source FROM detections WHERE log_source != ''
ON CONFLICT (column_name, value) DO NOTHING;

CREATE TRIGGER detections_search_values_update
AFTER UPDATE OF event_name, actor, actor_id, source_ip, user_agent, log_source ON detections
WHEN old.event_name IS NOT new.event_name
  OR old.actor IS NOT new.actor
  OR old.actor_id IS NOT new.actor_id
  OR old.source_ip IS NOT new.source_ip
  OR old.user_agent IS NOT new.user_agent
  OR old.log_source IS NOT new.log_source
BEGIN
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

-- From a matching value to its detections (actor_id has detections_actor_id since 0002).
CREATE INDEX detections_event_name ON detections (event_name);
CREATE INDEX detections_actor ON detections (actor);
CREATE INDEX detections_source_ip ON detections (source_ip);
CREATE INDEX detections_user_agent ON detections (user_agent);
CREATE INDEX detections_log_source ON detections (log_source);
