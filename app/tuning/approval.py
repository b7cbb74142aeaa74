"""Two-person approval: an entry takes effect only when a user with the tuning capability approves it who
wrote none of its matching conditions since the last approval (``condition_writers``, by QRadar user ID).
An admin setting switches to single-person mode (the submitter's own save takes effect); the switch is
audited like every other change.

Statuses: ``pending`` → ``active`` (approve) or ``rejected`` (reject); a change of a matching condition of
an active entry returns it to ``pending`` and the entry suppresses nothing until the change is approved
(`in_force` says so); time moves ``active``/``pending`` to ``expired``; delete moves anything to
``deleted``. Text (name, justification, ticket) edited after an approval keeps the entry in force and is
recorded in ``text_edits`` and audited as ``tuning.entry.text_edit`` until the next approval. Nothing is
ever removed from the store.
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
    """The logged-in QRadar user as tuning sees them (from their own role, never the app's token):
    ``user_id`` (QRadar's numeric ID) decides who they are, ``name`` is what the audit log shows."""

    name: str
    can_tune: bool
    is_admin: bool
    user_id: int

    def as_writer(self) -> dict[str, Any]:
        return {"id": self.user_id, "name": self.name}


def wrote(writer: Mapping[str, Any], user: Actor) -> bool:
    """Whether ``writer`` (an entry of ``condition_writers``) is ``user``: by ID; by name only for writers
    recorded before user IDs were kept."""
    if writer.get("id") is not None:
        return writer["id"] == user.user_id
    return writer.get("name") == user.name


def with_writer(writers: list[dict[str, Any]], user: Actor) -> list[dict[str, Any]]:
    return writers if any(wrote(w, user) for w in writers) else [*writers, user.as_writer()]


def in_force(entry: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """What of the entry suppresses now, and until when (shown with every entry)."""
    status = entry["status"]
    if status == "active" and entry.get("enabled") and entry["expires_at"] > now_ms:
        edited = entry.get("text_edits") or []
        note = f"; text edited after approval by {', '.join(e['by'] for e in edited)}" if edited else ""
        return {
            "suppressing": True,
            "until": entry["expires_at"],
            "explanation": f"the approved conditions suppress until the expiry{note}",
        }
    reasons = {
        "pending": "nothing: this version waits for approval by a tuner who wrote none of its matching "
        "conditions; the entry suppresses nothing until then",
        "active": "nothing: the entry is disabled or past its expiry",
        "rejected": "nothing: this version was rejected",
        "expired": "nothing: the entry expired",
        "deleted": "nothing: the entry was deleted",
    }
    return {"suppressing": False, "until": None, "explanation": reasons.get(status, "nothing")}


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
    writers = current.get("condition_writers") or []
    if two_person(conn) and any(wrote(w, user) for w in writers):
        names = ", ".join(str(w.get("name")) for w in writers)
        raise TuningError(
            403,
            "same_user",
            "two-person approval: someone who wrote none of this entry's matching conditions since its "
            f"last approval ({names}) must approve or reject it",
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
        {"condition_writers": [], "text_edits": []} if approve else {},
        by=current["updated_by"],
        by_id=current.get("updated_by_id"),
        now_ms=now_ms,
        status="active" if approve else "rejected",
        approved_by=user.name if approve else None,
        approved_by_id=user.user_id if approve else None,
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
