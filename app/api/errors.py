"""JSON errors: ``{"error": {"status", "code", "message", "field"?}}`` — never HTML, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from app.qradar.errors import QRadarError, QRadarUnavailable

log = logging.getLogger(__name__)

# Werkzeug's exception names → stable snake_case codes clients can switch on.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal_error",
    501: "not_implemented",
    502: "bad_gateway",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise from any view to answer with a JSON error."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        super().__init__(message)


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    body: dict = {"status": status, "code": code, "message": message}
    if field is not None:
        body["field"] = field
    response = jsonify({"error": body})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH") or 0
            return error_response(413, "request_too_large", f"request body is larger than {limit} bytes")
        response = error_response(status, HTTP_CODES.get(status, "http_error"), exc.description or exc.name)
        if status == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(QRadarUnavailable)
    def _qradar_unavailable(exc: QRadarUnavailable) -> Response:
        log.warning("QRadar unavailable: %s", exc)
        return error_response(503, "qradar_unavailable", f"QRadar is not reachable right now: {exc}")

    @app.errorhandler(QRadarError)
    def _qradar_error(exc: QRadarError) -> Response:
        log.warning("QRadar error: %s", exc)
        status = exc.http_status if exc.http_status in (401, 403, 404, 409, 422) else 502
        return error_response(status, "qradar_error", f"QRadar said: {exc.message}")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; details are in the app log")
