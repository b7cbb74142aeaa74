"""Errors raised by the QRadar gateway.

`QRadarError` carries QRadar's own error body (HTTP status, endpoint code, message, description) so the
app can show users what QRadar said. `QRadarUnavailable` means QRadar could not be reached or did not
answer in time; callers may retry later.
"""

from __future__ import annotations

from typing import Any


class QRadarError(Exception):
    """QRadar answered with an error body (see QRadar REST API 'Error body')."""

    def __init__(
        self, http_status: int, code: int | None, message: str, description: str = "", details: Any = None
    ) -> None:
        self.http_status = http_status
        self.code = code
        self.message = message
        self.description = description
        self.details = details
        super().__init__(f"QRadar {http_status} (code {code}): {message}")

    @classmethod
    def from_response(cls, status: int, body: Any, fallback_text: str = "") -> QRadarError:
        """Build from a parsed error body; tolerate bodies that are not QRadar's JSON shape."""
        if isinstance(body, dict):
            code = body.get("code")
            message = body.get("message") or body.get("description") or ""
            if not message and isinstance(body.get("http_response"), dict):
                message = body["http_response"].get("message", "")
            return cls(
                status,
                code if isinstance(code, int) else None,
                str(message or f"HTTP {status}"),
                str(body.get("description") or ""),
                body.get("details"),
            )
        text = (fallback_text or "").strip()[:500]
        return cls(status, None, text or f"HTTP {status}")


class QRadarUnavailable(Exception):
    """QRadar could not be reached (connection refused, TLS failure, DNS) or timed out."""


class SearchTimeout(QRadarUnavailable):
    """An Ariel search did not finish within its time budget (it has been cancelled)."""

    def __init__(self, search_id: str, timeout_s: float, progress: int = 0) -> None:
        self.search_id = search_id
        self.timeout_s = timeout_s
        self.progress = progress
        super().__init__(
            f"Ariel search {search_id} did not finish within {timeout_s:g} s "
            f"(progress {progress}%); it was cancelled"
        )


class SearchCancelled(Exception):
    """The caller asked to stop waiting (should_cancel returned True); the search was cancelled."""

    def __init__(self, search_id: str) -> None:
        self.search_id = search_id
        super().__init__(f"Ariel search {search_id} was cancelled")
