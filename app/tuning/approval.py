"""Two-person approval: an entry takes effect only when a second user with the tuning capability approves
the version someone else submitted. An admin setting switches to single-person mode (the submitter's own
save takes effect); the switch is audited like every other change.

Statuses: ``pending`` → ``active`` (approve) or ``rejected`` (reject); an edit that can widen what an active
entry suppresses returns it to ``pending``; time moves ``active``/``pending`` to ``expired``; delete moves
anything to ``deleted``. Nothing is ever removed from the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app import settings
from app.store import tuning as store
from app.tuning import suppress
from app.tuning.entries import TuningError
from app.tuning.preview import preview


@dataclass(frozen=True)
class Actor:
    """The logged-in QRadar user as tuning sees them (from their own role, never the app's token)."""

    name: str
    can_tune: bool
    is_admin: bool


def two_person(conn: sqlite3.Connection) -> bool:
    return not settings.get("single_person_approval", conn=conn)


def status_on_submit(conn: sqlite3.Connection) -> str:
    """What a newly submitted (or widened) version becomes."""
    return "pending" if two_person(conn) else "active"


def require_version(payload: Mapping[str, Any]) -> int:
    version = payload.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise TuningError(400, "bad_field", "version (the entry version you edited) is required", "version")
    return version


def stale(current: Mapping[str, Any]) -> TuningError:
    return TuningError(
        409,
        "stale_version",
        f"entry {current['id']} changed meanwhile (now version {current['version']}); "
        "reload it and apply your change again",
        "version",
        {"current": dict(current)},
    )


def live_entry(conn: sqlite3.Connection, entry_id: int) -> dict[str, Any]:
    """The entry unless it does not exist or was deleted (404)."""
    current = store.get_entry(conn, entry_id)
    if current is None or current["status"] == "deleted":
        raise TuningError(404, "not_found", f"no tuning entry {entry_id}")
    return current


def entry_at_version(conn: sqlite3.Connection, entry_id: int, version: int) -> dict[str, Any]:
    """The live entry, provided it is still the ``version`` the user acted on (409 when it changed)."""
    current = live_entry(conn, entry_id)
    if current["version"] != version:
        raise stale(current)
    return current


def save_version(
    conn: sqlite3.Connection,
    current: Mapping[str, Any],
    version: int,
    changes: Mapping[str, Any],
    **update: Any,
) -> dict[str, Any]:
    """Write ``changes`` (and the status ``update``) over ``version`` of the entry ``current``; 409 when
    someone saved another version first. Returns the entry as stored now."""
    entry_id = current["id"]
    if not store.update_entry(conn, entry_id, version, changes, **update):
        raise stale(store.get_entry(conn, entry_id) or current)
    return store.get_entry(conn, entry_id)


def audit_entry(
    conn: sqlite3.Connection,
    action: str,
    *,
    actor: str,
    now_ms: int,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
) -> None:
    """One audit row for a change to the entry ``after`` (``tuning.entry.create``, ``.approve``, …)."""
    store.audit(
        conn,
        at_ms=now_ms,
        actor=actor,
        action=action,
        object_type=store.ENTRY_OBJECT,
        object_id=after["id"],
        before=before,
        after=after,
    )


def check_partial_chains(
    conn: sqlite3.Connection, fields: Mapping[str, Any], now_ms: int, entry_id: int | None, confirmed: bool
) -> dict[str, Any]:
    """The preview for ``fields``; refuses when it would hide part of a chain without confirmation."""
    result = preview(conn, fields, now_ms, entry_id=entry_id)
    if result["needs_partial_chain_confirmation"] and not confirmed:
        raise TuningError(
            400,
            "confirmation_required",
            f"this entry would suppress part of {len(result['partial_chains'])} attack chain(s); "
            "send confirm_partial_chain: true to proceed",
            "confirm_partial_chain",
            {"preview": result},
        )
    return result


def confirmed_flag(payload: Mapping[str, Any]) -> bool:
    value = payload.get("confirm_partial_chain", False)
    if not isinstance(value, bool):
        raise TuningError(
            400, "bad_field", "confirm_partial_chain must be true or false", "confirm_partial_chain"
        )
    return value


def decide(
    conn: sqlite3.Connection,
    entry_id: int,
    payload: Mapping[str, Any],
    *,
    user: Actor,
    now_ms: int,
    approve: bool,
) -> dict[str, Any]:
    """Approve or reject the pending version of an entry. Runs inside the caller's transaction.
    ``payload`` is a checked TuningDecision body (app.tuning.api_approvals): version, note?, confirm?"""
    version = require_version(payload)
    note = payload.get("note")
    confirmed = confirmed_flag(payload)
    if not user.can_tune:
        raise TuningError(403, "forbidden", "approving needs a tuning capability")
    current = entry_at_version(conn, entry_id, version)
    if current["status"] != "pending":
        raise TuningError(
            409,
            "not_pending",
            f"entry {entry_id} is {current['status']}, not pending approval",
            "version",
            {"current": current},
        )
    if two_person(conn) and current["updated_by"] == user.name:
        raise TuningError(
            403,
            "same_user",
            "two-person approval: someone other than the submitter "
            f"({current['updated_by']}) must approve or reject this entry",
        )
    if approve and current["expires_at"] <= now_ms:
        raise TuningError(409, "expired", f"entry {entry_id} expired before it was approved", "expires_at")
    if approve:
        check_partial_chains(conn, current, now_ms, entry_id, confirmed or current["partial_chain_ok"])
    decision = "approved" if approve else "rejected"
    after = save_version(
        conn,
        current,
        version,
        {},
        by=current["updated_by"],
        now_ms=now_ms,
        status="active" if approve else "rejected",
        approved_by=user.name if approve else None,
        clear_approval=not approve,
        decision_note=note,
    )
    store.add_approval(conn, entry_id, version, decision, user.name, now_ms, note)
    audit_entry(
        conn,
        "tuning.entry." + ("approve" if approve else "reject"),
        actor=user.name,
        now_ms=now_ms,
        before=current,
        after=after,
    )
    suppress.apply(conn, now_ms)
    return after


def record_self_approval(
    conn: sqlite3.Connection, entry: Mapping[str, Any], user: Actor, now_ms: int
) -> None:
    """Single-person mode: the submitter's save is its own approval (recorded and audited as such)."""
    note = "single-person mode"
    store.add_approval(conn, entry["id"], entry["version"], "approved", user.name, now_ms, note)
    audit_entry(
        conn,
        "tuning.entry.approve",
        actor=user.name,
        now_ms=now_ms,
        before=None,
        after={**entry, "approval_note": note},
    )
