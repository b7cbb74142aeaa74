"""Tuning: allowlist presets and entries, preview, two-person approval, suppression, audit, QRadar
reference-data sync and import/export. See api.py for the routes and suppress.py for the refresher hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Blueprint


def blueprints() -> list[Blueprint]:
    """This feature's Flask blueprints (imported here, not at package import: see `app.features`)."""
    from app.tuning.api import bp

    return [bp]
