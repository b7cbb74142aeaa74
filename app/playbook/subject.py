"""Which creation a playbook page is about: a stored detection, or an offense's first creation event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app import settings
from app.aql.detection import PLATFORMS
from app.playbook.render import Subject
from app.store import detections as detections_store
from app.store.db import get_db

if TYPE_CHECKING:
    from app.qradar import Gateway


def type_ids() -> dict[str, tuple[int, ...]]:
    """Log source type IDs per platform from the ``log_source_types`` setting."""
    types = settings.get("log_source_types")
    out = {}
    for platform in PLATFORMS:
        ids = tuple(t["id"] for t in types.get(platform, []) if t.get("id") is not None)
        if ids:
            out[platform] = ids
    return out


def target_property(gw: Gateway | None = None) -> str | None:
    """The custom property holding the new account's name, or None when this console does not define it
    (an unknown column would make every query fail). While QRadar's column list cannot be read the
    configured name is used. ``gw``: the gateway to ask (a time-bounded one), else the app's."""
    from app.qradar import get_gateway

    name = settings.get("custom_properties").get("account_name")
    if not name:
        return None
    columns = (gw or get_gateway()).columns("events")
    return name if columns is None or name in columns else None


def subject_for_detection(detection_id: int) -> Subject | None:
    det = detections_store.get_detection(get_db(), detection_id)
    if det is None:
        return None
    return Subject(
        platform=det.get("cloud_platform"),
        actor=det.get("actor"),
        actor_id=det.get("actor_id"),
        target=det.get("target_account"),
        target_id=det.get("target_id"),
        event_time_ms=det.get("event_time"),
        detection_id=detection_id,
    )


def subject_for_offense(offense_id: int) -> Subject:
    """The offense's earliest creation (from the fragment's answer: cache, or one bounded search)."""
    return offense_subject(offense_id)[0]


def offense_subject(offense_id: int) -> tuple[Subject, str]:
    """`subject_for_offense` plus what QRadar's failure was when the offense could not be looked at
    ("" when it could): the page must not claim "no creation found" when it could not ask."""
    from app.offense import fragment

    answer = fragment.answer(offense_id)
    problem = answer.message if answer.state == "error" else ""
    if not answer.rows:
        return Subject(offense_id=offense_id), problem
    first = answer.rows[0]
    if first.get("detection_id"):
        stored = subject_for_detection(int(first["detection_id"]))
        if stored is not None:
            return Subject(**{**stored.__dict__, "offense_id": offense_id}), problem
    return Subject(
        platform=first.get("platform") or None,
        actor=first.get("actor") or None,
        target=first.get("target") or None,
        event_time_ms=first.get("event_time") or None,
        offense_id=offense_id,
    ), problem
