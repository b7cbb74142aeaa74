-- What QRadar lets each user see (app/auth/access.py), learnt with the user's own token and shared by every
-- web worker: per user (a hash of the store and their token) and question ('log_sources', 'offense:<id>'),
-- the answer as JSON, until when it is fresh, and when it was learnt (kept as the last known answer while
-- QRadar cannot answer).
CREATE TABLE user_visibility (
    user_key     TEXT NOT NULL,
    question     TEXT NOT NULL,
    answer_json  TEXT NOT NULL,
    fresh_until  INTEGER NOT NULL,          -- epoch ms
    learnt_at    INTEGER NOT NULL,          -- epoch ms
    PRIMARY KEY (user_key, question)
);
CREATE INDEX user_visibility_learnt ON user_visibility (learnt_at);
