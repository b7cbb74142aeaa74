"""Which log sources a user's own Ariel searches can see (the security-profile probe).

QRadar filters every Ariel search by the searching user's security profile, so a search run with the
user's own token over the log sources the app's detections came from answers with exactly the ones that
user may see. Pure function; every value goes through `app.aql.literals`.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.aql.literals import string_list, time_clause


def visible_log_sources_query(log_sources: Iterable[str], start_ms: int, stop_ms: int) -> str:
    """One row per log source among ``log_sources`` that has an event the searching user can see in
    [start_ms, stop_ms)."""
    names = sorted(set(log_sources))
    return (
        "SELECT LOGSOURCENAME(logsourceid) AS log_source, COUNT(*) AS events FROM events"
        f" WHERE LOGSOURCENAME(logsourceid) IN {string_list(names)}"
        f" GROUP BY logsourceid {time_clause(start_ms, stop_ms)}"
    )
