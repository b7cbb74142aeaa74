"""The /api blueprint's plumbing (faults, authentication, Version/Accept checks) and the small lookup
endpoints: API versions, current user and role, log source types, QID records, categories, tasks."""

from __future__ import annotations

import json
import re
import sqlite3

from flask import Blueprint, Response, g, request

from devconsole.server.context import console, current_user, get_db, token_from_request
from devconsole.server.errors import (
    CODE_BAD_PARAMETER,
    CODE_BAD_VERSION,
    CODE_FORBIDDEN,
    CODE_NOT_FOUND,
    CODE_REMOVED_VERSION,
    CODE_SERVER_ERROR,
    CODE_UNAUTHORIZED,
    CODE_UNAVAILABLE,
    ApiError,
    error_response,
)
from devconsole.server.restquery import list_response, object_response
from devconsole.users import ROLES, USERS, role_json, same_secret, user_json

bp = Blueprint("api", __name__, url_prefix="/api")

# API versions as IBM's table lists them for QRadar 7.5.0 UP12/13 (API 26.0): 24.0-26.0 supported, 23.x
# deprecated (answered with a Deprecated header), older versions removed (422 "... has been removed").
# /api/help/versions lists all of them with IBM's `deprecated` and `removed` booleans.
SUPPORTED_VERSIONS: tuple[str, ...] = ("24.0", "25.0", "26.0")
DEPRECATED_VERSIONS: tuple[str, ...] = ("23.0",)
REMOVED_VERSIONS: tuple[str, ...] = (
    "1.0", "2.0", "3.0", "4.0", "5.0", "5.1", "6.0", "7.0", "8.0", "8.1", "9.0", "9.1", "10.0",
    "10.1", "11.0", "12.0", "12.1", "13.0", "13.1", "14.0", "15.0", "16.0", "17.0", "18.0", "19.0",
    "20.0", "21.0", "22.0",
)  # fmt: skip
API_VERSIONS: tuple[str, ...] = REMOVED_VERSIONS + DEPRECATED_VERSIONS + SUPPORTED_VERSIONS
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def normalize_version(text: str) -> str | None:
    """``26`` / ``26.0`` -> ``26.0``; None for anything that is not a version this console knows."""
    if not re.fullmatch(r"\d{1,3}(\.\d{1,3})?", text):
        return None
    major, _, minor = text.partition(".")
    normalized = f"{int(major)}.{int(minor or 0)}"
    return normalized if normalized in API_VERSIONS else None


@bp.before_request
def before_api_request() -> Response | None:
    state = console()
    rule = state.faults.take(request.method, request.path)
    if rule is not None:
        if rule.kind == "error":
            return error_response(500, CODE_SERVER_ERROR, "Injected fault: an unexpected error occurred")
        if rule.kind == "unavailable":
            return error_response(503, CODE_UNAVAILABLE, "Injected fault: the Ariel server is unavailable")
        if rule.kind == "hang":
            state.faults.wait_hang(rule.hang_seconds)
            return error_response(503, CODE_UNAVAILABLE, "Injected fault: the request hung and timed out")
        if rule.kind == "expired_token":
            return error_response(401, CODE_UNAUTHORIZED, "The SEC token has expired or been revoked")

    token, source = token_from_request()
    if token is None:
        if source == "basic":
            return error_response(401, CODE_UNAUTHORIZED, "The BASIC authentication credentials are invalid")
        return error_response(
            401,
            CODE_UNAUTHORIZED,
            'No SEC header present in request. Please provide it via "SEC: token". You may also use BASIC '
            'authentication parameters if this host supports it. e.g. "Authorization: Basic base64Encoding"',
        )
    user = state.tokens.user_for(token)
    if user is None:
        return error_response(401, CODE_UNAUTHORIZED, "The SEC token is not valid for this console")
    g.user = user
    if source == "cookie" and request.method in UNSAFE_METHODS:
        # A browser session (SEC cookie) must echo the QRadarCSRF cookie as a header, as on QRadar.
        header = request.headers.get("QRadarCSRF", "")
        cookie = request.cookies.get("QRadarCSRF", "")
        if not cookie or not same_secret(cookie, header):
            return error_response(403, CODE_FORBIDDEN, "The QRadarCSRF header is missing or does not match")

    version = request.headers.get("Version")
    normalized = normalize_version(version.strip()) if version is not None else LATEST_VERSION
    if normalized is None:
        # A version the console never had; QRadar's status and code for it are UNCONFIRMED.
        return error_response(
            406,
            CODE_BAD_VERSION,
            f"Version '{version}' is not a valid API version. Supported versions: "
            f"{', '.join(SUPPORTED_VERSIONS)} (deprecated: {', '.join(DEPRECATED_VERSIONS)})",
        )
    if normalized in REMOVED_VERSIONS:
        # IBM's api-samples (08_RemovedVersion.py): 422 with a message saying the version "has been removed".
        return error_response(
            422,
            CODE_REMOVED_VERSION,
            f"Version {normalized} of the API has been removed. Supported versions: "
            f"{', '.join(SUPPORTED_VERSIONS)}",
            "The requested API version has been removed; endpoints cannot be called from it.",
        )
    g.api_version = normalized
    accept = request.accept_mimetypes
    if accept and not accept.best_match(["application/json", "application/csv", "text/csv"]):
        return error_response(
            406,
            CODE_BAD_PARAMETER,
            f"The Accept header '{request.headers.get('Accept')}' names no media type this "
            "endpoint produces (application/json)",
        )
    return None


