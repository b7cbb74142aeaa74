"""The QRadar gateway — the only package that talks to QRadar (see gateway.py).

`get_gateway()` returns the app's shared `Gateway`: ``QRADAR_GATEWAY`` from the config (tests), else one
built by the factory the app factory installed with `set_gateway_factory` (it reads the settings that shape
the gateway; this package reads no settings). Background code builds its own with `build_gateway`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from flask import Flask, current_app

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
    "set_gateway_factory",
]

_EXTENSION_KEY = "qradar_gateway"
_FACTORY_KEY = "qradar_gateway_factory"


def build_gateway(
    config_env: dict[str, str] | None, api_version: str, user_lookup_path: str, poll_wait_s: int
) -> Gateway:
    env = None if config_env is None else {**os.environ, **config_env}
    return Gateway.from_env(
        env, api_version=api_version, user_lookup_path=user_lookup_path, poll_wait_s=poll_wait_s
    )


def set_gateway_factory(app: Flask, factory: Callable[[], Gateway]) -> None:
    """How `get_gateway` builds the app's gateway (called again after `reset_gateway`)."""
    app.extensions[_FACTORY_KEY] = factory


def get_gateway() -> Gateway:
    """The app's gateway: the configured ``QRADAR_GATEWAY``, else the installed factory's (cached)."""
    app = current_app
    gw = app.extensions.get(_EXTENSION_KEY)
    if gw is None:
        gw = app.config.get("QRADAR_GATEWAY")
        if gw is None:
            factory = app.extensions.get(_FACTORY_KEY)
            if factory is None:
                raise RuntimeError("no gateway factory: create_app installs one with set_gateway_factory")
            gw = factory()
        app.extensions[_EXTENSION_KEY] = gw
    return gw


def reset_gateway() -> None:
    """Forget the cached gateway (after settings that shape it change)."""
    current_app.extensions.pop(_EXTENSION_KEY, None)
