"""Register this feature's blueprints in the apps the shared fixtures build, until `app.FEATURES`
lists it (the foundation engineer adds features there as they land)."""

from __future__ import annotations

import pytest

import app as app_package

MY_FEATURES = ["tab", "offense", "dashboard", "playbook"]


@pytest.fixture(autouse=True)
def _features_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = [f for f in MY_FEATURES if f not in app_package.FEATURES]
    if missing:
        monkeypatch.setattr(app_package, "FEATURES", [*app_package.FEATURES, *missing])


@pytest.fixture
def refreshed_app(app):
    """The app with its store filled by one real refresh cycle against the seeded dev console."""
    from app.detection.refresher import refresh_once
    from app.qradar import get_gateway
    from app.store.db import get_db

    with app.app_context():
        result = refresh_once(get_db(), get_gateway())
        assert result.status == "ok", result
    return app

