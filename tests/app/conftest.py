"""The app fixtures live in tests/app_fixtures.py (loaded for the whole suite by tests/conftest.py).

Helpers are re-exported here for modules that import them by this name; ``live_app`` is deliberately
not, since importing a session fixture into a conftest would register a second gunicorn.
"""

from tests.app_fixtures import (  # noqa: F401
    LiveApp,
    _fresh_app,
    app,
    client,
    free_port,
    login,
    offline_app,
    offline_client,
    qradar_env,
)
