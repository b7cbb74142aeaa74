"""DSM-style parsing: raw cloud audit records → QRadar-normalized events.

One parser per source, each mapping the way a QRadar DSM does (event name → QID, low-level category,
log source per account/tenant/project, ``username`` = the actor, ``sourceip``, the "Account Name" custom
property). ``parse_record`` detects the source of each record by its shape; ``DsmMapper`` (mapping.py)
turns a parsed event into an ``events`` row, creating QID records and log sources on first sight.
"""

from __future__ import annotations

from collections.abc import Callable

from . import azure_platform, cloudtrail, entra, gcp, o365, workspace
from .common import (
    ACCOUNT_NAME_PROPERTY,
    LOG_SOURCE_TYPE_NAMES,
    ParsedEvent,
    RecordError,
    type_name,
)

# (source key, shape test, parser) in the order shapes are tried.
PARSERS: tuple[tuple[str, Callable[[dict], bool], Callable[[dict], ParsedEvent]], ...] = (
    ("cloudtrail", cloudtrail.looks_like, cloudtrail.parse),
    ("gcp", gcp.looks_like, gcp.parse),
    ("workspace", workspace.looks_like, workspace.parse),
    ("o365", o365.looks_like, o365.parse),
    ("entra", entra.looks_like, entra.parse),
    ("azure_platform", azure_platform.looks_like, azure_platform.parse),
)

UNKNOWN_SOURCE_REASON = (
    "unknown source: not AWS CloudTrail (eventSource+eventName), Google Cloud audit (protoPayload), "
    "Google Workspace admin activity (kind admin#reports#activity, or id.applicationName+events), "
    "Office 365 (Workload/RecordType+Operation), Entra ID (category AuditLogs/SignInLogs or an aadiam "
    "resourceId) or Azure Activity (operationName+/SUBSCRIPTIONS/ resourceId)"
)


def detect_source(record: object) -> str | None:
    """The parser key for a record's shape, or None when no parser recognises it."""
    if not isinstance(record, dict):
        return None
    for key, looks_like, _parse in PARSERS:
        if looks_like(record):
            return key
    return None


def parse_record(record: object) -> ParsedEvent:
    """Normalize one raw record; raises RecordError naming the problem."""
    if not isinstance(record, dict):
        raise RecordError(f"record is not a JSON object (got {type_name(record)})")
    for _key, looks_like, parse in PARSERS:
        if looks_like(record):
            try:
                event = parse(record)
            except RecordError:
                raise
            except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
                # A field of an unexpected type deep in the record: reject it, never crash the ingest.
                raise RecordError(f"malformed record ({type(exc).__name__}: {exc})") from None
            event.event_name = storable(event.event_name)
            event.log_source_name = storable(event.log_source_name)
            event.username = storable(event.username)
            event.account_name = storable(event.account_name)
            return event
    raise RecordError(UNKNOWN_SOURCE_REASON)


def storable(text: str | None) -> str | None:
    """Text SQLite can store: JSON allows lone UTF-16 surrogates (``"\\ud800"``), UTF-8 does not."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


__all__ = [
    "ACCOUNT_NAME_PROPERTY",
    "LOG_SOURCE_TYPE_NAMES",
    "PARSERS",
    "ParsedEvent",
    "RecordError",
    "detect_source",
    "parse_record",
]
