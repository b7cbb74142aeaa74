"""Entry validation: every bad field is refused naming that field; spoofable-only entries need an admin
override and stay flagged."""

from __future__ import annotations

from typing import Any

import pytest

from app.tuning.entries import TuningError, changes_widen, validate_entry
from tests.app.tuning.tuning_helpers import DAY, HOUR, NOW, entry_body

BAD_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("platforms", {"platforms": []}),
    ("platforms", {"platforms": ["Azure"]}),
    ("platforms", {"platforms": "AWS"}),
    ("actor_id", {"actor_id": "x" * 513}),
    ("actor_id", {"actor_id": "role\x00"}),
    ("actor_pattern", {"actor_pattern": "^arn:aws:.*"}),
    ("actor_pattern_field", {"actor_pattern_field": "display_name"}),
    ("source_cidrs", {"source_cidrs": ["10.0.0.0/33"]}),
    ("source_cidrs", {"source_cidrs": ["0.0.0.0/0"]}),
    ("source_cidrs", {"source_cidrs": "10.0.0.0/8"}),
    ("ua_pattern", {"ua_pattern": "(a+)+$"}),
    ("ua_pattern", {"ua_pattern": "*" * 17 + "abc"}),
    ("ua_pattern", {"ua_pattern": "*a*"}),
    ("target_pattern", {"target_pattern": "x" * 300}),
    ("target_type", {"target_type": "superuser"}),
    ("window", {"window": "nightly"}),
    ("window.days", {"window": {"days": [0], "start": "01:00", "end": "02:00"}}),
    ("window.start", {"window": {"days": [1], "start": "25:00", "end": "02:00"}}),
    ("window.end", {"window": {"days": [1], "start": "01:00", "end": "01:00"}}),
    ("window.tz", {"window": {"days": [1], "start": "01:00", "end": "02:00", "tz": "CET"}}),
    ("justification", {"justification": None}),
    ("justification", {"justification": "   "}),
    ("justification", {"justification": "because"}),
    ("justification", {"justification": "j" * 2001}),
    ("ticket", {"ticket": "t" * 129}),
    ("expires_at", {"expires_at": None}),
    ("expires_at", {"expires_at": NOW - 1}),
    ("expires_at", {"expires_at": NOW + 366 * DAY}),
    ("expires_at", {"expires_at": "next tuesday"}),
    ("expires_at", {"expires_at": "2026-06-01T00:00:00"}),  # no UTC offset
    ("expires_at", {"break_glass": True, "ticket": "INC-1", "expires_at": NOW + 25 * HOUR}),
    ("ticket", {"break_glass": True, "expires_at": NOW + 2 * HOUR}),
    ("enabled", {"enabled": "yes"}),
    ("break_glass", {"break_glass": 1}),
    ("colour", {"colour": "red"}),
    ("actor_id", {"actor_id": None}),  # no condition at all
]


@pytest.mark.parametrize(
    ("field", "change"), BAD_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_FIELDS)]
)
def test_each_bad_field_is_named(field: str, change: dict[str, Any]) -> None:
    body = {**entry_body(), **change}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(TuningError) as caught:
        validate_entry(body, now_ms=NOW, is_admin=False)
    assert caught.value.status == 400
    assert caught.value.field == field, caught.value.message


def test_valid_entry_is_normalized() -> None:
    fields = validate_entry(
        entry_body(
            platforms=["GCP", "AWS"],
            source_cidrs=["10.1.2.3/8"],
            expires_at="2026-06-01T00:00:00Z",
            window={"days": [5, 1, 5], "start": "22:00", "end": "02:00"},
        ),
        now_ms=NOW,
        is_admin=False,
    )
    assert fields["platforms"] == ["AWS", "GCP"]
    assert fields["source_cidrs"] == ["10.0.0.0/8"]
    assert fields["window"] == {"days": [1, 5], "start": "22:00", "end": "02:00"}
    assert fields["expires_at"] == 1_780_272_000_000
    assert fields["enabled"] is True and fields["flagged_spoofable"] is False


def test_expiry_limits_at_their_boundaries() -> None:
    assert validate_entry(entry_body(expires_at=NOW + 365 * DAY), now_ms=NOW, is_admin=False)
    body = entry_body(break_glass=True, ticket="INC-7", expires_at=NOW + 24 * HOUR)
    assert validate_entry(body, now_ms=NOW, is_admin=False)["break_glass"] is True


@pytest.mark.parametrize(
    "spoofable",
    [
        {"actor_id": None, "ua_pattern": "*Terraform/*"},
        {"actor_id": None, "actor_pattern": "Sync_*", "actor_pattern_field": "actor"},
        {"actor_id": None, "source_cidrs": ["10.0.0.0/8"]},
    ],
)
def test_spoofable_only_entries_need_an_admin_override(spoofable: dict[str, Any]) -> None:
    body = entry_body(**spoofable)
    with pytest.raises(TuningError) as refused:
        validate_entry(body, now_ms=NOW, is_admin=True)
    assert (refused.value.status, refused.value.code, refused.value.field) == (
        400,
        "spoofable_only",
        "actor_id",
    )
    body["override_reason"] = "vendor appliance has no stable identity; reviewed in CHG-9"
    with pytest.raises(TuningError) as not_admin:
        validate_entry(body, now_ms=NOW, is_admin=False)
    assert (not_admin.value.status, not_admin.value.field) == (403, "override_reason")
    fields = validate_entry(body, now_ms=NOW, is_admin=True)
    assert fields["flagged_spoofable"] is True and fields["override_reason"].startswith("vendor")


def test_id_pattern_pinning_a_principal_is_anchored() -> None:
    fields = validate_entry(
        entry_body(actor_id=None, actor_pattern="arn:aws:iam::111122223333:role/pipelines/tf-*"),
        now_ms=NOW,
        is_admin=False,
    )
    assert fields["flagged_spoofable"] is False


def test_update_merges_and_widening_is_detected() -> None:
    current = {**validate_entry(entry_body(), now_ms=NOW, is_admin=False), "id": 1}
    later = NOW + 40 * DAY  # past the old expiry: unchanged expiry is not re-checked against "now"
    renamed = validate_entry({"version": 1, "name": "pipeline"}, now_ms=NOW, is_admin=False, current=current)
    assert renamed["name"] == "pipeline" and not changes_widen(current, renamed)
    disabled = validate_entry({"version": 1, "enabled": False}, now_ms=later, is_admin=False, current=current)
    assert not changes_widen(current, disabled)
    assert changes_widen(disabled, current)  # re-enabling widens
    wider = validate_entry(
        {"version": 1, "platforms": ["AWS", "GCP"]}, now_ms=NOW, is_admin=False, current=current
    )
    assert changes_widen(current, wider)
    sooner = validate_entry(
        {"version": 1, "expires_at": NOW + DAY}, now_ms=NOW, is_admin=False, current=current
    )
    assert not changes_widen(current, sooner) and changes_widen(sooner, current)


def test_source_service_is_an_aws_set_anchor() -> None:
    fields = validate_entry(
        entry_body(
            actor_id=None,
            source_service="Resource-Explorer-2.amazonaws.com",
            target_type="service_linked_role",
        ),
        now_ms=NOW,
        is_admin=False,
    )
    assert (
        fields["source_service"] == "resource-explorer-2.amazonaws.com"
        and fields["flagged_spoofable"] is False
    )
    for bad_value in ("203.0.113.10", "evil.example.com", "amazonaws.com", 7):
        with pytest.raises(TuningError) as caught:
            validate_entry(entry_body(source_service=bad_value), now_ms=NOW, is_admin=False)
        assert caught.value.field == "source_service"
