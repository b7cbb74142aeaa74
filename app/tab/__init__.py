"""The console tab: pages (views), CSV export, the overview aggregation and deep links."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Blueprint


def blueprints() -> list[Blueprint]:
    """This feature's Flask blueprints (imported here, not at package import: see `app.features`)."""
    from app.tab import export, links, overview, views

    return [views.bp, export.bp, overview.bp, links.bp]
