"""QRadar dashboard item (``GET /dashboard/item``): the last 24 hours of cloud account creations.

Manifest entries (owned by the foundation engineer)::

    "rest_methods": [{"name": "cloudAccountDashboardItem", "url": "dashboard/item", "method": "GET",
                      "argument_names": [], "required_capabilities": []}],
    "dashboard_items": [{"text": "Cloud account creations (24 h)", "description": "...",
                         "rest_method": "cloudAccountDashboardItem", "required_capabilities": []}]

The classic dashboard contract is ``{"id", "title", "HTML"}`` (capital HTML); the HTML renders inside
QRadar's page, so it uses inline styles only and links built with q_url_for.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, render_template

from app.api.urls import console_url
from app.aql.detection import PLATFORMS
from app.auth import require
from app.detection import refresher, selfcheck
from app.store import dashboard as store
from app.store.db import get_db

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")

ITEM_ID = "cloudAccountWatchCreations"
ITEM_TITLE = "Cloud account creations (last 24 h)"
DAY_MS = 86_400_000


@bp.get("/item")
@require("view")
def item() -> Any:
    now = int(time.time() * 1000)
    conn = get_db()
    summary = store.summary(conn, now - DAY_MS, now + 1)
    # The item reads only the store; while the refresher cannot get new data from QRadar, say so, so the
    # counts are not taken for current.
    status = refresher.status(conn)
    stale = None
    if status["last_error"] and status["consecutive_failures"]:
        last_ok = status["last_refresh_ms"]
        stale = {
            "error": status["last_error"],
            "since": datetime.fromtimestamp(last_ok / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
            if last_ok
            else None,
        }
    html = render_template(
        "dashboard/item.html",
        summary=summary,
        platforms=PLATFORMS,
        stale=stale,
        self_check=selfcheck.status(conn)["problems"],
        initiators=store.top_initiators(conn, now - DAY_MS, now + 1),
        tab_url=console_url("tab.index") or "",
        playbook_url=console_url("playbook.index") or "",
    )
    return jsonify({"id": ITEM_ID, "title": ITEM_TITLE, "HTML": html})
