"""Core JSON routes: ``/api/openapi.json`` and the admin settings endpoints."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from app import settings
from app.auth import current_user, require
from app.qradar import reset_gateway
from app.store.db import get_db

from .errors import ApiError
from .openapi import build_document, errors, ok
from .parsing import json_body
from .schema import Body, components

bp = Blueprint("api", __name__, url_prefix="/api")

# Keys and values are checked by app.settings against the registry GET /api/settings describes.
SETTINGS_CHANGES = Body(
    "SettingsChanges",
    {"type": "object", "description": "setting key → new value (see GET /api/settings for each one's kind)"},
)


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return build_document(
        "Cloud Account Watch", current_app.config["APP_VERSION"], current_app.config["FEATURES"]
    )


@bp.get("/settings")
@require("admin")
def get_settings() -> dict[str, Any]:
    return {"values": settings.all_values(), "settings": settings.describe()}


@bp.put("/settings")
@require("admin")
def put_settings() -> dict[str, Any]:
    changes = json_body(SETTINGS_CHANGES)
    try:
        values = settings.update(get_db(), changes, actor=current_user().name)
    except settings.SettingError as exc:
        raise ApiError(400, "bad_setting", exc.message, exc.key) from None
    if settings.GATEWAY_KEYS & set(changes):
        reset_gateway()
    return {"values": values, "settings": settings.describe()}


_settings_schema = {
    "type": "object",
    "properties": {
        "values": {"type": "object", "additionalProperties": True},
        "settings": {"type": "array", "items": {"$ref": "#/components/schemas/SettingInfo"}},
    },
}

OPENAPI_PATHS = {
    "/api/openapi.json": {
        "get": {"summary": "This document", "responses": {"200": ok("OpenAPI 3.0 document")}}
    },
    "/api/settings": {
        "get": {
            "summary": "All settings with their current values (admin)",
            "responses": {"200": ok("settings", _settings_schema), **errors(401, 403)},
        },
        "put": {
            "summary": "Change some settings (admin, audited); unknown keys and bad values → 400. A change to "
            "a tuning setting bumps the tuning settings version, as PUT /api/tuning/settings does",
            "requestBody": SETTINGS_CHANGES.request_body(),
            "responses": {"200": ok("settings after the change", _settings_schema), **errors(400, 403)},
        },
    },
}
OPENAPI_SCHEMAS = {
    **components(SETTINGS_CHANGES),
    "SettingInfo": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "kind": {"type": "string"},
            "default": {},
            "description": {"type": "string"},
            "minimum": {"type": "integer", "nullable": True},
            "maximum": {"type": "integer", "nullable": True},
        },
    },
}
