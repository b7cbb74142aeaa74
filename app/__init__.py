"""Cloud Account Watch — the Flask app factory.

``create_app(test_config=None)`` sets up, in the order the IBM samples use: config (unique session cookie
``session_<app_id>``, 1 MiB request limit, a secret key persisted in the store), logging (``qpylib.log``
inside QRadar → ``store/log/app.log``; ``logging`` to stderr outside), the ``Server`` header, the
``q_url_for`` Jinja global, the console theme, JSON error handlers, the store (migrations), the gateway
factory, CSRF and auth, ``/debug``, the JSON API, and the feature blueprints named in `FEATURES`. Every
setting is registered first (`app.features.register_settings`).

Serve it with ``gunicorn 'app:create_app()'`` from the repository root.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from flask import Flask, Response, has_request_context, jsonify, request, session
from flask import g as flask_g
from flask.sessions import SecureCookieSessionInterface
from werkzeug.routing import IntegerConverter

from app import features
from app.features import FEATURES
from app.qradar.transport import load_qpylib, qpylib_available

APP_DIR = Path(__file__).resolve().parent
ROOT_DIR = APP_DIR.parent
MAX_REQUEST_BYTES = 1024 * 1024
APP_DISPLAY_NAME = "Cloud Account Watch"
THEME_CLASSES = {"light": "cds--g10", "dark": "cds--g100"}  # QRadar passes ?ui=new&theme=light|dark

# Manifest entries whose feature has not landed yet answer "not yet available" from these views, so every
# manifest URL always routes to a real view: (feature, rule, endpoint name).
PLACEHOLDER_ROUTES = [
    ("tab", "/tab/", "tab_placeholder"),
    ("offense", "/offense/fragment/<offense_id>", "offense_fragment_placeholder"),
    ("offense", "/offense/playbook_action", "offense_playbook_placeholder"),
    ("dashboard", "/dashboard/item", "dashboard_item_placeholder"),
]

log = logging.getLogger("app")


def read_manifest() -> dict[str, Any]:
    return json.loads((ROOT_DIR / "manifest.json").read_text(encoding="utf-8"))


def app_id() -> int:
    """``QRADAR_APP_ID`` as an int; 0 outside QRadar (like qpylib.get_app_id)."""
    raw = os.environ.get("QRADAR_APP_ID", "").strip()
    return int(raw) if raw.isdigit() else 0


def _secret_key(store: Path) -> str:
    """A random key created once per store and shared by every worker (atomic create-or-read)."""
    path = store / "secret_key"
    if not path.exists():
        tmp = store / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        tmp.write_text(secrets.token_urlsafe(64), encoding="utf-8")
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # fails if another worker won the race; then use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text(encoding="utf-8").strip()


class _QpylibHandler(logging.Handler):
    """Forward ``logging`` records to ``qpylib.log`` (store/log/app.log, QRadar's log format)."""

    def __init__(self, qpylib: Any) -> None:
        super().__init__()
        self.qpylib = qpylib

    def emit(self, record: logging.LogRecord) -> None:
        level = "EXCEPTION" if record.exc_info and record.levelno >= logging.ERROR else record.levelname
        try:
            self.qpylib.log(f"{record.name}: {record.getMessage()}", level=level)
        except Exception:  # logging must never break the request
            self.handleError(record)


def configure_logging(level_name: str) -> None:
    level = getattr(logging, str(level_name).upper(), logging.INFO)
    log.setLevel(level)
    if getattr(log, "_cloud_account_watch_configured", False):
        return
    if qpylib_available():
        qpylib = load_qpylib()
        qpylib.create_log()
        handler: logging.Handler = _QpylibHandler(qpylib)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s")
        )
    log.addHandler(handler)
    log.propagate = False
    log._cloud_account_watch_configured = True  # type: ignore[attr-defined]


