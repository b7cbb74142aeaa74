"""The playbook page (``/playbook/``) and the Sigma rule download.

``?detection=<id>`` or ``?offense=<id>`` fills the commands and hunting queries with that creation's actor
and target (quoted for each command's shell); without either the page shows placeholders.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, render_template, send_file

from app.api.parsing import MAX_OFFENSE_ID, id_arg, offense_id_arg
from app.api.urls import app_root, log_activity_url
from app.aql.hunting import hunting_queries
from app.auth import require
from app.playbook import content, validation
from app.playbook.render import Subject, fill, raw_values
from app.playbook.subject import offense_subject, subject_for_detection, target_property, type_ids

bp = Blueprint(
    "playbook",
    __name__,
    url_prefix="/playbook",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

SIGMA_PATH = Path(__file__).with_name("sigma") / "cloud_account_creation.yml"


def _platform_sections(subject: Subject, values: dict[str, str]) -> list[dict[str, Any]]:
    order = list(content.PLAYBOOKS)
    if subject.platform in order:
        order.remove(subject.platform)
        order.insert(0, subject.platform)
    sections = []
    for platform in order:
        pb = content.PLAYBOOKS[platform]
        # Only the subject's platform is filled; the others show placeholders (another creation's
        # names would be wrong there).
        filled_values = values if (subject.platform in (None, platform)) else {"now_iso": values["now_iso"]}
        phases = []
        for phase in pb.phases:
            steps = [
                {"step": s, "commands": [fill(c, filled_values) for c in s.commands]} for s in phase.steps
            ]
            phases.append({"phase": phase, "steps": steps})
        sections.append({"playbook": pb, "phases": phases, "is_subject": platform == subject.platform})
    return sections


def _hunting(
    subject: Subject, ids: dict[str, tuple[int, ...]], target_property: str | None
) -> list[dict[str, Any]]:
    platforms = [subject.platform] if subject.platform in content.PLAYBOOKS else list(content.PLAYBOOKS)
    out = []
    for platform in platforms:
        for q in hunting_queries(
            platform,
            actor=subject.actor,
            target=subject.target,
            around_ms=subject.event_time_ms,
            type_ids=ids,
            target_property=target_property,
        ):
            out.append({"query": q, "log_activity_url": log_activity_url(q.aql)})
    return out


@bp.get("/")
@require("view")
def index() -> str:
    # The same 32-bit bound as the offense id beside it (both arrive in console links).
    detection_id = id_arg("detection", maximum=MAX_OFFENSE_ID)
    offense_id = offense_id_arg("offense")
    subject = Subject()
    offense_problem = ""
    if detection_id is not None:
        subject = subject_for_detection(detection_id) or Subject(detection_id=detection_id)
    elif offense_id is not None:
        subject, offense_problem = offense_subject(offense_id)
    values = raw_values(subject, int(time.time() * 1000))
    target_prop = target_property()
    page_config = {
        "app_root": app_root("playbook.index"),
        "section": "playbook",
        "subject": {
            "detection": subject.detection_id,
            "offense": subject.offense_id,
            "platform": subject.platform,
            "actor": subject.actor,
            "target": subject.target,
            "around_ms": subject.event_time_ms,
        },
    }
    return render_template(
        "playbook/playbook.html",
        subject=subject,
        sections=_platform_sections(subject, values),
        hunting=_hunting(subject, type_ids(), target_prop),
        validation_tests=validation.TESTS,
        investigation=content.INVESTIGATION_GUIDE,
        attack_links=content.ATTACK_LINKS,
        false_positives=content.FALSE_POSITIVES,
        page_config=page_config,
        section="playbook",
        offense_problem=offense_problem,
        url_endpoints=set(current_app.view_functions),
    )


@bp.get("/sigma/cloud_account_creation.yml")
def sigma_rule() -> Any:
    """The portable Sigma rule (static, public content: no session needed to download it)."""
    return send_file(
        SIGMA_PATH,
        mimetype="application/x-yaml",
        as_attachment=True,
        download_name="cloud_account_creation.yml",
    )
