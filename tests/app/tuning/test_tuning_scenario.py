"""Presets against the seeded dev console: the real refresher turns the scenario into detections, then each
preset switched on with the scenario's own identities (and approved by a second tuner) suppresses that
family's benign provisioning events and none of the attacks; its fingerprints suggest those identities;
and the QRadar reference set in the dev console matches the active entries."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import settings
from app.detection import refresher
from app.qradar import Gateway
from app.refresher import serve
from app.store import db
from app.store.db import now_ms, transaction
from app.tuning import approval, presets, refsync, service, suppress
from app.tuning.entries import validate_entry
from app.tuning.preview import preview
from tests.app.tuning.tuning_helpers import HOUR, TUNER1, TUNER2, add_detection

# The scenario's benign provisioning items, by the preset that covers them (devconsole/scenario/benign.py).
PRESET_ITEMS = {
    "iac": ["benign-terraform-pipeline", "benign-cloudformation", "benign-gcp-log-writer"],
    "config_management": ["benign-ansible", "benign-puppet"],
    "aws_service_linked_roles": ["benign-service-linked-role"],
    "hr_directory_sync": ["benign-entra-connect-sync", "benign-workday-inbound"],
    "microsoft_first_party": ["benign-managed-identity"],
    "break_glass": ["benign-break-glass"],
    "workspace_provisioning": ["benign-workspace-onboarding"],
}

# The items whose events carry immutable evidence of their family (devconsole/scenario.py): CloudTrail's
# invokedBy, and the SyncFabric application ID of HR inbound provisioning. The managed identity acts with
# no application ID, Entra Connect sync as a user, the others are known only by user agent or name.
SUGGESTED_ON_EVIDENCE = {
    "iac": ["benign-cloudformation"],
    "config_management": [],
    "aws_service_linked_roles": ["benign-service-linked-role"],
    "hr_directory_sync": ["benign-workday-inbound"],
    "microsoft_first_party": [],
    "break_glass": [],
    "workspace_provisioning": [],
}


def gateway_for(devconsole: Any) -> Gateway:
    env = {
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{devconsole.port}",
        "SEC_ADMIN_TOKEN": devconsole.tokens["service"],
        "REQUESTS_CA_BUNDLE": str(devconsole.ca_path),
    }
    return Gateway.from_env(env, poll_wait_s=1)


@pytest.fixture(scope="module")
def refreshed_store(devconsole: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real refresh of the seeded scenario into an app store (copied per test)."""
    path = tmp_path_factory.mktemp("tuning_scenario") / "app.db"
    conn = db.connect(path)
    try:
        result = refresher.refresh_once(conn, gateway_for(devconsole))
        assert result.status == "ok", result.error
    finally:
        conn.close()
    return path


@pytest.fixture
def scenario_conn(refreshed_store: Path, tmp_path: Path) -> Iterator[sqlite3.Connection]:
    source = sqlite3.connect(refreshed_store)
    copy = tmp_path / "app.db"
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    conn = db.connect(copy)
    yield conn
    conn.close()


def items_by_key(devconsole: Any) -> dict[str, dict[str, Any]]:
    return {item["key"]: item for item in devconsole.scenario["items"]}


def detection_ids(conn: sqlite3.Connection, item: dict[str, Any]) -> list[int]:
    """The stored detection of each of the item's events that should be detected (twins merge)."""
    found = []
    for event in item["events"]:
        if not event["expected_detection"] or event.get("twin_of_event_id"):
            continue
        rows = conn.execute(
            "SELECT id FROM detections WHERE event_time = ? AND qid = ?", (event["starttime"], event["qid"])
        ).fetchall()
        assert len(rows) == 1, f"{item['key']}: {event['event_name']} at {event['starttime']} not stored once"
        found.append(rows[0]["id"])
    return found


