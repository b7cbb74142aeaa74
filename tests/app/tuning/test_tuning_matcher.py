"""Matcher semantics: globs, hostile patterns under a work budget, CIDRs, windows, expiry-free ordering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.tuning.entries import TuningError, validate_pattern
from app.tuning.matcher import MAX_PATTERN_LENGTH, CompiledEntry, Glob, Matcher, Window


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*Terraform/*", "APN/1.0 HashiCorp/1.0 Terraform/1.5.6 (+https://www.terraform.io)", True),
        ("*terraform/*", "APN/1.0 HashiCorp/1.0 TERRAFORM/1.5.6", True),  # case-insensitive
        ("*Terraform/*", "aws-cli/2.18.17 md/command#iam.create-user", False),
        ("arn:aws:iam::111122223333:role/tf-*", "arn:aws:iam::111122223333:role/tf-prod", True),
        ("arn:aws:iam::111122223333:role/tf-*", "arn:aws:iam::999999999999:role/tf-prod", False),
        ("Sync_*@contoso.onmicrosoft.com", "Sync_DC01_0123456789ab@contoso.onmicrosoft.com", True),
        ("Sync_*@contoso.onmicrosoft.com", "Sync_DC01@contoso.onmicrosoft.com.evil.com", False),
        ("a*b*a", "aba", True),
        ("a*b*a", "ab", False),  # last segment must not overlap the first
        ("exact", "exact", True),
        ("exact", "exactly", False),
        ("(a+)+$", "(a+)+$", True),  # regex metacharacters are literal in a glob
        ("(a+)+$", "aaaa", False),
    ],
)
def test_glob_semantics(pattern: str, text: str, expected: bool) -> None:
    assert Glob(pattern).matches(text) is expected


def test_glob_never_matches_missing_values() -> None:
    assert Glob("*x*").matches(None) is False


def test_catastrophic_pattern_is_refused_by_validation() -> None:
    with pytest.raises(TuningError) as caught:
        validate_pattern("ua_pattern", "(a+)+$")
    assert caught.value.field == "ua_pattern" and caught.value.code == "pattern_not_glob"
    for pattern in ("^admin", ".*terraform.*", r"\d+", "x" * (MAX_PATTERN_LENGTH + 1), "*" * 20, "**"):
        with pytest.raises(TuningError):
            validate_pattern("ua_pattern", pattern)


def test_hostile_pattern_matching_is_bounded_by_its_segments() -> None:
    """Work budget: one substring search per literal segment, whatever the subject — so a pattern that
    would backtrack catastrophically as a regex cannot stall the refresher."""
    subject = "a" * 50_000 + "!"  # the classic (a+)+$ killer input, 50 KB
    hostile = Glob("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b")  # 16 wildcards, no match possible
    matched, steps = hostile.match_steps(subject)
    assert matched is False
    assert steps <= hostile.max_steps == len(hostile.segments) == 17
    regexish = Glob("(a+)+$")  # compiled as one literal segment
    assert regexish.segments == ("(a+)+$",)
    assert regexish.match_steps(subject) == (False, 1)
    many = Glob("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*!")
    assert many.match_steps(subject) == (True, len(many.segments))


def test_window_same_day_and_midnight_wrap() -> None:
    weekdays = Window.from_dict({"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "17:00"})
    assert weekdays.contains(ms("2026-05-25T09:00:00"))  # Monday, start is inclusive
    assert not weekdays.contains(ms("2026-05-25T17:00:00"))  # end is exclusive
    assert not weekdays.contains(ms("2026-05-30T10:00:00"))  # Saturday

    saturday_night = Window.from_dict({"days": [6], "start": "22:00", "end": "02:00"})
    assert saturday_night.contains(ms("2026-05-30T23:30:00"))  # Saturday 23:30
    assert saturday_night.contains(ms("2026-05-31T01:59:00"))  # Sunday 01:59 belongs to Saturday's window
    assert not saturday_night.contains(ms("2026-05-31T02:00:00"))
    assert not saturday_night.contains(ms("2026-05-31T23:30:00"))  # Sunday night: not a window day
    assert not saturday_night.contains(ms("2026-05-30T01:00:00"))  # Saturday early: Friday had no window
    sunday_night = Window.from_dict({"days": [7], "start": "23:00", "end": "01:00"})
    assert sunday_night.contains(ms("2026-06-01T00:30:00"))  # Monday 00:30, wrapping from Sunday (7 → 1)


def _entry(entry_id: int, **fields: object) -> dict:
    return {"id": entry_id, "platforms": ["AWS"], "expires_at": 2**60, **fields}


def test_cidr_condition() -> None:
    entry = CompiledEntry(_entry(1, actor_id="role-a", source_cidrs=["10.20.0.0/16", "2001:db8::/32"]))
    base = {"cloud_platform": "AWS", "actor_id": "role-a", "event_time": 0}
    assert entry.matches({**base, "source_ip": "10.20.5.6"})
    assert entry.matches({**base, "source_ip": "2001:db8::7"})
    assert not entry.matches({**base, "source_ip": "10.21.0.1"})
    assert not entry.matches({**base, "source_ip": "cloudformation.amazonaws.com"})  # not an address
    assert not entry.matches({**base, "source_ip": None})


def test_all_conditions_must_hold() -> None:
    entry = CompiledEntry(
        _entry(1, actor_id="ROLE-A", ua_pattern="*Terraform/*", target_type="user", target_pattern="svc-*")
    )
    hit = {
        "cloud_platform": "AWS",
        "actor_id": "role-a",
        "user_agent": "x Terraform/1.5",
        "account_kind": "user",
        "target_account": "svc-build",
        "event_time": 0,
    }
    assert entry.matches(hit)
    assert not entry.matches({**hit, "cloud_platform": "GCP"})
    assert not entry.matches({**hit, "user_agent": "aws-cli/2"})
    assert not entry.matches({**hit, "account_kind": "access_key"})
    assert not entry.matches({**hit, "target_account": "admin-backdoor"})
    assert not entry.matches({**hit, "actor_id": "role-b"})


def test_matcher_picks_lowest_id_and_indexes_exact_ids() -> None:
    entries = [_entry(i, actor_id=f"role-{i}") for i in range(10, 10_010)]
    entries += [_entry(5, actor_pattern="role-99*"), _entry(20_000, ua_pattern="*pulumi*")]
    matcher = Matcher(entries)
    assert matcher.size == 10_002
    assert len(matcher.by_actor) == 10_000
    assert [c.id for c in matcher.unkeyed] == [20_000]  # the UA-only entry is scanned
    assert list(matcher.by_prefix) == [len("role-99")]  # the ID pattern is indexed by its literal prefix
    detection = {"cloud_platform": "AWS", "actor_id": "role-995", "event_time": 0}
    assert matcher.match(detection) == 5  # pattern entry 5 is older than exact entry 995
    assert matcher.match_all(detection) == [5, 995]
    assert matcher.match({**detection, "actor_id": "role-12"}) == 12
    assert matcher.match({**detection, "actor_id": "nobody", "user_agent": "pulumi/3"}) == 20_000
    assert matcher.match({**detection, "actor_id": "nobody"}) is None


def test_source_service_matches_the_invoking_service_only() -> None:
    entry = CompiledEntry(
        _entry(1, source_service="autoscaling.amazonaws.com", target_type="service_linked_role")
    )
    slr = {"cloud_platform": "AWS", "account_kind": "service_linked_role", "event_time": 0}
    assert entry.matches({**slr, "source_ip": "AutoScaling.amazonaws.com"})
    assert not entry.matches({**slr, "source_ip": "203.0.113.5"})  # a person calling the API themselves
    assert not entry.matches({**slr, "source_ip": "autoscaling.amazonaws.com", "account_kind": "iam_role"})
