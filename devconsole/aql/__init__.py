"""The dev console's real AQL engine: a lark grammar, semantic checks, and compilation to SQLite SQL
over the event store (see :mod:`devconsole.aql.engine` for the documented choices)."""

from devconsole.aql.engine import AqlEngine, PreparedQuery
from devconsole.aql.errors import AqlCancelled, AqlError

__all__ = ["AqlCancelled", "AqlEngine", "AqlError", "PreparedQuery"]
