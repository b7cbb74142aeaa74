"""``/devconsole/...``: the dev console's own admin endpoints (fault injection, health)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from devconsole.server.context import console
from devconsole.server.errors import CODE_BAD_PARAMETER, CODE_FORBIDDEN, CODE_UNAUTHORIZED, error_response

bp = Blueprint("devapi", __name__, url_prefix="/devconsole")


@bp.before_request
def require_admin() -> Response | None:
    if request.endpoint == "devapi.health":
        return None
    token = request.headers.get("SEC") or request.cookies.get("SEC")
    user = console().tokens.user_for(token)
    if user is None:
        return error_response(401, CODE_UNAUTHORIZED, "Send the admin token in the SEC header")
    if user.username != "admin":
        return error_response(403, CODE_FORBIDDEN, "Only the admin user may switch faults")
    return None


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok", "app_id": console().config.app_id})


@bp.get("/faults")
def get_faults() -> Response:
    return jsonify(console().faults.state())


@bp.post("/faults")
def post_faults() -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error_response(
            400,
            1001,
            "The body must be a JSON object, e.g. "
            '{"action": "add", "kind": "error", "path": "/api/ariel/searches*"}',
        )
    try:
        return jsonify(console().faults.apply(body))
    except (ValueError, TypeError) as exc:
        return error_response(422, CODE_BAD_PARAMETER, str(exc))


@bp.delete("/faults")
def delete_faults() -> Response:
    console().faults.clear()
    return jsonify(console().faults.state())
