"""What the scenario is made of (items of events, offenses, chains) and the shorthands the item lists use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .facts import AWS, AZURE_AD
from .feeds import Builder


@dataclass
class EventRef:
    record: dict
    role: str
    expected_detection: bool
    is_service_account: bool | None = None
    account_kind: str | None = None
    target_account: str | None = None
    twin_of: EventRef | None = None


@dataclass
class Item:
    key: str
    kind: str  # attack | benign | follow-on | hostile | noise-sample | benign-variant | chain-step
    title: str
    platform: str
    actor: str
    actor_id: str
    actor_type: str
    events: list[EventRef]
    is_service_account: bool | None = None
    chain_kind: str | None = None
    source: str | None = None  # seed Testing Methodology / Atomic Red Team reference
    follows: str | None = None
    also_seen_in: list[str] = field(default_factory=list)
    allowlist: dict[str, Any] | None = None
    hostile_fields: dict[str, str] | None = None
    notes: str = ""
    # QRadar behaviour (manifest "behaviours": receipt_delay, coalescing, truncation) -> how detecting this
    # item depends on it
    depends_on: dict[str, str] = field(default_factory=dict)


@dataclass
class OffenseSpec:
    description: str
    events: list[EventRef]
    items: list[str]
    offense_type: int
    offense_source: str
    magnitude: int
    severity: int
    credibility: int
    relevance: int
    status: str = "OPEN"
    closed: bool = False
    rules: list[dict[str, Any]] = field(default_factory=list)
    has_cloud_account_events: bool = True


@dataclass
class ChainSpec:
    kind: str
    items: list[str]
    events: list[EventRef]


@dataclass
class Scenario:
    seed: int
    events_requested: int
    now_ms: int
    records: list[dict]
    items: list[Item]
    offenses: list[OffenseSpec]
    chains: list[ChainSpec]
    # id(record) -> exact receipt delay (ms) for records whose arrival an item depends on
    delays: dict[int, int] = field(default_factory=dict)


def ref(
    record: dict,
    role: str,
    detect: bool,
    service: bool | None = None,
    kind: str | None = None,
    target: str | None = None,
) -> EventRef:
    return EventRef(record, role, detect, service, kind, target)


def entra_user_item(
    b: Builder, key: str, kind: str, title: str, actor: str, events: list[EventRef], **kw: Any
) -> Item:
    """An Azure AD item whose actor is the user ``actor`` (a UPN), known by its object id."""
    return Item(key, kind, title, AZURE_AD, actor, b.object_id(actor), "user", events, **kw)


def aws_item(key: str, kind: str, title: str, identity: dict, events: list[EventRef], **kw: Any) -> Item:
    """An AWS item whose actor is the CloudTrail ``identity``: an IAM user by its name and ARN, an assumed
    role as role/session with the role's ARN (the session changes, the role is who acts)."""
    if identity["type"] == "IAMUser":
        return Item(key, kind, title, AWS, identity["userName"], identity["arn"], "IAMUser", events, **kw)
    issuer = identity["sessionContext"]["sessionIssuer"]
    session = identity["arn"].rsplit("/", 1)[1]
    actor = f"{issuer['userName']}/{session}"
    return Item(key, kind, title, AWS, actor, issuer["arn"], "AssumedRole", events, **kw)


@dataclass
class StoredEvents:
    """Where the scenario's records landed in the event store: each record's event id, and the stored
    columns (qid, devicetype, starttime, QID name, devicetime) of every item's event."""

    ids: dict[int, int]  # id(record) -> event id
    columns: dict[int, tuple[int, int, int, str, int]] = field(default_factory=dict)
    coalesced: set[int] = field(default_factory=set)  # id(record) of records counted in another event
    truncated: set[int] = field(default_factory=set)  # id(record) of records stored with a cut payload

    def event_id(self, event: EventRef) -> int:
        return self.ids[id(event.record)]
