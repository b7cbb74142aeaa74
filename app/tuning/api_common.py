"""What every tuning route module shares: the ``tuning_api`` blueprint, the user as a tuning `Actor`, the
write transaction, the reference-data push after a change, and the OpenAPI operation shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from app.api.openapi import errors, ok
from app.api.schema import Body
from app.auth import current_user
from app.qradar import get_gateway
from app.store.db import get_db, now_ms, transaction
from app.tuning import approval, refsync
from app.tuning.approval import Actor
from app.tuning.entries import TuningError

bp = Blueprint("tuning_api", __name__, url_prefix="/api/tuning")


@bp.errorhandler(TuningError)
def _tuning_error(exc: TuningError) -> Response:
    body: dict[str, Any] = {"error": {"status": exc.status, "code": exc.code, "message": exc.message}}
    if exc.field is not None:  # "" is a field name too (a client may send one)
        body["error"]["field"] = exc.field
    body.update(exc.extra)
    response = jsonify(body)
    response.status_code = exc.status
    return response


def actor() -> Actor:
    user = current_user()
    return Actor(name=user.name, can_tune=user.can_tune(), is_admin=user.is_admin, user_id=user.user_id)


def shown(entry: dict[str, Any], conn: Any = None) -> dict[str, Any]:
    """An entry as the API shows it: with what of it is in force until when, and whether QRadar's
    reference set mirrors it."""
    conn = conn or get_db()
    at = now_ms()
    reference_set = refsync.collection_names(conn)["reference_set"]
    return {
        **entry,
        "in_force": approval.in_force(entry, at),
        "mirror": refsync.mirror(entry, reference_set, at),
    }


def after_change() -> dict[str, Any] | None:
    """Bring QRadar's reference set/map in step (best effort: a QRadar fault is recorded, not raised)."""
    if not current_app.config.get("TUNING_AUTO_REFSYNC", True):
        return None
    conn = get_db()
    try:
        result = refsync.sync(conn, get_gateway(), now_ms())
    finally:
        if conn.in_transaction:
            conn.commit()
    return {"status": result["status"], **({"error": result["error"]} if "error" in result else {})}


def write(work: Callable[[Any], Any]) -> Any:
    """``work(conn)`` in one write transaction."""
    conn = get_db()
    with transaction(conn):
        return work(conn)


def op(
    summary: str,
    *,
    body: Body | None = None,
    ok_status: str = "200",
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One tuning operation: a JSON object answer, the shared errors, the body's published schema."""
    operation: dict[str, Any] = {
        "tags": ["tuning"],
        "summary": summary,
        "responses": {ok_status: ok("OK", {"type": "object"}), **errors(400, 401, 403, 404, 409)},
    }
    if body is not None:
        operation["requestBody"] = body.request_body()
    if params:
        operation["parameters"] = params
    return operation
