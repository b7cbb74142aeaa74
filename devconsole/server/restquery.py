"""QRadar REST list conventions: ``filter``, ``fields``, ``sort`` query parameters and the ``Range`` header.

The ``filter`` grammar is the subset QRadar documents for its list endpoints (``=``, ``!=``, ``<``,
``<=``, ``>``, ``>=``, ``in``, ``between``, ``is [not] null``, ``and``, ``or``, ``not``, parentheses,
dotted names into nested objects), parsed with lark and evaluated over the JSON objects an endpoint
returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Response, request
from lark import Lark, Token, Transformer, exceptions

from devconsole.server.errors import CODE_BAD_PARAMETER, CODE_BAD_RANGE, ApiError

_FILTER_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*   -> or_
?and_expr: not_expr (_AND not_expr)* -> and_
?not_expr: _NOT not_expr -> not_
         | atom
?atom: "(" or_expr ")"
     | field OP value                               -> compare
     | field _IN "(" value ("," value)* ")"        -> in_
     | field _NOT _IN "(" value ("," value)* ")"   -> not_in
     | field _IS _NULL                              -> is_null
     | field _IS _NOT _NULL                         -> not_null
     | field _BETWEEN value _AND value              -> between
field: NAME
value: SIGNED_NUMBER -> number
     | ESCAPED_STRING -> dq_string
     | SQ_STRING -> sq_string
     | NAME -> bare
     | BAREWORD -> bare
OP: "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">"
_OR.2: /or\b/i
_AND.2: /and\b/i
_NOT.2: /not\b/i
_IN.2: /in\b/i
_IS.2: /is\b/i
_NULL.2: /null\b/i
_BETWEEN.2: /between\b/i
NAME: /[A-Za-z_][A-Za-z0-9_.]*/
BAREWORD: /[A-Za-z0-9_.:\/@*+\-]+/
SQ_STRING: /'(?:[^']|'')*'/
%import common.ESCAPED_STRING
%import common.SIGNED_NUMBER
%import common.WS
%ignore WS
"""

_filter_parser = Lark(_FILTER_GRAMMAR, parser="earley", lexer="dynamic")

_MISSING = object()


def _lookup(item: Any, dotted: str) -> Any:
    value = item
    for part in dotted.split("."):
        if isinstance(value, dict):
            if part not in value:
                return _MISSING
            value = value[part]
        elif isinstance(value, list):
            # a dotted name into a list matches if any element matches; collect the values
            collected = [v.get(part, None) for v in value if isinstance(v, dict)]
            value = collected
        else:
            return _MISSING
    return value


def _coerce_equal(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, list):
        return any(_coerce_equal(a, wanted) for a in actual)
    if isinstance(actual, bool):
        return str(wanted).lower() == str(actual).lower()
    if isinstance(actual, (int, float)) and not isinstance(wanted, (int, float)):
        try:
            return float(actual) == float(wanted)
        except (TypeError, ValueError):
            return False
    if isinstance(wanted, (int, float)) and isinstance(actual, str):
        return actual == str(wanted)
    return actual == wanted


def _order(actual: Any, wanted: Any, op: str) -> bool:
    if actual is None or isinstance(actual, (list, dict)):
        return False
    try:
        if isinstance(actual, (int, float)):
            left, right = float(actual), float(wanted)
        else:
            left, right = str(actual), str(wanted)
    except (TypeError, ValueError):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


class _Compile(Transformer):
    """Turns the parse tree into a predicate over one JSON object."""

    def __init__(self, known: Callable[[str], bool]) -> None:
        super().__init__()
        self.known = known

    def field(self, children: list[Token]) -> str:
        name = str(children[0])
        if not self.known(name):
            raise ApiError(422, CODE_BAD_PARAMETER, f"The filter names an unknown field '{name}'")
        return name

    def number(self, children: list[Token]) -> Any:
        text = str(children[0])
        return float(text) if any(c in text for c in ".eE") else int(text)

    def dq_string(self, children: list[Token]) -> str:
        return json.loads(str(children[0]))

    def sq_string(self, children: list[Token]) -> str:
        return str(children[0])[1:-1].replace("''", "'")

    def bare(self, children: list[Token]) -> str:
        return str(children[0])

    def compare(self, children: list) -> Callable[[Any], bool]:
        name, op, wanted = children[0], str(children[1]), children[2]

        def test(item: Any) -> bool:
            actual = _lookup(item, name)
            if actual is _MISSING:
                return False
            if op == "=":
                return _coerce_equal(actual, wanted)
            if op in ("!=", "<>"):
                return not _coerce_equal(actual, wanted)
            return _order(actual, wanted, op)

        return test

    def in_(self, children: list) -> Callable[[Any], bool]:
        name, values = children[0], children[1:]
        return lambda item: any(_coerce_equal(_lookup(item, name), v) for v in values)

    def not_in(self, children: list) -> Callable[[Any], bool]:
        test = self.in_(children)
        return lambda item: not test(item)

    def is_null(self, children: list) -> Callable[[Any], bool]:
        name = children[0]
        return lambda item: _lookup(item, name) in (None, _MISSING)

    def not_null(self, children: list) -> Callable[[Any], bool]:
        name = children[0]
        return lambda item: _lookup(item, name) not in (None, _MISSING)

    def between(self, children: list) -> Callable[[Any], bool]:
        name, low, high = children
        return lambda item: _order(_lookup(item, name), low, ">=") and _order(_lookup(item, name), high, "<=")

    def and_(self, children: list) -> Callable[[Any], bool]:
        return lambda item: all(test(item) for test in children)

    def or_(self, children: list) -> Callable[[Any], bool]:
        return lambda item: any(test(item) for test in children)

    def not_(self, children: list) -> Callable[[Any], bool]:
        test = children[0]
        return lambda item: not test(item)


