"""Shared JSON API plumbing: errors (`errors`), strict parsing and paging (`parsing`), the OpenAPI
document (`openapi`, served at ``/api/openapi.json``) and the settings endpoints (`views`).

Feature packages describe their JSON routes in their own ``api.py`` as ``OPENAPI_PATHS`` (OpenAPI 3.0
path items) and optionally ``OPENAPI_SCHEMAS``; the document merges them. Error responses can reference
``#/components/responses/Error``.
"""

from .errors import ApiError, error_response
from .parsing import Paging, int_arg, json_body, list_response, paging

__all__ = ["ApiError", "Paging", "error_response", "int_arg", "json_body", "list_response", "paging"]
