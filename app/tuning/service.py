"""Entry lifecycle: create, update, disable, delete, settings and preset toggles.

Each function runs inside the caller's transaction and writes the change, its audit row (who, when,
before, after) and the suppression recompute together. Authorization is checked here as well as in the
API, so no caller can skip it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from app import settings
from app.store import tuning as store
from app.tuning import approval, presets, suppress
from app.tuning.approval import Actor
from app.tuning.entries import TEXT_FIELDS, TuningError, bad, changes_widen, validate_entry

MAX_IDENTITIES = 200


def _require_tune(user: Actor) -> None:
    if not user.can_tune:
        raise TuningError(403, "forbidden", "changing tuning needs a tuning capability in your QRadar role")


def _require_admin(user: Actor) -> None:
    if not user.is_admin:
        raise TuningError(403, "forbidden", "this setting needs the ADMIN capability")


def create_entry(
    conn: sqlite3.Connection,
    payload: Mapping[str, Any],
    *,
    user: Actor,
    now_ms: int,
    preset_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate, preview (partial-chain confirmation), store as pending (or active in single-person mode)."""
    _require_tune(user)
    if "version" in payload:
        raise bad("version", "a new entry has no version", "unknown_field")
    fields = validate_entry(payload, now_ms=now_ms, is_admin=user.is_admin)
    confirmed = approval.confirmed_flag(payload)
    result = approval.check_partial_chains(conn, fields, now_ms, None, confirmed)
    fields["partial_chain_ok"] = bool(result["partial_chains"]) and confirmed
    status = approval.status_on_submit(conn)
    fields["condition_writers"] = [user.as_writer()] if status == "pending" else []
    entry_id = store.insert_entry(
        conn,
        fields,
        status=status,
        by=user.name,
        by_id=user.user_id,
        now_ms=now_ms,
        preset_id=preset_id,
        approved_by=user.name if status == "active" else None,
        approved_by_id=user.user_id if status == "active" else None,
    )
    entry = store.get_entry(conn, entry_id)
    approval.audit_entry(
        conn, "tuning.entry.create", actor=user.name, now_ms=now_ms, before=None, after=entry
    )
    if status == "active":
        approval.record_self_approval(conn, entry, user, now_ms)
        suppress.apply(conn, now_ms)
    return entry, result


def update_entry(
    conn: sqlite3.Connection, entry_id: int, payload: Mapping[str, Any], *, user: Actor, now_ms: int
) -> dict[str, Any]:
    """A partial update carrying the ``version`` it was made against (409 when stale)."""
    _require_tune(user)
    version = approval.require_version(payload)
    current = approval.entry_at_version(conn, entry_id, version)
    fields = validate_entry(payload, now_ms=now_ms, is_admin=user.is_admin, current=current)
    changes = {k: v for k, v in fields.items() if current.get(k) != v}
    if not changes:
        return current
    widens = changes_widen(current, fields) or current["status"] in ("rejected", "expired")
    status = None
    confirmed = approval.confirmed_flag(payload)
    if widens:
        approval.check_partial_chains(conn, fields, now_ms, entry_id, confirmed)
        changes["partial_chain_ok"] = confirmed
        status = approval.status_on_submit(conn)
    if status == "pending":
        # Four eyes on every matching condition: whoever wrote one since the last approval may not approve.
        earlier = current["condition_writers"] if current["status"] != "active" else []
        changes["condition_writers"] = approval.with_writer(earlier, user)
    elif status == "active":
        changes["condition_writers"] = []
    action = "tuning.entry.update"
    if set(changes) == {"enabled"} and not fields["enabled"]:
        action = "tuning.entry.disable"
    text_changed = [k for k in TEXT_FIELDS if k in changes]
    if status is None and current["status"] == "active" and text_changed:
        # The approved conditions stay in force; the text change is recorded for everyone to see.
        edit = {"by": user.name, "by_id": user.user_id, "at": now_ms, "fields": text_changed}
        changes["text_edits"] = [*current["text_edits"], edit]
        if set(changes) <= {*TEXT_FIELDS, "text_edits"}:
            action = "tuning.entry.text_edit"
    after = approval.save_version(
        conn,
        current,
        version,
        changes,
        by=user.name,
        by_id=user.user_id,
        now_ms=now_ms,
        status=status,
        approved_by=user.name if status == "active" else None,
        approved_by_id=user.user_id if status == "active" else None,
        clear_approval=status == "pending",
    )
    approval.audit_entry(conn, action, actor=user.name, now_ms=now_ms, before=current, after=after)
    if status == "active":
        approval.record_self_approval(conn, after, user, now_ms)
    suppress.apply(conn, now_ms)
    return after


def delete_entry(
    conn: sqlite3.Connection,
    entry_id: int,
    version: Any,
    *,
    user: Actor,
    now_ms: int,
    action: str = "tuning.entry.delete",
) -> dict[str, Any]:
    """Soft delete: the entry stops suppressing at once (its detections come back); history stays."""
    _require_tune(user)
    version = approval.require_version({"version": version})
    current = approval.entry_at_version(conn, entry_id, version)
    after = approval.save_version(
        conn, current, version, {}, by=user.name, by_id=user.user_id, now_ms=now_ms, status="deleted"
    )
    approval.audit_entry(conn, action, actor=user.name, now_ms=now_ms, before=current, after=after)
    suppress.apply(conn, now_ms)
    return after


