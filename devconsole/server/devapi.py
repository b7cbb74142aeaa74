"""``/devconsole/...``: the dev console's own admin endpoints (fault injection, store delay, health)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from devconsole.server.context import console
from devconsole.server.errors import CODE_BAD_PARAMETER, CODE_FORBIDDEN, CODE_UNAUTHORIZED, error_response
from devconsole.storedelay import delay_from_json

STORE_DELAY_FIELDS = (
    "lag_seconds",
    "jitter_seconds",
    "burst_probability",
    "burst_window_seconds",
    "burst_seconds",
    "seed",
)

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
        return error_response(403, CODE_FORBIDDEN, "Only the admin user may switch faults and store delays")
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


@bp.get("/store_delay")
def get_store_delay() -> Response:
    store = console().store
    return jsonify({"delays": store.store_delays(), "pending": store.pending_events()})


@bp.post("/store_delay")
def post_store_delay() -> Response:
    """``{"action": "set", "log_source_id": N, "lag_seconds", "jitter_seconds", "burst_probability",
    "burst_window_seconds", "burst_seconds", "seed"}``, ``{"action": "release"[, "log_source_id": N]}``
    (held events become searchable now) or ``{"action": "clear"}`` (no delay for new events)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error_response(
            400,
            1001,
            'The body must be a JSON object, e.g. {"action": "set", "log_source_id": 3, "lag_seconds": 60}',
        )
    store = console().store
    action = body.get("action", "set")
    try:
        if action == "set":
            unknown = set(body) - {"action", "log_source_id", *STORE_DELAY_FIELDS}
            if unknown:
                raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
            log_source_id = body.get("log_source_id")
            if not isinstance(log_source_id, int) or isinstance(log_source_id, bool):
                raise ValueError("log_source_id must be an integer")
            store.set_store_delay(log_source_id, delay_from_json(body))
            released = None
        elif action == "release":
            log_source_id = body.get("log_source_id")
            if log_source_id is not None and (
                not isinstance(log_source_id, int) or isinstance(log_source_id, bool)
            ):
                raise ValueError("log_source_id must be an integer")
            released = store.release_pending(logsourceid=log_source_id)
        elif action == "clear":
            store.clear_store_delays()
            released = None
        else:
            raise ValueError(f"unknown action {action!r}; expected set, release or clear")
    except (ValueError, TypeError) as exc:
        return error_response(422, CODE_BAD_PARAMETER, str(exc))
    answer = {"delays": store.store_delays(), "pending": store.pending_events()}
    if released is not None:
        answer["released"] = released
    return jsonify(answer)
