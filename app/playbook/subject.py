"""Which creation a playbook page is about: a stored detection, or an offense's first creation event."""

from __future__ import annotations

from app.api.errors import ApiError
from app.auth.access import require_visible_detection
from app.detection.eventset import target_property, type_ids
from app.playbook.render import Subject
from app.store import detections as detections_store
from app.store.db import get_db

# The playbook's api and views read the event set through this module.
__all__ = ["offense_subject", "subject_for_detection", "subject_for_offense", "target_property", "type_ids"]


def subject_for_detection(detection_id: int) -> Subject | None:
    """The stored detection as a subject; None when it does not exist or the user may not see it."""
    try:
        require_visible_detection(detection_id)
    except ApiError:
        return None
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

    try:
        answer = fragment.answer_for_user(offense_id)
    except ApiError as exc:  # QRadar does not show this user the offense
        return Subject(), exc.message
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
