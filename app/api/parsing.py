"""Strict request parsing for the JSON API: bodies, field types, paging and sorting parameters."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import ApiError
from .schema import Body

SQLITE_INT_MIN, SQLITE_INT_MAX = -(2**63), 2**63 - 1
# QRadar offense ids are positive 32-bit ints (app.aql.offense's bound too).
MAX_OFFENSE_ID = 2**31 - 1
# No body the API reads nests deeper than a few levels; deeper JSON is refused before it is parsed (the
# parser, the schema check and `_fits_int64` all recurse, and Python's recursion limit is a 500).
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_nesting_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in ``raw`` (brackets inside strings do not count); a linear scan
    that never recurses, so it is safe on any input."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _fits_int64(value: Any) -> bool:
    """False when ``value`` holds (at any depth) an integer SQLite cannot store (an OverflowError, a 500)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return SQLITE_INT_MIN <= value <= SQLITE_INT_MAX
    if isinstance(value, list):
        return all(_fits_int64(item) for item in value)
    if isinstance(value, dict):
        return all(_fits_int64(item) for item in value.values())
    return True


def json_body(body: Body) -> Any:
    """The request's JSON object, validated against ``body``'s published schema (400 naming the field:
    app.api.schema): every body a view reads is one the OpenAPI document describes."""
    return body.validate(read_json_object())


def read_json_object() -> dict[str, Any]:
    """The request's JSON object as sent: JSON content type (415), size (413), an object (400), integers
    SQLite can store (400). Views use `json_body`; this is for one that must look at its path first."""
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)"
        )
    # A chunked body (no Content-Length) is cut off at MAX_CONTENT_LENGTH by Werkzeug without an error;
    # get_json would then call the truncated text "not valid JSON". Say what happened instead (413).
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.content_length is None and limit and len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge()
    if json_nesting_depth(request.get_data(cache=True)) > MAX_JSON_DEPTH:
        raise ApiError(400, "bad_json", f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "bad_json", "the request body is not valid JSON")
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the request body must be a JSON object")
    for name, value in data.items():
        if not _fits_int64(value):
            raise ApiError(
                400,
                "bad_field",
                f"{name} holds a number too large to store "
                f"(whole numbers must lie within {SQLITE_INT_MIN}..{SQLITE_INT_MAX})",
                name,
            )
    return data


def optional_json_body(body: Body) -> Any:
    """`json_body` when the request carries a body (declared or chunked); ``{}`` when it has none."""
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    return json_body(body) if request.content_length or chunked else {}


def int_arg(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be a whole number", name) from None
    # Values reach SQLite, whose integers are 64-bit: a larger one would overflow there (a 500).
    minimum = SQLITE_INT_MIN if minimum is None else max(minimum, SQLITE_INT_MIN)
    maximum = SQLITE_INT_MAX if maximum is None else min(maximum, SQLITE_INT_MAX)
    if value < minimum:
        raise ApiError(400, "bad_parameter", f"{name} must be at least {minimum}", name)
    if value > maximum:
        raise ApiError(400, "bad_parameter", f"{name} must be at most {maximum}", name)
    return value


def _digits(raw: str | None, max_digits: int) -> int | None:
    """A whole number written with ASCII digits only (no sign, no spaces inside); None otherwise."""
    text = (raw or "").strip()
    # isascii: str.isdigit() is also true for "²", which int() refuses (a 500 instead of a 400)
    if not (text.isascii() and text.isdigit()) or len(text) > max_digits:
        return None
    return int(text)


def offense_id(raw: str | None, field: str) -> int:
    """A QRadar offense id from a path segment or parameter; 400 ``bad_offense_id`` naming ``field``."""
    value = _digits(raw, 10)
    if value is None or not 0 < value <= MAX_OFFENSE_ID:
        raise ApiError(
            400, "bad_offense_id", f"{field} must be a QRadar offense id (1 to {MAX_OFFENSE_ID})", field
        )
    return value


def offense_id_arg(name: str) -> int | None:
    """The optional offense id query parameter ``name``; None when absent or empty."""
    raw = request.args.get(name, "").strip()
    return None if raw == "" else offense_id(raw, name)


def id_arg(name: str, maximum: int = SQLITE_INT_MAX) -> int | None:
    """An optional positive row id (a detection, an entry) as a query parameter; None when absent or empty."""
    raw = request.args.get(name, "").strip()
    if raw == "":
        return None
    value = _digits(raw, 19)
    if value is None or not 0 < value <= min(maximum, SQLITE_INT_MAX):
        raise ApiError(400, "bad_parameter", f"{name} must be a positive id (at most {maximum})", name)
    return value


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int
    sort: str | None
    descending: bool

    def order_by(self, columns: Mapping[str, str], default: str) -> str:
        """SQL ORDER BY text from a whitelist (API name → column); never user text."""
        column = columns[self.sort] if self.sort else default
        return f"{column} {'DESC' if self.descending else 'ASC'}"


def paging(
    default_limit: int = 50,
    max_limit: int = 500,
    sort_fields: Iterable[str] = (),
    default_sort: str | None = None,
) -> Paging:
    """``limit``/``offset``/``sort`` query parameters; ``sort=-field`` sorts descending."""
    limit = int_arg("limit", default_limit, 1, max_limit)
    offset = int_arg("offset", 0, 0)
    raw = request.args.get("sort") or default_sort
    descending, sort = False, None
    if raw:
        descending = raw.startswith("-")
        sort = raw.lstrip("-+")
        allowed = set(sort_fields)
        if sort not in allowed:
            raise ApiError(
                400,
                "bad_parameter",
                f"cannot sort by {sort!r}; sort by one of: {', '.join(sorted(allowed)) or 'nothing'}",
                "sort",
            )
    return Paging(limit, offset, sort, descending)


def list_response(items: list[Any], total: int) -> dict[str, Any]:
    return {"items": items, "total": total}
