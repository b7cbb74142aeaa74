"""The request layer every feature's JSON routes stand on, each part defined once here:

* `errors` — the JSON error contract (``{"error": {"status", "code", "message", "field"?}}``);
* `parsing` — request bodies, query parameters (ids, offense ids, paging and sorting);
* `schema` — request bodies validated against the JSON Schemas the OpenAPI document publishes;
* `openapi` — the document (``/api/openapi.json``) and the helpers features describe their routes with;
* `urls` — app URLs through QRadar's app proxy (``q_url_for``) and QRadar's own console URLs;
* `cells` — spreadsheet-safe CSV cells;
* `settings` — the one way a request changes settings; `views` — ``/api/openapi.json`` and ``/api/settings``.

Feature packages describe their JSON routes in their own ``api.py`` as ``OPENAPI_PATHS`` (OpenAPI 3.0
path items) and optionally ``OPENAPI_SCHEMAS``; the document merges them. Error responses can reference
``#/components/responses/Error``.
"""

from .errors import ApiError, error_response
from .parsing import Paging, int_arg, json_body, list_response, paging
from .schema import Body

__all__ = ["ApiError", "Body", "Paging", "error_response", "int_arg", "json_body", "list_response", "paging"]
