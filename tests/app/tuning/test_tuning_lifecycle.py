"""Entry lifecycle against a real migrated store: preview equals what saving suppresses, two-person approval,
stale versions, expiry at its boundary, suppression that never deletes, the audit trail, export/import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app import settings
from app.store import db
from app.store import tuning as store
from app.store.db import transaction
from app.tuning import approval, portable, service, suppress
from app.tuning.entries import TuningError, validate_entry
from app.tuning.preview import preview
from tests.app.tuning.tuning_helpers import (
    ADMIN,
    ANALYST,
    DAY,
    HOUR,
    NOW,
    TUNER1,
    TUNER2,
    add_detection,
    entry_body,
    suppressed_by,
)

DEPLOYER = "arn:aws:iam::111122223333:role/deployer"


def create(conn: Any, user: Any = TUNER1, now: int = NOW, **overrides: Any) -> dict[str, Any]:
    with transaction(conn):
        entry, _ = service.create_entry(conn, entry_body(**overrides), user=user, now_ms=now)
    return entry


def decide(
    conn: Any, entry: dict[str, Any], user: Any = TUNER2, approve: bool = True, now: int = NOW, **extra: Any
) -> dict[str, Any]:
    with transaction(conn):
        return approval.decide(
            conn, entry["id"], {"version": entry["version"], **extra}, user=user, now_ms=now, approve=approve
        )


def snapshot(conn: Any) -> tuple:
    entries = conn.execute("SELECT * FROM tuning_entries ORDER BY id").fetchall()
    detections = conn.execute("SELECT id, suppressed_by FROM detections ORDER BY id").fetchall()
    audit_rows = conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    return [tuple(r) for r in entries], [tuple(r) for r in detections], audit_rows


def test_preview_counts_equal_what_saving_then_suppresses(conn: Any) -> None:
    matching = [add_detection(conn, event_time=NOW - DAY, target_account="legacy-svc")]
    matching += [add_detection(conn, event_time=NOW - d * DAY) for d in (2, 5, 29)]
    old = add_detection(conn, event_time=NOW - 45 * DAY)  # outside the 30-day preview
    other_actor = add_detection(conn, actor_id="arn:aws:iam::111122223333:role/other")
    wrong_ua = add_detection(conn, user_agent="S3 Browser/10.9.9")
    # An older active entry already covers one of the matching detections (narrowed by target).
    older = create(
        conn, actor_id=DEPLOYER, target_pattern="legacy-svc", justification="older entry for one account"
    )
    decide(conn, older)
    assert suppressed_by(conn, matching[0]) == older["id"]

    body = entry_body(ua_pattern="aws-cli/*")
    fields = validate_entry(body, now_ms=NOW, is_admin=False)
    before_saving = preview(conn, fields, NOW)
    assert before_saving["would_suppress"] == 3  # matching[1:]; matching[0] stays with the older entry
    assert before_saving["already_suppressed_by_other_entries"] == 1
    assert before_saving["newly_suppressed"] == 3
    assert {e["id"] for e in before_saving["examples"]} == set(matching[1:])

    entry = create(conn, ua_pattern="aws-cli/*")
    assert store.count_suppressed_by(conn, entry["id"]) == 0  # pending: nothing suppressed yet
    decide(conn, entry)
    since = NOW - 30 * DAY
    assert store.count_suppressed_by(conn, entry["id"], since) == before_saving["would_suppress"]
    assert suppressed_by(conn, old) == entry["id"]  # suppression covers all history, preview shows 30 days
    assert suppressed_by(conn, other_actor) is None and suppressed_by(conn, wrong_ua) is None


def test_partial_chain_needs_explicit_confirmation(conn: Any) -> None:
    creation = add_detection(conn, chain_id=7)
    add_detection(
        conn, chain_id=7, actor_id="arn:aws:iam::111122223333:user/intruder", event_name="CreateUser"
    )
    before = snapshot(conn)
    with pytest.raises(TuningError) as caught:
        create(conn)
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        400,
        "confirmation_required",
        "confirm_partial_chain",
    )
    assert caught.value.extra["preview"]["partial_chains"] == [
        {"chain_id": 7, "members": 2, "left_visible": 1}
    ]
    assert caught.value.extra["preview"]["chains_touched"] == 1
    assert snapshot(conn) == before
    entry = create(conn, confirm_partial_chain=True)
    assert entry["partial_chain_ok"] is True
    decide(conn, entry)
    assert suppressed_by(conn, creation) == entry["id"]


def test_two_person_approval(conn: Any) -> None:
    detection = add_detection(conn)
    entry = create(conn, user=TUNER1)
    assert entry["status"] == "pending" and suppressed_by(conn, detection) is None
    before = snapshot(conn)
    with pytest.raises(TuningError) as same_user:
        decide(conn, entry, user=TUNER1)
    assert (same_user.value.status, same_user.value.code) == (403, "same_user")
    with pytest.raises(TuningError) as analyst:
        decide(conn, entry, user=ANALYST)
    assert analyst.value.status == 403
    assert snapshot(conn) == before
    approved = decide(conn, entry, user=TUNER2, note="checked the pipeline role")
    assert approved["status"] == "active" and approved["approved_by"] == "tuner2"
    assert suppressed_by(conn, detection) == entry["id"]
    assert [a["decision"] for a in store.approvals(conn, entry["id"])] == ["approved"]
    # A widening edit goes back to pending (and stops suppressing) until someone else approves it.
    with transaction(conn):
        widened = service.update_entry(
            conn,
            entry["id"],
            {"version": approved["version"], "platforms": ["AWS", "GCP"]},
            user=TUNER2,
            now_ms=NOW,
        )
    assert widened["status"] == "pending" and suppressed_by(conn, detection) is None
    with pytest.raises(TuningError):
        decide(conn, widened, user=TUNER2)
    rejected = decide(conn, widened, user=TUNER1, approve=False, note="GCP is out of scope")
    assert rejected["status"] == "rejected" and suppressed_by(conn, detection) is None


def test_single_person_mode_is_an_audited_setting(conn: Any) -> None:
    current = service.get_settings(conn)
    with pytest.raises(TuningError) as not_admin:
        service.update_settings(
            conn, {"version": current["version"], "single_person_approval": True}, user=TUNER1
        )
    assert not_admin.value.status == 403
    service.update_settings(conn, {"version": current["version"], "single_person_approval": True}, user=ADMIN)
    with pytest.raises(TuningError) as stale:
        service.update_settings(
            conn, {"version": current["version"], "single_person_approval": False}, user=ADMIN
        )
    assert stale.value.status == 409
    assert settings.get("single_person_approval", conn=conn) is True
    detection = add_detection(conn)
    entry = create(conn, user=TUNER1)
    assert entry["status"] == "active" and suppressed_by(conn, detection) == entry["id"]
    items, _ = store.list_audit(conn, limit=None)
    actions = [i["action"] for i in items]
    assert "settings.update" in actions and actions.count("tuning.entry.approve") == 1
    change = next(i for i in items if i["action"] == "settings.update")
    assert change["actor"] == "admin"
    assert change["before"] == {"single_person_approval": False}
    assert change["after"] == {"single_person_approval": True}


def test_stale_version_gives_409_and_loses_nothing(conn: Any) -> None:
    entry = create(conn)
    with transaction(conn):
        first = service.update_entry(
            conn, entry["id"], {"version": entry["version"], "ticket": "CHG-1"}, user=TUNER1, now_ms=NOW
        )
    before = snapshot(conn)
    with pytest.raises(TuningError) as caught, transaction(conn):
        service.update_entry(
            conn, entry["id"], {"version": entry["version"], "ticket": "CHG-2"}, user=TUNER2, now_ms=NOW
        )
    assert (caught.value.status, caught.value.code) == (409, "stale_version")
    assert caught.value.extra["current"]["ticket"] == "CHG-1"
    assert caught.value.extra["current"]["version"] == first["version"]
    assert snapshot(conn) == before


def test_analyst_cannot_change_anything(conn: Any) -> None:
    entry = create(conn)
    before = snapshot(conn)
    attempts = [
        lambda: service.create_entry(conn, entry_body(), user=ANALYST, now_ms=NOW),
        lambda: service.update_entry(
            conn, entry["id"], {"version": 1, "ticket": "x"}, user=ANALYST, now_ms=NOW
        ),
        lambda: service.delete_entry(conn, entry["id"], 1, user=ANALYST, now_ms=NOW),
        lambda: service.enable_preset(conn, "iac", {"identities": ["x"]}, user=ANALYST, now_ms=NOW),
    ]
    for attempt in attempts:
        with pytest.raises(TuningError) as caught, transaction(conn):
            attempt()
        assert caught.value.status == 403
    assert snapshot(conn) == before


def test_expiry_takes_effect_at_its_boundary_and_detections_come_back(conn: Any) -> None:
    detection = add_detection(conn)
    expires = NOW + 2 * HOUR
    entry = decide(conn, create(conn, expires_at=expires))
    assert suppress.apply(conn, expires - 1) == 0
    assert suppressed_by(conn, detection) == entry["id"]
    newcomer = add_detection(conn, actor_id="arn:aws:iam::111122223333:role/other")
    # The refresher recomputes only the rows it inserted; the expiry still brings the old ones back.
    assert suppress.apply(conn, expires, detection_ids=[newcomer]) == 1  # at the expiry instant
    assert suppressed_by(conn, detection) is None
    assert store.get_entry(conn, entry["id"])["status"] == "expired"
    expiries, _ = store.list_audit(conn, action="tuning.entry.expire", limit=None)
    assert [(e["actor"], e["object_id"]) for e in expiries] == [("system", str(entry["id"]))]
    assert suppress.apply(conn, expires + HOUR) == 0  # audited once
    assert conn.execute("SELECT COUNT(*) FROM detections WHERE id = ?", (detection,)).fetchone()[0] == 1


def test_disable_and_delete_bring_detections_back_and_keep_history(conn: Any) -> None:
    detection = add_detection(conn)
    entry = decide(conn, create(conn))
    assert suppressed_by(conn, detection) == entry["id"]
    with transaction(conn):
        disabled = service.update_entry(
            conn, entry["id"], {"version": entry["version"], "enabled": False}, user=TUNER1, now_ms=NOW
        )
    assert disabled["status"] == "active" and suppressed_by(conn, detection) is None  # no approval to narrow
    with transaction(conn):
        enabled = service.update_entry(
            conn, entry["id"], {"version": disabled["version"], "enabled": True}, user=TUNER1, now_ms=NOW
        )
    assert (
        enabled["status"] == "pending" and suppressed_by(conn, detection) is None
    )  # widening: approve again
    enabled = decide(conn, enabled)
    assert suppressed_by(conn, detection) == entry["id"]
    with transaction(conn):
        deleted = service.delete_entry(conn, entry["id"], enabled["version"], user=TUNER2, now_ms=NOW)
    assert deleted["status"] == "deleted" and suppressed_by(conn, detection) is None
    assert store.get_entry(conn, entry["id"]) is not None  # history kept
    actions = [
        i["action"]
        for i in store.list_audit(conn, object_id=str(entry["id"]), limit=None, descending=False)[0]
    ]
    assert actions == [
        "tuning.entry.create",
        "tuning.entry.approve",
        "tuning.entry.disable",
        "tuning.entry.update",
        "tuning.entry.approve",
        "tuning.entry.delete",
    ]


def test_audit_rows_carry_who_when_before_and_after(conn: Any) -> None:
    entry = create(conn, now=NOW + 5)
    approved = decide(conn, entry, now=NOW + 6)
    with transaction(conn):
        service.update_entry(
            conn,
            entry["id"],
            {"version": approved["version"], "ticket": "CHG-77"},
            user=TUNER2,
            now_ms=NOW + 7,
        )
    items, total = store.list_audit(conn, object_id=str(entry["id"]), limit=None, descending=False)
    assert total == 3
    create_row, approve_row, update_row = items
    assert (create_row["actor"], create_row["at_ms"], create_row["before"]) == ("tuner1", NOW + 5, None)
    assert create_row["after"]["status"] == "pending"
    assert (approve_row["actor"], approve_row["before"]["status"], approve_row["after"]["status"]) == (
        "tuner2",
        "pending",
        "active",
    )
    assert update_row["before"]["ticket"] is None and update_row["after"]["ticket"] == "CHG-77"
    assert update_row["after"]["status"] == "active"  # a text-only edit needs no fresh approval
    assert store.list_audit(conn, actor="tuner2", limit=None)[1] == 2


def test_export_import_round_trip(conn: Any, tmp_path: Path) -> None:
    decide(conn, create(conn, ticket="CHG-1", window={"days": [6], "start": "22:00", "end": "02:00"}))
    create(conn, actor_id="arn:aws:iam::111122223333:role/ansible", source_cidrs=["10.9.0.0/16"])
    rejected = create(conn, actor_id="arn:aws:iam::111122223333:role/nope")
    decide(conn, rejected, approve=False)
    document = json.loads(json.dumps(portable.export_document(conn, NOW)))

    other = db.connect(tmp_path / "other.db")
    try:
        summary = portable.import_document(other, document, user=TUNER1, now_ms=NOW)
        assert len(summary["created"]) == 2
        assert [s["reason"] for s in summary["skipped"]] == ["status rejected"]
        again = portable.import_document(other, document, user=TUNER1, now_ms=NOW)
        assert again["created"] == [] and {s["reason"] for s in again["skipped"]} == {
            "already present",
            "status rejected",
        }
        imported = portable.export_document(other, NOW)
        content = {k for k in portable.PORTABLE_FIELDS}

        def live(doc: dict) -> list[dict]:
            return sorted(
                ({k: e[k] for k in content} for e in doc["entries"] if e["status"] != "rejected"),
                key=lambda e: e["actor_id"],
            )

        assert live(imported) == live(document)
        assert {e["status"] for e in imported["entries"]} == {"pending"}  # re-approval needed after import
        assert store.list_audit(other, action="tuning.import", limit=None)[1] == 2
    finally:
        other.close()


def test_import_refuses_a_bad_document_naming_the_field(conn: Any) -> None:
    document = portable.export_document(conn, NOW)
    document["entries"] = [{**entry_body(), "status": "active", "expires_at": NOW + 400 * DAY}]
    with pytest.raises(TuningError) as caught:
        portable.import_document(conn, document, user=TUNER1, now_ms=NOW)
    assert caught.value.field == "entries[0].expires_at"
    with pytest.raises(TuningError) as wrong_format:
        portable.import_document(conn, {"format": "other"}, user=TUNER1, now_ms=NOW)
    assert wrong_format.value.field == "format"
    assert store.all_entries(conn) == []


def test_a_hostile_pattern_cannot_stall_suppression(conn: Any) -> None:
    """A worst-case glob against 50 KB user agents: apply finishes with the right answer, and each match is
    bounded by the glob's segment count (the work budget), not by backtracking."""
    hostile_ua = "a" * 50_000 + "!"
    ids = [add_detection(conn, user_agent=hostile_ua) for _ in range(20)]
    pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b*!"
    entry = decide(conn, create(conn, ua_pattern=pattern))
    assert all(suppressed_by(conn, i) is None for i in ids)  # 'b' never occurs: no match
    matcher = suppress.active_matcher(conn, NOW)
    compiled = matcher.by_actor[DEPLOYER.casefold()][0]
    matched, steps = compiled.ua_pattern.match_steps(hostile_ua)
    assert matched is False and steps <= compiled.ua_pattern.max_steps == 17
    with transaction(conn):
        service.update_entry(
            conn, entry["id"], {"version": entry["version"], "ua_pattern": "*a*a*!"}, user=TUNER1, now_ms=NOW
        )
    decide(conn, store.get_entry(conn, entry["id"]))
    assert all(suppressed_by(conn, i) == entry["id"] for i in ids)


