"""Who is asking, and may they? Server-side checks against the logged-in user's own QRadar role.

* `current_user()` — the request's user (QRadar's numeric user ID, name for display, role, capabilities)
  from its ``SEC`` cookie, asked of QRadar with that token (never ``SEC_ADMIN_TOKEN``). When QRadar cannot
  say who the user is, the request is refused (502 ``qradar_error`` / 503 ``qradar_unavailable``, naming
  QRadar) and nothing is cached. Cached on ``g`` per request and for ``user_cache_s`` seconds (at most
  300) per token and identity settings: the cache key includes the settings that decide who a user is,
  read from the store on every request, so a change made through any worker reaches every worker at once.
* `require("view" | "tune" | "admin")` — decorator: 401 JSON without a valid session, 403 JSON without
  the permission. ``view`` = any QRadar user; ``tune`` = any capability in the ``tuning_capabilities``
  setting (or ADMIN); ``admin`` = ADMIN.
* CSRF: every POST/PUT/PATCH/DELETE needs header ``QRadarCSRF`` equal to cookie ``QRadarCSRF`` (403 JSON).
* ``GET /api/me``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Flask, g, request

from app import settings
from app.api.errors import ApiError
from app.qradar import QRadarError, get_gateway

# Settings that decide who a user is or what QRadar is asked: part of the identity cache key.
IDENTITY_SETTING_KEYS = ("current_user_path", "api_version", "user_cache_s")

LEVELS = ("view", "tune", "admin")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class User:
    """A QRadar user: ``user_id`` (QRadar's numeric ID) identifies them, ``name`` is for display."""

    user_id: int
    name: str
    role: str
    capabilities: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "ADMIN" in self.capabilities

    def can_tune(self, tuning_capabilities: list[str] | None = None) -> bool:
        caps = settings.get("tuning_capabilities") if tuning_capabilities is None else tuning_capabilities
        return self.is_admin or bool(self.capabilities & set(caps))

    def may(self, level: str) -> bool:
        if level == "view":
            return True
        if level == "tune":
            return self.can_tune()
        if level == "admin":
            return self.is_admin
        raise ValueError(f"unknown permission level {level!r}; use one of {LEVELS}")

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "role": self.role,
            "capabilities": sorted(self.capabilities),
            "permissions": {level: self.may(level) for level in LEVELS},
        }


MAX_USER_CACHE_S = 300


class _TokenCache:
    """Short-lived per-token cache so each page load does not ask QRadar twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, User]] = {}
        self._lookups: dict[str, threading.Lock] = {}

    def lookup_lock(self, token: str) -> threading.Lock:
        """One lock per token: the requests that find a token uncached wait for one QRadar lookup rather
        than each asking QRadar (a page load sends several requests at once)."""
        with self._lock:
            if len(self._lookups) > 1000:
                self._lookups = {k: v for k, v in self._lookups.items() if v.locked()}
            return self._lookups.setdefault(self.key(token), threading.Lock())

    @staticmethod
    def key(token: str, context: str = "") -> str:
        return hashlib.sha256(f"{context}\0{token}".encode()).hexdigest()

    def get(self, token: str, context: str = "") -> User | None:
        with self._lock:
            entry = self._entries.get(self.key(token, context))
        if entry and entry[0] > time.monotonic():
            return entry[1]
        return None

    def put(self, token: str, user: User, ttl_s: float, context: str = "") -> None:
        ttl_s = min(ttl_s, MAX_USER_CACHE_S)
        if ttl_s <= 0:
            return
        with self._lock:
            now = time.monotonic()
            if len(self._entries) > 1000:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            self._entries[self.key(token, context)] = (now + ttl_s, user)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


token_cache = _TokenCache()


def current_user() -> User:
    """The logged-in user; raises ApiError 401 when the request has no valid QRadar session."""
    if "current_user" in g:
        return g.current_user
    token = request.cookies.get("SEC", "")
    if not token:
        raise ApiError(401, "not_logged_in", "no QRadar session: open the app from the QRadar console")
    values = settings.all_values()
    context = "\0".join(str(values[key]) for key in IDENTITY_SETTING_KEYS)
    user = token_cache.get(token, context)
    if user is None:
        with token_cache.lookup_lock(token):
            user = token_cache.get(token, context)
            if user is None:
                user = _ask_qradar(token)
                token_cache.put(token, user, values["user_cache_s"], context)
    g.current_user = user
    return user


def _ask_qradar(token: str) -> User:
    """Who owns ``token``, from QRadar; an ApiError (or QRadarUnavailable, a 503) when QRadar cannot say."""
    try:
        found = get_gateway().current_user(token)
    except QRadarError as exc:
        if exc.http_status in (401, 403):
            raise ApiError(
                401, "not_logged_in", "QRadar did not accept the session; log in to QRadar again"
            ) from exc
        raise ApiError(
            502,
            "qradar_error",
            f"QRadar could not say who you are, so the request was refused: {exc.message}",
        ) from exc
    if found.user_id is None:
        raise ApiError(
            502, "qradar_error", "QRadar did not give the logged-in user's ID; the request was refused"
        )
    return User(
        user_id=found.user_id,
        name=found.name or f"user #{found.user_id}",
        role=found.role,
        capabilities=found.capabilities,
    )


def require(level: str) -> Callable[[F], F]:
    """Decorator: the view runs only for users with ``level`` permission."""
    if level not in LEVELS:
        raise ValueError(f"unknown permission level {level!r}; use one of {LEVELS}")

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if not user.may(level):
                raise ApiError(
                    403,
                    "forbidden",
                    f"this needs the '{level}' permission, which "
                    f"{user.name} ({user.role or 'no role'}) does not have",
                )
            return view(*args, **kwargs)

        wrapped.required_permission = level  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def check_csrf() -> None:
    """Unsafe methods need the QRadarCSRF header to equal the QRadarCSRF cookie."""
    if request.method not in UNSAFE_METHODS:
        return
    header = request.headers.get("QRadarCSRF", "")
    cookie = request.cookies.get("QRadarCSRF", "")
    if not header or not cookie or not hmac.compare_digest(header.encode(), cookie.encode()):
        raise ApiError(
            403, "csrf_failed", "missing or wrong QRadarCSRF header: it must equal the QRadarCSRF cookie"
        )


bp = Blueprint("auth", __name__)


@bp.get("/api/me")
@require("view")
def me() -> dict[str, Any]:
    return current_user().to_json()


def init_app(app: Flask) -> None:
    app.before_request(check_csrf)
    app.register_blueprint(bp)


OPENAPI_PATHS = {
    "/api/me": {
        "get": {
            "summary": "The logged-in QRadar user, their capabilities and app permissions",
            "responses": {
                "200": {
                    "description": "the user",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}},
                },
                "401": {"$ref": "#/components/responses/Error"},
            },
        }
    },
}
OPENAPI_SCHEMAS = {
    "Me": {
        "type": "object",
        "properties": {
            "user_id": {"type": "integer", "description": "QRadar's numeric user ID: who the user is"},
            "name": {"type": "string", "description": "the username, for display"},
            "role": {"type": "string"},
            "capabilities": {"type": "array", "items": {"type": "string"}},
            "permissions": {"type": "object", "properties": {level: {"type": "boolean"} for level in LEVELS}},
        },
    },
}
