"""Offense Summary fragment and the OffenseSummaryToolbar GUI action (see views.py for the manifest)."""

from app.offense import views

blueprints = [views.bp]
