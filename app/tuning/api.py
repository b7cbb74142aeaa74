"""Tuning JSON API, everything under ``/api/tuning/``, one module per concern on one blueprint:

* `api_entries` — allowlist entries (list, create, read, edit, delete);
* `api_approvals` — approve / reject a pending version;
* `api_presets` — presets and the live preview;
* `api_admin` — tuning settings, the audit log and its export, the reference-data sync;
* `api_portable` — export and import of all tuning; `api_common` — what they share.

Viewing needs access to the app (``view``); creating, editing, approving, presets and import need a tuning
capability (``tune``), and the settings need ``admin`` — all checked against the logged-in user's own QRadar
role (app.auth), never the app's token. CSRF on every write is app.auth's before-request check. Views stay
thin: bodies are checked against their published schemas (app.api.schema), the rules live in
app.tuning.service / approval / entries.
"""

from __future__ import annotations

from typing import Any

from app.api.schema import components
from app.tuning import api_admin, api_approvals, api_entries, api_portable, api_presets
from app.tuning.api_common import bp

_MODULES = (api_entries, api_approvals, api_presets, api_admin, api_portable)

OPENAPI_PATHS: dict[str, Any] = {path: item for m in _MODULES for path, item in m.OPENAPI_PATHS.items()}
OPENAPI_SCHEMAS: dict[str, Any] = components(*(body for m in _MODULES for body in m.BODIES))

__all__ = ["OPENAPI_PATHS", "OPENAPI_SCHEMAS", "bp"]
