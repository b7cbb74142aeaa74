"""The response playbook: per-platform steps with filled commands, investigation guide, hunting queries,
validation guide with a coverage check, and the portable Sigma rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Blueprint


def blueprints() -> list[Blueprint]:
    """This feature's Flask blueprints (imported here, not at package import: see `app.features`)."""
    from app.playbook import api, views

    return [views.bp, api.bp]
