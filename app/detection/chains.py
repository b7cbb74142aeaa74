"""Attack chains (issue item 5) and the Azure AD / Office 365 twin merge.

Chain kinds, from the seed's expected signals and the reference's chain list:

* ``entra_app_sp_credential`` — Entra *Add application* → *Add service principal* → *Add service principal
  credentials* by the same initiator or with the same correlation ID within 60 s (the AADInternals pattern);
* ``aws_user_credential`` — AWS *CreateUser* then *CreateAccessKey* and/or *CreateLoginProfile* for the same
  user within an hour;
* ``privilege_grant`` — any creation followed within 24 h by a privilege grant to the created identity
  (AWS admin AttachUserPolicy / AttachRolePolicy / PutUserPolicy, Entra *Add member to role*,
  *Add app role assignment to service principal*, *Consent to application*, GCP SetIamPolicy / SetIAMPolicy
  adding a privileged role, Google Workspace GRANT_ADMIN_PRIVILEGE / ASSIGN_ROLE /
  GRANT_DELEGATED_ADMIN_PRIVILEGES, and ADD_GROUP_MEMBER to an admin group); an administrator grant joins
  the chain of an identity created up to 7 days before it (escalation memory);
* ``entra_domain_federation`` — an Entra domain added or verified, then its authentication or federation
  settings set within 24 h (the AADInternals federation backdoor): severity 10;
* ``entra_guest_redemption`` — an external user invited, then the invitation redeemed (severity 6: the normal
  B2B flow; a privilege grant to the guest makes it a ``privilege_grant`` chain as well).

An IAM Identity Center account assignment (itself a detection) is the privilege grant of the Identity Center
user or group it names; context-only events (MFA devices, IAM groups: `app.kinds`) join a chain that
already holds a creation of their target but never start one.

Every window is a setting (`ChainWindows`, built from `app.detection.config`); the constants below are
their defaults.

Chains that share an event are one chain (a CreateUser with both a key and an admin policy is one
attack); its `kind` is the most serious kind present and `kinds` lists all of them.

Twins (item 5d) are not chains: an Entra creation seen in both Azure AD audit and the Office 365 audit is
merged into one detection (`merge_twins`), with the Office 365 copy listed in `also_seen_in`.

Every window compares the events' own times (Ariel ``devicetime``: `ChainEvent.event_time`), never the
times QRadar received them: feeds arrive late and out of order (Office 365 minutes to hours after Entra, a
CloudTrail key before the user it belongs to). An event without its own time stands in with its receipt
time; a twin pair where either side does then needs the wider `twin_window_ms`, which covers Office 365's
delivery delay.

Everything here is pure: events in, chains out, deterministic (re-running adds nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app.aql.detection import AWS, AZURE_AD, GCP, GOOGLE_WORKSPACE, OFFICE_365
from app.detection.extract import operation_key
from app.kinds import CONTEXT_ONLY_KINDS

ENTRA_APP_SP_CREDENTIAL = "entra_app_sp_credential"
AWS_USER_CREDENTIAL = "aws_user_credential"
PRIVILEGE_GRANT = "privilege_grant"
ENTRA_DOMAIN_FEDERATION = "entra_domain_federation"
ENTRA_GUEST_REDEMPTION = "entra_guest_redemption"
# Decides a merged chain's `kind`: the creation pattern first (what the chain *is*), the privilege grant
# after it (it raises severity whichever kind is shown; `kinds` lists all).
CHAIN_KINDS: tuple[str, ...] = (
    ENTRA_APP_SP_CREDENTIAL,
    AWS_USER_CREDENTIAL,
    ENTRA_DOMAIN_FEDERATION,
    PRIVILEGE_GRANT,
    ENTRA_GUEST_REDEMPTION,
)

ENTRA_CHAIN_WINDOW_MS = 60_000
# One hour: an STS assumed-role session lasts an hour by default (DurationSeconds 3600), so one attacker
# session can create a user and then its key at any point of it; a person clicking through the console
# (create user, then Security credentials → Create access key) easily takes more than ten minutes.
AWS_CREDENTIAL_WINDOW_MS = 60 * 60_000
PRIVILEGE_WINDOW_MS = 24 * 3600_000
# An administrator grant to an identity created this long before it still joins the creation's chain:
# escalation is often a later, separate step (a dormant backdoor account promoted days after).
ESCALATION_MEMORY_MS = 7 * 86_400_000
# Domain added/verified, then its authentication set to federated (the AADInternals backdoor); an invitation
# and its redemption. Both as long as a privilege grant may follow a creation.
DOMAIN_WINDOW_MS = PRIVILEGE_WINDOW_MS
GUEST_REDEMPTION_WINDOW_MS = PRIVILEGE_WINDOW_MS
# Twins whose own times are both known are the same change logged twice: their times differ by clock skew.
TWIN_CLOCK_SKEW_MS = 5 * 60_000
# When either twin has only its receipt time, the gap is Office 365's delivery delay: Microsoft documents
# audit records as typically available 60-90 minutes after the event and sometimes much later, so the
# default (setting `twin_window_minutes`) covers 6 hours.
TWIN_WINDOW_MS = 6 * 3600_000

_ENTRA = (AZURE_AD, OFFICE_365)
# An Identity Center account assignment is a detection of its own and the privilege grant of the user or
# group it names (principalId = the Identity Center user/group ID).
IDENTITY_CENTER_GRANT_KIND = "account_assignment"
# Context-only events (kinds.CONTEXT_ONLY_KINDS: MFA devices, IAM groups) join a chain that already holds
# a creation of their target within this long after the chain's last event; they never start one.
CONTEXT_WINDOW_MS = AWS_CREDENTIAL_WINDOW_MS
_AWS_CREDENTIALS = ("createaccesskey", "createloginprofile")
_AWS_GRANTS = ("attachuserpolicy", "attachrolepolicy", "putuserpolicy", "putrolepolicy", "addusertogroup")
_ENTRA_GRANTS = (
    "add member to role",
    "add app role assignment to service principal",
    "consent to application",
    # Owners of an application can add its credentials; PIM eligible and active assignments
    # (`DEFAULT_FOLLOW_ON_EVENT_NAMES`; names beyond "Add eligible member to role" are UNCONFIRMED).
    "add owner to application",
    "add owner to service principal",
    "add eligible member to role",
    "add scoped member to role",
    "add member to role in pim completed (permanent)",
    "add member to role in pim completed (timebound)",
    "add eligible member to role in pim completed (permanent)",
    "add eligible member to role in pim completed (timebound)",
    "add member to role completed (pim activation)",
)
_ENTRA_REDEMPTION = "redeem external user invite"
_WORKSPACE_GRANTS = (
    "grant_admin_privilege",
    "assign_role",
    "grant_delegated_admin_privileges",
    "add_group_member",
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
    # When QRadar received the event (starttime); set when `event_time` is the event's own time.
    received_time: int | None = None

    @property
    def receipt_time(self) -> int:
        return self.event_time if self.received_time is None else self.received_time

    @property
    def name(self) -> str:
        return operation_key(self.event_name)


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

    @property
    def first_received(self) -> int:
        """When QRadar received the chain's earliest-received event (the store windows chains by it)."""
        return min(e.receipt_time for e in self.events)

    @property
    def last_received(self) -> int:
        return max(e.receipt_time for e in self.events)


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
    if ev.platform == AWS and ev.account_kind == IDENTITY_CENTER_GRANT_KIND:
        return True
    if ev.platform == AWS and name in _AWS_GRANTS:
        return ev.admin_grant
    if ev.platform in _ENTRA and name in _ENTRA_GRANTS:
        return True
    if ev.platform == GOOGLE_WORKSPACE and name in _WORKSPACE_GRANTS:
        return ev.admin_grant
    return ev.platform == GCP and name == "setiampolicy" and ev.admin_grant


