"""The dev console's HTTPS server: QRadar's REST API subset (/api), the console pages and app proxy
(/console) and the dev console's own admin endpoints (/devconsole)."""

from __future__ import annotations

import json
import os
import ssl
import sys
import threading
from pathlib import Path

from flask import Flask, Response, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from devconsole.certs import ensure_certs
from devconsole.dsm.catalogue import declare_catalogue
from devconsole.faults import FaultInjector
from devconsole.searches import SearchManager
from devconsole.server.context import Console, ManifestLoader, ServerConfig, close_db
from devconsole.server.errors import (
    CODE_BAD_PARAMETER,
    CODE_NOT_FOUND,
    CODE_SERVER_ERROR,
    ApiError,
    api_error_response,
    error_response,
)
from devconsole.store import EventStore
from devconsole.users import TokenRegistry

__all__ = ["ServerConfig", "create_app", "run_server"]

MAX_REQUEST_BYTES = 16 * 1024 * 1024


def create_app(config: ServerConfig, faults: FaultInjector | None = None) -> Flask:
    """Build the Flask app for one data directory (tokens, store, searches, manifest)."""
    from devconsole.server import api, apps, ariel, console, devapi, offenses, refdata  # noqa: F401 (routes)

    data_dir = Path(config.data_dir)
    store = EventStore.in_dir(data_dir)
    declare_catalogue(store)  # QID records for every event the DSMs map (the QID records endpoint)
    faults = faults or FaultInjector()

    def engine_factory() -> object:
        from devconsole.aql import AqlEngine  # the engine is another part; import when first needed

        return AqlEngine(store, default_window_ms=config.default_window_ms)

    searches = SearchManager(
        engine_factory,
        faults,
        before_execute=lambda: refdata.purge_expired_in_store(store),
        max_concurrent=config.max_concurrent_searches,
        retention_seconds=config.search_retention_seconds,
        reuse_seconds=config.search_reuse_seconds,
    )
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.json.sort_keys = False
    app.extensions["devconsole"] = Console(
        config=config,
        store=store,
        tokens=TokenRegistry.load_or_create(data_dir),
        faults=faults,
        searches=searches,
        manifest=ManifestLoader(Path(config.manifest_path)),
    )
    app.register_blueprint(api.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(devapi.bp)
    apps.init_app(app)  # /api/gui_app_framework: installs app zips
    app.teardown_appcontext(close_db)

    @app.get("/")
    def root() -> Response:
        return redirect("/console/")

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError) -> Response:
        return api_error_response(error)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Response:
        if request.path.startswith(("/api/", "/console/plugins/", "/devconsole/")) or error.code != 404:
            code = CODE_NOT_FOUND if error.code == 404 else (error.code or 500)
            message = (
                f"No endpoint {request.method} {request.path}"
                if error.code in (404, 405)
                else error.description or error.name
            )
            return error_response(error.code or 500, code, message, error.name)
        return error

    @app.errorhandler(OverflowError)
    def handle_overflow(_error: OverflowError) -> Response:
        # An id or number too large for SQLite's 64-bit integers is bad input, not a server fault.
        return error_response(422, CODE_BAD_PARAMETER, "A number in the request is out of range")

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, CODE_SERVER_ERROR, f"Unexpected error: {type(error).__name__}")

    return app


def run_server(
    config: ServerConfig, faults: FaultInjector | None = None, ready: threading.Event | None = None
) -> None:
    """Serve HTTPS on 127.0.0.1 until interrupted; prints the base URL once listening.

    werkzeug's threaded server gives every request its own thread: a search poll with ``Prefer: wait``,
    an injected hang or a streamed proxy response must not block the other clients (the app's refresher,
    the browser, tests) the way a single-threaded server would.
    """
    paths = ensure_certs(config.data_dir)
    app = create_app(config, faults)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.server_cert, paths.server_key)
    server = make_server("127.0.0.1", config.port, app, threaded=True, ssl_context=context)
    port = server.socket.getsockname()[1]
    config.port = port
    base_url = f"https://127.0.0.1:{port}"
    info = {
        "base_url": base_url,
        "port": port,
        "pid": os.getpid(),
        "ca_path": str(paths.ca_cert),
        "app_url": config.app_url,
        "app_id": config.app_id,
    }
    (Path(config.data_dir) / "serve.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(base_url, flush=True)
    print(
        f"devconsole: console {base_url}/console/  CA {paths.ca_cert}  tokens "
        f"{Path(config.data_dir) / 'tokens.json'}  app {config.app_url} (id {config.app_id})",
        file=sys.stderr,
        flush=True,
    )
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
