"""The scenario's offenses: QRadar offense types (what an offense is indexed on), the CRE rules that raised
them (rule ids are ours), and writing them into the event store."""

from __future__ import annotations

from typing import Any

from ..store import EventStore
from .model import EventRef, OffenseSpec, StoredEvents

OFFENSE_TYPE_SOURCE_IP = 0
OFFENSE_TYPE_USERNAME = 3
ACCOUNT_CREATION_RULES = [{"id": 100_411, "type": "CRE_RULE"}]
LOGIN_FAILURE_RULES = [{"id": 100_052, "type": "CRE_RULE"}]


def account_offense(
    description: str,
    events: list[EventRef],
    items: list[str],
    actor: str,
    scores: tuple[int, int, int, int],
    **kw: Any,
) -> OffenseSpec:
    """An offense of the account-creation rule, indexed on the acting user; ``scores`` are its
    (magnitude, severity, credibility, relevance)."""
    return OffenseSpec(
        description, events, items, OFFENSE_TYPE_USERNAME, actor, *scores, rules=ACCOUNT_CREATION_RULES, **kw
    )


def store_offenses(
    store: EventStore, specs: list[OffenseSpec], stored: StoredEvents
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Add each offense with its event links; returns their manifest entries and, per item key, the first
    offense that holds the item."""
    entries = []
    offense_of_item: dict[str, int] = {}
    for spec in specs:
        ids = [stored.event_id(ref) for ref in spec.events]
        times = [stored.columns[i][2] for i in ids]
        fields: dict[str, Any] = {
            "offense_type": spec.offense_type,
            "offense_source": spec.offense_source,
            "magnitude": spec.magnitude,
            "severity": spec.severity,
            "credibility": spec.credibility,
            "relevance": spec.relevance,
            "status": spec.status,
            "rules": spec.rules,
        }
        if spec.closed:
            fields["close_time"] = max(times) + 3_600_000
        offense_id = store.add_offense(spec.description, min(times), max(times), **fields)
        store.link_offense_events(offense_id, ids)
        for key in spec.items:
            offense_of_item.setdefault(key, offense_id)
        entries.append(
            {
                "id": offense_id,
                "description": spec.description,
                "status": spec.status,
                "event_ids": ids,
                "items": spec.items,
                "has_cloud_account_events": spec.has_cloud_account_events,
                "offense_source": spec.offense_source,
            }
        )
    return entries, offense_of_item