def suppressed(conn: sqlite3.Connection, ids: list[int]) -> dict[int, int | None]:
    return {
        i: conn.execute("SELECT suppressed_by FROM detections WHERE id = ?", (i,)).fetchone()[0] for i in ids
    }


def identities(devconsole: Any, preset_id: str) -> list[str]:
    items = items_by_key(devconsole)
    return [items[key]["allowlist"]["actor_id"] for key in PRESET_ITEMS[preset_id]]


def enable_preset(
    conn: sqlite3.Connection, devconsole: Any, preset_id: str, now: int, **fields: Any
) -> list[dict[str, Any]]:
    """TUNER1 switches ``preset_id`` on for the scenario's identities of that family (entries pending)."""
    with transaction(conn):
        return service.enable_preset(
            conn,
            preset_id,
            {"identities": identities(devconsole, preset_id), **fields},
            user=TUNER1,
            now_ms=now,
        )


def approve(conn: sqlite3.Connection, entries: list[dict[str, Any]], now: int) -> None:
    """TUNER2, the second person, approves each pending entry."""
    for entry in entries:
        with transaction(conn):
            approval.decide(
                conn, entry["id"], {"version": entry["version"]}, user=TUNER2, now_ms=now, approve=True
            )


def break_glass_fields(expires_at: int, ticket: str) -> dict[str, Any]:
    """A break-glass preset's request: short-lived and tied to an incident ticket."""
    return {"expires_at": expires_at, "ticket": ticket, "justification": f"break-glass use during {ticket}"}


def use_own_reference_data(conn: sqlite3.Connection, prefix: str) -> None:
    """Sync into a reference set and map no other test writes (the session's dev console is shared)."""
    suffix = uuid.uuid4().hex[:8]
    settings.update(
        conn,
        {"reference_set_name": f"CAW_{prefix}_{suffix}", "reference_map_name": f"CAW_{prefix}Notes_{suffix}"},
        actor="admin",
    )


def test_every_benign_family_has_a_preset(devconsole: Any) -> None:
    benign = {item["key"] for item in devconsole.scenario["items"] if item["kind"] == "benign"}
    covered = {key for keys in PRESET_ITEMS.values() for key in keys}
    assert benign == covered
    assert set(PRESET_ITEMS) == set(presets.PRESETS_BY_ID)


