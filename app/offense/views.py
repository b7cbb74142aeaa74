"""Offense Summary fragment and the OffenseSummaryToolbar GUI action "Cloud account playbook".

Manifest entries these routes need (owned by the foundation engineer; present in manifest.json)::

    "fragments": [{"app_name": "SEM", "page_id": "OffenseSummary", "rest_endpoint": "offense/fragment"}],
    "rest_methods": [{"name": "cloudAccountPlaybook", "url": "offense/playbook_action", "method": "GET",
                      "argument_names": ["context"], "required_capabilities": []}],
    "gui_actions": [{"id": "cloudAccountPlaybookAction", "text": "Cloud account playbook", "icon": null,
                     "rest_method": "cloudAccountPlaybook", "groups": ["OffenseSummaryToolbar"],
                     "required_capabilities": [],
                     "javascript": "if (result && result.url) { window.open(result.url, '_blank'); }"}]

QRadar calls ``<rest_endpoint>/<offense_id>`` for the fragment and expects ``{"html": ...}``; the GUI
action's REST method gets the offense id as ``context`` (UNCONFIRMED on a real console: ``context`` vs
``appContext`` — both are accepted here) and returns the playbook URL its ``javascript`` opens.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, render_template, request

from app.api.parsing import offense_id as parse_offense_id
from app.api.urls import console_url
from app.auth import require
from app.auth.access import check_offense_access
from app.offense import fragment
from app.playbook.content import anchor_for

bp = Blueprint("offense", __name__, url_prefix="/offense", template_folder="templates")


def _time_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else ""


def render_fragment(answer: fragment.FragmentAnswer) -> str:
    rows = []
    for r in answer.rows:
        anchor = anchor_for(r.get("platform") or "")
        params: dict[str, Any] = {"offense": answer.offense_id}
        if r.get("detection_id"):
            params["detection"] = r["detection_id"]
        if anchor:
            params["_anchor"] = anchor
        rows.append(
            {
                **r,
                "time_text": _time_text(int(r.get("event_time") or 0)),
                "playbook_url": console_url("playbook.index", **params) or "",
                "detection_url": (
                    console_url("tab.index", detection=r["detection_id"]) if r.get("detection_id") else None
                ),
            }
        )
    open_url = (
        console_url("tab.index", offense=answer.offense_id)
        or console_url("playbook.index", offense=answer.offense_id)
        or ""
    )
    return render_template(
        "offense/fragment.html",
        answer=answer,
        rows=rows,
        open_url=open_url,
        as_of_text=_time_text(answer.as_of_ms or 0),
        retry_text=_time_text(answer.retry_at_ms or 0),
    )


@bp.get("/fragment/<offense_id>")
@require("view")
def fragment_view(offense_id: str) -> Any:
    """QRadar's Offense Summary fragment: ``{"html": ...}`` for the offense on screen."""
    oid = parse_offense_id(offense_id, "offense_id")
    return jsonify({"html": render_fragment(fragment.answer_for_user(oid))})


@bp.get("/playbook_action")
@require("view")
def playbook_action() -> Any:
    """The OffenseSummaryToolbar GUI action: where the playbook for this offense is."""
    raw = request.args.get("context") or request.args.get("appContext")
    oid = parse_offense_id(raw, "context")
    check_offense_access(oid)
    return jsonify({"offense_id": oid, "url": console_url("playbook.index", offense=oid)})
