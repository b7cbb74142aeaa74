"""Attack chains (issue item 5) and the Azure AD / Office 365 twin merge.

Chain kinds, from the seed's expected signals and the reference's chain list:

* ``entra_app_sp_credential`` — Entra *Add application* → *Add service principal* → *Add service principal
  credentials* by the same initiator or with the same correlation ID within 60 s (the AADInternals pattern);
* ``aws_user_credential`` — AWS *CreateUser* then *CreateAccessKey* and/or *CreateLoginProfile* for the same
  user within an hour;
* ``privilege_grant`` — any creation followed within 24 h by a privilege grant to the created identity
  (AWS admin AttachUserPolicy / AttachRolePolicy / PutUserPolicy, Entra *Add member to role*,
  *Add app role assignment to service principal*, *Consent to application*, GCP admin SetIamPolicy); an
  administrator grant joins the chain of an identity created up to 7 days before it (escalation memory).

Every window is a setting (`ChainWindows`, built from `app.detection.config`); the constants below are
their defaults.

Chains that share an event are one chain (a CreateUser with both a key and an admin policy is one
attack); its `kind` is the most serious kind present and `kinds` lists all of them.

Twins (item 5d) are not chains: an Entra creation seen in both Azure AD audit and the Office 365 audit is
merged into one detection (`merge_twins`), with the Office 365 copy listed in `also_seen_in`.

Everything here is pure: events in, chains out, deterministic (re-running adds nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app.aql.detection import AWS, AZURE_AD, GCP, OFFICE_365
from app.detection.extract import base_name

ENTRA_APP_SP_CREDENTIAL = "entra_app_sp_credential"
AWS_USER_CREDENTIAL = "aws_user_credential"
PRIVILEGE_GRANT = "privilege_grant"
# Decides a merged chain's `kind`: the creation pattern first (what the chain *is*), the privilege grant
# after it (it raises severity whichever kind is shown; `kinds` lists all).
CHAIN_KINDS: tuple[str, ...] = (ENTRA_APP_SP_CREDENTIAL, AWS_USER_CREDENTIAL, PRIVILEGE_GRANT)

ENTRA_CHAIN_WINDOW_MS = 60_000
# One hour: an STS assumed-role session lasts an hour by default (DurationSeconds 3600), so one attacker
# session can create a user and then its key at any point of it; a person clicking through the console
# (create user, then Security credentials → Create access key) easily takes more than ten minutes.
AWS_CREDENTIAL_WINDOW_MS = 60 * 60_000
PRIVILEGE_WINDOW_MS = 24 * 3600_000
# An administrator grant to an identity created this long before it still joins the creation's chain:
# escalation is often a later, separate step (a dormant backdoor account promoted days after).
ESCALATION_MEMORY_MS = 7 * 86_400_000
TWIN_WINDOW_MS = 5 * 60_000

_ENTRA = (AZURE_AD, OFFICE_365)
_AWS_CREDENTIALS = ("createaccesskey", "createloginprofile")
_AWS_GRANTS = ("attachuserpolicy", "attachrolepolicy", "putuserpolicy", "putrolepolicy", "addusertogroup")
_ENTRA_GRANTS = (
    "add member to role",
    "add app role assignment to service principal",
    "consent to application",
)


@dataclass(frozen=True)
class ChainWindows:
    """How far apart a chain's events may be (ms); each one a setting."""

    entra_ms: int = ENTRA_CHAIN_WINDOW_MS
    aws_credential_ms: int = AWS_CREDENTIAL_WINDOW_MS
    privilege_ms: int = PRIVILEGE_WINDOW_MS
    escalation_ms: int = ESCALATION_MEMORY_MS
    twin_ms: int = TWIN_WINDOW_MS

    def grant_ms(self, grant: ChainEvent) -> int:
        """How long after a creation `grant` may come: the escalation memory for an administrator grant."""
        return max(self.privilege_ms, self.escalation_ms) if grant.admin_grant else self.privilege_ms

    @property
    def recent_ms(self) -> int:
        """The longest window other than the escalation memory: what each cycle re-correlates in full
        (an administrator grant finds older creations through the store, by target)."""
        return max(self.entra_ms, self.aws_credential_ms, self.privilege_ms, self.twin_ms)


DEFAULT_WINDOWS = ChainWindows()


