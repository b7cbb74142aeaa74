"""Detection: payload identifiers (`extract`), classification (`classify`), attack chains (`chains`), the
background refresher (`refresher`, run as ``python -m app.refresher``) and the JSON API (`api`)."""

from app.detection import api

blueprints = [api.bp]