class Int64Converter(IntegerConverter):
    """``<int:...>`` limited to SQLite's 64-bit integers: a larger id cannot exist, so it is a 404 rather
    than an OverflowError (a 500) when the view hands it to SQLite."""

    def __init__(
        self,
        url_map: Any,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        super().__init__(url_map, fixed_digits, min, 2**63 - 1 if max is None else max, signed)


def _register_features(app: Flask) -> None:
    for feature in FEATURES:
        for blueprint in features.blueprints(feature):
            app.register_blueprint(blueprint)

    from flask import Blueprint

    placeholders = Blueprint("placeholders", __name__)
    for feature, rule, endpoint in PLACEHOLDER_ROUTES:
        if feature not in FEATURES:
            placeholders.add_url_rule(rule, endpoint, _placeholder_view(feature, endpoint))
    app.register_blueprint(placeholders)


def _placeholder_view(feature: str, endpoint: str) -> Any:
    message = f"Cloud Account Watch: the {feature} view is not yet available."

    def view(**_kwargs: Any) -> Any:
        if endpoint == "offense_fragment_placeholder":
            return jsonify({"html": f"<p>{message}</p>"})
        if endpoint == "dashboard_item_placeholder":
            return jsonify(
                {"id": "cloudAccountWatch", "title": "Cloud Account Watch", "HTML": f"<p>{message}</p>"}
            )
        if endpoint == "offense_playbook_placeholder":
            return jsonify({"url": None, "message": message})
        return Response(
            f"<!doctype html><title>Cloud Account Watch</title><p>{message}</p>", mimetype="text/html"
        )

    view.__name__ = endpoint
    return view


# The app's pages load only their own scripts, styles, images and fonts: no inline script or event-handler
# attribute runs, no inline style attribute applies (scripts set styles through CSSOM). Console pages frame
# the app through the app proxy, at the console's own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
DATA_MIMETYPES = frozenset({"application/json", "text/csv", "application/x-ndjson"})


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` when the browser reaches the app over HTTPS: always inside QRadar
    (the console is HTTPS), through a console proxy that names its host (``X-Console-Host``: the app
    builds https:// console URLs from it), or on an HTTPS request. ``SESSION_COOKIE_SECURE`` set to a
    bool in the config decides on its own."""

    def get_cookie_secure(self, app: Flask) -> bool:
        configured = app.config.get("SESSION_COOKIE_SECURE")
        if isinstance(configured, bool):
            return configured
        from app.api.urls import console_host  # the request layer, imported only in the web app

        if qpylib_available():
            return True
        return has_request_context() and (request.is_secure or console_host() is not None)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The app factory (see module docstring). ``test_config`` overrides any config key, e.g.
    ``STORE_DIR``, ``DATABASE``, ``QRADAR_ENV`` (env vars for the gateway) or ``QRADAR_GATEWAY``."""
    from app import settings
    from app.qradar import build_gateway, set_gateway_factory
    from app.store.db import default_db_path, store_dir

    features.register_settings()  # before anything reads a setting
    manifest = read_manifest()
    app = Flask(__name__)
    app.url_map.converters["int"] = Int64Converter
    the_app_id = app_id()
    app.config.from_mapping(
        APP_ID=the_app_id,
        APP_NAME=APP_DISPLAY_NAME,  # the manifest's name is a resource-bundle key
        APP_VERSION=manifest.get("version", "0"),
        LOG_LEVEL=manifest.get("log_level", "INFO"),
        SESSION_COOKIE_NAME=f"session_{the_app_id}",  # apps share the console origin
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # None: Secure whenever the console is reached over HTTPS (`ConsoleSessionInterface`).
        SESSION_COOKIE_SECURE=None,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        QRADAR_ENV=None,
        QRADAR_GATEWAY=None,
        FEATURES=list(FEATURES),
    )
    if test_config:
        app.config.update(test_config)
    store = Path(app.config.get("STORE_DIR") or store_dir(features.platform_store_dir()))
    store.mkdir(parents=True, exist_ok=True)
    app.config["STORE_DIR"] = str(store)
    if not app.config.get("DATABASE"):
        app.config["DATABASE"] = str(default_db_path(store))
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(store)

    configure_logging(app.config["LOG_LEVEL"])
    app.session_interface = ConsoleSessionInterface()

    server_name = f"QRadar App {app.config['APP_ID']}"
    if "gunicorn" in sys.modules:
        # gunicorn drops an app's Server header as hop-by-hop and sends "Server: gunicorn"; name the app
        # instead, as the IBM samples do, so the container does not advertise its server software.
        import gunicorn.http.wsgi

        gunicorn.http.wsgi.SERVER = server_name

    @app.after_request
    def _server_header(response: Response) -> Response:
        response.headers["Server"] = server_name
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if response.mimetype in DATA_MIMETYPES:
            response.headers["Cache-Control"] = "no-store"  # detections, audit, payloads: never cached
        return response

    from app.api.urls import make_q_url_for  # here, not at the top: the refresher imports `app` too

    app.add_template_global(make_q_url_for(app), "q_url_for")

    @app.before_request
    def _limit_body() -> None:
        # Refuse oversized bodies before any view or auth work (Werkzeug would only notice on read).
        if request.content_length is not None and request.content_length > app.config["MAX_CONTENT_LENGTH"]:
            from werkzeug.exceptions import RequestEntityTooLarge

            raise RequestEntityTooLarge()

    @app.before_request
    def _remember_theme() -> None:
        theme = request.args.get("theme")
        if theme in THEME_CLASSES and session.get("theme") != theme:
            session["theme"] = theme
        flask_g.theme = session.get("theme", "light") if session.get("theme") in THEME_CLASSES else "light"

    @app.context_processor
    def _theme_context() -> dict[str, Any]:
        theme = getattr(flask_g, "theme", "light")
        return {"theme": theme, "theme_class": THEME_CLASSES[theme]}

    from app.api.errors import register_error_handlers

    register_error_handlers(app)

    from app.store import db

    db.init_app(app)

    # The gateway is shaped by settings (API version, user lookup path, poll wait); app.qradar reads none.
    def gateway_shape() -> tuple[Any, ...]:
        values = settings.all_values()
        return tuple(values[key] for key in ("api_version", "current_user_path", "search_poll_wait_s"))

    set_gateway_factory(
        app,
        lambda: build_gateway(app.config.get("QRADAR_ENV"), *gateway_shape()),
        shape=gateway_shape,
    )

    from app import auth

    auth.init_app(app)

    @app.get("/debug")
    def debug() -> Any:
        """Health check QRadar polls on port 5000 (must answer 200)."""
        return jsonify(
            {
                "status": "ok",
                "app": app.config["APP_NAME"],
                "version": app.config["APP_VERSION"],
                "app_id": app.config["APP_ID"],
            }
        )

    from app.api import views as api_views

    app.register_blueprint(api_views.bp)
    _register_features(app)
    log.info(
        "started: app id %s, version %s, QRadar through %s, store %s",
        app.config["APP_ID"],
        app.config["APP_VERSION"],
        "qpylib" if qpylib_available() else "HTTP",
        store,
    )
    return app
