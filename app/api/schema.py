"""Request bodies checked against the very JSON Schemas the OpenAPI document publishes.

A feature declares each JSON body once, as a `Body` (a component name and its OpenAPI 3.0 schema). Its
``OPENAPI_SCHEMAS`` lists the bodies (`components`), its operations point at them (`Body.request_body`),
and its views read them with ``json_body(body)``, which validates against that same schema (compiled once
by fastjsonschema). What the document promises and what the views accept cannot drift apart.

A refused body is a 400 in the API's error contract, naming the field (``entries[2].platforms``):
``unknown_field`` for a field the schema does not list, ``missing_field`` for a required one that is
absent, ``bad_field`` for any other mismatch (type, enum, bounds, length).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import fastjsonschema

from .errors import ApiError

# OpenAPI 3.0 schema objects are JSON Schema draft 4 plus a few keywords; draft 4 is also the dialect in
# which 1.0 is not an integer (JSON has one number type; the API's whole numbers are written without a
# fraction).
DRAFT4 = "http://json-schema.org/draft-04/schema#"
_ANNOTATIONS = frozenset(
    {"nullable", "example", "description", "deprecated", "readOnly", "writeOnly", "externalDocs", "xml"}
)
_SCHEMA_MAPS = frozenset({"properties", "patternProperties"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf"})
_SUBSCHEMAS = frozenset({"items", "additionalProperties", "not"})


def json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema object as draft-4 JSON Schema: ``nullable`` becomes a ``null`` type (and a
    ``None`` enum member); annotations go. Body schemas are self-contained (``$ref`` is refused)."""
    if not isinstance(schema, Mapping):
        return schema
    if "$ref" in schema:
        raise ValueError("a request body schema must not use $ref; declare it whole")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [json_schema(sub) for sub in value]
        elif key in _SUBSCHEMAS:
            out[key] = json_schema(value)
        else:
            out[key] = value
    if schema.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@dataclass(frozen=True, eq=False)
class Body:
    """A JSON request body: ``name`` is its ``#/components/schemas/`` name, ``schema`` its OpenAPI schema."""

    name: str
    schema: Mapping[str, Any]
    required: bool = True

    @property
    def ref(self) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{self.name}"}

    def request_body(self) -> dict[str, Any]:
        """The operation's OpenAPI ``requestBody``, pointing at this schema."""
        return {"required": self.required, "content": {"application/json": {"schema": self.ref}}}

    @cached_property
    def _validate(self) -> Any:
        return fastjsonschema.compile(
            {"$schema": DRAFT4, **json_schema(self.schema)}, use_default=False, detailed_exceptions=True
        )

    def validate(self, data: Any) -> Any:
        """``data`` when it matches the schema; otherwise an ApiError (400) naming the field. An unknown
        field is named first, whatever else is wrong: a misspelt field must not hide behind the "missing
        field" it causes."""
        try:
            self._validate(data)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise (_unknown_field(self.schema, data, "") or _api_error(exc, data)) from None
        return data


def components(*bodies: Body) -> dict[str, Any]:
    """``OPENAPI_SCHEMAS`` entries for ``bodies``."""
    return {body.name: dict(body.schema) for body in bodies}


def _field_names(path: list[str], data: Any) -> tuple[str, str]:
    """(field, where) for a schema error's path: ``['data', 'window', 'days', '2']`` is the field
    ``window.days`` (the property a client fills in), at ``window.days[2]`` (for the message)."""
    field, where, node = "", "", data
    for key in path[1:]:
        if isinstance(node, list):
            where += f"[{key}]"
            node = node[int(key)] if key.isdigit() and int(key) < len(node) else None
        else:
            field = f"{field}.{key}" if field else key
            where = f"{where}.{key}" if where else key
            node = node.get(key) if isinstance(node, Mapping) else None
    return field, where


def _unknown_field(schema: Mapping[str, Any], data: Any, where: str) -> ApiError | None:
    """The first object (following ``properties`` down from the root) holding fields its schema does not
    list, as an ``unknown_field`` error; None when there is none."""
    if not isinstance(data, Mapping) or not isinstance(schema, Mapping):
        return None
    properties = schema.get("properties") or {}
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(data) - set(properties))
        if unknown:
            inside = f" in {where}" if where else ""
            message = f"unknown field(s){inside}: {', '.join(unknown)}"
            return ApiError(400, "unknown_field", message, _joined(where, unknown[0]))
    for name, sub in properties.items():
        if name in data:
            found = _unknown_field(sub, data[name], _joined(where, name))
            if found is not None:
                return found
    return None


def _joined(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _api_error(exc: fastjsonschema.JsonSchemaValueException, data: Any) -> ApiError:
    field, where = _field_names(list(exc.path or ["data"]), data)
    value, definition = exc.value, exc.definition or {}
    if exc.rule == "additionalProperties" and isinstance(value, Mapping):
        unknown = sorted(set(value) - set(definition.get("properties") or {}))
        if unknown:
            inside = f" in {where}" if where else ""
            message = f"unknown field(s){inside}: {', '.join(unknown)}"
            return ApiError(400, "unknown_field", message, _joined(field, unknown[0]))
    if exc.rule == "required" and isinstance(value, Mapping):
        missing = [name for name in exc.rule_definition or () if name not in value]
        if missing:
            return ApiError(
                400, "missing_field", f"{_joined(where, missing[0])} is required", _joined(field, missing[0])
            )
    message = exc.message
    if exc.name and message.startswith(exc.name):
        message = (where or "the body") + message[len(exc.name) :]
    return ApiError(400, "bad_field", message, field or "body")


# An operation that takes no input: no body, or an empty object (anything in it is an unknown field).
NO_INPUT = Body("NoInput", {"type": "object", "additionalProperties": False}, required=False)