@pytest.mark.parametrize("preset_id", sorted(PRESET_ITEMS))
def test_preset_suppresses_its_benign_events_and_no_attack(
    preset_id: str, devconsole: Any, scenario_conn: sqlite3.Connection
) -> None:
    conn = scenario_conn
    items = items_by_key(devconsole)
    preset = presets.PRESETS_BY_ID[preset_id]
    own = [i for key in PRESET_ITEMS[preset_id] for i in detection_ids(conn, items[key])]
    others = [
        i
        for item in devconsole.scenario["items"]
        if item["key"] not in PRESET_ITEMS[preset_id]
        for i in detection_ids(conn, item)
    ]
    assert own and others
    assert set(suppressed(conn, own + others).values()) == {None}  # off by default: nothing suppressed

    # Immutable evidence (invokedBy, a first-party application ID) suggests exactly the identities that
    # leave it; families known only by user agent or name suggest nothing.
    recent = [dict(r) for r in conn.execute("SELECT * FROM detections")]
    candidates = presets.suggest_candidates(preset, recent)
    evident = [items[key]["allowlist"]["actor_id"] for key in SUGGESTED_ON_EVIDENCE[preset_id]]
    assert {c["identity"] for c in candidates} == set(evident)
    assert all(c["evidence"] for c in candidates)

    # A look-alike using the family's spoofable fingerprints from another identity stays visible.
    now = now_ms()
    decoy = add_detection(
        conn,
        event_time=now - HOUR,
        cloud_platform=preset.platforms[0],
        account_kind=(preset.account_kinds or ("user",))[0],
        actor="Managed Service Identity",
        actor_id="attacker-controlled-id",
        user_agent="APN/1.0 HashiCorp/1.0 Terraform/1.5.6 Ansible/2.16.3",
        source_ip="203.0.113.66",
    )

    # What the previews promise, identity by identity, before anything is saved.
    payloads = presets.entry_payloads(
        preset,
        identities(devconsole, preset_id),
        expires_at=now + 12 * HOUR,
        justification="preview of the scenario identities",
        ticket="CHG-1136",
    )
    promised = sum(
        preview(conn, validate_entry(p, now_ms=now, is_admin=False), now)["would_suppress"] for p in payloads
    )

    created = enable_preset(
        conn,
        devconsole,
        preset_id,
        now,
        expires_at=now + 12 * HOUR,
        justification=f"scenario identities for the {preset_id} preset",
        ticket="CHG-1136",
    )
    assert len(created) == len(PRESET_ITEMS[preset_id]) and {e["status"] for e in created} == {"pending"}
    assert set(suppressed(conn, own).values()) == {None}  # pending until a second tuner approves
    approve(conn, created, now)

    entry_ids = {e["id"] for e in created}
    since = now - 30 * 24 * HOUR
    marks = ", ".join("?" for _ in entry_ids)
    saved = conn.execute(
        f"SELECT COUNT(*) FROM detections WHERE suppressed_by IN ({marks}) AND event_time >= ?",
        (*entry_ids, since),
    ).fetchone()[0]
    assert saved == promised == len(own)  # preview == what saving suppressed == the family's events
    own_state = suppressed(conn, own)
    assert set(own_state.values()) <= entry_ids and None not in own_state.values(), own_state
    attacks = [
        i
        for item in devconsole.scenario["items"]
        if item["kind"] != "benign"
        for i in detection_ids(conn, item)
    ]
    assert attacks and set(suppressed(conn, attacks).values()) == {None}
    assert set(suppressed(conn, others).values()) == {None}
    assert suppressed(conn, [decoy]) == {decoy: None}

    # Turning the preset off brings every detection back; nothing was deleted.
    count = conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0]
    with transaction(conn):
        service.disable_preset(conn, preset_id, user=TUNER2, now_ms=now)
    assert set(suppressed(conn, own).values()) == {None}
    assert conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == count


def test_reference_set_in_the_console_matches_the_active_entries(
    devconsole: Any, scenario_conn: sqlite3.Connection
) -> None:
    conn = scenario_conn
    use_own_reference_data(conn, "Allowlist")
    now = now_ms()
    active: set[str] = set()
    narrowed: set[int] = set()
    for preset_id in ("iac", "hr_directory_sync", "microsoft_first_party"):
        created = enable_preset(
            conn,
            devconsole,
            preset_id,
            now,
            expires_at=now + 30 * 24 * HOUR,
            justification=f"scenario identities for the {preset_id} preset",
        )
        approve(conn, created, now)
        if preset_id == "hr_directory_sync":  # its entries cover user creations only: narrowed
            narrowed |= {e["id"] for e in created}
        else:
            active |= set(identities(devconsole, preset_id))
    # pending (never approved) entries stay out of QRadar
    enable_preset(conn, devconsole, "break_glass", now, **break_glass_fields(now + HOUR, "IR-4711"))

    gateway = gateway_for(devconsole)
    outcome = refsync.sync(conn, gateway, now)
    conn.commit()
    assert outcome["status"] == "ok" and outcome["after"]["in_sync"] is True
    qradar = devconsole.api("admin")
    names = refsync.collection_names(conn)
    reference_set = qradar.get(
        f"{devconsole.base_url}/api/reference_data/sets/{names['reference_set']}"
    ).json()
    assert reference_set["element_type"] == "ALN"
    assert {v["value"] for v in reference_set["data"]} == active
    reference_map = qradar.get(
        f"{devconsole.base_url}/api/reference_data/maps/{names['reference_map']}"
    ).json()
    assert set(reference_map["data"]) == active
    # Entries narrowed below "this actor" stay out of the set and the map, and are listed as such.
    listed = {n["entry_id"]: n["conditions"] for n in outcome["after"]["not_mirrored"]}
    assert set(listed) == narrowed and all(c == ["target type"] for c in listed.values())

    # Turning a preset off is reflected at the next sync; the drift report says what differed.
    with transaction(conn):
        service.disable_preset(conn, "microsoft_first_party", user=TUNER2, now_ms=now)
    drift = refsync.drift(conn, gateway, now)
    assert drift["unexpected_in_qradar"] == identities(devconsole, "microsoft_first_party")
    refsync.sync(conn, gateway, now)
    conn.commit()
    remaining = qradar.get(f"{devconsole.base_url}/api/reference_data/sets/{names['reference_set']}").json()
    assert {v["value"] for v in remaining["data"]} == active - set(
        identities(devconsole, "microsoft_first_party")
    )