def _entra_links(events: Sequence[ChainEvent], window_ms: int) -> list[tuple[str, list[ChainEvent]]]:
    entra = [e for e in events if e.platform in _ENTRA and e.is_creation]
    apps = [e for e in entra if e.account_kind == "application"]
    sps = [e for e in entra if e.account_kind == "service_principal"]
    creds = [e for e in entra if e.account_kind in ("credential", "federated_credential")]
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
    # An owner added to an application is a detection (kind app_owner) and a grant to the new owner.
    owners = [c for c in creations if c.platform in _ENTRA and c.account_kind == "app_owner"]
    grants = [f for f in follow_ons if is_privilege_grant(f)] + owners
    grants += [c for c in creations if c.account_kind == IDENTITY_CENTER_GRANT_KIND and is_privilege_grant(c)]
    found = []
    for created in creations:
        if created.account_kind == IDENTITY_CENTER_GRANT_KIND:
            continue
        members = [
            g
            for g in grants
            if _same_family(g.platform, created.platform)
            and g.event_key != created.event_key  # an owner grant is also a detection of its own
            and created.event_time <= g.event_time <= created.event_time + windows.grant_ms(g)
            and _same_target(created, g)
        ]
        if members:
            found.append((PRIVILEGE_GRANT, [created, *members]))
    return found