def test_preset_entries_key_on_the_identity_the_preset_asks_for() -> None:
    from app.tuning import presets

    slr = presets.PRESETS_BY_ID["aws_service_linked_roles"]
    [body] = presets.entry_payloads(
        slr, ["autoscaling.amazonaws.com"], justification="AWS services", expires_at=1
    )
    assert body["source_service"] == "autoscaling.amazonaws.com" and "actor_id" not in body
    assert body["target_type"] == "service_linked_role"
    glass = presets.PRESETS_BY_ID["break_glass"]
    [body] = presets.entry_payloads(glass, ["oid-1"], justification="IR", expires_at=1, ticket="IR-1")
    assert body["actor_id"] == "oid-1" and body["break_glass"] is True and body["ticket"] == "IR-1"
    for preset in presets.PRESETS:
        for field_name, values in preset.fingerprints.items():
            assert field_name in ("user_agent", "source_ip", "actor", "actor_id", "account_kind")
            assert values  # fingerprints only suggest; entries never key on them


def test_a_rolled_back_change_never_leaves_a_stale_compiled_matcher(conn: Any) -> None:
    detection = add_detection(conn)
    current = service.get_settings(conn)
    service.update_settings(conn, {"version": current["version"], "single_person_approval": True}, user=ADMIN)
    with pytest.raises(RuntimeError), transaction(conn):
        service.create_entry(conn, entry_body(), user=TUNER1, now_ms=NOW)  # active at once, then rolled back
        assert suppressed_by(conn, detection) is not None
        raise RuntimeError("abort the import")
    assert suppressed_by(conn, detection) is None
    other = create(conn, actor_id="arn:aws:iam::111122223333:role/other")  # the next change
    assert other["status"] == "active"
    assert suppress.apply(conn, NOW) == 0 and suppressed_by(conn, detection) is None
    assert suppress.active_matcher(conn, NOW).match_all({"cloud_platform": "AWS", "actor_id": DEPLOYER}) == []
