"""QRadar dashboard item and the Pulse Generic API JSON endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Blueprint


def blueprints() -> list[Blueprint]:
    """This feature's Flask blueprints (imported here, not at package import: see `app.features`)."""
    from app.dashboard import api, views

    return [views.bp, api.bp]
