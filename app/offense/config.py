"""Offense settings (`SETTINGS`): the Offense Summary fragment's time budgets and the refresher's offense
sync. Registered by the composition roots through `app.features`."""

from __future__ import annotations

from app import settings
from app.aql import offense as offense_aql

SETTINGS = [
    settings.Setting(
        "offense_link_interval_s",
        "int",
        900,
        "How often the refresher learns which open offenses contain detections (s); 0 turns it off.",
        0,
        86_400,
    ),
    settings.Setting(
        "offense_link_max_per_cycle",
        "int",
        25,
        "Most offenses searched (in one Ariel search) per offense-link run.",
        1,
        offense_aql.MAX_LINK_BATCH,
    ),
    settings.Setting(
        "offense_fragment_budget_s",
        "int",
        4,
        "Longest the Offense Summary fragment waits for QRadar before answering 'still searching' (s).",
        1,
        30,
    ),
    settings.Setting(
        "offense_cache_recheck_s",
        "int",
        120,
        "How long the fragment trusts its cached answer before asking QRadar whether the offense changed (s).",
        0,
        86_400,
    ),
    settings.Setting(
        "offense_retry_after_error_s",
        "int",
        60,
        "After a failed search for an offense, how long the fragment shows the error before asking QRadar "
        "again (s): its backoff, so a failing console is not asked on every page view.",
        1,
        3600,
    ),
]
