"""``/api/gui_app_framework``: installing, authorizing, upgrading and uninstalling app zips (API 26.0).

=========================================================================  ===================================
``POST   /application_creation_task``  (body: the zip, application/zip)   201 task; 422 with 331xx/332xx/333xx
``GET    /application_creation_task/{application_id}``                     the task's status and errors
``POST   /application_creation_task/{application_id}?status=CANCELLED``    cancel an install in progress
``GET    /application_creation_task/{application_id}/auth``                the capabilities the app requests
``POST   /application_creation_task/{application_id}/auth`` {"user_id"}    grant them through that user
``GET    /applications``, ``GET /applications/{application_id}``           installed apps and their state
``PUT    /applications/{application_id}``  (body: the zip)                 upgrade in place
``DELETE /applications/{application_id}``                                  stop and remove (204)
=========================================================================  ===================================

Installing a zip whose uuid is already installed upgrades that app (its store is kept). Every call needs
an ADMIN user's token. The work itself is `devconsole.apps.installer`.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from devconsole.apps.installer import AppInstaller, InstalledApp
from devconsole.apps.package import InstallRefused
from devconsole.server import api
from devconsole.server.context import ManifestLoader, json_body
from devconsole.server.errors import CODE_BAD_PARAMETER, CODE_CONFLICT, CODE_NOT_FOUND, ApiError
from devconsole.users import USERS

bp = Blueprint("gui_app_framework", __name__, url_prefix="/api/gui_app_framework")
# The same authentication, Version and Accept checks as the rest of /api.
bp.before_request(api.before_api_request)
bp.after_request(api.after_api_request)

CODE_STATE_CONFLICT = (
    33006  # "The current state of the application instance does not allow the requested action"
)


def init_app(app: Flask) -> None:
    """Register the endpoints and the installer of this console (call after ``extensions['devconsole']``)."""
    app.extensions["devconsole_apps"] = AppInstaller(app.extensions["devconsole"], ManifestLoader)
    app.register_blueprint(bp)


def installer() -> AppInstaller:
    from flask import current_app

    return current_app.extensions["devconsole_apps"]


def _admin() -> None:
    api.require("ADMIN")


def _app(application_id: int) -> InstalledApp:
    found = installer().get(application_id)
    if found is None:
        raise ApiError(404, CODE_NOT_FOUND, f"The application identifier {application_id} could not be found")
    return found


def _refused(exc: InstallRefused) -> ApiError:
    status = 409 if exc.code == CODE_STATE_CONFLICT else 422
    if exc.code == CODE_BAD_PARAMETER:
        status = 422
    return ApiError(status, exc.code, exc.message)


def _zip_body() -> bytes:
    kind = (request.mimetype or "").lower()
    if kind and kind not in ("application/zip", "application/octet-stream", "application/x-zip-compressed"):
        raise ApiError(
            422,
            CODE_BAD_PARAMETER,
            f"Send the app zip as the request body with Content-Type application/zip, not {kind}",
        )
    return request.get_data()


def _application_json(app: InstalledApp) -> dict[str, Any]:
    container = installer().container(app.application_id)
    resident = container.resident_memory_mb() if container else None
    return {
        "application_state": {
            "application_id": str(app.application_id),
            "status": app.status,
            "error_message": app.errors[0]["message"] if app.errors and app.status == "ERROR" else None,
            "memory": app.memory_mb,
            "user_id": (app.grant or {}).get("user_id"),
        },
        "manifest": app.manifest,
        "security_profile_id": 1,
        # The dev console's own additions: where the copy runs and what it costs.
        "devconsole": {
            "port": app.port or None,
            "task_status": app.task_status,
            "zip_sha256": app.zip_sha256,
            "uploaded_at": app.uploaded_at,
            "running_at": app.running_at or None,
            "upload_to_running_s": round(app.running_at - app.uploaded_at, 2) if app.running_at else None,
            "resident_memory": resident,
            "app_root": str(container.root) if container else None,
            "python": str(container.venv / "bin" / "python") if container else None,
            "environment_file": str(container.run_dir / "environment.json") if container else None,
            "supervisord_pid": container.process.pid if container and container.process else None,
        },
    }


@bp.post("/application_creation_task")
def create_task() -> tuple[Response, int]:
    _admin()
    try:
        package = installer().read(_zip_body())
        app = installer().install(package)
    except InstallRefused as exc:
        raise _refused(exc) from None
    return jsonify(app.task_json()), 201


@bp.get("/application_creation_task/<int:application_id>")
def get_task(application_id: int) -> Response:
    _admin()
    return jsonify(_app(application_id).task_json())


@bp.post("/application_creation_task/<int:application_id>")
def update_task(application_id: int) -> Response:
    _admin()
    app = _app(application_id)
    status = request.args.get("status", "")
    if status.upper() not in ("CANCELLED", "CANCELED"):
        raise ApiError(
            422, CODE_BAD_PARAMETER, f"status must be CANCELLED to cancel the install, not '{status}'"
        )
    try:
        installer().cancel(app.application_id)
    except InstallRefused as exc:
        raise _refused(exc) from None
    return jsonify(app.task_json())


@bp.get("/application_creation_task/<int:application_id>/auth")
def get_auth(application_id: int) -> Response:
    _admin()
    app = _app(application_id)
    manifest = app.pending_manifest or app.manifest
    requested = app.requested_capabilities(manifest)
    if not requested:
        raise ApiError(404, CODE_NOT_FOUND, f"Application {application_id} requests no authorization")
    return jsonify(
        {
            "application_id": application_id,
            "capabilities": requested,
            "user_id": (app.grant or {}).get("user_id"),
            "status": app.task_status,
        }
    )


@bp.post("/application_creation_task/<int:application_id>/auth")
def post_auth(application_id: int) -> Response:
    _admin()
    app = _app(application_id)
    if not app.requested_capabilities(app.pending_manifest or app.manifest):
        raise ApiError(409, CODE_STATE_CONFLICT, f"Application {application_id} requests no authorization")
    body = json_body()
    user_id = body.get("user_id") if isinstance(body, dict) else None
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise ApiError(
            422, CODE_BAD_PARAMETER, 'Send {"user_id": <id of a user holding the requested capabilities>}'
        )
    user = next((u for u in USERS.values() if u.id == user_id and not u.is_service), None)
    if user is None:
        raise ApiError(422, CODE_BAD_PARAMETER, f"No user with id {user_id}")
    try:
        installer().authorize(application_id, user)
    except InstallRefused as exc:
        raise _refused(exc) from None
    return jsonify({"application_id": application_id, "user_id": user.id, "status": app.task_status})


@bp.get("/applications")
def list_applications() -> Response:
    _admin()
    return jsonify([_application_json(a) for a in installer().list()])


@bp.get("/applications/<int:application_id>")
def get_application(application_id: int) -> Response:
    _admin()
    return jsonify(_application_json(_app(application_id)))


@bp.put("/applications/<int:application_id>")
def upgrade_application(application_id: int) -> tuple[Response, int]:
    _admin()
    app = _app(application_id)
    try:
        package = installer().read(_zip_body(), except_uuid=app.uuid)
        if package.uuid != app.uuid:
            raise InstallRefused(
                33104, f"the zip's uuid {package.uuid} is not application {application_id}'s ({app.uuid})"
            )
        installer().install(package, upgrade_of=application_id)
    except InstallRefused as exc:
        raise _refused(exc) from None
    return jsonify(app.task_json()), 202


@bp.delete("/applications/<int:application_id>")
def delete_application(application_id: int) -> Response:
    _admin()
    app = _app(application_id)
    if app.task_status in ("CREATING", "UPGRADING", "STARTING"):
        raise ApiError(
            409,
            CODE_STATE_CONFLICT,
            f"Application {application_id} is {app.task_status}; try again when it ends",
        )
    started = time.monotonic()
    installer().uninstall(application_id)
    if installer().get(application_id) is not None:
        raise ApiError(409, CODE_CONFLICT, f"Application {application_id} could not be removed")
    response = Response(status=204)
    response.headers["X-Devconsole-Uninstall-Seconds"] = f"{time.monotonic() - started:.2f}"
    return response
