-- Identity Center account assignments (0015) and Entra federated identity credentials, domain changes and owners added can be in a chain by their kind
-- alone (the app/SP/credential chain, the domain federation chain, an owner grant naming a new identity):
-- `CHAIN_CANDIDATE` in app/store/detections.py, whose WHERE this partial index repeats exactly so that
-- `INDEXED BY` can use it.
DROP INDEX IF EXISTS detections_chain_candidates;
CREATE INDEX detections_chain_candidates ON detections (event_time)
    WHERE ((cloud_platform IN ('Azure AD', 'Office 365')
            AND account_kind IN ('application', 'service_principal', 'credential', 'federated_credential',
                                 'domain', 'domain_federation', 'app_owner'))
        OR (cloud_platform = 'AWS' AND account_kind IN ('access_key', 'login_profile', 'account_assignment')));
