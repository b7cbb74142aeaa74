"""Parsed events → ``events`` rows: QID records, categories, log sources and custom properties are looked
up in memory and created in the store on first sight (as QRadar's auto-discovery and DSM updates do)."""

from __future__ import annotations

from typing import Any

from ..store import EventStore
from .common import (
    ACCOUNT_NAME_PROPERTY,
    ALL_ACTION_CLASSES,
    CLOUD_AUDIT_CREDIBILITY,
    LOG_SOURCE_TYPE_NAMES,
    ParsedEvent,
    magnitude_of,
)
from .receipt import ReceiptDelays

_SOURCE_LABELS = {
    347: "AWS CloudTrail",
    445: "Azure AD audit/sign-in",
    397: "Office 365 Management Activity",
    449: "Google Cloud audit log",
    442: "Google Workspace admin activity",
    413: "Azure Activity Log",
}


class DsmMapper:
    """Resolves QIDs and log sources for one ingest run, caching what it has seen."""

    def __init__(self, store: EventStore, receipt: ReceiptDelays | None = None) -> None:
        self.store = store
        # When QRadar received each record (starttime); None: at the record's own time.
        self.receipt = receipt
        self._qids: dict[tuple[int, str], int] = {}
        self._log_sources: dict[str, int] = {}
        with store.connect(readonly=True) as conn:
            for qid, type_id, name in conn.execute("SELECT qid, log_source_type_id, name FROM qid_records"):
                self._qids[(type_id, name)] = qid
            for ls_id, name in conn.execute("SELECT id, name FROM log_sources"):
                self._log_sources[name] = ls_id
            known_types = {row[0] for row in conn.execute("SELECT id FROM log_source_types")}
            known_categories = {row[0] for row in conn.execute("SELECT id FROM categories")}
            has_property = conn.execute(
                "SELECT 1 FROM custom_properties WHERE name = ?", (ACCOUNT_NAME_PROPERTY,)
            ).fetchone()
        for type_id, name in LOG_SOURCE_TYPE_NAMES.items():
            if type_id not in known_types:
                store.ensure_log_source_type(type_id, name)
        for action in ALL_ACTION_CLASSES:
            if action.category_id not in known_categories:
                store.ensure_category(action.category_id, action.category_name, action.high_level_id)
        if not has_property:
            store.declare_custom_property(ACCOUNT_NAME_PROPERTY, "STRING")

    def qid_for(self, event: ParsedEvent) -> int:
        key = (event.type_id, event.event_name)
        qid = self._qids.get(key)
        if qid is None:
            qid = self.store.ensure_qid(
                event.type_id,
                event.event_name,
                event.action.category_id,
                description=f"{event.event_name} ({_SOURCE_LABELS.get(event.type_id, 'cloud audit')})",
                severity=event.action.severity,
            )
            self._qids[key] = qid
        return qid

    def log_source_for(self, event: ParsedEvent) -> int:
        ls_id = self._log_sources.get(event.log_source_name)
        if ls_id is None:
            ls_id = self.store.ensure_log_source(event.log_source_name, event.type_id)
            self._log_sources[event.log_source_name] = ls_id
        return ls_id

    def row(self, event: ParsedEvent, payload: bytes) -> dict[str, Any]:
        action = event.action
        severity = action.severity
        relevance = action.relevance
        received = event.time_ms if self.receipt is None else self.receipt.received_ms(event, payload)
        return {
            "starttime": received,
            "endtime": received,
            "devicetime": event.time_ms,
            "qid": self.qid_for(event),
            "category": action.category_id,
            "highlevelcategory": action.high_level_id,
            "logsourceid": self.log_source_for(event),
            "devicetype": event.type_id,
            "username": event.username,
            "sourceip": event.sourceip,
            "magnitude": magnitude_of(severity, CLOUD_AUDIT_CREDIBILITY, relevance),
            "severity": severity,
            "credibility": CLOUD_AUDIT_CREDIBILITY,
            "relevance": relevance,
            "payload": payload,
            "props": event.props,
        }
