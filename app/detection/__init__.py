"""Detection: payload identifiers (`extract`), classification (`classify`), attack chains (`chains`), record
builders (`records`), the event set (`eventset`), the refresh job (`refresher`, run by ``python -m
app.refresher``) and the JSON API (`api`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Blueprint


def blueprints() -> list[Blueprint]:
    """This feature's Flask blueprints (imported here, not at package import: see `app.features`)."""
    from app.detection import api

    return [api.bp]
