"""The console side of the App Framework: the tab page with a user picker, the app proxy, the Offense
Summary page (fragment + OffenseSummaryToolbar GUI actions), a Log Activity page and the dashboard.

Everything is driven by the app's manifest.json. Pages render data as text (Jinja autoescaping) and load
nothing external; the app's own HTML (fragment ``html``, dashboard ``HTML``) is injected as QRadar does.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterator

import requests
from flask import Blueprint, Response, g, redirect, render_template, request, stream_with_context, url_for

from devconsole.searches import RUNNING
from devconsole.server.context import console, get_db
from devconsole.server.errors import CODE_FORBIDDEN, CODE_NOT_FOUND, CODE_UNAUTHORIZED, error_response
from devconsole.server.offenses import offense_json
from devconsole.users import USERS, User, same_secret

bp = Blueprint("console", __name__, url_prefix="/console")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
THEMES = ("light", "dark")
LOG_ACTIVITY_WAIT_SECONDS = 120
# Console pages run only our own static scripts; 'unsafe-eval' because GUI actions carry a JavaScript
# expression that the console evaluates (as QRadar does).
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'"
)


# --- manifest helpers -------------------------------------------------------------------------------


def manifest() -> dict:
    return console().manifest.get()


def _norm(url: str) -> str:
    return url.strip().lstrip("/").split("?", 1)[0].rstrip("/")


def _caps(entry: dict) -> list[str]:
    caps = entry.get("required_capabilities") or []
    return [str(c) for c in caps] if isinstance(caps, list) else []


def rest_method(name: str) -> dict | None:
    for method in manifest().get("rest_methods") or []:
        if method.get("name") == name:
            return method
    return None


def proxy_base() -> str:
    return f"/console/plugins/{console().config.app_id}/app_proxy"


def path_requirements(path: str) -> list[tuple[str, list[str]]]:
    """(what, capabilities) for every manifest area and REST method whose URL covers ``path``."""
    target = _norm(path)
    found = []
    for kind, entries in (
        ("area", manifest().get("areas") or []),
        ("rest method", manifest().get("rest_methods") or []),
    ):
        for entry in entries:
            url = _norm(str(entry.get("url", "")))
            if url and (target == url or target.startswith(url + "/")):
                found.append((f"{kind} {entry.get('id') or entry.get('name')}", _caps(entry)))
    return found


# --- session -----------------------------------------------------------------------------------------


def session_user() -> User | None:
    token = request.cookies.get("SEC")
    return console().tokens.user_for(token) if token else None


def theme() -> str:
    chosen = request.args.get("theme") or request.cookies.get("devconsole_theme") or "light"
    return chosen if chosen in THEMES else "light"


@bp.after_request
def console_headers(response: Response) -> Response:
    if not request.path.startswith(proxy_base() + "/") and request.path != proxy_base():
        if console().config.console_csp:
            response.headers.setdefault("Content-Security-Policy", CONSOLE_CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.args.get("theme") in THEMES:
            response.set_cookie("devconsole_theme", request.args["theme"], secure=True, samesite="Lax")
    return response


def _page(template: str, status: int = 200, **context: object) -> Response:
    body = render_template(
        template,
        user=g.get("console_user"),
        theme=theme(),
        users=_picker_users(),
        manifest_error=console().manifest.error,
        app_name=console().manifest.text(manifest().get("name", "app")),
        **context,
    )
    return Response(body, status=status, mimetype="text/html")


def _picker_users() -> list[User]:
    return [u for u in USERS.values() if not u.is_service]


def _require_login() -> Response | None:
    user = session_user()
    if user is None:
        return redirect(url_for("console.index", next=request.full_path))
    g.console_user = user
    return None


def _console_page(
    capability: str | None = None, lacking: str = ""
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A console page for a logged-in user (others go to the user picker, then come back). With
    ``capability``, a user without it gets a 403 page "User X {lacking} (needs CAPABILITY)."."""

    def decorate(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def guarded(**kwargs: object) -> Response:
            redirect_response = _require_login()
            if redirect_response:
                return redirect_response
            user: User = g.console_user
            if capability and not user.has_capability(capability):
                return _page(
                    "message.html",
                    status=403,
                    title="Not allowed",
                    message=f"User {user.username} {lacking} (needs {capability}).",
                )
            return view(**kwargs)

        return guarded

    return decorate


def _rest_link(method: dict) -> dict[str, str]:
    """The proxied URL and HTTP method of a manifest REST method, for a page to call."""
    return {
        "url": f"{proxy_base()}/{_norm(str(method.get('url', '')))}",
        "method": (method.get("method") or "GET").upper(),
    }


@bp.get("/")
def index() -> Response:
    user = session_user()
    g.console_user = user
    if user is None:
        return _page("picker.html")
    texts = console().manifest
    areas = [
        {**a, "text": texts.text(a.get("text")), "description": texts.text(a.get("description"))}
        for a in manifest().get("areas") or []
        if user.has_all(_caps(a))
    ]
    selected_id = request.args.get("tab")
    selected = next((a for a in areas if a.get("id") == selected_id), areas[0] if areas else None)
    frame_src = None
    if selected is not None:
        frame_src = f"{proxy_base()}/{_norm(str(selected.get('url', '')))}"
        if str(selected.get("url", "")).rstrip().endswith("/"):
            frame_src += "/"
        frame_src += f"?ui=new&theme={theme()}"
    return _page("console.html", areas=areas, selected=selected, frame_src=frame_src)


@bp.post("/login")
def login() -> Response:
    username = request.form.get("username", "")
    user = USERS.get(username)
    if user is None or user.is_service:
        g.console_user = None
        return _page("picker.html", status=400, error=f"Unknown user '{username}'")
    target = request.form.get("next") or url_for("console.index")
    if not target.startswith("/console/") or target.startswith("//"):
        target = url_for("console.index")
    response = redirect(target)
    response.set_cookie(
        "SEC", console().tokens.token_for(username), httponly=True, secure=True, samesite="Lax", path="/"
    )
    # A fresh random CSRF value per session, readable by page scripts (QRadar's QRadarCSRF cookie is too).
    response.set_cookie("QRadarCSRF", secrets.token_urlsafe(24), secure=True, samesite="Lax", path="/")
    return response


@bp.post("/logout")
def logout() -> Response:
    response = redirect(url_for("console.index"))
    response.delete_cookie("SEC", path="/")
    response.delete_cookie("QRadarCSRF", path="/")
    return response


# --- the app proxy --------------------------------------------------------------------------------------


@bp.route(
    "/plugins/<int:app_id>/app_proxy",
    defaults={"path": ""},
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
)
@bp.route(
    "/plugins/<int:app_id>/app_proxy/<path:path>",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
)
def app_proxy(app_id: int, path: str) -> Response:
    state = console()
    if app_id != state.config.app_id:
        return error_response(404, CODE_NOT_FOUND, f"No app with id {app_id} is installed on this console")
    user = session_user()
    by_token_header = False
    if user is None and request.headers.get("SEC"):
        # Token callers (authorized services, scripts) send SEC as a header; QRadar exempts them from
        # the QRadarCSRF check, which protects browser sessions.
        user = state.tokens.user_for(request.headers["SEC"])
        by_token_header = user is not None
    if user is None:
        return error_response(401, CODE_UNAUTHORIZED, "Log in to the console (no valid SEC cookie or header)")
    csrf_on = str(manifest().get("use_qradar_csrf", "false")).lower() == "true"
    if request.method in UNSAFE_METHODS and csrf_on and not by_token_header:
        header = request.headers.get("QRadarCSRF", "")
        cookie = request.cookies.get("QRadarCSRF", "")
        if not cookie or not same_secret(cookie, header):
            return error_response(
                403,
                CODE_FORBIDDEN,
                f"{request.method} to the app needs a QRadarCSRF header "
                "equal to the QRadarCSRF cookie (use_qradar_csrf is true)",
            )
    for what, caps in path_requirements(path):
        if not user.has_all(caps):
            return error_response(
                403,
                CODE_FORBIDDEN,
                f"The {what} requires capabilities {', '.join(caps)}; user {user.username} lacks some",
            )
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    headers["X-Console-Host"] = request.host
    headers["X-Forwarded-Proto"] = "https"
    target = f"{state.config.app_url.rstrip('/')}/{_raw_path(app_id, path)}"
    try:
        if request.query_string:
            target += "?" + request.query_string.decode("latin-1")
        upstream = requests.request(
            request.method,
            target,
            data=request.get_data() or None,
            headers=headers,
            stream=True,
            allow_redirects=False,
            timeout=(5, state.config.proxy_timeout_seconds),
        )
    except requests.RequestException as exc:
        return error_response(
            502, 1020, f"The app at {state.config.app_url} did not answer: {type(exc).__name__}"
        )

    def body() -> Iterator[bytes]:
        try:
            yield from upstream.raw.stream(64 * 1024, decode_content=False)
        finally:
            upstream.close()

    response = Response(stream_with_context(body()), status=upstream.status_code, direct_passthrough=True)
    # Response() starts with its own default Content-Type; the app's headers replace it, never add to it.
    del response.headers["Content-Type"]
    for key, value in upstream.raw.headers.items():
        if key.lower() in HOP_BY_HOP - {"content-length"} or key.lower() == "set-cookie":
            continue
        response.headers.add(key, value)
    for cookie in upstream.raw.headers.getlist("Set-Cookie"):
        response.headers.add("Set-Cookie", cookie)
    return response


def _raw_path(app_id: int, decoded: str) -> str:
    """The path after the proxy prefix exactly as the browser sent it (keeps %2F and friends)."""
    raw = (request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or "").split("?", 1)[0]
    prefix = f"/console/plugins/{app_id}/app_proxy/"
    return raw[len(prefix) :] if raw.startswith(prefix) else decoded


# --- Offenses list (links to each Offense Summary page) -------------------------------------------------


@bp.get("/offenses")
@_console_page("SEM", "cannot view offenses")
def offenses() -> Response:
    db = get_db()
    rows = db.execute("SELECT * FROM offenses ORDER BY start_time DESC").fetchall()
    return _page("offenses.html", offenses=[offense_json(db, row) for row in rows])


# --- Offense Summary ------------------------------------------------------------------------------------


@bp.get("/do/sem/offensesummary")
@_console_page("SEM", "cannot view offenses")
def offense_summary() -> Response:
    user: User = g.console_user
    summary_id = request.args.get("summaryId", "")
    if not summary_id.isdigit():
        return _page(
            "message.html",
            status=400,
            title="Bad offense id",
            message=f"summaryId '{summary_id}' must be a whole number.",
        )
    db = get_db()
    row = db.execute("SELECT * FROM offenses WHERE id = ?", (int(summary_id),)).fetchone()
    if row is None:
        return _page(
            "message.html",
            status=404,
            title="No such offense",
            message=f"Offense {summary_id} does not exist.",
        )
    offense = offense_json(db, row)
    fragments = [
        {"url": f"{proxy_base()}/{_norm(str(f.get('rest_endpoint', '')))}/{offense['id']}"}
        for f in manifest().get("fragments") or []
        if str(f.get("app_name", "")).upper() == "SEM" and f.get("page_id") == "OffenseSummary"
    ]
    actions = []
    for action in manifest().get("gui_actions") or []:
        if "OffenseSummaryToolbar" not in (action.get("groups") or []) or not user.has_all(_caps(action)):
            continue
        method = rest_method(action.get("rest_method", "")) if action.get("rest_method") else None
        actions.append(
            {
                "id": action.get("id"),
                "text": console().manifest.text(action.get("text") or action.get("id")),
                "description": console().manifest.text(action.get("description", "")),
                "javascript": action.get("javascript") or "",
                **(_rest_link(method) if method else {"url": None, "method": None}),
            }
        )
    scripts = [
        f"{proxy_base()}/{_norm(str(s))}"
        for ps in manifest().get("page_scripts") or []
        if str(ps.get("app_name", "")).upper() == "SEM" and ps.get("page_id") == "OffenseSummary"
        for s in ps.get("scripts") or []
    ]
    page_data = {"offenseId": offense["id"], "fragments": fragments, "actions": actions}
    return _page("offense_summary.html", offense=offense, page_data=page_data, app_scripts=scripts)


# --- Log Activity ---------------------------------------------------------------------------------------


@bp.get("/do/ariel/arielSearch")
@_console_page("EVENTVIEWER", "cannot search events")
def log_activity() -> Response:
    user: User = g.console_user
    aql = request.args.get("value(aql)", "")
    context: dict = {"aql": aql, "columns": [], "rows": [], "error": None, "search_status": None}
    if aql.strip():
        from devconsole.aql import AqlError

        try:
            search, _ = console().searches.create(
                aql, user.username, user.security_profile.visible_log_source_ids(get_db())
            )
        except AqlError as exc:
            context["error"] = getattr(exc, "message", None) or str(exc)
            return _page("log_activity.html", status=422, **context)
        search = console().searches.wait(search.search_id, LOG_ACTIVITY_WAIT_SECONDS)
        context["search_status"] = search.status
        if search.status in RUNNING:
            context["error"] = f"The search is still running after {LOG_ACTIVITY_WAIT_SECONDS} s."
        elif search.status == "ERROR":
            context["error"] = "; ".join(m.get("message", "") for m in search.error_messages)
        rows = search.rows or []
        context["columns"] = search.columns or (list(rows[0]) if rows else [])
        context["rows"] = [[_cell(row.get(col)) for col in context["columns"]] for row in rows]
    return _page("log_activity.html", **context)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


# --- Dashboard -----------------------------------------------------------------------------------------


@bp.get("/dashboard")
@_console_page()
def dashboard() -> Response:
    user: User = g.console_user
    items = []
    for item in manifest().get("dashboard_items") or []:
        method = rest_method(item.get("rest_method", ""))
        if method is None or not user.has_all(_caps(item)):
            continue
        items.append(
            {
                "text": console().manifest.text(item.get("text", "")),
                "description": console().manifest.text(item.get("description", "")),
                **_rest_link(method),
            }
        )
    return _page("dashboard.html", items=items, page_data={"items": items})
