"""Build the OpenAPI 3.0 document from the core paths and every registered feature's ``api`` module."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}


def _contributions(module_names: Iterable[str]) -> list[tuple[str, dict, dict]]:
    found = []
    for name in module_names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # this feature has no JSON API
            raise
        paths = getattr(module, "OPENAPI_PATHS", None)
        if paths:
            found.append((name, dict(paths), dict(getattr(module, "OPENAPI_SCHEMAS", {}) or {})))
    return found


def build_document(title: str, version: str, features: Iterable[str]) -> dict[str, Any]:
    modules = ["app.auth", "app.api.views"] + [f"app.{feature}.api" for feature in features]
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for module, module_paths, module_schemas in _contributions(modules):
        for path, item in module_paths.items():
            if path in paths:
                raise RuntimeError(f"OpenAPI path {path} is described twice (again by {module})")
            paths[path] = item
        for name, schema in module_schemas.items():
            if name in schemas and schemas[name] != schema:
                raise RuntimeError(f"OpenAPI schema {name} is defined differently by {module}")
            schemas[name] = schema
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": 'JSON API of Cloud Account Watch. Errors: {"error": {status, code, '
            "message, field?}}. Lists: {items, total} with limit/offset/sort. "
            "Unsafe methods need the QRadarCSRF header equal to the QRadarCSRF cookie.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
        },
    }


# -- helpers for the features' OPENAPI_PATHS --------------------------------------------------------------

JSON = "application/json"
ERROR_RESPONSE = {"$ref": "#/components/responses/Error"}


def errors(*statuses: int) -> dict[str, Any]:
    """Responses for ``statuses``, each the shared JSON error."""
    return {str(status): ERROR_RESPONSE for status in statuses}


def ok(description: str, schema: dict[str, Any] | None = None, media_type: str = JSON) -> dict[str, Any]:
    """A success response, with its body's schema when it has one."""
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    return response


def list_of(item_schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of a ``{"items": [...], "total": N}`` list answer."""
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item_schema}, "total": {"type": "integer"}},
    }


def query(name: str, schema: dict[str, Any] | str = "string", description: str = "") -> dict[str, Any]:
    """An optional query parameter (``schema`` may be just a type name)."""
    parameter: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": schema} if isinstance(schema, str) else schema,
    }
    if description:
        parameter["description"] = description
    return parameter


def path(name: str, kind: str = "integer") -> dict[str, Any]:
    """A path parameter (``{name}`` in the route)."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


PAGING = [
    query("limit", "integer", "page size"),
    query("offset", "integer", "first item"),
    query("sort", "string", "field, '-' prefix for descending"),
]
