"""Offense Summary fragment and the OffenseSummaryToolbar GUI action (see views.py for the manifest)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Blueprint


def blueprints() -> list[Blueprint]:
    """This feature's Flask blueprints (imported here, not at package import: see `app.features`)."""
    from app.offense import views

    return [views.bp]
