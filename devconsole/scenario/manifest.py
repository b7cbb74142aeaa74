"""``DIR/scenario/manifest.json``: which stored events are attacks, benign look-alikes or noise, which chains
and offenses link them — what tests compare the app's answers with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..dsm import parse_record
from ..dsm.receipt import ReceiptDelays
from ..ingest import IngestReport
from .facts import (
    AWS_ACCOUNT,
    AZURE_SUBSCRIPTION,
    CHAIN_RULES,
    GCP_PROJECT,
    RECEIPT_DELAY,
    TENANT_DOMAIN,
    TENANT_ID,
)
from .model import EventRef, Item, Scenario, StoredEvents

MANIFEST_VERSION = 1

# Where each source keeps the record's own unique identifier.
RECORD_ID_FIELDS = {
    "cloudtrail": "eventID",
    "entra_audit": "properties.id",
    "entra_signin": "properties.id",
    "o365": "Id",
    "gcp": "insertId",
    "workspace": "id.uniqueQualifier",
    "azure_platform": "properties.eventDataId",
}


def record_facts(record: dict) -> tuple[str, str | None, str | None]:
    """(record id field, record id, username as the DSM sets it) of one scenario record."""
    event = parse_record(record)
    return RECORD_ID_FIELDS[event.source], event.record_id, event.username


def event_entry(ref: EventRef, stored: StoredEvents) -> dict[str, Any]:
    eid = stored.event_id(ref)
    qid, devicetype, starttime, name, devicetime = stored.columns[eid]
    field_name, record_id, username = record_facts(ref.record)
    entry: dict[str, Any] = {
        "event_id": eid,
        "record_id_field": field_name,
        "record_id": record_id,
        "event_name": name,
        "username": username,
        "qid": qid,
        "devicetype": devicetype,
        "starttime": starttime,
        "devicetime": devicetime,
        "role": ref.role,
        "expected_detection": ref.expected_detection,
    }
    if ref.is_service_account is not None:
        entry["is_service_account"] = ref.is_service_account
    if ref.account_kind:
        entry["account_kind"] = ref.account_kind
    if ref.target_account is not None:
        entry["target_account"] = ref.target_account
    if ref.twin_of is not None:
        entry["twin_of_event_id"] = stored.event_id(ref.twin_of)
    if id(ref.record) in stored.coalesced:
        entry["coalesced"] = True  # counted in event_id's eventcount; that event keeps another payload
    if id(ref.record) in stored.truncated:
        entry["payload_truncated"] = True
    return entry


def item_entry(item: Item, stored: StoredEvents, offense_id: int | None) -> dict[str, Any]:
    return {
        "key": item.key,
        "kind": item.kind,
        "title": item.title,
        "platform": item.platform,
        "source": item.source,
        "actor": item.actor,
        "actor_id": item.actor_id,
        "actor_type": item.actor_type,
        "is_service_account": item.is_service_account,
        "chain_kind": item.chain_kind,
        "chain_rule": CHAIN_RULES.get(item.chain_kind or ""),
        "follows": item.follows,
        "also_seen_in": item.also_seen_in,
        "allowlist": item.allowlist,
        "hostile": item.hostile_fields is not None,
        "hostile_fields": item.hostile_fields,
        "offense_id": offense_id,
        "notes": item.notes,
        "depends_on": item.depends_on,
        "events": [event_entry(ref, stored) for ref in item.events],
    }


def receipt_behaviour(receipt: ReceiptDelays | None) -> dict[str, Any]:
    """What the manifest says about receipt delays: on or off, and each platform's range (seconds)."""
    if receipt is None:
        return {"enabled": False, "description": "starttime = devicetime = the record's own time"}
    return {
        "enabled": True,
        "description": "starttime = when QRadar received the event, devicetime = the record's own time; "
        "each platform's records arrive late by a delay drawn from its range (seeded), the records an "
        "item depends on by an exact delay",
        "seed": receipt.seed,
        "ranges_s": {
            str(type_id): {
                "floor": span.floor_ms // 1000,
                "typical": span.typical_ms // 1000,
                "ceiling": span.ceiling_ms // 1000,
            }
            for type_id, span in sorted(receipt.ranges.items())
        },
        "not_after_ms": receipt.not_after_ms,
    }


def build_manifest(
    scenario: Scenario,
    records_path: Path,
    record_count: int,
    report: IngestReport,
    stored: StoredEvents,
    offense_entries: list[dict[str, Any]],
    offense_of_item: dict[str, int],
    receipt: ReceiptDelays | None = None,
) -> dict[str, Any]:
    """The manifest of a seeded scenario: its records as ingested (``report``), stored as ``stored``."""
    return {
        "version": MANIFEST_VERSION,
        "seed": scenario.seed,
        "events_requested": scenario.events_requested,
        "generated_at_ms": scenario.now_ms,
        "records_path": str(records_path),
        "totals": {
            "records": record_count,
            "ingested": report.ingested,
            "rejected": len(report.rejected),
            # Of the ingested: counted in an earlier event's eventcount (coalescing), payload stored cut.
            "coalesced": report.coalesced,
            "truncated": report.truncated,
            "by_source": dict(sorted(report.by_source.items())),
        },
        "tenants": {
            "aws_account": AWS_ACCOUNT,
            "entra_tenant": TENANT_ID,
            "entra_domain": TENANT_DOMAIN,
            "gcp_project": GCP_PROJECT,
            "azure_subscription": AZURE_SUBSCRIPTION,
        },
        "log_source_types": {
            "AWS": 347,
            "Azure AD": 445,
            "Office 365": 397,
            "GCP": 449,
            "Google Workspace": 442,
            "Azure Platform": 413,
        },
        "custom_properties": {"account_name": "Account Name"},
        "behaviours": {RECEIPT_DELAY: receipt_behaviour(receipt)},
        "chain_rules": {kind: letter for kind, letter in CHAIN_RULES.items()},
        "items": [item_entry(item, stored, offense_of_item.get(item.key)) for item in scenario.items],
        "chains": [
            {
                "kind": chain.kind,
                "rule": CHAIN_RULES[chain.kind],
                "items": chain.items,
                "event_ids": [stored.event_id(ref) for ref in chain.events],
            }
            for chain in scenario.chains
        ],
        "offenses": offense_entries,
    }
