"""The console tab: pages (views), CSV export, the overview aggregation and deep links."""

from app.tab import export, links, overview, views

blueprints = [views.bp, export.bp, overview.bp, links.bp]
