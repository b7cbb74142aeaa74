"""Ariel REST endpoints: searches, results, databases, the AQL validator."""

from __future__ import annotations

import csv
import io
import json
import re

from flask import Response, request

from devconsole.aql.compiler import DATABASES, EVENT_FIELDS, FLOW_FIELDS, VIRTUAL_EVENT_FIELDS
from devconsole.searches import RUNNING, Search, SearchIdInUse, SearchNotFound
from devconsole.server.api import bp, require
from devconsole.server.context import console, current_user, get_db
from devconsole.server.errors import (
    CODE_AQL,
    CODE_BAD_PARAMETER,
    CODE_CONFLICT,
    CODE_NOT_FOUND,
    CODE_NOT_READY,
    ApiError,
)
from devconsole.server.restquery import apply_range, list_response, parse_range

MAX_PREFER_WAIT_SECONDS = 600

# Ariel value kinds of the AQL engine -> the column's argument_type in /api/ariel/databases/{name}.
_ARGUMENT_TYPES = {"num": "NUMERIC", "str": "STRING", "bytes": "BINARY", "bool": "BOOLEAN", "list": "ARRAY"}
_IP_COLUMNS = frozenset({"sourceip", "destinationip", "identityip"})
_NON_NULL = frozenset({"starttime", "endtime", "devicetime", "qid", "category", "highlevelcategory"})


def _columns(fields: dict[str, str], provider: str) -> list[dict]:
    return [
        {
            "name": name,
            "argument_type": "IP" if name in _IP_COLUMNS else _ARGUMENT_TYPES.get(kind, "STRING"),
            "object_value_type": "IP" if name in _IP_COLUMNS else _ARGUMENT_TYPES.get(kind, "STRING"),
            "indexable": name == "starttime",
            "nullable": name not in _NON_NULL,
            "provider_name": provider,
        }
        for name, kind in fields.items()
    ]


def aql_error(exc: Exception) -> ApiError:
    """422/2000 with the engine's message (it names the problem and where)."""
    message = getattr(exc, "message", None) or str(exc)
    line, column = getattr(exc, "line", None), getattr(exc, "column", None)
    details = {}
    if line is not None:
        details = {"line": line, "column": column}
    return ApiError(422, CODE_AQL, message, "The AQL query could not be parsed or is not supported.", details)


def _query_expression() -> str:
    text = request.values.get("query_expression")
    if text is None and request.is_json:
        raise ApiError(
            422,
            CODE_BAD_PARAMETER,
            "query_expression must be sent as a query parameter or a form-urlencoded body, not JSON",
        )
    if text is None:
        if request.values.get("saved_search_id") is not None:
            raise ApiError(404, CODE_NOT_FOUND, "The saved search does not exist.")
        raise ApiError(422, CODE_BAD_PARAMETER, "Missing required parameter 'query_expression'")
    if not text.strip():
        raise ApiError(422, CODE_BAD_PARAMETER, "Parameter 'query_expression' is empty")
    return text


def _owned_search(search_id: str) -> Search:
    try:
        search = console().searches.get(search_id)
    except SearchNotFound:
        raise ApiError(404, CODE_NOT_FOUND, f"The search {search_id} does not exist.") from None
    user = current_user()
    if search.owner != user.username and not user.has_capability("ADMIN"):
        raise ApiError(404, CODE_NOT_FOUND, f"The search {search_id} does not exist.")
    return search


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


@bp.post("/ariel/searches")
def create_search() -> Response:
    require("EVENTVIEWER")
    aql = _query_expression()
    from devconsole.aql import AqlError  # imported late: the engine is optional until a search runs

    try:
        user = current_user()
        search, _reused = console().searches.create(
            aql, user.username, user.security_profile.visible_log_source_ids(get_db())
        )
    except AqlError as exc:
        raise aql_error(exc) from None
    except SearchIdInUse:
        raise ApiError(
            409,
            CODE_CONFLICT,
            "The search cannot be created. The requested search ID that was provided in the query"
            " expression is already in use. Please use a unique search ID (or allow one to be generated).",
            "The search ID is already in use.",
        ) from None
    response = _json(search.to_json(), 201)
    response.headers["Location"] = f"/api/ariel/searches/{search.search_id}"
    return response


@bp.get("/ariel/searches")
def list_searches() -> Response:
    require("EVENTVIEWER")
    user = current_user()
    ids = console().searches.list_ids(None if user.has_capability("ADMIN") else user.username)
    page, content_range = apply_range(ids, parse_range(request.headers.get("Range")))
    response = _json(page)
    if content_range:
        response.headers["Content-Range"] = content_range
    return response


_PREFER_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*(\d+)", re.IGNORECASE)