@dataclass(frozen=True)
class ChainEvent:
    """One event as chains see it: a stored detection (creation) or a follow-on event."""

    event_key: str
    event_time: int
    platform: str
    event_name: str
    account_kind: str = "other"
    actor: str | None = None
    actor_id: str | None = None
    target_account: str | None = None
    target_keys: frozenset[str] = frozenset()
    correlation_id: str | None = None
    admin_grant: bool = False
    detection_id: int | None = None
    is_creation: bool = True

    @property
    def name(self) -> str:
        return " ".join(base_name(self.event_name).split())


@dataclass
class Chain:
    kind: str
    kinds: list[str]
    events: list[ChainEvent]
    admin: bool = False
    key: str = field(default="")

    @property
    def first_time(self) -> int:
        return self.events[0].event_time

    @property
    def last_time(self) -> int:
        return self.events[-1].event_time


def _linked(a: ChainEvent, b: ChainEvent) -> bool:
    """Same initiator or same correlation ID."""
    if a.correlation_id and b.correlation_id and a.correlation_id.lower() == b.correlation_id.lower():
        return True
    return bool(a.actor_id and b.actor_id and a.actor_id.lower() == b.actor_id.lower())


def _same_family(a: str, b: str) -> bool:
    return a == b or (a in _ENTRA and b in _ENTRA)


def _same_target(a: ChainEvent, b: ChainEvent) -> bool:
    return bool(a.target_keys & b.target_keys)


def is_privilege_grant(ev: ChainEvent) -> bool:
    name = ev.name
    if ev.platform == AWS and name in _AWS_GRANTS:
        return ev.admin_grant
    if ev.platform in _ENTRA and name in _ENTRA_GRANTS:
        return True
    return ev.platform == GCP and name == "setiampolicy" and ev.admin_grant


def _entra_links(events: Sequence[ChainEvent], window_ms: int) -> list[tuple[str, list[ChainEvent]]]:
    entra = [e for e in events if e.platform in _ENTRA and e.is_creation]
    apps = [e for e in entra if e.account_kind == "application"]
    sps = [e for e in entra if e.account_kind == "service_principal"]
    creds = [e for e in entra if e.account_kind == "credential"]
    found = []
    used: set[str] = set()
    for app in apps:
        end = app.event_time + window_ms
        sp = next(
            (
                s
                for s in sps
                if s.event_key not in used and app.event_time <= s.event_time <= end and _linked(app, s)
            ),
            None,
        )
        if sp is None:
            continue
        cred = next(
            (
                c
                for c in creds
                if c.event_key not in used
                and sp.event_time <= c.event_time <= end
                and (_linked(sp, c) or _linked(app, c))
            ),
            None,
        )
        if cred is None:
            continue
        used |= {app.event_key, sp.event_key, cred.event_key}
        found.append((ENTRA_APP_SP_CREDENTIAL, [app, sp, cred]))
    return found


def _aws_credential_links(
    creations: Sequence[ChainEvent], follow_ons: Sequence[ChainEvent], window_ms: int
) -> list[tuple[str, list[ChainEvent]]]:
    # Credentials are detections themselves (access_key / login_profile); accept them from either list.
    creds = [f for f in (*creations, *follow_ons) if f.platform == AWS and f.name in _AWS_CREDENTIALS]
    found = []
    for user in (c for c in creations if c.platform == AWS and c.name == "createuser"):
        end = user.event_time + window_ms
        members = [f for f in creds if user.event_time <= f.event_time <= end and _same_target(user, f)]
        if members:
            found.append((AWS_USER_CREDENTIAL, [user, *members]))
    return found


def _privilege_links(
    creations: Sequence[ChainEvent], follow_ons: Sequence[ChainEvent], windows: ChainWindows
) -> list[tuple[str, list[ChainEvent]]]:
    grants = [f for f in follow_ons if is_privilege_grant(f)]
    found = []
    for created in creations:
        members = [
            g
            for g in grants
            if _same_family(g.platform, created.platform)
            and created.event_time <= g.event_time <= created.event_time + windows.grant_ms(g)
            and _same_target(created, g)
        ]
        if members:
            found.append((PRIVILEGE_GRANT, [created, *members]))
    return found


def chain_key(first_creation_key: str) -> str:
    """Stable chain key: the chain's earliest creation, so a chain that grows keeps its identity."""
    return hashlib.sha256(("chain:" + first_creation_key).encode()).hexdigest()


