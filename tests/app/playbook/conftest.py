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