def _entra_domain_links(creations: Sequence[ChainEvent]) -> list[tuple[str, list[ChainEvent]]]:
    """A domain added or verified, then federated (its authentication or federation settings set) within
    `DOMAIN_WINDOW_MS`, on the same domain."""
    entra = [e for e in creations if e.platform in _ENTRA]
    found = []
    for fed in (e for e in entra if e.account_kind == "domain_federation"):
        members = [
            d
            for d in entra
            if d.account_kind == "domain"
            and fed.event_time - DOMAIN_WINDOW_MS <= d.event_time <= fed.event_time
            and _same_target(d, fed)
        ]
        if members:
            found.append((ENTRA_DOMAIN_FEDERATION, [*members, fed]))
    return found


def _guest_links(
    creations: Sequence[ChainEvent], follow_ons: Sequence[ChainEvent]
) -> list[tuple[str, list[ChainEvent]]]:
    """An external user invited, then the invitation redeemed by that user."""
    redemptions = [f for f in follow_ons if f.platform in _ENTRA and f.name == _ENTRA_REDEMPTION]
    found = []
    for invite in (c for c in creations if c.platform in _ENTRA and c.account_kind == "guest_user"):
        end = invite.event_time + GUEST_REDEMPTION_WINDOW_MS
        members = [
            r for r in redemptions if invite.event_time <= r.event_time <= end and _same_target(invite, r)
        ]
        if members:
            found.append((ENTRA_GUEST_REDEMPTION, [invite, *members]))
    return found


def chain_key(first_creation_key: str) -> str:
    """Stable chain key: the chain's earliest creation, so a chain that grows keeps its identity."""
    return hashlib.sha256(("chain:" + first_creation_key).encode()).hexdigest()


# Entra creations that can be in a chain by kind alone (`app/store/detections.py` CHAIN_CANDIDATE, 0016).
ENTRA_CHAIN_CANDIDATE_KINDS = (
    "application",
    "service_principal",
    "credential",
    "federated_credential",
    "domain",
    "domain_federation",
    "app_owner",
)


def is_chain_candidate(platform: str | None, account_kind: str | None) -> bool:
    """A creation that can be in a chain by its kind alone (the store's ``CHAIN_CANDIDATE``): Entra
    applications, service principals and credentials, AWS access keys and login profiles."""
    if platform in _ENTRA:
        return account_kind in ENTRA_CHAIN_CANDIDATE_KINDS
    return platform == AWS and account_kind in ("access_key", "login_profile", IDENTITY_CENTER_GRANT_KIND)


