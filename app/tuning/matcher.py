"""Compiled allowlist matching: which active entry (if any) suppresses a detection.

Patterns are globs, not regular expressions: ``*`` matches any run of characters, everything else is
literal and matching is case-insensitive. A glob compiles to its literal segments and is matched by
at most one ``str.find`` per segment, leftmost first (greedy leftmost placement is exact for
``*``-only globs). That is linear in the subject for every pattern, so no entry — however hostile —
can make a refresh backtrack. Exact actor IDs are indexed in a dict so thousands of entries cost one
lookup per detection; only pattern-keyed entries are scanned.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_PATTERN_LENGTH = 256
MAX_WILDCARDS = 16

# Values logs write when they have none: keying on one would match every actor without an ID.
PLACEHOLDERS = frozenset(
    {
        "not available",
        "n/a",
        "na",
        "none",
        "null",
        "nil",
        "unknown",
        "undefined",
        "-",
        "--",
        "anonymous",
        "00000000-0000-0000-0000-000000000000",
    }
)


def is_placeholder(value: str | None) -> bool:
    return value is not None and value.strip().casefold() in PLACEHOLDERS


def identity(value: str | None) -> str | None:
    """``value`` as an identity a rule may key on: None for nothing, blanks and placeholders (``Not
    Available``, ``N/A``, ``Unknown``, the all-zero GUID, …), which would join every actor without an ID."""
    if value is None or not value.strip() or is_placeholder(value):
        return None
    return value


class Glob:
    """A case-insensitive ``*`` glob compiled to literal segments."""

    __slots__ = ("pattern", "segments")

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise ValueError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
        if pattern.count("*") > MAX_WILDCARDS:
            raise ValueError(f"pattern has more than {MAX_WILDCARDS} '*' wildcards")
        self.pattern = pattern
        # "a**b" == "a*b": collapse empty middle segments, keep the first and last (anchors).
        parts = pattern.casefold().split("*")
        if len(parts) > 2:
            parts = [parts[0], *(p for p in parts[1:-1] if p), parts[-1]]
        self.segments: tuple[str, ...] = tuple(parts)

    @property
    def max_steps(self) -> int:
        """Upper bound of substring searches one match performs (the work budget)."""
        return len(self.segments)

    def match_steps(self, text: str | None) -> tuple[bool, int]:
        """Match ``text``; return (matched, substring searches performed)."""
        if text is None:
            return False, 0
        subject = text.casefold()
        segments = self.segments
        if len(segments) == 1:
            return subject == segments[0], 1
        first, last = segments[0], segments[-1]
        steps = 2
        if not subject.startswith(first) or not subject.endswith(last):
            return False, steps
        pos, limit = len(first), len(subject) - len(last)
        if limit < pos:
            return False, steps
        for segment in segments[1:-1]:
            steps += 1
            found = subject.find(segment, pos, limit)
            if found < 0:
                return False, steps
            pos = found + len(segment)
        return True, steps

    def matches(self, text: str | None) -> bool:
        return self.match_steps(text)[0]

    def __repr__(self) -> str:
        return f"Glob({self.pattern!r})"


@dataclass(frozen=True)
class Window:
    """A recurring UTC window. ``days`` are ISO weekdays 1 (Monday) … 7 (Sunday) on which the window
    *starts*; when ``start_min > end_min`` it wraps past midnight into the next day."""

    days: frozenset[int]
    start_min: int
    end_min: int

    def contains(self, epoch_ms: int) -> bool:
        moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
        minute = moment.hour * 60 + moment.minute
        weekday = moment.isoweekday()
        if self.start_min < self.end_min:
            return weekday in self.days and self.start_min <= minute < self.end_min
        previous_day = 7 if weekday == 1 else weekday - 1
        return (weekday in self.days and minute >= self.start_min) or (
            previous_day in self.days and minute < self.end_min
        )

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Window:
        return cls(frozenset(spec["days"]), _minutes(spec["start"]), _minutes(spec["end"]))


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class CompiledEntry:
    """One active entry, ready to test against a detection. All present conditions must hold."""

    __slots__ = (
        "actor_field",
        "actor_id",
        "actor_pattern",
        "cidrs",
        "id",
        "platforms",
        "source_service",
        "target_pattern",
        "target_type",
        "ua_pattern",
        "window",
    )

    def __init__(self, entry: Mapping[str, Any]) -> None:
        self.id: int = entry["id"]
        self.platforms = frozenset(entry.get("platforms") or ())
        self.actor_id = entry["actor_id"].casefold() if entry.get("actor_id") else None
        self.actor_pattern = Glob(entry["actor_pattern"]) if entry.get("actor_pattern") else None
        self.actor_field = entry.get("actor_pattern_field") or "actor_id"
        self.source_service = entry["source_service"].casefold() if entry.get("source_service") else None
        self.cidrs = tuple(ipaddress.ip_network(c, strict=False) for c in entry.get("source_cidrs") or ())
        self.ua_pattern = Glob(entry["ua_pattern"]) if entry.get("ua_pattern") else None
        self.target_pattern = Glob(entry["target_pattern"]) if entry.get("target_pattern") else None
        self.target_type = entry.get("target_type") or None
        self.window = Window.from_dict(entry["window"]) if entry.get("window") else None

    def matches(self, detection: Mapping[str, Any]) -> bool:
        if self.platforms and detection.get("cloud_platform") not in self.platforms:
            return False
        # A placeholder actor (Office 365's "Not Available" for applications) is nobody: no actor
        # condition matches it, so one entry can never cover every actor without an ID.
        actor_id = identity(detection.get("actor_id"))
        if self.actor_id is not None and (actor_id or "").casefold() != self.actor_id:
            return False
        if self.actor_pattern is not None:
            subject = (
                actor_id if self.actor_field == "actor_id" else identity(detection.get(self.actor_field))
            )
            if not self.actor_pattern.matches(subject):
                return False
        if (
            self.source_service is not None
            and (detection.get("source_ip") or "").casefold() != self.source_service
        ):
            return False
        if self.target_type is not None and detection.get("account_kind") != self.target_type:
            return False
        if self.target_pattern is not None and not (
            self.target_pattern.matches(detection.get("target_account"))
            or self.target_pattern.matches(detection.get("target_id"))
        ):
            return False
        if self.ua_pattern is not None and not self.ua_pattern.matches(detection.get("user_agent")):
            return False
        if self.cidrs and not _ip_in(detection.get("source_ip"), self.cidrs):
            return False
        return not (
            self.window is not None and not self.window.contains(int(detection.get("event_time") or 0))
        )


def _ip_in(value: str | None, networks: tuple) -> bool:
    if not value:
        return False
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return False  # "cloudformation.amazonaws.com" as source IP: not in any CIDR
    return any(address.version == net.version and address in net for net in networks)


class Matcher:
    """Active entries compiled once; ``match`` returns the lowest matching entry id or None.

    The lowest id wins so a detection stays attributed to the oldest entry that covers it; a new entry
    therefore only takes detections nobody suppressed yet (what its preview reports).

    Indexes: exact actor IDs in a dict; actor-ID patterns by their literal prefix (one dict per distinct
    prefix length, so a detection costs one lookup per length); only entries keyed on neither (user agent,
    display-name patterns, patterns starting with ``*``) are scanned.
    """

    def __init__(self, entries: Iterable[Mapping[str, Any]], *, built_at_ms: int = 0) -> None:
        self.built_at_ms = built_at_ms
        # The earliest expiry among the entries: past it this compiled set is stale.
        self.valid_until_ms = 2**62
        self.by_actor: dict[str, list[CompiledEntry]] = {}
        self.by_prefix: dict[int, dict[str, list[CompiledEntry]]] = {}
        self.unkeyed: list[CompiledEntry] = []
        count = 0
        for entry in sorted(entries, key=lambda e: e["id"]):
            compiled = CompiledEntry(entry)
            count += 1
            if entry.get("expires_at") is not None:
                self.valid_until_ms = min(self.valid_until_ms, int(entry["expires_at"]))
            prefix = self._id_prefix(compiled)
            if compiled.actor_id is not None:
                self.by_actor.setdefault(compiled.actor_id, []).append(compiled)
            elif prefix:
                self.by_prefix.setdefault(len(prefix), {}).setdefault(prefix, []).append(compiled)
            else:
                self.unkeyed.append(compiled)
        self.size = count

    @staticmethod
    def _id_prefix(compiled: CompiledEntry) -> str:
        pattern = compiled.actor_pattern
        if pattern is None or compiled.actor_field != "actor_id" or len(pattern.segments) < 2:
            return ""
        return pattern.segments[0]

    def _candidates(self, detection: Mapping[str, Any]) -> list[list[CompiledEntry]]:
        lists = []
        actor_id = (identity(detection.get("actor_id")) or "").casefold()
        if actor_id:
            exact = self.by_actor.get(actor_id)
            if exact:
                lists.append(exact)
            for length, buckets in self.by_prefix.items():
                bucket = buckets.get(actor_id[:length])
                if bucket:
                    lists.append(bucket)
        if self.unkeyed:
            lists.append(self.unkeyed)
        return lists

    def match(self, detection: Mapping[str, Any]) -> int | None:
        best: int | None = None
        for candidates in self._candidates(detection):
            for compiled in candidates:  # each list is in id order
                if best is not None and compiled.id >= best:
                    break
                if compiled.matches(detection):
                    best = compiled.id
                    break
        return best

    def match_all(self, detection: Mapping[str, Any]) -> list[int]:
        """Every matching entry id (for explaining a suppression)."""
        return sorted(
            c.id for candidates in self._candidates(detection) for c in candidates if c.matches(detection)
        )
