"""What the app is made of, for its two composition roots: feature packages, every setting, the store place.

`app.create_app` (the web app) and `app.refresher` (the background process) both call `register_settings()`
first, so each process knows every setting before it reads one, whatever it imports later. Settings are
declared as ``SETTINGS`` lists (`app.settings` for the shared ones, each feature's ``config`` module for its
own) and registered here only: importing a module never registers anything.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from app import settings
from app.qradar.transport import load_qpylib, qpylib_available

if TYPE_CHECKING:
    from flask import Blueprint

# Feature packages whose blueprints the web app registers, in this order. Each package's `__init__` imports
# nothing and exposes ``blueprints()``, so the refresher can import a feature's jobs without its views.
FEATURES: list[str] = ["detection", "tuning", "tab", "offense", "dashboard", "playbook"]

# Modules that declare a ``SETTINGS`` list besides `app.settings` itself.
SETTINGS_MODULES: list[str] = ["app.detection.config", "app.offense.config"]


def all_settings() -> list[settings.Setting]:
    """Every setting the app knows: the shared ones, then each feature's."""
    found = list(settings.SETTINGS)
    for name in SETTINGS_MODULES:
        found.extend(importlib.import_module(name).SETTINGS)
    return found


def register_settings() -> None:
    """Register every setting (idempotent: registering the same definition again is a no-op)."""
    for setting in all_settings():
        settings.register(setting)


def platform_store_dir() -> str | None:
    """The store directory QRadar gives the app (qpylib's), or None outside QRadar: the roots pass it to
    `app.store.db.store_dir`, which asks no one."""
    if os.environ.get("APP_STORE_DIR"):  # an explicit store wins (see app.store.db.store_dir)
        return None
    return load_qpylib().get_store_path() if qpylib_available() else None


def blueprints(feature: str) -> list[Blueprint]:
    """The Flask blueprints of one feature package (imports its views)."""
    return list(importlib.import_module(f"app.{feature}").blueprints())