def build_chains(
    creations: Iterable[ChainEvent],
    follow_ons: Iterable[ChainEvent],
    windows: ChainWindows = DEFAULT_WINDOWS,
) -> list[Chain]:
    """All chains among the given creations (detections) and follow-on events, merged where they share
    an event, events in time order (their own time)."""
    creations = sorted(creations, key=lambda e: (e.event_time, e.event_key))
    follow_ons = merge_twins(sorted(follow_ons, key=lambda e: (e.event_time, e.event_key)), windows.twin_ms)[
        0
    ]
    links = (
        _entra_links(creations, windows.entra_ms)
        + _aws_credential_links(creations, follow_ons, windows.aws_credential_ms)
        + _privilege_links(creations, follow_ons, windows)
        + _entra_domain_links(creations)
        + _guest_links(creations, follow_ons)
    )

    detected = {c.event_key: c for c in creations}
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
            # An event both detected and read as a follow-on (owner added) is kept as the detection.
            evs[m.event_key] = detected.get(m.event_key, m)
    _attach_context(groups, follow_ons)
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


def _attach_context(
    groups: dict[str, tuple[set[str], dict[str, ChainEvent]]], follow_ons: Sequence[ChainEvent]
) -> None:
    """Add each context-only event to the earliest chain holding a creation of its target (same platform
    family) that it follows within CONTEXT_WINDOW_MS of the chain's last event."""
    context = [f for f in follow_ons if f.account_kind in CONTEXT_ONLY_KINDS and f.target_keys]
    if not context or not groups:
        return
    ordered = sorted(groups.values(), key=lambda g: min((e.event_time, e.event_key) for e in g[1].values()))
    for ev in context:
        for _, evs in ordered:
            creations = [e for e in evs.values() if e.is_creation]
            first = min(e.event_time for e in evs.values())
            last = max(e.event_time for e in evs.values())
            if first <= ev.event_time <= last + CONTEXT_WINDOW_MS and any(
                _same_family(c.platform, ev.platform) and _same_target(c, ev) for c in creations
            ):
                evs[ev.event_key] = ev
                break


def chain_severity(base: int, chain: Chain) -> tuple[int, str]:
    """Severity (1–10) and confidence for a detection in `chain`: a chain is stronger evidence than any
    single event, an administrator grant the strongest."""
    severity = max(base, 8) + (1 if PRIVILEGE_GRANT in chain.kinds else 0) + (1 if chain.admin else 0)
    if ENTRA_DOMAIN_FEDERATION in chain.kinds:
        severity = 10  # a domain added and federated by one actor: any user of it can be impersonated
    elif chain.kinds == [ENTRA_GUEST_REDEMPTION]:
        return 6, "medium"  # an invitation accepted is the normal B2B flow; a grant after it raises it
    return min(severity, 10), "high"


def twin_match(primary: ChainEvent, other: ChainEvent, window_ms: int = TWIN_WINDOW_MS) -> bool:
    """Is `other` (Office 365) the same Entra change as `primary` (Azure AD)?

    Same operation (ignoring O365's trailing period and case), close in time, and the same correlation ID
    or an overlapping target. Close: within clock skew (`TWIN_CLOCK_SKEW_MS`, at most `window_ms`) when
    both events carry their own time, within `window_ms` (Office 365's delivery delay) when either has
    only its receipt time. (Whether the Office 365 record carries the Entra correlation ID, as
    ``InterSystemsId``, is UNCONFIRMED, so a differing ID does not rule a twin out.)
    """
    if primary.platform != AZURE_AD or other.platform != OFFICE_365:
        return False
    if primary.received_time is not None and other.received_time is not None:
        window_ms = min(window_ms, TWIN_CLOCK_SKEW_MS)
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
