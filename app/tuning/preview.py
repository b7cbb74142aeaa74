"""Preview: what an entry would suppress if it were saved and approved now.

The preview runs the same ``Matcher`` the suppression uses over the same active entries, with the candidate
added (or replacing the entry being edited), and counts the detections of the last 30 days that would end
up attributed to the candidate. Because attribution goes to the lowest matching entry id and a new entry
always gets a higher id than every existing one, ``would_suppress`` is exactly what saving, approving and
``suppress.apply`` then attribute to it (unless other entries change in between).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from app.store import tuning as store
from app.tuning.matcher import Matcher

PREVIEW_DAYS = 30
DAY_MS = 86_400_000
MAX_EXAMPLES = 10
# Stands in for the id a new entry will get: larger than any existing id, so it ranks last.
NEW_ENTRY_ID = 2**62


def preview(
    conn: sqlite3.Connection,
    candidate: Mapping[str, Any],
    now_ms: int,
    *,
    entry_id: int | None = None,
    days: int = PREVIEW_DAYS,
) -> dict[str, Any]:
    """Counts and examples for ``candidate`` (validated entry fields); ``entry_id`` when editing one."""
    candidate_id = entry_id if entry_id is not None else NEW_ENTRY_ID
    others = [e for e in store.active_entries(conn, now_ms) if e["id"] != candidate_id]
    simulated_entry = {**candidate, "id": candidate_id}
    suppressing = bool(candidate.get("enabled", True)) and int(candidate["expires_at"]) > now_ms
    with_candidate = Matcher([*others, simulated_entry] if suppressing else others)
    candidate_only = Matcher([simulated_entry])

    since_ms = now_ms - days * DAY_MS
    would_suppress: list[int] = []
    newly_hidden = 0
    already_by_other = 0
    matched_total = 0
    chains: set[int] = set()
    for batch in store.iter_detections_for_matching(conn, since_ms=since_ms):
        for detection in batch:
            if candidate_only.match(detection) is None:
                continue
            matched_total += 1
            winner = with_candidate.match(detection)
            if winner == candidate_id:
                would_suppress.append(detection["id"])
                if detection["suppressed_by"] is None:
                    newly_hidden += 1
                if detection["chain_id"] is not None:
                    chains.add(int(detection["chain_id"]))
            else:
                already_by_other += 1

    partial_chains = []
    if chains:
        members_by_chain: dict[int, list[dict[str, Any]]] = {}
        for member in store.chain_members(conn, chains):
            members_by_chain.setdefault(int(member["chain_id"]), []).append(member)
        for chain_id, members in sorted(members_by_chain.items()):
            visible = [m["id"] for m in members if with_candidate.match(m) is None]
            if visible:
                partial_chains.append(
                    {"chain_id": chain_id, "members": len(members), "left_visible": len(visible)}
                )

    examples = store.detection_examples(conn, would_suppress[-MAX_EXAMPLES:])
    return {
        "days": days,
        "since_ms": since_ms,
        "would_suppress": len(would_suppress),
        "newly_suppressed": newly_hidden,
        "matched": matched_total,
        "already_suppressed_by_other_entries": already_by_other,
        "chains_touched": len(chains),
        "chain_ids": sorted(chains),
        "partial_chains": partial_chains,
        "needs_partial_chain_confirmation": bool(partial_chains),
        "examples": examples,
    }
