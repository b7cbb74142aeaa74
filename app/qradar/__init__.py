"""The QRadar gateway — the only package that talks to QRadar (see gateway.py).

`get_gateway()` returns the app's shared `Gateway`: ``QRADAR_GATEWAY`` from the config (tests), else one
built by the factory the app factory installed with `set_gateway_factory` (it reads the settings that shape
the gateway; this package reads no settings). Background code builds its own with `build_gateway`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

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


def set_gateway_factory(
    app: Flask, factory: Callable[[], Gateway], shape: Callable[[], Any] | None = None
) -> None:
    """How `get_gateway` builds the app's gateway (called again after `reset_gateway`). ``shape`` returns
    the values the gateway is built from (read from the store by the caller): when they differ from the
    cached gateway's, it is rebuilt, so a settings change made through one worker reaches every worker."""
    app.extensions[_FACTORY_KEY] = (factory, shape)


def get_gateway() -> Gateway:
    """The app's gateway: the configured ``QRADAR_GATEWAY``, else the installed factory's (cached while
    its shape stays the same)."""
    app = current_app
    configured = app.config.get("QRADAR_GATEWAY")
    if configured is not None:
        return configured
    installed = app.extensions.get(_FACTORY_KEY)
    if installed is None:
        raise RuntimeError("no gateway factory: create_app installs one with set_gateway_factory")
    factory, shape = installed
    wanted = shape() if shape is not None else None
    cached = app.extensions.get(_EXTENSION_KEY)
    if cached is None or cached[0] != wanted:
        cached = (wanted, factory())
        app.extensions[_EXTENSION_KEY] = cached
    return cached[1]


def reset_gateway() -> None:
    """Forget the cached gateway (after settings that shape it change)."""
    current_app.extensions.pop(_EXTENSION_KEY, None)