def is_chain_candidate(platform: str | None, account_kind: str | None) -> bool:
    """A creation that can be in a chain by its kind alone (the store's ``CHAIN_CANDIDATE``): Entra
    applications, service principals and credentials, AWS access keys and login profiles."""
    if platform in _ENTRA:
        return account_kind in ("application", "service_principal", "credential")
    return platform == AWS and account_kind in ("access_key", "login_profile")


def build_chains(
    creations: Iterable[ChainEvent],
    follow_ons: Iterable[ChainEvent],
    windows: ChainWindows = DEFAULT_WINDOWS,
) -> list[Chain]:
    """All chains among the given creations (detections) and follow-on events, merged where they share
    an event, events in time order."""
    creations = sorted(creations, key=lambda e: (e.event_time, e.event_key))
    follow_ons = merge_twins(sorted(follow_ons, key=lambda e: (e.event_time, e.event_key)), windows.twin_ms)[
        0
    ]
    links = (
        _entra_links(creations, windows.entra_ms)
        + _aws_credential_links(creations, follow_ons, windows.aws_credential_ms)
        + _privilege_links(creations, follow_ons, windows)
    )

    # Union-find over event keys so overlapping links become one chain.
    parent: dict[str, str] = {}

    def find(k: str) -> str:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for _, members in links:
        for m in members[1:]:
            parent[find(m.event_key)] = find(members[0].event_key)
    groups: dict[str, tuple[set[str], dict[str, ChainEvent]]] = {}
    for kind, members in links:
        root = find(members[0].event_key)
        kinds, evs = groups.setdefault(root, (set(), {}))
        kinds.add(kind)
        for m in members:
            evs[m.event_key] = m
    chains = []
    for kinds, evs in groups.values():
        ordered = sorted(evs.values(), key=lambda e: (e.event_time, not e.is_creation, e.event_key))
        kind_list = [k for k in CHAIN_KINDS if k in kinds]
        first_creation = next(e for e in ordered if e.is_creation)
        chains.append(
            Chain(
                kind=kind_list[0],
                kinds=kind_list,
                events=ordered,
                admin=any(e.admin_grant for e in ordered),
                key=chain_key(first_creation.event_key),
            )
        )
    chains.sort(key=lambda c: (c.first_time, c.key))
    return chains


def chain_severity(base: int, chain: Chain) -> tuple[int, str]:
    """Severity (1–10) and confidence for a detection in `chain`: a chain is stronger evidence than any
    single event, an administrator grant the strongest."""
    severity = max(base, 8) + (1 if PRIVILEGE_GRANT in chain.kinds else 0) + (1 if chain.admin else 0)
    return min(severity, 10), "high"


def twin_match(primary: ChainEvent, other: ChainEvent, window_ms: int = TWIN_WINDOW_MS) -> bool:
    """Is `other` (Office 365) the same Entra change as `primary` (Azure AD)?

    Same operation (ignoring O365's trailing period and case), within `window_ms`, and the same correlation
    ID or an overlapping target. (Whether the Office 365 record carries the Entra correlation ID, as
    ``InterSystemsId``, is UNCONFIRMED, so a differing ID does not rule a twin out.)
    """
    if primary.platform != AZURE_AD or other.platform != OFFICE_365:
        return False
    if primary.name != other.name or abs(primary.event_time - other.event_time) > window_ms:
        return False
    if (
        primary.correlation_id
        and other.correlation_id
        and primary.correlation_id.lower() == other.correlation_id.lower()
    ):
        return True
    return _same_target(primary, other)


def merge_twins(
    events: Sequence[ChainEvent], window_ms: int = TWIN_WINDOW_MS
) -> tuple[list[ChainEvent], dict[str, ChainEvent]]:
    """Split events into (kept, twins): twins maps each merged Office 365 event's key to the Azure AD
    event it duplicates. Each Azure AD event absorbs at most one Office 365 twin."""
    aad = [e for e in events if e.platform == AZURE_AD]
    taken: set[str] = set()
    twins: dict[str, ChainEvent] = {}
    for ev in events:
        if ev.platform != OFFICE_365:
            continue
        match = next((a for a in aad if a.event_key not in taken and twin_match(a, ev, window_ms)), None)
        if match is not None:
            taken.add(match.event_key)
            twins[ev.event_key] = match
    kept = [e for e in events if e.event_key not in twins]
    return kept, twins
