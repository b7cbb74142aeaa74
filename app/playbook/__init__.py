"""The response playbook: per-platform steps with filled commands, investigation guide, hunting queries,
validation guide with a coverage check, and the portable Sigma rule."""

from app.playbook import api, views

blueprints = [views.bp, api.bp]
