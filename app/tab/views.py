"""The console tab's pages: detections (overview, table, detail panel), tuning and settings.

Pages are thin Jinja shells; the data comes from the JSON API through the scripts under static/js/.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, render_template

from app.api.urls import app_root
from app.auth import require
from app.detection import selfcheck
from app.kinds import KINDS
from app.store.db import get_db

bp = Blueprint("tab", __name__, url_prefix="/tab", template_folder="templates")


def page_config(section: str, **extra: Any) -> dict[str, Any]:
    """What the page scripts need to know: where the app lives and which section they are on."""
    return {"app_root": app_root("tab.index"), "section": section, **extra}


def self_check_notice() -> dict[str, Any]:
    """The self-check's findings for the page header (`tab/_self_check.html`), read from the store."""
    found = selfcheck.status(get_db())
    checked = found.get("checked_ms")
    found["checked_text"] = (
        datetime.fromtimestamp(checked / 1000, tz=UTC).strftime("checked %Y-%m-%d %H:%M UTC")
        if checked
        else None
    )
    return found


def render_page(template: str, section: str, **extra: Any) -> str:
    return render_template(
        template,
        section=section,
        page_config=page_config(section, **extra),
        kinds=KINDS,
        self_check=self_check_notice(),
    )


@bp.get("/")
@require("view")
def index() -> str:
    """Detections: overview for the window, the table, the detail panel and refresh status."""
    return render_page("tab/detections.html", "detections")


@bp.get("/tuning")
@require("view")
def tuning() -> str:
    """Presets, allowlist entries with live preview, the approval queue and the audit log."""
    # The account kinds catalogue (app/kinds.py, passed by render_page) fills the target-type choices.
    return render_page("tab/tuning.html", "tuning")


@bp.get("/settings")
@require("admin")
def settings() -> str:
    """Admin-only settings (checked against the user's own QRadar role); others get 403 here and from
    the API, and the page's tab is hidden from them."""
    return render_page("tab/settings.html", "settings")
