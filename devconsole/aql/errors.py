"""Exceptions the AQL engine raises: the only ones any query text can cause."""

from __future__ import annotations


class AqlError(Exception):
    """An invalid query: ``message`` names the problem and where it is (1-based line and column).

    The dev console's REST layer turns it into HTTP 422 with code 2000, as QRadar does.
    """

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"AqlError({self.message!r}, {self.line}, {self.column})"

    def to_json(self) -> dict:
        return {"message": self.message, "line": self.line, "column": self.column}


class AqlCancelled(Exception):
    """``execute`` stopped because ``should_cancel()`` returned True."""
