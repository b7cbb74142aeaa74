-- AWS privilege memory (app/store/aws_privilege.py): customer-managed policies whose contents were seen
-- (CreatePolicy / CreatePolicyVersion) and groups seen to receive a policy (AttachGroupPolicy /
-- PutGroupPolicy), so a later AttachUserPolicy of that ARN or AddUserToGroup to that group is judged
-- by what the policy allows. A policy or group is admin once any of its versions or policies was.
CREATE TABLE aws_policies (
    policy_arn TEXT PRIMARY KEY COLLATE NOCASE,
    admin INTEGER NOT NULL,
    event_time INTEGER NOT NULL,
    event_key TEXT NOT NULL
);
CREATE TABLE aws_groups (
    group_name TEXT PRIMARY KEY COLLATE NOCASE,
    admin INTEGER NOT NULL,
    granted TEXT,
    event_time INTEGER NOT NULL,
    event_key TEXT NOT NULL
);

-- Context-only creations (MFA devices, IAM groups: app/kinds.py) are stored as follow-on events with
-- their kind, so chains can show them without raising them.
ALTER TABLE follow_on_events ADD COLUMN account_kind TEXT;

-- Identity Center account assignments join chains by their kind (CHAIN_CANDIDATE).
DROP INDEX detections_chain_candidates;
CREATE INDEX detections_chain_candidates ON detections (event_time)
    WHERE ((cloud_platform IN ('Azure AD', 'Office 365')
            AND account_kind IN ('application', 'service_principal', 'credential'))
        OR (cloud_platform = 'AWS' AND account_kind IN ('access_key', 'login_profile', 'account_assignment')));