@bp.after_request
def after_api_request(response: Response) -> Response:
    if g.get("api_version") in DEPRECATED_VERSIONS:
        # IBM: "Responses to deprecated endpoint requests include a Deprecated response header"; its value
        # is not documented (UNCONFIRMED).
        response.headers["Deprecated"] = "true"
    return response


def require(capability: str) -> None:
    user = current_user()
    if user is None or not user.has_capability(capability):
        raise ApiError(
            403,
            CODE_FORBIDDEN,
            f"User has insufficient capabilities to access this endpoint resource (needs {capability})",
        )


def bool_arg(name: str, default: bool = False) -> bool:
    value = request.args.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiError(422, CODE_BAD_PARAMETER, f"Parameter '{name}' must be true or false, not '{value}'")


# --- help ------------------------------------------------------------------------------------------


@bp.get("/help/versions")
def help_versions() -> Response:
    items = [
        {
            "id": index + 1,
            "version": version,
            "deprecated": version in DEPRECATED_VERSIONS or version in REMOVED_VERSIONS,
            "removed": version in REMOVED_VERSIONS,
            "root_resource_ids": [],
        }
        for index, version in enumerate(API_VERSIONS)
    ]
    return list_response(items)


# The console this stand-in plays: QRadar 7.5.0 Update Package 12 (API 26.0). The build number format is
# UNCONFIRMED.
SYSTEM_ABOUT = {
    "build_version": "7.5.0.20250101000000",
    "external_version": "7.5.0",
    "fips_enabled": False,
    "release_name": "7.5.0 UpdatePackage 12",
}


@bp.get("/system/about")
def system_about() -> Response:
    return object_response(dict(SYSTEM_ABOUT))


# --- who is asking ---------------------------------------------------------------------------------


@bp.get("/config/access/user_roles")
def user_roles() -> Response:
    user = current_user()
    if bool_arg("current_user_role"):
        return list_response([role_json(user.role)])
    require("ADMIN")
    return list_response([role_json(role) for role in ROLES.values()])


@bp.get("/config/access/user_roles/<int:role_id>")
def user_role(role_id: int) -> Response:
    user = current_user()
    if user.role.id != role_id:
        require("ADMIN")
    for role in ROLES.values():
        if role.id == role_id:
            return object_response(role_json(role))
    raise ApiError(404, CODE_NOT_FOUND, f"User role {role_id} does not exist")


@bp.get("/config/access/users")
def users() -> Response:
    user = current_user()
    if bool_arg("current_user"):
        return list_response([user_json(user)])
    require("ADMIN")
    return list_response([user_json(u) for u in USERS.values()])


# --- log sources, QIDs, categories ---------------------------------------------------------------

_LOG_SOURCE_TYPES_PATH = "/config/event_sources/log_source_management/log_source_types"


@bp.get(_LOG_SOURCE_TYPES_PATH)
def log_source_types() -> Response:
    rows = get_db().execute("SELECT id, name FROM log_source_types ORDER BY id").fetchall()
    items = [
        {
            "id": r["id"],
            "name": r["name"],
            "internal": r["id"] < 5000,
            "custom": r["id"] >= 5000,
            "version": "1.0",
            "uuid": None,
            "default_protocol_id": 0,
            "protocol_types": [],
            "supported_language_ids": [1],
            "log_source_extension_id": None,
        }
        for r in rows
    ]
    user = current_user()
    # Less-privileged callers get only id and name, as the reference notes.
    return list_response(items, None if user.has_capability("ADMIN") else ["id", "name"])


@bp.get(_LOG_SOURCE_TYPES_PATH + "/<int:type_id>")
def log_source_type(type_id: int) -> Response:
    row = get_db().execute("SELECT id, name FROM log_source_types WHERE id = ?", (type_id,)).fetchone()
    if row is None:
        raise ApiError(404, CODE_NOT_FOUND, f"Log source type {type_id} does not exist")
    return object_response({"id": row["id"], "name": row["name"]})


_LOG_SOURCES_PATH = "/config/event_sources/log_source_management/log_sources"


