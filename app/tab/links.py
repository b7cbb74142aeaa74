"""``GET /api/detections/<id>/links``: deep links for the detail panel.

* QRadar Log Activity pinned to the detection's event: an AQL query built here from escaped literals
  (`app.aql.literals`) — QID, exact ``starttime`` and log source name, inside a one-minute START/STOP
  window. Events have no stable public id, so this is the narrowest pin AQL allows (UNCONFIRMED whether a
  better key exists on a real console).
* The offenses that contain the event, as far as the app knows (``offense_links``): learnt by the
  refresher's offense sync (app/offense/sync.py: open offenses updated since its watermark, one INOFFENSE
  search per batch) and by every Offense Summary fragment answer. Asking QRadar per click would cost one
  Ariel search per candidate offense (AQL has INOFFENSE(id) but no event → offense lookup), so it is not
  done here. Each offense also links back to the tab filtered to that offense (``/tab/?offense=<id>``).
* The playbook section for the detection's platform (``/playbook/?detection=<id>#platform-<slug>``, an
  app page owned by ``app/playbook``).

Console links are console URLs (``/console/do/...``), not app URLs: they are made absolute against the
console host from ``X-Console-Host`` when the proxy sends it, else left as console-origin paths.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flask import Blueprint, current_app

from app.api.errors import ApiError
from app.api.openapi import errors, ok, path
from app.api.urls import console_origin, log_activity_url, offense_url, q_url_for
from app.aql import literals as lit
from app.aql.detection import coalesced_events_query
from app.auth import require
from app.auth.access import require_visible_detection, visible_offenses
from app.store import detections as detection_store
from app.store import get_db, offense_links

bp = Blueprint("tab_links", __name__)

PIN_WINDOW_MS = 60_000
PLAYBOOK_SLUGS = {
    "AWS": "aws",
    "Azure AD": "azure-ad",
    "Office 365": "office-365",
    "GCP": "gcp",
    "Google Workspace": "google-workspace",
}


def event_aql(detection: dict[str, Any]) -> str | None:
    """AQL that finds exactly this detection's event; None when the record lacks the keys to pin it."""
    event_time, qid = detection.get("event_time"), detection.get("qid")
    if not isinstance(event_time, int) or not isinstance(qid, int):
        return None
    where = [f"qid = {lit.integer(qid)}", f"starttime = {lit.epoch_ms(event_time)}"]
    log_source = detection.get("log_source")
    if isinstance(log_source, str) and log_source:
        # A name AQL cannot quote is left out: qid + exact time still pin the event.
        with contextlib.suppress(lit.AqlLiteralError):
            where.append(f"LOGSOURCENAME(logsourceid) = {lit.string(log_source)}")
    return (
        "SELECT DATEFORMAT(starttime, 'yyyy-MM-dd HH:mm:ss') AS event_time, QIDNAME(qid) AS event_name,"
        " LOGSOURCENAME(logsourceid) AS log_source, username, sourceip, UTF8(payload) AS payload"
        f" FROM events WHERE {' AND '.join(where)}"
        f" {lit.time_clause(event_time - PIN_WINDOW_MS // 2, event_time + PIN_WINDOW_MS // 2)}"
    )


def playbook_url(detection_id: int, platform: str | None) -> str | None:
    """The playbook page (app/playbook) about this detection, scrolled to its platform's section."""
    slug = PLAYBOOK_SLUGS.get(platform or "")
    if slug is None or "playbook.index" not in current_app.view_functions:
        return None
    return q_url_for("playbook.index", detection=detection_id, _anchor=f"platform-{slug}")


def tab_url(offense_id: int) -> str:
    """The tab filtered to one offense's detections (an app page, through the console proxy)."""
    return q_url_for("tab.index", offense=offense_id)


@bp.get("/api/detections/<int:detection_id>/links")
@require("view")
def detection_links(detection_id: int) -> dict[str, Any]:
    require_visible_detection(detection_id)
    detection = detection_store.get_detection(get_db(), detection_id)
    if detection is None:
        raise ApiError(404, "not_found", f"no detection {detection_id}")
    origin = console_origin()
    aql = event_aql(detection)
    offense_ids = visible_offenses(offense_links.offenses_for_detection(get_db(), detection_id))
    return {
        "aql": aql,
        "log_activity": origin + log_activity_url(aql) if aql else None,
        "offense_id": offense_ids[0] if offense_ids else None,
        "offense": origin + offense_url(offense_ids[0]) if offense_ids else None,
        "offenses": [
            {"id": oid, "url": origin + offense_url(oid), "tab": tab_url(oid)} for oid in offense_ids
        ],
        "playbook": playbook_url(detection_id, detection.get("cloud_platform")),
        "coalesced_events": coalesced_events_link(detection, origin),
    }


def coalesced_events_link(detection: dict[str, Any], origin: str) -> dict[str, str] | None:
    """Hunting pivot to the raw events around a coalesced record (eventcount > 1), or None."""
    qid, event_time = detection.get("qid"), detection.get("event_time")
    if (detection.get("eventcount") or 1) <= 1 or not isinstance(qid, int) or not isinstance(event_time, int):
        return None
    try:
        aql = coalesced_events_query(qid, event_time, detection.get("log_source"), detection.get("source_ip"))
    except lit.AqlLiteralError:
        aql = coalesced_events_query(qid, event_time)  # a value AQL cannot quote is left out
    return {"aql": aql, "log_activity": origin + log_activity_url(aql)}


OPENAPI_PATHS = {
    "/api/detections/{detection_id}/links": {
        "get": {
            "summary": "Deep links for a detection: Log Activity pinned to its event (AQL from escaped "
            "literals), the offenses known to contain it (QRadar's page and the tab filtered to "
            "each), the playbook section for its platform, and for a coalesced record the raw events around it",
            "parameters": [path("detection_id")],
            "responses": {"200": ok("links (null when not available)"), **errors(404)},
        }
    },
}
