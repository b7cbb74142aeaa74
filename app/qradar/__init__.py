"""The QRadar gateway — the only package that talks to QRadar (see gateway.py).

`get_gateway()` returns the app's shared `Gateway` (built from the environment, or from the
``QRADAR_ENV`` / ``QRADAR_GATEWAY`` config keys in tests); background code builds its own with
`Gateway.from_env()`.
"""

from __future__ import annotations

import os

from flask import current_app

from .errors import QRadarError, QRadarUnavailable, SearchCancelled, SearchTimeout
from .gateway import Gateway, QRadarUser, SearchStatus
from .transport import HttpTransport, QpylibTransport, qpylib_available

__all__ = [
    "Gateway",
    "HttpTransport",
    "QRadarError",
    "QRadarUnavailable",
    "QRadarUser",
    "QpylibTransport",
    "SearchCancelled",
    "SearchStatus",
    "SearchTimeout",
    "get_gateway",
    "qpylib_available",
    "reset_gateway",
]

_EXTENSION_KEY = "qradar_gateway"


def build_gateway(
    config_env: dict[str, str] | None, api_version: str, user_lookup_path: str, poll_wait_s: int
) -> Gateway:
    env = None if config_env is None else {**os.environ, **config_env}
    return Gateway.from_env(
        env, api_version=api_version, user_lookup_path=user_lookup_path, poll_wait_s=poll_wait_s
    )


def get_gateway() -> Gateway:
    """The app's gateway, configured from settings (API version, user lookup path)."""
    app = current_app
    gw = app.extensions.get(_EXTENSION_KEY)
    if gw is None:
        gw = app.config.get("QRADAR_GATEWAY")
        if gw is None:
            from app import settings

            gw = build_gateway(
                app.config.get("QRADAR_ENV"),
                settings.get("api_version"),
                settings.get("current_user_path"),
                settings.get("search_poll_wait_s"),
            )
        app.extensions[_EXTENSION_KEY] = gw
    return gw


def reset_gateway() -> None:
    """Forget the cached gateway (after settings that shape it change)."""
    current_app.extensions.pop(_EXTENSION_KEY, None)
