"""QRadar's JSON error body, used by every /api error (and by the console proxy's own refusals).

Shape (aql-and-rest-api.md §3.4)::

    {"http_response": {"code": 422, "message": "..."}, "code": 2000, "message": "...",
     "description": "...", "details": {}}
"""

from __future__ import annotations

from flask import Response, jsonify

# The generic http_response messages QRadar sends per status. 401/403/422 are the ones QRadar consoles are
# seen to send; the others are ours.
HTTP_MESSAGES: dict[int, str] = {
    400: "The request was malformed",
    401: "You are unauthorized to access the requested resource.",
    403: "Your account is not authorized to access the requested resource",
    404: "We could not find the resource you requested.",
    405: "The HTTP method is not allowed for the requested resource",
    406: "The server cannot produce a representation acceptable to the client",
    409: "The request could not be completed due to a conflict with the current state of the resource",
    413: "The request body is too large",
    422: "The request was well-formed but was unable to be followed due to semantic errors",
    500: "Unexpected internal server error",
    502: "The app behind the console proxy did not answer",
    503: "The server is currently unavailable",
}

# Endpoint-independent codes. 18 (no/invalid SEC) and 26 (insufficient capabilities) are what QRadar
# consoles are reported to send; UNCONFIRMED against IBM documentation.
CODE_UNAUTHORIZED = 18
CODE_FORBIDDEN = 26
CODE_NOT_FOUND = 1002
CODE_NOT_READY = 1003
CODE_CONFLICT = 1004
CODE_BAD_PARAMETER = 1005
CODE_BAD_JSON = 1001
CODE_UNAVAILABLE = 1010
CODE_SERVER_ERROR = 1020
CODE_AQL = 2000
CODE_BAD_RANGE = 36
CODE_BAD_VERSION = 3  # UNCONFIRMED: the code a console sends for a Version it never had
# IBM documents 422 and "has been removed" for a removed version, not the unique code: 1005 (a request
# parameter is not valid) is UNCONFIRMED.
CODE_REMOVED_VERSION = 1005


class ApiError(Exception):
    """Raise from any /api view; rendered as QRadar's JSON error body."""

    def __init__(
        self, status: int, code: int, message: str, description: str = "", details: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.description = description
        self.details = details or {}


def error_body(
    status: int, code: int, message: str, description: str = "", details: dict | None = None
) -> dict:
    return {
        "http_response": {"code": status, "message": HTTP_MESSAGES.get(status, "Error")},
        "code": code,
        "message": message,
        "description": description,
        "details": details or {},
    }


def error_response(
    status: int, code: int, message: str, description: str = "", details: dict | None = None
) -> Response:
    response = jsonify(error_body(status, code, message, description, details))
    response.status_code = status
    return response


def api_error_response(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message, error.description, error.details)