def compile_filter(text: str, known: Callable[[str], bool]) -> Callable[[Any], bool]:
    """A predicate for a QRadar ``filter`` expression; ApiError 422/1005 naming the problem otherwise."""
    try:
        tree = _filter_parser.parse(text)
    except exceptions.UnexpectedInput as exc:
        raise ApiError(
            422, CODE_BAD_PARAMETER, f"The filter '{text}' could not be parsed at column {exc.column}"
        ) from None
    except exceptions.LarkError:
        raise ApiError(422, CODE_BAD_PARAMETER, f"The filter '{text}' could not be parsed") from None
    try:
        return _Compile(known).transform(tree)
    except exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, ApiError):
            raise exc.orig_exc from None
        raise


# --- fields -----------------------------------------------------------------------------------------


def parse_fields(text: str) -> dict[str, dict | None]:
    """``id,name,log_sources(id,name)`` -> {"id": None, "name": None, "log_sources": {"id": None, ...}}."""
    pos = 0

    def parse_list() -> dict[str, dict | None]:
        nonlocal pos
        result: dict[str, dict | None] = {}
        while True:
            start = pos
            while pos < len(text) and text[pos] not in ",()":
                pos += 1
            name = text[start:pos].strip()
            if not name:
                raise ApiError(
                    422, CODE_BAD_PARAMETER, f"The fields parameter '{text}' is malformed near position {pos}"
                )
            sub = None
            if pos < len(text) and text[pos] == "(":
                pos += 1
                sub = parse_list()
                if pos >= len(text) or text[pos] != ")":
                    raise ApiError(422, CODE_BAD_PARAMETER, f"The fields parameter '{text}' misses a ')'")
                pos += 1
            result[name] = sub
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            return result

    spec = parse_list()
    if pos != len(text):
        raise ApiError(
            422, CODE_BAD_PARAMETER, f"The fields parameter '{text}' is malformed near position {pos}"
        )
    return spec


def project(item: Any, spec: dict[str, dict | None]) -> Any:
    if isinstance(item, list):
        return [project(x, spec) for x in item]
    if not isinstance(item, dict):
        return item
    out = {}
    for name, sub in spec.items():
        if name not in item:
            raise ApiError(422, CODE_BAD_PARAMETER, f"The fields parameter names an unknown field '{name}'")
        out[name] = project(item[name], sub) if sub else item[name]
    return out


# --- Range -----------------------------------------------------------------------------------------


def parse_range(header: str | None) -> tuple[int, int] | None:
    """``items=x-y`` (zero-based, inclusive) -> (x, y); None when absent; 422/36 when malformed."""
    if header is None or header.strip() == "":
        return None
    text = header.strip()
    bad = ApiError(
        422,
        CODE_BAD_RANGE,
        "Failed to parse Range header. The syntax of the Range header must follow this pattern: items=x-y",
        details={"Range": header},
    )
    if not text.startswith("items="):
        raise bad
    low, sep, high = text[len("items=") :].partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise bad
    start, end = int(low), int(high)
    if start > end:
        raise bad
    return start, end


def apply_range(items: list, rng: tuple[int, int] | None) -> tuple[list, str | None]:
    """Slice ``items`` by an inclusive range; returns (page, Content-Range header value or None)."""
    total = len(items)
    if rng is None:
        return items, None
    start, end = rng
    page = items[start : end + 1]
    if not page:
        return page, f"items */{total}"
    return page, f"items {start}-{start + len(page) - 1}/{total}"


# --- sort ------------------------------------------------------------------------------------------


def apply_sort(items: list[dict], text: str, known: Callable[[str], bool]) -> list[dict]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    for key in reversed(keys):
        descending = key.startswith("-")
        name = key.lstrip("+-")
        if not known(name):
            raise ApiError(422, CODE_BAD_PARAMETER, f"The sort parameter names an unknown field '{name}'")
        present = [i for i in items if i.get(name) is not None]
        absent = [i for i in items if i.get(name) is None]
        present.sort(key=lambda i, n=name: i[n], reverse=descending)
        items = present + absent
    return items


def list_response(
    items: list[dict], default_fields: list[str] | None = None, filter_code: int = CODE_BAD_PARAMETER
) -> Response:
    """Apply filter, sort, Range and fields from the current request, as QRadar list endpoints do.

    ``filter_code`` is the endpoint's code for an invalid filter (1005 mostly; 1010 where API 26.0 says so).
    """
    sample_keys: set[str] = set()
    for item in items[:1]:
        sample_keys = set(item)

    def known(name: str) -> bool:
        return not items or name.split(".")[0] in sample_keys

    filter_text = request.args.get("filter")
    if filter_text:
        try:
            predicate = compile_filter(filter_text, known)
        except ApiError as exc:
            exc.code = filter_code
            raise
        items = [item for item in items if predicate(item)]
    sort_text = request.args.get("sort")
    if sort_text:
        items = apply_sort(items, sort_text, known)
    page, content_range = apply_range(items, parse_range(request.headers.get("Range")))
    fields_text = request.args.get("fields")
    if fields_text:
        page = project(page, parse_fields(fields_text))
    elif default_fields:
        page = [{k: item[k] for k in default_fields if k in item} for item in page]
    response = Response(json.dumps(page), mimetype="application/json")
    if content_range:
        response.headers["Content-Range"] = content_range
    return response


def object_response(item: dict, status: int = 200) -> Response:
    fields_text = request.args.get("fields")
    if fields_text:
        item = project(item, parse_fields(fields_text))
    return Response(json.dumps(item), status=status, mimetype="application/json")
