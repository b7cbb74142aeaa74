"""The console tab: pages, CSV export and the overview aggregation."""

from app.tab import export, overview, views

blueprints = [views.bp, export.bp, overview.bp]
