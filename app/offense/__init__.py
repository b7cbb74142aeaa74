"""Offense Summary fragment and the OffenseSummaryToolbar GUI action (see views.py for the manifest)."""

from app.offense import sync, views  # noqa: F401 (sync registers its settings)

blueprints = [views.bp]
