"""Tuning: allowlist presets and entries, preview, two-person approval, suppression, audit, QRadar
reference-data sync and import/export. See api.py for the routes and suppress.py for the refresher hook."""

from __future__ import annotations

from app.tuning.api import bp

blueprints = [bp]
