-- Creations that can be in a chain by their kind alone (`CHAIN_CANDIDATE` in app/store/detections.py):
-- the refresher reads them whenever a page may change a chain (and once per cycle for the targets AWS
-- credentials name), without scanning a day of detections.
CREATE INDEX detections_chain_candidates ON detections (event_time)
    WHERE ((cloud_platform IN ('Azure AD', 'Office 365')
            AND account_kind IN ('application', 'service_principal', 'credential'))
        OR (cloud_platform = 'AWS' AND account_kind IN ('access_key', 'login_profile')));