# -- settings ---------------------------------------------------------------------------------------------

# Tuning settings live in the shared settings (app/settings.py); this view of them adds a version so two
# admins editing at once get a 409 instead of silently overwriting each other.
SETTINGS_KEYS = settings.VERSIONED_KEYS


def get_settings(conn: sqlite3.Connection) -> dict[str, Any]:
    values = settings.all_values(conn)
    return {**{k: values[k] for k in SETTINGS_KEYS}, "version": store.settings_version(conn)}


def update_settings(conn: sqlite3.Connection, payload: Mapping[str, Any], *, user: Actor) -> dict[str, Any]:
    """Admin only: the tuning settings' ``payload`` (with the ``version`` it was made against) through
    `app.settings.update`, the one settings write path (validated, version-checked, audited). Commits."""
    _require_admin(user)
    if not isinstance(payload, Mapping):
        raise bad("body", "the request body must be a JSON object")
    unknown = set(payload) - {*SETTINGS_KEYS, "version"}
    if unknown:
        name = sorted(unknown)[0]
        raise bad(name, f"unknown field {name!r}", "unknown_field")
    version = approval.require_version(payload)
    changes = {k: v for k, v in payload.items() if k != "version"}
    try:
        settings.update(conn, changes, actor=user.name, expected_version=version)
    except settings.StaleSettingsVersion as exc:
        raise TuningError(
            409, "stale_version", exc.message, "version", {"current": get_settings(conn)}
        ) from None
    except settings.SettingError as exc:
        raise bad(exc.key, exc.message) from None
    return get_settings(conn)


# -- presets ----------------------------------------------------------------------------------------------

PRESET_ENABLE_FIELDS = {"identities", "justification", "expires_at", "ticket", "confirm_partial_chain"}


def enable_preset(
    conn: sqlite3.Connection, preset_id: str, payload: Mapping[str, Any], *, user: Actor, now_ms: int
) -> list[dict[str, Any]]:
    """Turn a preset on for the organisation's immutable identities: one entry per identity."""
    _require_tune(user)
    preset = presets.PRESETS_BY_ID.get(preset_id)
    if preset is None:
        raise TuningError(404, "not_found", f"no preset {preset_id!r}")
    if not isinstance(payload, Mapping):
        raise bad("body", "the request body must be a JSON object")
    unknown = set(payload) - PRESET_ENABLE_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise bad(name, f"unknown field {name!r}", "unknown_field")
    identities = payload.get("identities")
    if (
        not isinstance(identities, list)
        or not identities
        or len(identities) > MAX_IDENTITIES
        or any(not isinstance(i, str) or not i.strip() for i in identities)
    ):
        raise bad(
            "identities",
            f"identities must list 1 to {MAX_IDENTITIES} immutable IDs ({preset.identity_label})",
        )
    key = preset.identity_field
    existing = {e[key].casefold() for e in store.entries_by_preset(conn).get(preset_id, []) if e[key]}
    wanted = list(dict.fromkeys(i.strip() for i in identities if i.strip().casefold() not in existing))
    created = []
    bodies = presets.entry_payloads(
        preset,
        wanted,
        justification=payload.get("justification"),
        expires_at=payload.get("expires_at"),
        ticket=payload.get("ticket"),
    )
    for identity, body in zip(wanted, bodies, strict=True):
        body["confirm_partial_chain"] = payload.get("confirm_partial_chain", False)
        try:
            entry, _ = create_entry(conn, body, user=user, now_ms=now_ms, preset_id=preset_id)
        except TuningError as exc:
            if exc.field != key:
                raise
            # The identity is the field the client wrote: name it (and which one) in the refusal.
            index = [i.strip() for i in identities].index(identity)
            raise TuningError(exc.status, exc.code, exc.message, f"identities[{index}]", exc.extra) from None
        created.append(entry)
    store.audit(
        conn,
        at_ms=now_ms,
        actor=user.name,
        action="tuning.preset.enable",
        object_type=store.PRESET_OBJECT,
        object_id=preset_id,
        before=None,
        after={"preset": preset_id, "identities": wanted, "entries": [e["id"] for e in created]},
    )
    return created


def disable_preset(
    conn: sqlite3.Connection, preset_id: str, *, user: Actor, now_ms: int
) -> list[dict[str, Any]]:
    """Turn a preset off: its live entries are deleted (soft), so their detections come back."""
    _require_tune(user)
    if preset_id not in presets.PRESETS_BY_ID:
        raise TuningError(404, "not_found", f"no preset {preset_id!r}")
    entries = store.entries_by_preset(conn).get(preset_id, [])
    removed = [delete_entry(conn, e["id"], e["version"], user=user, now_ms=now_ms) for e in entries]
    store.audit(
        conn,
        at_ms=now_ms,
        actor=user.name,
        action="tuning.preset.disable",
        object_type=store.PRESET_OBJECT,
        object_id=preset_id,
        before={"entries": [e["id"] for e in entries]},
        after=None,
    )
    return removed
