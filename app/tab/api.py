"""The tab's JSON routes in the OpenAPI document (merged by app/api/openapi.py)."""

from app.tab import export, links, overview

OPENAPI_PATHS = {**overview.OPENAPI_PATHS, **export.OPENAPI_PATHS, **links.OPENAPI_PATHS}
