"""Typed, escaped AQL literals.

Every value that ends up in an AQL string is rendered by one of these functions. Values that come from
logs or from users are attacker-controlled (`' OR 1=1`), so the rules are strict:

* strings are single-quoted with embedded `'` doubled (the escaping IBM's own pySigma backend uses);
  control characters are refused because AQL has no documented escape for them;
* integers must really be integers (``bool`` and numeric strings are refused);
* identifiers (custom property names such as ``"Account Name"``) are double-quoted and may contain only
  letters, digits, spaces and a few punctuation characters — never a double quote;
* times are epoch milliseconds (what ``starttime`` and ``NOW()`` use) or START/STOP strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

__all__ = [
    "AqlLiteralError",
    "epoch_ms",
    "identifier",
    "integer",
    "integer_list",
    "string",
    "string_list",
    "time_clause",
    "time_literal",
]

# AQL integers are Java longs.
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# Custom property names seen on consoles: "Account Name", "Target Username", "AWS-Event Source",
# "User Agent (custom)". Anything else (quotes, backslashes, control characters) is refused.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9 _.\-()/#:]{0,99}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Latest instant a START/STOP literal may name (year 9999).
_MAX_EPOCH_MS = 253_402_300_799_999


class AqlLiteralError(ValueError):
    """A value cannot be rendered safely as an AQL literal."""


def string(value: str) -> str:
    """``'value'`` with embedded single quotes doubled. Refuses non-strings and control characters."""
    if not isinstance(value, str):
        raise AqlLiteralError(f"AQL string literal needs a str, got {type(value).__name__}")
    if _CONTROL.search(value):
        raise AqlLiteralError("AQL string literal contains a control character")
    return "'" + value.replace("'", "''") + "'"


def integer(value: int, *, minimum: int = _LONG_MIN, maximum: int = _LONG_MAX) -> str:
    """A decimal integer literal; refuses bool, float and str so nothing but digits can reach AQL."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise AqlLiteralError(f"AQL integer literal needs an int, got {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise AqlLiteralError(f"AQL integer {value} is outside {minimum}..{maximum}")
    return str(value)


def epoch_ms(value: int) -> str:
    """An epoch-milliseconds literal (``starttime >= 1700000000000``)."""
    return integer(value, minimum=0, maximum=_MAX_EPOCH_MS)


def identifier(name: str) -> str:
    """``"name"`` for a column or custom property; refuses anything that could break out of the quotes."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise AqlLiteralError(f"not an acceptable AQL property name: {name!r}")
    return '"' + name + '"'


def string_list(values: Iterable[str]) -> str:
    """``('a', 'b')`` for IN; refuses an empty list (``IN ()`` is not AQL)."""
    rendered = [string(v) for v in values]
    if not rendered:
        raise AqlLiteralError("AQL IN list is empty")
    return "(" + ", ".join(rendered) + ")"


def integer_list(values: Iterable[int]) -> str:
    """``(347, 445)`` for IN; refuses an empty list."""
    rendered = [integer(v) for v in values]
    if not rendered:
        raise AqlLiteralError("AQL IN list is empty")
    return "(" + ", ".join(rendered) + ")"


def time_literal(ms: int) -> str:
    """A START/STOP time in UTC, ``'yyyy-MM-dd HH:mmZ'`` (the minute is the clause's granularity).

    Without a zone a console reads START/STOP in its own time zone, which would shift (not widen) the
    window on a console not running in UTC; the documented trailing ``Z`` makes it UTC
    (aql-and-rest-api.md §1.3). Callers still filter ``starttime`` exactly in epoch ms in WHERE.
    """
    epoch_ms(ms)
    text = datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%MZ")
    return string(text)


_MINUTE_MS = 60_000


def time_clause(start_ms: int, stop_ms: int) -> str:
    """``START '…' STOP '…'`` covering [start_ms, stop_ms): START floored and STOP rounded up to the
    minute, because AQL's START/STOP have minute granularity with STOP exclusive
    (``START '15:51' STOP '17:00'`` covers 15:51:00–16:59:59). Exact bounds belong in WHERE."""
    epoch_ms(start_ms)
    epoch_ms(stop_ms)
    if stop_ms <= start_ms:
        raise AqlLiteralError(f"time window is empty: {start_ms}..{stop_ms}")
    start_floor = start_ms - start_ms % _MINUTE_MS
    stop_ceil = -(-stop_ms // _MINUTE_MS) * _MINUTE_MS
    return f"START {time_literal(start_floor)} STOP {time_literal(stop_ceil)}"
