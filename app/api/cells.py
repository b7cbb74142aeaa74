"""Spreadsheet-safe CSV cells: every CSV the app writes passes each cell through `cell`.

Log values are attacker-controlled: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR would be run
as a formula by spreadsheet apps, so it gets a leading ``'`` and stays text (OWASP "CSV injection").
"""

from __future__ import annotations

import json
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` kept out of spreadsheet formulas: a leading ``'`` when it starts with a formula character."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def cell(value: Any) -> str:
    """One CSV cell: strings as they are, None empty, anything else as sorted JSON; then `neutralise`d."""
    if value is None:
        return ""
    return neutralise(value if isinstance(value, str) else json.dumps(value, sort_keys=True))
