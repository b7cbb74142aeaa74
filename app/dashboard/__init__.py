"""QRadar dashboard item and the Pulse Generic API JSON endpoints."""

from app.dashboard import api, views

blueprints = [views.bp, api.bp]