def test_refresher_hook_syncs_only_when_due_and_drops_expired_entries(
    devconsole: Any, scenario_conn: sqlite3.Connection
) -> None:
    conn = scenario_conn
    use_own_reference_data(conn, "Expiry")
    gateway = gateway_for(devconsole)
    now = now_ms()
    [entry] = enable_preset(conn, devconsole, "break_glass", now, **break_glass_fields(now + HOUR, "IR-4711"))
    approve(conn, [entry], now)
    first = refsync.sync_if_due(conn, gateway, now)
    assert first is not None and first["after"]["in_sync"] is True
    assert refsync.sync_if_due(conn, gateway, now + 60_000) is None  # nothing changed: no QRadar calls
    names = refsync.collection_names(conn)
    set_url = f"{devconsole.base_url}/api/reference_data/sets/{names['reference_set']}"
    qradar = devconsole.api("admin")
    assert {v["value"] for v in qradar.get(set_url).json()["data"]} == set(
        identities(devconsole, "break_glass")
    )

    later = now + HOUR  # the break-glass entry's expiry instant
    refresher_like = suppress.apply(conn, later)
    assert refresher_like >= 1  # its detections are back
    due = refsync.sync_if_due(conn, gateway, later)
    assert due is not None and due["removed"] == 1
    assert qradar.get(set_url).json()["data"] == []


def test_refresher_cycle_removes_an_expired_entry_from_the_reference_set(
    devconsole: Any, scenario_conn: sqlite3.Connection, tmp_path: Path
) -> None:
    """The refresher's own cycle (not a tuning change) takes an expired identity out of QRadar's set."""
    conn = scenario_conn
    use_own_reference_data(conn, "Cycle")
    gateway = gateway_for(devconsole)
    now = now_ms()
    expires = now + 4_000
    [entry] = enable_preset(conn, devconsole, "break_glass", now, **break_glass_fields(expires, "IR-5150"))
    approve(conn, [entry], now)
    assert refsync.sync_if_due(conn, gateway, now_ms()) is not None
    names = refsync.collection_names(conn)
    set_url = f"{devconsole.base_url}/api/reference_data/sets/{names['reference_set']}"
    qradar = devconsole.api("admin")
    expected = set(identities(devconsole, "break_glass"))
    assert {v["value"] for v in qradar.get(set_url).json()["data"]} == expected
    suppress.apply(conn, now_ms())
    count_sql = "SELECT COUNT(*) FROM detections WHERE suppressed_by = ?"
    assert conn.execute(count_sql, (entry["id"],)).fetchone()[0] >= 1

    time.sleep(max(0.0, (expires - now_ms()) / 1000) + 0.5)
    db_path = conn.execute("PRAGMA database_list").fetchone()[2]
    serve(lambda: db.connect(db_path), lambda _conn: gateway_for(devconsole), once=True)
    assert qradar.get(set_url).json()["data"] == []
    assert conn.execute(count_sql, (entry["id"],)).fetchone()[0] == 0  # its detections are back
