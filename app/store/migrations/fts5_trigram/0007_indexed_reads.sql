-- Migration 0007's text index (applied in 0007's transaction when SQLite has FTS5's trigram tokenizer).
-- Kept by triggers on `detections`, in the same transaction as every insert, update and delete.

-- Text search. `q` matches a detection when one of these ten columns contains it, ASCII letters in any
-- case: `col LIKE '%q%'` with SQLite's LIKE, which folds ASCII only. A trigram index over lower(col)
-- (SQLite's lower() folds ASCII only too) with a case-sensitive tokenizer answers exactly that for any q of
-- three or more characters: a phrase of q's trigrams is found at consecutive positions of one column iff
-- the column contains q. Contentless (content=''): only the index is stored; a delete names the indexed
-- values again, computed by the same expressions from the old row.
CREATE VIRTUAL TABLE detections_search USING fts5(
    event_name, actor, actor_id, target_account, target_id, source_ip, user_agent, log_source,
    correlation_id, triage_note,
    content = '', tokenize = 'trigram case_sensitive 1'
);

INSERT INTO detections_search (rowid, event_name, actor, actor_id, target_account, target_id, source_ip,
                               user_agent, log_source, correlation_id, triage_note)
SELECT id, lower(event_name), lower(actor), lower(actor_id), lower(target_account), lower(target_id),
       lower(source_ip), lower(user_agent), lower(log_source), lower(correlation_id), lower(triage_note)
FROM detections;

CREATE TRIGGER detections_search_insert AFTER INSERT ON detections
BEGIN
    INSERT INTO detections_search (rowid, event_name, actor, actor_id, target_account, target_id, source_ip,
                                   user_agent, log_source, correlation_id, triage_note)
    VALUES (new.id, lower(new.event_name), lower(new.actor), lower(new.actor_id), lower(new.target_account),
            lower(new.target_id), lower(new.source_ip), lower(new.user_agent), lower(new.log_source),
            lower(new.correlation_id), lower(new.triage_note));
END;

CREATE TRIGGER detections_search_delete AFTER DELETE ON detections
BEGIN
    INSERT INTO detections_search (detections_search, rowid, event_name, actor, actor_id, target_account,
                                   target_id, source_ip, user_agent, log_source, correlation_id, triage_note)
    VALUES ('delete', old.id, lower(old.event_name), lower(old.actor), lower(old.actor_id),
            lower(old.target_account), lower(old.target_id), lower(old.source_ip), lower(old.user_agent),
            lower(old.log_source), lower(old.correlation_id), lower(old.triage_note));
END;

-- Only when a searched column changed (a triage update without a new note, a chain or suppression change
-- leave the index alone).
CREATE TRIGGER detections_search_update
AFTER UPDATE OF id, event_name, actor, actor_id, target_account, target_id, source_ip, user_agent, log_source,
                correlation_id, triage_note ON detections
WHEN old.id IS NOT new.id OR old.event_name IS NOT new.event_name OR old.actor IS NOT new.actor
  OR old.actor_id IS NOT new.actor_id OR old.target_account IS NOT new.target_account
  OR old.target_id IS NOT new.target_id OR old.source_ip IS NOT new.source_ip
  OR old.user_agent IS NOT new.user_agent OR old.log_source IS NOT new.log_source
  OR old.correlation_id IS NOT new.correlation_id OR old.triage_note IS NOT new.triage_note
BEGIN
    INSERT INTO detections_search (detections_search, rowid, event_name, actor, actor_id, target_account,
                                   target_id, source_ip, user_agent, log_source, correlation_id, triage_note)
    VALUES ('delete', old.id, lower(old.event_name), lower(old.actor), lower(old.actor_id),
            lower(old.target_account), lower(old.target_id), lower(old.source_ip), lower(old.user_agent),
            lower(old.log_source), lower(old.correlation_id), lower(old.triage_note));
    INSERT INTO detections_search (rowid, event_name, actor, actor_id, target_account, target_id, source_ip,
                                   user_agent, log_source, correlation_id, triage_note)
    VALUES (new.id, lower(new.event_name), lower(new.actor), lower(new.actor_id), lower(new.target_account),
            lower(new.target_id), lower(new.source_ip), lower(new.user_agent), lower(new.log_source),
            lower(new.correlation_id), lower(new.triage_note));
END;
