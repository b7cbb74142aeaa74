"""Export and import all tuning as one JSON document (survives upgrades, can live in version control).

Export carries every entry (history included: status, who created and approved it) and the settings.
Import re-creates the live entries (``active``/``pending``, not yet expired) as new submissions — they go
through validation and, in two-person mode, need approval again, so an import can never switch on an
allowlist by itself. Entries identical to a live one are skipped, so importing twice adds nothing.
Settings are applied only when the importer is an admin.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from app.store import tuning as store
from app.store.db import transaction
from app.tuning import service
from app.tuning.approval import Actor
from app.tuning.entries import ENTRY_FIELDS, MATCHING_FIELDS, TuningError, bad, validate_entry
from app.tuning.presets import PRESETS_BY_ID

FORMAT = "cloud-account-watch-tuning"
FORMAT_VERSION = 1
# An export carries exactly what a client can write (and re-import), plus the history below.
PORTABLE_FIELDS = ENTRY_FIELDS
HISTORY_FIELDS = (
    "id",
    "status",
    "preset_id",
    "flagged_spoofable",
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
    "approved_by",
    "approved_at",
    "decision_note",
    "version",
)
MAX_IMPORT_ENTRIES = 10_000
DOCUMENT_FIELDS = frozenset({"format", "format_version", "exported_at", "settings", "entries"})
ENTRY_STATUSES = ("pending", "active", "rejected", "expired", "deleted")
MAX_HISTORY_TEXT = 2000
_EPOCH_MS_MAX = 253_402_300_799_999


def _check_history(index: int, item: Mapping[str, Any]) -> None:
    """The exported history fields of ``entries[index]`` have the types an export writes (import reads
    ``status`` and ``preset_id``; the rest must still be what they claim, or the document is refused)."""
    unknown = sorted(set(item) - set(PORTABLE_FIELDS) - set(HISTORY_FIELDS))
    if unknown:
        raise TuningError(
            400,
            "unknown_field",
            f"entries[{index}]: unknown field(s): {', '.join(unknown)}",
            f"entries[{index}].{unknown[0]}",
        )
    for name in HISTORY_FIELDS:
        value = item.get(name)
        if value is None:
            continue
        field = f"entries[{index}].{name}"
        if name == "status":
            ok = value in ENTRY_STATUSES
            why = f"must be one of {', '.join(ENTRY_STATUSES)}"
        elif name == "preset_id":
            ok = isinstance(value, str) and value in PRESETS_BY_ID
            why = "must be the id of one of this app's presets"
        elif name == "flagged_spoofable":
            ok, why = isinstance(value, bool), "must be true or false"
        elif name in ("id", "version"):
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63
            why = "must be a positive whole number"
        elif name.endswith("_at"):
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _EPOCH_MS_MAX
            why = "must be a time in epoch milliseconds"
        else:  # created_by, updated_by, approved_by, decision_note
            ok = isinstance(value, str) and len(value) <= MAX_HISTORY_TEXT
            why = f"must be text of at most {MAX_HISTORY_TEXT} characters"
        if not ok:
            raise bad(field, f"entries[{index}].{name} {why}")


def export_document(conn: sqlite3.Connection, now_ms: int) -> dict[str, Any]:
    settings = service.get_settings(conn)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": now_ms,
        "settings": {k: settings[k] for k in service.SETTINGS_KEYS},
        "entries": [
            {**{k: e[k] for k in PORTABLE_FIELDS}, **{k: e[k] for k in HISTORY_FIELDS}}
            for e in store.all_entries(conn)
        ],
    }


def _identity(entry: Mapping[str, Any]) -> tuple:
    return tuple(repr(entry.get(k)) for k in ("platforms", "justification", *MATCHING_FIELDS))


def _at(index: int, exc: TuningError) -> TuningError:
    """The same error, naming the entry of the document it is about."""
    return TuningError(
        exc.status,
        exc.code,
        f"entries[{index}]: {exc.message}",
        f"entries[{index}].{exc.field}" if exc.field else f"entries[{index}]",
        exc.extra,
    )


def import_document(conn: sqlite3.Connection, document: Any, *, user: Actor, now_ms: int) -> dict[str, Any]:
    """Import ``document``; returns what was created and what was skipped and why. Commits: the entries in
    one transaction (all or nothing), then the settings (admins only) through app.settings."""
    if not user.can_tune:
        raise TuningError(403, "forbidden", "importing tuning needs a tuning capability")
    if not isinstance(document, Mapping):
        raise bad("body", "the import must be a JSON object")
    if document.get("format") != FORMAT:
        raise bad("format", f"not a {FORMAT} document")
    unknown = sorted(set(document) - DOCUMENT_FIELDS)
    if unknown:  # an unknown field is refused, as everywhere in the API (a typo must not be ignored)
        raise TuningError(400, "unknown_field", f"unknown field(s): {', '.join(unknown)}", unknown[0])
    if document.get("format_version") != FORMAT_VERSION:
        raise bad("format_version", f"format_version {document.get('format_version')!r} is not supported")
    exported_at = document.get("exported_at")
    if exported_at is not None and (
        isinstance(exported_at, bool)
        or not isinstance(exported_at, int)
        or not 0 <= exported_at <= _EPOCH_MS_MAX
    ):
        raise bad("exported_at", "exported_at must be a time in epoch milliseconds")
    if document.get("settings") is not None and not isinstance(document.get("settings"), Mapping):
        raise bad("settings", "settings must be an object")
    entries = document.get("entries")
    if not isinstance(entries, list) or len(entries) > MAX_IMPORT_ENTRIES:
        raise bad("entries", f"entries must be a list of at most {MAX_IMPORT_ENTRIES}")

    with transaction(conn):
        summary = _import_entries(conn, entries, user=user, now_ms=now_ms)
    settings_applied = False
    wanted = document.get("settings")
    if isinstance(wanted, Mapping) and user.is_admin:
        current = service.get_settings(conn)
        changes = {k: wanted[k] for k in service.SETTINGS_KEYS if k in wanted and wanted[k] != current[k]}
        if changes:
            service.update_settings(conn, {**changes, "version": current["version"]}, user=user)
            settings_applied = True
    summary["settings_applied"] = settings_applied
    return summary


def _import_entries(
    conn: sqlite3.Connection, entries: list[Any], *, user: Actor, now_ms: int
) -> dict[str, Any]:
    live = {_identity(e) for e in store.all_entries(conn) if e["status"] in ("active", "pending")}
    created, skipped = [], []
    for index, item in enumerate(entries):
        if not isinstance(item, Mapping):
            raise bad(f"entries[{index}]", "each entry must be an object")
        _check_history(index, item)
        status = item.get("status", "active")
        if status not in ("active", "pending"):
            skipped.append({"index": index, "reason": f"status {status}"})
            continue
        body = {k: item[k] for k in PORTABLE_FIELDS if k in item and item[k] is not None}
        if isinstance(body.get("expires_at"), int) and body["expires_at"] <= now_ms:
            skipped.append({"index": index, "reason": "expired"})
            continue
        try:
            identity = _identity(validate_entry(body, now_ms=now_ms, is_admin=True))
        except TuningError as exc:
            raise _at(index, exc) from None
        if identity in live:
            skipped.append({"index": index, "reason": "already present"})
            continue
        if body.get("override_reason") and not user.is_admin:
            skipped.append({"index": index, "reason": "spoofable-attribute override needs an admin"})
            continue
        body["confirm_partial_chain"] = True  # the document is the confirmation; the approver reviews it
        try:
            entry, _ = service.create_entry(
                conn, body, user=user, now_ms=now_ms, preset_id=item.get("preset_id")
            )
        except TuningError as exc:
            raise _at(index, exc) from None
        live.add(identity)
        created.append(entry["id"])

    summary = {"created": created, "skipped": skipped}
    store.audit(
        conn,
        at_ms=now_ms,
        actor=user.name,
        action="tuning.import",
        object_type=store.IMPORT_OBJECT,
        object_id=None,
        before=None,
        after=summary,
    )
    return summary