def _log_source_json(row: sqlite3.Row) -> dict[str, object]:
    return {
        "id": row["id"],
        "name": row["name"],
        "type_id": row["type_id"],
        "enabled": True,
        "description": "",
        "internal": False,
        # API 26.0's log source fields (as IBM's Ansible collection sends them): coalescing per log source.
        "coalesce_events": bool(row["coalesce_events"]),
        "store_event_payload": True,
    }


@bp.get(_LOG_SOURCES_PATH)
def log_sources() -> Response:
    rows = (
        get_db().execute("SELECT id, name, type_id, coalesce_events FROM log_sources ORDER BY id").fetchall()
    )
    return list_response([_log_source_json(r) for r in rows])


def _log_source_row(log_source_id: int) -> sqlite3.Row:
    row = (
        get_db()
        .execute("SELECT id, name, type_id, coalesce_events FROM log_sources WHERE id = ?", (log_source_id,))
        .fetchone()
    )
    if row is None:
        raise ApiError(404, CODE_NOT_FOUND, f"Log source {log_source_id} does not exist")
    return row


@bp.get(_LOG_SOURCES_PATH + "/<int:log_source_id>")
def log_source(log_source_id: int) -> Response:
    return object_response(_log_source_json(_log_source_row(log_source_id)))


@bp.post(_LOG_SOURCES_PATH + "/<int:log_source_id>")
def update_log_source(log_source_id: int) -> Response:
    """Update a log source; this console changes only ``coalesce_events`` (the path and the partial-body
    semantics follow API 26.0's log source update; UNCONFIRMED in detail). Events already stored keep
    their coalescing; the setting applies from the next ingest."""
    require("ADMIN")
    _log_source_row(log_source_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, CODE_BAD_PARAMETER, "The body must be a JSON object of log source fields")
    unknown = sorted(set(body) - {"id", "coalesce_events"})
    if unknown:
        raise ApiError(
            422, CODE_BAD_PARAMETER, f"This console cannot change log source fields: {', '.join(unknown)}"
        )
    if "id" in body and body["id"] != log_source_id:
        raise ApiError(422, CODE_BAD_PARAMETER, "The body's id does not match the log source in the path")
    if "coalesce_events" in body:
        if not isinstance(body["coalesce_events"], bool):
            raise ApiError(422, CODE_BAD_PARAMETER, "coalesce_events must be true or false")
        console().store.set_log_source_coalescing(log_source_id, body["coalesce_events"])
    return object_response(_log_source_json(_log_source_row(log_source_id)))


@bp.get("/data_classification/qid_records")
def qid_records() -> Response:
    rows = (
        get_db()
        .execute(
            "SELECT qid, name, description, severity, low_level_category_id, log_source_type_id"
            " FROM qid_records ORDER BY qid"
        )
        .fetchall()
    )
    items = [
        {
            "id": r["qid"],
            "qid": r["qid"],
            "name": r["name"],
            "description": r["description"],
            "severity": r["severity"],
            "low_level_category_id": r["low_level_category_id"],
            "log_source_type_id": r["log_source_type_id"],
        }
        for r in rows
    ]
    return list_response(items)


@bp.get("/data_classification/qid_records/<int:qid>")
def qid_record(qid: int) -> Response:
    r = (
        get_db()
        .execute(
            "SELECT qid, name, description, severity, low_level_category_id, log_source_type_id"
            " FROM qid_records WHERE qid = ?",
            (qid,),
        )
        .fetchone()
    )
    if r is None:
        raise ApiError(404, CODE_NOT_FOUND, f"QID record {qid} does not exist")
    return object_response(
        {
            "id": r["qid"],
            "qid": r["qid"],
            "name": r["name"],
            "description": r["description"],
            "severity": r["severity"],
            "low_level_category_id": r["low_level_category_id"],
            "log_source_type_id": r["log_source_type_id"],
        }
    )


@bp.get("/data_classification/low_level_categories")
def low_level_categories() -> Response:
    rows = (
        get_db()
        .execute("SELECT id, name, high_level_id FROM categories WHERE high_level_id IS NOT NULL ORDER BY id")
        .fetchall()
    )
    items = [
        {
            "id": r["id"],
            "name": r["name"],
            "description": r["name"],
            "severity": 5,
            "high_level_category_id": r["high_level_id"],
        }
        for r in rows
    ]
    return list_response(items)


@bp.get("/data_classification/high_level_categories")
def high_level_categories() -> Response:
    rows = (
        get_db().execute("SELECT id, name FROM categories WHERE high_level_id IS NULL ORDER BY id").fetchall()
    )
    return list_response([{"id": r["id"], "name": r["name"], "description": r["name"]} for r in rows])


@bp.get("/system/task_management/tasks/<int:task_id>")
def task(task_id: int) -> Response:
    found = console().tasks.get(task_id)
    if found is None:
        raise ApiError(404, CODE_NOT_FOUND, f"Task {task_id} does not exist")
    return Response(json.dumps(found), mimetype="application/json")