@bp.get("/ariel/searches/<search_id>")
def get_search(search_id: str) -> Response:
    search = _owned_search(search_id)
    prefer = request.headers.get("Prefer")
    if prefer:
        match = _PREFER_WAIT.search(prefer)
        if match is None:
            raise ApiError(
                422, CODE_BAD_PARAMETER, f"Prefer header '{prefer}' must look like wait=N (seconds)"
            )
        seconds = min(int(match.group(1)), MAX_PREFER_WAIT_SECONDS)
        search = console().searches.wait(search_id, seconds)
        # 206: the wait expired while the search is still running
        return _json(search.to_json(), 206 if search.status in RUNNING else 200)
    return _json(search.to_json())


@bp.post("/ariel/searches/<search_id>")
def update_search(search_id: str) -> Response:
    _owned_search(search_id)
    status = request.values.get("status")
    save = request.values.get("save_results")
    if status is None and save is None:
        raise ApiError(422, CODE_BAD_PARAMETER, "Give status=CANCELED or save_results=true")
    manager = console().searches
    if status is not None:
        # API 26.0: "The only accepted value is CANCELED" (qpylib's ArielSearch.cancel() sends CANCELLED);
        # with status given, save_results is "not checked and silently ignored".
        if status != "CANCELED":
            raise ApiError(
                422,
                CODE_BAD_PARAMETER,
                f"The status parameter '{status}' is not valid: the only accepted value is CANCELED",
                "A request parameter is not valid.",
            )
        manager.cancel(search_id)
    elif save is not None:
        if save != "true":
            raise ApiError(
                422,
                CODE_BAD_PARAMETER,
                f"The save_results parameter '{save}' is not valid: the only accepted value is true",
                "A request parameter is not valid.",
            )
        manager.save(search_id)
    return _json(manager.get(search_id).to_json())


@bp.delete("/ariel/searches/<search_id>")
def delete_search(search_id: str) -> Response:
    _owned_search(search_id)
    search = console().searches.delete(search_id)
    return _json(search.to_json(), 202)


@bp.get("/ariel/searches/<search_id>/results")
def search_results(search_id: str) -> Response:
    search = _owned_search(search_id)
    if search.status in RUNNING or search.rows is None:
        raise ApiError(
            404,
            CODE_NOT_READY,
            f"The search {search_id} is still running ({search.status}); results are not ready.",
        )
    if search.status == "ERROR":
        raise ApiError(404, CODE_NOT_READY, f"The search {search_id} ended in ERROR and has no results.")
    rng = parse_range(request.headers.get("Range"))
    page, content_range = apply_range(search.rows, rng)
    accept = request.accept_mimetypes.best_match(["application/json", "application/csv", "text/csv"])
    if accept in ("application/csv", "text/csv"):
        buffer = io.StringIO()
        columns = search.columns or (list(page[0]) if page else [])
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(page)
        response = Response(buffer.getvalue(), mimetype=accept)
    else:
        response = _json({search.database: page})
    if content_range:
        response.headers["Content-Range"] = content_range
    return response


@bp.get("/ariel/databases")
def databases() -> Response:
    require("EVENTVIEWER")
    # the databases the AQL engine queries: events, and flows (this console records no flows: it is empty)
    return list_response(list(DATABASES))


@bp.get("/ariel/databases/<name>")
def database(name: str) -> Response:
    require("EVENTVIEWER")
    if name not in DATABASES:
        raise ApiError(
            404, CODE_NOT_FOUND, f"The database '{name}' does not exist.", "The database does not exist."
        )
    if name == "flows":
        columns = _columns(FLOW_FIELDS, "Flow")
    else:
        virtual = {field: kind for field, (_sql, kind) in VIRTUAL_EVENT_FIELDS.items()}
        columns = _columns({**EVENT_FIELDS, **virtual}, "Event")
        for row in get_db().execute("SELECT name, value_type FROM custom_properties ORDER BY name"):
            columns.append(
                {
                    "name": row["name"],
                    "argument_type": row["value_type"],
                    "object_value_type": row["value_type"],
                    "indexable": False,
                    "nullable": True,
                    "provider_name": "Custom Property",
                }
            )
    return _json({"columns": columns})


@bp.post("/ariel/validators/aql")
def validate_aql() -> Response:
    require("EVENTVIEWER")
    aql = _query_expression()
    errors = console().searches.validate(aql)
    messages = []
    for err in errors:
        contexts = []
        if getattr(err, "line", None) is not None:
            contexts = [f"line {err.line}, column {err.column}"]
        messages.append(
            {
                "code": str(CODE_AQL),
                "contexts": contexts,
                "message": getattr(err, "message", None) or str(err),
                "severity": "ERROR",
            }
        )
    return _json({"error_messages": messages})
